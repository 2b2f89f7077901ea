"""`hbench metrics RUN_ID`: performance measures with MCSE from a run's results table, as CSV files."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from compare import summary
from compare.store import RunStore
from compare.summary import RunSummary


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("metrics", help="performance measures (with Monte Carlo SEs) of a run")
    p.add_argument("run_id")
    p.add_argument("--results", default="results", help="results root folder")
    p.add_argument("--reference", help="engine for relative precision (default: the suite's reference)")
    p.add_argument(
        "--parameters",
        default="b,sd,cor,sigma,mrp,pred_new",
        help="parameter classes to print (comma-separated); all are written to CSV",
    )
    p.set_defaults(handler=handle)


def compute(store: RunStore, reference: str | None = None) -> RunSummary:
    """The run's summary, also written to results/<run_id>/metrics/*.csv."""
    result = summary.of_run(store, reference)
    result.write_csv(store.dir / "metrics")
    return result


def _print(df: pd.DataFrame, classes: set[str], measures: list[str]) -> None:
    """One table of the summary, for the parameter classes asked for, then a blank line."""
    if len(df):
        keep = df[df["param_class"].isin(classes)]
        print(keep[["scenario", "cell", "engine", "parameter", *measures]].round(4).to_string(index=False))
        print()


def handle(args: argparse.Namespace) -> int:
    store = RunStore(args.run_id, Path(args.results))
    store.manifest()  # a clear error when the run does not exist
    result = compute(store, args.reference)
    classes = set(args.parameters.split(","))
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        _print(result.performance, classes, ["n", "bias", "bias_mcse", "empse", "modse", "rmse"])
        _print(result.intervals, classes, ["interval", "n", "coverage", "coverage_mcse", "width", "rejection"])
    fits = result.fits
    if len(fits):
        cols = [
            c
            for c in [
                "scenario",
                "cell",
                "engine",
                "fits",
                "failure_rate",
                "singular_rate",
                "nonconvergence_rate",
                "reached_reference_rate",
                "wall_s_median",
            ]
            if c in fits
        ]
        print(fits[cols].round(3).to_string(index=False))
    print(f"\nwrote {store.dir / 'metrics'}/*.csv")
    return 0
