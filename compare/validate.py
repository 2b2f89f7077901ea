"""Shared checks for the TOML files users write (scenario specs, suites): one-line errors that name
the field and the value."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from compare.errors import InputError


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; a syntax error is one line naming the file."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: not valid TOML: not UTF-8 text (byte {exc.object[exc.start]:#04x} at position {exc.start})"
        ) from None


def fail(where: str, msg: str) -> InputError:
    return InputError(f"field '{where}': {msg}")


def check_keys(table: Any, allowed: set[str], where: str) -> dict[str, Any]:
    """`table` must be a table whose keys are all in `allowed` (unknown keys are errors, not ignored)."""
    if not isinstance(table, dict):
        raise fail(where, f"expected a table, got {table!r}")
    for key in table:
        if key not in allowed:
            raise fail(
                f"{where}.{key}" if where else key, f"unknown key (expected one of {', '.join(sorted(allowed))})"
            )
    return table
