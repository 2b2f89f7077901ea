"""`hbench`: the command line. Each subcommand lives in its own module under compare/commands/
and registers itself with `register(subparsers)`; this file only dispatches and turns bad input
into one line on stderr with exit status 2. Nothing else reaches the user as a traceback either: an
unexpected error is one line naming a file that holds the traceback (exit 1), Ctrl-C is exit 130."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import tempfile
import traceback
import unicodedata

from compare import catalogue, commands, quiet
from compare.errors import InputError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hbench",
        description="Benchmark frequentist and Bayesian estimators of multilevel models on simulated data.",
    )
    parser.add_argument(
        "--scenarios",
        metavar="DIR",
        action="append",
        default=[],
        help="a folder of your own scenario specs (NAME.toml) and suites (suites/NAME.toml), "
        f"searched before the shipped ones; repeatable (also: {catalogue.ENV})",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def one_line(text: str) -> str:
    """A message as one line: control and line-break characters a user's key or value brought in are escaped."""
    return "".join(repr(ch)[1:-1] if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in text)


def main(argv: list[str] | None = None) -> int:
    quiet.install()  # before any engine imports its libraries (workers do it in tasks.prepare_worker)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    try:
        for folder in reversed(args.scenarios):
            catalogue.add_folder(folder)
        return int(args.handler(args) or 0)
    except InputError as exc:
        print(f"hbench: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hbench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `hbench scenarios | head`: the reader left early, which is not an error of ours
        try:  # nothing more reaches the closed pipe, not even the interpreter's flush at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141  # what a shell reports for a process ended by SIGPIPE
    except Exception as exc:  # noqa: BLE001 - a bug must still reach the user as one line, with its details kept
        with tempfile.NamedTemporaryFile("w", prefix="hbench-error-", suffix=".txt", delete=False) as fh:
            traceback.print_exc(file=fh)
        print(
            f"hbench: internal error: {type(exc).__name__}: {one_line(str(exc))} "
            f"(traceback in {fh.name}; please report it)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
