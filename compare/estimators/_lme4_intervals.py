"""Interval machinery of the lme4 engine beyond lme4's own output (issue 11), kept apart so lme4.py stays a
readable fit-and-map module. Kept out of the registry (leading underscore): it defines no engine. Its R
functions are in compare/estimators/R/lme4_intervals.R.

- Wald intervals for SDs, correlations and sigma. lme4 gives no SEs for variance parameters, so they come
  from a numerical Hessian (numDeriv) of the model's own deviance in the coordinates the intervals live
  on: log SD, atanh(cor), log sigma. For lmer that is the REML (or ML) deviance with sigma as a free
  parameter, written like lme4's `devfun2` (which profile() uses) but without devfun2's `refitML()`, so an
  REML fit gets the curvature of the REML criterion at the REML optimum (the same Hessian MixedLM and
  glmmTMB use; devfun2 would give the ML curvature at the ML optimum). For glmer it is `devfun2` itself
  (no refit for ML fits): the Laplace deviance over (SDs, cors, fixed effects), fixed effects included
  because glmer does not profile them out; the variance block of the inverse is used. The Hessian is taken
  directly in the transformed coordinates (equal to the delta method at an interior optimum, where the
  gradient is zero) because steps on the log/atanh scale never leave the parameter space.
  Boundary parameters (an SD below 1e-4 x sigma, a |cor| above 0.99, the corr_at_bound rule,
  or a cor of an SD at zero)
  get no interval and say why; the other parameters' Hessian is then taken with them held at the boundary.
  A Hessian that is not positive definite gives no Wald interval at all, with a note.
  Why not glmer's fit@optinfo$derivs: it is a Hessian in (theta, beta), a Cholesky parametrisation, by
  fixed-step differences, and is not computed on large data (calc.derivs); devfun2 + numDeriv is the same
  code path as lmer's and its Richardson extrapolation is more accurate.
- `ddf`: Satterthwaite (lmerTest's summary df and SE) and Kenward-Roger (pbkrtest's vcovAdj covariance and
  Lb_ddf per coefficient) t intervals for the fixed effects of gaussian fits.
- `bootstrap`: lme4::bootMer parametric bootstrap (use.u = FALSE: new group effects each simulation),
  percentile intervals for b, sd, cor and sigma; seeded from the fit seed so results are reproducible.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from compare.estimators import _frequentist as fq
from compare.estimators import _r
from compare.fitresult import interval_row, name_b, name_cor, name_sd

DDF_METHODS = ("satterthwaite", "kenward-roger")
SD_TOL = 1e-4  # an SD below SD_TOL x sigma is at zero (lme4's singularity tolerance)
COR_TOL = 0.01  # a |cor| above 1 - COR_TOL is at the boundary: boundary_flags' corr_at_bound rule (> 0.99)


# --------------------------------------------------------------------------------------------- Wald


def wald_rows(
    w: Any, blocks: list[tuple[str, list[str], np.ndarray]], gaussian: bool, level: float
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Wald rows by parameter name for sd, cor and sigma from wald_se's result (R/lme4_intervals.R) (theta order:
    per block the lower triangle column by column, then sigma), and fit-level notes."""
    est = np.atleast_1d(np.asarray(w["est"], float))
    se_u = np.atleast_1d(np.asarray(w["se_u"], float))
    status = _r.strs(w["status"])
    hess_note = next(iter(_r.strs(w["note"])), None)
    notes = [f"Wald: {hess_note}"] if hess_note else []
    rows: dict[str, dict[str, Any]] = {}
    pos = 0
    for g, terms, _ in blocks:
        q = len(terms)
        for j in range(q):
            for i in range(j, q):
                s, e, st = se_u[pos], float(est[pos]), status[pos]
                pos += 1
                if i == j:
                    row = fq.sd_row(g, terms[i], e, s, note=_why(st, hess_note), level=level)
                else:
                    se_r = s * (1 - e * e) if np.isfinite(s) else math.nan  # back from the atanh scale
                    row = fq.cor_row(g, terms[j], terms[i], e, se_r, note=_why(st, hess_note), level=level)
                rows[row["parameter"]] = row
    if gaussian:
        rows["sigma"] = sigma_row(float(est[pos]), se_u[pos], _why(status[pos], hess_note), level)
    held = [p for p, st in zip(rows, status) if st != "ok"]
    if held and not hess_note and any(r["interval"] != "none" for r in rows.values()):
        notes.append(f"Wald intervals are conditional on {', '.join(held)} held at the boundary")
    return rows, notes


