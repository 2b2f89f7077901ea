"""`hbench schema`: the columns of the results table, their types and meanings (docs/results.md)."""

from __future__ import annotations

import argparse
import sys

from compare.store import schema_markdown


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schema", help="the columns of the results table (Markdown, as in docs/results.md)")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    sys.stdout.write(schema_markdown())
    return 0
