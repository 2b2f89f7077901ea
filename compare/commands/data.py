"""`hbench data list | show NAME | export NAME OUT.csv`: published datasets from R packages (compare.realdata)."""

from __future__ import annotations

import argparse
import shlex

from compare import realdata


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="published datasets from R packages: list, show, export as CSV")
    actions = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    actions.add_parser("list", help="every dataset: package, family, title, cached here or not").set_defaults(
        handler=run_list
    )
    show = actions.add_parser("show", help="one dataset: source, citation, licence, formulas, columns")
    show.add_argument("name")
    show.set_defaults(handler=run_show)
    export = actions.add_parser("export", help="write a dataset as CSV (loaded through R at first use)")
    export.add_argument("name")
    export.add_argument("out", metavar="OUT.csv")
    export.add_argument("--refresh", action="store_true", help="load it through R again, replacing the cache")
    export.set_defaults(handler=run_export)


def run_list(args: argparse.Namespace) -> int:
    print(f"{'dataset':<15}{'package':<10}{'family':<10}{'rows':>7}  title")
    for name, ds in realdata.catalogue().items():
        prov = realdata.cached(name)
        rows = str(prov["rows"]) if prov else "-"
        print(f"{name:<15}{ds.package:<10}{ds.family:<10}{rows:>7}  {ds.title}")
    print(f"(rows: '-' until first use; cache: {realdata.cache_dir()})")
    return 0


def run_show(args: argparse.Namespace) -> int:
    ds = realdata.get(args.name)
    frame, prov = realdata.load(args.name)
    print(f"{ds.name}: {ds.title}")
    print(
        f"  from      R package {ds.package} {prov['package_version']} ({prov['r_version']}), licence {prov['licence']}"
    )
    print(f"  citation  {ds.citation}")
    print(f"  family    {ds.family}")
    for f in ds.formulas:
        print(f"  formula   {f}")
    print(f"  rows      {len(frame)}; loaded {prov['loaded_at']}; cached in {realdata.cache_dir()}")
    if prov.get("ordered_factors_made_plain"):
        print(f"  note      ordered factors read as plain factors: {', '.join(prov['ordered_factors_made_plain'])}")
    for col in frame.columns:
        values = frame[col]
        kind = f"factor, {values.nunique()} levels" if str(values.dtype) == "category" else str(values.dtype)
        print(f"    {col:<14}{kind}")
    fam = "" if ds.family == "gaussian" else f" --family {ds.family}"
    print(
        f"  try       hbench data export {ds.name} {ds.name}.csv && "
        f"hbench fit {ds.name}.csv --formula {shlex.quote(ds.formulas[0])}{fam}"
    )
    return 0


def run_export(args: argparse.Namespace) -> int:
    rows, prov = realdata.export(args.name, args.out, refresh=args.refresh)
    print(
        f"wrote {args.out}: {rows} rows of {args.name} from R package {prov['package']} "
        f"{prov['package_version']} (licence {prov['licence']})"
    )
    return 0
