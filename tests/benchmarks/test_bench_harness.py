"""Harness speed (pytest-benchmark, `make bench-speed`): overhead against a bare loop calling the engine
on the same datasets (goal <= 5%), and throughput with 2 workers against 1 (goal >= 1.8x).

Engine: statsmodels MixedLM on varying_intercept (about 0.05-0.3 s a fit). A run pays a fixed start-up
(spawning workers that import statsmodels and the engines) and then a cost per task; both are measured by
running two sizes (30 and 120 fits) and taking the difference, so the per-fit overhead is not hidden by,
or blamed on, the start-up. Ratios are printed and kept in extra_info: absolute seconds depend on load."""

import time

import pytest

from compare import harness
from compare.estimators import get_estimator
from compare.simulate import dataset_for
from compare.spec import load_scenario

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
SMALL, LARGE = 15, 60


def _bare(reps: int) -> float:
    sc, est = load_scenario("varying_intercept"), get_estimator("mixedlm")
    datasets = [dataset_for(sc, cell, rep, 11) for cell in (1, 3) for rep in range(reps)]
    start = time.perf_counter()
    for ds in datasets:
        est.fit(ds)
    return time.perf_counter() - start


def _harness(tmp_path, workers: int, reps: int) -> float:
    suite = tmp_path / f"bench{reps}.toml"
    suite.write_text(SUITE.format(reps=reps))
    start = time.perf_counter()
    harness.run(str(suite), run_id=f"w{workers}r{reps}", workers=workers, root=tmp_path / "results", progress=False)
    return time.perf_counter() - start


def _marginal(tmp_path, workers: int) -> tuple[float, float]:
    """(seconds per extra fit, fixed start-up seconds) of a harness run."""
    small, large = _harness(tmp_path, workers, SMALL), _harness(tmp_path, workers, LARGE)
    per_fit = (large - small) / (2 * (LARGE - SMALL))
    return per_fit, small - per_fit * 2 * SMALL


def test_harness_overhead_vs_bare_loop(benchmark, tmp_path):
    bare = (_bare(LARGE) - _bare(SMALL)) / (2 * (LARGE - SMALL))
    per_fit, startup = benchmark.pedantic(_marginal, args=(tmp_path, 1), rounds=1, iterations=1)
    overhead = per_fit / bare - 1
    benchmark.extra_info.update({"bare_s_per_fit": bare, "harness_s_per_fit": per_fit, "startup_s": startup,
                                 "overhead": overhead})
    print(f"\nper fit: bare {bare * 1000:.0f} ms, harness {per_fit * 1000:.0f} ms (overhead {overhead:+.1%}); "
          f"fixed start-up {startup:.1f} s")


def test_throughput_two_workers_vs_one(benchmark, tmp_path):
    one, _ = _marginal(tmp_path, 1)
    two, startup = benchmark.pedantic(_marginal, args=(tmp_path, 2), rounds=1, iterations=1)
    benchmark.extra_info.update({"s_per_fit_1": one, "s_per_fit_2": two, "speedup": one / two})
    print(f"\nper fit: 1 worker {one * 1000:.0f} ms, 2 workers {two * 1000:.0f} ms: speed-up x{one / two:.2f} "
          f"(start-up {startup:.1f} s)")
