"""`hbench matrix SUITE --env NAME=SPEC --env NAME=SPEC ...`: the same suite and seed in several Python
environments (built with uv, cached under the results folder), each compared with the first; one report page.
Exit 1 when any environment changed behaviour, 0 otherwise, 2 on bad input."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from compare import matrix
from compare.errors import InputError
from compare.report import REPORTS_DIR


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("matrix", help="run one suite in several Python environments and compare them")
    p.add_argument("suite", help="suite file, or a name from scenarios/suites/ (quick, default, ...)")
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=SPEC",
        required=True,
        help="an environment: pip pins separated by commas (old=statsmodels==0.14.4) or a requirements "
        "file (new=reqs.txt); an empty SPEC takes hbench's own defaults. Repeat: the first is "
        "the baseline every other is compared with",
    )
    p.add_argument("--id", help="matrix id: runs are <id>-<env>, the report reports/<id>/ (default: matrix-<time>)")
    p.add_argument("--seed", type=int, help="run seed for every environment (default: the suite's)")
    p.add_argument("--reps", type=int, help="replications per cell (overrides the suite)")
    p.add_argument("--workers", type=int, help="worker processes per run (default: one per core)")
    p.add_argument("--z", type=float, default=3.0, help="flag measures whose |z| exceeds this (default 3)")
    p.add_argument(
        "--runtime-ratio",
        type=float,
        default=2.0,
        help="flag median CPU seconds per fit changing by more than this factor (default 2)",
    )
    p.add_argument("--adjust", choices=["none", "holm"], default="none", help="as in hbench compare")
    p.add_argument("--results", default="results", help="results root folder (environments cached in .envs/)")
    p.add_argument("--reports", default=str(REPORTS_DIR), help="reports root folder")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    if args.z <= 0 or args.runtime_ratio <= 1:
        raise InputError("--z must be positive and --runtime-ratio above 1")
    plan = matrix.plan(
        args.suite,
        args.env,
        results=Path(args.results),
        matrix_id=args.id,
        seed=args.seed,
        reps=args.reps,
        workers=args.workers,
        scenarios=args.scenarios,
        thresholds=matrix.regress.Thresholds(args.z, args.runtime_ratio, "cpu", args.adjust),
    )
    out = Path(args.reports) / plan.matrix_id
    try:
        result = matrix.run(plan, out / "logs", say=lambda text: print(text, file=sys.stderr))
    except matrix.envs.BuildError as exc:
        print(f"hbench: matrix: {exc}", file=sys.stderr)
        return 1
    from compare.report.matrix import render  # matplotlib and the report's imports: only once there is a result

    page = render(result, out)
    print(
        f"{'CHANGED' if matrix.any_flagged(result) else 'no change'} between environments; wrote {page} "
        f"and {out / 'summary.md'}"
    )
    return 1 if matrix.any_flagged(result) else 0
