"""lme4 (lmer / glmer) through rpy2: the frequentist reference engine.

R is started lazily (importing this module does not start it), conversions happen inside rpy2
conversion contexts (no global activation), R's console output is swallowed, and R warnings and
messages are collected with `withCallingHandlers` so they land in FitResult.warnings.

- glmer uses `nlminbwrap` (FINDINGS: the default optimiser stopped at a worse, singular optimum on 2 of
  7 binomial datasets; nlminbwrap did not); lmer keeps its default (within 2.5e-5 of the best of 7).
- `singular` comes from `boundary_flags` on VarCorr, like every other engine; lme4's own
  `isSingular()` is kept in details["lme4_isSingular"].
- SD/correlation intervals: profile likelihood for lmer (affordable), nothing for glmer by default
  (profiling glmer costs many refits; lme4 has no SEs for variance parameters), with a note.
- `criterion` says whether `loglik` is REML or ML, so that the summary can check whether another engine
  on the same data reached lme4's optimum (lme4's and statsmodels' definitions agree, constants included).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from compare.data import FitData
from compare.estimators import _frequentist as fq
from compare.estimators.base import YES, Estimator, Support, no
from compare.families import FAMILIES
from compare.settings import Settings, setting
from compare.fitresult import FitResult, boundary_flags, make_params
from compare.formula import Formula, ModelSpec

GLMER_OPTIMIZER = "nlminbwrap"

R_CODE = r"""
.hbench_fit <- function(formula, data, family, link, reml, optimizer, profile, level) {
  msgs <- character(0)
  keep_w <- function(w) { msgs <<- c(msgs, paste0("warning: ", conditionMessage(w))); invokeRestart("muffleWarning") }
  keep_m <- function(m) { msgs <<- c(msgs, paste0("message: ", trimws(conditionMessage(m)))); invokeRestart("muffleMessage") }
  t0 <- proc.time()[["elapsed"]]
  fit <- withCallingHandlers(
    if (family == "gaussian") lme4::lmer(as.formula(formula), data = data, REML = reml)
    else lme4::glmer(as.formula(formula), data = data, family = get(family)(link = link),
                     control = lme4::glmerControl(optimizer = optimizer)),
    warning = keep_w, message = keep_m)
  wall <- proc.time()[["elapsed"]] - t0
  vc <- lme4::VarCorr(fit)
  cnms <- lme4::getME(fit, "cnms")
  re <- as.data.frame(lme4::ranef(fit, condVar = TRUE))
  prof <- NULL
  prof_msgs <- character(0)
  if (profile) {
    prof <- tryCatch(withCallingHandlers(
        confint(fit, parm = "theta_", level = level, method = "profile", oldNames = FALSE, quiet = TRUE),
        warning = function(w) { prof_msgs <<- c(prof_msgs, conditionMessage(w)); invokeRestart("muffleWarning") },
        message = function(m) { prof_msgs <<- c(prof_msgs, trimws(conditionMessage(m))); invokeRestart("muffleMessage") }),
      error = function(e) { prof_msgs <<- c(prof_msgs, paste("error:", conditionMessage(e))); NULL })
  }
  conv <- fit@optinfo$conv
  list(fixef = lme4::fixef(fit), fixef_names = names(lme4::fixef(fit)),
       vcov = as.matrix(vcov(fit)),
       vc = unname(lapply(vc, function(m) { m <- as.matrix(m); attr(m, "stddev") <- NULL; attr(m, "correlation") <- NULL; m })),
       cnms_groups = names(cnms), cnms = unname(cnms),
       sigma = sigma(fit), loglik = as.numeric(logLik(fit)), singular = lme4::isSingular(fit),
       optimizer = as.character(fit@optinfo$optimizer), opt_code = as.numeric(conv$opt),
       lme4_msgs = as.character(unlist(conv$lme4$messages)),
       ranef = re, fitted = as.numeric(fitted(fit)),
       profile = if (is.null(prof)) NULL else as.matrix(prof),
       profile_names = if (is.null(prof)) character(0) else rownames(prof),
       profile_msgs = prof_msgs, msgs = msgs, wall = wall)
}
"""


@contextmanager
def quiet_r() -> Iterator[list[str]]:
    """Swallow R's console output (kept in the yielded list) for the duration of the block."""
    from rpy2.rinterface_lib import callbacks

    out: list[str] = []
    saved = callbacks.consolewrite_print, callbacks.consolewrite_warnerror
    callbacks.consolewrite_print = callbacks.consolewrite_warnerror = out.append
    try:
        yield out
    finally:
        callbacks.consolewrite_print, callbacks.consolewrite_warnerror = saved


