"""lme4 (lmer / glmer) through rpy2: the frequentist reference engine.

R is started lazily (importing this module does not start it), conversions happen inside rpy2
conversion contexts (no global activation), R's console output is swallowed, and R warnings and
messages are collected with `withCallingHandlers` so they land in FitResult.warnings.

- glmer uses `nlminbwrap` (FINDINGS: the default optimiser stopped at a worse, singular optimum on 2 of
  7 binomial datasets; nlminbwrap did not); lmer keeps its default (within 2.5e-5 of the best of 7).
- `singular` comes from `boundary_flags` on VarCorr, like every other engine; lme4's own
  `isSingular()` is kept in details["lme4_isSingular"].
- SD/correlation/sigma intervals: Wald on the log-SD / atanh(cor) / log-sigma scale from a numerical Hessian
  of lme4's own deviance (compare.estimators._lme4_intervals, which says how) on every fit; profile
  likelihood for lmer by default (affordable), where the profile row is the primary one and the Wald row an
  extra one; glmer is not profiled by default (it costs many refits), so Wald is its primary interval.
- `ddf`: Satterthwaite (lmerTest) / Kenward-Roger (pbkrtest) t intervals for the fixed effects, extra rows;
  `bootstrap`: a parametric bootMer percentile interval for b, sd, cor and sigma, extra rows; `robust`:
  cluster-robust CR2 SEs with Satterthwaite df (clubSandwich) for the fixed effects, extra 'cr2' rows, and for
  ML fits with one grouping factor Huber-White SEs of the variances and sigma^2, computed in Python from lme4's
  estimates and the data (compare.estimators._sandwich), extra 'robust-variance' / 'robust-log-sd' rows.
- `criterion` says whether `loglik` is REML or ML, so that the summary can check whether another engine
  on the same data reached lme4's optimum (lme4's and statsmodels' definitions agree, constants included).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from compare.data import FitData
from compare.estimators import _frequentist as fq
from compare.estimators import _lme4_intervals as iv
from compare.estimators import _r
from compare.estimators import _sandwich as sw
from compare.estimators._r import quiet_r, r_formula, r_frame  # noqa: F401 - public names of this module
from compare.estimators.base import Estimator, Support, glmm_support, no
from compare.fitresult import FitResult, boundary_flags, interval_row, make_params, name_b
from compare.formula import ModelSpec
from compare.settings import Settings, setting

GLMER_OPTIMIZER = "nlminbwrap"
# glmer optimisers a suite may choose; "default" is R's own glmerControl() (bobyqa, then Nelder_Mead)
GLMER_OPTIMIZERS = {"nlminbwrap": ("nlminbwrap",), "bobyqa": ("bobyqa",), "default": ("bobyqa", "Nelder_Mead")}
DDF_PACKAGES = {"satterthwaite": "lmerTest", "kenward-roger": "pbkrtest"}
CR2_PACKAGE = "clubSandwich"

R_CODE = "lme4.R"  # compare/estimators/R/lme4.R (which imports lme4_intervals.R)


def r_status() -> Support:
    """Start R once per process and load lme4 (compare.estimators._r); a reason when that is impossible."""
    return _r.package_status("lme4", R_CODE)


def run_r_fit(
    data: FitData,
    reml: bool,
    profile: bool,
    level: float = fq.LEVEL,
    ddf: tuple[str, ...] = (),
    bootstrap: int = 0,
    seed: int = 1,
    robust: bool = False,
    optimizer: str = GLMER_OPTIMIZER,
) -> dict[str, Any]:
    """Fit in R and bring the pieces back as Python objects."""
    return _r.call(
        "lme4",
        R_CODE,
        "fit_lme4",
        r_formula(data.formula, data.family),
        r_frame(data),
        data.family,
        data.link,
        reml,
        _r.str_vector(list(GLMER_OPTIMIZERS[optimizer])),
        profile,
        level,
        _r.str_vector(list(ddf)),
        bootstrap,
        seed % (2**31 - 1),
        iv.SD_TOL,
        iv.COR_TOL,
        robust,
    )


_strs, _nth, _term = _r.strs, _r.nth, _r.term


@dataclass(frozen=True)
class Lme4Settings(Settings):
    reml: bool = setting(True, "REML (true) or maximum likelihood (false); gaussian models only (glmer is ML)")
    profile: bool | None = setting(
        None,
        "profile-likelihood intervals for sd, cor and sigma "
        "(default: true for lmer, false for glmer, where it costs many refits); "
        "Wald intervals on the log-SD/atanh scale are given either way",
    )
    ddf: tuple[str, ...] = setting(
        (),
        "extra small-sample t intervals for the fixed effects of gaussian fits, "
        "one row each: 'satterthwaite' (lmerTest), 'kenward-roger' (pbkrtest; "
        "adjusted SE); ~0.1-1 s per fit",
    )
    bootstrap: int = setting(
        0,
        "parametric bootstrap simulations (lme4::bootMer, seeded from the fit seed): "
        "an extra percentile-interval row for b, sd, cor and sigma; 0 = off; "
        "costs that many refits",
        lo=0,
    )
    robust: bool = setting(
        False,
        "cluster-robust CR2 standard errors (clubSandwich) with Satterthwaite df for the "
        "fixed effects of gaussian fits, clustered on the outermost grouping factor: an "
        "extra 'cr2' row each (SE and df in details['cr2']); needs nested (not crossed) "
        "grouping factors; for ML fits with one grouping factor also Huber-White SEs of the "
        "variances and sigma^2 (compare.estimators._sandwich): extra 'robust-variance' and "
        "'robust-log-sd' rows of the SDs and sigma",
    )
    glmer_optimizer: str = setting(
        GLMER_OPTIMIZER,
        "glmer's optimiser: 'nlminbwrap' (hbench's default: FINDINGS), 'bobyqa', or 'default' (R's own "
        "glmerControl(): bobyqa, then Nelder_Mead); lmer keeps its default",
    )

    def problems(self) -> list[str]:
        issues = super().problems()
        unknown = [m for m in self.ddf if m not in iv.DDF_METHODS]
        if unknown:
            issues.append(f"ddf {unknown[0]!r} is not one of {', '.join(map(repr, iv.DDF_METHODS))}")
        elif len(set(self.ddf)) < len(self.ddf):
            issues.append(f"ddf {list(self.ddf)} names a method twice")
        if self.glmer_optimizer not in GLMER_OPTIMIZERS:
            issues.append(f"glmer_optimizer {self.glmer_optimizer!r} is not one of {', '.join(GLMER_OPTIMIZERS)}")
        return issues


class Lme4Engine(Estimator):
    """lme4::lmer / glmer."""

    name: ClassVar[str] = "lme4"
    kind: ClassVar[str] = "frequentist"
    Settings: ClassVar[type[Settings]] = Lme4Settings
    settings: Lme4Settings

    def available(self) -> Support:
        status = r_status()
        for method in self.settings.ddf if status else ():
            package = DDF_PACKAGES[method]
            if not _r.package_status(package):
                return no(
                    f"lme4 with ddf = {method!r} needs the R package {package} "
                    f"(apt-get install r-cran-{package.lower()})"
                )
        if status and self.settings.robust and not _r.package_status(CR2_PACKAGE):
            return no(
                f"lme4 with robust = true needs the R package {CR2_PACKAGE} (apt-get install r-cran-clubsandwich)"
            )
        return status

    def supports(self, model: ModelSpec) -> Support:
        return glmm_support(model, "lme4", "lmer estimates the residual SD; its weights only scale it")

    def fit(self, data: FitData, *, seed: int) -> FitResult:
        self.require(data.model)
        gaussian = data.family == "gaussian"
        reml = self.settings.reml and gaussian
        profile = gaussian if self.settings.profile is None else self.settings.profile
        st = self.settings
        r, wall = fq.timed(
            lambda: run_r_fit(
                data, reml, profile, self.level, st.ddf, st.bootstrap, seed, st.robust, st.glmer_optimizer
            )
        )
        out = summarise(r, data, profile, self.level, ddf=st.ddf, robust=st.robust)
        out.wall_s = wall
        out.criterion = "REML" if reml else "ML"
        out.details["r_wall_s"] = float(np.atleast_1d(r["wall"])[0])
        return out


def summarise(
    r: dict[str, Any],
    data: FitData,
    profile: bool,
    level: float = fq.LEVEL,
    ddf: tuple[str, ...] = (),
    robust: bool = False,
) -> FitResult:
    design = data.design
    gaussian = data.family == "gaussian"
    notes: list[str] = []
    names = [_term(n) for n in _strs(r["fixef_names"])]
    if names != design.x_names:
        raise RuntimeError(
            f"lme4 fitted another model than the design's: fixed effects {names}, the design's {design.x_names}"
        )
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
    var_rows = _variance_rows(blocks, prof, gaussian) + ([_sigma_row(sigma, prof)] if gaussian else [])
    if data.family == "negbinomial":
        var_rows.append(_phi_row(r, level, notes))
    wald = _wald(r, blocks, gaussian, level, notes)
    var_rows, extra = _with_wald(var_rows, wald, profile)
    extra += fq.variance_rows(var_rows + extra, level)
    rows += var_rows
    details: dict[str, Any] = {}
    reml = gaussian and bool(np.atleast_1d(r["reml"])[0])
    extra += _ddf_rows(r, data, ddf, names, rows, level, notes, details, reml)
    extra += _cr2_rows(r, data, robust, names, rows, level, notes, details)
    if robust and gaussian:
        extra += _variance_sandwich_rows(data, est, sigma, blocks, rows, level, notes, details, reml)
    extra += _boot_rows(r, names, blocks, gaussian, rows, notes)
    rows += extra
    rows += _r.ranef_rows(r["ranef"], level)
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
    return FitResult(
        engine="lme4",
        params=make_params(rows),
        converged=converged,
        singular=singular,
        corr_at_bound=corr_bound,
        var_at_zero=var_zero,
        loglik=loglik,
        optimizer=optimizer,
        warnings=warnings,
        notes=notes,
        details={"lme4_isSingular": bool(np.atleast_1d(r["singular"])[0]), "opt_code": opt_code, **details},
    )


def _get(x: Any, key: str) -> Any:
    """An element of a nested R named list (an rpy2 ListVector or an already converted mapping); None if absent."""
    if _r.is_null(x):
        return None
    names = _strs(x.names) if hasattr(x, "names") and not isinstance(x, dict) else list(x)
    if key not in names:
        return None
    return x.rx2(key) if hasattr(x, "rx2") else x[key]


def _wald(r: dict[str, Any], blocks, gaussian: bool, level: float, notes: list[str]) -> dict[str, dict[str, Any]]:
    """Wald rows of sd, cor and sigma by parameter name ({} with a note when the computation failed)."""
    w = r.get("wald")
    error = _get(w, "error")
    if error is not None:
        notes.append(" ".join(_strs(error)))
        return {}
    rows, more = iv.wald_rows({k: _get(w, k) for k in ("est", "se_u", "status", "note")}, blocks, gaussian, level)
    notes += more
    return rows


def _with_wald(
    var_rows: list[dict[str, Any]], wald: dict[str, dict[str, Any]], profile: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Primary variance rows and extra Wald rows: without profiling, the Wald row is the primary one; with it,
    the profile row stays primary (and takes the Wald SE, the only SE lme4 has) and a Wald row is added where
    there is a Wald interval."""
    primary, extra = [], []
    for row in var_rows:
        w = wald.get(row["parameter"])
        if w is None:
            primary.append(row)
        elif not profile:
            primary.append(w)
        else:
            row["se"] = w["se"]
            primary.append(row)
            if w["interval"] != "none":
                extra.append(interval_row(row, w["interval"], w["lower"], w["upper"]))
    return primary, extra


