"""`hbench simulate`: write one simulated dataset (CSV) and its truth (JSON beside it)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from compare.catalogue import load_scenario
from compare.errors import InputError
from compare.simulate import dataset_for


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="simulate one replication of a scenario cell")
    p.add_argument("scenario", help="a shipped scenario's name or the path of a spec file")
    p.add_argument("--cell", type=int, default=0, help="grid cell index (see `hbench scenarios -v`)")
    p.add_argument("--rep", type=int, default=0, help="replication number")
    p.add_argument("--seed", type=int, default=20221, help="run seed")
    p.add_argument("--out", required=True, help="CSV path; the truth goes to the same path with .json")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.rep < 0 or args.seed < 0:
        raise InputError("--rep and --seed must be non-negative")
    scenario = load_scenario(args.scenario)
    ds = dataset_for(scenario, args.cell, args.rep, args.seed)
    out = Path(args.out)
    if not out.parent.is_dir():
        raise InputError(f"--out: folder {out.parent} does not exist")
    if out.is_dir():
        raise InputError(f"--out {out}: is a folder; give a file name such as {out / 'data.csv'}")
    ds.frame.to_csv(out, index=False, float_format="%.17g")
    meta = {
        "scenario": scenario.name,
        "cell": args.cell,
        "grid": scenario.cell(args.cell).factors,
        "rep": args.rep,
        "seed": args.seed,
        "formula": ds.data.formula.text,
        "family": ds.data.family,
        "link": ds.data.link,
        "hash": ds.hash,
        "truth": ds.truth,
    }
    truth_path = out.with_suffix(".json")
    truth_path.write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {out} ({len(ds.frame)} rows) and {truth_path}")
    return 0
