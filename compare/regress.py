"""Regression tracking of estimator behaviour: compare two runs measure by measure.

Each measure's change is judged against the Monte Carlo error of both runs,
z = (new - old) / sqrt(mcse_old^2 + mcse_new^2), and flagged beyond a threshold;
runtimes are judged as ratios (machines are noisy, so seconds would mislead).

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

from compare import metrics, summary
from compare.errors import InputError
from compare.store import RunStore

# measures that carry an MCSE column "<name>_mcse"
PARAM_MEASURES = ["bias", "empse", "rmse", "modse", "relerr_modse"]  # per parameter (primary rows)
INTERVAL_MEASURES = ["coverage", "be_coverage", "rejection", "width"]  # per parameter x interval type
FIT_MEASURES = ["failure_rate", "singular_rate", "corr_at_bound_rate", "var_at_zero_rate", "nonconvergence_rate",
                "reached_reference_rate", "divergent_fit_rate", "rhat_gt_101_rate"]
RUNTIME = "wall_s_median"


@dataclass(frozen=True)
class Thresholds:
    z: float = 3.0
    runtime_ratio: float = 2.0


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
    params = _judge(_long(sb.performance, pkeys, PARAM_MEASURES),
                    _long(sr.performance, pkeys, PARAM_MEASURES), pkeys, thresholds.z)
    ivals = _judge(_long(sb.intervals, ikeys, INTERVAL_MEASURES),
                   _long(sr.intervals, ikeys, INTERVAL_MEASURES), ikeys, thresholds.z)
    fb, fr = sb.fits, sr.fits
    fits = _judge(_long(fb, fkeys, FIT_MEASURES), _long(fr, fkeys, FIT_MEASURES), fkeys, thresholds.z)
    if not {RUNTIME, *fkeys} <= set(fb.columns) or not {RUNTIME, *fkeys} <= set(fr.columns):
        fb = fr = pd.DataFrame(columns=[*fkeys, RUNTIME])
    rt = fb[fkeys + [RUNTIME]].merge(fr[fkeys + [RUNTIME]], on=fkeys, suffixes=("_base", "_run")).dropna()
    rt["ratio"] = rt[f"{RUNTIME}_run"] / rt[f"{RUNTIME}_base"]
    limit = thresholds.runtime_ratio
    rt["flagged"] = (rt["ratio"] > limit) | (rt["ratio"] < 1 / limit)
    return {"parameters": params, "intervals": ivals, "fits": fits, "runtime": rt}


def not_comparable(base: RunStore, run: RunStore, result: dict[str, pd.DataFrame]) -> list[str]:
    """Why two runs should not be compared: a flag between them would not mean that an engine changed."""
    mb, mr = base.manifest(), run.manifest()
    out = []
    for key, what in (("suite", "suites"), ("run_seed", "seeds"), ("reps", "replications"), ("n_tasks", "task counts"),
                      ("level", "interval levels")):
        if mb.get(key) != mr.get(key):
            out.append(f"different {what} ({mb.get(key)} vs {mr.get(key)})")
    if not any(len(df) for df in result.values()):
        out.append("no measure in common (an empty run, or no engine, scenario and cell shared)")
    return out


def any_flagged(result: dict[str, pd.DataFrame]) -> bool:
    return any(bool(df["flagged"].any()) for df in result.values() if len(df))


def to_json(result: dict[str, pd.DataFrame], base: RunStore, run: RunStore, thresholds: Thresholds) -> dict:
    def records(df: pd.DataFrame) -> list[dict]:
        return [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
                for r in df.to_dict("records")]

    return {"baseline": str(base.dir), "run": str(run.dir), "z_threshold": thresholds.z,
            "runtime_ratio": thresholds.runtime_ratio, "flagged": any_flagged(result),
            **{name: records(df) for name, df in result.items()}}