def _first_rows(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The primary (first) row of each parameter."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        out.setdefault(row["parameter"], row)
    return out


def _ddf_rows(
    r: dict[str, Any],
    data: FitData,
    ddf: tuple[str, ...],
    names: list[str],
    rows: list[dict[str, Any]],
    level: float,
    notes: list[str],
    details: dict[str, Any],
    reml: bool,
) -> list[dict[str, Any]]:
    if not ddf:
        return []
    if data.family != "gaussian":
        notes.append(f"ddf {', '.join(ddf)}: small-sample df are for gaussian (lmer) fits; none for this glmer fit")
        return []
    first = _first_rows(rows)
    primary = [first[name_b(n)] for n in names]
    extra, info, msgs = iv.ddf_rows(r["ddf"], primary, level)
    details["ddf"] = info
    if "kenward-roger" in info and not reml:
        notes.append("kenward-roger is defined for REML fits: computed here from the ML fit")
    notes += [f"ddf: {m}" for m in msgs]
    return extra


def _cr2_rows(
    r: dict[str, Any],
    data: FitData,
    robust: bool,
    names: list[str],
    rows: list[dict[str, Any]],
    level: float,
    notes: list[str],
    details: dict[str, Any],
) -> list[dict[str, Any]]:
    """Extra 'cr2' rows of the fixed effects: estimate +- t(Satterthwaite df) x CR2 SE (clubSandwich), laid out
    like the ddf rows; a failure (crossed grouping factors, say) is a note, not a failed fit."""
    if not robust or not names:
        return []
    if data.family != "gaussian":
        notes.append("robust: CR2 standard errors (clubSandwich) are for gaussian (lmer) fits; none for this glmer fit")
        return []
    cr2 = r.get("cr2")
    error = _get(cr2, "error")
    if error is not None:
        notes.append(" ".join(_strs(error)))
        return []
    first = _first_rows(rows)
    extra, info, msgs = iv.ddf_rows(cr2, [first[name_b(n)] for n in names], level)
    details["cr2"] = info.get("cr2", {})
    notes.append(f"robust: CR2 clustered on {' '.join(_strs(_get(cr2, 'cluster')))}")
    notes += [f"robust: {m}" for m in msgs]
    return extra


def _variance_sandwich_rows(
    data: FitData,
    beta: np.ndarray,
    sigma: float,
    blocks: list[tuple[str, list[str], np.ndarray]],
    rows: list[dict[str, Any]],
    level: float,
    notes: list[str],
    details: dict[str, Any],
    reml: bool,
) -> list[dict[str, Any]]:
    """Huber-White SEs of the variances and sigma^2 of an ML fit with one grouping factor, computed in Python
    from lme4's estimates and the data (compare.estimators._sandwich): extra 'robust-variance' and
    'robust-log-sd' rows; what cannot be computed is a note."""
    if reml:
        notes.append("robust: Huber-White variance SEs are for ML fits (the REML criterion is not a sum over clusters)")
        return []
    comps = _components(data, blocks)
    why = "lme4's random-effect terms do not match the design's" if comps is None else sw.single_factor(comps)
    if why is None and comps is not None:
        try:
            vs = sw.variance_sandwich(data.design, beta, comps, sigma * sigma)
        except (ValueError, np.linalg.LinAlgError) as exc:
            why = f"no Huber-White variance SEs: {exc}"
    if why is not None:
        notes.append(f"robust: {why}")
        return []
    extra, details["robust_variance"] = sw.robust_variance_rows(vs, _first_rows(rows), level)
    if vs.held:
        notes.append(f"robust: variance sandwich with {', '.join(map(str, vs.held))} held at the boundary")
    return extra


def _components(data: FitData, blocks: list[tuple[str, list[str], np.ndarray]]) -> list[sw.Component] | None:
    """lme4's covariance blocks on the design's block matrices (matched by group and term names); None when a
    block has no counterpart."""
    out = []
    for group, terms, cov in blocks:
        b = next((b for b in data.design.blocks if b.group == group and b.names == terms), None)
        if b is None:
            return None
        out.append(sw.Component(b, np.asarray(cov, float)))
    return out


def _boot_rows(
    r: dict[str, Any], names: list[str], blocks, gaussian: bool, rows: list[dict[str, Any]], notes: list[str]
) -> list[dict[str, Any]]:
    boot = r.get("boot")
    if boot is None or _r.is_null(boot):
        return []
    error = _get(boot, "error")
    if error is not None:
        notes.append(" ".join(_strs(error)))
        return []
    keys = ("lower", "upper", "n_used", "nsim", "failed", "warnings", "fail_msgs")
    cis, more = iv.boot_intervals({k: _get(boot, k) for k in keys}, names, blocks, gaussian)
    notes += more
    first = _first_rows(rows)
    return [iv.boot_row(first[p], ci) for p, ci in cis.items() if p in first]


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
    if _r.is_null(prof):
        return None
    expected = []
    for _group, terms, _ in _varcorr_blocks(r):
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
        row["note"] = (
            "lme4 gives no SE for variance parameters and no profile interval was computed "
            "(glmer: profiling is costly; pass profile=True)"
            if prof is None
            else "profile interval not finite"
        )
    return row


def _phi_row(r: dict[str, Any], level: float, notes: list[str]) -> dict[str, Any]:
    """glmer.nb's theta as phi, Wald on log(phi) with the SE from the profile deviance's curvature (nb_theta_se,
    R/lme4_intervals.R); the fit's SDs and fixed effects are, as glmer.nb reports them, conditional on theta."""
    nb = r.get("nb")
    error = _get(nb, "error")
    if error is not None:
        notes.append(" ".join(_strs(error)))
        return fq.phi_row(float(np.atleast_1d(r["nb_theta"])[0]), math.nan, " ".join(_strs(error)), level)
    note = " ".join(_strs(_get(nb, "note")))
    theta, se_log = _r.num(_get(nb, "theta")), _r.num(_get(nb, "se_log"))
    notes.append(
        "phi = glmer.nb's theta; its Wald interval on log(phi) takes the SE from the curvature of the profile "
        "deviance (glmer refitted at theta * exp(+-0.1)); SEs of b, sd and cor hold theta fixed, as glmer.nb's"
    )
    return fq.phi_row(theta, se_log, note or None, level)


def _sigma_row(sigma: float, prof: np.ndarray | None) -> dict[str, Any]:
    row = {
        "parameter": "sigma",
        "estimate": sigma,
        "se": math.nan,
        "lower": math.nan,
        "upper": math.nan,
        "interval": "none",
        "note": "no profile interval computed",
    }
    if prof is not None:
        lo, hi = prof[-1]
        row.update(lower=float(lo), upper=float(hi), interval="profile", note=None)
    return row


ESTIMATORS = [Lme4Engine]
