"""brms-style prior strings, parsed once; rstanarm's default priors, resolved to numbers our samplers use.

A prior string is `class ~ dist(args)` or, for one coefficient, `b[x] ~ ...` / `sd[g][x] ~ ...`, e.g.
`b ~ normal(0, 4)`, `Intercept ~ normal(0, 4)`, `sd ~ cauchy(0, 1)`, `sd ~ uniform(0, 100)`, `cor ~ lkj(4)`,
`sigma ~ exponential(0.1)`, `cov ~ decov(1, 1, 1, 1)`.
Meaning follows brms: `Intercept` is the intercept *after centring the fixed-effect predictors*
(brms and rstanarm both do this), `b[Intercept]` the intercept on the data's scale; priors on a class with
positive support (`sd`, `sigma`) are half distributions when the distribution is real (normal, student_t,
cauchy: centred at 0 and truncated there), and a uniform prior bounds the parameter to its interval;
`cor` is the LKJ prior on each block's correlation matrix, `phi` the prior on negbinomial's dispersion (NB2:
variance mu + mu^2 / phi; positive, like sigma; brms's class `shape`, rstanarm's prior_aux).  The class and
distribution tables below are the grammar: a class is one CLASSES entry (its support decides which
distributions it takes), a distribution one DISTS entry.  What each engine can express of a parsed set is
decided by the engine (its translation); hbench's own samplers take everything this module accepts.

Defaults are rstanarm's stan_glmer defaults (priors vignette, post July 2020):
  b          normal(0, 2.5 * s_y / s_x)   s_y = sd(y) for gaussian, 1 otherwise; s_x = sd(x), for binary
                                          predictors too (rstanarm 2.21), 1 for a constant one
  Intercept  normal(mean(y), 2.5 * sd(y)) for gaussian; normal(0, 2.5) otherwise (centred predictors)
  sigma      exponential(1 / sd(y))
  phi        exponential(1) (negbinomial): rstanarm's prior_aux on neg_binomial_2's reciprocal_dispersion,
             which is phi (exponential(autoscale = TRUE) with s_y = 1 off the gaussian family); brms's own
             default is gamma(0.01, 0.01) on its `shape`, which is phi too
  cov        decov(regularization=1, concentration=1, shape=1, scale=1): per block of q terms,
             correlation ~ LKJ(regularization), variance shares pi ~ Dirichlet(concentration),
             tau ~ Gamma(shape, rate = 1 / scale), SDs = dispersion * tau * sqrt(q * pi)
             (dispersion = sigma for gaussian, 1 otherwise), as rstanarm's make_theta_L.
Simplifications: rstanarm's QR option and its mean(y) location for non-identity links are not
modelled; an offset does not shift the default intercept location.  Giving an `sd` or `cor` prior
switches the covariance from decov to brms's separate form (independent half priors on SDs, LKJ on
correlations); the other one then takes brms-like defaults: sd ~ student_t(3, 0, 2.5 * s_y),
cor ~ lkj(1).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from compare.errors import InputError


class DistInfo(NamedTuple):
    """A distribution of the grammar: its code in the engines' data (glmm.stan's hb_prior_lpdf, the PyMC
    table), its arguments in order, and its support: "real", "positive", "interval" (uniform: its own
    arguments are the bounds), "corr" (correlation matrices) or "cov" (covariance matrices)."""

    code: int
    args: tuple[str, ...]
    support: str


DISTS: dict[str, DistInfo] = {
    "normal": DistInfo(1, ("mu", "sigma"), "real"),
    "student_t": DistInfo(2, ("nu", "mu", "sigma"), "real"),
    "cauchy": DistInfo(3, ("mu", "sigma"), "real"),
    "exponential": DistInfo(4, ("rate",), "positive"),
    "gamma": DistInfo(5, ("shape", "rate"), "positive"),
    "lkj": DistInfo(6, ("eta",), "corr"),
    "decov": DistInfo(7, ("regularization", "concentration", "shape", "scale"), "cov"),
    "uniform": DistInfo(8, ("lower", "upper"), "interval"),
    "inv_gamma": DistInfo(9, ("shape", "scale"), "positive"),
    "lognormal": DistInfo(10, ("mu", "sigma"), "positive"),
}
# arguments that may be any finite number (the others must be positive; uniform's are checked as bounds)
_FREE_ARGS = {"mu", "lower", "upper"}
# which distribution supports a class of each support takes: a positive class takes real distributions as
# half distributions (centred at 0), and a uniform on a non-negative interval
_TAKES = {
    "real": ("real",),
    "positive": ("real", "positive", "interval"),
    "corr": ("corr",),
    "cov": ("cov",),
}


class ClassInfo(NamedTuple):
    """A prior class: its PriorSpec key, the support of its parameters, how many [..] a prior on one of its
    coefficients takes (b[x]: 1, sd[g][x]: 2; 0: class-level only), and the families whose models have it
    (None: every family)."""

    key: str
    support: str
    targets: int
    families: tuple[str, ...] | None = None


CLASSES: dict[str, ClassInfo] = {
    "b": ClassInfo("b", "real", 1),
    "Intercept": ClassInfo("intercept", "real", 0),
    "sd": ClassInfo("sd", "positive", 2),
    "sigma": ClassInfo("sigma", "positive", 0, ("gaussian",)),
    "phi": ClassInfo("phi", "positive", 0, ("negbinomial",)),
    "cor": ClassInfo("cor", "corr", 0),
    "cov": ClassInfo("cov", "cov", 0),
}
_BY_KEY = {c.key: name for name, c in CLASSES.items()}
_PRIOR = re.compile(r"^\s*([A-Za-z_]+)((?:\[[^\[\]]+\])*)\s*~\s*([A-Za-z_]+)\s*\((.*)\)\s*$")


def takes(cls: str) -> tuple[str, ...]:
    """The distributions a class takes (by the supports in _TAKES)."""
    return tuple(n for n, d in DISTS.items() if d.support in _TAKES[CLASSES[cls].support])


@dataclass(frozen=True)
class Dist:
    """One distribution with its arguments in the order of DISTS (e.g. student_t: nu, mu, sigma)."""

    name: str
    args: tuple[float, ...]

    @property
    def code(self) -> int:
        return DISTS[self.name].code

    @property
    def support(self) -> str:
        return DISTS[self.name].support

    def padded(self) -> list[float]:
        """Arguments padded to three numbers (the engines' fixed-width parameter rows)."""
        return list(self.args) + [0.0] * (3 - len(self.args))

    def bounds(self) -> tuple[float, float]:
        """The support this prior gives a positive parameter: its interval for a uniform, else (0, inf)."""
        return (self.args[0], self.args[1]) if self.name == "uniform" else (0.0, math.inf)

    def __str__(self) -> str:
        return f"{self.name}({', '.join(f'{a:g}' for a in self.args)})"


@dataclass(frozen=True)
class Prior:
    cls: str
    dist: Dist
    target: tuple[str, ...] = ()  # ("x",) for b[x]; ("g", "x") for sd[g][x]; () for the whole class

    @property
    def label(self) -> str:
        """`b[x]`, `sd[g][x]`, `sigma`: what the prior is on, as a prior string writes it."""
        return self.cls + "".join(f"[{t}]" for t in self.target)

    def __str__(self) -> str:
        return f"{self.label} ~ {self.dist}"


def parse_prior(text: str) -> Prior:
    """`"sd ~ cauchy(0, 1)"`, `"b[x] ~ normal(0, 1)"` -> Prior; InputError (one line) for anything else."""
    m = _PRIOR.match(text)
    if not m:
        raise InputError(f"prior {text!r}: expected 'class ~ distribution(args)', e.g. 'b ~ normal(0, 4)'")
    cls, brackets, name, arg_text = m.groups()
    target = tuple(t.strip() for t in re.findall(r"\[([^\[\]]+)\]", brackets))
    if cls not in CLASSES:
        raise InputError(f"prior {text!r}: unknown class {cls!r} (known: {', '.join(CLASSES)})")
    if target and len(target) != CLASSES[cls].targets:
        raise InputError(f"prior {text!r}: coefficient priors are b[term] and sd[group][term]")
    if name not in DISTS:
        raise InputError(f"prior {text!r}: unknown distribution {name!r} (known: {', '.join(DISTS)})")
    if name not in takes(cls):
        raise InputError(f"prior {text!r}: class {cls!r} takes {', '.join(takes(cls))}, not {name!r}")
    args = _parse_args(text, arg_text)
    _check_args(text, name, args)
    prior = Prior(cls, Dist(name, args), target)
    if CLASSES[cls].support == "positive":
        _check_positive(prior, text)
    return prior


def _parse_args(text: str, arg_text: str) -> tuple[float, ...]:
    if not arg_text.strip():
        return ()
    try:
        return tuple(float(a) for a in arg_text.split(","))
    except ValueError:
        raise InputError(f"prior {text!r}: arguments must be numbers") from None


def _check_args(text: str, name: str, args: tuple[float, ...]) -> None:
    want = DISTS[name].args
    if len(args) != len(want):
        raise InputError(f"prior {text!r}: {name} takes {len(want)} arguments ({', '.join(want)}), got {len(args)}")
    if not all(math.isfinite(a) for a in args):
        raise InputError(f"prior {text!r}: arguments must be finite")
    positive = [n for n in want if n not in _FREE_ARGS]
    if any(a <= 0 for n, a in zip(want, args) if n in positive):
        raise InputError(f"prior {text!r}: {', '.join(positive)} must be positive")
    if name == "uniform" and not args[0] < args[1]:
        raise InputError(f"prior {text!r}: uniform(lower, upper) needs lower < upper")


def _check_positive(prior: Prior, text: str) -> None:
    """A prior on a positive parameter (an SD, sigma) must live on positive support: a real distribution is
    its half distribution, centred at 0 (brms's usual use; a shifted truncation is not supported), and a
    uniform's interval must not reach below 0."""
    d = prior.dist
    if d.support == "real" and d.args[-2] != 0:
        raise InputError(f"prior {text!r}: {prior.cls} priors are half distributions and must be centred at 0")
    if d.name == "uniform" and d.args[0] < 0:
        raise InputError(
            f"prior {text!r}: {prior.cls} is positive, and uniform({d.args[0]:g}, {d.args[1]:g}) has negative support"
        )


@dataclass(frozen=True)
class PriorSpec:
    """What the user asked for: per class (by CLASSES key; absent = the default) and per coefficient.

    `terms` are priors on single coefficients, keyed by (class key, target): ("b", ("x",)) for b[x],
    `b[Intercept]` among them meaning the intercept on the data's own scale (hbench's b[Intercept]; the class
    `Intercept` is brms's intercept of centred predictors), ("sd", ("g", "x")) for sd[g][x].  The attributes
    `spec.b`, `spec.sd`, ... read the class-level priors by key."""

    given: tuple[tuple[str, Dist], ...] = ()
    terms: tuple[tuple[tuple[str, tuple[str, ...]], Dist], ...] = ()

    def __getattr__(self, key: str) -> Dist | None:
        if key in _BY_KEY:
            return dict(self.given).get(key)
        raise AttributeError(key)

    def of(self, key: str) -> tuple[tuple[tuple[str, ...], Dist], ...]:
        """The coefficient priors of one class key, (target, dist) each."""
        return tuple((t, d) for (k, t), d in self.terms if k == key)

    @property
    def b_terms(self) -> tuple[tuple[str, Dist], ...]:
        return tuple((t[0], d) for t, d in self.of("b"))

    @property
    def sd_terms(self) -> tuple[tuple[tuple[str, str], Dist], ...]:
        return tuple(((t[0], t[1]), d) for t, d in self.of("sd"))

    def priors(self) -> list[Prior]:
        """Every prior asked for, class-level ones first."""
        out = [Prior(_BY_KEY[k], d) for k, d in self.given]
        return out + [Prior(_BY_KEY[k], d, t) for (k, t), d in self.terms]

    @property
    def separate(self) -> bool:
        """brms's covariance form (half priors on SDs + LKJ) rather than rstanarm's decov."""
        return self.sd is not None or self.cor is not None or bool(self.sd_terms)


def parse_priors(texts: list[str] | tuple[str, ...] | None) -> PriorSpec:
    """Prior strings -> PriorSpec; a class or coefficient given twice, or decov mixed with sd/cor, is an
    InputError."""
    given: dict[str, Dist] = {}
    terms: dict[tuple[str, tuple[str, ...]], Dist] = {}
    for text in texts or ():
        prior = parse_prior(text)
        key = CLASSES[prior.cls].key
        if prior.target:
            if (key, prior.target) in terms:
                raise InputError(f"prior {text!r}: {prior.label} given twice")
            terms[(key, prior.target)] = prior.dist
            continue
        if key in given:
            raise InputError(f"prior {text!r}: class {prior.cls!r} given twice")
        given[key] = prior.dist
    if ("intercept" in given) and ("b", ("Intercept",)) in terms:
        raise InputError(
            "priors: give the intercept's prior once: 'Intercept' (centred predictors) or "
            "'b[Intercept]' (the data's scale), not both"
        )
    spec = PriorSpec(tuple(given.items()), tuple(terms.items()))
    if spec.cov is not None and spec.separate:
        raise InputError("priors: 'cov ~ decov(...)' cannot be combined with 'sd' or 'cor' priors")
    return spec


def example(cls: str, dist: str, target: tuple[str, ...] = ()) -> Prior:
    """A valid prior of a class and distribution (arguments 0 where free, 1 otherwise; uniform(0, 1)), for
    listing what an engine accepts."""
    args = tuple(0.0 if a in _FREE_ARGS else 1.0 for a in DISTS[dist].args)
    return Prior(cls, Dist(dist, (0.0, 1.0) if dist == "uniform" else args), target)


def accepted(check) -> dict[str, list[str]]:
    """What an engine accepts, class by class (b, b[x], sd, sd[g][x], ...): the distributions whose example
    prior its `check(spec, None)` lets through (None: an engine that takes all the grammar)."""
    out = {}
    for cls, info in CLASSES.items():
        targets = [()] + ([("x",) if info.targets == 1 else ("g", "x")] if info.targets else [])
        for target in targets:
            label = cls + "".join(f"[{t}]" for t in target)
            ok = []
            for dist in takes(cls):
                try:
                    if check is not None:
                        check(parse_priors([str(example(cls, dist, target))]), None)
                    ok.append(dist)
                except InputError:
                    pass
            out[label] = ok
    return out


@dataclass(frozen=True)
class Layout:
    """What of a model a prior can be on (known before any data is simulated or read): the family, the
    fixed-effect names (x_names, `Intercept` among them when there is one), the group-level terms (group,
    term) in the engines' order, whether some block has correlations, and whether the model has a residual SD
    (gaussian, unless known SEs `y | se(s)` replace it)."""

    family: str
    x_names: tuple[str, ...]
    terms: tuple[tuple[str, str], ...]
    correlated: bool
    has_sigma: bool | None = None  # None: as the family says

    @classmethod
    def of(cls, design, family: str) -> Layout:
        """The layout of a compare.design.Design."""
        terms = tuple((b.group, t) for b in design.blocks for t in b.names)
        from compare.formula import has_sigma

        corr = any(bool(b.block.correlated) and len(b.names) > 1 for b in design.blocks)
        return cls(family, tuple(design.x_names), terms, corr, has_sigma(design.formula, family))

    @property
    def free(self) -> tuple[str, ...]:
        return tuple(n for n in self.x_names if n != "Intercept")


def check_model(spec: PriorSpec, layout: Layout) -> None:
    """InputError (one line) for a prior on one coefficient or SD the model does not have (b[w] without a
    predictor w, sd[h][x] without that term): every engine refuses it rather than ignore it. A class-level prior
    on a class the model has no parameter of (sigma of a binomial model, cor without correlations) applies to
    nothing, in every engine alike: `vacuous` lists those, and fits note them."""
    for p in spec.priors():
        why = _absent(p, layout)
        if why and p.target:
            raise InputError(f"prior '{p}': {why}")


def vacuous(spec: PriorSpec, layout: Layout) -> list[Prior]:
    """The class-level priors that have no parameter to apply to in this model."""
    return [p for p in spec.priors() if not p.target and _absent(p, layout)]


def effective(spec: PriorSpec, layout: Layout) -> PriorSpec:
    """The request without its vacuous priors: what every engine is given for this model."""
    gone = {CLASSES[p.cls].key for p in vacuous(spec, layout)}
    return PriorSpec(tuple((k, d) for k, d in spec.given if k not in gone), spec.terms)


def _absent(p: Prior, layout: Layout) -> str:
    """Why the model has nothing for prior p to be on ('' when it has)."""
    if p.cls == "b" and p.target:
        known = list(layout.x_names)
        if p.target[0] not in known:
            return f"the model has no such coefficient (it has: {', '.join(f'b[{k}]' for k in known) or 'none'})"
    elif p.cls == "b" and not layout.free:
        return "the model has no fixed effects besides the intercept"
    if p.cls == "Intercept" and "Intercept" not in layout.x_names:
        return "the model has no intercept"
    families = CLASSES[p.cls].families
    if families is not None and layout.family not in families:
        return f"a {layout.family} model has no {p.cls}"
    if p.cls == "sigma" and layout.has_sigma is False:
        return "known SEs alone (y | se(s)) leave the model no residual SD"
    if p.cls in ("sd", "cov") and not layout.terms:
        return "the model has no group-level terms"
    if p.cls == "sd" and p.target and tuple(p.target) not in layout.terms:
        sds = ", ".join(f"sd[{g}][{t}]" for g, t in layout.terms)
        return f"the model has no such group-level SD (it has: {sds})"
    if p.cls == "cor" and not layout.correlated:
        return "the model has no correlated group-level terms"
    return ""


def _four(values: Any) -> tuple[float, float, float, float]:
    a, b, c, d = (float(v) for v in values)
    return a, b, c, d


@dataclass
class ResolvedPriors:
    """Numbers for one dataset: every prior with its data-dependent scales filled in.

    Codes are DISTS codes, one per coefficient or SD term (a class may mix families); parameter rows are
    padded to three numbers; a positive parameter's bounds are (0, inf) unless its prior is uniform.
    """

    b_codes: np.ndarray  # (P0,) int, one per non-intercept coefficient
    b_par: np.ndarray  # (P0, 3)
    int_code: int
    int_par: np.ndarray  # (3,)
    sigma_code: int
    sigma_par: np.ndarray  # (3,)
    sigma_bounds: tuple[float, float]
    separate: bool
    sd_codes: np.ndarray  # (Q,) int, one per group-level term (separate form)
    sd_par: np.ndarray  # (Q, 3)
    sd_bounds: np.ndarray  # (Q, 2): lower, upper
    lkj_eta: float
    decov: tuple[float, float, float, float]  # regularization, concentration, shape, scale
    text: list[str] = field(default_factory=list)  # human-readable summary for notes
    int_uncentred: bool = False  # the intercept prior is on b[Intercept] = alpha - xbar . beta (data scale)
    used: list[str] = field(default_factory=list)  # every prior as a prior string, defaults filled in
    phi_code: int = 4  # negbinomial's dispersion: DISTS code and arguments (default exponential(1))
    phi_par: np.ndarray = field(default_factory=lambda: np.array([1.0, 0.0, 0.0]))

    @property
    def b_code(self) -> int:
        """The coefficients' family code when they share one (0 when they mix or there are none)."""
        return _shared(self.b_codes)

    @property
    def sd_code(self) -> int:
        return _shared(self.sd_codes)

    def key(self) -> tuple:
        """The structure a compiled graph depends on (families, bounds kinds); scales are data."""
        return (
            tuple(int(c) for c in self.b_codes),
            self.int_code,
            self.sigma_code,
            self.separate,
            tuple(int(c) for c in self.sd_codes),
            self.lkj_eta,
            self.decov,
            self.int_uncentred,
            self.phi_code,
        )


def _shared(codes: np.ndarray) -> int:
    kinds = {int(c) for c in codes}
    return kinds.pop() if len(kinds) == 1 else 0


def _predictor_scale(x: np.ndarray) -> float:
    """rstanarm's autoscale divisor: the predictor's SD (binary ones too, as rstanarm 2.21's prior_summary
    shows: normal(0, 2.5) becomes normal(0, 4.9) for the funding data's 0/1 `male`); 1 for a constant."""
    if np.unique(x).size <= 1:
        return 1.0
    return float(np.std(x, ddof=1))


def response_scale(family: str, y: np.ndarray) -> float:
    """rstanarm's s_y: sd(y) for a gaussian model, 1 otherwise (and 1 where sd(y) is 0 or undefined)."""
    sy = float(np.std(y, ddof=1)) if family == "gaussian" and len(y) > 1 else 1.0
    return sy if sy > 0 and math.isfinite(sy) else 1.0


def default_b(sy: float, x: np.ndarray) -> Dist:
    """rstanarm's autoscaled default prior of one coefficient with predictor column x."""
    return Dist("normal", (0.0, 2.5 * sy / _predictor_scale(x)))


def resolve(
    spec: PriorSpec,
    family: str,
    y: np.ndarray,
    X_free: np.ndarray,
    free_names: list[str],
    terms: list[tuple[str, str]],
    has_sigma: bool | None = None,
) -> ResolvedPriors:
    """Fill rstanarm's autoscaled defaults for one dataset (X_free: fixed predictors without the intercept,
    named `free_names`; `terms`: (group, term) of every group-level SD, in the engines' order; `has_sigma`:
    whether the model has a residual SD, by default when gaussian)."""
    gaussian = family == "gaussian"
    sy = response_scale(family, y)
    b_given, sd_given = dict(spec.b_terms), dict(spec.sd_terms)
    _check_names("b", [t for t in b_given if t != "Intercept"], free_names)
    _check_names("sd", [f"{g}][{t}" for g, t in sd_given], [f"{g}][{t}" for g, t in terms])
    b_dists = [b_given.get(n) or spec.b or default_b(sy, X_free[:, k]) for k, n in enumerate(free_names)]
    uncentred = "Intercept" in b_given
    intercept = (
        b_given.get("Intercept") or spec.intercept or Dist("normal", (float(np.mean(y)) if gaussian else 0.0, 2.5 * sy))
    )
    sigma = spec.sigma or Dist("exponential", (1.0 / sy,))
    phi = spec.phi or Dist("exponential", (1.0,))
    sd_dists = [sd_given.get(t) or spec.sd or Dist("student_t", (3.0, 0.0, 2.5 * sy)) for t in terms]
    cor = spec.cor or Dist("lkj", (1.0,))
    decov = spec.cov.args if spec.cov is not None else (1.0, 1.0, 1.0, 1.0)
    used = [str(Prior("b", d, (n,))) for n, d in zip(free_names, b_dists)]
    used.append(str(Prior("b", intercept, ("Intercept",)) if uncentred else Prior("Intercept", intercept)))
    used += [str(Prior("sigma", sigma))] if (gaussian if has_sigma is None else has_sigma) else []
    used += [str(Prior("phi", phi))] if family == "negbinomial" else []
    if spec.separate:
        used += [str(Prior("sd", d, t)) for t, d in zip(terms, sd_dists)] + [str(Prior("cor", cor))]
    elif terms:
        used.append(str(Prior("cov", Dist("decov", _four(decov)))))
    return ResolvedPriors(
        np.array([d.code for d in b_dists], dtype=np.int64),
        np.array([d.padded() for d in b_dists], float).reshape(len(b_dists), 3),
        intercept.code,
        np.array(intercept.padded()),
        sigma.code,
        np.array(sigma.padded()),
        sigma.bounds(),
        spec.separate,
        np.array([d.code for d in sd_dists], dtype=np.int64),
        np.array([d.padded() for d in sd_dists], float).reshape(len(terms), 3),
        np.array([d.bounds() for d in sd_dists], float).reshape(len(terms), 2),
        float(cor.args[0]),
        _four(decov),
        _text(used, uncentred),
        uncentred,
        used,
        phi.code,
        np.array(phi.padded()),
    )


def _text(used: list[str], uncentred: bool) -> list[str]:
    """The notes' one line of priors (half distributions on sd and sigma, as brms)."""
    head = "priors used (sd, sigma, phi: half distributions; Intercept: centred predictors"
    return [head + ("; b[Intercept]: the data's scale" if uncentred else "") + "): " + "; ".join(used)]


def _check_names(cls: str, given: list[str], known: list[str]) -> None:
    unknown = [n for n in given if n not in known]
    if unknown:
        raise InputError(
            f"prior {cls}[{unknown[0]}]: the model has no such coefficient "
            f"(it has: {', '.join(f'{cls}[{k}]' for k in known) or 'none'})"
        )


# A scenario's prior distributions (compare.distributions) as the samplers' prior strings: what
# `priors = "scenario"` hands the samplers, so that on a dgp = "prior" cell they fit with the very priors the
# truth was drawn from and simulation-based calibration is calibrated by construction.
_REAL = {"normal": lambda p: f"normal({p['mean']!r}, {p['sd']!r})"}
_POSITIVE = {
    "halfnormal": lambda p: f"normal(0, {p['sd']!r})",
    "halfcauchy": lambda p: f"cauchy(0, {p['scale']!r})",
    "exponential": lambda p: f"exponential({p['rate']!r})",
    "gamma": lambda p: f"gamma({p['shape']!r}, {p['rate']!r})",
    "lognormal": lambda p: f"lognormal({p['meanlog']!r}, {p['sdlog']!r})",
    "uniform": lambda p: f"uniform({p['low']!r}, {p['high']!r})",
}


def from_scenario(
    priors, x_names: list[str], terms: list[tuple[str, str]], gaussian: bool, negbinomial: bool = False
) -> tuple[str, ...]:
    """Prior strings for a scenario's [priors] (compare.spec.Priors) on a model with fixed effects `x_names` and
    group-level terms `terms` ((group, term)); InputError naming the field a sampler cannot take."""
    from compare.spec import lookup

    out = [f"b[{n}] ~ {_stated(lookup(priors.b, n, 'priors.b'), _REAL, f'priors.b.{n}')}" for n in x_names]
    for g, t in terms:
        where = f"priors.sd.{g}.{t}"
        out.append(f"sd[{g}][{t}] ~ {_stated(lookup(priors.sd.get(g, {}), t, f'priors.sd.{g}'), _POSITIVE, where)}")
    etas = {float(d.params["eta"]) for d in priors.cor.values()}
    if len(etas) > 1:
        raise InputError(
            "field 'priors.cor': the samplers take one LKJ prior for every block; give each group the same eta"
        )
    if etas:
        out.append(f"cor ~ lkj({etas.pop()!r})")
    if gaussian:
        if priors.sigma is None:
            raise InputError("field 'priors.sigma': missing (a gaussian model has a residual SD)")
        out.append(f"sigma ~ {_stated(priors.sigma, _POSITIVE, 'priors.sigma')}")
    if negbinomial:
        if priors.phi is None:
            raise InputError("field 'priors.phi': missing (a negbinomial model has a dispersion phi)")
        out.append(f"phi ~ {_stated(priors.phi, _POSITIVE, 'priors.phi')}")
    return tuple(out)


def _stated(dist, table: dict, where: str) -> str:
    if dist.kind not in table:
        raise InputError(
            f"field '{where}': a {dist.kind} prior cannot be given to the samplers (they take {', '.join(table)} here)"
        )
    return table[dist.kind](dist.params)


def for_cell(setting: tuple[str, ...] | str | None, cell, design) -> tuple[str, ...]:
    """A sampler's prior strings on one scenario cell (compare.spec.CellSpec, with a Design of its data).

    `setting` is the engine's `priors`: prior strings as given; "rstanarm" (its defaults: no strings);
    "scenario" (the cell's [priors]); unset (None): the scenario's on a dgp = "prior" cell, so that
    simulation-based calibration is calibrated by construction there, and rstanarm's elsewhere."""
    if isinstance(setting, tuple):
        return setting
    wanted = setting or ("scenario" if cell.dgp == "prior" else "rstanarm")
    if wanted == "rstanarm":
        return ()
    if cell.priors is None:
        raise InputError(f'priors = "scenario": scenario {cell.scenario} has no [priors] table')
    terms = [(b.group, t) for b in design.blocks for t in b.names]
    from compare.formula import has_sigma  # known SEs alone (`y | se(s)`): a gaussian model without sigma

    return from_scenario(
        cell.priors, design.x_names, terms, has_sigma(cell.formula, cell.family), cell.family == "negbinomial"
    )
