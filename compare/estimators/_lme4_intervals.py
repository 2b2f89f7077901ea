"""Interval machinery of the lme4 engine beyond lme4's own output (issue 11), kept apart so lme4.py stays a
readable fit-and-map module. Kept out of the registry (leading underscore): it defines no engine.

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

R_CODE = r"""
.hbench_lmer_devfun <- function(fit) {
  # lme4's deviance of an lmer fit as a function of (SDs, cors, sigma) in Cv_to_Sv order, REML or ML as the
  # fit; like lme4:::devfun2 but without its refitML(), on copies of the fit's predictor and response.
  pp <- fit@pp$copy(); resp <- fit@resp$copy()
  vlist <- lengths(fit@cnms); reml <- lme4::isREML(fit)
  n <- nrow(pp$V); p <- ncol(pp$X); np <- length(pp$theta) + 1L
  ldW <- sum(log(resp$weights)); nn <- if (reml) n - p else n
  function(pars) {
    sigma <- pars[np]
    .Call(lme4:::lmer_Deviance, pp$ptr(), resp$ptr(), lme4:::Sv_to_Cv(pars, n = vlist, s = sigma))
    s2 <- sigma^2
    pp$ldL2() - ldW + (resp$wrss() + pp$sqrL(1)) / s2 + nn * log(2 * pi * s2) + (if (reml) pp$ldRX2() else 0)
  }
}

.hbench_wald <- function(fit, sd_tol, cor_tol) {
  lmm <- lme4::isLMM(fit)
  vlist <- lengths(fit@cnms)
  scale <- if (lmm) sigma(fit) else 1
  if (lmm) {
    dev <- .hbench_lmer_devfun(fit)
    opt <- suppressWarnings(lme4:::Cv_to_Sv(lme4::getME(fit, "theta"), n = vlist, s = scale))
  } else {
    dev <- lme4:::devfun2(fit, useSc = FALSE)
    opt <- attr(dev, "optimum")  # SDs and cors, then the fixed effects
  }
  opt <- as.numeric(opt)
  kind <- character(0); status <- character(0); k <- 0L
  for (q in vlist) {
    pos <- matrix(0L, q, q)
    for (j in seq_len(q)) for (i in j:q) { k <- k + 1L; pos[i, j] <- k; kind[k] <- if (i == j) "sd" else "cor" }
    for (j in seq_len(q)) status[pos[j, j]] <- if (is.finite(opt[pos[j, j]]) && opt[pos[j, j]] > sd_tol * scale) "ok" else "sd-zero"
    for (j in seq_len(q)) for (i in j:q) if (i > j) {
      v <- opt[pos[i, j]]
      status[pos[i, j]] <- if (status[pos[i, i]] != "ok" || status[pos[j, j]] != "ok") "cor-undefined"
                           else if (!is.finite(v) || abs(v) > 1 - cor_tol) "cor-bound" else "ok"
      if (status[pos[i, j]] == "cor-undefined") opt[pos[i, j]] <- 0
    }
  }
  if (lmm) { k <- k + 1L; kind[k] <- "sd"; status[k] <- "ok" }
  nvar <- k
  kind <- c(kind, rep("beta", length(opt) - nvar))
  free <- c(status == "ok", rep(TRUE, length(opt) - nvar))
  fk <- kind[free]
  to_u <- function(x) { x[fk == "sd"] <- log(x[fk == "sd"]); x[fk == "cor"] <- atanh(x[fk == "cor"]); x }
  from_u <- function(u) { u[fk == "sd"] <- exp(u[fk == "sd"]); u[fk == "cor"] <- tanh(u[fk == "cor"]); u }
  f <- function(u) { x <- opt; x[free] <- from_u(u); dev(x) }
  se <- rep(NA_real_, nvar); note <- character(0)
  nfree <- sum(free[seq_len(nvar)])
  if (nfree > 0) {
    H <- tryCatch(suppressWarnings(numDeriv::hessian(f, to_u(opt[free]))), error = function(e) conditionMessage(e))
    if (is.character(H)) {
      note <- paste("the numerical Hessian of the deviance failed:", H)
    } else {
      H <- (H + t(H)) / 2
      ev <- if (all(is.finite(H))) eigen(H, symmetric = TRUE, only.values = TRUE)$values else NA_real_
      if (any(!is.finite(ev)) || min(ev) <= 1e-8 * max(abs(ev))) {
        note <- sprintf("the Hessian of the deviance is not positive definite (smallest eigenvalue %.3g)", min(ev))
      } else {
        se[free[seq_len(nvar)]] <- sqrt(diag(2 * solve(H)))[seq_len(nfree)]
      }
    }
  }
  list(est = opt[seq_len(nvar)], kind = kind[seq_len(nvar)], se_u = se, status = status, note = note)
}

