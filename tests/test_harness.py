"""The harness end to end, with test-double engines (tests/doubles.py, registered via HBENCH_ENGINES).

Checks: identical results whichever executor and worker count; resume after SIGKILL equals an
uninterrupted run; failing, crashing and hanging engines become failure rows and the run completes;
the fail-safe stops a run; bad suites are one-line errors with exit 2 and write nothing."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from compare.catalogue import load_scenario
from compare.store import TIMING_COLUMNS, RunStore
from tests.doubles import seeds_of

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "HBENCH_ENGINES": "tests.doubles", "PYTHONPATH": str(ROOT)}
os.environ["HBENCH_ENGINES"] = "tests.doubles"

SUITE = """
name = "t"
seed = 5
reps = {reps}
timeout = {timeout}
[[scenario]]
name = "varying_intercept"
cells = [0, 4]
[[scenario]]
name = "seed_slopes"
cells = [0]
{engines}
"""
OLS = '[[engine]]\nname = "ols-double"\n'
CELLS = [("varying_intercept", 0), ("varying_intercept", 4), ("seed_slopes", 0)]  # the suite's cells, seed 5


def on_reps(*reps: int) -> str:
    """A TOML list of the engine seeds of these replications in every cell of the suite: engines never see
    the replication, so the test doubles pick their victims by seed."""
    return str(seeds_of(5, CELLS, list(reps)))


def write_suite(tmp: Path, reps=3, timeout=30, engines=OLS, name="s.toml") -> Path:
    path = tmp / name
    path.write_text(SUITE.format(reps=reps, timeout=timeout, engines=engines))
    return path


def hbench(tmp: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "compare", *args, "--results", str(tmp / "results")],
                          capture_output=True, text=True, cwd=tmp, env=ENV, **kw)


def table(tmp: Path, run_id: str) -> pd.DataFrame:
    return RunStore(run_id, tmp / "results").load().drop(columns=TIMING_COLUMNS)


def kill_mid_run(tmp: Path, suite: Path, run_id: str, after_parts: int, wait_s: float,
                 first: tuple[str, ...] = (), env: dict | None = None) -> int:
    """Start `hbench [first...] run` (2 workers), SIGKILL its whole process group once `after_parts` parts are
    written; returns how many parts survived."""
    proc = subprocess.Popen([sys.executable, "-m", "compare", *first, "run", str(suite), "--run-id", run_id,
                             "--no-progress", "--workers", "2", "--results", str(tmp / "results")], cwd=tmp,
                            env=env or ENV, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    parts = tmp / "results" / run_id / "parts"
    deadline = time.time() + wait_s
    while time.time() < deadline and len(list(parts.glob("*.parquet"))) < after_parts:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return len(list(parts.glob("*.parquet")))


def test_same_results_whatever_the_executor_and_worker_count(tmp_path):
    suite = write_suite(tmp_path, engines=OLS + f'[[engine]]\nname = "failing-double"\nsettings = {{ fail_seeds = {on_reps(1)} }}\n')
    for run_id, extra in (("one", ["--workers", "1"]), ("two", ["--workers", "2"]),
                          ("dask", ["--workers", "2", "--executor", "dask"])):
        res = hbench(tmp_path, "run", str(suite), "--run-id", run_id, "--no-progress", *extra)
        assert res.returncode == 0, res.stderr[-2000:]
    one = table(tmp_path, "one")
    assert len(one[one["status"] == "ok"]) > 0 and (one["status"] == "failed").sum() == 3
    pd.testing.assert_frame_equal(one, table(tmp_path, "two"))
    pd.testing.assert_frame_equal(one, table(tmp_path, "dask"))


def test_failures_crashes_and_timeouts_become_rows_and_the_run_completes(tmp_path):
    engines = (OLS + f'[[engine]]\nname = "crashing-double"\nsettings = {{ crash_seeds = {on_reps(1)} }}\n'
               f'[[engine]]\nname = "sleepy-double"\nsettings = {{ slow_seeds = {on_reps(2)}, sleep = 60 }}\n')
    suite = write_suite(tmp_path, reps=3, timeout=4, engines=engines)
    res = hbench(tmp_path, "run", str(suite), "--run-id", "r", "--no-progress", "--workers", "2")
    assert res.returncode == 0, res.stderr[-2000:]
    t = RunStore("r", tmp_path / "results").load()
    fits = t.drop_duplicates(["scenario", "cell", "rep", "engine"])
    status = fits.groupby(["engine", "status"]).size().to_dict()
    assert status == {("ols-double", "ok"): 9, ("crashing-double", "ok"): 6, ("crashing-double", "crashed"): 3,
                      ("sleepy-double", "ok"): 6, ("sleepy-double", "timeout"): 3}
    crashed = fits[fits["status"] == "crashed"]
    assert (crashed["rep"] == 1).all() and crashed["error"].str.contains("died").all()
    assert crashed["engine_seed"].notna().all()  # every failure keeps the seed that reproduces it
    # the engines after a crashed one in the same task still ran, on the replacement worker
    assert ((fits["rep"] == 1) & (fits["engine"] == "sleepy-double") & (fits["status"] == "ok")).sum() == 3


def test_resume_after_sigkill_equals_an_uninterrupted_run(tmp_path):
    engines = '[[engine]]\nname = "slow-double"\nsettings = { sleep = 0.4 }\n'
    suite = write_suite(tmp_path, reps=6, engines=engines)
    res = hbench(tmp_path, "run", str(suite), "--run-id", "full", "--no-progress", "--workers", "2")
    assert res.returncode == 0, res.stderr[-2000:]
    done = kill_mid_run(tmp_path, suite, "killed", after_parts=4, wait_s=120)
    assert 4 <= done < 18, "the kill should land mid-run"
    again = hbench(tmp_path, "run", str(suite), "--run-id", "killed", "--no-progress")
    assert again.returncode == 2 and "already exists" in again.stderr  # never two runs in one directory
    res = hbench(tmp_path, "run", "--resume", "killed", "--no-progress", "--workers", "2")
    assert res.returncode == 0, res.stderr[-2000:]
    pd.testing.assert_frame_equal(table(tmp_path, "full"), table(tmp_path, "killed"))
    status = hbench(tmp_path, "status", "killed")
    assert "complete, 18/18" in status.stdout


def test_failsafe_stops_the_run(tmp_path):
    engines = OLS + '[[engine]]\nname = "failing-double"\n'
    suite = write_suite(tmp_path, reps=20, engines=engines)
    text = suite.read_text().replace('timeout = 30', 'timeout = 30\nfailsafe = { max_failure_rate = 0.5, min_fits = 4 }')
    suite.write_text(text)
    res = hbench(tmp_path, "run", str(suite), "--run-id", "fs", "--no-progress", "--workers", "1")
    assert res.returncode == 1
    assert "fail-safe" in res.stderr and "failing-double" in res.stderr
    done = len(list((tmp_path / "results" / "fs" / "parts").glob("*.parquet")))
    assert 4 <= done < 60  # stopped early, results so far kept


@pytest.mark.parametrize("edit,message", [
    (('name = "varying_intercept"', 'name = "no_such_scenario"'), "unknown scenario"),
    (('name = "ols-double"', 'name = "no-such-engine"'), "unknown engine"),
    (("reps = 3", "reps = 0"), "reps"),
    (("reps = 3", "reps = 3\nrepz = 1"), "repz"),
    (("cells = [0, 4]", "cells = [0, 99]"), "cells"),
    (('name = "ols-double"', 'name = "ols-double"\nsettings = { level = 0.9 }'), "settings.level"),
    (('name = "ols-double"', 'name = "ols-double"\nsettings = { shfit = 1.0 }'), "settings.shfit': unknown setting"),
    (('name = "ols-double"', 'name = "ols-double"\nsettings = { shift = "1" }'), "settings.shift': '1' must be a number"),
    (("reps = 3", "reps = 3\nlevel = 95.0"), "level"),
    (('name = "ols-double"', 'name = "ols-double"\nonly = ["varying_intercep"]'), "'varying_intercep' is not a scenario"),
    (('name = "ols-double"', 'name = "ols-double"\nonly = "varying_intercept"'), "field 'engine[0].only': 'varying_intercept' must be a list"),
    (("cells = [0, 4]", "cells = [true]"), "field 'scenario[0].cells[0]': True must be a whole number"),
    (("cells = [0, 4]", "cells = [0, 0]"), "lists a cell twice"),
    (('name = "seed_slopes"', 'name = "varying_intercept"'), "'varying_intercept' is listed twice"),
    (("seed = 5", "seed = 9223372036854775808"), "9223372036854775808 is outside [0, 9223372036854775807]"),
    (("seed = 5", "seed = -1"), "seed"),
    (('[[engine]]\nname = "ols-double"', '[[engine]]\nname = "ols-double"\n[[engine]]\nname = "ols-double"'),
     "'ols-double' is listed twice: give each a `label`"),
    (("reps = 3", "reps = 3\nrepz = 1\nlevel = 2.0"), "2 problems: field 'repz'"),
])
def test_bad_suite_is_one_line_exit_2_and_writes_nothing(tmp_path, edit, message):
    suite = write_suite(tmp_path)
    suite.write_text(suite.read_text().replace(*edit))
    res = hbench(tmp_path, "run", str(suite), "--run-id", "bad", "--no-progress")
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1 and message in res.stderr
    assert not (tmp_path / "results" / "bad").exists()


def test_suite_level_reaches_every_engine(tmp_path):
    """`level = 0.5` in a suite: stored intervals are estimate -/+ z(0.75) SE, and the manifest says 0.5."""
    suite = write_suite(tmp_path, reps=1)
    suite.write_text(suite.read_text().replace("reps = 1", "reps = 1\nlevel = 0.5"))
    assert hbench(tmp_path, "run", str(suite), "--run-id", "lv", "--no-progress").returncode == 0
    b = table(tmp_path, "lv").query("parameter.str.startswith('b[')")
    assert len(b) > 0
    assert ((b["upper"] - b["lower"]) / b["se"]).to_numpy() == pytest.approx(2 * 0.6744897501960817, rel=1e-9)
    assert RunStore("lv", tmp_path / "results").manifest()["level"] == 0.5


def test_reps_flag_must_be_positive(tmp_path):
    res = hbench(tmp_path, "run", str(write_suite(tmp_path)), "--reps", "0", "--no-progress")
    assert res.returncode == 2 and "--reps" in res.stderr


def test_resume_refuses_a_changed_scenario_and_options_it_would_ignore(tmp_path):
    """A run is one version of its specs: editing a scenario between the start and --resume is refused with
    one line naming it, as are a SUITE or --seed given with --resume (they would be ignored) and a --reps
    below the run's (it only adds replications)."""
    mine = tmp_path / "mine"
    mine.mkdir()
    spec = (ROOT / "compare" / "scenarios" / "varying_intercept.toml").read_text()
    (mine / "vi_copy.toml").write_text(spec.replace('name = "varying_intercept"', 'name = "vi_copy"'))
    suite = tmp_path / "s.toml"
    suite.write_text('name = "v"\nseed = 2\nreps = 2\n[[scenario]]\nname = "vi_copy"\ncells = [0]\n' + OLS)
    scen = ["--scenarios", str(mine)]
    res = subprocess.run([sys.executable, "-m", "compare", *scen, "run", str(suite), "--run-id", "v", "--no-progress",
                          "--results", str(tmp_path / "results")], capture_output=True, text=True, cwd=tmp_path, env=ENV)
    assert res.returncode == 0, res.stderr[-2000:]
    for extra, word in ((["--reps", "1"], "never drops"), (["--seed", "9"], "--seed"), ([str(suite)], "SUITE")):
        again = hbench(tmp_path, *scen, "run", *extra, "--resume", "v", "--no-progress")
        assert again.returncode == 2 and word in again.stderr and len(again.stderr.strip().splitlines()) == 1
    assert hbench(tmp_path, *scen, "run", "--resume", "v", "--no-progress").returncode == 0  # unchanged: fine
    before = sorted(p.read_bytes() for p in (tmp_path / "results" / "v" / "parts").glob("*.parquet"))
    (mine / "vi_copy.toml").write_text(spec.replace('name = "varying_intercept"', 'name = "vi_copy"') + "\n# edited\n")
    refused = hbench(tmp_path, *scen, "run", "--resume", "v", "--no-progress")
    assert refused.returncode == 2 and "scenario vi_copy changed" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    after = sorted(p.read_bytes() for p in (tmp_path / "results" / "v" / "parts").glob("*.parquet"))
    assert after == before  # nothing written or lost


