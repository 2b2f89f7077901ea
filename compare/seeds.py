"""Seeds: run seed -> SeedSequence child per (scenario, cell, replication).

The child is addressed by a spawn key, not by spawning in order, so replication
r of a cell gets the same stream whether it runs alone, in a batch, first or
last, on any worker.  The scenario enters by a stable hash of its name, so
adding a scenario never changes another's data.
"""

from __future__ import annotations

import hashlib

import numpy as np

_OBSERVATIONS, _GROUPS, _ENGINE = 0, 1, 2


def scenario_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


def replication_seq(run_seed: int, scenario: str, cell: int, rep: int) -> np.random.SeedSequence:
    """The stream for everything that is redrawn every replication."""
    return np.random.SeedSequence(run_seed, spawn_key=(scenario_key(scenario), cell, _OBSERVATIONS, rep))


def cell_seq(run_seed: int, scenario: str, cell: int) -> np.random.SeedSequence:
    """The stream for what a stratified design keeps fixed across replications (groups, their effects)."""
    return np.random.SeedSequence(run_seed, spawn_key=(scenario_key(scenario), cell, _GROUPS))


def engine_seed(run_seed: int, scenario: str, cell: int, rep: int) -> int:
    """A 31-bit seed for an engine's sampler, derived from the replication (Stan wants < 2**31)."""
    seq = np.random.SeedSequence(run_seed, spawn_key=(scenario_key(scenario), cell, _ENGINE, rep))
    return int(seq.generate_state(1)[0] >> 1)
