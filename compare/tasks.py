"""Tasks: one (scenario, cell, replication) with the engines to fit on its dataset, and running one.

A task simulates its dataset once from its own seed and fits every engine on
it, so engines are always compared on identical data.  Estimators are cached
per worker process (`_ESTIMATORS`), so compiled models survive across tasks.
Nothing here knows about pools, stores or progress bars.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from threadpoolctl import threadpool_limits

from compare import posterior, quiet
from compare.attempt import attempt, describe_exception
from compare.catalogue import load_scenario
from compare.data import Dataset
from compare.estimators import engine_class
from compare.estimators.base import Estimator
from compare.fitresult import FitResult
from compare.priors import for_cell
from compare.seeds import engine_seed
from compare.settings import Settings
from compare.simulate import dataset_for
from compare.spec import Scenario
from compare.status import Status
from compare.store import part_key, to_table
from compare.suite import EngineSpec, Suite

_SCENARIOS: dict[str, Scenario] = {}
_ESTIMATORS: dict[tuple, Estimator] = {}
_WORKER_READY = False


@dataclass(frozen=True)
class Task:
    scenario: str
    spec_path: str
    cell: int
    rep: int
    run_seed: int
    engines: tuple[EngineSpec, ...] = field(default_factory=tuple)
    run_dir: str | None = None  # where kept posterior draws go (results/<run_id>); None: nowhere

    @property
    def key(self) -> str:
        return part_key(self.scenario, self.cell, self.rep)

    @property
    def shape(self) -> tuple[str, int]:
        """Tasks of one shape reuse the same compiled models."""
        return (self.scenario, self.cell)


def expand(suite: Suite, run_dir: str | None = None) -> list[Task]:
    """Scenario grid x replications, each task carrying the engines that run on that scenario."""
    tasks = []
    for spec in suite.scenarios:
        for cell in spec.cells:
            for rep in range(spec.reps):
                engines = tuple(e for e in suite.engines if e.runs_on(spec.scenario.name, rep, cell))
                if engines:
                    tasks.append(
                        Task(spec.scenario.name, str(spec.scenario.path), cell, rep, suite.seed, engines, run_dir)
                    )
    return tasks


def _scenario(task: Task) -> Scenario:
    if task.spec_path not in _SCENARIOS:
        _SCENARIOS[task.spec_path] = load_scenario(task.spec_path)
    return _SCENARIOS[task.spec_path]


def estimator(spec: EngineSpec, settings: Settings | None = None) -> Estimator:
    """The worker's cached instance for an engine and its (frozen, hashable) settings."""
    key = (spec.name, settings or spec.settings)
    if key not in _ESTIMATORS:
        _ESTIMATORS[key] = engine_class(spec.name)(key[1])
    return _ESTIMATORS[key]


def settings_for(task: Task, ds: Dataset, spec: EngineSpec) -> Settings:
    """The engine's settings on this task: a sampler's `priors` become the prior strings of this cell (the
    scenario's own on a dgp = "prior" cell unless the suite says otherwise; see compare.priors.for_cell)."""
    s = spec.settings
    if "priors" not in {f.name for f in fields(s)}:
        return s
    priors = for_cell(getattr(s, "priors"), _scenario(task).cell(task.cell), ds.data.design)  # noqa: B009
    changes: dict[str, Any] = {"priors": priors}  # any engine's settings with a `priors` field, plug-ins' too
    return replace(s, **changes)


def dataset(task: Task) -> Dataset:
    return dataset_for(_scenario(task), task.cell, task.rep, task.run_seed)


def simulated(task: Task) -> tuple[Dataset | None, str]:
    """The task's dataset, or None and why its simulation failed: a replication that cannot be simulated
    (a draw of trials below zero, ...) becomes failure rows for its engines, and the run goes on."""
    try:
        return dataset(task), ""
    except Exception as exc:  # noqa: BLE001 - recorded per engine with the seed that reproduces it
        return None, f"simulation failed: {describe_exception(exc)}"