NEGATIVE_TRIALS = """
name = "shaky_trials"
formula = "s | trials(n) ~ x + (1 | g)"
family = "binomial"
layout = { factors = { g = 10 }, size = 4 }
covariates = { x = { dist = "normal", mean = 0, sd = 1 } }
trials = { dist = "normal", mean = 12, sd = 5 }
truth = { b = { Intercept = -0.5, x = 0.3 }, sd = { g = { Intercept = 0.5 } } }
"""


def test_a_replication_that_cannot_be_simulated_becomes_failure_rows(tmp_path):
    """Trials drawn below zero in some replications: those become failure rows (with the seed and the error)
    for every engine of the task, the other replications are fitted, and the run completes."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "shaky_trials.toml").write_text(NEGATIVE_TRIALS)
    suite = tmp_path / "s.toml"
    suite.write_text('name = "n"\nseed = 1\nreps = 12\nfailsafe = { max_failure_rate = 0.9 }\n'
                     '[[scenario]]\nname = "shaky_trials"\n[[engine]]\nname = "bayesmixedglm-map"\n')
    res = subprocess.run([sys.executable, "-m", "compare", "--scenarios", str(mine), "run", str(suite), "--run-id", "n",
                          "--no-progress", "--workers", "1", "--results", str(tmp_path / "results")],
                         capture_output=True, text=True, cwd=tmp_path, env=ENV)
    assert res.returncode == 0, res.stderr[-2000:]
    fits = RunStore("n", tmp_path / "results").load().drop_duplicates(["rep", "engine"])
    failed = fits[fits["status"] == "failed"]
    assert 0 < len(failed) < 12 and (fits["status"] == "ok").sum() == 12 - len(failed)
    assert failed["error"].str.startswith("simulation failed").all()
    assert failed["error"].str.contains("negative number of trials").all()
    assert failed["engine_seed"].notna().all() and failed["dataset_hash"].isna().all()


def test_one_engine_twice_under_two_labels(tmp_path):
    """The same engine with two settings, each under its own label: both fitted on the same data, and every
    table keys on the label."""
    engines = ('[[engine]]\nname = "ols-double"\n[[engine]]\nname = "ols-double"\nlabel = "ols-shifted"\n'
               'settings = { shift = 1.0 }\n')
    suite = write_suite(tmp_path, reps=2, engines=engines)
    assert hbench(tmp_path, "run", str(suite), "--run-id", "lab", "--no-progress").returncode == 0
    t = table(tmp_path, "lab")
    b = t[t["parameter"] == "b[x]"].pivot_table(index=["scenario", "cell", "rep"], columns="engine", values="estimate")
    assert list(b.columns) == ["ols-double", "ols-shifted"] and len(b) == 6
    assert (b["ols-shifted"] - b["ols-double"]).to_numpy() == pytest.approx(1.0)
    assert t.groupby(["scenario", "cell", "rep"])["dataset_hash"].nunique().eq(1).all()  # the same data for both


def test_sbc_ranks_are_recorded_on_prior_dgp_cells_only(tmp_path):
    """Ranks of the truth among posterior draws are uniform only when the truth comes from the prior; on a
    fixed-DGP cell they would be read as a failed calibration, so they are not stored there."""
    suite = tmp_path / "sbc.toml"
    suite.write_text('name = "sbc"\nseed = 5\nreps = 2\n[[scenario]]\nname = "seed_slopes"\ncells = [0, 3]\n'
                     '[[engine]]\nname = "ols-double"\nsettings = { draws = true }\n')
    assert hbench(tmp_path, "run", str(suite), "--run-id", "sbc", "--no-progress").returncode == 0
    t = table(tmp_path, "sbc")
    b = t[t["parameter"].str.startswith("b[")]
    assert load_scenario("seed_slopes").cell(3).dgp == "prior" and load_scenario("seed_slopes").cell(0).dgp == "fixed"
    assert b.loc[b["cell"] == 3, "sbc_rank"].notna().all() and (b.loc[b["cell"] == 3, "sbc_draws"] == 99).all()
    assert b.loc[b["cell"] == 0, "sbc_rank"].isna().all()


SAMPLERS = """
name = "kill"
seed = 11
reps = 3
[[scenario]]
name = "seed_slopes"
cells = [0]
[[scenario]]
name = "funding_like"
cells = [0]
[[engine]]
name = "pymc"
settings = { chains = 2, warmup = 200, draws = 200 }
[[engine]]
name = "stan"
settings = { chains = 2, warmup = 200, draws = 200 }
"""


@pytest.mark.slow
def test_kill_9_and_resume_equals_an_uninterrupted_run_with_both_samplers(tmp_path):
    """SIGKILL mid-run, then --resume: bit for bit the same draws' summaries as an uninterrupted run (timings
    aside), for pymc and stan; the resumed workers compile their models from other replications than the
    uninterrupted run's did, which must not matter."""
    suite = tmp_path / "k.toml"
    suite.write_text(SAMPLERS)
    args = ["--no-progress", "--workers", "2"]
    assert hbench(tmp_path, "run", str(suite), "--run-id", "full", *args).returncode == 0
    assert 2 <= kill_mid_run(tmp_path, suite, "killed", after_parts=2, wait_s=900) < 6, "the kill should land mid-run"
    res = hbench(tmp_path, "run", "--resume", "killed", *args)
    assert res.returncode == 0, res.stderr[-2000:]
    pd.testing.assert_frame_equal(table(tmp_path, "full"), table(tmp_path, "killed"))


