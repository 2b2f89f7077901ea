"""`hbench report RUN_ID`: render reports/<run_id>/index.html, summary.md and tables/."""

from __future__ import annotations

import argparse
from pathlib import Path

from compare.regress import open_run
from compare.report import build


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="render a run's HTML report and tables")
    p.add_argument("run_id", help="run id under --results, a run directory, or 'latest'")
    p.add_argument("--results", default="results", help="results root folder")
    p.add_argument("--out", default="reports", help="reports root folder")
    p.set_defaults(handler=handle)


def latest(results: Path) -> str:
    from compare.errors import InputError

    runs = sorted((p for p in results.glob("*/manifest.json")), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise InputError(f"no runs under {results}/")
    return runs[-1].parent.name


def handle(args: argparse.Namespace) -> int:
    results = Path(args.results)
    run_id = latest(results) if args.run_id == "latest" else args.run_id
    path = build(open_run(run_id, results), Path(args.out))
    print(path)
    return 0
