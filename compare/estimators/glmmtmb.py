"""glmmTMB through rpy2 (compare.estimators._r): Laplace-approximate ML (and REML for gaussian) with TMB's
automatic differentiation, a second frequentist implementation to hold against lme4.

- Same estimands as lme4; `singular`/`corr_at_bound`/`var_at_zero` from `boundary_flags` on VarCorr like
  every engine, and a not-converged fit next to the boundary is singular too (see `_boundary`); `criterion`
  and `loglik` so the summary can check it reached lme4's optimum.
- converged = nlminb's convergence code is 0 *and* TMB's sdreport has a positive-definite Hessian
  (pdHess). glmmTMB has no `isSingular`: at a boundary (an SD -> 0, log-SD -> -inf) the Hessian is not
  positive definite, so a singular fit usually reports converged = False here where lme4 says True.
- Intervals: fixed effects Wald z and t(J-1); SDs Wald on the log-SD scale, which is glmmTMB's own
  parameter (theta), with its variance from sdreport; correlations Wald on the atanh scale by the delta
  method through glmmTMB's correlation parameterisation (checked against its VarCorr on every fit; where
  that check fails there is no interval and a note says so); sigma Wald on the log scale (glmmTMB's betad =
  log sigma^2). `profile = true` profiles the theta parameters (ML only: glmmTMB 1.1.5 refuses REML
  profiles), mapped to SDs, and to correlations for two-term blocks (monotone there); otherwise Wald.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from compare.data import FitData
from compare.estimators import _frequentist as fq
from compare.estimators import _r
from compare.estimators.base import Estimator, Support, glmm_support
from compare.fitresult import FitResult, boundary_flags, make_params
from compare.formula import ModelSpec
from compare.settings import Settings, setting

R_CODE = "glmmtmb.R"  # compare/estimators/R/glmmtmb.R

WALD_NOTE = "Wald interval (glmmTMB sdreport)"


@dataclass(frozen=True)
class GlmmTMBSettings(Settings):
    reml: bool = setting(True, "REML (true) or maximum likelihood (false); gaussian models only (others are ML)")
    profile: bool = setting(
        False,
        "profile-likelihood intervals for sd (and cor of two-term blocks) instead of Wald; "
        "ML fits only (glmmTMB cannot profile REML fits)",
    )


class GlmmTMBEngine(Estimator):
    """glmmTMB::glmmTMB."""

    name: ClassVar[str] = "glmmtmb"
    kind: ClassVar[str] = "frequentist"
    Settings: ClassVar[type[Settings]] = GlmmTMBSettings
    settings: GlmmTMBSettings

    def available(self) -> Support:
        return _r.package_status("glmmTMB", R_CODE)

    def supports(self, model: ModelSpec) -> Support:
        return glmm_support(  # glmmTMB could: weights 1/s^2 with the dispersion held at 1 by `map`; not wired here
            model, "glmmtmb", "this engine estimates one residual SD (fixing it per row is not wired up)"
        )

    def fit(self, data: FitData, *, seed: int) -> FitResult:
        self.require(data.model)
        reml = self.settings.reml and data.family == "gaussian"
        r, wall = fq.timed(
            lambda: _r.call(
                "glmmTMB",
                R_CODE,
                "fit_glmmtmb",
                _r.r_formula(data.formula, data.family),
                _r.r_frame(data),
                data.family,
                data.link,
                reml,
                self.settings.profile,
                self.level,
            )
        )
        out = summarise(r, data, reml, self.settings.profile, self.level)
        out.wall_s = wall
        return out


def summarise(r: dict[str, Any], data: FitData, reml: bool, profile: bool, level: float) -> FitResult:
    """FitResult from the pieces fit_glmmtmb (R/glmmtmb.R) returns."""
    design = data.design
    gaussian = data.family == "gaussian"
    notes = ["converged = nlminb convergence code 0 and a positive-definite Hessian in TMB's sdreport (pdHess)"]
    names = [_r.term(n) for n in _r.strs(r["fixef_names"])]
    if names != design.x_names:
        raise RuntimeError(
            f"glmmTMB fitted another model than the design's: fixed effects {names}, the design's {design.x_names}"
        )
    est = np.atleast_1d(np.asarray(r["fixef"], float))
    se = np.array([fq.safe_sqrt(v) for v in np.diag(np.atleast_2d(np.asarray(r["vcov"], float)))]) if est.size else est
    rows = [
        _explain(row, "no finite SE for this fixed effect (Hessian not positive definite)")
        for row in fq.fixed_rows(names, est, se, fq.t_df(design), level)
    ]
    blocks = _blocks(r)
    prof = _profile(r, notes, reml, profile)
    rows += _variance_rows(blocks, _theta_slices(r, blocks, notes), prof, notes, level)
    sigma = _r.num(r["sigma"]) if gaussian else 1.0
    if gaussian:
        rows.append(_sigma_row(r, sigma, level))
    rows += fq.variance_rows(rows, level)
    if data.family == "negbinomial":
        rows.append(_phi_row(r, level))
    rows += _r.ranef_rows(r["ranef"], level)
    if data.poststratify:
        rows.append(fq.mrp_row(data.frame[data.poststratify].to_numpy(float), np.asarray(r["fitted"], float)))
    loglik = _r.num(r["loglik"])
    pd_hess, opt_code = bool(_r.num(r["pdHess"])), _r.num(r["opt_code"])
    converged = opt_code == 0 and pd_hess and bool(np.isfinite(loglik))
    singular, corr_bound, var_zero = _boundary([c for _, _, c in blocks], sigma, converged)
    if not np.isfinite(loglik):
        notes.append(f"log-likelihood is not finite ({loglik})")
    if not pd_hess:
        notes.append("TMB's Hessian is not positive definite: Wald SEs and intervals are unreliable where given")
    if np.isfinite(loglik) and not pd_hess:
        notes.append(
            "loglik is minus nlminb's objective at its end point: glmmTMB's logLik() says NA when the "
            "Hessian is not positive definite (typically a boundary fit), the value is still comparable"
        )
    return FitResult(
        engine="glmmtmb",
        params=make_params(rows),
        converged=converged,
        singular=singular,
        corr_at_bound=corr_bound,
        var_at_zero=var_zero,
        loglik=loglik,
        criterion="REML" if reml else "ML",
        optimizer="nlminb",
        warnings=_r.strs(r["msgs"]),
        notes=notes,
        details={
            "opt_code": opt_code,
            "opt_message": " ".join(_r.strs(r["opt_message"])),
            "pdHess": pd_hess,
            "r_wall_s": _r.num(r["wall"]),
        },
    )


def _boundary(covariances: list[np.ndarray], sigma: float, converged: bool) -> tuple[bool, bool, bool]:
    """lme4's rule (boundary_flags), plus: a fit that stopped without a usable optimum (nlminb's 'singular
    convergence', no positive-definite Hessian) next to the boundary is singular too. glmmTMB's parameters
    (log-SD, unconstrained correlation) never reach the boundary, they walk towards it until nlminb stops,
    typically at |cor| ~ 0.999 or an SD ~ 1e-3 sigma, just short of lme4's 1e-4 on the relative Cholesky
    factor that lme4's bounded optimiser reaches exactly."""
    singular, corr_bound, var_zero = boundary_flags(covariances, sigma)
    if not converged and not singular:
        near_zero = any(
            np.any(np.sqrt(np.clip(np.diag(np.atleast_2d(c)), 0, None)) < 1e-3 * sigma) for c in covariances
        )
        singular = corr_bound or near_zero
    return singular, corr_bound, var_zero


