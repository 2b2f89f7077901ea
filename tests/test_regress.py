"""`hbench compare`: same seeds and same engine behaviour -> exit 0; a changed engine -> exit 1 with the
changed measures flagged; bad input -> exit 2. The slow test runs the quick suite against the committed
baseline results/baselines/quick/."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "HBENCH_ENGINES": "tests.doubles", "PYTHONPATH": str(ROOT)}
SUITE = """
name = "g"
seed = 8
reps = 25
[[scenario]]
name = "varying_intercept"
cells = [0]
[[engine]]
name = "ols-double"
settings = {{ shift = {shift}, t_rows = true }}
"""


def hbench(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "compare", *args], cwd=cwd, env=ENV, capture_output=True, text=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("regress")
    for run_id, shift, extra in (("base", 0.0, []), ("same", 0.0, []), ("changed", 5.0, []),
                                 ("seed9", 0.0, ["--seed", "9"])):
        (tmp / f"{run_id}.toml").write_text(SUITE.format(shift=shift))
        res = hbench(tmp, "run", f"{run_id}.toml", "--run-id", run_id, "--no-progress", "--workers", "2", *extra)
        assert res.returncode == 0, res.stderr[-2000:]
    (tmp / "empty.toml").write_text(SUITE.format(shift=0.0).replace('"varying_intercept"', '"funding_like"'))
    res = hbench(tmp, "run", "empty.toml", "--run-id", "empty", "--no-progress", "--reps", "2")  # ols: all skipped
    assert res.returncode == 0, res.stderr[-2000:]
    return tmp


def test_no_change_exits_0(runs):
    res = hbench(runs, "compare", "base", "same")
    assert res.returncode == 0, res.stdout + res.stderr
    out = json.loads((runs / "results" / "same" / "compare-base.json").read_text())
    assert out["flagged"] is False and len(out["parameters"]) > 0


def test_changed_engine_is_flagged_exit_1(runs):
    res = hbench(runs, "compare", "base", "changed", "--json", str(runs / "c.json"))
    assert res.returncode == 1
    out = json.loads((runs / "c.json").read_text())
    flagged = {(r["parameter"], r["measure"]) for r in out["parameters"] if r["flagged"]}
    assert ("b[x]", "bias") in flagged and not any(p == "sigma" for p, _ in flagged)  # sigma did not move
    intervals = {(r["parameter"], r["interval"], r["measure"]) for r in out["intervals"] if r["flagged"]}
    assert {("b[x]", "wald-z", "coverage"), ("b[x]", "wald-t", "coverage")} <= intervals  # per interval type


def test_run_directory_path_is_accepted(runs):
    res = hbench(runs, "compare", str(runs / "results" / "base"), "same")
    assert res.returncode == 0


@pytest.mark.parametrize("args", [["nope", "same"], ["base", "same", "--z", "0"]])
def test_bad_input_exit_2(runs, args):
    res = hbench(runs, "compare", *args)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("other, reason", [("seed9", "different seeds"), ("empty", "no measure in common")])
def test_runs_that_are_not_comparable_are_refused(runs, other, reason):
    """A flag between runs of different seeds (other datasets) or without shared measures means nothing:
    one line, exit 2, unless the user asks for it."""
    res = hbench(runs, "compare", "base", other)
    assert res.returncode == 2 and reason in res.stderr and len(res.stderr.strip().splitlines()) == 1
    forced = hbench(runs, "compare", "base", other, "--allow-different")
    assert forced.returncode in (0, 1) and "Traceback" not in forced.stderr


@pytest.mark.slow
def test_quick_suite_matches_committed_baseline(tmp_path):
    """Refresh the baseline after an intended change: see README, 'Regression tracking'."""
    baseline = ROOT / "results" / "baselines" / "quick"
    assert (baseline / "manifest.json").exists(), "no committed baseline"
    env = {k: v for k, v in ENV.items() if k != "HBENCH_ENGINES"}
    run = subprocess.run([sys.executable, "-m", "compare", "run", "quick", "--run-id", "now", "--no-progress",
                          "--results", str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    res = subprocess.run([sys.executable, "-m", "compare", "compare", str(baseline), "now", "--results",
                          str(tmp_path), "--runtime-ratio", "5"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-5000:]