def test_scenario_priors_a_sampler_cannot_take_are_refused_before_anything_runs(tmp_path):
    """A sampler on a dgp = "prior" cell fits with the scenario's own priors; a prior family neither sampler
    takes (a discrete uniform_int on an SD) is one line naming the field, and no run folder appears."""
    mine = tmp_path / "mine"
    mine.mkdir()
    spec = (ROOT / "compare" / "scenarios" / "seed_slopes.toml").read_text()
    spec = spec.replace('name = "seed_slopes"', 'name = "odd_priors"').replace(
        'x = { dist = "halfnormal", sd = 0.3 }', 'x = { dist = "uniform_int", low = 1, high = 2 }')
    (mine / "odd_priors.toml").write_text(spec)
    suite = tmp_path / "s.toml"
    suite.write_text('name = "p"\n[[scenario]]\nname = "odd_priors"\ncells = [3]\n[[engine]]\nname = "pymc"\n')
    res = subprocess.run([sys.executable, "-m", "compare", "--scenarios", str(mine), "run", str(suite), "--run-id", "p",
                          "--no-progress", "--results", str(tmp_path / "results")], capture_output=True, text=True,
                         cwd=tmp_path, env=ENV)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "priors.sd.g.x" in res.stderr and "uniform_int" in res.stderr and "cell 3" in res.stderr
    assert not (tmp_path / "results" / "p").exists()
    bad = suite.read_text().replace('name = "pymc"', 'name = "pymc"\nsettings = { priors = "scenari" }')
    suite.write_text(bad)
    res = hbench(tmp_path, "--scenarios", str(mine), "run", str(suite), "--run-id", "p", "--no-progress")
    assert res.returncode == 2 and "priors" in res.stderr