def _explain(row: dict[str, Any], note: str) -> dict[str, Any]:
    """A row whose interval is not finite says why (every engine's NaN interval carries a note)."""
    if not (np.isfinite(row["lower"]) and np.isfinite(row["upper"])):
        row.update(lower=math.nan, upper=math.nan, interval="none", note=note)
    return row


def _blocks(r: dict[str, Any]) -> list[tuple[str, list[str], np.ndarray]]:
    """(group, terms, covariance) per random-effect term, in glmmTMB's (theta) order."""
    out = []
    for k, g in enumerate(_r.strs(r["cnms_groups"])):
        terms = [_r.term(t) for t in _r.strs(_r.nth(r["cnms"], k))]
        out.append((g, terms, np.atleast_2d(np.asarray(_r.nth(r["vc"], k), float))))
    return out


def _theta_slices(r: dict[str, Any], blocks, notes: list[str]) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """Each block's theta (log-SDs, then correlation parameters) and its covariance from sdreport; None for a
    block whose structure is not the unstructured `us` one this mapping knows."""
    theta = np.atleast_1d(np.asarray(r["theta"], float))
    cov = np.atleast_2d(np.asarray(r["theta_cov"], float)) if theta.size else np.zeros((0, 0))
    counts = [int(v) for v in np.atleast_1d(r["n_theta"])]
    codes = _r.strs(r["block_codes"])
    out, at = [], 0
    for (g, terms, _), n, code in zip(blocks, counts, codes, strict=True):
        q = len(terms)
        ok = code == "us" and n == q + q * (q - 1) // 2 and at + n <= theta.size
        out.append((theta[at : at + n], cov[at : at + n, at : at + n]) if ok else None)
        if not ok:
            notes.append(f"block {g}: covariance structure {code!r} with {n} parameters is not mapped; no intervals")
        at += n
    return out


