"""`--executor slurm` against a real SLURM on localhost (tests/slurm_local.py starts it as root), marked
`cluster` (`make test-cluster`): the workers are SLURM jobs, the results are those of a local run, and when the
run's main process dies its SLURM jobs and processes end. Skipped, with the reason, where SLURM cannot run."""

import os
import signal
import subprocess
import sys
import time
import uuid

import pandas as pd
import pytest

from compare.store import RunStore
from tests import slurm_local
from tests.test_harness import ENV, OLS, on_reps, table, write_suite
from tests.test_orphans import tagged

pytestmark = pytest.mark.cluster

CLUSTER = '[cluster]\ncores = 1\njobs = 2\nmemory = "1GB"\nwalltime = "00:30:00"\n'


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    yield from slurm_local.start(tmp_path_factory.mktemp("slurm"))


def run(tmp, slurm, *args, env_extra=None, **kw):
    return subprocess.run([sys.executable, "-m", "compare", "run", *args, "--no-progress",
                           "--results", str(tmp / "results")], capture_output=True, text=True, cwd=tmp,
                          env={**ENV, **slurm, **(env_extra or {})}, **kw)


def jobs(slurm) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i %j %T"], capture_output=True, text=True, env=slurm, check=True)
    return out.stdout.split("\n")[:-1]


def with_cluster(suite):
    suite.write_text(suite.read_text().replace("[[scenario]]", CLUSTER + "[[scenario]]", 1))
    return suite


def test_a_slurm_run_equals_a_local_run(tmp_path, slurm):
    engines = OLS + f'[[engine]]\nname = "failing-double"\nsettings = {{ fail_seeds = {on_reps(1)} }}\n'
    suite = with_cluster(write_suite(tmp_path, reps=3, engines=engines))
    local = run(tmp_path, slurm, str(suite), "--run-id", "local", "--workers", "2")
    assert local.returncode == 0, local.stderr[-2000:]
    res = run(tmp_path, slurm, str(suite), "--run-id", "slurm", "--executor", "slurm", timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    pd.testing.assert_frame_equal(table(tmp_path, "local"), table(tmp_path, "slurm"))
    session = RunStore("slurm", tmp_path / "results").manifest()["sessions"][-1]
    assert session["executor"] == "slurm" and session["cluster"]["jobs"] == 2 and session["workers"] == 2
    logs = list((tmp_path / "results" / "slurm" / "slurm-logs").glob("*.err"))
    assert logs, "the worker jobs' logs are kept in the run folder"
    deadline = time.time() + 30
    while time.time() < deadline and jobs(slurm):
        time.sleep(0.5)
    assert not jobs(slurm), "the worker jobs end with the run"


def test_killing_the_main_process_of_a_slurm_run_ends_its_jobs(tmp_path, slurm):
    """A lost client: its workers lose their scheduler and end (dask's death timeout), and SLURM with them."""
    engines = f'[[engine]]\nname = "child-double"\nsettings = {{ slow_seeds = {on_reps(1)}, sleep = 600 }}\n'
    suite = with_cluster(write_suite(tmp_path, reps=3, timeout=20, engines=engines))  # on resume: timeouts
    tag = uuid.uuid4().hex
    proc = subprocess.Popen([sys.executable, "-m", "compare", "run", str(suite), "--run-id", "k", "--executor",
                             "slurm", "--no-progress", "--results", str(tmp_path / "results")], cwd=tmp_path,
                            env={**ENV, **slurm, "HBENCH_TEST_TAG": tag}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not any(p.cmdline() == ["sleep", "600"] for p in tagged(tag)):
        time.sleep(0.2)
    assert any(p.cmdline() == ["sleep", "600"] for p in tagged(tag)), "a long fit should be running in a job"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    limit = time.time() + 2 * 30 + 30  # the workers' death timeout (30 s) twice, and slack
    while time.time() < limit and (tagged(tag) or jobs(slurm)):
        time.sleep(0.5)
    assert not tagged(tag), [p.cmdline() for p in tagged(tag)]
    assert not jobs(slurm)
    res = run(tmp_path, slurm, "--resume", "k", "--workers", "2")
    assert res.returncode == 0, res.stderr[-2000:]
    assert RunStore("k", tmp_path / "results").manifest()["status"] == "complete"


SAMPLERS = {"pymc", "stan", "rstanarm", "brms"}


@pytest.mark.slow
def test_the_quick_suite_through_slurm_equals_a_local_run(tmp_path, slurm):
    """Every shipped engine, two SLURM jobs of one core against two local workers: the samplers bit for bit
    (seeded, one BLAS thread everywhere), the frequentist engines to 1e-6 relative (lme4 moves by ~1e-8 when its
    R session fitted other replications first: its optimizer's tolerance)."""
    env = {k: v for k, v in slurm.items() if k != "HBENCH_ENGINES"}
    args = ["--no-progress", "--results", str(tmp_path / "results")]
    for run_id, extra in (("local", ["--workers", "2"]), ("slurm", ["--executor", "slurm", "--cores", "1",
                                                                    "--jobs", "2", "--memory", "3GB"])):
        res = subprocess.run([sys.executable, "-m", "compare", "run", "quick", "--run-id", run_id, *args, *extra],
                             capture_output=True, text=True, cwd=tmp_path, env=env)
        assert res.returncode == 0, res.stderr[-2000:]
    local, remote = (table(tmp_path, run_id).drop(columns=["details"]) for run_id in ("local", "slurm"))  # R's times
    sampled = local["engine"].isin(SAMPLERS)
    pd.testing.assert_frame_equal(local[sampled], remote[sampled])
    pd.testing.assert_frame_equal(local[~sampled], remote[~sampled], check_exact=False, rtol=1e-6)


def test_a_run_outlives_the_walltime_of_its_jobs(tmp_path, slurm):
    """Jobs of one minute for 9 fits of 8 s: each worker retires before its walltime (dask --lifetime), its running
    fit goes back to the queue and a new job takes over (adaptive scaling), so the run completes with no fit lost
    and equals a local run."""
    engines = '[[engine]]\nname = "slow-double"\nsettings = { sleep = 8 }\n'
    suite = write_suite(tmp_path, reps=3, engines=engines)
    suite.write_text(suite.read_text().replace(
        "[[scenario]]", '[cluster]\ncores = 1\njobs = 1\nmemory = "1GB"\nwalltime = "00:01:00"\n[[scenario]]', 1))
    local = run(tmp_path, slurm, str(suite), "--run-id", "local", "--workers", "2")
    assert local.returncode == 0, local.stderr[-2000:]
    res = run(tmp_path, slurm, str(suite), "--run-id", "slurm", "--executor", "slurm", timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    remote = table(tmp_path, "slurm")
    assert set(remote["status"]) == {"ok"}, remote.loc[remote["status"] != "ok", "error"].unique()
    pd.testing.assert_frame_equal(table(tmp_path, "local"), remote)
    logs = list((tmp_path / "results" / "slurm" / "slurm-logs").glob("*.err"))
    assert len(logs) >= 2, "72 s of fits need a second one-minute job"
