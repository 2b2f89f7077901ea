"""Run suites (`scenarios/suites/*.toml`): which scenarios and cells, which engines with what settings,
how many replications, the interval level, the run seed, the per-fit timeout and the fail-safe.

Every key a suite may hold is declared once, below, as a typed settings table (compare.settings: type,
default, bounds, doc), like the engines' settings; `hbench suite-keys` lists them from these classes.
Validated on load so a bad suite fails before anything is written, with every problem named in one line:
first the keys and their types, then what needs the catalogue (scenario names, their cells, engine names
and each engine's own settings, labels, `only`, `reference`, priors).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compare.catalogue import load_scenario, suite_path
from compare.cluster import ClusterSpec
from compare.errors import InputError
from compare.settings import DEFAULT_LEVEL, Problem, Settings, Table, check_value, collect, one_line, setting
from compare.spec import Scenario
from compare.validate import read_toml


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


def _run_name(value: str) -> str | None:
    if not value.strip() or "/" in value or "\0" in value or value.startswith(".") or len(value.encode()) > 100:
        return f"{value!r}: expected a name of up to 100 bytes, without '/' or a leading '.' (it starts the run id)"
    return None


def _label(value: str) -> str | None:
    return f"{value!r}: expected a short name without '/'" if not value.strip() or "/" in value else None


def _cells(value: tuple[int, ...]) -> str | None:
    if not value:
        return f"{list(value)!r}: expected a non-empty list of cell indices"
    return f"{list(value)!r} lists a cell twice" if len(set(value)) != len(value) else None


def _at_least_one(table: str):
    need = f"a suite needs at least one [[{table}]]"
    return need, (lambda value: None if value else need)


@dataclass(frozen=True)
class FailsafeKeys(Table):
    """`failsafe = { ... }`: when a run stops early (exit 1, results kept, resumable)."""

    max_failure_rate: float = setting(
        0.5, "stop the run when an engine's share of failed fits in one cell passes this", lo=0.0, hi=1.0, lo_open=True
    )
    min_fits: int = setting(5, "fits of an engine in a cell before its failure rate counts", lo=1)


@dataclass(frozen=True)
class ScenarioKeys(Table):
    """One `[[scenario]]`: a scenario, which of its cells, how many replications."""

    name: str = setting(
        "", "a scenario: a shipped spec or NAME.toml in a --scenarios folder (`hbench scenarios`)", required=True
    )
    cells: tuple[int, ...] | None = setting(None, "cells of its grid to run (unset: every cell)", check=_cells)
    reps: int | None = setting(None, "replications of each cell (unset: the suite's `reps`)", lo=1)


@dataclass(frozen=True)
class EngineKeys(Table):
    """One `[[engine]]`: a registered engine, its settings and where it runs."""

    name: str = setting("", "a registered engine (`hbench engines`)", required=True)
    label: str | None = setting(
        None,
        "what results, tables and the regression compare call it (unset: the name); "
        "give each a label to run one engine twice",
        check=_label,
    )
    settings: dict[str, Any] = setting({}, "the engine's own settings (`hbench engines` lists them); not `level`")
    only: tuple[str, ...] = setting(
        (), 'scenarios ("seed_slopes") or cells ("seed_slopes:0") of this suite it runs on (empty: all)'
    )
    max_reps: int | None = setting(None, "run only on replications 0..max_reps-1 (costly engines in big suites)", lo=1)


_NEED_SCENARIO, _SOME_SCENARIO = _at_least_one("scenario")
_NEED_ENGINE, _SOME_ENGINE = _at_least_one("engine")


@dataclass(frozen=True)
class SuiteKeys(Table):
    """The top level of a suite file."""

    name: str | None = setting(
        None, "the run's name, which starts its run id (unset: the suite file's name)", check=_run_name
    )
    description: str = setting("", "what the suite is for, in a line")
    seed: int = setting(
        20221, "run seed: every replication's seeds derive from it (`hbench run --seed`)", lo=0, hi=MAX_SEED
    )
    reps: int = setting(10, "replications of every cell unless its [[scenario]] says (`hbench run --reps`)", lo=1)
    level: float = setting(
        DEFAULT_LEVEL,
        "level of every engine's central intervals, and the nominal coverage",
        lo=0.0,
        hi=1.0,
        lo_open=True,
        hi_open=True,
    )
    timeout: float = setting(
        900.0, "seconds one fit may take; past it the fit is stopped and recorded as failed", lo=0.0, lo_open=True
    )
    failsafe: FailsafeKeys = setting(FailsafeKeys(), "when a run stops early")
    scenario: tuple[ScenarioKeys, ...] = setting(
        (), "the scenarios to run", required=_NEED_SCENARIO, check=_SOME_SCENARIO
    )
    engine: tuple[EngineKeys, ...] = setting((), "the engines to fit", required=_NEED_ENGINE, check=_SOME_ENGINE)
    reference: str | None = setting(
        None, 'the engine (label) for relative precision and "reached the reference optimum"'
    )
    cluster: ClusterSpec = setting(ClusterSpec(), "batch-cluster settings: --executor slurm, hbench slurm-script")


class _Problems:
    """Every problem of a suite, collected so that one run of `hbench run` names them all (checkmate-style)."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def add(self, where: str, what: str) -> None:
        self.found.append(f"field '{where}': {what}" if where else what)

    def extend(self, problems: list[Problem]) -> None:
        for p in problems:
            self.add(p.where, p.what)

    def attempt(self, func, *args, **kwargs):
        """func(*args) or, when it raises InputError, None with its message kept."""
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            self.found.append(str(exc))
            return None

    def raise_any(self) -> None:
        if self.found:
            raise InputError(one_line(self.found))


