"""Engine `rstanarm`: rstanarm::stan_glmer through rpy2 (compare.estimators._r), the seed lecture's own tool.

rstanarm's models are precompiled (no compile step). It runs with its own defaults: its default priors
(autoscaled normal on coefficients and intercept, exponential on sigma, decov(1, 1, 1, 1) on each covariance
matrix), adapt_delta 0.95 and max_treedepth 15. The posterior draws come back per chain (as.array) and every
summary (means, quantiles, R-hat/ESS, LOO, pred_new, SBC draws) is computed by compare.estimators._bayes,
as for `stan` and `pymc`; divergences, tree-depth hits and E-BFMI come from rstan's sampler parameters.

Prior strings (brms style, compare.priors) are translated where rstanarm can express them, all with autoscale =
FALSE (hbench's prior strings are on the data's scale): `b` and `b[x]` -> `prior` with one location/scale (and
df) per coefficient, the coefficients without a prior of the user's getting rstanarm's autoscaled default
normal(0, 2.5 sd(y) / sd(x)) as numbers; `Intercept` -> prior_intercept (`b[Intercept]` too when the model has no
other fixed effect: the centred intercept is then the intercept); `sigma` -> prior_aux (half distributions in
rstanarm too); `phi` -> prior_aux of neg_binomial_2 (its reciprocal_dispersion is NB2's phi; rstanarm's default
there is exponential(1)); `cov ~ decov(...)` -> prior_covariance.  What stan_glmer cannot express is refused before
anything runs, one line naming the prior and why: separate `sd`/`cor` priors (decov only), gamma, uniform,
inv_gamma and lognormal on sigma or phi, a mix of families across the coefficients (one family with vectors), and
`b[Intercept]` (data scale) beside other fixed effects.  Each fit records the priors rstanarm's prior_summary(fit)
reports (`details["priors"]`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from compare.data import FitData
from compare.errors import InputError
from compare.estimators import _bayes, _r, _rbayes
from compare.fitresult import FitResult
from compare.priors import DISTS, Dist, Layout, Prior, PriorSpec
from compare.settings import Settings, setting

R_CODE = "rstanarm.R"  # compare/estimators/R/rstanarm.R (which imports rstan_sampler.R)


# rstanarm's prior functions and the names of their arguments, in hbench's prior-string order
PRIOR_ARGS = {
    "normal": ("location", "scale"),
    "student_t": ("df", "location", "scale"),
    "cauchy": ("location", "scale"),
    "exponential": ("rate",),
    "decov": ("regularization", "concentration", "shape", "scale"),
}
B_FAMILIES = ("normal", "student_t", "cauchy")  # prior / prior_intercept (the grammar allows no others on b)
AUX_FAMILIES = ("normal", "student_t", "cauchy", "exponential")  # prior_aux: half distributions for sigma

# (an rstanarm prior function's name, its named arguments): passed to R as values, called there by name
RPrior = tuple[str, dict[str, float | bool | tuple[float, ...]]]


def refusal(p: Prior, layout: Layout | None) -> str:
    """Why stan_glmer cannot express prior p ('' when it can); without a layout, what is known from the
    string alone."""
    if p.cls in ("sd", "cor"):
        return (
            "stan_glmer's only covariance prior is decov (rstanarm's lkj() is for stan_mvmer/stan_jm): give "
            "'cov ~ decov(regularization, concentration, shape, scale)' or use brms"
        )
    if p.cls in ("sigma", "phi") and p.dist.name not in AUX_FAMILIES:
        return f"prior_aux takes {', '.join(AUX_FAMILIES)} (half distributions for {p.cls}), not {p.dist.name}"
    if layout is not None and p.label == "b[Intercept]" and layout.free:
        return (
            "stan_glmer's prior_intercept is on the intercept of centred predictors, not on the data's scale "
            "(write 'Intercept ~ ...')"
        )
    return ""


def check(spec: PriorSpec, layout: Layout | None) -> None:
    """InputError (one line, naming rstanarm and the prior) for what stan_glmer cannot express."""
    for p in spec.priors():
        why = refusal(p, layout)
        if why:
            raise InputError(f"rstanarm: prior '{p}': {why}")
    if layout is not None and _b_given(spec):
        _one_family(spec, layout)


def _b_given(spec: PriorSpec) -> bool:
    """Whether the slopes get priors of the user's (then every coefficient's prior goes to rstanarm as vectors)."""
    return spec.b is not None or any(t != "Intercept" for t, _ in spec.b_terms)


def _one_family(spec: PriorSpec, layout: Layout) -> None:
    """stan_glmer's `prior` is one family with location/scale (and df) vectors: a mix is refused."""
    given = dict(spec.b_terms)
    family = {n: (given.get(n) or spec.b or Dist("normal", (0.0, 1.0))).name for n in layout.free}
    kinds = sorted(set(family.values()))
    if len(kinds) > 1:
        parts = [f"{k} on {', '.join(f'b[{n}]' for n, f in family.items() if f == k)}" for k in kinds]
        raise InputError(
            f"rstanarm: the b priors mix {' and '.join(parts)} (unset coefficients keep rstanarm's normal): "
            "stan_glmer takes one family for all coefficients; give every coefficient the same family"
        )


