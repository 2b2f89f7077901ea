"""statsmodels MixedLM, as a user calls it (`mixedlm`, `mixedlm-ml`) and fitted carefully (`mixedlm-robust`).

Both are methods in their own right: FINDINGS.md shows the default optimiser misses lme4's optimum on
most random-slope fits, so the as-shipped engine shows what users get and the robust one (default,
lbfgs and powell; keep the best *finite* log-likelihood) what the model can give.

How lme4 structures map onto MixedLM (one `groups` factor, one correlated `exog_re` block, plus
independent variance components):
- one grouping factor: groups = g; its first block is exog_re, further single-term blocks are
  variance components (this covers `(x || g)`);
- nested `g1` and `g2:g1` (lme4's name, from g1/g2): groups = g1, the g2:g1 terms are variance components within g1;
- crossed factors: one all-covering group, every block a variance component (dense and slow),
  so a correlated multi-term block cannot be crossed with another factor.

Variance-parameter SEs (issue 11): statsmodels' cov_params comes from the Hessian of the log-likelihood
with the residual variance profiled out, so rescaled to y units it treats sigma as known (SD SEs 3-4% too
large on seed_slopes J = 50 against lme4 and glmmTMB). The SEs of the SDs, correlations and sigma come
instead from a numerical Hessian of the (RE)ML log-likelihood with sigma free (_mixedlm_hessian); intervals
are Wald on the log-SD scale (SDs and sigma) and Fisher's atanh scale (correlations); a parameter at the
boundary (SD < 1e-4 sigma, |cor| > 0.99) or a Hessian that is not negative definite gives no interval,
with a note.

`robust = true` (issue 20): statsmodels has no sandwich for MixedLM, so compare.estimators._sandwich derives
CR2 with Satterthwaite df for the fixed effects (clubSandwich's definition for lmer fits; equal to it on the
same data) and, for ML fits with one grouping factor, Huber-White SEs of the variances and sigma^2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from statsmodels.regression.mixed_linear_model import MixedLM, VCSpec

from compare.data import FitData
from compare.design import BlockDesign, Design
from compare.estimators import _frequentist as fq
from compare.estimators import _mixedlm_hessian as mh
from compare.estimators import _sandwich as sw
from compare.estimators.base import YES, Estimator, Support, no, no_known_se
from compare.fitresult import FitResult, boundary_flags, make_params, name_b
from compare.formula import Block, Formula, ModelSpec
from compare.settings import Settings, setting

ROBUST_METHODS = ("default", "lbfgs", "powell", "nm")
# Nelder-Mead polishes: it starts from the best finite fit of the methods before it, and maximising it can
# chase statsmodels' llf = +inf at a singular covariance. From statsmodels' own start with 20,000 iterations
# it took 110-150 s on ~7% of seed_slopes J=8 fits and ended there; from the best fit it reached lme4's REML
# optimum (|dlogLik| < 1e-5) in 0.1-0.2 s on 80 of 80 seed_slopes fits (J=8 and 20) with 1,000
# iterations as with 20,000. The cap bounds the rare walk to +inf from a poor start: 11 s, not 283 s.
METHOD_KWARGS: dict[str, dict[str, Any]] = {"nm": {"maxiter": 1000}}


@dataclass
class Layout:
    """MixedLM's arrays for a Design, plus where each block's effects sit in statsmodels' output."""

    groups: np.ndarray  # (N,) primary group code per row (zeros when all-covering)
    re_block: BlockDesign | None  # the block fitted as exog_re (correlated), if any
    vc_terms: list[tuple[BlockDesign, int]]  # (block, term index) per variance component
    exog_vc: VCSpec | None
    vc_levels: list[list[np.ndarray]]  # per vc, per statsmodels group: the block's level codes of its columns


def structure(formula: Formula) -> tuple[str | None, str]:
    """('g', 'single'|'nested') or (None, 'crossed'): which grouping factor MixedLM's `groups` is."""
    groups = list(formula.group_factors)
    if not groups:
        return None, "crossed"
    primary = min(groups, key=len)
    if len(groups) == 1:
        return primary, "single"
    if all(_columns(primary) <= _columns(g) for g in groups):
        return primary, "nested"
    return None, "crossed"


def _columns(group: str) -> set[str]:
    """The columns of a grouping factor: g, g2:g1 (lme4's name for g2 nested in g1), g3:(g2:g1)."""
    return {p.strip("() ") for p in group.split(":")}


