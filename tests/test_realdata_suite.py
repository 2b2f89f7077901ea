"""Real-data runs: a scenario over a published dataset, the report's agreement table and `hbench compare`'s
judgement of two such runs.

The judging and agreement tests run on hand-made results tables (no engine), with numbers chosen so that each
flag's cause is known: an optimiser moved by 0.02 of its SE against a tolerance of 0.01, a sampler's posterior
mean moved by 4 MCSE against z = 3. The baseline test reruns the suite's cheapest cells and compares with the
committed real-data baseline (slow: minutes of fits through R, Stan and PyMC)."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from handmade import long_table

from compare import realagree
from compare.errors import InputError
from compare.estimators import _r

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "results" / "baselines" / "realdata"


def _fit(engine: str, estimates: dict[str, tuple[float, float]], *, loglik=-100.0, ess=None, rep=0, crit="REML"):
    """Rows of one fit on data_toy cell 0: parameter -> (estimate, se); `ess` marks a sampler."""
    sampler = ess is not None
    return [
        {
            "scenario": "data_toy",
            "cell": 0,
            "rep": rep,
            "run_seed": 1,
            "engine_seed": 100 + rep,
            "engine": engine,
            "status": "ok",
            "parameter": name,
            "interval": "quantile" if sampler else "wald-z",
            "estimate": est,
            "se": se,
            "ess_bulk": float(ess) if sampler else math.nan,
            "criterion": None if sampler else crit,
            "loglik": math.nan if sampler else loglik,
            "divergences": 0.0 if sampler else math.nan,
            "rhat_max": 1.0 if sampler else math.nan,
            "wall_s": 1.0,
            "warnings": "",
            "error": None,
            "converged": True,
            "singular": False if not sampler else None,
        }
        for name, (est, se) in estimates.items()
    ]


def _table(moved_se: float = 0.0, moved_mcse: float = 0.0, moved_loglik: float = 0.0) -> pd.DataFrame:
    """lme4 and mixedlm on one dataset, rstanarm and stan on two seeds each (ESS 400, posterior SD 2: MCSE
    0.1 a fit, 0.0707 for the mean of two, 0.1 for the difference of two such means)."""
    rows = _fit("lme4", {"b[Intercept]": (10.0, 0.5), "sd[g][Intercept]": (2.0, 0.4)})
    rows += _fit("mixedlm", {"b[Intercept]": (10.0 + moved_se * 0.5, 0.5), "sd[g][Intercept]": (2.0, 0.4)},
                 loglik=-100.0 + moved_loglik)
    for rep in (0, 1):
        rows += _fit("rstanarm", {"b[Intercept]": (10.0, 2.0)}, ess=400, rep=rep)
        rows += _fit("stan", {"b[Intercept]": (10.0 + moved_mcse * 0.1, 2.0)}, ess=400, rep=rep)
    return long_table(rows)


MANIFEST = {"engines": [{"name": n, "label": n} for n in ("lme4", "mixedlm", "rstanarm", "stan")]}


def test_identical_runs_flag_nothing():
    judged = realagree.judge_runs(_table(), _table(), z=3.0)
    assert len(judged) == 8 and not judged["flagged"].any()  # 4 estimates, 2 posterior means, 2 log-likelihoods


def test_an_optimiser_moving_beyond_its_se_tolerance_is_flagged_and_only_it():
    judged = realagree.judge_runs(_table(), _table(moved_se=0.02), z=3.0, se_tol=0.01)
    hit = judged[judged["flagged"]]
    assert list(zip(hit["engine"], hit["parameter"])) == [("mixedlm", "b[Intercept]")]
    assert hit["z"].iloc[0] == pytest.approx(0.02)
    assert not realagree.judge_runs(_table(), _table(moved_se=0.005), z=3.0, se_tol=0.01)["flagged"].any()


def test_a_sampler_is_judged_in_mcse_of_the_difference():
    """Posterior mean moved by 0.4 = 4 MCSE of one fit = 0.4 / 0.1 (two seeds a run: 0.0707 each) -> z 4."""
    judged = realagree.judge_runs(_table(), _table(moved_mcse=4.0), z=3.0)
    hit = judged[judged["flagged"]]
    assert list(hit["engine"]) == ["stan"] and hit["z"].iloc[0] == pytest.approx(4.0)
    assert not realagree.judge_runs(_table(), _table(moved_mcse=2.0), z=3.0)["flagged"].any()


def test_a_log_likelihood_that_moved_is_flagged():
    judged = realagree.judge_runs(_table(), _table(moved_loglik=0.05), z=3.0)
    hit = judged[judged["flagged"]]
    assert list(zip(hit["engine"], hit["measure"])) == [("mixedlm", "loglik")]


def test_agreement_puts_optimisers_against_lme4_and_samplers_against_rstanarm():
    agree = realagree.agreement(_table(moved_se=0.02, moved_mcse=4.0, moved_loglik=-0.5), MANIFEST)
    mixed = agree[agree["engine"] == "mixedlm"].set_index("parameter")
    assert set(mixed["reference"]) == {"lme4"}
    assert mixed.loc["b[Intercept]", "diff_in_se"] == pytest.approx(0.02)
    assert mixed.loc["sd[g][Intercept]", "se_ratio"] == pytest.approx(1.0)
    assert mixed.loc["b[Intercept]", "loglik_diff"] == pytest.approx(-0.5)
    stan = agree[agree["engine"] == "stan"].iloc[0]
    assert stan["reference"] == "rstanarm" and stan["diff_in_mcse"] == pytest.approx(4.0)
    by = realagree.agreement_by_engine(agree).set_index("engine")
    assert by.loc["stan", "unit"] == "MCSE" and by.loc["mixedlm", "worst"] == "data_toy:0 b[Intercept]"


def test_the_report_of_a_real_data_run_opens_with_the_agreement_section(tmp_path):
    """A run whose fingerprint records datasets gets the section and its three tables; the numbers in the CSV are
    the agreement function's."""
    from compare import report
    from compare.store import conform

    manifest = {**MANIFEST, "suite": "r", "fingerprint": {"datasets": {"toy": {"package": "x"}}}}
    index = report.render("real", manifest, conform(_table(moved_se=0.02)), tmp_path / "out")
    page = index.read_text()
    assert "Real data: agreement between engines" in page
    headers = re.findall(r"<h2[^>]*>(.*?)</h2>", page)
    assert headers[0] == "Real data: agreement between engines"
    assert "Does the Bayesian version work fine?" not in headers  # no truth: no coverage to show
    agree = pd.read_csv(tmp_path / "out" / "tables" / "realdata_agreement.csv")
    row = agree[(agree["engine"] == "mixedlm") & (agree["parameter"] == "b[Intercept]")].iloc[0]
    assert row["reference"] == "lme4" and row["diff_in_se"] == pytest.approx(0.02)
    fits = pd.read_csv(tmp_path / "out" / "tables" / "realdata_fits.csv")
    assert set(fits["engine"]) == {"lme4", "mixedlm", "rstanarm", "stan"}
    plain = report.render("sim", {**MANIFEST, "suite": "r"}, conform(_table()), tmp_path / "sim")
    assert "Real data: agreement" not in plain.read_text() and "Does the Bayesian version work" in plain.read_text()