def _prior(d: Dist, autoscale: bool | None = False) -> RPrior:
    """rstanarm's call for a parsed distribution, on the data's scale: autoscale = FALSE where the function has
    that argument."""
    args: dict[str, float | bool | tuple[float, ...]] = {
        k: float(v) for k, v in zip(PRIOR_ARGS[d.name], d.args, strict=True)
    }
    if autoscale is not None:
        args["autoscale"] = autoscale
    return d.name, args


def _vector_prior(md: _bayes.ModelData) -> RPrior:
    """`prior` for every coefficient (user's priors and rstanarm's autoscaled defaults, as hbench resolved them
    for this dataset): one family, per-coefficient vectors, autoscale = FALSE."""
    name = next(n for n, d in DISTS.items() if d.code == md.priors.b_code)
    par = md.priors.b_par
    args: dict[str, float | bool | tuple[float, ...]] = {
        a: tuple(float(v) for v in par[:, k]) for k, a in enumerate(PRIOR_ARGS[name])
    }
    args["autoscale"] = False
    return name, args


def rstanarm_priors(spec: PriorSpec, md: _bayes.ModelData) -> dict[str, RPrior]:
    """stan_glmer's prior arguments (an rstanarm prior function and its arguments each) for parsed prior
    strings already checked by `check`. Classes not given keep rstanarm's defaults."""
    out = {}
    if _b_given(spec) and md.Xc.shape[1]:
        out["prior"] = _vector_prior(md)
    intercept = spec.intercept or dict(spec.b_terms).get("Intercept")
    if intercept is not None:
        out["prior_intercept"] = _prior(intercept)
    if spec.sigma is not None:
        out["prior_aux"] = _prior(spec.sigma)
    if spec.phi is not None:  # prior_aux of a negbinomial fit (fit_rstanarm picks the one the family has)
        out["prior_aux_phi"] = _prior(spec.phi)
    if spec.cov is not None:
        out["prior_covariance"] = _prior(spec.cov, autoscale=None)  # decov has no autoscale
    return out


def _r_priors(priors: dict[str, RPrior]):
    """The priors as the R list fit_rstanarm takes: by argument, list(fun = ..., args = list(...))."""
    return _r.named_list({a: {"fun": fun, "args": args} for a, (fun, args) in priors.items()})