@functools.lru_cache(maxsize=1)
def r_status() -> Support:
    """Start R once per process and load lme4; a reason when that is impossible."""
    saved = os.environ.get("LD_LIBRARY_PATH")
    try:
        return _start_r()
    finally:
        # rpy2 prepends R's and the system's library folders to LD_LIBRARY_PATH. That only matters to child
        # processes, where it breaks them: a pyenv Python started by the harness then loads Debian's
        # libpython (AttributeError: '_thread.RLock' object has no attribute '_recursion_count').
        if saved is None:
            os.environ.pop("LD_LIBRARY_PATH", None)
        else:
            os.environ["LD_LIBRARY_PATH"] = saved


def _start_r() -> Support:
    try:
        import rpy2.robjects as ro
    except Exception as exc:  # ImportError, or rpy2 built for another R (undefined symbols)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return no(f"lme4 needs R and rpy2 (`pip install 'rpy2>=3.5,<3.6'` for R < 4.5): {first}")
    try:
        with quiet_r():
            ok = bool(ro.r('as.logical(suppressWarnings(suppressPackageStartupMessages(requireNamespace("lme4", quietly = TRUE))))')[0])
            if ok:
                ro.r(R_CODE)
    except Exception as exc:  # noqa: BLE001 - any R failure means the engine is unavailable
        return no(f"R failed to start or load lme4: {exc}")
    return YES if ok else no("R is installed but the lme4 package is not (apt-get install r-cran-lme4)")


def r_formula(formula: Formula, family: str) -> str:
    """lme4 syntax for a parsed formula: binomial responses as cbind(.s, .f), `||` as separate terms."""
    lhs = "cbind(hb_s, hb_f)" if family == "binomial" else formula.response.y
    terms = [formula.fixed if formula.fixed else "0"]
    if formula.offset:
        terms.append(f"offset({formula.offset})")
    terms += [f"({b.expr} | {b.group})" for b in formula.blocks]
    return f"{lhs} ~ {' + '.join(terms)}"


def r_frame(data: FitData) -> pd.DataFrame:
    """Only the columns the formula reads; groups as strings; binomial successes/failures added."""
    f = data.formula
    design = data.design
    cols = sorted(f.variables - set(f.response.columns))
    frame = data.frame[cols].copy()
    for g in {c for b in f.blocks for c in b.group_columns}:
        frame[g] = frame[g].astype(str)
    for c in frame.columns:
        if frame[c].dtype == object:  # same reference level as formulae (sorted), not R's locale order
            frame[c] = pd.Categorical(frame[c], categories=sorted(frame[c].unique()))
    if data.family == "binomial":
        frame["hb_s"] = design.y
        frame["hb_f"] = design.trials - design.y
    else:
        frame[f.response.y] = design.y
    return frame.reset_index(drop=True)


def run_r_fit(data: FitData, reml: bool, profile: bool, level: float = fq.LEVEL) -> dict[str, Any]:
    """Fit in R and bring the pieces back as Python objects."""
    import rpy2.robjects as ro
    from rpy2.robjects import default_converter, numpy2ri, pandas2ri
    from rpy2.robjects.conversion import localconverter

    status = r_status()
    if not status:
        raise RuntimeError(status.reason)
    conv = default_converter + numpy2ri.converter + pandas2ri.converter
    with quiet_r() as console, localconverter(conv):
        rdf = ro.conversion.get_conversion().py2rpy(r_frame(data))
        res = ro.r[".hbench_fit"](r_formula(data.formula, data.family), rdf, data.family,
                                  data.link, reml, GLMER_OPTIMIZER, profile, level)
        out = dict(res.items())  # an R named list arrives as an OrdDict under these converters
    out["console"] = console
    return out


def _strs(x: Any) -> list[str]:
    return [] if x is None or x is ro_null() else [str(v) for v in np.atleast_1d(x)]


