"""FitResult: what every engine returns, in one tidy shape.

One row per estimand and interval type (parameter naming below is the same for every engine), plus
fit-level fields.  The harness adds truth and coverage; metrics only ever read
the long table built by `FitResult.rows`.

Interval rows (the contract every engine and every reader keeps):
  - `params` may hold several rows with the same `parameter`. The FIRST row of a parameter is its
    primary row: its estimate, SE (or posterior SD) and primary interval. Point measures (bias, empirical
    SE, RMSE, agreement, SBC, `FitResult.param`) read primary rows only (`primary`).
  - Each further row of that parameter repeats the primary's estimate and SE and carries another
    interval; its `interval` column names the type ("wald-t", "satterthwaite", "kenward-roger",
    "bootstrap", ...). Engines add one with `interval_row`; a (parameter, interval) pair appears once.
  - Interval names: "wald-z", "wald-t" (t with J - 1 df, J the fewest groups), "profile", "quantile"
    (posterior), "wald-atanh", "wald-log-sd", "conditional-sd", ..., and "none" where no interval is
    given (then `note` says why). Coverage, width and rejection are keyed by (parameter, interval),
    so intervals of one parameter read side by side.

Parameter names:
  b[Intercept], b[x]            fixed effects
  sd[g][Intercept]              SD of a group-level term
  cor[g][Intercept,x]           correlation of two terms within one block
  sigma                         residual SD (gaussian)
  r[g][level,x]                 group effect (BLUP / conditional mode / posterior)
  mrp                           poststratified population mean (scenarios that define it)
  pred_new[g]                   outcome mean for a new group (predictive; Bayesian engines)
"""

from __future__ import annotations

import json
import math
import types
import typing
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

# Columns of FitResult.params and their store dtypes. Only the first five are required; the rest are
# NaN/None where an engine does not give them.
PARAM_COLUMNS: dict[str, str] = {
    "parameter": "string", "estimate": "float64", "se": "float64", "lower": "float64", "upper": "float64",
    "median": "float64", "rhat": "float64", "ess_bulk": "float64", "ess_tail": "float64", "interval": "string",
    "note": "string",
}
REQUIRED_COLUMNS = list(PARAM_COLUMNS)[:5]
_TEXT_COLUMNS = ("parameter", "interval", "note")


def name_b(term: str) -> str:
    return f"b[{term}]"


def name_sd(group: str, term: str) -> str:
    return f"sd[{group}][{term}]"


def name_cor(group: str, a: str, b: str) -> str:
    return f"cor[{group}][{a},{b}]"


def name_r(group: str, level: str, term: str) -> str:
    return f"r[{group}][{level},{term}]"


def parameter_class(name: str) -> str:
    """'b', 'sd', 'cor', 'sigma', 'r', 'mrp', 'pred_new': what kind of estimand a name is."""
    return name.split("[", 1)[0]


@dataclass(frozen=True)
class SamplerDiagnostics:
    """What a sampler's fit says about itself (frequentist engines have none). LOO is PSIS-LOO (ArviZ)."""

    rhat_max: float  # over every parameter, group effects included
    rhat_max_hyper: float  # over b, sd, cor, sigma: what `converged` reads
    ess_bulk_min: float
    ess_tail_min: float
    ess_bulk_per_s: float  # min bulk ESS per second of sampling
    divergences: int
    treedepth_hits: int
    ebfmi_min: float
    loo_elpd: float
    loo_se: float
    p_loo: float
    pareto_k_max: float
    pareto_k_gt_07: int


