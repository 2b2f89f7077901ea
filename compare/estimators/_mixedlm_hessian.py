"""Wald SEs for MixedLM's variance parameters and sigma from a numerical Hessian (issue 11).

Kept out of the registry (leading underscore): it defines no engine.

statsmodels profiles the residual variance out of `MixedLM.loglike`: the function it maximises is
l_p(theta), theta = (cov_re, vcomp) relative to the scale, and its Hessian (`MixedLM.hessian`, used for
`cov_params`) is that of l_p. Rescaling it to variance units treats sigma^2 = s2(theta) as known and drops
its covariance with the variance parameters: on seed_slopes J = 50 the SD SEs came out 3-4% larger than
lme4's and glmmTMB's. Here sigma is a free parameter again. With s2(theta) the profiled scale
(`MixedLM.get_scale` at the GLS fixed effects) and m = n - p (REML) or n (ML), the unprofiled criterion is

    l(theta, sigma^2) = l_p(theta) - (m/2) [log(sigma^2 / s2(theta)) + s2(theta) / sigma^2 - 1]

(maximised over sigma^2 at s2(theta), where it is l_p; tests check it against a dense direct computation).

The Hessian is taken numerically in v = (log(SD_k / sigma), atanh(cor), log sigma): theta depends on v
without sigma, so points that differ only in sigma reuse one (l_p, s2) evaluation. The coordinates the
intervals live on, u = (log SD_k, atanh(cor), log sigma), are a linear map of v (log SD_k = v_k + log sigma),
so Cov(u) = A Cov(v) A' exactly. The SDs and correlations are the engine's own (cov_re and vcomp in y units,
the correlation of cov_re), and the fixed effects are profiled out by GLS (REML integrates them out; for ML
the profile over beta has the same variance block).

Steps: central second differences with Richardson extrapolation over h = STEP and STEP / 2 (error O(h^4)).
On these unit-free log/atanh scales the criterion changes over O(1), so STEP = 0.02 leaves a truncation
error below 1e-7 relative, while the function noise of the GLS solves (~1e-10 of |l|) divided by h^2
stays below 1e-5 relative (tests compare the SEs across step sizes).

Boundary (lme4's rule, as in the lme4 engine): an SD below SD_TOL x sigma, a |cor| above 1 - COR_TOL, or a
correlation of an SD at zero gets no interval and says why; the other parameters' Hessian is taken with them
held at their estimates. A Hessian that is not negative definite gives no Wald interval for any variance
parameter, with a note.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from statsmodels.regression.mixed_linear_model import MixedLMParams

SD_TOL = 1e-4  # an SD below SD_TOL x sigma is at zero (lme4's singularity tolerance)
COR_TOL = 0.01  # a |cor| above 1 - COR_TOL is at the boundary (boundary_flags' corr_at_bound rule)
STEP = 0.02  # central-difference step on the log-SD / atanh-cor / log-sigma scales (see module docstring)
HELD_SD_FLOOR = 1e-8  # a held SD at exactly 0 is evaluated at this x sigma (statsmodels inverts cov_re)


@dataclass
class Parameter:
    kind: str  # "sd" | "cor" | "sigma"
    block: str  # "re" | "vc" | "sigma"
    index: tuple[int, ...]  # (i,) for sd, (i, j) with i > j for cor, (k,) for vc, () for sigma
    estimate: float
    status: str = "ok"  # ok | sd-zero | cor-bound | cor-undefined
    se_u: float = math.nan  # SE on the interval scale: log SD, atanh cor, log sigma


@dataclass
class WaldVariance:
    params: list[Parameter]
    note: str | None = None  # why no Hessian-based SE at all (not positive definite, failed)
    evaluations: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    def get(self, kind: str, block: str, index: tuple[int, ...]) -> Parameter:
        return next(p for p in self.params if p.kind == kind and p.block == block and p.index == index)


def parameters(res: Any) -> list[Parameter]:
    """The engine's variance parameters in order: cov_re SDs, cov_re cors (i > j), vc SDs, sigma."""
    cov_re = np.atleast_2d(np.asarray(res.cov_re, float)) if res.k_re > 0 else np.zeros((0, 0))
    vcomp = np.asarray(res.vcomp, float)
    scale = float(res.scale)
    sigma = math.sqrt(scale) if scale > 0 else math.nan
    sds = np.sqrt(np.clip(np.diag(cov_re), 0, None))
    out = [Parameter("sd", "re", (i,), float(sds[i])) for i in range(len(sds))]
    for i in range(len(sds)):
        for j in range(i):
            r = cov_re[i, j] / (sds[i] * sds[j]) if sds[i] > 0 and sds[j] > 0 else math.nan
            out.append(Parameter("cor", "re", (i, j), float(r)))
    out += [Parameter("sd", "vc", (k,), math.sqrt(max(float(v), 0.0))) for k, v in enumerate(vcomp)]
    out.append(Parameter("sigma", "sigma", (), sigma))
    for p in out:
        if p.kind == "sd" and not (np.isfinite(p.estimate) and p.estimate > SD_TOL * sigma):
            p.status = "sd-zero"
    zero = {p.index[0] for p in out if p.kind == "sd" and p.block == "re" and p.status != "ok"}
    for p in out:
        if p.kind == "cor":
            if zero & set(p.index):
                p.status = "cor-undefined"
            elif not (np.isfinite(p.estimate) and abs(p.estimate) < 1 - COR_TOL):
                p.status = "cor-bound"
    return out


