"""`hbench plot RUN KIND`: one publication-ready figure of a run (rsimsum's autoplot), as PDF, SVG or PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

from compare.errors import InputError
from compare.regress import open_run
from compare.report.autoplot import FORMATS, KINDS, Choice, draw, save
from compare.report.measures import MEASURES
from compare.settings import DEFAULT_LEVEL
from compare.summary import summarise


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plot", help="one publication-ready figure of a run (forest, zip, nestloop, scatter, bland-altman, heat)"
    )
    p.add_argument("run_id", help="run id under --results, a run directory, or 'latest'")
    p.add_argument("kind", help=f"one of: {', '.join(KINDS)}")
    p.add_argument("--scenario", help="scenario (default: the run's first)")
    p.add_argument("--cell", type=int, help="grid cell (default: the scenario's first in the run)")
    p.add_argument("--parameter", help="parameter, e.g. b[x] (default: the slope of x, else the first b)")
    p.add_argument(
        "--measure",
        help=f"forest, nestloop: {', '.join(MEASURES)} (default: coverage; forest "
        f"without it: coverage, then bias and RMSE)",
    )
    p.add_argument(
        "--reference", help="scatter, bland-altman: engine on the x axis (default: the suite's reference, else lme4)"
    )
    p.add_argument("--out", default=None, help="output file, .pdf, .svg or .png (default: KIND.pdf)")
    p.add_argument("--results", default="results", help="results root folder")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from compare.commands.report import latest

    out = Path(args.out or f"{args.kind}.pdf")
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise InputError(f"--out {out}: the name must end in .pdf, .svg or .png")
    if not out.parent.is_dir():
        raise InputError(f"--out {out}: folder {out.parent} does not exist")
    if args.kind not in KINDS:
        raise InputError(f"plot kind {args.kind!r}: choose one of {', '.join(KINDS)}")
    results = Path(args.results)
    store = open_run(latest(results) if args.run_id == "latest" else args.run_id, results)
    manifest = store.manifest()
    table = store.load()
    result = summarise(table, manifest.get("reference"), float(manifest.get("level", DEFAULT_LEVEL)))
    fig, _ = draw(
        Choice(args.kind, args.scenario, args.cell, args.parameter, args.measure, args.reference), result, table
    )
    save(fig, str(out))
    print(out)
    return 0
