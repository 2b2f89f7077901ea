"""The harness: expand a suite into tasks, skip those already stored, run the rest on an executor,
write each finished task atomically, and stop when a cell's failure rate passes the fail-safe.

Small parts, each testable alone: `tasks.expand` (what to run), `executors` (how), `store.RunStore`
(where it goes), `FailSafe` (when to give up), `manifest` (what ran it).
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
from tqdm import tqdm

from compare.cluster import overridden
from compare.errors import InputError
from compare.executors import DaskExecutor, LocalExecutor, SlurmExecutor
from compare.provenance import changes, engine_backend, fingerprint, git_commit, machine, versions
from compare.shards import SHARDED, Shard, join, parse_shard, record
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

    def record(self, fits: list[dict[str, Any]]) -> None:
        """Count one task's fits (one mapping each: scenario, cell, engine, status, error)."""
        for r in fits:
            if r["status"] == Status.SKIPPED:
                continue
            key = (r["scenario"], int(r["cell"]), r["engine"])
            self.attempts[key] += 1
            self.failures[key] += r["status"] in FAILED
            if self.attempts[key] >= self.min_fits and self.failures[key] / self.attempts[key] > self.max_rate:
                s, c, e = key
                raise FailSafeTriggered(
                    f"fail-safe: engine {e} failed {self.failures[key]} of {self.attempts[key]} fits in {s} cell {c} "
                    f"(> {self.max_rate:.0%}); last error: {str(r['error'])[:200]}"
                )


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def new_manifest(
    suite: Suite, tasks: list[Task], executor: str, workers: int, reps_override: int | None = None
) -> dict[str, Any]:
    return {
        "suite": suite.name,
        "suite_path": str(suite.path) if suite.path else None,
        "suite_raw": suite.raw,
        "run_seed": suite.seed,
        "reps": suite.reps,
        "reps_override": reps_override,
        "level": suite.level,
        "timeout": suite.timeout,
        "engines": [
            {
                "name": e.name,
                "label": e.label,
                "settings": e.settings.public(),
                "only": list(e.only),
                "max_reps": e.max_reps,
                "backend": engine_backend(e.name, e.settings),
                "priors": e.settings.prior_plan() if hasattr(e.settings, "prior_plan") else None,
            }
            for e in suite.engines
        ],
        "reference": suite.reference,
        "n_tasks": len(tasks),
        "executor": executor,
        "workers": workers,
        "git_commit": git_commit(),
        "versions": versions([e.name for e in suite.engines]),
        "fingerprint": fingerprint(suite),
        "machine": machine(),
        "started": _now(),
        "finished": None,
        "status": "running",
        "sessions": [],
    }


def suite_from_manifest(manifest: dict[str, Any]) -> Suite:
    """The run's suite as it was started: its TOML table, the --reps it was given (none: each scenario's own
    reps stand) and its seed."""
    from compare.suite import parse_suite

    try:
        path = Path(manifest["suite_path"]) if manifest.get("suite_path") else None
        return parse_suite(manifest["suite_raw"], path, reps=manifest.get("reps_override"), seed=manifest["run_seed"])
    except (KeyError, TypeError) as exc:
        raise InputError(f"the run's manifest lacks its suite ({exc}): it cannot be resumed") from None


def _executor(kind: str, workers: int, suite: Suite, scheduler: str | None, store: RunStore):
    if kind == "local":
        return LocalExecutor(workers, suite.timeout)
    if kind == "dask":
        return DaskExecutor(workers, suite.timeout, scheduler)
    if kind == "slurm":
        return SlurmExecutor(suite.cluster, suite.timeout, str(store.dir / "slurm-logs"))
    raise InputError(f"--executor {kind!r}: choose local, dask or slurm")