def read_back(summary: Any, fixef: list[str], family: str) -> list[str]:
    """The priors a fit used, from rstanarm's own prior_summary(fit) (after its autoscaling: the adjusted scale
    where there is one), as prior strings: b[x] per coefficient, Intercept (centred), sigma or phi (prior_aux of
    the gaussian or negbinomial family), cov."""
    parts = dict(_r.items(summary))
    out = []
    if not _r.is_null(parts.get("prior")):
        free = [n for n in fixef if n != "(Intercept)"]
        out += [f"b[{_r.term(n)}] ~ {d}" for n, d in zip(free, _dists(parts["prior"], len(free)), strict=True)]
    if not _r.is_null(parts.get("prior_intercept")):
        out.append(f"Intercept ~ {_dists(parts['prior_intercept'], 1)[0]}")
    aux = {"gaussian": "sigma", "negbinomial": "phi"}.get(family)
    if aux and not _r.is_null(parts.get("prior_aux")):
        out.append(f"{aux} ~ {_dists(parts['prior_aux'], 1)[0]}")
    cov = dict(_r.items(parts.get("prior_covariance")))
    if cov:
        out.append(f"cov ~ {Dist('decov', tuple(_r.num(cov[a]) for a in PRIOR_ARGS['decov']))}")
    return out


def _dists(entry: Any, n: int) -> list[Dist]:
    """n distributions from one prior_summary entry (dist, location, scale, adjusted_scale, df, rate)."""
    e: dict[str, Any] = {
        k: None if _r.is_null(v) else np.broadcast_to(np.asarray(v, float).ravel(), (n,))
        for k, v in _r.items(entry)
        if k not in ("dist", "aux_name")
    }
    name = str(np.atleast_1d(dict(_r.items(entry))["dist"])[0])
    scale: Any = e.get("adjusted_scale") if e.get("adjusted_scale") is not None else e.get("scale")
    if name == "exponential":  # autoscaling divides the rate: rstanarm keeps 1 / rate as the adjusted scale
        rate = 1.0 / scale if scale is not None else e["rate"]
        return [Dist("exponential", (float(r),)) for r in rate]
    loc = e["location"]
    if name == "student_t":
        return [Dist(name, (float(d), float(m), float(s))) for d, m, s in zip(e["df"], loc, scale)]
    return [Dist(name, (float(m), float(s))) for m, s in zip(loc, scale)]


@dataclass(frozen=True)
class RstanarmSettings(_rbayes.RSamplerSettings):
    max_treedepth: int = setting(15, "maximum NUTS tree depth (rstanarm's default 15)", lo=1, hi=30)
    QR: bool = setting(False, "QR decomposition of the predictors (the seed uses QR = TRUE for the 13 x 13 poll model)")
    priors: tuple[str, ...] = setting(
        (),
        "brms-style prior strings rstanarm can express: b and b[x] (one family: normal, student_t or cauchy), "
        "Intercept, sigma and phi (normal, student_t, cauchy, exponential), cov ~ decov(...) (default: rstanarm's "
        "own)",
    )
    check = staticmethod(check)
    translate = staticmethod(rstanarm_priors)
    prior_rules = (
        "one family across all b (coefficients without a prior keep rstanarm's normal); b[Intercept] only when the "
        "model has no other fixed effect"
    )