def tmb_correlation(t: np.ndarray, q: int) -> np.ndarray:
    """The correlation matrix of TMB's UNSTRUCTURED_CORR parameters (glmmTMB's `us` blocks): a unit lower
    triangular L filled row by row from t, then L L' scaled to unit diagonal."""
    L = np.eye(q)
    L[np.tril_indices(q, -1)] = t  # numpy's tril indices run row by row, as TMB's fill
    S = L @ L.T
    d = np.sqrt(np.diag(S))
    return S / np.outer(d, d)


def _cor_jacobian(t: np.ndarray, q: int, pairs: list[tuple[int, int]]) -> np.ndarray:
    """d cor[i, j] / d t by central differences (the map is smooth; steps of 1e-6 give ~1e-9 accuracy)."""
    jac = np.zeros((len(pairs), t.size))
    for k in range(t.size):
        step = np.zeros_like(t)
        step[k] = 1e-6
        hi, lo = tmb_correlation(t + step, q), tmb_correlation(t - step, q)
        jac[:, k] = [(hi[i, j] - lo[i, j]) / 2e-6 for i, j in pairs]
    return jac


def _variance_rows(blocks, slices, prof: np.ndarray | None, notes: list[str], level: float) -> list[dict[str, Any]]:
    """sd rows (Wald on log-SD) then cor rows (Wald on atanh) per block; profile intervals where computed."""
    rows: list[dict[str, Any]] = []
    at = 0
    for (g, terms, cov), sl in zip(blocks, slices, strict=True):
        q = len(terms)
        n = q + q * (q - 1) // 2
        sds = np.sqrt(np.clip(np.diag(cov), 0, None))
        block_prof = prof[at : at + n] if prof is not None and prof.shape[0] >= at + n else None
        at += n
        for i, t in enumerate(terms):
            se_log = fq.safe_sqrt(sl[1][i, i]) if sl is not None else math.nan
            row = fq.sd_row(
                g,
                t,
                float(sds[i]),
                se_log,
                note=f"no finite SE for log sd[{g}][{t}] in glmmTMB's "
                "sdreport (at the boundary, or Hessian not positive definite)",
                level=level,
            )
            if block_prof is not None:
                row = _with_profile(row, np.exp(block_prof[i]))
            rows.append(row)
        pairs = [(i, j) for j in range(q) for i in range(j + 1, q)]  # cor[a,b] with a before b in the block
        rows += _cor_rows(g, terms, cov, sds, sl, pairs, block_prof, notes, level)
    return rows


def _cor_rows(g, terms, cov, sds, sl, pairs, block_prof, notes, level) -> list[dict[str, Any]]:
    q = len(terms)
    if not pairs:
        return []
    r_vc = np.array([cov[i, j] / (sds[i] * sds[j]) if sds[i] > 0 and sds[j] > 0 else math.nan for i, j in pairs])
    se_r = np.full(len(pairs), math.nan)
    note = None
    if sl is not None:
        t, tcov = sl[0][q:], sl[1][q:, q:]
        mapped = tmb_correlation(t, q)
        if np.allclose([mapped[i, j] for i, j in pairs], r_vc, atol=1e-6, equal_nan=False):
            jac = _cor_jacobian(t, q, pairs)
            se_r = np.array([fq.safe_sqrt(v) for v in np.diag(jac @ tcov @ jac.T)])
        else:
            note = "glmmTMB's correlation parameters did not reproduce its VarCorr here: no interval"
            notes.append(f"block {g}: {note}")
    rows = []
    for k, (i, j) in enumerate(pairs):
        row = fq.cor_row(g, terms[j], terms[i], float(r_vc[k]), float(se_r[k]), note=note, level=level)
        if block_prof is not None and q == 2:  # rho = t / sqrt(1 + t^2) is monotone only for one parameter
            lo, hi = block_prof[q]
            row = _with_profile(row, np.array([lo, hi]) / np.sqrt(1 + np.array([lo, hi]) ** 2))
        elif block_prof is not None:
            row["note"] = (
                "profile: glmmTMB profiles its correlation parameters, not each correlation "
                "(blocks of more than two terms); Wald on atanh given"
            )
        rows.append(row)
    return rows


