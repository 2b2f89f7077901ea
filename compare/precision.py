"""Precision targets: `hbench run SUITE --until-mcse coverage=0.01 --max-reps 2000` runs batches of
replications until every key measure's Monte Carlo SE is at most its target, or the cap is reached.

A batch is as many replications as the run started with; each batch extends the run (`--resume --reps`,
so the seeds are those a run started with the final count would have had, and nothing is refitted). Key
measures are those of the model's own parameters (fixed effects, SDs, correlations, sigma: not group effects
or predictions), per scenario, cell, engine (and interval type for coverage and rejection), computed as
`hbench metrics` computes them (compare.metrics). A measure whose MCSE cannot be computed (no interval, no
truth) is not a target. Note that the binomial MCSE of a proportion of 0 or 1 is 0: such a cell meets any
coverage target, however few its replications.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from compare import metrics
from compare.errors import InputError
from compare.store import RunStore

KEY_CLASSES = ("b", "sd", "cor", "sigma", "phi")  # the model's parameters
# measure -> the table of compare.metrics it is read from
MEASURES: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "coverage": metrics.intervals,
    "rejection": metrics.intervals,
    "bias": metrics.performance,
}


@dataclass(frozen=True)
class Worst:
    """The largest MCSE of one measure over the key parameters, and where it is."""

    measure: str
    mcse: float
    target: float
    where: str

    @property
    def met(self) -> bool:
        return self.mcse <= self.target

    def describe(self) -> str:
        sign = "<=" if self.met else ">"
        return f"{self.measure} MCSE {self.mcse:.4g} {sign} {self.target:g} (largest: {self.where})"


def parse_targets(texts: list[str]) -> dict[str, float]:
    """`coverage=0.01`, repeated or comma-separated, as measure -> target MCSE."""
    out: dict[str, float] = {}
    for item in (part.strip() for text in texts for part in text.split(",")):
        name, eq, value = item.partition("=")
        name = name.strip()
        if name not in MEASURES:
            raise InputError(f"--until-mcse {item!r}: the measure must be one of {', '.join(MEASURES)}")
        try:
            target = float(value) if eq else math.nan
        except ValueError:
            target = math.nan
        if not (target > 0 and math.isfinite(target)):
            raise InputError(f"--until-mcse {item!r}: give a positive target MCSE, e.g. {name}=0.01")
        out[name] = target
    if not out:
        raise InputError("--until-mcse: give at least one measure=target, e.g. coverage=0.01")
    return out


def worst(table: pd.DataFrame, targets: dict[str, float]) -> list[Worst]:
    """For each targeted measure, its largest MCSE over the key parameters of the results table."""
    out = []
    for measure, target in targets.items():
        frame = MEASURES[measure](table)
        col = f"{measure}_mcse"
        key = frame[frame["param_class"].isin(KEY_CLASSES) & frame[col].notna()] if len(frame) else frame
        if not len(key):
            raise InputError(
                f"--until-mcse {measure}: the run has no {measure} with an MCSE for a model "
                f"parameter ({', '.join(KEY_CLASSES)}) to target"
            )
        row = key.loc[key[col].idxmax()]
        where = f"{row['engine']} on {row['scenario']} cell {row['cell']}, {row['parameter']}"
        where += f" ({row['interval']})" if "interval" in key else ""
        out.append(Worst(measure, float(row[col]), target, where))
    return out


def reps_of(manifest: dict[str, Any]) -> int:
    """The run's replications per cell (its largest, when scenarios have their own)."""
    from compare.harness import suite_from_manifest

    return max(s.reps for s in suite_from_manifest(manifest).scenarios)


def run_until(
    targets: dict[str, float], max_reps: int, start: Callable[[], RunStore], extend: Callable[[str, int], RunStore]
) -> tuple[RunStore, list[Worst], int]:
    """Run (`start`), then extend by batches (`extend(run_id, reps)`) until every target is met or `max_reps`
    is reached. Returns the store, the measures' final largest MCSEs and the replications run; the outcome is
    recorded in the manifest under `precision`."""
    store = start()
    batch = reps = reps_of(store.manifest())
    if max_reps < reps:
        raise InputError(f"--max-reps {max_reps}: the run already has {reps} replications")
    found = worst(store.load(), targets)
    while not all(w.met for w in found) and reps < max_reps:
        reps = min(max_reps, reps + batch)
        store = extend(store.run_id, reps)
        found = worst(store.load(), targets)
    _record(store, targets, max_reps, reps, found)
    return store, found, reps


def _record(store: RunStore, targets: dict[str, float], max_reps: int, reps: int, found: list[Worst]) -> None:
    store.acquire()
    try:
        manifest = store.manifest()
        manifest["precision"] = {
            "targets": targets,
            "max_reps": max_reps,
            "reps": reps,
            "met": all(w.met for w in found),
            "at_cap": [w.measure for w in found if not w.met],
            "mcse": {w.measure: w.mcse for w in found},
            "largest": {w.measure: w.where for w in found},
        }
        store.write_manifest(manifest)
    finally:
        store.release()


def summary(found: list[Worst], reps: int, max_reps: int) -> list[str]:
    """What the run command prints: each measure's largest MCSE, and which stopped at the cap."""
    lines = [f"precision after {reps} replications: " + "; ".join(w.describe() for w in found)]
    short = [w.measure for w in found if not w.met]
    lines.append(
        f"stopped at the cap (--max-reps {max_reps}) short of the target: {', '.join(short)}"
        if short
        else "every target met"
    )
    return lines
