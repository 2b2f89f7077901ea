"""One summary object per run (rsimsum's `simsum`): every measure computed once from the results table,
then read by the report, `hbench metrics` and `hbench compare` alike, so the three never disagree.

Besides the per-engine measures (compare.metrics) it holds the comparisons between engines, made from
their stored results after the fits: relative precision against the suite's reference engine, whether
each fit reached the reference's optimum (in `fits`), and the pairwise agreement of estimates.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import pandas as pd

from compare import metrics
from compare.settings import DEFAULT_LEVEL
from compare.store import RunStore


@dataclass(frozen=True)
class RunSummary:
    performance: pd.DataFrame  # per (scenario, cell, engine, parameter), primary rows: bias, EmpSE, ... with MCSE
    intervals: pd.DataFrame  # per (scenario, cell, engine, parameter, interval): coverage, width, ... with MCSE
    fits: pd.DataFrame  # per (scenario, cell, engine): failure, singular, convergence, runtime, ...
    sbc: pd.DataFrame  # per prior-DGP (scenario, cell, engine, parameter): rank uniformity
    precision: pd.DataFrame  # relative precision against `reference` (empty without one)
    agreement: pd.DataFrame  # per pair of engines and parameter: standardised differences
    warnings: pd.DataFrame  # per (scenario, cell, engine, warning): share of fits with MCSE (fits, long form)
    sensitivity: pd.DataFrame  # per parameter: primary coverage and bias, all fits beside non-flagged fits
    reference: str | None
    level: float

    def tables(self) -> dict[str, pd.DataFrame]:
        return {f.name: getattr(self, f.name) for f in fields(self) if isinstance(getattr(self, f.name), pd.DataFrame)}

    def write_csv(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name, df in self.tables().items():
            df.to_csv(folder / f"{name}.csv", index=False)


def summarise(table: pd.DataFrame, reference: str | None = None, level: float = DEFAULT_LEVEL) -> RunSummary:
    """Every measure of a results table, computed once."""
    precision = metrics.precision_vs(table, reference) if reference else pd.DataFrame()
    fits = metrics.fit_summary(table, reference)
    return RunSummary(
        performance=metrics.performance(table),
        intervals=metrics.intervals(table),
        fits=fits,
        sbc=metrics.sbc_summary(table),
        precision=precision,
        agreement=metrics.agreement(table),
        warnings=metrics.warnings_tally(fits),
        sensitivity=metrics.sensitivity(table),
        reference=reference,
        level=level,
    )


def of_run(store: RunStore, reference: str | None = None) -> RunSummary:
    """The summary of a stored run; the reference engine and the level come from its manifest."""
    manifest = store.manifest()
    return summarise(store.load(), reference or manifest.get("reference"), float(manifest.get("level", DEFAULT_LEVEL)))
