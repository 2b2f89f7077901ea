"""Array jobs without a scheduler process: `hbench run SUITE --run-id ID --shard i/N` runs shard i of N, a
deterministic 1/N of the run's tasks, into one run folder on a shared filesystem.

Shard i takes tasks i-1, i-1+N, i-1+2N, ... of the suite's expansion (its order is fixed by the suite:
scenario, cell, replication), so every shard gets a share of every cell and the shards' costs even out.
Whichever shard starts first creates the run folder (one winner: the store renames it into place); the
others join it after checking that they run the very same suite, seed, replications and shard count, on
the same packages and hbench commit. A shard writes only its own tasks' parts (each atomic) and its own
record, so shards need no lock in common; rerunning a shard skips its finished tasks. `hbench verify ID`
then says whether the run is complete or which tasks are missing.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from typing import Any

from compare.errors import InputError
from compare.provenance import changes, fingerprint
from compare.store import RunStore
from compare.suite import Suite
from compare.tasks import Task

SHARDED = "sharded"  # the manifest's status of a run written by shards (the shards keep their own)


@dataclass(frozen=True)
class Shard:
    index: int  # 1..count
    count: int

    @property
    def label(self) -> str:
        return f"{self.index}-of-{self.count}"

    def of(self, tasks: list[Task]) -> list[Task]:
        """This shard's tasks: round robin over the expansion."""
        return tasks[self.index - 1 :: self.count]


def parse_shard(text: str) -> Shard:
    """`i/N` (1 <= i <= N), as SLURM's `--array=1-N` numbers array tasks."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match:
        raise InputError(f"--shard {text!r}: expected i/N, e.g. --shard 2/8 (shard 2 of 8)")
    index, count = int(match[1]), int(match[2])
    if count < 1 or not 1 <= index <= count:
        raise InputError(f"--shard {text}: i must be between 1 and N (N >= 1)")
    return Shard(index, count)


def join(store: RunStore, suite: Suite, shard: Shard, reps: int | None) -> dict[str, Any]:
    """The existing run's manifest, or InputError when this shard would not run the same tasks as it."""
    manifest = store.manifest()
    store.check_schema(manifest)
    where = f"run {store.run_id!r}"
    if manifest.get("shards") is None:
        raise InputError(f"{where} was not started in shards: `hbench run --resume {store.run_id}` completes it")
    if manifest["shards"] != shard.count:
        raise InputError(
            f"{where} is split in {manifest['shards']} shards, not {shard.count}: give --shard i/{manifest['shards']}"
        )
    differs = changes(manifest, suite)
    differs += [
        what
        for what, ours, theirs in (
            ("its suite", fingerprint(suite), manifest.get("fingerprint")),
            ("its seed", suite.seed, manifest.get("run_seed")),
            ("its --reps", reps, manifest.get("reps_override")),
        )
        if ours != theirs
    ]
    if differs:
        raise InputError(
            f"{where}: this shard differs from the run's other shards ({differs[0]}): "
            "every shard must run the same suite, seed and --reps on the same hbench"
        )
    return manifest


def record(shard: Shard, executor: str, workers: int, n_tasks: int, started: str) -> dict[str, Any]:
    return {
        "shard": shard.label,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "executor": executor,
        "workers": workers,
        "tasks": n_tasks,
        "started": started,
        "finished": None,
        "status": "running",
    }