.hbench_ddf <- function(fit, methods) {
  out <- list(); msgs <- character(0)
  for (m in methods) {
    r <- tryCatch(withCallingHandlers({
      if (m == "satterthwaite") {
        cf <- summary(lmerTest::as_lmerModLmerTest(fit), ddf = "Satterthwaite")$coefficients
        list(se = unname(cf[, "Std. Error"]), df = unname(cf[, "df"]))
      } else {
        V0 <- as.matrix(vcov(fit)); Va <- pbkrtest::vcovAdj(fit)  # Va keeps the attributes Lb_ddf reads
        p <- ncol(V0)
        df <- vapply(seq_len(p), function(j) { L <- matrix(0, 1, p); L[j] <- 1; pbkrtest::Lb_ddf(L, V0, Va) }, 0)
        list(se = unname(sqrt(diag(as.matrix(Va)))), df = df)
      }
    }, warning = function(w) { msgs <<- c(msgs, paste0(m, ": ", conditionMessage(w))); invokeRestart("muffleWarning") },
       message = function(w) invokeRestart("muffleMessage")),
    error = function(e) { msgs <<- c(msgs, paste0(m, " failed: ", conditionMessage(e))); NULL })
    if (!is.null(r)) out[[m]] <- r
  }
  list(methods = names(out), values = unname(out), msgs = msgs)
}

.hbench_varpars <- function(fit) {
  lmm <- lme4::isLMM(fit)
  v <- suppressWarnings(lme4:::Cv_to_Sv(lme4::getME(fit, "theta"), n = lengths(fit@cnms), s = if (lmm) sigma(fit) else 1))
  if (!lmm) v <- v[seq_along(lme4::getME(fit, "theta"))]
  c(unname(lme4::fixef(fit)), as.numeric(v))
}

.hbench_boot <- function(fit, nsim, seed, level) {
  nwarn <- 0L
  b <- withCallingHandlers(
    lme4::bootMer(fit, .hbench_varpars, nsim = nsim, seed = seed, type = "parametric", use.u = FALSE),
    warning = function(w) { nwarn <<- nwarn + 1L; invokeRestart("muffleWarning") },
    message = function(m) invokeRestart("muffleMessage"))
  t <- b$t
  nfe <- length(lme4::fixef(fit))
  ok <- apply(t, 1, function(r) all(is.finite(r[seq_len(nfe)])))
  a <- (1 - level) / 2
  q <- apply(t[ok, , drop = FALSE], 2, function(x) {
    x <- x[is.finite(x)]
    if (length(x) < 2) c(NA_real_, NA_real_, length(x)) else c(unname(quantile(x, c(a, 1 - a))), length(x)) })
  fail <- attr(b, "bootFail")
  list(lower = q[1, ], upper = q[2, ], n_used = q[3, ], nsim = nsim,
       failed = as.integer(if (is.null(fail)) sum(!ok) else fail), warnings = nwarn,
       fail_msgs = as.character(names(attr(b, "boot.fail.msgs"))))
}
"""


# --------------------------------------------------------------------------------------------- Wald


def wald_rows(w: Any, blocks: list[tuple[str, list[str], np.ndarray]], gaussian: bool,
              level: float) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Wald rows by parameter name for sd, cor and sigma from .hbench_wald's result (theta order: per block
    the lower triangle column by column, then sigma), and fit-level notes."""
    est = np.atleast_1d(np.asarray(w["est"], float))
    se_u = np.atleast_1d(np.asarray(w["se_u"], float))
    status = _r.strs(w["status"])
    hess_note = (_r.strs(w["note"]) or [None])[0]
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
    row = {"parameter": "sigma", "estimate": sigma, "se": sigma * se_log if ok else math.nan,
           "lower": sigma * math.exp(-z * se_log) if ok else math.nan,
           "upper": sigma * math.exp(z * se_log) if ok else math.nan, "interval": "wald-log-sd" if ok else "none"}
    if not ok:
        row["note"] = note or "no finite Wald SE for sigma"
    return row


# ----------------------------------------------------------------------------------- ddf, bootstrap


def ddf_rows(r: Any, primary: list[dict[str, Any]],
             level: float) -> tuple[list[dict[str, Any]], dict[str, dict[str, dict[str, float]]], list[str]]:
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
            rows.append(interval_row(base, method, b - q * s, b + q * s) if ok else
                        interval_row(base, "none", math.nan, math.nan, note=f"{method}: no finite df or SE"))
    return rows, info, _r.strs(r["msgs"])


def boot_intervals(r: Any, names: list[str], blocks: list[tuple[str, list[str], np.ndarray]],
                   gaussian: bool) -> tuple[dict[str, tuple[float, float]], list[str]]:
    """Percentile intervals by parameter name (b, then the variance parameters in theta order, then sigma),
    and a note with the number of simulations, failed refits and warnings."""
    lower = np.atleast_1d(np.asarray(r["lower"], float))
    upper = np.atleast_1d(np.asarray(r["upper"], float))
    used = np.atleast_1d(np.asarray(r["n_used"], float))
    order = [name_b(n) for n in names]
    for g, terms, _ in blocks:
        q = len(terms)
        order += [name_sd(g, terms[i]) if i == j else name_cor(g, terms[j], terms[i])
                  for j in range(q) for i in range(j, q)]
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
    return interval_row(primary, "none", math.nan, math.nan,
                        note="bootstrap: too few finite bootstrap values for an interval")