GENERATED = """
name = "mygen"
generator = "mygen:two_level"
formula = "y ~ x + (1 | g)"
family = "gaussian"
[params]
groups = 12
size = 6
b0 = 1.0
b1 = 0.5
tau = 0.8
sigma = 1.0
[grid]
"params.groups" = [12, 30]
"""


def _generator_folder(tmp: Path) -> tuple[Path, dict]:
    """A scenario folder naming a generator module of a user's own (tests/generators.py copied as mygen.py into
    a folder of its own on PYTHONPATH, as a user would have it)."""
    mine, code = tmp / "mine", tmp / "code"
    mine.mkdir()
    code.mkdir()
    (mine / "mygen.toml").write_text(GENERATED)
    (code / "mygen.py").write_text((ROOT / "tests" / "generators.py").read_text())
    return mine, {**ENV, "PYTHONPATH": os.pathsep.join([str(ROOT), str(code)])}


def test_a_generator_scenario_runs_a_suite_end_to_end_and_resumes_after_sigkill(tmp_path):
    """A scenario made by `generator = "mygen:two_level"`: a suite runs on it, kill -9 plus --resume equals an
    uninterrupted run, the truth reaches the results (coverage computed), metrics and the report read it,
    compare against itself flags nothing, and --resume refuses once the generator's source changed."""
    mine, env = _generator_folder(tmp_path)
    suite = tmp_path / "g.toml"
    suite.write_text('name = "g"\nseed = 3\nreps = 8\n[[scenario]]\nname = "mygen"\n'
                     '[[engine]]\nname = "slow-double"\nsettings = { sleep = 0.4 }\n')
    scen = ["--scenarios", str(mine)]

    def run(*args):
        return subprocess.run([sys.executable, "-m", "compare", *scen, *args, "--results", str(tmp_path / "results")],
                              capture_output=True, text=True, cwd=tmp_path, env=env)

    res = run("run", str(suite), "--run-id", "full", "--no-progress", "--workers", "2")
    assert res.returncode == 0, res.stderr[-2000:]
    survived = kill_mid_run(tmp_path, suite, "killed", after_parts=4, wait_s=120, first=tuple(scen), env=env)
    assert 4 <= survived < 16, "the kill should land mid-run"
    res = run("run", "--resume", "killed", "--no-progress", "--workers", "2")
    assert res.returncode == 0, res.stderr[-2000:]
    full = table(tmp_path, "full")
    pd.testing.assert_frame_equal(full, table(tmp_path, "killed"))
    bx = full[full["parameter"] == "b[x]"]
    assert len(bx) == 16 and (bx["true"] == 0.5).all() and bx["covered"].notna().all()
    assert full.groupby(["cell", "rep"])["dataset_hash"].nunique().eq(1).all()
    assert full.groupby("cell")["dataset_hash"].nunique().eq(8).all()  # each replication its own data
    assert run("metrics", "full").returncode == 0
    rep = run("report", "full", "--out", str(tmp_path / "reports"))
    assert rep.returncode == 0, rep.stderr[-2000:]
    cmp = run("compare", "full", "killed")
    assert cmp.returncode == 0, cmp.stderr[-2000:]
    code = tmp_path / "code" / "mygen.py"
    code.write_text(code.read_text().replace("b0 + b1 * x", "b0 + b1 * x + 0.0"))
    refused = run("run", "--resume", "killed", "--no-progress")
    assert refused.returncode == 2 and "generator mygen:two_level of scenario mygen changed" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


