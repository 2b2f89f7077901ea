"""CPU seconds per fit (issue 23): the clock counts this process, children that ended, and live children (a
process pool that outlives the fit, as httpstan's does); attempt() stores it as FitResult.cpu_s, and the store
and metrics carry it."""

import multiprocessing as mp
import subprocess
import sys
import time

import numpy as np
import pytest

from compare.attempt import attempt
from compare.cputime import CpuClock
from compare.data import Dataset
from compare.estimators import get_estimator
from compare.metrics import fit_summary
from compare.store import SCHEMA

BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < {s}: pass\n"


def _burn(seconds: float) -> None:
    t = time.process_time()
    while time.process_time() - t < seconds:
        pass


def test_own_cpu_is_counted_and_sleep_is_not():
    clock = CpuClock()
    _burn(0.3)
    time.sleep(0.3)
    assert 0.29 <= clock.elapsed() < 0.5  # the sleep's wall time is not CPU time


def test_a_child_that_ended_is_counted():
    clock = CpuClock()
    subprocess.run([sys.executable, "-c", BURN.format(s=0.4)], check=True)  # a CmdStan or Rscript stand-in
    assert clock.elapsed() >= 0.38


def test_work_of_a_live_pool_worker_is_counted_but_not_its_past():
    with mp.get_context("fork").Pool(1) as pool:
        pool.apply(_burn, (0.3,))  # spent before the clock starts: not this fit's
        clock = CpuClock()
        pool.apply(_burn, (0.4,))
        spent = clock.elapsed()
    assert 0.38 <= spent < 0.65


def test_attempt_records_cpu_seconds_and_the_store_has_the_column():
    from compare.catalogue import load_scenario
    from compare.simulate import simulate

    sc = load_scenario("varying_intercept")
    ds: Dataset = simulate(sc.cell(0), np.random.default_rng(3))
    outcome = attempt(get_estimator("mixedlm"), ds.data, seed=3)
    assert outcome.result is not None and np.isfinite(outcome.result.cpu_s) and outcome.result.cpu_s > 0
    assert outcome.cpu_s == outcome.result.cpu_s
    assert outcome.result.fit_fields()["cpu_s"] == outcome.result.cpu_s and SCHEMA["cpu_s"] == "float64"


def test_fit_summary_gives_cpu_quantiles_beside_wall():
    import pandas as pd

    rows = pd.DataFrame({"scenario": "s", "cell": 0, "rep": range(5), "engine": "e", "status": "ok",
                         "parameter": "b[x]", "wall_s": [1.0, 2, 3, 4, 5], "cpu_s": [0.5, 1, 1.5, 2, 2.5],
                         "compile_s": 0.0, "compile_count": 0, "singular": False, "corr_at_bound": False,
                         "var_at_zero": False, "converged": True, "loglik": np.nan, "criterion": None,
                         "divergences": np.nan, "rhat_max": np.nan, "ess_bulk_per_s": np.nan})
    fits = fit_summary(rows).iloc[0]
    assert fits["cpu_s_median"] == pytest.approx(1.5) and fits["wall_s_median"] == pytest.approx(3.0)
    assert fits["cpu_s_q10"] < fits["cpu_s_median"] < fits["cpu_s_q90"]


WORKER = """
import multiprocessing as mp, subprocess, sys, time
from compare.cputime import CpuClock, _childless
from compare.lifeline import tie_to_parent
from tests.test_cputime import BURN, _burn
tie_to_parent()  # as a pool worker: leads its group, with a reaper in a group of its own
assert _childless(), "a worker with only its reaper has no child in its group"
clock = CpuClock()
subprocess.run([sys.executable, "-c", BURN.format(s=0.3)], check=True)
ended = clock.elapsed()
with mp.get_context("fork").Pool(1) as pool:
    assert not _childless()
    clock = CpuClock()
    pool.apply(_burn, (0.4,))
    live = clock.elapsed()
print(ended, live)
"""


def test_a_worker_leading_its_group_skips_the_scan_only_while_it_has_no_child():
    """The fast path (`_childless`, no /proc scan) in a process tied as a worker is: children that ended and a live
    pool's work are still counted."""
    out = subprocess.run([sys.executable, "-c", WORKER], capture_output=True, text=True, check=True)
    ended, live = map(float, out.stdout.split())
    assert ended >= 0.28 and 0.38 <= live < 0.65
