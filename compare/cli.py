"""`hbench`: the command line. Each subcommand lives in its own module under compare/commands/
and registers itself with `register(subparsers)`; this file only dispatches and turns bad input
into one line on stderr with exit status 2."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from compare import commands
from compare.errors import InputError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hbench",
        description="Benchmark frequentist and Bayesian estimators of multilevel models on simulated data.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    try:
        return int(args.handler(args) or 0)
    except InputError as exc:
        print(f"hbench: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
