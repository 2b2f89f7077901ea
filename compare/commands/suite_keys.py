"""`hbench suite-keys`: every key a suite file may hold, generated from the typed tables that parse suites
(compare.suite.SuiteKeys and the tables nested in it), so the listing cannot drift from the parser."""

from __future__ import annotations

import argparse
import json
import sys

from compare.settings import describe, tables
from compare.suite import SuiteKeys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("suite-keys", help="list the keys a suite file may hold: type, default, range and doc")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(handler=handle)


def catalogue() -> list[dict[str, str]]:
    """One record per key: table ("" for the top level, "failsafe", "[[scenario]]", ...), name, type, default,
    range and doc. Keys whose value is itself a table are listed by their own table's keys."""
    out = []
    for header, cls in tables(SuiteKeys):
        nested = {h.rpartition(".")[2].strip("[]") for h, _ in tables(cls)[1:]}
        out += [{"table": header, **row} for row in describe(cls) if row["name"] not in nested]
    return out


def handle(args: argparse.Namespace) -> int:
    records = catalogue()
    if args.format == "json":
        json.dump(records, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for header in dict.fromkeys(r["table"] for r in records):
        print(f"[{header}]" if header and not header.startswith("[[") else header or "(top level)")
        for r in (r for r in records if r["table"] == header):
            shown = f"  [{r['type']}{', ' + r['range'] if r['range'] else ''}]"
            print(f"    {r['name']} = {r['default']}{shown}  {r['doc']}")
        print()
    print("An engine's `settings = { ... }` take the keys `hbench engines` lists for it.")
    return 0