def n_terms(block: Block) -> int:
    """Terms of a block ('1 + x' -> 2, '0 + x' -> 1, '1 + poly(x, 2)' -> 2), before factor expansion."""
    return len(block.terms.terms) + block.terms.intercept


def supports_formula(formula: Formula) -> Support:
    if not formula.blocks:
        return no("MixedLM needs at least one random-effect term")
    primary, kind = structure(formula)
    multi = [b for b in formula.blocks if b.correlated and n_terms(b) > 1]
    if kind == "crossed" and multi:
        return no(
            f"MixedLM cannot cross a correlated block ({multi[0].expr} | {multi[0].group}) with another "
            "grouping factor: crossed factors are independent variance components of one all-covering group"
        )
    first = next((b for b in formula.blocks if b.group == primary), None)
    extra = [b for b in multi if b is not first]
    if extra:
        return no(
            f"MixedLM allows one correlated block, on the outermost grouping factor; "
            f"({extra[0].expr} | {extra[0].group}) would need another"
        )
    return YES


def build_layout(design: Design) -> Layout:
    """groups / exog_re / exog_vc for MixedLM from the shared Design (see module docstring)."""
    primary, kind = structure(design.formula)
    re_block = None
    if kind == "crossed":
        groups = np.zeros(design.n, dtype=np.int64)
    else:
        re_block = next(b for b in design.blocks if b.group == primary)
        groups = re_block.index
    vc_terms = [(b, k) for b in design.blocks if b is not re_block for k in range(len(b.names))]
    if not vc_terms:
        return Layout(groups, re_block, [], None, [])
    labels = np.unique(groups)  # statsmodels sorts its group labels
    names, colnames, mats, levels = [], [], [], []
    for b, k in vc_terms:
        names.append(f"{b.group}|{b.names[k]}")
        cn, mt, lv = [], [], []
        for g in labels:
            rows = np.flatnonzero(groups == g)
            codes = np.unique(b.index[rows])
            mat = (b.index[rows][:, None] == codes[None, :]) * b.X[rows, k][:, None]
            cn.append([str(c) for c in codes])
            mt.append(mat.astype(float))
            lv.append(codes)
        colnames.append(cn)
        mats.append(mt)
        levels.append(lv)
    return Layout(groups, re_block, vc_terms, VCSpec(names, colnames, mats), levels)


def make_model(design: Design, layout: Layout) -> MixedLM:
    y = design.y - design.offset  # identity link: an offset is a known shift of y
    exog = design.X  # may have no columns (no fixed effects): MixedLM handles k_fe = 0
    exog_re = layout.re_block.X if layout.re_block is not None else None
    return MixedLM(y, exog, layout.groups, exog_re=exog_re, exog_vc=layout.exog_vc)


def fit_once(model: MixedLM, reml: bool, method: str, start: Any = None) -> tuple[Any, list[str]]:
    """One MixedLM fit with every warning captured; `method='default'` is exactly the user's call.
    `start`: a MixedLMParams to start from (statsmodels' own start values otherwise)."""
    kwargs: dict[str, Any] = {"reml": reml, **METHOD_KWARGS.get(method, {})}
    if start is not None:
        kwargs["start_params"] = start
    if method != "default":
        kwargs["method"] = method
    with fq.captured_warnings() as texts:
        result = model.fit(**kwargs)
        _ = result.llf, result.converged  # lazily computed: keep their warnings with this fit
    return result, texts


ROBUST_DOC = (
    "sandwich SEs computed from the fit (compare.estimators._sandwich): cluster-robust CR2 with Satterthwaite df "
    "for the fixed effects, clustered on the outermost grouping factor, as clubSandwich on lme4 (extra 'cr2' rows, "
    "SE and df in details['cr2']; not for crossed factors); for ML fits with one grouping factor also Huber-White "
    "SEs of the variances and sigma^2 (extra 'robust-variance' and 'robust-log-sd' rows of the SDs and sigma)"
)


@dataclass(frozen=True)
class MixedLMSettings(Settings):
    reml: bool = setting(True, "REML (true) or maximum likelihood (false)")
    robust: bool = setting(False, ROBUST_DOC)


