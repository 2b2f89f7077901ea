"""FitResult: what every engine returns, in one tidy shape, and the typed row of the results table.

One row per estimand and interval type (`ParamRow`; parameter naming below is the same for every engine),
plus fit-level fields. The harness adds truth and coverage; metrics only ever read the long table built by
`FitResult.rows`. The full column list, with a line on each, is `docs/results.md` (`hbench schema`), written
from these classes.

Interval rows (the contract every engine and every reader keeps):
  - `params` may hold several rows with the same `parameter`. Exactly one of them has `primary` true: its
    estimate, SE (or posterior SD) and the interval the engine reports first. Point measures (bias, empirical
    SE, RMSE, agreement, SBC, `FitResult.param`) read primary rows only (`primary`). Nothing reads row order.
  - Each further row of that parameter repeats the primary's estimate and SE and carries another interval; its
    `interval` column names the type ("wald-t", "satterthwaite", "kenward-roger", "bootstrap", ...). Engines add
    one with `interval_row`; a (parameter, interval) pair appears once.
  - Interval names: "wald-z", "wald-t" (t with J - 1 df, J the fewest groups), "profile", "quantile"
    (posterior), "wald-atanh", "wald-log-sd", "conditional-sd", ..., and "none" where no interval is
    given (then `note` says why). Coverage, width and rejection are keyed by (parameter, interval),
    so intervals of one parameter read side by side.

Parameter names, built here and parsed only here (`describe`: every row carries `param_class`, `group`, `term`
and `group_level`, so no reader parses a name):
  b[Intercept], b[x]            fixed effects                      class b, term
  sd[g][Intercept]              SD of a group-level term           class sd, group, term
  cor[g][Intercept,x]           correlation of two terms           class cor, group, term "Intercept,x"
  sigma                         residual SD (gaussian, not y | se(s)) class sigma
  phi                           NB2 dispersion (negbinomial):      class phi
                                variance mu + mu^2 / phi
  r[g][level,x]                 group effect (BLUP / posterior)    class r, group, group_level, term
  mrp                           poststratified population mean     class mrp
  pred_new[g]                   outcome mean for a new group       class pred_new, group
"""

from __future__ import annotations

import json
import math
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, NamedTuple

import numpy as np
import pandas as pd


def doc(text: str, default: Any = MISSING, **kw: Any) -> Any:
    """A dataclass field with its one-line description: the results schema (docs/results.md) is written from
    these, so a column and its documentation cannot drift apart."""
    if default is not MISSING:
        kw["default"] = default
    return field(metadata={"doc": text}, **kw)


def name_b(term: str) -> str:
    return f"b[{term}]"


def name_sd(group: str, term: str) -> str:
    return f"sd[{group}][{term}]"


def name_cor(group: str, a: str, b: str) -> str:
    return f"cor[{group}][{a},{b}]"


def name_r(group: str, level: str, term: str) -> str:
    return f"r[{group}][{level},{term}]"


def name_pred_new(group: str) -> str:
    return f"pred_new[{group}]"


class NameParts(NamedTuple):
    """What a parameter name says: its class and, where it has them, group, term and group level."""

    param_class: str
    group: str | None = None
    term: str | None = None
    group_level: str | None = None


_SCALARS = ("sigma", "phi", "mrp")
_NAMED = re.compile(r"^(?P<cls>b|sd|cor|r|pred_new)\[(?P<first>[^\]]+)\](?:\[(?P<second>.+)\])?$")
_TWO_PARTS = {"b": False, "pred_new": False, "sd": True, "cor": True, "r": True}  # class -> has a [second] part


def describe(name: str) -> NameParts:
    """The parts of a parameter name in the convention above, or ValueError naming it. The one place names are
    read: the results table stores the parts as columns, so readers select on them."""
    if name in _SCALARS:
        return NameParts(name)
    m = _NAMED.match(name)
    if m is None or _TWO_PARTS[m["cls"]] != (m["second"] is not None):
        raise ValueError(
            f"parameter name {name!r} is not in hbench's convention (b[x], sd[g][x], cor[g][a,b], "
            "sigma, phi, r[g][level,x], mrp, pred_new[g])"
        )
    cls, first, second = m["cls"], m["first"], m["second"]
    if cls in ("b", "pred_new"):
        return NameParts(cls, None if cls == "b" else first, first if cls == "b" else None)
    if cls == "sd":
        return NameParts(cls, first, second)
    head, tail = _split_top_level(second, last=cls == "r")
    if tail is None:
        raise ValueError(f"parameter name {name!r}: expected two comma-separated parts in [{second}]")
    return NameParts(cls, first, second) if cls == "cor" else NameParts(cls, first, tail, head)


