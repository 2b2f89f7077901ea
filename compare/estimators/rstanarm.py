"""Engine `rstanarm`: rstanarm::stan_glmer through rpy2 (compare.estimators._r), the seed lecture's own tool.

rstanarm's models are precompiled (no compile step). It runs with its own defaults: its default priors
(autoscaled normal on coefficients and intercept, exponential on sigma, decov(1, 1, 1, 1) on each covariance
matrix), adapt_delta 0.95 and max_treedepth 15. The posterior draws come back per chain (as.array) and every
summary (means, quantiles, R-hat/ESS, LOO, pred_new, SBC draws) is computed by compare.estimators._bayes,
as for `stan` and `pymc`; divergences, tree-depth hits and E-BFMI come from rstan's sampler parameters.

Prior strings (brms style, compare.priors) are translated where rstanarm can express them: `b` and
`Intercept` (normal, student_t, cauchy) -> prior / prior_intercept, `sigma` (normal, student_t, cauchy,
exponential: half distributions in rstanarm too) -> prior_aux, `phi` (the same half distributions) -> prior_aux of
neg_binomial_2 (its reciprocal_dispersion is NB2's phi; rstanarm's default there is exponential(1)),
`cov ~ decov(...)` -> prior_covariance, all
with autoscale = FALSE (hbench's prior strings are on the data's scale). Separate `sd`/`cor` priors have no
rstanarm equivalent (stan_glmer takes decov only): the settings refuse them before anything runs.
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
from compare.priors import Dist, PriorSpec
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

# (an rstanarm prior function's name, its named arguments): passed to R as values, called there by name
RPrior = tuple[str, dict[str, float | bool]]


def _prior(d: Dist, autoscale: bool | None = False) -> RPrior:
    """rstanarm's call for a parsed distribution (normal / student_t / cauchy for coefficients or the centred
    intercept), on the data's scale: autoscale = FALSE where the function has that argument."""
    args: dict[str, float | bool] = {k: float(v) for k, v in zip(PRIOR_ARGS[d.name], d.args, strict=True)}
    if autoscale is not None:
        args["autoscale"] = autoscale
    return d.name, args


def _aux_prior(d: Dist, cls: str = "sigma") -> RPrior:
    """sigma's or phi's prior: rstanarm's prior_aux is a half distribution (on sigma; on neg_binomial_2's
    reciprocal_dispersion, which is phi), as hbench's sigma and phi priors are."""
    if d.name == "gamma":
        raise InputError(
            f"rstanarm: '{cls} ~ gamma(...)' cannot be expressed (prior_aux takes normal, student_t, "
            "cauchy or exponential)"
        )
    return _prior(d)


def rstanarm_priors(spec: PriorSpec) -> dict[str, RPrior]:
    """stan_glmer's prior arguments (an rstanarm prior function and its arguments each) for parsed prior
    strings; InputError where rstanarm cannot express one. Classes not given keep rstanarm's defaults."""
    if spec.sd is not None or spec.cor is not None:
        raise InputError(
            "rstanarm cannot express separate 'sd'/'cor' priors (stan_glmer's covariance prior is "
            "decov): give 'cov ~ decov(regularization, concentration, shape, scale)' or use brms"
        )
    out = {}
    if spec.b is not None:
        out["prior"] = _prior(spec.b)
    if spec.intercept is not None:
        out["prior_intercept"] = _prior(spec.intercept)
    if spec.sigma is not None:
        out["prior_aux"] = _aux_prior(spec.sigma)
    if spec.phi is not None:  # prior_aux of a negbinomial fit (fit_rstanarm picks the one the family has)
        out["prior_aux_phi"] = _aux_prior(spec.phi, "phi")
    if spec.cov is not None:
        out["prior_covariance"] = _prior(spec.cov, autoscale=None)  # decov has no autoscale
    return out


def _r_priors(priors: dict[str, RPrior]):
    """The priors as the R list fit_rstanarm takes: by argument, list(fun = ..., args = list(...))."""
    return _r.named_list({a: {"fun": fun, "args": args} for a, (fun, args) in priors.items()})


@dataclass(frozen=True)
class RstanarmSettings(_rbayes.RSamplerSettings):
    max_treedepth: int = setting(15, "maximum NUTS tree depth (rstanarm's default 15)", lo=1, hi=30)
    QR: bool = setting(False, "QR decomposition of the predictors (the seed uses QR = TRUE for the 13 x 13 poll model)")
    priors: tuple[str, ...] = setting(
        (),
        "brms-style prior strings rstanarm can express: b, Intercept, sigma, phi, "
        "cov ~ decov(...) (default: rstanarm's own priors)",
    )
    translate = staticmethod(rstanarm_priors)


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