CMDSTAN_SUITE = """
name = "kill-cmdstan"
seed = 13
reps = 4
[[scenario]]
name = "seed_slopes"
cells = [0]
[[scenario]]
name = "funding_like"
cells = [0]
[[engine]]
name = "stan"
settings = { backend = "cmdstanpy", chains = 2, warmup = 150, draws = 150 }
"""


def test_kill_9_and_resume_with_the_cmdstan_backend_is_bit_for_bit(tmp_path):
    """The stan engine on CmdStan (gaussian and binomial cells): SIGKILL mid-run, then --resume, equals an
    uninterrupted run bit for bit (timings aside). CmdStan's output is read at 18 significant digits, and a
    seed fixes its chains (seed + chain ids), so a replication refitted by another worker is the same fit."""
    from compare.estimators.stan import cmdstan_path

    if cmdstan_path() is None:
        if os.environ.get("HBENCH_CMDSTAN_SRC"):
            pytest.fail("set-up was to build CmdStan (HBENCH_CMDSTAN_SRC is set) but none is found")
        pytest.skip("no CmdStan here")
    suite = tmp_path / "k.toml"
    suite.write_text(CMDSTAN_SUITE)
    args = ["--no-progress", "--workers", "2"]
    assert hbench(tmp_path, "run", str(suite), "--run-id", "full", *args).returncode == 0
    full = table(tmp_path, "full")
    assert set(full["status"]) == {"ok"} and full["notes"].str.contains("backend: CmdStan").all()
    assert 2 <= kill_mid_run(tmp_path, suite, "killed", after_parts=2, wait_s=900) < 8, "the kill should land mid-run"
    res = hbench(tmp_path, "run", "--resume", "killed", *args)
    assert res.returncode == 0, res.stderr[-2000:]
    pd.testing.assert_frame_equal(full, table(tmp_path, "killed"))