@dataclass
class FitResult:
    """One engine's fit of one dataset: the estimands (`params`, one row each) and fit-level fields.

    Every field but `params`, `sampler` and `draws` becomes a store column of the same name (compare.store
    derives its schema from this class); `sampler`'s fields become columns too. `draws` are thinned posterior
    draws per parameter for simulation-based calibration: the harness ranks the truth among them, so no
    engine ever sees the truth. `details` is engine-specific information kept as JSON for a reader's eyes
    (optimiser codes, attempts); nothing in hbench reads it.
    """

    engine: str
    params: pd.DataFrame
    converged: bool = True
    singular: bool | None = None
    corr_at_bound: bool | None = None
    var_at_zero: bool | None = None
    loglik: float = math.nan
    criterion: str | None = None  # "REML" or "ML": which likelihood `loglik` is (compared across engines)
    optimizer: str | None = None
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    wall_s: float = math.nan
    compile_s: float = 0.0
    warmup_s: float = math.nan
    sampling_s: float = math.nan
    compile_count: int = 0
    sampler: SamplerDiagnostics | None = None
    draws: dict[str, np.ndarray] | None = field(default=None, repr=False)
    idata: Any = field(default=None, repr=False)  # every draw as ArviZ InferenceData, when asked to keep them
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def loglik_finite(self) -> bool:
        return bool(np.isfinite(self.loglik))

    def param(self, name: str) -> pd.Series:
        """The primary row of a parameter (its estimate, SE and primary interval)."""
        hit = self.params[self.params["parameter"] == name]
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
        params = self.params.reindex(columns=list(PARAM_COLUMNS))
        cols: dict[str, Any] = {c: params[c].to_numpy() for c in PARAM_COLUMNS}
        for col, dtype in PARAM_COLUMNS.items():
            if dtype == "float64":
                cols[col] = pd.to_numeric(params[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        true = params["parameter"].map(truth or {}).to_numpy(dtype=float, na_value=np.nan)
        lower, upper = cols["lower"], cols["upper"]
        known = ~(np.isnan(true) | np.isnan(lower) | np.isnan(upper))
        covered = pd.arrays.BooleanArray((lower <= true) & (true <= upper), ~known)
        return {**cols, "true": true, "covered": covered, **self.fit_fields()}

    def rows(self, truth: dict[str, float] | None = None) -> pd.DataFrame:
        """Long format: one row per parameter and interval with fit-level fields, the truth and whether that
        interval covered it."""
        return pd.DataFrame(self.columns(truth), index=pd.RangeIndex(len(self.params)))


_NOT_COLUMNS = ("engine", "params", "sampler", "draws", "idata")  # engine is a task column; the rest are not scalars


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"details value {value!r} is not JSON")


def fit_columns() -> dict[str, str]:
    """Store dtypes of the fit-level columns, derived from FitResult's and SamplerDiagnostics' annotations."""
    out = {}
    for cls in (FitResult, SamplerDiagnostics):
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            if f.name not in _NOT_COLUMNS:
                out[f.name] = _dtype(hints[f.name])
        if cls is FitResult:
            out["loglik_finite"] = "boolean"
    return out


def _dtype(hint: Any) -> str:
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


def make_params(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Params frame from a list of dicts; missing optional columns become NaN/None. A parameter's rows are
    brought together (in the order of its first row, each parameter's rows in their given order), so an
    engine may append its extra interval rows (`interval_row`) after everything else."""
    df = pd.DataFrame(rows)
    for col in PARAM_COLUMNS:
        if col not in df.columns:
            df[col] = None if col in _TEXT_COLUMNS else math.nan
    if len(df):
        order = df.groupby("parameter", sort=False).ngroup()
        df = df.iloc[np.argsort(order.to_numpy(), kind="stable")].reset_index(drop=True)
    return df[list(PARAM_COLUMNS)]


def interval_row(primary_row: dict[str, Any], interval: str, lower: float, upper: float,
                 note: str | None = None) -> dict[str, Any]:
    """An extra row for the parameter of `primary_row`: the same estimate, SE and sampler columns with
    another interval (its type named in `interval`). Append it to an engine's rows; `make_params` puts it
    after the primary row."""
    return {**primary_row, "lower": float(lower), "upper": float(upper), "interval": interval, "note": note}


def primary(rows: pd.DataFrame, by: tuple[str, ...] | list[str] = ("parameter",)) -> pd.DataFrame:
    """The primary rows: the first row of each `by` key (a FitResult's params: per parameter; the long results
    table: per (scenario, cell, rep, engine, parameter)). What every point measure reads."""
    return rows[~rows.duplicated(list(by), keep="first")]


def boundary_flags(covariances: list[np.ndarray], sigma: float = 1.0,
                   tol: float = 1e-4) -> tuple[bool, bool, bool]:
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
            col = a[k + 1:, k] / pivot
            a[k + 1:, k + 1:] -= np.outer(col, a[k, k + 1:])
    return diag