def test_optimisers_are_matched_on_the_criterion():
    """An ML fit is never set against lme4's REML fit: with no ML lme4 in the run, it has no reference."""
    rows = _fit("lme4", {"b[Intercept]": (10.0, 0.5)}) + _fit("mixedlm-ml", {"b[Intercept]": (9.0, 0.4)}, crit="ML")
    agree = realagree.agreement(long_table(rows), {"engines": [{"name": "lme4", "label": "lme4"}]})
    assert agree.empty


def test_a_dataset_scenario_refuses_simulation_tables(tmp_path):
    from compare.spec import parse_scenario

    with pytest.raises(InputError, match="not with `dataset`"):
        parse_scenario({"dataset": "cbpp", "layout": {"factors": {"g": 3}}}, tmp_path / "x.toml")
    with pytest.raises(InputError, match="not a dataset of `hbench data list`"):
        parse_scenario({"dataset": "nope"}, tmp_path / "x.toml")


def test_a_dataset_scenario_takes_the_catalogues_formulas_as_cells(tmp_path):
    from compare import realdata
    from compare.spec import parse_scenario

    sc = parse_scenario({"dataset": "grouseticks"}, tmp_path / "x.toml")
    assert [c.formula.text for c in sc.cells] == list(realdata.get("grouseticks").formulas)
    assert {c.family for c in sc.cells} == {"poisson"} and {c.dataset for c in sc.cells} == {"grouseticks"}


