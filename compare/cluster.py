"""A batch cluster's settings: a suite's `[cluster]` table (queue, cores, memory, walltime, ...), read by
`--executor slurm` (dask-jobqueue: the workers are SLURM jobs) and by `hbench slurm-script` (an sbatch array
script, one array task per shard, no scheduler process).

    [cluster]
    queue = "short"         # SLURM partition (sbatch --partition); empty: the cluster's default
    account = ""            # sbatch --account
    cores = 4               # cores per job: its hbench workers (sbatch --cpus-per-task)
    memory = "8GB"          # per job (sbatch --mem)
    walltime = "04:00:00"   # per job (sbatch --time)
    jobs = 2                # --executor slurm: how many worker jobs to keep running
    setup = ["module load R/4.3"]   # shell lines run in each job before hbench (modules, a venv)
    extra = ["--qos=normal"]        # further sbatch options, each as sbatch spells it
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compare.settings import Table, parse, setting

_MEMORY = re.compile(r"^\d+(\.\d+)?\s*([KMGT]i?B?)?$", re.IGNORECASE)
_WALLTIME = re.compile(r"^(\d+-)?\d{1,3}(:\d{2}){0,2}$")  # SLURM: minutes, MM:SS, HH:MM:SS, D-HH:MM:SS


def _one_line(value: str) -> str | None:
    return f"{value!r}: expected a string on one line" if "\n" in value else None


def _memory(value: str) -> str | None:
    return None if _MEMORY.match(value) else f'{value!r}: expected a size such as "8GB" or "500MB"'


def _walltime(value: str) -> str | None:
    return None if _WALLTIME.match(value) else f'{value!r}: expected a SLURM time such as "04:00:00" or "1-12:00:00"'


def _lines(value: tuple[str, ...]) -> str | None:
    bad = [v for v in value if "\n" in v]
    return f"{bad[0]!r}: expected one-line strings" if bad else None


@dataclass(frozen=True)
class ClusterSpec(Table):
    """`[cluster]`: where a run's work goes on a batch cluster (read by --executor slurm and hbench slurm-script;
    not part of what a run computes, so not of its fingerprint)."""

    queue: str = setting("", "SLURM partition (sbatch --partition); empty: the cluster's default", check=_one_line)
    account: str = setting("", "sbatch --account (empty: none)", check=_one_line)
    cores: int = setting(1, "cores per job: its hbench workers (sbatch --cpus-per-task)", lo=1, hi=10_000)
    memory: str = setting("4GB", 'memory per job (sbatch --mem), e.g. "8GB"', check=_memory)
    walltime: str = setting("01:00:00", 'time limit per job (sbatch --time), e.g. "04:00:00"', check=_walltime)
    jobs: int = setting(1, "--executor slurm: how many worker jobs to keep running", lo=1, hi=10_000)
    setup: tuple[str, ...] = setting((), "shell lines run in each job before hbench (modules, a venv)", check=_lines)
    extra: tuple[str, ...] = setting((), "further sbatch options, each as sbatch spells it", check=_lines)

    @property
    def sbatch_memory(self) -> str:
        """sbatch wants 8G, not 8GB: its units are K, M, G, T."""
        match = re.match(r"^(\d+(?:\.\d+)?)\s*([KMGT]?)", self.memory.upper())
        assert match is not None, "memory was checked on parse"
        number, unit = match.groups()
        return f"{number}{unit or 'M'}"


def walltime_seconds(walltime: str) -> int:
    """A SLURM time in seconds: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS (man sbatch, --time)."""
    days, _, rest = walltime.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    if days:  # after a day count the first field is hours
        h, m, sec = (parts + [0, 0])[:3]
    else:
        h, m, sec = ([0] * (3 - len(parts)) + parts) if len(parts) == 3 else (0, *(parts + [0])[:2])
    return int(days or 0) * 86400 + h * 3600 + m * 60 + sec


def worker_lifetime(spec: ClusterSpec) -> tuple[int, int]:
    """(lifetime, stagger) in seconds for a worker in a job of `spec.walltime`: it retires (dask's --lifetime)
    a margin before SLURM would kill it, a quarter of the walltime but at most 5 minutes, so its running fit goes
    back to the queue uncounted as a failure and a fresh job takes over; the stagger (a fifth of the margin) keeps
    the workers of several jobs from retiring at once."""
    total = walltime_seconds(spec.walltime)
    margin = min(300, total // 4)
    return total - margin, margin // 5


# The settings a command line may override (the rest are the suite's to say), with their types.
OVERRIDES = {"queue": str, "account": str, "cores": int, "memory": str, "walltime": str, "jobs": int}


def add_arguments(parser) -> None:
    """--queue, --cores, ...: override the suite's `[cluster]` table for this command."""
    for name, kind in OVERRIDES.items():
        parser.add_argument(f"--{name}", type=kind, help=f"[cluster] {name} for this run (overrides the suite)")


def given(args) -> dict[str, Any]:
    """The --queue, --cores, ... a command line gave."""
    return {name: getattr(args, name) for name in OVERRIDES if getattr(args, name, None) is not None}


def overridden(suite, given: dict[str, Any] | None) -> Any:
    """The suite with its `[cluster]` table overridden by `given` (checked as the table is)."""
    if not given:
        return suite
    from dataclasses import replace

    return replace(suite, cluster=parse(ClusterSpec, {**suite.raw.get("cluster", {}), **given}, "cluster"))


def sbatch_script(
    spec: ClusterSpec,
    *,
    suite: Path,
    run_id: str,
    shards: int,
    python: str,
    results: Path,
    workdir: Path,
    extra_args: tuple[str, ...] | list[str] = (),
    global_args: tuple[str, ...] | list[str] = (),
) -> str:
    """An sbatch array script: array task i runs `hbench run SUITE --run-id RUN_ID --shard i/N` with one worker
    per core of its job, all into one run folder (paths absolute: the jobs start elsewhere)."""
    q = shlex.quote
    head = [
        "#!/bin/bash",
        f"#SBATCH --job-name={q('hbench-' + run_id)}",
        f"#SBATCH --array=1-{shards}",
        "#SBATCH --ntasks=1",
        f"#SBATCH --cpus-per-task={spec.cores}",
        f"#SBATCH --mem={spec.sbatch_memory}",
        f"#SBATCH --time={spec.walltime}",
        f"#SBATCH --chdir={q(str(workdir))}",
        f"#SBATCH --output={q('hbench-' + run_id + '-%A_%a.out')}",
    ]  # in --chdir: a folder that exists
    head += [f"#SBATCH --partition={q(spec.queue)}"] * bool(spec.queue)
    head += [f"#SBATCH --account={q(spec.account)}"] * bool(spec.account)
    head += [f"#SBATCH {option}" for option in spec.extra]
    cmd = [
        python,
        "-m",
        "compare",
        *global_args,
        "run",
        str(suite),
        "--run-id",
        run_id,
        "--results",
        str(results),
        "--no-progress",
        *extra_args,
    ]
    body = [
        "# Written by `hbench slurm-script`. Submit with `sbatch THIS_FILE`; when every array task has ended,",
        f"# `hbench verify {run_id} --results {results}` says whether the run is complete or names the missing",
        "# tasks. An array task that failed or ran out of time is rerun by `sbatch --array=I THIS_FILE`:",
        "# it skips the tasks its shard already finished.",
        "set -euo pipefail",
        *spec.setup,
        " ".join(q(c) for c in cmd) + f' --shard "${{SLURM_ARRAY_TASK_ID}}/{shards}"'
        ' --workers "${SLURM_CPUS_PER_TASK:-1}"',
    ]
    return "\n".join(head + [""] + body) + "\n"
