"""Harness speed (pytest-benchmark, `make bench-speed`): overhead against a bare loop calling the engine
on the same datasets (goal <= 5%), and throughput with 2 workers against 1 (goal >= 1.8x).

Engine: statsmodels MixedLM on varying_intercept (about 0.1-0.3 s a fit), 60 fits. Ratios are printed
and kept in the benchmark's extra_info, since absolute seconds depend on the machine's load."""

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
reps = 30
[[scenario]]
name = "varying_intercept"
cells = [1, 3]
[[engine]]
name = "mixedlm"
"""


def _bare_loop() -> float:
    sc, est = load_scenario("varying_intercept"), get_estimator("mixedlm")
    datasets = [dataset_for(sc, cell, rep, 11) for cell in (1, 3) for rep in range(30)]
    start = time.perf_counter()
    for ds in datasets:
        est.fit(ds)
    return time.perf_counter() - start


def _harness(tmp_path, workers: int, run_id: str) -> float:
    suite = tmp_path / "bench.toml"
    suite.write_text(SUITE)
    start = time.perf_counter()
    harness.run(str(suite), run_id=run_id, workers=workers, root=tmp_path / "results", progress=False)
    return time.perf_counter() - start


def test_harness_overhead_vs_bare_loop(benchmark, tmp_path):
    bare = _bare_loop()
    wall = benchmark.pedantic(_harness, args=(tmp_path, 1, "one"), rounds=1, iterations=1)
    overhead = wall / bare - 1
    benchmark.extra_info.update({"bare_s": bare, "harness_s": wall, "overhead": overhead})
    print(f"\nbare loop {bare:.1f} s, harness (1 worker, incl. process start and Parquet) {wall:.1f} s: "
          f"overhead {overhead:+.1%}")


def test_throughput_two_workers_vs_one(benchmark, tmp_path):
    one = _harness(tmp_path, 1, "w1")
    two = benchmark.pedantic(_harness, args=(tmp_path, 2, "w2"), rounds=1, iterations=1)
    benchmark.extra_info.update({"one_worker_s": one, "two_workers_s": two, "speedup": one / two})
    print(f"\n1 worker {one:.1f} s, 2 workers {two:.1f} s: speed-up x{one / two:.2f}")
