"""Run suites (`scenarios/suites/*.toml`): which scenarios and cells, which engines with what settings,
how many replications, the interval level, the run seed, the per-fit timeout and the fail-safe.

Validated on load so a bad suite fails before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compare.catalogue import load_scenario, suite_path
from compare.cluster import ClusterSpec, parse_cluster
from compare.errors import InputError
from compare.settings import Settings
from compare.spec import Scenario
from compare.validate import check_keys as _keys
from compare.validate import fail as _fail
from compare.validate import read_toml

_TOP = {"name", "description", "seed", "reps", "level", "timeout", "failsafe", "scenario", "engine", "reference",
        "cluster"}


@dataclass(frozen=True)
class EngineSpec:
    name: str  # the registered engine
    settings: Settings  # the engine's own typed, frozen settings class (level included)
    only: tuple[str, ...] = ()  # scenarios ("seed_slopes") or cells ("seed_slopes:0") it runs on; empty = all
    max_reps: int | None = None  # run only on replications 0..max_reps-1 (costly engines in big suites)
    label: str = ""  # what results, tables and the regression compare call it (default: the name)

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.name)

    def runs_on(self, scenario: str, rep: int = 0, cell: int | None = None) -> bool:
        """Whether the engine fits this replication; with `cell` None, whether it fits any cell of `scenario`."""
        if self.max_reps is not None and rep >= self.max_reps:
            return False
        if not self.only or scenario in self.only:
            return True
        cells = [o.partition(":")[2] for o in self.only if o.partition(":")[0] == scenario and ":" in o]
        return bool(cells) and (cell is None or str(cell) in cells)


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
    cluster: ClusterSpec = field(default_factory=ClusterSpec)  # batch-cluster settings (compare.cluster)


MAX_SEED = 2**63 - 1  # seeds are stored as int64
MAX_TASKS = 1_000_000  # (cell, replication) tasks of one run: the harness holds them all in memory


class _Problems:
    """Every problem of a suite, collected so that one run of `hbench run` names them all (checkmate-style)."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def attempt(self, func, *args, **kwargs):
        """func(*args) or, when it raises InputError, None with its message kept."""
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            self.found.append(str(exc))
            return None

    def raise_any(self) -> None:
        if len(self.found) == 1:
            raise InputError(self.found[0])
        if self.found:
            raise InputError(f"{len(self.found)} problems: " + "; ".join(self.found))


