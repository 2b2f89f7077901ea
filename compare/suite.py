"""Run suites (`scenarios/suites/*.toml`): which scenarios and cells, which engines with what settings,
how many replications, the interval level, the run seed, the per-fit timeout and the fail-safe.

Validated on load so a bad suite fails before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compare.catalogue import load_scenario, suite_path
from compare.errors import InputError
from compare.settings import Settings
from compare.spec import Scenario
from compare.validate import check_keys as _keys
from compare.validate import fail as _fail
from compare.validate import read_toml

_TOP = {"name", "description", "seed", "reps", "level", "timeout", "failsafe", "scenario", "engine", "reference"}


@dataclass(frozen=True)
class EngineSpec:
    name: str
    settings: Settings  # the engine's own typed, frozen settings class (level included)
    only: tuple[str, ...] = ()  # scenario names this engine runs on; empty = all
    max_reps: int | None = None  # run only on replications 0..max_reps-1 (costly engines in big suites)

    def runs_on(self, scenario: str, rep: int = 0) -> bool:
        return (not self.only or scenario in self.only) and (self.max_reps is None or rep < self.max_reps)


@dataclass(frozen=True)
class ScenarioSpec:
    scenario: Scenario
    cells: tuple[int, ...]
    reps: int


@dataclass(frozen=True)
class Suite:
    name: str
    path: Path | None
    seed: int
    reps: int
    level: float
    timeout: float
    max_failure_rate: float
    min_fits: int
    scenarios: tuple[ScenarioSpec, ...]
    engines: tuple[EngineSpec, ...]
    reference: str | None  # engine for relative precision
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def _int(value: Any, where: str, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise _fail(where, f"{value!r} must be a whole number >= {lo}")
    return value


def _engines(raw: list[Any], level: float) -> tuple[EngineSpec, ...]:
    from compare.estimators import engine_class, engine_names

    known = engine_names()
    out = []
    for i, e in enumerate(raw):
        e = _keys(e, {"name", "settings", "only", "max_reps"}, f"engine[{i}]")
        name = e.get("name")
        if name not in known:
            raise _fail(f"engine[{i}].name", f"unknown engine {name!r} (known: {', '.join(known)})")
        table = _keys(e.get("settings", {}), set(e.get("settings", {}) or {}), f"engine[{i}].settings")
        settings = engine_class(name).configured(table, f"engine[{i}].settings", level=level).settings
        max_reps = _int(e["max_reps"], f"engine[{i}].max_reps", 1) if "max_reps" in e else None
        out.append(EngineSpec(name, settings, tuple(e.get("only", ())), max_reps))
    if not out:
        raise _fail("engine", "a suite needs at least one [[engine]]")
    names = [e.name for e in out]
    if len(set(names)) != len(names):
        raise _fail("engine", f"an engine is listed twice: {names}")
    return tuple(out)


def _scenarios(raw: list[Any], default_reps: int) -> tuple[ScenarioSpec, ...]:
    out = []
    for i, s in enumerate(raw):
        s = _keys(s, {"name", "cells", "reps"}, f"scenario[{i}]")
        if "name" not in s:
            raise _fail(f"scenario[{i}]", "needs a name")
        scenario = load_scenario(s["name"])
        cells = s.get("cells", list(range(scenario.n_cells)))
        if not isinstance(cells, list) or not cells:
            raise _fail(f"scenario[{i}].cells", f"{cells!r}: expected a non-empty list of cell indices")
        for c in cells:
            if not isinstance(c, int) or not 0 <= c < scenario.n_cells:
                raise _fail(f"scenario[{i}].cells", f"{c!r} is not a cell of {scenario.name} (0..{scenario.n_cells - 1})")
        reps = _int(s.get("reps", default_reps), f"scenario[{i}].reps", 1)
        out.append(ScenarioSpec(scenario, tuple(cells), reps))
    if not out:
        raise _fail("scenario", "a suite needs at least one [[scenario]]")
    return tuple(out)


def parse_suite(raw: dict[str, Any], path: Path | None = None, *, reps: int | None = None,
                seed: int | None = None) -> Suite:
    """A Suite from a parsed TOML table; `reps`/`seed` override the file (the CLI's --reps/--seed)."""
    _keys(raw, _TOP, "")
    n_reps = _int(reps if reps is not None else raw.get("reps", 10), "reps", 1)
    run_seed = _int(seed if seed is not None else raw.get("seed", 20221), "seed", 0)
    level = raw.get("level", 0.95)
    if not isinstance(level, float) or not 0 < level < 1:
        raise _fail("level", f"{level!r} must be a number between 0 and 1")
    timeout = raw.get("timeout", 900)
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
        raise _fail("timeout", f"{timeout!r} must be a positive number of seconds")
    fs = _keys(raw.get("failsafe", {}), {"max_failure_rate", "min_fits"}, "failsafe")
    rate = fs.get("max_failure_rate", 0.5)
    if not isinstance(rate, (int, float)) or not 0 < rate <= 1:
        raise _fail("failsafe.max_failure_rate", f"{rate!r} must be in (0, 1]")
    min_fits = _int(fs.get("min_fits", 5), "failsafe.min_fits", 1)
    scenarios = _scenarios(raw.get("scenario", []), n_reps)
    if reps is not None:
        scenarios = tuple(ScenarioSpec(s.scenario, s.cells, n_reps) for s in scenarios)
    engines = _engines(raw.get("engine", []), float(level))
    reference = raw.get("reference")
    if reference is not None and reference not in [e.name for e in engines]:
        raise _fail("reference", f"{reference!r} is not one of the suite's engines")
    name = raw.get("name", path.stem if path else "suite")
    return Suite(name, path, run_seed, n_reps, float(level), float(timeout), float(rate), min_fits,
                 scenarios, engines, reference, raw)


def load_suite(source: str | Path, *, reps: int | None = None, seed: int | None = None) -> Suite:
    """Load a suite by path, or by name from the scenario folders' suites/. InputError names file and field."""
    path = suite_path(source)
    raw = read_toml(path)
    if reps is not None and reps <= 0:
        raise InputError(f"--reps {reps}: must be at least 1")
    try:
        return parse_suite(raw, path, reps=reps, seed=seed)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
