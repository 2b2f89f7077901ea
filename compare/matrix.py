"""`hbench matrix`: one suite, the same seed, several Python environments; each compared with the first.

The question it answers is "did upgrading statsmodels / PyMC / nutpie / PyStan change what our estimators
do?". Everything is checked before anything is built (the suite loads, every --env parses and resolves, no
run id is taken), then for each environment in turn: build it or reuse it from the cache (`compare.envs`),
install this checkout's hbench wheel, and run the suite as a subprocess of that environment's Python (one at
a time: the environments share the machine's cores). Runs land under the results folder as ordinary runs
(`<matrix_id>-<env>`), so `hbench status/report/compare` work on each.
"""

from __future__ import annotations

import resource
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from compare import catalogue, envs, regress
from compare.errors import InputError
from compare.store import RunStore
from compare.suite import load_suite


@dataclass(frozen=True)
class Plan:
    matrix_id: str
    suite: str  # what `hbench run` is given: a shipped suite's name or an absolute path
    suite_name: str
    seed: int
    reps: int | None
    workers: int | None
    scenarios: tuple[str, ...]  # --scenarios folders, absolute
    results: Path
    resolved: tuple[envs.Resolved, ...]
    thresholds: regress.Thresholds = regress.Thresholds()

    def run_id(self, env: str) -> str:
        return f"{self.matrix_id}-{env}"


@dataclass
class EnvRun:
    resolved: envs.Resolved
    path: Path
    built: bool
    run_id: str
    build_s: float
    run_wall_s: float
    run_cpu_s: float  # CPU seconds of the whole `hbench run` (its workers included)
    store: RunStore  # the environment's run


@dataclass
class MatrixResult:
    plan: Plan
    runs: list[EnvRun]
    comparisons: dict[str, dict[str, Any]] = field(default_factory=dict)  # env name -> compare_runs result
    problems: dict[str, list[str]] = field(default_factory=dict)  # env name -> why not comparable


def default_id() -> str:
    return "matrix-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S")


DEFAULT_THRESHOLDS = regress.Thresholds()


def plan(
    suite: str,
    env_texts: list[str],
    *,
    results: Path,
    matrix_id: str | None = None,
    seed: int | None = None,
    reps: int | None = None,
    workers: int | None = None,
    scenarios: tuple[str, ...] | list[str] = (),
    thresholds: regress.Thresholds = DEFAULT_THRESHOLDS,
) -> Plan:
    """Everything checked and resolved, nothing written: bad input raises InputError here."""
    specs = envs.parse_envs(env_texts)
    loaded = load_suite(suite, reps=reps, seed=seed)  # InputError on an unknown or malformed suite
    path = catalogue.suite_path(suite).resolve()  # given to each environment's hbench as a file
    matrix_id = matrix_id or default_id()
    if not envs.NAME.match(matrix_id):
        raise InputError(f"--id {matrix_id!r}: letters, digits, '.', '_' or '-' only")
    taken = [f"{matrix_id}-{s.name}" for s in specs if (results / f"{matrix_id}-{s.name}").exists()]
    if taken:
        raise InputError(f"run {taken[0]} already exists under {results}/ (choose another --id)")
    root = envs.checkout()
    resolved = tuple(envs.resolve(s, root) for s in specs)
    return Plan(
        matrix_id,
        str(path),
        loaded.name,
        loaded.seed,
        reps,
        workers,
        tuple(str(Path(d).resolve()) for d in scenarios),
        results.resolve(),
        resolved,
        thresholds,
    )


def run(p: Plan, log_dir: Path, say=print) -> MatrixResult:
    """Build (or reuse), install and run each environment in turn, then compare each with the first."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / "build.log", "a") as log:
        wheel = envs.build_wheel(envs.checkout(), log_dir / "wheel", log)
    out = MatrixResult(p, [])
    for r in p.resolved:
        with open(log_dir / f"{r.spec.name}.log", "a") as log:
            out.runs.append(_one(p, r, wheel, log, say))
    first = out.runs[0]
    for other in out.runs[1:]:
        result = regress.compare_runs(first.store, other.store, p.thresholds)
        out.comparisons[other.resolved.spec.name] = result
        out.problems[other.resolved.spec.name] = regress.not_comparable(first.store, other.store, result)
    return out


def _one(p: Plan, r: envs.Resolved, wheel: Path, log: TextIO, say) -> EnvRun:
    t0 = time.perf_counter()
    say(f"{r.spec.name}: environment {r.key} ({'reused' if envs_ready(p, r) else 'building'})")
    path, built = envs.ensure_env(r, p.results, log)
    envs.install_hbench(path, wheel, log)
    build_s = time.perf_counter() - t0
    run_id = p.run_id(r.spec.name)
    say(f"{r.spec.name}: running {p.suite_name} (seed {p.seed}) as {run_id}")
    wall, cpu = _run_suite(p, path, run_id, log)
    return EnvRun(r, path, built, run_id, build_s, wall, cpu, RunStore(run_id, p.results))


def envs_ready(p: Plan, r: envs.Resolved) -> bool:
    return (envs.env_dir(p.results, r.key) / envs.READY).is_file()


def _run_suite(p: Plan, env: Path, run_id: str, log: TextIO) -> tuple[float, float]:
    py = envs.env_python(env)
    cmd = [
        str(py),
        "-m",
        "compare",
        *[a for d in p.scenarios for a in ("--scenarios", d)],
        "run",
        p.suite,
        "--run-id",
        run_id,
        "--results",
        str(p.results),
        "--seed",
        str(p.seed),
        "--no-progress",
    ]
    cmd += ["--reps", str(p.reps)] if p.reps else []
    cmd += ["--workers", str(p.workers)] if p.workers else []
    log.write(f"$ {' '.join(cmd)}\n")
    log.flush()
    before, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    r = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, text=True, env=envs.clean_env(py.parent))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise envs.BuildError(f"hbench run in environment {env.name} exited {r.returncode}; see {log.name}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return time.perf_counter() - t0, cpu


def any_flagged(m: MatrixResult) -> bool:
    return any(regress.any_flagged(c) for c in m.comparisons.values())
