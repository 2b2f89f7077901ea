"""`hbench compare BASELINE RUN`: did estimator behaviour change? Exit 1 when anything is flagged."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from compare.errors import InputError
from compare.realagree import SE_TOL
from compare.regress import Thresholds, any_flagged, compare_runs, not_comparable, notes, open_run, to_json
from compare.regress_markdown import headline, to_markdown


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare a run against a baseline run (regression tracking)")
    p.add_argument("baseline", help="run id under --results, or a run directory (e.g. results/baselines/quick)")
    p.add_argument("run", help="run id under --results, or a run directory")
    p.add_argument("--z", type=float, default=3.0, help="flag measures whose |z| exceeds this (default 3)")
    p.add_argument(
        "--runtime-ratio",
        type=float,
        default=2.0,
        help="flag median fit times that change by more than this factor either way (default 2)",
    )
    p.add_argument(
        "--runtime",
        choices=["cpu", "wall"],
        default="cpu",
        help="judge runtime on median CPU seconds per fit (default; unmoved by other jobs on the "
        "machine) or on wall seconds",
    )
    p.add_argument(
        "--adjust",
        choices=["none", "holm"],
        default="none",
        help="none: flag each measure whose |z| exceeds --z (default); holm: --z's two-sided tail is "
        "the chance of any false flag over all measures compared (Holm step-down)",
    )
    p.add_argument(
        "--se-tol",
        type=float,
        default=SE_TOL,
        help=f"real-data runs: flag a frequentist engine's estimate that moved by more than this many of its "
        f"SEs (default {SE_TOL:g}); samplers' posterior means are judged by --z in MCSEs",
    )
    p.add_argument(
        "--format",
        choices=["table", "markdown", "json"],
        default="table",
        help="stdout: tables of the flagged rows (default), a Markdown summary for a pull-request "
        "comment, or the JSON that is also written to --json",
    )
    p.add_argument("--json", help="where to write the JSON (default: <run>/compare-<baseline>.json)")
    p.add_argument("--all", action="store_true", help="print every measure, not only flagged ones")
    p.add_argument(
        "--allow-different",
        action="store_true",
        help="compare runs of different suites, seeds, replications or levels anyway",
    )
    p.add_argument("--results", default="results", help="results root folder")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    if args.z <= 0 or args.runtime_ratio <= 1:
        raise InputError("--z must be positive and --runtime-ratio above 1")
    if not args.se_tol > 0:
        raise InputError(f"--se-tol {args.se_tol:g}: must be positive")
    base, run = open_run(args.baseline, Path(args.results)), open_run(args.run, Path(args.results))
    thresholds = Thresholds(args.z, args.runtime_ratio, args.runtime, args.adjust, args.se_tol)
    result = compare_runs(base, run, thresholds)
    reasons = not_comparable(base, run, result)
    if reasons and not args.allow_different:
        raise InputError(
            f"{base.run_id} and {run.run_id} are not comparable: {'; '.join(reasons)} "
            "(--allow-different compares them anyway)"
        )
    if reasons and args.adjust == "none":  # other seeds: independent Monte Carlo error in every measure
        print(
            "hbench: note: runs that are not comparable differ by Monte Carlo error in every measure; "
            "--adjust holm keeps false flags rare over thousands of them (README, 'Tracking an upgrade')",
            file=sys.stderr,
        )
    out = Path(args.json) if args.json else run.dir / f"compare-{base.run_id}.json"
    text = json.dumps(to_json(result, base, run, thresholds), indent=1, default=str) + "\n"
    out.write_text(text)
    if args.format == "json":
        print(text, end="")
    elif args.format == "markdown":
        print(to_markdown(result, base.run_id, run.run_id, thresholds), end="")
    else:
        print_tables(result, thresholds, args.all, out)
    return 1 if any_flagged(result) else 0


def print_tables(result: dict[str, pd.DataFrame], thresholds: Thresholds, every: bool, out: Path) -> None:
    with pd.option_context("display.width", 200, "display.max_rows", 1000):
        for name, df in result.items():
            shown = df if every else df[df["flagged"]]
            print(f"== {name}: {int(df['flagged'].sum()) if len(df) else 0} flagged of {len(df)}")
            if len(shown):
                print(shown.round(4).to_string(index=False))
    for note in notes(result, thresholds):
        print(f"note: {note}")
    print(f"{headline(result, thresholds).replace('**', '')}; wrote {out}")