def _int(value: Any, where: str, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        span = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        raise _fail(where, f"{value!r} must be a whole number {span}")
    return value


def _names(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(where, f"{value!r}: expected a list of scenario names or scenario:cell, "
                    f"e.g. [\"seed_slopes\", \"funding_like:0\"]")
    return tuple(value)


def _engine(i: int, e: Any, level: float, scenarios: dict[str, tuple[int, ...]] | None) -> EngineSpec:
    from compare.estimators import engine_class, engine_names

    e = _keys(e, {"name", "label", "settings", "only", "max_reps"}, f"engine[{i}]")
    name = e.get("name")
    if name not in engine_names():
        raise _fail(f"engine[{i}].name", f"unknown engine {name!r} (known: {', '.join(engine_names())})")
    label = e.get("label", name)
    if not isinstance(label, str) or not label.strip() or "/" in label:
        raise _fail(f"engine[{i}].label", f"{label!r}: expected a short name without '/'")
    table = e.get("settings", {})
    table = _keys(table, set(table) if isinstance(table, dict) else set(), f"engine[{i}].settings")
    settings = engine_class(name).configured(table, f"engine[{i}].settings", level=level).settings
    max_reps = _int(e["max_reps"], f"engine[{i}].max_reps", 1) if "max_reps" in e else None
    only = _names(e["only"], f"engine[{i}].only") if "only" in e else ()
    unknown = [n for n in only if scenarios is not None and not _in_suite(n, scenarios)]
    if unknown:
        raise _fail(f"engine[{i}].only", f"{unknown[0]!r} is not a scenario (or scenario:cell) of this suite "
                    f"({', '.join(sorted(scenarios or ()))})")
    return EngineSpec(name, settings, only, max_reps, label)


def _in_suite(entry: str, scenarios: dict[str, tuple[int, ...]]) -> bool:
    """"name" names a scenario of the suite; "name:K" one of the cells the suite runs of it."""
    name, colon, cell = entry.partition(":")
    return name in scenarios and (not colon or (cell.isdigit() and int(cell) in scenarios[name]))


def _engines(raw: Any, level: float, scenarios: dict[str, tuple[int, ...]] | None, problems: _Problems) -> tuple[EngineSpec, ...]:
    if not isinstance(raw, list) or not raw:
        problems.found.append(str(_fail("engine", "a suite needs at least one [[engine]]")))
        return ()
    out = [problems.attempt(_engine, i, e, level, scenarios) for i, e in enumerate(raw)]
    labels = [e.label for e in out if e is not None]
    twice = sorted({x for x in labels if labels.count(x) > 1})
    if twice:
        problems.found.append(str(_fail("engine", f"{twice[0]!r} is listed twice: give each a `label`")))
    return tuple(e for e in out if e is not None)


def _cells(value: Any, where: str, scenario: Scenario) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise _fail(where, f"{value!r}: expected a non-empty list of cell indices")
    for c in value:
        if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < scenario.n_cells:
            raise _fail(where, f"{c!r} is not a cell of {scenario.name} (0..{scenario.n_cells - 1})")
    if len(set(value)) != len(value):
        raise _fail(where, f"{value!r} lists a cell twice")
    return tuple(value)


def _scenario(i: int, s: Any, default_reps: int) -> ScenarioSpec:
    s = _keys(s, {"name", "cells", "reps"}, f"scenario[{i}]")
    if not isinstance(s.get("name"), str):
        raise _fail(f"scenario[{i}].name", f"{s.get('name')!r}: needs a scenario name")
    scenario = load_scenario(s["name"])
    cells = _cells(s.get("cells", list(range(scenario.n_cells))), f"scenario[{i}].cells", scenario)
    reps = _int(s.get("reps", default_reps), f"scenario[{i}].reps", 1)
    return ScenarioSpec(scenario, cells, reps)


def _scenarios(raw: Any, default_reps: int, problems: _Problems) -> tuple[ScenarioSpec, ...]:
    if not isinstance(raw, list) or not raw:
        problems.found.append(str(_fail("scenario", "a suite needs at least one [[scenario]]")))
        return ()
    out = [problems.attempt(_scenario, i, s, default_reps) for i, s in enumerate(raw)]
    names = [s.scenario.name for s in out if s is not None]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        problems.found.append(str(_fail("scenario", f"{twice[0]!r} is listed twice: list its cells in one entry")))
    return tuple(s for s in out if s is not None)


def _check_priors(engines: tuple[EngineSpec, ...], scenarios: tuple[ScenarioSpec, ...], problems: _Problems) -> None:
    """Every cell a sampler takes its priors from must state them in a form both samplers take: refused now,
    in one line, rather than failing every fit of the run."""
    import numpy as np

    from compare.priors import for_cell
    from compare.simulate import simulate

    for e in engines:
        if not hasattr(e.settings, "priors") or isinstance(e.settings.priors, tuple):
            continue
        for spec in scenarios:
            for c in spec.cells:
                if not e.runs_on(spec.scenario.name, cell=c):
                    continue
                cell = spec.scenario.cell(c)
                design = simulate(cell, np.random.default_rng(0), np.random.default_rng(1)).data.design
                found = problems.attempt(for_cell, e.settings.priors, cell, design)
                if found is None:
                    problems.found[-1] = f"engine {e.label} on {cell.scenario} cell {c}: {problems.found[-1]}"


def _level(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise _fail("level", f"{value!r} must be a number between 0 and 1")
    return float(value)


def _positive(value: Any, where: str, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value or (hi and value > hi):
        raise _fail(where, f"{value!r} must be a positive number" + (f" up to {hi:g}" if hi else ""))
    return float(value)


def _name(value: Any) -> str:
    if (not isinstance(value, str) or not value.strip() or "/" in value or "\0" in value or value.startswith(".")
            or len(value.encode()) > 100):
        raise _fail("name", f"{value!r}: expected a name of up to 100 bytes, without '/' or a leading '.' "
                    "(it starts the run id)")
    return value


def parse_suite(raw: dict[str, Any], path: Path | None = None, *, reps: int | None = None,
                seed: int | None = None) -> Suite:
    """A Suite from a parsed TOML table; `reps`/`seed` override the file (the CLI's --reps/--seed).
    Every problem is found before anything runs, and all are reported in one line."""
    problems = _Problems()
    problems.attempt(_keys, raw, _TOP, "")
    n_reps = problems.attempt(_int, reps if reps is not None else raw.get("reps", 10), "--reps" if reps else "reps", 1)
    run_seed = problems.attempt(_int, seed if seed is not None else raw.get("seed", 20221),
                                "--seed" if seed is not None else "seed", 0, MAX_SEED)
    level = problems.attempt(_level, raw.get("level", 0.95))
    timeout = problems.attempt(_positive, raw.get("timeout", 900), "timeout")
    fs = problems.attempt(_keys, raw.get("failsafe", {}), {"max_failure_rate", "min_fits"}, "failsafe") or {}
    rate = problems.attempt(_positive, fs.get("max_failure_rate", 0.5), "failsafe.max_failure_rate", 1.0)
    min_fits = problems.attempt(_int, fs.get("min_fits", 5), "failsafe.min_fits", 1)
    scenarios = _scenarios(raw.get("scenario", []), n_reps or 1, problems)
    if reps is not None:
        scenarios = tuple(ScenarioSpec(s.scenario, s.cells, reps) for s in scenarios)
    n_tasks = sum(len(s.cells) * s.reps for s in scenarios)
    if n_tasks > MAX_TASKS:
        problems.found.append(str(_fail("--reps" if reps else "reps",
                                        f"{n_tasks:,} tasks (cells x replications): at most {MAX_TASKS:,} in one run")))
    listed = raw.get("scenario")
    names = ({s.scenario.name: s.cells for s in scenarios} if isinstance(listed, list) and len(scenarios) == len(listed)
             else None)
    engines = _engines(raw.get("engine", []), level or 0.95, names, problems)
    _check_priors(engines, scenarios, problems)
    reference = raw.get("reference")
    if reference is not None and reference not in [e.label for e in engines]:
        problems.found.append(str(_fail("reference", f"{reference!r} is not one of the suite's engines")))
    name = problems.attempt(_name, raw.get("name", path.stem if path else "suite"))
    cluster = problems.attempt(parse_cluster, raw.get("cluster", {}))
    problems.raise_any()
    return Suite(name, path, run_seed, n_reps, level, timeout, rate, min_fits, scenarios, engines, reference, raw,
                 cluster)


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