def test_more_replications_on_resume_equal_a_run_started_with_them(tmp_path):
    """`--resume ID --reps 100` on a 50-replication run: the 50 stored tasks are kept as they are (not one
    part rewritten), the 50 new ones are those of replications 50..99, and the whole equals a run started
    with 100 replications (the seeds are addressed by replication); the manifest records the extension."""
    suite = tmp_path / "x.toml"
    suite.write_text('name = "x"\nseed = 3\nreps = 50\n[[scenario]]\nname = "varying_intercept"\ncells = [0]\n'
                     + OLS + f'[[engine]]\nname = "failing-double"\nsettings = {{ fail_seeds = '
                     f'{seeds_of(3, [("varying_intercept", 0)], [7, 70])} }}\n')
    args = ["--no-progress", "--workers", "2"]
    assert hbench(tmp_path, "run", str(suite), "--run-id", "hundred", "--reps", "100", *args).returncode == 0
    assert hbench(tmp_path, "run", str(suite), "--run-id", "ext", *args).returncode == 0
    parts = tmp_path / "results" / "ext" / "parts"
    before = {p.name: p.stat().st_mtime_ns for p in parts.glob("*.parquet")}
    assert len(before) == 50
    refused = hbench(tmp_path, "run", "--resume", "ext", "--reps", "40", *args)
    assert refused.returncode == 2 and "never drops" in refused.stderr
    res = hbench(tmp_path, "run", "--resume", "ext", "--reps", "100", *args)
    assert res.returncode == 0, res.stderr[-2000:]
    after = {p.name: p.stat().st_mtime_ns for p in parts.glob("*.parquet")}
    assert len(after) == 100 and {k: after[k] for k in before} == before  # nothing refitted
    pd.testing.assert_frame_equal(table(tmp_path, "hundred"), table(tmp_path, "ext"))
    manifest = RunStore("ext", tmp_path / "results").manifest()
    assert manifest["n_tasks"] == 100 and manifest["reps_override"] == 100
    assert [(e["reps_before"], e["reps"], e["n_tasks_before"]) for e in manifest["extensions"]] == [
        ({"varying_intercept": 50}, 100, 50)]
    assert "sound: status complete, 100/100 tasks done" in hbench(tmp_path, "verify", "ext").stdout
    assert (table(tmp_path, "ext").query("engine == 'failing-double'")
            .drop_duplicates("rep").query("status == 'failed'")["rep"].tolist() == [7, 70])
