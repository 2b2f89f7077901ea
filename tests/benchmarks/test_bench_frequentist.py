"""Speed of the frequentist engines on the seed model y ~ x + (1 + x | g), n_j = 14: J = 20 (seed_slopes
cell 0) and J = 100 (the same spec with the grid overridden through a temporary TOML).

Each round fits a different replication (the same datasets for every engine), so optimiser luck
averages out. lme4 runs twice: as configured by default (profile intervals for SDs) and the bare fit
(profile=False), which is the like-for-like comparison with MixedLM. Timings are recorded, not asserted
(shared, noisy machine); ratios to lme4 go in benchmark.extra_info. Run with `make bench-speed`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import pytest

from compare.estimators import get_estimator
from compare.catalogue import SHIPPED, load_scenario
from compare.simulate import dataset_for

RUN_SEED = 2026
ROUNDS = {20: 6, 100: 2}
ENGINES = [("mixedlm", {}), ("mixedlm-ml", {}), ("mixedlm-robust", {}), ("lme4", {}),
           ("lme4", {"profile": False})]


@lru_cache(maxsize=None)
def _scenario(J: int, tmp: str):
    if J == 20:
        return load_scenario("seed_slopes")
    text = (SHIPPED / "seed_slopes.toml").read_text()
    text = re.sub(r"\[grid\].*", f'[grid]\n"layout.factors.g" = [{J}]\n', text, flags=re.S)
    path = Path(tmp) / f"seed_slopes_J{J}.toml"
    path.write_text(text)
    return load_scenario(path)


@pytest.mark.bench
@pytest.mark.parametrize("J", [20, 100])
@pytest.mark.parametrize("engine, settings", ENGINES, ids=["mixedlm", "mixedlm-ml", "mixedlm-robust", "lme4",
                                                            "lme4-noprofile"])
def test_frequentist_engine_speed(benchmark, tmp_path_factory, engine, settings, J):
    est = get_estimator(engine, settings)
    if not est.available():
        pytest.skip(est.available().reason)
    scenario = _scenario(J, str(tmp_path_factory.getbasetemp()))
    data = [dataset_for(scenario, 0, rep, RUN_SEED).data for rep in range(ROUNDS[J] + 1)]
    assert data[0].design.blocks[0].n_levels == J and data[0].design.n == 14 * J
    datasets = iter(data)
    est.fit(next(datasets), seed=0)  # warm-up: starts R for lme4, imports for statsmodels
    fits = []
    benchmark.pedantic(lambda: fits.append(est.fit(next(datasets), seed=0)), rounds=ROUNDS[J], iterations=1)
    benchmark.extra_info.update({"J": J, "converged": sum(f.converged for f in fits),
                                 "singular": sum(bool(f.singular) for f in fits), "n": len(fits),
                                 "wall_s_mean": sum(f.wall_s for f in fits) / len(fits)})