def _base(task: Task, ds: Dataset | None, engine: str, status: Status, error: str = "") -> dict[str, Any]:
    seed = ds.seed if ds is not None else engine_seed(task.run_seed, task.scenario, task.cell, task.rep)
    return {
        "scenario": task.scenario,
        "cell": task.cell,
        "rep": task.rep,
        "run_seed": task.run_seed,
        "engine_seed": seed,
        "dataset_hash": ds.hash if ds is not None else None,
        "engine": engine,
        "status": str(status),
        "error": error or None,
    }


def failure_rows(task: Task, ds: Dataset | None, engine: str, status: Status, error: str) -> pa.Table:
    """One row recording a fit that did not produce estimates (raised, NaN, timed out, crashed, skipped, or
    its data could not be simulated). Without `ds` (a crash seen from the parent) the data are simulated
    again for their hash."""
    if ds is None:
        ds, _ = simulated(task)
    return to_table(_base(task, ds, engine, status, error), 1)


def fit_all(task: Task, on_start: Callable[[str], None] | None = None) -> Iterator[tuple[str, pa.Table]]:
    """(engine label, rows) for each engine of the task, in order, on the one dataset simulated for it."""
    ds, error = simulated(task)
    for spec in task.engines:
        if on_start:
            on_start(spec.label)
        yield (
            spec.label,
            (fit_one(task, ds, spec) if ds is not None else failure_rows(task, None, spec.label, Status.FAILED, error)),
        )


def _sbc(cols: dict[str, Any], draws: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    """Rank of the truth among thinned posterior draws (simulation-based calibration), computed here
    so that engines never see the truth. On each parameter's primary row only: one rank per fit."""
    n = len(cols["parameter"])
    rank, count = np.full(n, np.nan), np.full(n, np.nan)
    for i, (name, value, main) in enumerate(zip(cols["parameter"], cols["true"], cols["primary"])):
        d = (draws or {}).get(name)
        if main and d is not None and np.isfinite(value):
            rank[i], count[i] = float(np.sum(np.asarray(d) < value)), float(len(d))
    return {"sbc_rank": rank, "sbc_draws": count}


def fit_one(task: Task, ds: Dataset, spec: EngineSpec) -> pa.Table:
    """Fit one engine on the task's dataset (`compare.attempt`); every outcome becomes rows (an Arrow table in
    the store's schema), never an exception."""
    try:
        est = estimator(spec, settings_for(task, ds, spec))
    except Exception as exc:  # noqa: BLE001 - settings for this cell (its priors) could not be built: a failed fit, recorded
        return failure_rows(task, ds, spec.label, Status.FAILED, describe_exception(exc))
    outcome = attempt(est, ds.data, ds.seed)
    if outcome.result is None:
        return failure_rows(task, ds, spec.label, outcome.status, outcome.error)
    return _rows(task, ds, spec, outcome.result)


def _rows(task: Task, ds: Dataset, spec: EngineSpec, result: FitResult) -> pa.Table:
    cols = result.columns(ds.truth)
    # SBC ranks are uniform only when the truth is drawn from the prior, so only prior-DGP cells record them
    draws = result.draws if _scenario(task).cell(task.cell).dgp == "prior" else None
    cols.update(_sbc(cols, draws), **_base(task, ds, spec.label, Status.OK))
    if result.idata is not None and task.run_dir:  # before the part: a part on disk means its draws are too
        posterior.save(result.idata, posterior.draws_path(Path(task.run_dir), task.key, spec.label))
    return to_table(cols, len(cols["parameter"]))


def prepare_worker() -> None:
    """A worker process as every executor's workers have it, so results do not depend on the executor: one
    BLAS/OpenMP thread (the pool already runs one worker per core, and numpy spawning a thread per core would
    oversubscribe the machine), and the library-noise filters of compare.quiet (importing hbench sets none)."""
    global _WORKER_READY
    if not _WORKER_READY:
        quiet.install()
        threadpool_limits(1)
        _WORKER_READY = True


def run_task(task: Task, on_start: Callable[[str], None] | None = None) -> pa.Table:
    """Simulate the task's dataset once and fit every engine on it (in a worker: one BLAS thread)."""
    prepare_worker()
    return pa.concat_tables([rows for _, rows in fit_all(task, on_start)])