@dataclass(frozen=True)
class MixedLMMLSettings(Settings):
    reml: bool = setting(False, "REML (true) or maximum likelihood (false)")
    robust: bool = setting(False, ROBUST_DOC)


class MixedLMEngine(Estimator):
    """statsmodels MixedLM exactly as a user calls it (REML by default)."""

    name: ClassVar[str] = "mixedlm"
    kind: ClassVar[str] = "frequentist"
    Settings: ClassVar[type[Settings]] = MixedLMSettings
    settings: MixedLMSettings | MixedLMMLSettings
    methods: ClassVar[tuple[str, ...]] = ("default",)

    def supports(self, model: ModelSpec) -> Support:
        refused = no_known_se(model, "MixedLM", "it estimates one residual variance (scale) for every row")
        if refused is not None:
            return refused
        if model.family != "gaussian" or model.link != "identity":
            return no(f"MixedLM fits gaussian identity-link models only, not {model.family}/{model.link}")
        return supports_formula(model.formula)

    def fit(self, data: FitData, *, seed: int) -> FitResult:
        self.require(data.model)
        design = data.design
        if np.ptp(design.y - design.offset) == 0:
            raise ValueError("the response is constant: there is no variance to decompose")
        layout = build_layout(design)
        (result, texts, method, attempts), wall = fq.timed(lambda: self._best_fit(design, layout))
        with fq.captured_warnings() as later:  # numpy warnings while computing BLUPs and SEs
            out, wall_se = fq.timed(
                lambda: summarise(
                    self.name, result, design, layout, texts, self.level, self.settings.robust, self.settings.reml
                )
            )
        out.warnings.extend(later)
        out.optimizer = method if method != "default" else "default (bfgs, lbfgs, cg)"
        out.wall_s = wall + wall_se  # the variance SEs' Hessian is part of what the engine costs
        out.criterion = "REML" if self.settings.reml else "ML"
        split = [b for b, _ in layout.vc_terms if b.block.correlated and len(b.names) > 1]
        if split:
            out.notes.append(
                f"block ({split[0].block.expr} | {split[0].group}) expands to several columns; "
                "MixedLM fits them as independent variance components (no correlations)"
            )
        if len(attempts) > 1:
            out.details["attempts"] = attempts
        return out

    def _best_fit(self, design: Design, layout: Layout):
        """Fit with each method in turn; keep the highest finite llf (converged wins a near-tie). If no fit
        has a finite llf, the first one is returned so the caller can report it (not hide it)."""
        best: tuple[Any, list[str], str, float, bool] | None = None
        first: tuple[Any, list[str], str, float, bool] | None = None
        attempts: dict[str, dict[str, Any]] = {}
        for method in self.methods:
            model = make_model(design, layout)
            try:
                start = best[0].params_object if method == "nm" and best is not None else None
                result, texts = fit_once(model, self.settings.reml, method, start)
            except (np.linalg.LinAlgError, ValueError) as exc:
                attempts[method] = {"loglik": math.nan, "converged": False, "error": str(exc)}
                continue
            llf = float(result.llf)
            attempts[method] = {"loglik": llf, "converged": bool(result.converged)}
            if start is not None and best is not None:
                attempts[method]["started_from"] = best[2]
            candidate = (result, texts, method, llf, bool(result.converged))
            first = first or candidate
            if best is None or _better(llf, bool(result.converged), best):
                best = candidate if np.isfinite(llf) else best
        best = best or first
        if best is None:
            raise RuntimeError(f"every MixedLM fit failed: {attempts}")
        return best[0], best[1], best[2], attempts


def _better(llf: float, converged: bool, best: tuple) -> bool:
    old_llf, old_conv = best[3], best[4]
    if not np.isfinite(llf):
        return False
    if not np.isfinite(old_llf):
        return True
    if abs(llf - old_llf) < 1e-6:
        return converged and not old_conv
    return llf > old_llf


class MixedLMMLEngine(MixedLMEngine):
    """`mixedlm` fitted by maximum likelihood (statsmodels' reml=False)."""

    name: ClassVar[str] = "mixedlm-ml"
    Settings: ClassVar[type[Settings]] = MixedLMMLSettings