class Criterion:
    """The (RE)ML log-likelihood of a MixedLM model with sigma free, as a function of v (module docstring).
    Memoises (l_p, s2) per theta, so steps in log sigma alone cost nothing."""

    def __init__(self, model: Any, params: list[Parameter]):
        self.model, self.params = model, params
        self.m = model.n_totobs - (model.k_fe if model.reml else 0)
        self.cache: dict[bytes, tuple[float, float]] = {}

    def profiled(self, cov_re1: np.ndarray, vcomp1: np.ndarray) -> tuple[float, float]:
        """(l_p, s2) at theta = (cov_re, vcomp) relative to the scale."""
        key = np.concatenate([cov_re1.ravel(), vcomp1]).tobytes()
        if key not in self.cache:
            model = self.model
            fe, _ = model.get_fe_params(cov_re1, vcomp1) if model.k_fe > 0 else (np.empty(0), False)
            pa = MixedLMParams.from_components(fe_params=fe, cov_re=cov_re1 if model.k_re > 0 else None, vcomp=vcomp1)
            lp = float(model.loglike(pa, profile_fe=False))
            s2 = float(model.get_scale(fe, cov_re1, vcomp1))
            self.cache[key] = (lp, s2)
        return self.cache[key]

    def theta(self, values: dict[int, float]) -> tuple[np.ndarray, np.ndarray]:
        """cov_re and vcomp relative to sigma^2 from relative log-SDs / atanh cors (keyed by parameter position)."""
        q = self.model.k_re
        rel_sd = np.zeros(q)
        cor = np.eye(q)
        vc = np.zeros(self.model.k_vc)
        for k, p in enumerate(self.params):
            if p.kind == "sigma":
                continue
            x = values[k]
            if p.kind == "sd" and p.block == "re":
                rel_sd[p.index[0]] = math.exp(x)
            elif p.kind == "cor":
                cor[p.index] = cor[p.index[::-1]] = math.tanh(x)
            elif p.kind == "sd" and p.block == "vc":
                vc[p.index[0]] = math.exp(2 * x)
        return np.outer(rel_sd, rel_sd) * cor, vc

    def __call__(self, v: dict[int, float], log_sigma: float) -> float:
        lp, s2 = self.profiled(*self.theta(v))
        if not (np.isfinite(lp) and s2 > 0):
            return math.nan
        ratio = s2 / math.exp(2 * log_sigma)
        return lp - 0.5 * self.m * (-math.log(ratio) + ratio - 1)


def loglik(model: Any, cov_re: np.ndarray, vcomp: np.ndarray, sigma: float) -> float:
    """The unprofiled (RE)ML log-likelihood at cov_re, vcomp (y units) and sigma, fixed effects by GLS."""
    crit = Criterion(model, [])
    lp, s2 = crit.profiled(np.asarray(cov_re, float) / sigma**2, np.asarray(vcomp, float) / sigma**2)
    ratio = s2 / sigma**2
    return lp - 0.5 * crit.m * (-math.log(ratio) + ratio - 1)


