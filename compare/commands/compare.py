"""`hbench compare BASELINE RUN`: did estimator behaviour change? Exit 1 when anything is flagged."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from compare.errors import InputError
from compare.regress import Thresholds, any_flagged, compare_runs, not_comparable, open_run, to_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare a run against a baseline run (regression tracking)")
    p.add_argument("baseline", help="run id under --results, or a run directory (e.g. results/baselines/quick)")
    p.add_argument("run", help="run id under --results, or a run directory")
    p.add_argument("--z", type=float, default=3.0, help="flag measures whose |z| exceeds this (default 3)")
    p.add_argument("--runtime-ratio", type=float, default=2.0,
                   help="flag median fit times that change by more than this factor either way (default 2)")
    p.add_argument("--json", help="where to write the JSON (default: <run>/compare-<baseline>.json)")
    p.add_argument("--all", action="store_true", help="print every measure, not only flagged ones")
    p.add_argument("--allow-different", action="store_true",
                   help="compare runs of different suites, seeds, replications or levels anyway")
    p.add_argument("--results", default="results", help="results root folder")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    if args.z <= 0 or args.runtime_ratio <= 1:
        raise InputError("--z must be positive and --runtime-ratio above 1")
    base, run = open_run(args.baseline, Path(args.results)), open_run(args.run, Path(args.results))
    thresholds = Thresholds(args.z, args.runtime_ratio)
    result = compare_runs(base, run, thresholds)
    reasons = not_comparable(base, run, result)
    if reasons and not args.allow_different:
        raise InputError(f"{base.run_id} and {run.run_id} are not comparable: {'; '.join(reasons)} "
                         "(--allow-different compares them anyway)")
    with pd.option_context("display.width", 200, "display.max_rows", 1000):
        for name, df in result.items():
            shown = df if args.all else df[df["flagged"]]
            print(f"== {name}: {int(df['flagged'].sum()) if len(df) else 0} flagged of {len(df)}")
            if len(shown):
                print(shown.round(4).to_string(index=False))
    out = Path(args.json) if args.json else run.dir / f"compare-{base.run_id}.json"
    out.write_text(json.dumps(to_json(result, base, run, thresholds), indent=1, default=str) + "\n")
    flagged = any_flagged(result)
    print(f"{'CHANGED' if flagged else 'no change'} beyond |z| > {args.z:g} or runtime x{args.runtime_ratio:g}; "
          f"wrote {out}")
    return 1 if flagged else 0
