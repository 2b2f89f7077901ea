"""No orphans: when a run's main process dies, every process of the run (workers, and the processes their
fits start) ends within seconds, and `--resume` then completes the run.

The run's processes are found by a tag in their environment, which every descendant inherits (workers,
Dask workers, their reapers, and the `sleep` children of the child-double engine), so a process started
just before the kill is found too."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from tests.test_harness import ENV, hbench, on_reps, write_suite

# replication 3 of each cell runs a child for 60 s (a long R or Stan fit): the kill lands while those run, and
# on --resume they end at the suite's 5 s timeout
CHILD = f'[[engine]]\nname = "child-double"\nsettings = {{ slow_seeds = {on_reps(3)}, sleep = 60, short = 0.2 }}\n'
GRACE_S = 5.0  # the reaper checks twice a second; the rest is slack for a loaded 2-core machine


def tagged(tag: str) -> list[psutil.Process]:
    """Live processes (not zombies) whose environment carries the tag."""
    found = []
    for p in psutil.process_iter():
        try:
            if p.environ().get("HBENCH_TEST_TAG") == tag and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def cmdline(p: psutil.Process) -> list[str]:
    """The process's command line, or [] once it has ended or become a zombie (processes end while we look)."""
    try:
        return p.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return []


def start(tmp: Path, suite: Path, run_id: str, executor: str, tag: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "compare", "run", str(suite), "--run-id", run_id, "--no-progress",
                             "--workers", "2", "--executor", executor, "--results", str(tmp / "results")],
                            cwd=tmp, env={**ENV, "HBENCH_TEST_TAG": tag}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.parametrize("executor,sig", [("local", signal.SIGKILL), ("dask", signal.SIGKILL),
                                          ("local", signal.SIGTERM)])
def test_killing_the_main_process_leaves_no_process_of_the_run(tmp_path, executor, sig):
    suite = write_suite(tmp_path, reps=6, timeout=5, engines=CHILD)
    tag = uuid.uuid4().hex
    proc = start(tmp_path, suite, "k", executor, tag)
    parts = tmp_path / "results" / "k" / "parts"
    deadline = time.time() + 120
    while time.time() < deadline and not any(cmdline(p) == ["sleep", "60"] for p in tagged(tag)):
        time.sleep(0.1)
    assert any(cmdline(p) == ["sleep", "60"] for p in tagged(tag)), "a long fit's child process should be running"
    os.kill(proc.pid, sig)  # the main process only: its workers lead their own process groups
    proc.wait(timeout=30)
    deadline = time.time() + GRACE_S
    while time.time() < deadline and tagged(tag):
        time.sleep(0.1)
    left = tagged(tag)
    assert not left, f"still alive {GRACE_S:g} s after the main process died: {[(p.pid, cmdline(p)) for p in left]}"
    assert len(list(parts.glob("*.parquet"))) < 18, "the kill should land mid-run"
    res = hbench(tmp_path, "run", "--resume", "k", "--no-progress", "--workers", "2")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "complete, 18/18" in hbench(tmp_path, "status", "k").stdout