def _hessian(f, x0: np.ndarray, h: float) -> np.ndarray:
    """Central-difference Hessian of f at x0 with step h in every coordinate."""
    k = len(x0)
    H = np.zeros((k, k))
    f0 = f(x0)
    e = np.eye(k) * h
    fp = [f(x0 + e[i]) for i in range(k)]
    fm = [f(x0 - e[i]) for i in range(k)]
    for i in range(k):
        H[i, i] = (fp[i] - 2 * f0 + fm[i]) / h**2
        for j in range(i):
            H[i, j] = H[j, i] = (
                f(x0 + e[i] + e[j]) - f(x0 + e[i] - e[j]) - f(x0 - e[i] + e[j]) + f(x0 - e[i] - e[j])
            ) / (4 * h * h)
    return H


def richardson_hessian(f, x0: np.ndarray, h: float = STEP) -> np.ndarray:
    """Richardson extrapolation of central-difference Hessians at h and h/2: error O(h^4)."""
    return (4 * _hessian(f, x0, h / 2) - _hessian(f, x0, h)) / 3


def wald_variance(res: Any, step: float = STEP) -> WaldVariance:
    """SEs on the interval scales for every variance parameter MixedLM reports, and sigma (module docstring)."""
    params = parameters(res)
    out = WaldVariance(params)
    sigma = params[-1].estimate
    if not (np.isfinite(sigma) and sigma > 0):
        out.note = "sigma is not positive and finite: no Hessian"
        return out
    ls = math.log(sigma)
    # v at the estimate: relative log-SDs, atanh cors; held parameters stay at their estimates
    base: dict[int, float] = {}
    for k, p in enumerate(params[:-1]):
        if p.kind == "sd":
            base[k] = math.log(max(p.estimate, HELD_SD_FLOOR * sigma) / sigma)
        else:
            base[k] = math.atanh(float(np.clip(p.estimate, -1 + 1e-12, 1 - 1e-12))) if np.isfinite(p.estimate) else 0.0
    free = [k for k, p in enumerate(params) if p.status == "ok"]  # sigma (last) is always free
    crit = Criterion(res.model, params)

    def f(x: np.ndarray) -> float:
        v = dict(base)
        for k, val in zip(free[:-1], x[:-1], strict=True):
            v[k] = val
        # log SD = v + log sigma: relative SDs move with sigma, so theta does not
        return crit(v, x[-1])

    x0 = np.array([base[k] for k in free[:-1]] + [ls])
    try:
        with np.errstate(all="ignore"):
            H = richardson_hessian(f, x0, step)
    except (np.linalg.LinAlgError, ValueError, OverflowError, ZeroDivisionError) as exc:
        out.note = f"the numerical Hessian of the log-likelihood failed: {exc}"
        return out
    out.evaluations = len(crit.cache)
    H = (H + H.T) / 2
    ev = np.linalg.eigvalsh(-H) if np.all(np.isfinite(H)) else np.array([math.nan])
    out.details["hessian_eigen_min"] = float(np.min(ev))
    if not np.all(np.isfinite(ev)) or np.min(ev) <= 1e-8 * np.max(np.abs(ev)):
        out.note = (
            "the Hessian of the log-likelihood is not negative definite (smallest eigenvalue of -H "
            f"{np.min(ev):.3g}): no Wald interval for the variance parameters"
        )
        return out
    cov_v = np.linalg.inv(-H)
    # u = A v: log SD_k = v_k + log sigma; cors and log sigma unchanged
    A = np.eye(len(free))
    for a, k in enumerate(free[:-1]):
        if params[k].kind == "sd":
            A[a, -1] = 1.0
    cov_u = A @ cov_v @ A.T
    for a, k in enumerate(free):
        params[k].se_u = math.sqrt(cov_u[a, a]) if cov_u[a, a] >= 0 else math.nan

    return out


NOTES = {
    "sd-zero": f"SD at the boundary (below {SD_TOL:g} x sigma): no Wald interval",
    "cor-bound": f"correlation at the boundary (|cor| > {1 - COR_TOL:g}): no Wald interval",
    "cor-undefined": "correlation of an SD at zero: not identified, no Wald interval",
}
