"""`hbench status RUN_ID`: progress of a run and its fits by engine and status."""

from __future__ import annotations

import argparse

from compare.harness import status


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="progress of a run")
    p.add_argument("run_id")
    p.add_argument("--results", default="results", help="results root folder")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    s = status(args.run_id, args.results)
    print(
        f"run {s['run_id']}: {s['status']}, {s['done']}/{s['total']} tasks done "
        f"(started {s['started']}, finished {s['finished']})"
    )
    if len(s["fits_by_engine"]):
        print(s["fits_by_engine"].to_string())
    return 0