def _scenario(i: int, s: ScenarioKeys, reps: int, problems: _Problems) -> ScenarioSpec | None:
    """The scenario an entry names, its cells checked against the scenario's grid."""
    try:
        scenario = load_scenario(s.name)
    except InputError as exc:  # unknown, or a spec with problems of its own
        problems.add(f"scenario[{i}].name", str(exc))
        return None
    cells = s.cells if s.cells is not None else tuple(range(scenario.n_cells))
    outside = [c for c in cells if not 0 <= c < scenario.n_cells]
    if outside:
        problems.add(
            f"scenario[{i}].cells", f"{outside[0]!r} is not a cell of {scenario.name} (0..{scenario.n_cells - 1})"
        )
        return None
    return ScenarioSpec(scenario, cells, reps)


def _scenarios(
    entries: tuple[ScenarioKeys | None, ...], reps: int, override: bool, problems: _Problems
) -> tuple[ScenarioSpec | None, ...]:
    """One spec per entry (None where it has a problem); `override`: --reps replaces every entry's reps."""
    out = tuple(
        None if s is None else _scenario(i, s, reps if override or s.reps is None else s.reps, problems)
        for i, s in enumerate(entries)
    )
    names = [s.scenario.name for s in out if s is not None]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        problems.add("scenario", f"{twice[0]!r} is listed twice: list its cells in one entry")
    return out


def _engine(
    i: int, e: EngineKeys, level: float, scenarios: dict[str, tuple[int, ...]] | None, problems: _Problems
) -> EngineSpec | None:
    from compare.estimators import engine_class, engine_names

    if e.name not in engine_names():
        problems.add(f"engine[{i}].name", f"unknown engine {e.name!r} (known: {', '.join(engine_names())})")
        return None
    settings, found = collect(engine_class(e.name).Settings, e.settings, f"engine[{i}].settings", level=level)
    problems.extend(found)
    unknown = [n for n in e.only if scenarios is not None and not _in_suite(n, scenarios)]
    if unknown:
        problems.add(
            f"engine[{i}].only",
            f"{unknown[0]!r} is not a scenario (or scenario:cell) of this suite ({', '.join(sorted(scenarios or ()))})",
        )
    if found or unknown:
        return None
    return EngineSpec(e.name, settings, e.only, e.max_reps, e.label or e.name)


def _in_suite(entry: str, scenarios: dict[str, tuple[int, ...]]) -> bool:
    """ "name" names a scenario of the suite; "name:K" one of the cells the suite runs of it."""
    name, colon, cell = entry.partition(":")
    return name in scenarios and (not colon or (cell.isdigit() and int(cell) in scenarios[name]))