class MixedLMRobustEngine(MixedLMEngine):
    """MixedLM fitted carefully: default, lbfgs, powell and Nelder-Mead; the best finite log-likelihood wins.

    FINDINGS: best-of default/lbfgs/powell reaches lme4's optimum in 89-92% of random-slope fits, against
    12-26% for the default; Nelder-Mead, started from the best of those, polishes it to lme4's optimum.
    `optimizer` names the winner."""

    name: ClassVar[str] = "mixedlm-robust"
    methods: ClassVar[tuple[str, ...]] = ROBUST_METHODS


def summarise(
    engine: str,
    result: Any,
    design: Design,
    layout: Layout,
    texts: list[str],
    level: float = fq.LEVEL,
    robust: bool = False,
    reml: bool = True,
) -> FitResult:
    """Tidy FitResult of one MixedLM result; `robust` adds the sandwich rows (`robust_rows`)."""
    res = getattr(result, "_results", result)  # bse_re & co. raise on the wrapper when vc are used
    scale = float(res.scale)
    sigma = math.sqrt(scale) if scale > 0 else math.nan
    llf = float(res.llf)
    notes: list[str] = []
    rows = fq.fixed_rows(design.x_names, np.asarray(res.fe_params), _bse_fe(res), fq.t_df(design), level)
    wald = mh.wald_variance(res)
    rows += _variance_rows(wald, layout, level)
    rows += fq.variance_rows(rows, level)
    if wald.note:
        notes.append(wald.note)
    details: dict[str, Any] = {}
    if robust and np.isfinite(llf):
        rows += robust_rows(res, design, layout, rows, level, notes, details, reml)
    rows += _group_rows(res, layout, notes, level)
    covs = _block_covariances(res, layout)
    singular, corr_bound, var_zero = boundary_flags(covs, sigma if np.isfinite(sigma) else 1.0)
    converged = bool(res.converged)
    if not np.isfinite(llf):
        converged = False
        notes.append(f"log-likelihood is not finite ({llf}): estimates are not a valid optimum")
    return FitResult(
        engine=engine,
        params=make_params(rows),
        converged=converged,
        singular=singular,
        corr_at_bound=corr_bound,
        var_at_zero=var_zero,
        loglik=llf,
        warnings=texts,
        notes=notes,
        details={
            "statsmodels_converged": bool(res.converged),
            "wald_hessian": {"evaluations": wald.evaluations, **wald.details},
            **details,
        },
    )


def components(res: Any, design: Design, layout: Layout) -> list[sw.Component]:
    """The fitted covariance of every design block (y units): cov_re for the exog_re block, a diagonal of
    variance components (independent terms) for the others."""
    out = []
    vcomp = np.asarray(res.vcomp, float)
    for b in design.blocks:
        if b is layout.re_block:
            out.append(sw.Component(b, np.atleast_2d(np.asarray(res.cov_re, float))))
            continue
        var = [vcomp[k] for k, (vb, _) in enumerate(layout.vc_terms) if vb is b]
        out.append(sw.Component(b, np.diag(var), correlated=False))
    return out


def robust_rows(
    res: Any,
    design: Design,
    layout: Layout,
    rows: list[dict[str, Any]],
    level: float,
    notes: list[str],
    details: dict[str, Any],
    reml: bool,
) -> list[dict[str, Any]]:
    """The `robust` setting's rows: CR2 for the fixed effects, Huber-White for the variances (ML, one factor);
    what cannot be computed is a note, not a failed fit."""
    if layout.re_block is None:
        notes.append("robust: no sandwich SEs for crossed grouping factors (clusters are not independent)")
        return []
    comps, sigma2 = components(res, design, layout), float(res.scale)
    beta = np.asarray(res.fe_params, float)
    first: dict[str, dict[str, Any]] = {}
    for row in rows:
        first.setdefault(row["parameter"], row)
    out: list[dict[str, Any]] = []
    if design.x_names:
        fit = sw.cr2(design, beta, comps, sigma2, layout.re_block)
        extra, details["cr2"] = sw.cr2_rows([first[name_b(n)] for n in design.x_names], fit, level)
        out += extra
        notes.append(f"robust: CR2 clustered on {layout.re_block.group}")
    why: str | None = "robust: Huber-White variance SEs are for ML fits (the REML criterion is not a sum over clusters)"
    why = why if reml else sw.single_factor(comps)
    if why:
        notes.append(why if why.startswith("robust") else f"robust: {why}")
        return out
    try:
        vs = sw.variance_sandwich(design, beta, comps, sigma2)
    except (ValueError, np.linalg.LinAlgError) as exc:
        notes.append(f"robust: no Huber-White variance SEs: {exc}")
        return out
    extra, details["robust_variance"] = sw.robust_variance_rows(vs, first, level)
    if vs.held:
        notes.append(f"robust: variance sandwich with {', '.join(map(str, vs.held))} held at the boundary")
    return out + extra


