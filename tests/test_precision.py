"""Precision targets: `--until-mcse coverage=0.03 --max-reps N` adds batches of replications until the largest
MCSE of the key measures is at most the target, and stops there: one batch fewer would not have met it. At
the cap it stops and names the measures short of their targets. Test-double engine (ols-double), fixed seed:
the stopping point is deterministic."""

import pytest

from compare.precision import parse_targets, worst
from compare.store import RunStore
from tests.test_harness import OLS, hbench

SUITE = 'name = "pt"\nseed = 3\nreps = 20\n[[scenario]]\nname = "varying_intercept"\ncells = [0]\n' + OLS
ARGS = ["--no-progress", "--workers", "2"]


def test_a_run_stops_where_its_mcse_says(tmp_path):
    (tmp_path / "s.toml").write_text(SUITE)
    res = hbench(tmp_path, "run", "s.toml", "--run-id", "p", "--until-mcse", "coverage=0.03", "--max-reps", "400", *ARGS)
    assert res.returncode == 0, res.stderr[-2000:]
    store = RunStore("p", tmp_path / "results")
    record = store.manifest()["precision"]
    reps = record["reps"]
    assert record["met"] and record["at_cap"] == [] and "every target met" in res.stdout
    assert 20 < reps < 400 and reps % 20 == 0  # batches of the run's starting 20 replications
    table = store.load()
    assert table["rep"].max() == reps - 1
    assert all(w.met for w in worst(table, {"coverage": 0.03}))
    one_batch_less = table[table["rep"] < reps - 20]
    assert not all(w.met for w in worst(one_batch_less, {"coverage": 0.03}))
    assert [e["reps"] for e in store.manifest()["extensions"]] == list(range(40, reps + 1, 20))


def test_at_the_cap_it_stops_and_names_the_measures_short_of_their_targets(tmp_path):
    (tmp_path / "s.toml").write_text(SUITE)
    res = hbench(tmp_path, "run", "s.toml", "--run-id", "p", "--until-mcse", "bias=0.05", "--until-mcse",
                 "coverage=0.03", "--max-reps", "50", *ARGS)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "stopped at the cap (--max-reps 50) short of the target: bias, coverage" in res.stdout
    record = RunStore("p", tmp_path / "results").manifest()["precision"]
    assert record["reps"] == 50 and record["at_cap"] == ["bias", "coverage"] and not record["met"]


@pytest.mark.parametrize("args,message", [
    (["--until-mcse", "width=0.1", "--max-reps", "40"], "must be one of coverage, rejection, bias"),
    (["--until-mcse", "coverage=-1", "--max-reps", "40"], "positive target"),
    (["--until-mcse", "coverage", "--max-reps", "40"], "positive target"),
    (["--until-mcse", "coverage=0.01"], "go together"),
    (["--max-reps", "40"], "go together"),
])
def test_bad_targets_are_one_line_exit_2_and_write_nothing(tmp_path, args, message):
    (tmp_path / "s.toml").write_text(SUITE)
    res = hbench(tmp_path, "run", "s.toml", "--run-id", "p", *args, *ARGS)
    assert res.returncode == 2 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not (tmp_path / "results" / "p").exists()


def test_targets_parse():
    assert parse_targets(["coverage=0.01, bias=0.02", "rejection=0.5"]) == {"coverage": 0.01, "bias": 0.02,
                                                                             "rejection": 0.5}
