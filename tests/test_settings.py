"""compare.settings: the one typed parser behind engine settings and suite keys, and the one default level."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from compare.errors import InputError
from compare.settings import DEFAULT_LEVEL, Problem, Settings, Table, collect, describe, parse, setting, tables

ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class Inner(Table):
    rate: float = setting(0.5, "a rate", lo=0.0, hi=1.0, lo_open=True)
    name: str = setting("", "a name", required=True, check=lambda v: "must not be blank" if not v.strip() else None)


@dataclasses.dataclass(frozen=True)
class Outer(Table):
    count: int = setting(3, "a count", lo=1)
    inner: Inner = setting(Inner(name="x"), "a table")
    items: tuple[Inner, ...] = setting((), "tables")
    extra: dict = setting({}, "free-form table")


def test_every_problem_of_nested_tables_is_collected_with_its_path():
    raw = {"count": 0, "inner": {"rate": 0, "name": " "}, "items": [{"name": "a"}, {"rate": "x"}, {"name": "b"}],
           "extra": 5, "typo": 1}
    instance, found = collect(Outer, raw, "")
    assert found == [Problem("count", "0 is outside [1, inf)"), Problem("inner.rate", "0 is outside (0, 1]"),
                     Problem("inner.name", "must not be blank"),
                     Problem("items[1].rate", "'x' must be a number"), Problem("items[1].name", "missing (required)"),
                     Problem("extra", "expected a table, got 5"),
                     Problem("typo", "unknown key (expected one of count, inner, items, extra)")]
    # fields with a problem keep their default; a list of tables keeps its sound entries (None for the others)
    assert instance.count == 3 and [i and i.name for i in instance.items] == ["a", None, "b"]


def test_nan_and_numbers_beyond_floats_are_refused():
    for value, text in ((float("nan"), "nan is outside (0, 1]"), (10**400, "is too large")):
        _, found = collect(Inner, {"name": "n", "rate": value}, "t")
        assert len(found) == 1 and text in found[0].what and found[0].where == "t.rate"


def test_parse_raises_every_problem_in_one_line():
    with pytest.raises(InputError) as exc:
        parse(Outer, {"count": "2", "inner": {"name": "y", "rate": 2}}, "where")
    assert str(exc.value) == ("2 problems: where.count: '2' must be a whole number; "
                              "where.inner.rate: 2 is outside (0, 1]")


def test_engine_settings_refuse_level_with_a_hint():
    with pytest.raises(InputError, match="the interval level is set once for every engine"):
        parse(Settings, {"level": 0.9}, "engine 'x'")
    assert parse(Settings, {}, "e", level=0.8).level == 0.8


def test_describe_and_tables_come_from_the_declaration():
    rows = {r["name"]: r for r in describe(Inner)}
    assert rows["rate"] == {"name": "rate", "type": "float", "default": "0.5", "range": "(0, 1]", "doc": "a rate"}
    assert rows["name"]["default"] == "(required)"
    assert [header for header, _ in tables(Outer)] == ["", "inner", "[[items]]"]
    assert {r["name"]: r["type"] for r in describe(Outer)} == {"count": "int", "inner": "table",
                                                              "items": "list[table]", "extra": "table"}


def test_the_interval_level_is_written_once():
    """The literal 0.95 appears in compare/ only where DEFAULT_LEVEL is defined, as the SBC band's own level and
    as adapt_delta defaults (not an interval level); every interval-level default refers to DEFAULT_LEVEL."""
    allowed = []
    for path in sorted((ROOT / "compare").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            targets = ([t.id for t in node.targets if isinstance(t, ast.Name)] if isinstance(node, ast.Assign) else
                       [node.target.id] if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                       else [])
            if targets and any(isinstance(c, ast.Constant) and c.value == 0.95 for c in ast.walk(node)):
                allowed.append((path.name, targets[0]))
                for c in ast.walk(node):
                    c.checked = True  # type: ignore[attr-defined]
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value == 0.95 and not getattr(node, "checked", False):
                raise AssertionError(f"{path.relative_to(ROOT)}:{node.lineno}: the literal 0.95; use DEFAULT_LEVEL")
    assert sorted(allowed) == [("_bayes.py", "adapt_delta"), ("_rbayes.py", "adapt_delta"),
                               ("metrics.py", "SBC_LEVEL"), ("settings.py", "DEFAULT_LEVEL")]
    import inspect

    from compare import summary
    from compare.estimators import _bayes
    from compare.estimators import _frequentist as fq
    from compare.report.plots import coverage, zipplot
    from compare.suite import SuiteKeys

    defaults = [inspect.signature(summary.summarise).parameters["level"].default,
                inspect.signature(_bayes.summary_rows).parameters["level"].default,
                inspect.signature(coverage.plot).parameters["nominal"].default,
                inspect.signature(zipplot.plot).parameters["nominal"].default,
                fq.LEVEL, Settings().level, SuiteKeys().level]
    assert all(d is DEFAULT_LEVEL for d in defaults)  # the same object, not an equal literal