def run(
    suite_path: str | None,
    *,
    run_id: str | None = None,
    reps: int | None = None,
    seed: int | None = None,
    workers: int | None = None,
    executor: str = "local",
    scheduler: str | None = None,
    resume: str | None = None,
    shard: str | None = None,
    root: Path | str = RESULTS_DIR,
    progress: bool = True,
    cluster: dict[str, Any] | None = None,
) -> RunStore:
    """Run (or resume) a suite into results/<run_id>/, or one shard of it (`compare.shards`). `cluster` overrides
    the suite's [cluster] table (--executor slurm). Returns the store; raises FailSafeTriggered."""
    workers = workers or os.cpu_count() or 1
    if workers < 1:
        raise InputError(f"--workers {workers}: must be at least 1")
    if shard is not None:
        return _run_shard(
            suite_path,
            parse_shard(shard),
            run_id=run_id,
            reps=reps,
            seed=seed,
            workers=workers,
            executor=executor,
            scheduler=scheduler,
            resume=resume,
            root=root,
            progress=progress,
            cluster=cluster,
        )
    if resume:
        store, suite, manifest = _resumed(resume, root, suite_path=suite_path, run_id=run_id, seed=seed)
        if reps is not None:
            suite = _extended(store, manifest, suite, reps)
    else:
        if suite_path is None:
            raise InputError("give a suite file, or --resume RUN_ID")
        suite = load_suite(suite_path, reps=reps, seed=seed)
        run_id = run_id or f"{suite.name}-{dt.datetime.now():%Y%m%d-%H%M%S}"
        store = RunStore(run_id, root)
        manifest = None
    suite = overridden(suite, cluster)
    tasks = expand(suite, str(store.dir))
    if manifest is None:
        manifest = new_manifest(suite, tasks, executor, workers, reps)
        store.create(manifest)  # appears whole, already locked by this process
    store.acquire()
    try:
        manifest["status"] = "running"
        manifest["sessions"].append(_session(executor, workers, suite))
        store.write_manifest(manifest)
        _recorded(
            lambda: _execute(store, suite, tasks, _executor(executor, workers, suite, scheduler, store), progress),
            lambda state: _finish(store, manifest, state),
        )
    finally:
        store.release()
    return store


def _session(executor: str, workers: int, suite: Suite) -> dict[str, Any]:
    where = (
        {"cluster": asdict(suite.cluster), "workers": suite.cluster.jobs * suite.cluster.cores}
        if executor == "slurm"
        else {}
    )
    return {"started": _now(), "executor": executor, "workers": workers, **where}


def _resumed(resume: str, root: Path | str, **given_values: Any) -> tuple[RunStore, Suite, dict[str, Any]]:
    """The run's store, its suite as it was started and its manifest, or InputError when it cannot be resumed
    as it is (a run is one version of its specs)."""
    flags = {"suite_path": "SUITE", "run_id": "--run-id", "reps": "--reps", "seed": "--seed"}
    given = [flags[name] for name, value in given_values.items() if value is not None]
    if given:
        raise InputError(f"--resume continues a run as it was started: drop {', '.join(given)}")
    store = RunStore(resume, root)
    manifest = store.manifest()
    store.check_schema(manifest)
    suite = suite_from_manifest(manifest)
    changed = changes(manifest, suite)
    if changed:
        raise InputError(
            f"run {resume!r} cannot be resumed: {changed[0]}"
            + (f" (and {len(changed) - 1} more changes)" if len(changed) > 1 else "")
            + "; start a new run"
        )
    return store, suite, manifest


def _extended(store: RunStore, manifest: dict[str, Any], suite: Suite, reps: int) -> Suite:
    """The run's suite with `reps` replications of every cell, recorded in the manifest (what it had before,
    when). The seeds are addressed by replication, so replications 0..had-1 are the tasks already stored
    (skipped, never refitted) and the new ones are those a run started with `reps` would have had."""
    from compare.suite import parse_suite

    had = {s.scenario.name: s.reps for s in suite.scenarios}
    most = max(had, key=lambda name: had[name])
    if reps < had[most]:
        raise InputError(
            f"--reps {reps}: run {store.run_id!r} already has {had[most]} replications of {most}; "
            "--reps with --resume adds replications, it never drops any"
        )
    extended = parse_suite(manifest["suite_raw"], suite.path, reps=reps, seed=manifest["run_seed"])
    n_tasks = len(expand(extended))
    if n_tasks != manifest["n_tasks"]:
        manifest.setdefault("extensions", []).append(
            {
                "at": _now(),
                "reps_before": manifest.get("reps_override") or had,
                "reps": reps,
                "n_tasks_before": manifest["n_tasks"],
                "n_tasks": n_tasks,
            }
        )
    manifest.update(reps=reps, reps_override=reps, n_tasks=n_tasks)
    return extended


def _finish(store: RunStore, manifest: dict[str, Any], state: str) -> None:
    manifest["status"] = state
    manifest["finished"] = _now()
    manifest["sessions"][-1]["finished"] = manifest["finished"]
    store.write_manifest(manifest)


def _recorded(execute: Callable[[], None], record: Callable[[str], None]) -> None:
    """Run `execute`, then record how it ended: complete, stopped by the fail-safe, or interrupted (any other
    exception, Ctrl-C and SIGTERM included), the exception still raised."""
    state = "interrupted"
    try:
        execute()
        state = "complete"
    except FailSafeTriggered:
        state = "stopped by fail-safe"
        raise
    finally:
        record(state)