def _split_top_level(text: str, last: bool) -> tuple[str, str | None]:
    """Split at the first (or last) comma outside parentheses: terms such as poly(x, 2)1 keep their commas."""
    depth, cut = 0, None
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            cut = i
            if not last:
                break
    return (text, None) if cut is None else (text[:cut], text[cut + 1 :])


@dataclass(frozen=True, slots=True)
class ParamRow:
    """One row of a FitResult's params: one estimand with one interval. Built from an engine's keyword
    arguments (or a dict of them: `make_params`), so an unknown key (a typo such as `lowr`) or a missing one
    raises instead of becoming a NaN column; what the name says is derived, never given."""

    parameter: str = doc(
        "estimand, in the naming convention (b[x], sd[g][x], cor[g][a,b], sigma, phi, r[g][level,x], mrp, pred_new[g])"
    )
    param_class: str = doc(
        "what kind of estimand: b, sd, cor, sigma, phi, r, mrp, pred_new (derived from the name)", init=False
    )
    group: str | None = doc("grouping factor of sd, cor, r and pred_new rows (derived)", init=False)
    term: str | None = doc("model term: the coefficient of b, sd and r rows; 'a,b' for cor rows (derived)", init=False)
    group_level: str | None = doc("level of the grouping factor, for group effects r (derived)", init=False)
    estimate: float = doc("point estimate: ML/REML estimate, conditional mode, or posterior mean")
    se: float = doc("standard error, or posterior SD")
    lower: float = doc("lower bound of the interval at the run's level (NaN when `interval` is none)")
    upper: float = doc("upper bound of the interval at the run's level")
    interval: str = doc("how the interval was made: wald-z, wald-t, profile, quantile, wald-log-sd, ..., or none")
    primary: bool = doc(
        "the interval the engine reports first: exactly one row per parameter and fit; point "
        "measures read these rows only",
        True,
    )
    median: float = doc("posterior median (samplers)", math.nan)
    rhat: float = doc("rank-normalised split R-hat (samplers)", math.nan)
    ess_bulk: float = doc("bulk effective sample size (samplers)", math.nan)
    ess_tail: float = doc("tail effective sample size (samplers)", math.nan)
    note: str | None = doc("why there is no interval, or what qualifies it", None)

    def __post_init__(self) -> None:
        parts = describe(self.parameter)
        for name in ("estimate", "se", "lower", "upper", "median", "rhat", "ess_bulk", "ess_tail"):
            object.__setattr__(self, name, _number(getattr(self, name), name, self.parameter))
        if not isinstance(self.interval, str) or not self.interval:
            raise ValueError(
                f"row {self.parameter}: interval {self.interval!r} must name how it was made "
                "('none' when there is none)"
            )
        if not isinstance(self.primary, (bool, np.bool_)):
            raise ValueError(f"row {self.parameter}: primary {self.primary!r} must be true or false")
        object.__setattr__(self, "primary", bool(self.primary))
        for name, value in zip(NameParts._fields, parts):
            object.__setattr__(self, name, value)


def _number(value: Any, name: str, parameter: str) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"row {parameter}: {name} {value!r} is not a number") from None


