"""The harness: expand a suite into tasks, skip those already stored, run the rest on an executor,
write each finished task atomically, and stop when a cell's failure rate passes the fail-safe.

Small parts, each testable alone: `tasks.expand` (what to run), `executors` (how), `store.RunStore`
(where it goes), `FailSafe` (when to give up), `manifest` (what ran it).
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
from tqdm import tqdm

from compare.errors import InputError
from compare.executors import DaskExecutor, LocalExecutor
from compare.provenance import changes, engine_backend, fingerprint, git_commit, machine, versions
from compare.status import FAILED, Status
from compare.store import RESULTS_DIR, RunStore
from compare.suite import Suite, load_suite
from compare.tasks import Task, expand



class FailSafeTriggered(RuntimeError):
    """A cell's failure rate passed the suite's threshold; the run stopped (resumable)."""


@dataclass
class FailSafe:
    max_rate: float
    min_fits: int

    def __post_init__(self) -> None:
        self.attempts: Counter = Counter()
        self.failures: Counter = Counter()

    def record(self, fits: pd.DataFrame) -> None:
        """Count one task's fits (one row each: scenario, cell, engine, status, error)."""
        for _, r in fits.iterrows():
            if r["status"] == Status.SKIPPED:
                continue
            key = (r["scenario"], int(r["cell"]), r["engine"])
            self.attempts[key] += 1
            self.failures[key] += r["status"] in FAILED
            if self.attempts[key] >= self.min_fits and self.failures[key] / self.attempts[key] > self.max_rate:
                s, c, e = key
                raise FailSafeTriggered(
                    f"fail-safe: engine {e} failed {self.failures[key]} of {self.attempts[key]} fits in {s} cell {c} "
                    f"(> {self.max_rate:.0%}); last error: {str(r['error'])[:200]}")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def new_manifest(suite: Suite, tasks: list[Task], executor: str, workers: int,
                 reps_override: int | None = None) -> dict[str, Any]:
    return {"suite": suite.name, "suite_path": str(suite.path) if suite.path else None, "suite_raw": suite.raw,
            "run_seed": suite.seed, "reps": suite.reps, "reps_override": reps_override, "level": suite.level,
            "timeout": suite.timeout,
            "engines": [{"name": e.name, "label": e.label, "settings": e.settings.public(), "only": list(e.only),
                         "max_reps": e.max_reps, "backend": engine_backend(e.name, e.settings)}
                        for e in suite.engines],
            "reference": suite.reference, "n_tasks": len(tasks), "executor": executor, "workers": workers,
            "git_commit": git_commit(), "versions": versions([e.name for e in suite.engines]),
            "fingerprint": fingerprint(suite),
            "machine": machine(), "started": _now(), "finished": None, "status": "running", "sessions": []}


def suite_from_manifest(manifest: dict[str, Any]) -> Suite:
    """The run's suite as it was started: its TOML table, the --reps it was given (none: each scenario's own
    reps stand) and its seed."""
    from compare.suite import parse_suite

    try:
        path = Path(manifest["suite_path"]) if manifest.get("suite_path") else None
        return parse_suite(manifest["suite_raw"], path, reps=manifest.get("reps_override"), seed=manifest["run_seed"])
    except (KeyError, TypeError) as exc:
        raise InputError(f"the run's manifest lacks its suite ({exc}): it cannot be resumed") from None


def _executor(kind: str, workers: int, timeout: float, scheduler: str | None):
    if kind == "local":
        return LocalExecutor(workers, timeout)
    if kind == "dask":
        return DaskExecutor(workers, timeout, scheduler)
    raise InputError(f"--executor {kind!r}: choose local or dask")