def _run_shard(
    suite_path: str | None,
    shard: Shard,
    *,
    run_id: str | None,
    reps: int | None,
    seed: int | None,
    workers: int,
    executor: str,
    scheduler: str | None,
    resume: str | None,
    root: Path | str,
    progress: bool,
    cluster: dict[str, Any] | None,
) -> RunStore:
    """Run shard i of N into results/<run_id>/: create the run if this shard is first, else join it."""
    if resume or suite_path is None or run_id is None:
        raise InputError(
            "--shard runs one shard of a run: give SUITE and --run-id (the same for every shard); "
            "run a shard again the same way to finish it"
        )
    suite = overridden(load_suite(suite_path, reps=reps, seed=seed), cluster)
    store = RunStore(run_id, root)
    tasks = expand(suite, str(store.dir))
    if not store.exists():
        manifest = new_manifest(suite, tasks, executor, workers, reps)
        manifest.update(status=SHARDED, shards=shard.count)
        try:
            store.create(manifest, writer=False)
        except InputError:
            if not store.exists():
                raise  # not a shard that started at the same moment: a folder without a manifest
    join(store, suite, shard, reps)  # InputError unless this shard runs what the run runs
    fd = store.acquire_shard(shard.label)
    try:
        mine = shard.of(tasks)
        rec = record(shard, executor, workers, len(mine), _now())
        store.write_shard_record(shard.label, rec)
        ex = _executor(executor, workers, suite, scheduler, store)

        def finish(state: str) -> None:
            rec.update(status=state, finished=_now())
            store.write_shard_record(shard.label, rec)

        _recorded(lambda: _execute(store, suite, mine, ex, progress, desc=f"{run_id} {shard.label}"), finish)
    finally:
        os.close(fd)
    return store


def _execute(store: RunStore, suite: Suite, tasks: list[Task], ex, progress: bool, desc: str | None = None) -> None:
    done = store.done_keys()
    todo = [t for t in tasks if t.key not in done]
    failsafe = FailSafe(suite.max_failure_rate, suite.min_fits)
    bar = tqdm(
        total=len(tasks),
        initial=len(tasks) - len(todo),
        disable=not progress,
        unit="task",
        desc=desc or store.run_id,
        dynamic_ncols=True,
    )
    failed = 0
    try:
        for task, rows in ex.run(todo):
            store.write_part(task.key, rows)
            fits = _fits(rows)
            failed += sum(f["status"] in FAILED for f in fits)
            bar.update(1)
            bar.set_postfix(done=bar.n, failed_fits=failed, remaining=bar.total - bar.n)
            failsafe.record(fits)
    finally:
        bar.close()


def _fits(rows: pa.Table) -> list[dict[str, Any]]:
    """One mapping per fit of a task's rows: only the columns progress and the fail-safe read. In plain Python:
    a task has a few fits, and pandas (to_pandas, drop_duplicates) cost the parent ~2 ms a task, which a 2-core
    run with two workers takes from the fits."""
    keys = ["scenario", "cell", "rep", "engine"]
    seen: dict[tuple, dict[str, Any]] = {}
    for row in rows.select([*keys, "status", "error"]).to_pylist():
        seen.setdefault(tuple(row[k] for k in keys), row)
    return list(seen.values())


def status(run_id: str, root: Path | str = RESULTS_DIR) -> dict[str, Any]:
    """Progress of a run from its store: tasks done of total, failures by engine."""
    store = RunStore(run_id, root)
    manifest = store.manifest()
    table = store.load()
    fits = table.drop_duplicates(["scenario", "cell", "rep", "engine"])
    by_engine = fits.groupby("engine")["status"].value_counts().unstack(fill_value=0) if len(fits) else pd.DataFrame()
    done = len(store.done_keys())
    return {
        "run_id": run_id,
        "status": _state(store, manifest, done),
        "done": done,
        "total": manifest["n_tasks"],
        "started": manifest.get("started"),
        "finished": manifest.get("finished"),
        "fits_by_engine": by_engine,
    }


def _state(store: RunStore, manifest: dict[str, Any], done: int) -> str | None:
    """The run's state; a sharded run's from its shard writers and parts (its shards never write the manifest)."""
    if manifest.get("status") != SHARDED:
        return store.state(manifest)
    live = store.shard_writers()
    if live:
        return f"{SHARDED}, {len(live)} of {manifest['shards']} shards running"
    return "complete" if done == manifest["n_tasks"] else f"{SHARDED}, no shard running (run the missing shards again)"