def _why(status: str, hess_note: str | None) -> str:
    """The note of a variance parameter without a Wald interval."""
    if status == "sd-zero":
        return "SD at the boundary (estimate ~ 0): no Wald interval on the log-SD scale"
    if status == "cor-bound":
        return "correlation at the boundary (|cor| > 0.99): no Wald interval on the atanh scale"
    if status == "cor-undefined":
        return "correlation of an SD at zero is not identified: no interval"
    return f"no Wald interval: {hess_note}" if hess_note else "no finite Wald SE"


def sigma_row(sigma: float, se_log: float, note: str | None, level: float) -> dict[str, Any]:
    """sigma with a Wald interval on the log scale (like fq.sd_row)."""
    ok, z = bool(np.isfinite(se_log)) and sigma > 0, fq.z_quantile(level)
    row = {
        "parameter": "sigma",
        "estimate": sigma,
        "se": sigma * se_log if ok else math.nan,
        "lower": sigma * math.exp(-z * se_log) if ok else math.nan,
        "upper": sigma * math.exp(z * se_log) if ok else math.nan,
        "interval": "wald-log-sd" if ok else "none",
    }
    if not ok:
        row["note"] = note or "no finite Wald SE for sigma"
    return row


# ----------------------------------------------------------------------------------- ddf, bootstrap


def ddf_rows(
    r: Any, primary: list[dict[str, Any]], level: float
) -> tuple[list[dict[str, Any]], dict[str, dict[str, dict[str, float]]], list[str]]:
    """Extra b[...] rows, one per method and fixed effect: estimate +- t(df) x SE_method, where SE_method is
    lmerTest's SE (= lme4's) for Satterthwaite and the SE from pbkrtest's adjusted covariance (vcovAdj) for
    Kenward-Roger. Extra rows repeat the primary row's estimate and se (the row contract), so each method's
    df and SE go to FitResult.details["ddf"][method][parameter] (the params table has no df column)."""
    rows: list[dict[str, Any]] = []
    info: dict[str, dict[str, dict[str, float]]] = {}
    tail = 0.5 + level / 2
    for k, method in enumerate(_r.strs(r["methods"])):
        v = _r.nth(r["values"], k)
        se = np.atleast_1d(np.asarray(_r.nth(v, 0), float))
        df = np.atleast_1d(np.asarray(_r.nth(v, 1), float))
        for base, s, d in zip(primary, se, df, strict=True):
            info.setdefault(method, {})[base["parameter"]] = {"df": float(d), "se": float(s)}
            ok = bool(np.isfinite(s) and np.isfinite(d) and d > 0)
            q = float(stats.t.ppf(tail, d)) if ok else math.nan
            b = base["estimate"]
            rows.append(
                interval_row(base, method, b - q * s, b + q * s)
                if ok
                else interval_row(base, "none", math.nan, math.nan, note=f"{method}: no finite df or SE")
            )
    return rows, info, _r.strs(r["msgs"])


def boot_intervals(
    r: Any, names: list[str], blocks: list[tuple[str, list[str], np.ndarray]], gaussian: bool
) -> tuple[dict[str, tuple[float, float]], list[str]]:
    """Percentile intervals by parameter name (b, then the variance parameters in theta order, then sigma),
    and a note with the number of simulations, failed refits and warnings."""
    lower = np.atleast_1d(np.asarray(r["lower"], float))
    upper = np.atleast_1d(np.asarray(r["upper"], float))
    used = np.atleast_1d(np.asarray(r["n_used"], float))
    order = [name_b(n) for n in names]
    for g, terms, _ in blocks:
        q = len(terms)
        order += [
            name_sd(g, terms[i]) if i == j else name_cor(g, terms[j], terms[i]) for j in range(q) for i in range(j, q)
        ]
    if gaussian:
        order.append("sigma")
    nsim, failed, nwarn = int(_r.num(r["nsim"])), int(_r.num(r["failed"])), int(_r.num(r["warnings"]))
    out = {p: (float(lo), float(hi)) for p, lo, hi in zip(order, lower, upper, strict=True)}
    text = f"bootstrap: {nsim} parametric simulations (bootMer), {failed} failed refits"
    if failed:
        text += " (" + "; ".join(sorted(set(_r.strs(r["fail_msgs"]))))[:300] + ")"
    if nwarn:
        text += f", {nwarn} warnings in refits"
    fewer = [p for p, u in zip(order, used) if u < nsim - failed]
    if fewer:
        text += f"; non-finite values dropped for {', '.join(fewer)}"
    return out, [text]


def boot_row(primary: dict[str, Any], ci: tuple[float, float] | None) -> dict[str, Any]:
    """A 'bootstrap' row of `primary`'s parameter (or 'none' with a note when there is no interval)."""
    if ci is not None and all(np.isfinite(ci)):
        return interval_row(primary, "bootstrap", ci[0], ci[1])
    return interval_row(
        primary, "none", math.nan, math.nan, note="bootstrap: too few finite bootstrap values for an interval"
    )