def run(suite_path: str | None, *, run_id: str | None = None, reps: int | None = None, seed: int | None = None,
        workers: int | None = None, executor: str = "local", scheduler: str | None = None,
        resume: str | None = None, root: Path | str = RESULTS_DIR, progress: bool = True) -> RunStore:
    """Run (or resume) a suite into results/<run_id>/. Returns the store; raises FailSafeTriggered."""
    workers = workers or os.cpu_count() or 1
    if workers < 1:
        raise InputError(f"--workers {workers}: must be at least 1")
    if resume:
        given = [flag for flag, value in (("SUITE", suite_path), ("--run-id", run_id), ("--reps", reps),
                                          ("--seed", seed)) if value is not None]
        if given:
            raise InputError(f"--resume continues a run as it was started: drop {', '.join(given)}")
        store = RunStore(resume, root)
        manifest = store.manifest()
        store.check_schema(manifest)
        suite = suite_from_manifest(manifest)
        changed = changes(manifest, suite)
        if changed:
            raise InputError(f"run {resume!r} cannot be resumed: {changed[0]}"
                             + (f" (and {len(changed) - 1} more changes)" if len(changed) > 1 else "")
                             + "; start a new run")
    else:
        if suite_path is None:
            raise InputError("give a suite file, or --resume RUN_ID")
        suite = load_suite(suite_path, reps=reps, seed=seed)
        run_id = run_id or f"{suite.name}-{dt.datetime.now():%Y%m%d-%H%M%S}"
        store = RunStore(run_id, root)
        manifest = None
    tasks = expand(suite, str(store.dir))
    if manifest is None:
        manifest = new_manifest(suite, tasks, executor, workers, reps)
        store.create(manifest)  # appears whole, already locked by this process
    store.acquire()
    try:
        manifest["status"] = "running"
        manifest["sessions"].append({"started": _now(), "executor": executor, "workers": workers})
        store.write_manifest(manifest)
        _execute(store, suite, tasks, _executor(executor, workers, suite.timeout, scheduler), progress, manifest)
    finally:
        store.release()
    return store


def _execute(store: RunStore, suite: Suite, tasks: list[Task], ex, progress: bool, manifest: dict) -> None:
    done = store.done_keys()
    todo = [t for t in tasks if t.key not in done]
    failsafe = FailSafe(suite.max_failure_rate, suite.min_fits)
    bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), disable=not progress, unit="task",
               desc=store.run_id, dynamic_ncols=True)
    failed = 0
    try:
        for task, rows in ex.run(todo):
            store.write_part(task.key, rows)
            fits = _fits(rows)
            failed += int(fits["status"].isin(list(FAILED)).sum())
            bar.update(1)
            bar.set_postfix(done=bar.n, failed_fits=failed, remaining=bar.total - bar.n)
            failsafe.record(fits)
        manifest["status"] = "complete"
    except FailSafeTriggered:
        manifest["status"] = "stopped by fail-safe"
        raise
    except BaseException:
        manifest["status"] = "interrupted"
        raise
    finally:
        bar.close()
        manifest["finished"] = _now()
        manifest["sessions"][-1]["finished"] = manifest["finished"]
        store.write_manifest(manifest)


def _fits(rows: pa.Table) -> pd.DataFrame:
    """One row per fit of a task's rows: only the columns progress and the fail-safe read."""
    cols = rows.select(["scenario", "cell", "rep", "engine", "status", "error"]).to_pandas()
    return cols.drop_duplicates(["scenario", "cell", "rep", "engine"])


def status(run_id: str, root: Path | str = RESULTS_DIR) -> dict[str, Any]:
    """Progress of a run from its store: tasks done of total, failures by engine."""
    store = RunStore(run_id, root)
    manifest = store.manifest()
    table = store.load()
    fits = table.drop_duplicates(["scenario", "cell", "rep", "engine"])
    by_engine = fits.groupby("engine")["status"].value_counts().unstack(fill_value=0) if len(fits) else pd.DataFrame()
    return {"run_id": run_id, "status": store.state(manifest), "done": len(store.done_keys()),
            "total": manifest["n_tasks"], "started": manifest.get("started"), "finished": manifest.get("finished"),
            "fits_by_engine": by_engine}
