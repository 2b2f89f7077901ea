"""brms-style prior strings and rstanarm's default priors, resolved to numbers both Bayesian engines use.

A prior string is `class ~ dist(args)`, e.g. `b ~ normal(0, 4)`, `Intercept ~ normal(0, 4)`,
`sd ~ cauchy(0, 1)`, `cor ~ lkj(4)`, `sigma ~ exponential(0.1)`, `cov ~ decov(1, 1, 1, 1)`.
Meaning follows brms: `Intercept` is the intercept *after centring the fixed-effect predictors*
(brms and rstanarm both do this), `sd` and `sigma` priors are half distributions (truncated at 0),
`cor` is the LKJ prior on each block's correlation matrix, `phi` the prior on negbinomial's dispersion (NB2:
variance mu + mu^2 / phi; a half distribution like sigma's; brms's class `shape`, rstanarm's prior_aux).

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
from typing import Any

import numpy as np

from compare.errors import InputError

# distribution -> (engine code, number of arguments, argument names)
DISTS: dict[str, tuple[int, tuple[str, ...]]] = {
    "normal": (1, ("mu", "sigma")),
    "student_t": (2, ("nu", "mu", "sigma")),
    "cauchy": (3, ("mu", "sigma")),
    "exponential": (4, ("rate",)),
    "gamma": (5, ("shape", "rate")),
    "lkj": (6, ("eta",)),
    "decov": (7, ("regularization", "concentration", "shape", "scale")),
}
CLASSES: dict[str, tuple[str, ...]] = {
    "b": ("normal", "student_t", "cauchy"),
    "Intercept": ("normal", "student_t", "cauchy"),
    "sd": ("normal", "student_t", "cauchy", "exponential", "gamma"),
    "sigma": ("normal", "student_t", "cauchy", "exponential", "gamma"),
    "phi": ("normal", "student_t", "cauchy", "exponential", "gamma"),
    "cor": ("lkj",),
    "cov": ("decov",),
}
_PRIOR = re.compile(r"^\s*([A-Za-z_]+)((?:\[[^\[\]]+\])*)\s*~\s*([A-Za-z_]+)\s*\((.*)\)\s*$")
# how many [..] a class takes when the prior is for one coefficient: b[x] (uncentred b[Intercept] too), sd[g][x]
_TARGETS = {"b": 1, "sd": 2}


@dataclass(frozen=True)
class Dist:
    """One distribution with its arguments in the order of DISTS (e.g. student_t: nu, mu, sigma)."""

    name: str
    args: tuple[float, ...]

    @property
    def code(self) -> int:
        return DISTS[self.name][0]

    def padded(self) -> list[float]:
        """Arguments padded to three numbers (the engines' fixed-width parameter rows)."""
        return list(self.args) + [0.0] * (3 - len(self.args))

    def __str__(self) -> str:
        return f"{self.name}({', '.join(f'{a:g}' for a in self.args)})"


@dataclass(frozen=True)
class Prior:
    cls: str
    dist: Dist
    target: tuple[str, ...] = ()  # ("x",) for b[x]; ("g", "x") for sd[g][x]; () for the whole class


def parse_prior(text: str) -> Prior:
    """`"sd ~ cauchy(0, 1)"`, `"b[x] ~ normal(0, 1)"` -> Prior; InputError (one line) for anything else."""
    m = _PRIOR.match(text)
    if not m:
        raise InputError(f"prior {text!r}: expected 'class ~ distribution(args)', e.g. 'b ~ normal(0, 4)'")
    cls, brackets, name, arg_text = m.groups()
    target = tuple(t.strip() for t in re.findall(r"\[([^\[\]]+)\]", brackets))
    if cls not in CLASSES:
        raise InputError(f"prior {text!r}: unknown class {cls!r} (known: {', '.join(CLASSES)})")
    if target and len(target) != _TARGETS.get(cls, -1):
        raise InputError(f"prior {text!r}: coefficient priors are b[term] and sd[group][term]")
    if name not in DISTS:
        raise InputError(f"prior {text!r}: unknown distribution {name!r} (known: {', '.join(DISTS)})")
    if name not in CLASSES[cls]:
        raise InputError(f"prior {text!r}: class {cls!r} takes {', '.join(CLASSES[cls])}, not {name!r}")
    args = _parse_args(text, arg_text)
    _check_args(text, name, args)
    return Prior(cls, Dist(name, args), target)


def _parse_args(text: str, arg_text: str) -> tuple[float, ...]:
    if not arg_text.strip():
        return ()
    try:
        return tuple(float(a) for a in arg_text.split(","))
    except ValueError:
        raise InputError(f"prior {text!r}: arguments must be numbers") from None


def _check_args(text: str, name: str, args: tuple[float, ...]) -> None:
    want = DISTS[name][1]
    if len(args) != len(want):
        raise InputError(f"prior {text!r}: {name} takes {len(want)} arguments ({', '.join(want)}), got {len(args)}")
    if not all(math.isfinite(a) for a in args):
        raise InputError(f"prior {text!r}: arguments must be finite")
    positive = [a for n, a in zip(want, args) if n not in ("mu",)]
    if any(a <= 0 for a in positive):
        raise InputError(f"prior {text!r}: {', '.join(n for n in want if n != 'mu')} must be positive")


def _check_half(prior: Prior, text: str) -> None:
    """Half priors are centred at 0 (brms's usual use); a shifted truncation is not supported."""
    if prior.dist.name in ("normal", "student_t", "cauchy") and prior.dist.args[-2] != 0:
        raise InputError(f"prior {text!r}: {prior.cls} priors are half distributions and must be centred at 0")


@dataclass(frozen=True)
class PriorSpec:
    """What the user asked for, per class (None = the rstanarm default), and per coefficient where given.

    `b_terms` are priors on single fixed effects, `b[Intercept]` among them meaning the intercept on the
    data's own scale (hbench's b[Intercept]; the class `Intercept` is brms's intercept of centred predictors);
    `sd_terms` are priors on single group-level SDs, keyed by (group, term)."""

    b: Dist | None = None
    intercept: Dist | None = None
    sd: Dist | None = None
    cor: Dist | None = None
    sigma: Dist | None = None
    cov: Dist | None = None
    phi: Dist | None = None
    b_terms: tuple[tuple[str, Dist], ...] = ()
    sd_terms: tuple[tuple[tuple[str, str], Dist], ...] = ()

    @property
    def separate(self) -> bool:
        """brms's covariance form (half priors on SDs + LKJ) rather than rstanarm's decov."""
        return self.sd is not None or self.cor is not None or bool(self.sd_terms)


_FIELD = {"b": "b", "Intercept": "intercept", "sd": "sd", "cor": "cor", "sigma": "sigma", "cov": "cov", "phi": "phi"}


def parse_priors(texts: list[str] | tuple[str, ...] | None) -> PriorSpec:
    """Prior strings -> PriorSpec; a class or coefficient given twice, or decov mixed with sd/cor, is an
    InputError."""
    given: dict[str, Dist] = {}
    terms: dict[tuple[str, tuple[str, ...]], Dist] = {}
    for text in texts or ():
        prior = parse_prior(text)
        if prior.cls in ("sd", "sigma", "phi"):
            _check_half(prior, text)
        key = _FIELD[prior.cls]
        if prior.target:
            if (key, prior.target) in terms:
                raise InputError(f"prior {text!r}: {prior.cls}[{']['.join(prior.target)}] given twice")
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
    spec = PriorSpec(
        **given,
        b_terms=tuple((t[0], d) for (k, t), d in terms.items() if k == "b"),
        sd_terms=tuple(((t[0], t[1]), d) for (k, t), d in terms.items() if k == "sd"),
    )
    if spec.cov is not None and spec.separate:
        raise InputError("priors: 'cov ~ decov(...)' cannot be combined with 'sd' or 'cor' priors")
    return spec


def _four(values: Any) -> tuple[float, float, float, float]:
    a, b, c, d = (float(v) for v in values)
    return a, b, c, d


@dataclass
class ResolvedPriors:
    """Numbers for one dataset: every prior with its data-dependent scales filled in.

    Codes are DISTS codes; parameter rows are padded to three numbers.
    """

    b_code: int
    b_par: np.ndarray  # (P0, 3), one row per non-intercept coefficient
    int_code: int
    int_par: np.ndarray  # (3,)
    sigma_code: int
    sigma_par: np.ndarray  # (3,)
    separate: bool
    sd_code: int
    sd_par: np.ndarray  # (Q, 3), one row per group-level term (separate form)
    lkj_eta: float
    decov: tuple[float, float, float, float]  # regularization, concentration, shape, scale
    text: list[str] = field(default_factory=list)  # human-readable summary for notes
    int_uncentred: bool = False  # the intercept prior is on b[Intercept] = alpha - xbar . beta (data scale)
    phi_code: int = 4  # negbinomial's dispersion: DISTS code and arguments (default exponential(1))
    phi_par: np.ndarray = field(default_factory=lambda: np.array([1.0, 0.0, 0.0]))


def _predictor_scale(x: np.ndarray) -> float:
    """rstanarm's autoscale divisor: the predictor's SD (binary ones too, as rstanarm 2.21's prior_summary
    shows: normal(0, 2.5) becomes normal(0, 4.9) for the funding data's 0/1 `male`); 1 for a constant."""
    if np.unique(x).size <= 1:
        return 1.0
    return float(np.std(x, ddof=1))


def _one_family(cls: str, dists: list[Dist]) -> int:
    """The engines take one distribution family per class (parameters may differ per coefficient)."""
    names = sorted({d.name for d in dists})
    if len(names) > 1:
        raise InputError(
            f"priors: the {cls} priors mix {' and '.join(names)}; both samplers take one family "
            f"per class (give every {cls} the same family)"
        )
    return dists[0].code if dists else 1


def resolve(
    spec: PriorSpec, family: str, y: np.ndarray, X_free: np.ndarray, free_names: list[str], terms: list[tuple[str, str]]
) -> ResolvedPriors:
    """Fill rstanarm's autoscaled defaults for one dataset (X_free: fixed predictors without the intercept,
    named `free_names`; `terms`: (group, term) of every group-level SD, in the engines' order)."""
    gaussian = family == "gaussian"
    sy = float(np.std(y, ddof=1)) if gaussian and len(y) > 1 else 1.0
    sy = sy if sy > 0 and math.isfinite(sy) else 1.0
    b_given, sd_given = dict(spec.b_terms), dict(spec.sd_terms)
    _check_names("b", [t for t in b_given if t != "Intercept"], free_names)
    _check_names("sd", [f"{g}][{t}" for g, t in sd_given], [f"{g}][{t}" for g, t in terms])
    b_dists = [
        b_given.get(n) or spec.b or Dist("normal", (0.0, 2.5 * sy / _predictor_scale(X_free[:, k])))
        for k, n in enumerate(free_names)
    ]
    uncentred = "Intercept" in b_given
    intercept = (
        b_given.get("Intercept") or spec.intercept or Dist("normal", (float(np.mean(y)) if gaussian else 0.0, 2.5 * sy))
    )
    sigma = spec.sigma or Dist("exponential", (1.0 / sy,))
    phi = spec.phi or Dist("exponential", (1.0,))
    sd_dists = [sd_given.get(t) or spec.sd or Dist("student_t", (3.0, 0.0, 2.5 * sy)) for t in terms]
    cor = spec.cor or Dist("lkj", (1.0,))
    decov = spec.cov.args if spec.cov is not None else (1.0, 1.0, 1.0, 1.0)
    b_code, sd_code = _one_family("b", b_dists), _one_family("sd", sd_dists)
    text = [
        ("b ~ " + ", ".join(f"{n}: {d}" for n, d in zip(free_names, b_dists))) if b_dists else "no slopes",
        f"{'b[Intercept] (data scale)' if uncentred else 'Intercept (centred)'} ~ {intercept}",
    ]
    if gaussian:
        text.append(f"sigma ~ {sigma}")
    if family == "negbinomial":
        text.append(f"phi ~ {phi} (half)")
    text.append(
        ("sd ~ half " + ", ".join(f"{g}/{t}: {d}" for (g, t), d in zip(terms, sd_dists)) + f"; cor ~ {cor}")
        if spec.separate
        else f"cov ~ decov{tuple(decov)}"
    )
    return ResolvedPriors(
        b_code,
        np.array([d.padded() for d in b_dists], float).reshape(len(b_dists), 3),
        intercept.code,
        np.array(intercept.padded()),
        sigma.code,
        np.array(sigma.padded()),
        spec.separate,
        sd_code,
        np.array([d.padded() for d in sd_dists], float).reshape(len(terms), 3),
        float(cor.args[0]),
        _four(decov),
        text,
        uncentred,
        phi.code,
        np.array(phi.padded()),
    )


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