class RstanarmEngine(_rbayes.RSamplerEngine):
    """rstanarm::stan_glmer."""

    name: ClassVar[str] = "rstanarm"
    Settings: ClassVar[type[Settings]] = RstanarmSettings
    settings: RstanarmSettings
    package: ClassVar[str] = "rstanarm"
    r_code: ClassVar[str] = R_CODE
    no_blocks: ClassVar[str] = "rstanarm's stan_glmer needs at least one random-effect term (stan_glm otherwise)"
    known_se_refusal: ClassVar[str] = "stan_glmer has no se() term; its gaussian models estimate one sigma"

    def fit(self, data: FitData, *, seed: int) -> FitResult:
        start, md, priors = self.begin(data)
        s = self.settings
        r = _r.call(
            "rstanarm",
            R_CODE,
            "fit_rstanarm",
            _r.r_formula(data.formula, data.family),
            _r.r_frame(data),
            data.family,
            data.link,
            s.chains,
            s.warmup + s.draws,
            s.warmup,
            s.adapt_delta,
            s.max_treedepth,
            s.QR,
            s.cores,
            int(seed) % (2**31 - 1) or 1,
            _r_priors(priors),
        )
        draws = _draws(md, chains_values(r), _r.strs(r["names"]))
        sstats = _rbayes.sampler_stats(r["sampler"], s.chains, s.draws, s.max_treedepth)
        sampling_s = _r.num(r["wall"])
        timing = _bayes.Timing(time.perf_counter() - start, 0.0, sampling_s, 0)
        notes = [
            "backend: rstanarm stan_glmer (precompiled: no compile step)",
            "sampling_s is the wall time of the stan_glmer call in R (rstan's own chain times in details)",
            f"rstan control: {_control_text(r['control'])}",
        ]
        prior_text = ["rstanarm priors: " + " ".join(_prior_lines(_r.strs(r["prior_text"])))]
        md.priors.used = read_back(r["prior_used"], _r.strs(r["fixef_names"]), md.family)
        return _rbayes.finish(self.name, md, data, draws, sstats, timing, s, notes, seed, prior_text, r)


def _prior_lines(lines: list[str]) -> list[str]:
    """prior_summary's printout without its title, rules and help pointer."""
    skip = ("Priors for model", "See help(")
    return [t for t in (line.strip() for line in lines) if t and not set(t) <= {"-"} and not t.startswith(skip)]


def chains_values(r: dict[str, Any]) -> np.ndarray:
    """as.array(fit): (iterations, chains, parameters) -> (chains, iterations, parameters)."""
    return _rbayes.chains_first(r["draws"])


def _control_text(control: Any) -> str:
    return ", ".join(f"{k} = {_r.num(v):g}" for k, v in _r.items(control))


def _draws(md: _bayes.ModelData, values: np.ndarray, names: list[str]) -> _bayes.Draws:
    """The shared Draws from rstanarm's parameter names: coefficients by name, SDs and correlations from the
    Sigma[g:a,b] covariance draws, group effects b[term g:level] (spaces in levels become '_' in rstanarm)."""
    index = {n: k for k, n in enumerate(names)}

    def get(name: str) -> np.ndarray:
        if name not in index:
            raise RuntimeError(f"rstanarm returned no draws named {name!r} (it has e.g. {names[:6]})")
        return values[..., index[name]]

    def sigma_entry(g: str, a: str, b: str) -> np.ndarray:
        pair = f"Sigma[{g}:{_r.r_term(a)},{_r.r_term(b)}]"
        return get(pair if pair in index else f"Sigma[{g}:{_r.r_term(b)},{_r.r_term(a)}]")

    C, S = values.shape[:2]
    b = [get(_r.r_term(n)) for n in _rbayes.intercept_first(md)]
    sd, cor, r = [], [], []
    for blk in md.blocks:
        sds = [np.sqrt(np.clip(sigma_entry(blk.group, t, t), 0, None)) for t in blk.names]
        sd += sds
        for i, j in blk.pairs:
            with np.errstate(divide="ignore", invalid="ignore"):
                cor.append(sigma_entry(blk.group, blk.names[i], blk.names[j]) / (sds[i] * sds[j]))
        for level in blk.levels:
            tag = level.replace(" ", "_")
            r += [get(f"b[{_r.r_term(t)} {blk.group}:{tag}]") for t in blk.names]
    sigma = get("sigma") if md.family == "gaussian" else None
    phi = get("reciprocal_dispersion") if md.family == "negbinomial" else None  # neg_binomial_2's phi

    def stack(parts: list[np.ndarray]) -> np.ndarray:
        return np.stack(parts, axis=2) if parts else np.zeros((C, S, 0))

    return _bayes.Draws(stack(b), stack(sd), stack(cor), stack(r), sigma, phi)


ESTIMATORS = [RstanarmEngine]