def _store_dtype(hint: Any) -> str:
    """Store dtype of an annotation: bool -> boolean, int -> Int64 (nullable), float, text for the rest."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if hint is bool:
        return "boolean"
    if hint is int:
        return "Int64"
    if hint is float:
        return "float64"
    return "string"  # str, list[str] (newline-joined), dict (JSON)


def _columns_of(cls: type) -> dict[str, str]:
    hints = typing.get_type_hints(cls)
    return {f.name: _store_dtype(hints[f.name]) for f in fields(cls)}


# Columns of FitResult.params and their store dtypes, derived from ParamRow (never written out by hand).
PARAM_COLUMNS: dict[str, str] = _columns_of(ParamRow)
DESCRIPTORS = ["param_class", "group", "term", "group_level"]  # what a name says, as columns
_INIT = [f.name for f in fields(ParamRow) if f.init]


def make_params(rows: Iterable[ParamRow | Mapping[str, Any]]) -> pd.DataFrame:
    """A FitResult's params frame from typed rows (or dicts of ParamRow's arguments, checked the same way).

    Each parameter must have exactly one primary row. Rows are brought together per parameter (in the order of
    first appearance, the primary first) for a reader's eyes only: nothing depends on the order."""
    typed = [r if isinstance(r, ParamRow) else _row(r) for r in rows]
    df = pd.DataFrame([[getattr(r, c) for c in PARAM_COLUMNS] for r in typed], columns=list(PARAM_COLUMNS))
    for col, dtype in PARAM_COLUMNS.items():
        if dtype == "float64":
            df[col] = df[col].astype(float)
        elif dtype == "boolean":
            df[col] = df[col].astype(bool)
    if len(df):
        _check_one_primary(df)
        order = df.groupby("parameter", sort=False).ngroup().to_numpy()
        df = df.iloc[np.lexsort((~df["primary"].to_numpy(), order))].reset_index(drop=True)
    return df


def _row(mapping: Mapping[str, Any]) -> ParamRow:
    unknown = sorted(set(mapping) - set(_INIT))
    missing = [f.name for f in fields(ParamRow) if f.init and f.default is MISSING and f.name not in mapping]
    if unknown or missing:
        what = "; ".join(
            text
            for text, found in ((f"unknown keys {unknown}", unknown), (f"missing keys {missing}", missing))
            if found
        )
        raise ValueError(f"result row {mapping.get('parameter', '?')!r}: {what} (ParamRow takes {', '.join(_INIT)})")
    return ParamRow(**mapping)


def _check_one_primary(df: pd.DataFrame) -> None:
    count = df.groupby("parameter", sort=False)["primary"].sum()
    wrong = count[count != 1]
    if len(wrong):
        raise ValueError(f"each parameter needs exactly one primary row: {dict(wrong.head(3).astype(int))}")


def interval_row(
    primary_row: Mapping[str, Any], interval: str, lower: float, upper: float, note: str | None = None
) -> dict[str, Any]:
    """An extra (non-primary) row for the parameter of `primary_row`: the same estimate, SE and sampler columns
    with another interval, its type named in `interval`."""
    return {
        **primary_row,
        "lower": float(lower),
        "upper": float(upper),
        "interval": interval,
        "note": note,
        "primary": False,
    }


def primary(rows: pd.DataFrame) -> pd.DataFrame:
    """The primary rows (one per parameter and fit) of a params frame or of the long results table: what every
    point measure reads. Failure rows, which name no parameter, have no primary row."""
    return rows[rows["primary"].fillna(False).astype(bool)] if len(rows) else rows


@dataclass(frozen=True)
class SamplerDiagnostics:
    """What a sampler's fit says about itself (frequentist engines have none). LOO is PSIS-LOO (ArviZ)."""

    rhat_max: float = doc("largest R-hat over every parameter, group effects included")
    rhat_max_hyper: float = doc("largest R-hat over b, sd, cor and sigma: what `converged` reads")
    ess_bulk_min: float = doc("smallest bulk ESS over the model's parameters")
    ess_tail_min: float = doc("smallest tail ESS over the model's parameters")
    ess_bulk_per_s: float = doc("smallest bulk ESS per second of sampling")
    divergences: int = doc("divergent transitions after warm-up, all chains")
    treedepth_hits: int = doc("transitions that hit the maximum tree depth")
    ebfmi_min: float = doc("smallest E-BFMI over chains (below 0.3 warns)")
    loo_elpd: float = doc("PSIS-LOO expected log predictive density")
    loo_se: float = doc("standard error of loo_elpd")
    p_loo: float = doc("PSIS-LOO effective number of parameters")
    pareto_k_max: float = doc("largest Pareto k of PSIS-LOO")
    pareto_k_gt_07: int = doc("observations with Pareto k > 0.7")