def _bse_fe(res: Any) -> np.ndarray:
    p = len(res.fe_params)
    cov = np.asarray(res.cov_params())[:p, :p]
    with np.errstate(invalid="ignore"):
        return np.sqrt(np.diag(cov))


def _variance_rows(wald: mh.WaldVariance, layout: Layout, level: float) -> list[dict[str, Any]]:
    """sd / cor rows of the exog_re block, sd rows of the variance components, then sigma, with the Wald
    SEs of `wald` (log-SD scale for SDs and sigma, atanh scale for correlations)."""

    def note(p: mh.Parameter) -> str | None:
        return wald.note or mh.NOTES.get(p.status)

    rows: list[dict[str, Any]] = []
    if layout.re_block is not None:
        b = layout.re_block
        q = len(b.names)
        for i in range(q):
            p = wald.get("sd", "re", (i,))
            rows.append(fq.sd_row(b.group, b.names[i], p.estimate, p.se_u, note=note(p), level=level))
        for i in range(q):
            for j in range(i):
                p = wald.get("cor", "re", (i, j))
                se_r = p.se_u * (1 - p.estimate**2)  # delta method from atanh(cor)
                rows.append(fq.cor_row(b.group, b.names[j], b.names[i], p.estimate, se_r, note=note(p), level=level))
    for k, (b, t) in enumerate(layout.vc_terms):
        p = wald.get("sd", "vc", (k,))
        rows.append(fq.sd_row(b.group, b.names[t], p.estimate, p.se_u, note=note(p), level=level))
    p = wald.get("sigma", "sigma", ())
    row = fq.sd_row("", "", p.estimate, p.se_u, note=note(p), level=level)
    row["parameter"] = "sigma"
    rows.append(row)
    return rows


def _block_covariances(res: Any, layout: Layout) -> list[np.ndarray]:
    covs = [np.asarray(res.cov_re)] if layout.re_block is not None else []
    covs += [np.array([[v]]) for v in np.asarray(res.vcomp)]
    return covs


def _group_rows(res: Any, layout: Layout, notes: list[str], level: float) -> list[dict[str, Any]]:
    """BLUPs with conditional SDs, mapped from statsmodels' per-group vectors (exog_re first, then
    each variance component's columns in order)."""
    try:
        means, covs = res.random_effects, res.random_effects_cov
    except (ValueError, np.linalg.LinAlgError) as exc:
        notes.append(f"no group effects: {exc}")
        return []
    labels = sorted(means)
    rows: list[dict[str, Any]] = []
    q = len(layout.re_block.names) if layout.re_block is not None else 0
    if layout.re_block is not None:
        b = layout.re_block
        vals = np.array([np.asarray(means[g])[:q] for g in labels])
        sds = np.array([np.sqrt(np.clip(np.diag(np.asarray(covs[g]))[:q], 0, None)) for g in labels])
        rows += fq.group_effect_rows(b.group, [b.levels[int(g)] for g in labels], b.names, vals, sds, level=level)
    offset = {g: q for g in labels}
    for i, (b, k) in enumerate(layout.vc_terms):
        per_level: dict[int, tuple[float, float]] = {}
        for gi, g in enumerate(labels):
            codes = layout.vc_levels[i][gi]
            start = offset[g]
            m = np.asarray(means[g])[start : start + len(codes)]
            v = np.diag(np.asarray(covs[g]))[start : start + len(codes)]
            offset[g] = start + len(codes)
            for c, mm, vv in zip(codes, m, v, strict=True):
                per_level[int(c)] = (float(mm), math.sqrt(max(float(vv), 0.0)))
        order = sorted(per_level)
        vals = np.array([[per_level[c][0]] for c in order])
        sds = np.array([[per_level[c][1]] for c in order])
        rows += fq.group_effect_rows(b.group, [b.levels[c] for c in order], [b.names[k]], vals, sds, level=level)
    return rows


ESTIMATORS = [MixedLMEngine, MixedLMMLEngine, MixedLMRobustEngine]
