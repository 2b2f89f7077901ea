"""Harness speed (pytest-benchmark, `make bench-speed`): overhead against a bare loop calling the engine
on the same datasets (goal <= 5%), and throughput with 2 workers against 1 (goal >= 1.8x).

Engine: statsmodels MixedLM on varying_intercept (about 0.05 s a fit: the hardest case for a harness,
whose cost is per task). A run pays a fixed start-up (spawning workers that import statsmodels) and then
a cost per task; both are separated by running two sizes (SMALL and LARGE replications) and taking the
difference. This VM's speed drifts by tens of percent within minutes, so the bare loop and the harness
are measured in alternating rounds and the median round is kept. Two bare loops are reported: the
engine alone on datasets simulated beforehand, and simulate-then-fit (what any loop has to do). Ratios
are printed and kept in extra_info: absolute seconds depend on load."""

import statistics
import time

import pytest
from threadpoolctl import threadpool_limits

from compare import harness
from compare.estimators import get_estimator
from compare.catalogue import load_scenario
from compare.simulate import dataset_for

pytestmark = pytest.mark.bench
SUITE = """
name = "bench"
seed = 11
reps = {reps}
[[scenario]]
name = "varying_intercept"
cells = [1, 3]
[[engine]]
name = "mixedlm"
"""
CELLS = (1, 3)
SMALL, LARGE, ROUNDS = 15, 60, 3


def _bare(reps: int) -> tuple[float, float]:
    """(seconds fitting pre-simulated datasets, seconds simulating them) for reps per cell, with one BLAS
    thread as in the harness's workers (two threads make these small fits ~15% slower here)."""
    sc, est = load_scenario("varying_intercept"), get_estimator("mixedlm")
    with threadpool_limits(1):
        start = time.perf_counter()
        datasets = [dataset_for(sc, cell, rep, 11) for cell in CELLS for rep in range(reps)]
        simulate = time.perf_counter() - start
        start = time.perf_counter()
        for ds in datasets:
            est.fit(ds.data, seed=ds.seed)
        return time.perf_counter() - start, simulate


def _harness(tmp_path, workers: int, reps: int) -> float:
    suite = tmp_path / f"bench{reps}.toml"
    suite.write_text(SUITE.format(reps=reps))
    run_id = f"w{workers}r{reps}-{time.perf_counter_ns()}"
    start = time.perf_counter()
    harness.run(str(suite), run_id=run_id, workers=workers, root=tmp_path / "results", progress=False)
    return time.perf_counter() - start


def _per_fit(small: float, large: float) -> float:
    return (large - small) / (len(CELLS) * (LARGE - SMALL))


def _rounds(tmp_path, workers: list[int]) -> dict[str, float]:
    """Median over alternating rounds of the marginal seconds per fit of each measurement."""
    seen: dict[str, list[float]] = {}
    for _ in range(ROUNDS):
        (fit_s, sim_s), (fit_l, sim_l) = _bare(SMALL), _bare(LARGE)
        seen.setdefault("bare_fit", []).append(_per_fit(fit_s, fit_l))
        seen.setdefault("bare_sim_fit", []).append(_per_fit(fit_s + sim_s, fit_l + sim_l))
        for w in workers:
            small, large = _harness(tmp_path, w, SMALL), _harness(tmp_path, w, LARGE)
            seen.setdefault(f"harness_{w}", []).append(_per_fit(small, large))
            seen.setdefault(f"startup_{w}", []).append(small - _per_fit(small, large) * len(CELLS) * SMALL)
    return {k: statistics.median(v) for k, v in seen.items()}


def test_harness_overhead_vs_bare_loop(benchmark, tmp_path):
    m = benchmark.pedantic(_rounds, args=(tmp_path, [1]), rounds=1, iterations=1)
    over_fit, over_sim = m["harness_1"] / m["bare_fit"] - 1, m["harness_1"] / m["bare_sim_fit"] - 1
    benchmark.extra_info.update({**m, "overhead_vs_fit": over_fit, "overhead_vs_simulate_fit": over_sim})
    print(f"\nper fit: bare fit {m['bare_fit'] * 1000:.0f} ms, bare simulate+fit {m['bare_sim_fit'] * 1000:.0f} ms, "
          f"harness (1 worker) {m['harness_1'] * 1000:.0f} ms: overhead {over_fit:+.1%} vs the fit alone, "
          f"{over_sim:+.1%} vs simulate+fit; fixed start-up {m['startup_1']:.1f} s")


def test_throughput_two_workers_vs_one(benchmark, tmp_path):
    m = benchmark.pedantic(_rounds, args=(tmp_path, [1, 2]), rounds=1, iterations=1)
    speedup = m["harness_1"] / m["harness_2"]
    benchmark.extra_info.update({**m, "speedup": speedup})
    print(f"\nper fit: 1 worker {m['harness_1'] * 1000:.0f} ms, 2 workers {m['harness_2'] * 1000:.0f} ms: "
          f"speed-up x{speedup:.2f} (start-up {m['startup_2']:.1f} s)")