def _engines(
    entries: tuple[EngineKeys | None, ...],
    level: float,
    scenarios: dict[str, tuple[int, ...]] | None,
    problems: _Problems,
) -> tuple[EngineSpec, ...]:
    out = [None if e is None else _engine(i, e, level, scenarios, problems) for i, e in enumerate(entries)]
    labels = [e.label if e.label else e.name for e in entries if e is not None]
    twice = sorted({x for x in labels if labels.count(x) > 1})
    if twice:
        problems.add("engine", f"{twice[0]!r} is listed twice: give each a `label`")
    return tuple(e for e in out if e is not None)


def _check_priors(engines: tuple[EngineSpec, ...], scenarios: tuple[ScenarioSpec, ...], problems: _Problems) -> None:
    """Every sampler must honour its priors on every cell it runs on (compare.priors: the engine expresses each
    prior or refuses it, never ignores it), and a cell it takes its priors from must state them in a form the
    sampler takes: refused now, in one line, rather than failing every fit of the run."""
    import numpy as np

    from compare.priors import Layout, for_cell
    from compare.simulate import simulate

    designs: dict[tuple[str, int], Any] = {}
    for e in engines:
        if not hasattr(e.settings, "check_priors"):
            continue
        for spec in scenarios:
            for c in spec.cells:
                if not e.runs_on(spec.scenario.name, cell=c):
                    continue
                cell = spec.scenario.cell(c)
                at = (spec.scenario.name, c)
                if at not in designs:
                    designs[at] = simulate(cell, np.random.default_rng(0), np.random.default_rng(1)).data.design
                try:
                    strings = for_cell(e.settings.priors, cell, designs[at])  # type: ignore[attr-defined]
                    dataclasses.replace(e.settings, priors=strings).check_priors(  # type: ignore[call-arg]
                        Layout.of(designs[at], cell.family)
                    )
                except InputError as exc:
                    problems.found.append(f"engine {e.label} on {cell.scenario} cell {c}: {exc}")


def parse_suite(
    raw: dict[str, Any], path: Path | None = None, *, reps: int | None = None, seed: int | None = None
) -> Suite:
    """A Suite from a parsed TOML table; `reps`/`seed` override the file (the CLI's --reps/--seed).
    Every problem is found before anything runs, and all are reported in one line."""
    problems = _Problems()
    given = dict(raw) if isinstance(raw, dict) else raw
    if isinstance(given, dict):
        given.setdefault("name", path.stem if path else "suite")
        for key, value in (("reps", reps), ("seed", seed)):
            if value is not None:
                given.pop(key, None)  # the flag's value replaces the file's, and is checked as the flag
    keys, found = collect(SuiteKeys, given, "")
    problems.extend(found)
    for flag, key, value in (("--reps", "reps", reps), ("--seed", "seed", seed)):
        if value is not None:
            checked, found = check_value(SuiteKeys, key, value, flag)
            problems.extend(found)
            keys = dataclasses.replace(keys, **{key: checked}) if not found else keys
    specs = _scenarios(keys.scenario, keys.reps, reps is not None, problems)
    scenarios = tuple(s for s in specs if s is not None)
    n_tasks = sum(len(s.cells) * s.reps for s in scenarios)
    if n_tasks > MAX_TASKS:
        problems.add(
            "--reps" if reps else "reps", f"{n_tasks:,} tasks (cells x replications): at most {MAX_TASKS:,} in one run"
        )
    names = {s.scenario.name: s.cells for s in scenarios} if specs and None not in specs else None
    engines = _engines(keys.engine, keys.level, names, problems)
    _check_priors(engines, scenarios, problems)
    if keys.reference is not None and keys.reference not in [e.label for e in engines]:
        problems.add("reference", f"{keys.reference!r} is not one of the suite's engines")
    problems.raise_any()
    fs = keys.failsafe
    return Suite(
        keys.name or "suite",
        path,
        keys.seed,
        keys.reps,
        keys.level,
        keys.timeout,
        fs.max_failure_rate,
        fs.min_fits,
        scenarios,
        engines,
        keys.reference,
        raw,
        keys.cluster,
    )


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
