"""Regression tracking of estimator behaviour: compare two runs measure by measure.

Each measure's change is judged against the Monte Carlo error of both runs,
z = (new - old) / sqrt(mcse_old^2 + mcse_new^2), and flagged beyond a threshold;
runtimes are judged as ratios of median CPU seconds per fit (machines are noisy, so seconds would mislead, and
wall seconds double when another job shares the cores); wall seconds are shown beside them, and judged instead
on request (`runtime="wall"`) or where a run predates cpu_s (a note says so).

Runs over published datasets (compare.realagree) have no truth, so most measures are empty; their estimates are
compared directly ("realdata"): an optimiser's in its SEs against a tolerance, a sampler's posterior mean in the
MCSE of the difference (Holm's adjustment does not apply to them).

Point measures match on (scenario, cell, engine, parameter); interval measures also on the interval type,
so a "wald-t" coverage is only ever compared with a "wald-t" coverage. An interval type that only one run
has (a baseline from before an engine gave it) is not compared: it is absent from the "intervals" table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from compare import metrics, realagree, summary
from compare.errors import InputError
from compare.store import RunStore

# measures that carry an MCSE column "<name>_mcse"
PARAM_MEASURES = ["bias", "empse", "rmse", "modse", "relerr_modse"]  # per parameter (primary rows)
INTERVAL_MEASURES = ["coverage", "be_coverage", "rejection", "width"]  # per parameter x interval type
FIT_MEASURES = [
    "failure_rate",
    "singular_rate",
    "corr_at_bound_rate",
    "var_at_zero_rate",
    "nonconvergence_rate",
    "reached_reference_rate",
    "divergent_fit_rate",
    "rhat_gt_101_rate",
]
RUNTIME = {"cpu": "cpu_s_median", "wall": "wall_s_median"}  # what runtime is judged on -> fit_summary column


@dataclass(frozen=True)
class Thresholds:
    z: float = 3.0
    runtime_ratio: float = 2.0
    runtime: str = "cpu"  # "cpu" or "wall": which median seconds per fit the ratio is judged on
    adjust: str = "none"  # "holm": |z| > z is the family-wise level over every measure compared (Holm step-down)
    se_tol: float = realagree.SE_TOL  # real-data runs: an optimiser's estimate moving beyond this many SEs

    def alpha(self) -> float:
        """Two-sided tail probability of |z| > z under no change: the per-measure false-alarm rate."""
        return float(2 * stats.norm.sf(self.z))

    def adjust_label(self) -> str:
        if self.adjust == "holm":
            return f"Holm over all measures, family-wise {self.alpha():.2g}"
        return "per measure"


def open_run(where: str, results: Path) -> RunStore:
    """A run by id under `results`, or a run directory given by path (e.g. results/baselines/quick)."""
    path = Path(where)
    if (path / "manifest.json").exists():
        return RunStore(path.name, path.parent)
    store = RunStore(where, results)
    if not store.exists():
        raise InputError(f"{where}: neither a run under {results}/ nor a run directory with manifest.json")
    return store


def _long(df: pd.DataFrame, keys: list[str], measures: list[str]) -> pd.DataFrame:
    present = [m for m in measures if m in df.columns]
    if df.empty or not present or not set(keys) <= set(df.columns):
        return pd.DataFrame(columns=[*keys, "measure", "value", "mcse"])
    value = df.melt(id_vars=keys, value_vars=present, var_name="measure", value_name="value")
    mcse = df.melt(id_vars=keys, value_vars=[f"{m}_mcse" for m in present], var_name="measure", value_name="mcse")
    mcse["measure"] = mcse["measure"].str.removesuffix("_mcse")
    return value.merge(mcse, on=keys + ["measure"])


def _judge(old: pd.DataFrame, new: pd.DataFrame, keys: list[str], z: float) -> pd.DataFrame:
    both = old.merge(new, on=keys + ["measure"], suffixes=("_base", "_run"))
    both = both[both["value_base"].notna() & both["value_run"].notna()].copy()
    both["diff"] = both["value_run"] - both["value_base"]
    se = np.sqrt(both["mcse_base"].fillna(0) ** 2 + both["mcse_run"].fillna(0) ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        zs = np.where(both["diff"] == 0, 0.0, both["diff"] / se)
    both["z"] = zs
    both["flagged"] = np.abs(both["z"]) > z
    return both


def compare_runs(base: RunStore, run: RunStore, thresholds: Thresholds = Thresholds()) -> dict[str, pd.DataFrame]:
    """Differences per measure (with z) and runtime ratios between two runs; `flagged` marks changes."""
    sb, sr = summary.of_run(base), summary.of_run(run)
    pkeys, ikeys, fkeys = metrics.PARAM_KEYS, metrics.INTERVAL_KEYS, metrics.FIT_KEYS
    params = _judge(
        _long(sb.performance, pkeys, PARAM_MEASURES), _long(sr.performance, pkeys, PARAM_MEASURES), pkeys, thresholds.z
    )
    ivals = _judge(
        _long(sb.intervals, ikeys, INTERVAL_MEASURES),
        _long(sr.intervals, ikeys, INTERVAL_MEASURES),
        ikeys,
        thresholds.z,
    )
    fits = _judge(_long(sb.fits, fkeys, FIT_MEASURES), _long(sr.fits, fkeys, FIT_MEASURES), fkeys, thresholds.z)
    if thresholds.adjust == "holm":
        holm([params, ivals, fits], thresholds.alpha())
    rt = runtime_ratios(sb.fits, sr.fits, thresholds)
    out = {"parameters": params, "intervals": ivals, "fits": fits, "runtime": rt}
    if realagree.is_realdata(base.manifest()) and realagree.is_realdata(run.manifest()):
        out["realdata"] = realagree.judge_runs(base.load(), run.load(), thresholds.z, thresholds.se_tol)
    return out


def holm(tables: list[pd.DataFrame], alpha: float) -> None:
    """Re-flag in place by Holm's step-down over every measure of `tables` together: sorted by two-sided p,
    the k-th smallest (from 0) is flagged while p <= alpha / (m - k). The chance of any false flag in a
    comparison is then at most alpha, whatever the number m of measures (issue 23: a no-change comparison of
    thousands of measures at a per-measure 0.27% raises some flags by chance alone)."""
    p = (
        np.concatenate([2 * stats.norm.sf(np.abs(df["z"].to_numpy(float))) for df in tables])
        if tables
        else np.array([])
    )
    m = len(p)
    order = np.argsort(p, kind="stable")
    passed = p[order] <= alpha / (m - np.arange(m))
    stop = int(np.argmin(passed)) if not passed.all() else m  # step-down: the first failure ends it
    flag = np.zeros(m, dtype=bool)
    flag[order[:stop]] = True
    start = 0
    for df in tables:
        df["flagged"] = flag[start : start + len(df)]
        start += len(df)


def runtime_ratios(fb: pd.DataFrame, fr: pd.DataFrame, thresholds: Thresholds) -> pd.DataFrame:
    """Per (scenario, cell, engine): median wall and CPU seconds per fit in both runs, their ratios (run / base),
    and `judged` ("cpu" or "wall"): the ratio flagged beyond the threshold. A row whose CPU seconds one run lacks
    (a run from before cpu_s was measured) is judged on wall seconds."""
    keys, cols = metrics.FIT_KEYS, list(RUNTIME.values())
    fb, fr = (df.reindex(columns=list(dict.fromkeys([*keys, *cols, *df.columns]))) for df in (fb, fr))
    rt = fb[keys + cols].merge(fr[keys + cols], on=keys, suffixes=("_base", "_run"))
    rt = rt[rt["wall_s_median_base"].notna() & rt["wall_s_median_run"].notna()].copy()
    for basis, col in RUNTIME.items():
        rt[f"{basis}_ratio"] = rt[f"{col}_run"].astype(float) / rt[f"{col}_base"].astype(float)
    rt["judged"] = np.where(rt["cpu_ratio"].notna(), thresholds.runtime, "wall")
    rt["ratio"] = np.where(rt["judged"] == "cpu", rt["cpu_ratio"], rt["wall_ratio"])
    limit = thresholds.runtime_ratio
    rt["flagged"] = (rt["ratio"] > limit) | (rt["ratio"] < 1 / limit)
    return rt.reset_index(drop=True)


def notes(result: dict[str, pd.DataFrame], thresholds: Thresholds) -> list[str]:
    """What qualifies the comparison: runtime judged on wall seconds where CPU seconds were asked for."""
    rt = result["runtime"]
    fallback = int((rt["judged"] == "wall").sum()) if thresholds.runtime == "cpu" and len(rt) else 0
    if fallback:
        return [
            f"runtime judged on wall seconds for {fallback} of {len(rt)} engine cells: a run lacks CPU "
            "seconds per fit (recorded since results of December 2026); wall seconds swing with machine load"
        ]
    return []


def not_comparable(base: RunStore, run: RunStore, result: dict[str, pd.DataFrame]) -> list[str]:
    """Why two runs should not be compared: a flag between them would not mean that an engine changed."""
    mb, mr = base.manifest(), run.manifest()
    out = []
    for key, what in (
        ("suite", "suites"),
        ("run_seed", "seeds"),
        ("reps", "replications"),
        ("n_tasks", "task counts"),
        ("level", "interval levels"),
    ):
        if mb.get(key) != mr.get(key):
            out.append(f"different {what} ({mb.get(key)} vs {mr.get(key)})")
    if not any(len(df) for df in result.values()):
        out.append("no measure in common (an empty run, or no engine, scenario and cell shared)")
    return out


def any_flagged(result: dict[str, pd.DataFrame]) -> bool:
    return any(bool(df["flagged"].any()) for df in result.values() if len(df))


def to_json(result: dict[str, pd.DataFrame], base: RunStore, run: RunStore, thresholds: Thresholds) -> dict:
    def records(df: pd.DataFrame) -> list[dict]:
        return [
            {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
            for r in df.to_dict("records")
        ]

    return {
        "baseline": str(base.dir),
        "run": str(run.dir),
        "z_threshold": thresholds.z,
        "runtime_ratio": thresholds.runtime_ratio,
        "runtime_basis": thresholds.runtime,
        "adjust": thresholds.adjust,
        "notes": notes(result, thresholds),
        "flagged": any_flagged(result),
        **{name: records(df) for name, df in result.items()},
    }