def ro_null():
    import rpy2.rinterface as ri

    return ri.NULL


def _nth(x: Any, k: int) -> Any:
    """k-th element of a converted R list (an OrdDict, a ListVector or a Python list)."""
    if hasattr(x, "byindex"):
        return x.byindex(k)[1]
    return list(x.values())[k] if isinstance(x, dict) else x[k]


def _term(name: str) -> str:
    return "Intercept" if name == "(Intercept)" else name


@dataclass(frozen=True)
class Lme4Settings(Settings):
    reml: bool = setting(True, "REML (true) or maximum likelihood (false); gaussian models only (glmer is ML)")
    profile: bool | None = setting(None, "profile-likelihood intervals for sd, cor and sigma "
                                         "(default: true for lmer, false for glmer, where it costs many refits)")


class Lme4Engine(Estimator):
    """lme4::lmer / glmer."""

    name: ClassVar[str] = "lme4"
    kind: ClassVar[str] = "frequentist"
    Settings: ClassVar[type[Settings]] = Lme4Settings

    def available(self) -> Support:
        return r_status()

    def supports(self, model: ModelSpec) -> Support:
        if model.family not in FAMILIES:
            return no(f"lme4 engine: family {model.family!r} is not wired up")
        if model.link not in FAMILIES[model.family].links:
            return no(f"lme4 engine: link {model.link!r} is not available for {model.family}")
        if not model.formula.blocks:
            return no("lme4 needs at least one random-effect term (use lm/glm otherwise)")
        return YES

    def fit(self, data: FitData, *, seed: int) -> FitResult:
        self.require(data.model)
        gaussian = data.family == "gaussian"
        reml = self.settings.reml and gaussian
        profile = gaussian if self.settings.profile is None else self.settings.profile
        r, wall = fq.timed(lambda: run_r_fit(data, reml, profile, self.level))
        out = summarise(r, data, profile, self.level)
        out.wall_s = wall
        out.criterion = "REML" if reml else "ML"
        out.details["r_wall_s"] = float(np.atleast_1d(r["wall"])[0])
        return out


def summarise(r: dict[str, Any], data: FitData, profile: bool, level: float = fq.LEVEL) -> FitResult:
    design = data.design
    gaussian = data.family == "gaussian"
    notes: list[str] = []
    names = [_term(n) for n in _strs(r["fixef_names"])]
    if names != design.x_names:
        notes.append(f"lme4's fixed-effect names {names} differ from the design's {design.x_names}")
    est = np.atleast_1d(np.asarray(r["fixef"], float))
    se = np.sqrt(np.diag(np.atleast_2d(np.asarray(r["vcov"], float)))) if est.size else np.zeros(0)
    rows = fq.fixed_rows(names, est, se, fq.t_df(design), level)
    sigma = float(np.atleast_1d(r["sigma"])[0]) if gaussian else 1.0
    blocks = _varcorr_blocks(r)
    prof = _profile_table(r) if profile else None
    if profile and prof is None:
        notes.append("profile intervals failed: " + "; ".join(_strs(r["profile_msgs"])))
    elif profile and _strs(r["profile_msgs"]):
        notes.append("profile: " + "; ".join(_strs(r["profile_msgs"])))
    rows += _variance_rows(blocks, prof, gaussian)
    if gaussian:
        rows.append(_sigma_row(sigma, prof))
    rows += _ranef_rows(r["ranef"], level)
    if data.poststratify:
        w = data.frame[data.poststratify].to_numpy(float)
        rows.append(fq.mrp_row(w, np.asarray(r["fitted"], float)))
    singular, corr_bound, var_zero = boundary_flags([c for _, _, c in blocks], sigma)
    lme4_msgs = _strs(r["lme4_msgs"])
    warnings = _strs(r["msgs"]) + [f"lme4: {m}" for m in lme4_msgs if m not in " ".join(_strs(r["msgs"]))]
    opt_code = float(np.atleast_1d(r["opt_code"])[0])
    converged = opt_code == 0 and not any("converge" in m for m in lme4_msgs + _strs(r["msgs"]))
    loglik = float(np.atleast_1d(r["loglik"])[0])
    if not np.isfinite(loglik):
        converged = False
        notes.append(f"log-likelihood is not finite ({loglik})")
    optimizer = " ".join(_strs(r["optimizer"]))
    return FitResult(engine="lme4", params=make_params(rows), converged=converged, singular=singular,
                     corr_at_bound=corr_bound, var_at_zero=var_zero, loglik=loglik, optimizer=optimizer,
                     warnings=warnings, notes=notes,
                     details={"lme4_isSingular": bool(np.atleast_1d(r["singular"])[0]), "opt_code": opt_code})