needs_r = pytest.mark.skipif(not _r.package_status("lme4", "datasets.R"), reason="needs R with lme4")


@needs_r
def test_a_dataset_scenario_gives_the_published_data_to_every_replication(tmp_path, monkeypatch):
    monkeypatch.setenv("HBENCH_DATA_CACHE", str(tmp_path / "cache"))
    from compare.catalogue import load_scenario
    from compare.simulate import dataset_for

    sc = load_scenario("data_cbpp")
    a, b = dataset_for(sc, 0, 0, 1), dataset_for(sc, 0, 1, 1)
    assert a.hash == b.hash and a.seed != b.seed and a.truth == {}  # the same data; other engine seeds
    assert len(a.frame) == 56 and set(a.frame.columns) == {"incidence", "healthy", "period", "herd"}


@needs_r
def test_resume_refuses_a_run_whose_dataset_came_from_another_release(monkeypatch):
    """The fingerprint records each dataset's package version and content hash; a cache reloaded from another
    release of the package is named by `--resume`'s check."""
    from compare import provenance, realdata
    from compare.suite import parse_suite

    suite = parse_suite({"scenario": [{"name": "data_cbpp"}], "engine": [{"name": "mixedlm"}]})
    before = provenance.fingerprint(suite)
    assert before["datasets"]["cbpp"]["package"] == "lme4" and len(before["datasets"]["cbpp"]["sha256"]) == 64
    manifest = {"fingerprint": before, "versions": {}, "git_commit": "unknown"}
    assert not [c for c in provenance.changes(manifest, suite) if "dataset" in c]
    real = realdata.provenance
    monkeypatch.setattr(realdata, "provenance", lambda name: {**real(name), "package_version": "9.9"})
    assert any("dataset cbpp is not what the run started with" in c for c in provenance.changes(manifest, suite))


@pytest.mark.slow
@needs_r
def test_realdata_check_matches_the_committed_baseline(tmp_path):
    """Rerun the baseline's suite (realdata-check, a few minutes) and compare: the optimisers within 0.01 of their
    SE and 0.01 in log-likelihood, the samplers within 3 MCSE (the same seeds give the same chains: 0 unless an
    engine changed). Refresh the baseline after an intended change: README, 'Published datasets'."""
    manifest = json.loads((BASELINE / "manifest.json").read_text())
    assert manifest["suite"] == "realdata-check"
    run = subprocess.run([sys.executable, "-m", "compare", "run", "realdata-check", "--run-id", "now",
                          "--no-progress", "--workers", "2"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    res = subprocess.run([sys.executable, "-m", "compare", "compare", str(BASELINE), "now", "--results",
                          str(tmp_path / "results"), "--format", "markdown"], cwd=tmp_path, capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    judged = json.loads((tmp_path / "results" / "now" / f"compare-{BASELINE.name}.json").read_text())
    assert len(judged["realdata"]) > 100  # every engine's estimates were compared, not an empty table