def _with_profile(row: dict[str, Any], ci: np.ndarray) -> dict[str, Any]:
    lo, hi = float(ci[0]), float(ci[1])
    if np.isfinite(lo) and np.isfinite(hi) and lo <= row["estimate"] <= hi:
        row.update(lower=lo, upper=hi, interval="profile")
        row.pop("note", None)
    else:
        row["note"] = (
            f"profile interval ({lo:g}, {hi:g}) not usable; Wald given"
            if row["interval"] != "none"
            else f"profile interval ({lo:g}, {hi:g}) not usable and no finite Wald SE"
        )
    return row


def _profile(r: dict[str, Any], notes: list[str], reml: bool, profile: bool) -> np.ndarray | None:
    """The theta profile table (theta order: per block log-SDs then correlation parameters), or None."""
    if not profile:
        return None
    if reml:
        notes.append("profile = true: glmmTMB 1.1.5 cannot profile REML fits; Wald intervals given")
        return None
    msgs = _r.strs(r["profile_msgs"])
    if _r.is_null(r["profile"]):
        notes.append("profile intervals failed (Wald given): " + "; ".join(msgs))
        return None
    if msgs:
        notes.append("profile: " + "; ".join(msgs))
    return np.atleast_2d(np.asarray(r["profile"], float))


def _phi_row(r: dict[str, Any], level: float) -> dict[str, Any]:
    """phi with a Wald interval on log(phi) = betad, nbinom2's dispersion parameter, its variance from sdreport;
    sigma(fit) is phi for nbinom2, checked against exp(betad)."""
    phi = _r.num(r["sigma"])
    if _r.is_null(r["betad"]):
        return fq.phi_row(phi, math.nan, "glmmTMB reported no dispersion parameter", level)
    betad = _r.num(r["betad"])
    if not math.isclose(math.exp(betad), phi, rel_tol=1e-6):
        return fq.phi_row(phi, math.nan, f"sigma(fit) = {phi:g} is not exp(betad) = {math.exp(betad):g}", level)
    note = "no finite SE for glmmTMB's dispersion parameter (log phi) in sdreport"
    return fq.phi_row(phi, fq.safe_sqrt(_r.num(r["betad_var"])), note, level)


def _sigma_row(r: dict[str, Any], sigma: float, level: float) -> dict[str, Any]:
    """sigma with a Wald interval on log sigma = betad / 2 (glmmTMB's gaussian dispersion is log sigma^2)."""
    betad = None if _r.is_null(r["betad"]) else _r.num(r["betad"])
    se_log = fq.safe_sqrt(_r.num(r["betad_var"])) / 2 if betad is not None else math.nan
    row = {
        "parameter": "sigma",
        "estimate": sigma,
        "se": sigma * se_log,
        "lower": math.nan,
        "upper": math.nan,
        "interval": "none",
        "note": "no finite SE for glmmTMB's dispersion parameter",
    }
    if betad is not None and not math.isclose(math.exp(betad / 2), sigma, rel_tol=1e-6):
        row["note"] = f"sigma(fit) = {sigma:g} is not exp(betad / 2) = {math.exp(betad / 2):g}: no interval"
        row["se"] = math.nan
    elif np.isfinite(se_log):
        z = fq.z_quantile(level)
        row.update(
            lower=sigma * math.exp(-z * se_log), upper=sigma * math.exp(z * se_log), interval="wald-log-sd", note=None
        )
    return row


ESTIMATORS = [GlmmTMBEngine]
