"""Typed, frozen engine settings, checked where a suite or the CLI builds an engine (scikit-learn's set_params
raises on an unknown name; so do we, and on a wrong type, before anything runs).

Each engine declares a frozen dataclass derived from `Settings`, one `setting(default, doc)` per field. Suites
(TOML) and `hbench fit` hand in plain mappings; `parse` turns one into an instance or raises one InputError
line naming the key: `reml = "false"` is an error, not REML (what `bool("false")` would give), and a typo
such as `rmel` is an error, not silently ignored. Cross-field and value checks live in each class's
`problems()`.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

from compare.errors import InputError

INTERNAL = "internal"  # metadata key: set by the harness (e.g. level), never by an engine's settings table


def setting(default: Any, doc: str, *, lo: float | None = None, hi: float | None = None,
            internal: bool = False) -> Any:
    """A settings field with its one-line doc and optional inclusive bounds for numbers."""
    return dataclasses.field(default=default, metadata={"doc": doc, "lo": lo, "hi": hi, INTERNAL: internal})


@dataclasses.dataclass(frozen=True)
class Settings:
    """What every engine takes. `level` comes from the suite (`level = ...`) or `hbench fit --level`, once for
    every engine, so that every engine's coverage has the same nominal value."""

    level: float = setting(0.95, "level of the central intervals", lo=0.0, hi=1.0, internal=True)

    def problems(self) -> list[str]:
        """Value checks beyond types; one message per problem. Subclasses extend the list."""
        return [] if 0 < self.level < 1 else [f"level {self.level!r} must be between 0 and 1"]

    def public(self) -> dict[str, Any]:
        """The user-settable fields and values (what a manifest records and `hbench engines` shows)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self) if not f.metadata.get(INTERNAL)}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def parse(cls: type[Settings], raw: Mapping[str, Any] | None, where: str, **internal: Any) -> Settings:
    """An instance of `cls` from a mapping, every key and type checked; `internal` fields (level) come apart."""
    raw = dict(raw or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        f = fields.get(key)
        if f is None or f.metadata.get(INTERNAL):
            known = ", ".join(n for n, g in fields.items() if not g.metadata.get(INTERNAL)) or "none"
            hint = " (the interval level is set once for every engine: `level` at the top of a suite, " \
                   "or `hbench fit --level`)" if key == "level" else ""
            raise InputError(f"{where}.{key}: unknown setting{hint} (settings: {known})")
        values[key] = _coerce(value, hints[key], f"{where}.{key}")
        _check_bounds(values[key], f, f"{where}.{key}")
    values.update(internal)
    instance = cls(**values)
    issues = instance.problems()
    if issues:
        raise InputError(f"{where}: {issues[0]}")
    return instance


def _check_bounds(value: Any, f: dataclasses.Field, where: str) -> None:
    lo, hi = f.metadata.get("lo"), f.metadata.get("hi")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            span = f"{'-inf' if lo is None else format(lo, 'g')}..{'inf' if hi is None else format(hi, 'g')}"
            raise InputError(f"{where}: {value!r} is outside {span}")


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """`value` as the annotated type, or InputError. Lists (TOML arrays) become tuples."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _coerce(value, option, where)
            except InputError as exc:
                errors.append(str(exc))
        raise InputError(errors[0])
    if origin is Literal:
        if value not in args:
            raise InputError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise InputError(f"{where}: {value!r} must be a list")
        return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
    return _scalar(value, hint, where)


def _scalar(value: Any, hint: type, where: str) -> Any:
    if hint is bool:
        if not isinstance(value, bool):
            raise InputError(f"{where}: {value!r} must be true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{where}: {value!r} must be a whole number")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{where}: {value!r} must be a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise InputError(f"{where}: {value!r} must be a string")
        return value
    raise TypeError(f"settings type {hint!r} is not supported")  # a programming error in an engine


def describe(cls: type[Settings]) -> list[dict[str, str]]:
    """One row per user-settable field: name, type, default, doc (for `hbench engines`)."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        if f.metadata.get(INTERNAL):
            continue
        default = "(unset)" if f.default is None else json.dumps(_plain(f.default))  # as a suite writes it
        rows.append({"name": f.name, "type": _type_name(hints[f.name]), "default": default,
                     "doc": f.metadata.get("doc", "")})
    return rows


def _type_name(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is Literal:
        return " | ".join(map(repr, args))
    if origin is tuple:
        return f"list[{_type_name(args[0])}]"
    return "none" if hint is type(None) else getattr(hint, "__name__", str(hint))