def _varcorr_blocks(r: dict[str, Any]) -> list[tuple[str, list[str], np.ndarray]]:
    """(group, terms, covariance) per random-effect term, in lme4's order (theta order)."""
    groups = _strs(r["cnms_groups"])
    out = []
    for k, g in enumerate(groups):
        terms = [_term(t) for t in _strs(_nth(r["cnms"], k))]
        cov = np.atleast_2d(np.asarray(_nth(r["vc"], k), float))
        out.append((g, terms, cov))
    return out


def _profile_table(r: dict[str, Any]) -> np.ndarray | None:
    """confint(..., 'theta_') rows, checked against the theta order the mapping below assumes."""
    prof = r["profile"]
    if prof is None or prof is ro_null():
        return None
    expected = []
    for g, terms, _ in _varcorr_blocks(r):
        q = len(terms)
        expected += ["sd_" if i == j else "cor_" for j in range(q) for i in range(j, q)]
    names = _strs(r["profile_names"])
    if len(names) < len(expected) or any(not n.startswith(e) for n, e in zip(names, expected)):
        return None
    return np.atleast_2d(np.asarray(prof, float))


def _variance_rows(blocks, prof: np.ndarray | None, gaussian: bool) -> list[dict[str, Any]]:
    """sd/cor rows; intervals from the profile table, whose rows follow theta order
    (per block: the lower triangle column by column: sd_1, cor_21, ..., sd_2, ...)."""
    rows: list[dict[str, Any]] = []
    pos = 0
    for g, terms, cov in blocks:
        q = len(terms)
        sds = np.sqrt(np.clip(np.diag(cov), 0, None))
        for j in range(q):
            for i in range(j, q):
                ci = prof[pos] if prof is not None and pos < prof.shape[0] else (math.nan, math.nan)
                pos += 1
                if i == j:
                    rows.append(_interval_row(fq.sd_row(g, terms[i], float(sds[i]), math.nan), ci, prof))
                else:
                    r_ = cov[i, j] / (sds[i] * sds[j]) if sds[i] > 0 and sds[j] > 0 else math.nan
                    rows.append(_interval_row(fq.cor_row(g, terms[j], terms[i], float(r_), math.nan), ci, prof))
    return rows


def _interval_row(row: dict[str, Any], ci, prof) -> dict[str, Any]:
    lo, hi = float(ci[0]), float(ci[1])
    row["se"] = math.nan
    if np.isfinite(lo) and np.isfinite(hi):
        row.update(lower=lo, upper=hi, interval="profile")
        row.pop("note", None)
    else:
        row["note"] = ("lme4 gives no SE for variance parameters and no profile interval was computed "
                       "(glmer: profiling is costly; pass profile=True)" if prof is None
                       else "profile interval not finite")
    return row


def _sigma_row(sigma: float, prof: np.ndarray | None) -> dict[str, Any]:
    row = {"parameter": "sigma", "estimate": sigma, "se": math.nan, "lower": math.nan, "upper": math.nan,
           "interval": "none", "note": "no profile interval computed"}
    if prof is not None:
        lo, hi = prof[-1]
        row.update(lower=float(lo), upper=float(hi), interval="profile", note=None)
    return row


def _ranef_rows(re: Any, level: float) -> list[dict[str, Any]]:
    """r[g][level,term] from as.data.frame(ranef(fit, condVar = TRUE)): conditional modes and SDs."""
    df = re if isinstance(re, pd.DataFrame) else pd.DataFrame(re)
    rows = []
    for rec in df.itertuples(index=False):
        mode, sd = float(rec.condval), float(rec.condsd)
        term = _term(str(rec.term))
        rows += fq.group_effect_rows(str(rec.grpvar), [str(rec.grp)], [term], np.array([[mode]]), np.array([[sd]]),
                                      level=level)
    return rows


ESTIMATORS = [Lme4Engine]