@dataclass
class FitResult:
    """One engine's fit of one dataset: the estimands (`params`, one row each) and fit-level fields.

    Every field but `params`, `sampler`, `draws` and `idata` becomes a store column of the same name
    (compare.store derives its schema from this class); `sampler`'s fields become columns too. `draws` are
    thinned posterior draws per parameter for simulation-based calibration: the harness ranks the truth among
    them, so no engine ever sees the truth. `details` is engine-specific information kept as JSON for a
    reader's eyes (optimiser codes, attempts); nothing in hbench reads it.
    """

    engine: str
    params: pd.DataFrame
    converged: bool = doc(
        "the engine's own convergence verdict (samplers: R-hat <= 1.01 on b, sd, cor, sigma and no divergences)", True
    )
    singular: bool | None = doc("lme4's rule: a diagonal element of the relative covariance factor below 1e-4", None)
    corr_at_bound: bool | None = doc("some |correlation| above 0.99", None)
    var_at_zero: bool | None = doc("some SD below 1e-4 sigma", None)
    loglik: float = doc("maximised log-likelihood (REML or ML: see criterion)", math.nan)
    criterion: str | None = doc("REML or ML: which likelihood loglik is (compared across engines)", None)
    optimizer: str | None = doc("optimiser that produced the fit", None)
    warnings: list[str] = doc("warnings raised during the fit, one a line", default_factory=list)
    notes: list[str] = doc("what qualifies the fit (fallbacks, priors used, ...), one a line", default_factory=list)
    wall_s: float = doc("seconds for the whole fit, compile included", math.nan)
    cpu_s: float = doc(
        "CPU seconds of the fit, compile included: the worker's process time (every thread; R "
        "under rpy2) plus its child processes' (CmdStan, Rscript, httpstan's pool), measured by "
        "compare.attempt around fit; what `hbench compare` judges runtime on",
        math.nan,
    )
    compile_s: float = doc("seconds spent compiling a model (0 when reused)", 0.0)
    warmup_s: float = doc("seconds of sampler warm-up (NaN when not reported apart)", math.nan)
    sampling_s: float = doc("seconds of sampling (warm-up included where not separated)", math.nan)
    compile_count: int = doc("models compiled for this fit", 0)
    peak_rss_mb: float = doc(
        "peak resident memory of the fit in MB: the worker process (R under rpy2 included) or a child process "
        "(CmdStan, httpstan) that grew larger than any before it (compare.memory); NaN where not measurable",
        math.nan,
    )
    sampler: SamplerDiagnostics | None = None
    draws: dict[str, np.ndarray] | None = field(default=None, repr=False)
    idata: Any = field(default=None, repr=False)  # every draw as ArviZ InferenceData, when asked to keep them
    details: dict[str, Any] = doc(
        "engine-specific information as JSON (optimiser codes, attempts)", default_factory=dict
    )

    @property
    def loglik_finite(self) -> bool:
        return bool(np.isfinite(self.loglik))

    def param(self, name: str) -> pd.Series:
        """The primary row of a parameter (its estimate, SE and primary interval)."""
        hit = self.params[(self.params["parameter"] == name) & self.params["primary"]]
        if hit.empty:
            raise KeyError(name)
        return hit.iloc[0]

    def fit_fields(self) -> dict[str, Any]:
        """Fit-level fields as a flat dict of scalars (repeated on every long row)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name in _NOT_COLUMNS:
                continue
            value = getattr(self, f.name)
            if isinstance(value, list):
                value = "\n".join(value)
            elif isinstance(value, dict):
                value = json.dumps(value, default=_json_default, sort_keys=True)
            out[f.name] = value
        out["loglik_finite"] = self.loglik_finite
        for f in fields(SamplerDiagnostics):
            out[f.name] = getattr(self.sampler, f.name) if self.sampler is not None else None
        return out

    def columns(self, truth: dict[str, float] | None = None) -> dict[str, Any]:
        """The long rows as columns: one value a row (parameter x interval), or a fit-level scalar shared by
        every row. What the harness turns into Arrow; `rows` is the same as a DataFrame."""
        params = self.params
        missing = [c for c in PARAM_COLUMNS if c not in params.columns]
        if missing:
            raise ValueError(f"{self.engine}: params lack {missing}: build them with make_params")
        # numpy columns as arrays, text (Arrow-backed in pandas) as its own array: to_numpy would make Python
        # strings that the store turns back into Arrow, a millisecond a fit
        cols: dict[str, Any] = {c: _column(params[c]) for c in PARAM_COLUMNS}
        truth = truth or {}
        true = np.array([truth.get(p, np.nan) for p in params["parameter"].tolist()], dtype=float)
        lower, upper = cols["lower"].astype(float), cols["upper"].astype(float)
        known = ~(np.isnan(true) | np.isnan(lower) | np.isnan(upper))
        covered = pd.arrays.BooleanArray((lower <= true) & (true <= upper), ~known)
        return {**cols, "true": true, "covered": covered, **self.fit_fields()}

    def rows(self, truth: dict[str, float] | None = None) -> pd.DataFrame:
        """Long format: one row per parameter and interval with fit-level fields, the truth and whether that
        interval covered it."""
        return pd.DataFrame(self.columns(truth), index=pd.RangeIndex(len(self.params)))


def _column(col: pd.Series) -> Any:
    return col.to_numpy() if isinstance(col.dtype, np.dtype) else col.array


_NOT_COLUMNS = ("engine", "params", "sampler", "draws", "idata")  # engine is a task column; the rest are not scalars
LOGLIK_FINITE_DOC = "loglik is a finite number (powell can return +inf with nonsense estimates)"


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"details value {value!r} is not JSON")


def fit_columns() -> dict[str, str]:
    """Store dtypes of the fit-level columns, derived from FitResult's and SamplerDiagnostics' annotations."""
    out = {n: t for n, t in _columns_of(FitResult).items() if n not in _NOT_COLUMNS}
    out["loglik_finite"] = "boolean"
    return {**out, **_columns_of(SamplerDiagnostics)}


def column_docs() -> dict[str, str]:
    """One line on every column a FitResult contributes to the results table (for docs/results.md)."""
    out = {
        f.name: f.metadata["doc"]
        for cls in (ParamRow, FitResult, SamplerDiagnostics)
        for f in fields(cls)
        if "doc" in f.metadata
    }
    out["loglik_finite"] = LOGLIK_FINITE_DOC
    return out


def boundary_flags(covariances: list[np.ndarray], sigma: float = 1.0, tol: float = 1e-4) -> tuple[bool, bool, bool]:
    """lme4's singularity rule applied the same way to every engine.

    singular: any diagonal element of chol(Sigma_block / sigma^2) below `tol` (lme4 isSingular);
    corr_at_bound: any |correlation| > 0.99; var_at_zero: any SD below tol * sigma.
    A block whose Cholesky factor does not exist is singular.
    """
    singular = corr_bound = var_zero = False
    for cov in covariances:
        cov = np.atleast_2d(np.asarray(cov, dtype=float))
        if not np.all(np.isfinite(cov)):
            return True, corr_bound, var_zero
        sds = np.sqrt(np.clip(np.diag(cov), 0, None))
        var_zero |= bool(np.any(sds < tol * sigma))
        if cov.shape[0] > 1:
            with np.errstate(divide="ignore", invalid="ignore"):
                corr = cov / np.outer(sds, sds)
            off = corr[~np.eye(cov.shape[0], dtype=bool)]
            corr_bound |= bool(np.any(np.abs(off[np.isfinite(off)]) > 0.99))
        singular |= bool(np.any(_relative_chol_diag(cov / sigma**2) < tol))
    return singular, corr_bound, var_zero


def _relative_chol_diag(rel: np.ndarray) -> np.ndarray:
    """Diagonal of the Cholesky factor, as sqrt of successive Schur complements (0 where it breaks down)."""
    n = rel.shape[0]
    diag = np.zeros(n)
    a = rel.copy()
    for k in range(n):
        pivot = a[k, k]
        if pivot <= 0 or not np.isfinite(pivot):
            return diag  # the rest is degenerate: leave zeros, which count as singular
        diag[k] = math.sqrt(pivot)
        if k + 1 < n:
            col = a[k + 1 :, k] / pivot
            a[k + 1 :, k + 1 :] -= np.outer(col, a[k, k + 1 :])
    return diag
