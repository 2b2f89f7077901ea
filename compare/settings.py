"""Typed, frozen tables of settings: engine settings and the keys of a suite, checked where a suite or the CLI
reads them (scikit-learn's set_params raises on an unknown name; so do we, and on a wrong type, before
anything runs).

A table is a frozen dataclass derived from `Table`, one `setting(default, doc, ...)` per field: its type (the
annotation), default, doc, bounds and value check are declared once, and the parser, the error messages and
the listings (`hbench engines`, `hbench suite-keys`) are generated from that declaration. Engines derive
their settings from `Settings`. Suites (TOML) and `hbench fit` hand in plain mappings; `collect` checks every
key and returns every problem (a suite names them all in one line), `parse` raises them as one InputError
line: `reml = "false"` is an error, not REML (what `bool("false")` would give), and a typo such as `rmel` is
an error, not silently ignored. Fields may be tables themselves, or lists of tables (a suite's
`[[scenario]]`). Cross-field and value checks live in each class's `problems()`.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal, TypeVar

from compare.errors import InputError

DEFAULT_LEVEL = 0.95  # the level of every central interval unless a suite's `level` or `hbench fit --level` says
INTERNAL = "internal"  # metadata key: set by the harness (e.g. level), never by an engine's settings table

T = TypeVar("T", bound="Table")


def setting(
    default: Any,
    doc: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    check: Callable[[Any], str | None] | None = None,
    required: bool | str = False,
    internal: bool = False,
) -> Any:
    """A field with its one-line doc; optional bounds for numbers (inclusive unless `lo_open`/`hi_open`), a value
    `check` (returns what is wrong, or None), `required` (the key must be given; a string says so in the
    user's terms)."""
    meta = {
        "doc": doc,
        "lo": lo,
        "hi": hi,
        "lo_open": lo_open,
        "hi_open": hi_open,
        "check": check,
        "required": required,
        INTERNAL: internal,
    }
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class Table:
    """A typed table of keys. `KIND` names its keys in messages ("unknown key")."""

    KIND: ClassVar[str] = "key"

    def problems(self) -> list[str]:
        """Value checks across fields; one message per problem. Subclasses extend the list."""
        return []

    def public(self) -> dict[str, Any]:
        """The user-settable fields and values (what a manifest records and `hbench engines` shows)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self) if not f.metadata.get(INTERNAL)}


@dataclasses.dataclass(frozen=True)
class Settings(Table):
    """What every engine takes. `level` comes from the suite (`level = ...`) or `hbench fit --level`, once for
    every engine, so that every engine's coverage has the same nominal value."""

    KIND: ClassVar[str] = "setting"
    level: float = setting(DEFAULT_LEVEL, "level of the central intervals", lo=0.0, hi=1.0, internal=True)

    def problems(self) -> list[str]:
        return [] if 0 < self.level < 1 else [f"level {self.level!r} must be between 0 and 1"]


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong with a table: where (a dotted key path, "" for the table itself) and what."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}" if self.where else self.what


class _Bad(Exception):
    """Raised inside the parser; `problems` are collected by `collect`, `partial` is what parsed."""

    def __init__(self, problems: list[Problem], partial: Any = None) -> None:
        super().__init__(problems)
        self.problems, self.partial = problems, partial


def _plain(value: Any) -> Any:
    if isinstance(value, Table):
        return value.public()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def one_line(problems: list[Problem] | list[str]) -> str:
    """Every problem in one line: "N problems: a; b" (or the one)."""
    texts = [str(p) for p in problems]
    return texts[0] if len(texts) == 1 else f"{len(texts)} problems: " + "; ".join(texts)


def collect(cls: type[T], raw: Any, where: str, **internal: Any) -> tuple[T, list[Problem]]:
    """An instance of `cls` from a mapping and every problem found: each key and type checked, bounds and value
    checks, then (when the fields are sound) `problems()`. A field with a problem keeps its default, so callers
    can go on checking the rest; the instance is only meant to be used when the list is empty."""
    if not isinstance(raw, Mapping):
        return cls(**internal), [Problem(where, f"expected a table, got {raw!r}")]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    found: list[Problem] = []
    for key, value in raw.items():
        f = fields.get(key)
        if f is None or f.metadata.get(INTERNAL):
            found.append(Problem(_at(where, str(key)), _unknown(cls, fields, str(key))))
            continue
        try:
            values[key] = _field(value, f, hints[key], _at(where, key))
        except _Bad as exc:
            found += exc.problems
            if exc.partial is not None:
                values[key] = exc.partial
    for name, f in fields.items():
        if f.metadata.get("required") and name not in raw:
            needed = f.metadata["required"]
            found.append(Problem(_at(where, name), needed if isinstance(needed, str) else "missing (required)"))
    values.update(internal)
    instance = cls(**values)
    if not found:
        found = [Problem(where, issue) for issue in instance.problems()]
    return instance, found


def parse(cls: type[T], raw: Mapping[str, Any] | None, where: str, **internal: Any) -> T:
    """An instance of `cls` from a mapping, every key and type checked; `internal` fields (level) come apart.
    Every problem is raised together, as one InputError line."""
    instance, found = collect(cls, dict(raw or {}), where, **internal)
    if found:
        raise InputError(one_line(found))
    return instance


def check_value(cls: type[Table], name: str, value: Any, where: str) -> tuple[Any, list[Problem]]:
    """One field's value checked as `collect` would (a command-line override of a key): (value, problems)."""
    f = {g.name: g for g in dataclasses.fields(cls)}[name]
    try:
        return _field(value, f, typing.get_type_hints(cls)[name], where), []
    except _Bad as exc:
        return None, exc.problems


def _unknown(cls: type[Table], fields: dict[str, dataclasses.Field], key: str) -> str:
    known = ", ".join(n for n, g in fields.items() if not g.metadata.get(INTERNAL)) or "none"
    hint = (
        " (the interval level is set once for every engine: `level` at the top of a suite, or `hbench fit --level`)"
        if key == "level" and issubclass(cls, Settings)
        else ""
    )
    return f"unknown {cls.KIND}{hint} (expected one of {known})"


def _field(value: Any, f: dataclasses.Field, hint: Any, where: str) -> Any:
    """One field's value: coerced to its type, within its bounds, past its check."""
    given, value = value, _coerce(value, hint, where)
    _check_bounds(value, f, where, given)
    check = f.metadata.get("check")
    issue = check(value) if check is not None and value is not None else None
    if issue:
        raise _Bad([Problem(where, issue)])
    return value


def bounds_text(f: dataclasses.Field) -> str:
    """A field's bounds as an interval, "[1, inf)", "(0, 1)"; "" when it has none."""
    lo, hi = f.metadata.get("lo"), f.metadata.get("hi")
    if lo is None and hi is None:
        return ""
    num = lambda v: str(v) if isinstance(v, int) else format(v, "g")  # noqa: E731 - seeds stay exact
    left = "(-inf" if lo is None else ("(" if f.metadata.get("lo_open") else "[") + num(lo)
    right = "inf)" if hi is None else num(hi) + (")" if f.metadata.get("hi_open") else "]")
    return f"{left}, {right}"


def _check_bounds(value: Any, f: dataclasses.Field, where: str, given: Any) -> None:
    """`value` within the field's bounds; the message shows what the user wrote (`given`, 0 rather than 0.0)."""
    lo, hi = f.metadata.get("lo"), f.metadata.get("hi")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and (lo is not None or hi is not None):
        above = lo is None or (value > lo if f.metadata.get("lo_open") else value >= lo)
        below = hi is None or (value < hi if f.metadata.get("hi_open") else value <= hi)
        if not (above and below):  # NaN is neither, so it is refused
            raise _Bad([Problem(where, f"{given!r} is outside {bounds_text(f)}")])


def _fail(where: str, what: str) -> _Bad:
    return _Bad([Problem(where, what)])


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """`value` as the annotated type, or _Bad. Lists (TOML arrays) become tuples; tables become their class."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, option, where)
            except _Bad as exc:
                errors.append(exc)
        raise errors[0]
    if origin is Literal:
        if value not in args:
            raise _fail(where, f"{value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin is tuple:
        return _sequence(value, args[0], where)
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise _fail(where, f"expected a table, got {value!r}")
        return dict(value)
    if isinstance(hint, type) and issubclass(hint, Table):
        instance, found = collect(hint, value, where)
        if found:
            raise _Bad(found)
        return instance
    return _scalar(value, hint, where)


def _sequence(value: Any, item: Any, where: str) -> tuple:
    """A list as a tuple of `item`s."""
    tables = isinstance(item, type) and issubclass(item, Table)
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise _fail(
            where, f"{value!r} must be a list" + (f" of tables ([[{where.rpartition('.')[2]}]])" if tables else "")
        )
    good, found = [], []
    for i, v in enumerate(value):
        try:
            good.append(_coerce(v, item, f"{where}[{i}]"))
        except _Bad as exc:
            found += exc.problems
            good.append(None)
    if found:  # the sound tables of a list are kept (None in place of the others), so callers check them too
        raise _Bad(found, partial=tuple(good) if tables else None)
    return tuple(good)


def _scalar(value: Any, hint: type, where: str) -> Any:
    if hint is bool:
        if not isinstance(value, bool):
            raise _fail(where, f"{value!r} must be true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(where, f"{value!r} must be a whole number")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(where, f"{value!r} must be a number")
        try:
            return float(value)
        except OverflowError:  # an integer beyond any float (TOML integers are not bounded by tomllib)
            raise _fail(where, f"{value!r} is too large") from None
    if hint is str:
        if not isinstance(value, str):
            raise _fail(where, f"{value!r} must be a string")
        return value
    raise TypeError(f"settings type {hint!r} is not supported")  # a programming error in an engine


def describe(cls: type[Table]) -> list[dict[str, str]]:
    """One row per user-settable field: name, type, default, range, doc (for `hbench engines`)."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        if f.metadata.get(INTERNAL):
            continue
        rows.append(
            {
                "name": f.name,
                "type": _type_name(hints[f.name]),
                "default": _default_text(f),
                "range": bounds_text(f),
                "doc": f.metadata.get("doc", ""),
            }
        )
    return rows


def _default_text(f: dataclasses.Field) -> str:
    """The default as a suite writes it (JSON is TOML for these values)."""
    if f.metadata.get("required"):
        return "(required)"
    default = f.default
    if default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    if default is None:
        return "(unset)"
    return json.dumps(_plain(default))


def tables(cls: type[Table], prefix: str = "") -> list[tuple[str, type[Table]]]:
    """`cls` and every table nested in it, depth first, each with its TOML header ("", "failsafe",
    "[[scenario]]"): what `hbench suite-keys` lists."""
    out = [(prefix, cls)]
    for name, hint in typing.get_type_hints(cls).items():
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if isinstance(hint, type) and issubclass(hint, Table):
            out += tables(hint, f"{prefix}.{name}" if prefix else name)
        elif origin is tuple and isinstance(args[0], type) and issubclass(args[0], Table):
            out += tables(args[0], f"[[{prefix + '.' if prefix else ''}{name}]]")
    return out


def _type_name(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is Literal:
        return " | ".join(map(repr, args))
    if origin is tuple:
        return f"list[{_type_name(args[0])}]"
    if origin is dict or hint is dict:
        return "table"
    if isinstance(hint, type) and issubclass(hint, Table):
        return "table"
    return "none" if hint is type(None) else getattr(hint, "__name__", str(hint))
