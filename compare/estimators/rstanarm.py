"""Engine `rstanarm`: rstanarm::stan_glmer through rpy2 (compare.estimators._r), the seed lecture's own tool.

rstanarm's models are precompiled (no compile step). It runs with its own defaults: its default priors
(autoscaled normal on coefficients and intercept, exponential on sigma, decov(1, 1, 1, 1) on each covariance
matrix), adapt_delta 0.95 and max_treedepth 15. The posterior draws come back per chain (as.array) and every
summary (means, quantiles, R-hat/ESS, LOO, pred_new, SBC draws) is computed by compare.estimators._bayes,
as for `stan` and `pymc`; divergences, tree-depth hits and E-BFMI come from rstan's sampler parameters.

Prior strings (brms style, compare.priors) are translated where rstanarm can express them: `b` and
`Intercept` (normal, student_t, cauchy) -> prior / prior_intercept, `sigma` (normal, student_t, cauchy,
exponential: half distributions in rstanarm too) -> prior_aux, `cov ~ decov(...)` -> prior_covariance, all
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

R_CODE = _rbayes.R_SAMPLER + r"""
.hbench_rstanarm <- function(formula, data, family, link, chains, iter, warmup, adapt_delta, max_treedepth,
                             QR, cores, seed, prior_args, prior_exprs) {
  h <- .hbench_collector()
  fam <- if (family == "gaussian") gaussian() else get(family)(link = link)
  # open_progress: R embedded by rpy2 is interactive(), so rstan would open a browser page when cores > 1
  args <- list(formula = as.formula(formula), data = data, family = fam, chains = chains, iter = iter,
               warmup = warmup, adapt_delta = adapt_delta, control = list(max_treedepth = max_treedepth),
               QR = QR, cores = cores, seed = seed, refresh = 0, open_progress = FALSE)
  for (k in seq_along(prior_args))
    args[[prior_args[k]]] <- eval(parse(text = prior_exprs[k]), envir = asNamespace("rstanarm"))
  t0 <- proc.time()[["elapsed"]]
  fit <- withCallingHandlers(do.call(rstanarm::stan_glmer, args), warning = h$warning, message = h$message)
  wall <- proc.time()[["elapsed"]] - t0
  a <- as.array(fit)
  prior_text <- capture.output(print(rstanarm::prior_summary(fit)))
  list(draws = unname(a), names = dimnames(a)[[3]], sampler = .hbench_sampler(fit$stanfit),
       control = fit$stanfit@stan_args[[1]]$control, prior_text = prior_text, wall = wall, msgs = h$msgs)
}
"""


def _num(x: float) -> str:
    return repr(float(x))


def _coef_prior(d: Dist) -> str:
    """normal / student_t / cauchy for coefficients or the (centred) intercept, on the data's scale."""
    if d.name == "normal":
        return f"normal(location = {_num(d.args[0])}, scale = {_num(d.args[1])}, autoscale = FALSE)"
    if d.name == "student_t":
        return (f"student_t(df = {_num(d.args[0])}, location = {_num(d.args[1])}, scale = {_num(d.args[2])}, "
                "autoscale = FALSE)")
    return f"cauchy(location = {_num(d.args[0])}, scale = {_num(d.args[1])}, autoscale = FALSE)"


def _aux_prior(d: Dist) -> str:
    """sigma's prior: rstanarm's prior_aux is a half distribution for sigma, as hbench's sigma priors are."""
    if d.name == "exponential":
        return f"exponential(rate = {_num(d.args[0])}, autoscale = FALSE)"
    if d.name == "gamma":
        raise InputError("rstanarm: 'sigma ~ gamma(...)' cannot be expressed (prior_aux takes normal, student_t, "
                         "cauchy or exponential)")
    return _coef_prior(d)


def rstanarm_priors(spec: PriorSpec) -> dict[str, str]:
    """stan_glmer's prior arguments (R expressions) for parsed prior strings; InputError where rstanarm
    cannot express one. Classes not given keep rstanarm's defaults."""
    if spec.sd is not None or spec.cor is not None:
        raise InputError("rstanarm cannot express separate 'sd'/'cor' priors (stan_glmer's covariance prior is "
                         "decov): give 'cov ~ decov(regularization, concentration, shape, scale)' or use brms")
    out = {}
    if spec.b is not None:
        out["prior"] = _coef_prior(spec.b)
    if spec.intercept is not None:
        out["prior_intercept"] = _coef_prior(spec.intercept)
    if spec.sigma is not None:
        out["prior_aux"] = _aux_prior(spec.sigma)
    if spec.cov is not None:
        reg, conc, shape, scale = map(_num, spec.cov.args)
        out["prior_covariance"] = (f"decov(regularization = {reg}, concentration = {conc}, shape = {shape}, "
                                   f"scale = {scale})")
    return out


@dataclass(frozen=True)
class RstanarmSettings(_rbayes.RSamplerSettings):
    max_treedepth: int = setting(15, "maximum NUTS tree depth (rstanarm's default 15)", lo=1, hi=30)
    QR: bool = setting(False, "QR decomposition of the predictors (the seed uses QR = TRUE for the 13 x 13 poll model)")
    priors: tuple[str, ...] = setting((), 'brms-style prior strings rstanarm can express: b, Intercept, sigma, '
                                          'cov ~ decov(...) (default: rstanarm\'s own priors)')
    translate = staticmethod(rstanarm_priors)


class RstanarmEngine(_rbayes.RSamplerEngine):
    """rstanarm::stan_glmer."""

    name: ClassVar[str] = "rstanarm"
    Settings: ClassVar[type[Settings]] = RstanarmSettings
    package: ClassVar[str] = "rstanarm"
    r_code: ClassVar[str] = R_CODE
    no_blocks: ClassVar[str] = "rstanarm's stan_glmer needs at least one random-effect term (stan_glm otherwise)"

    def fit(self, data: FitData, *, seed: int) -> FitResult:
        start, md, priors = self.begin(data)
        s = self.settings
        r = _r.call("rstanarm", R_CODE, ".hbench_rstanarm", _r.r_formula(data.formula, data.family), _r.r_frame(data),
                    data.family, data.link, s.chains, s.warmup + s.draws, s.warmup, s.adapt_delta, s.max_treedepth,
                    s.QR, s.cores, int(seed) % (2**31 - 1) or 1, _r.str_vector(list(priors)),
                    _r.str_vector(list(priors.values())))
        draws = _draws(md, chains_values(r), _r.strs(r["names"]))
        sstats = _rbayes.sampler_stats(r["sampler"], s.chains, s.draws, s.max_treedepth)
        sampling_s = _r.num(r["wall"])
        timing = _bayes.Timing(time.perf_counter() - start, 0.0, sampling_s, 0)
        notes = ["backend: rstanarm stan_glmer (precompiled: no compile step)",
                 "sampling_s is the wall time of the stan_glmer call in R (rstan's own chain times in details)",
                 f"rstan control: {_control_text(r['control'])}"]
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

    def stack(parts: list[np.ndarray]) -> np.ndarray:
        return np.stack(parts, axis=2) if parts else np.zeros((C, S, 0))

    return _bayes.Draws(stack(b), stack(sd), stack(cor), stack(r), sigma)


ESTIMATORS = [RstanarmEngine]
