"""Known measurement SEs, brms's `y | se(s)` (issue 24): the formula reads them, the design carries them to the
engines, the engines that cannot fit them say so in supports(), bad input is one line, and the meta_analysis
scenario simulates y_j ~ normal(mu + r_j, s_j) with no sigma. The fits themselves are checked against posteriordb's
eight schools reference in tests/test_eight_schools.py (slow)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from compare import cli
from compare.catalogue import load_scenario
from compare.data import FitData
from compare.errors import InputError
from compare.estimators import get_estimator
from compare.estimators._bayes import prepare
from compare.estimators.stan import stan_data
from compare.formula import ModelSpec, parse_formula
from compare.simulate import dataset_for
from compare.spec import parse_scenario

PATH = Path("ma.toml")

SCHOOLS = pd.DataFrame(
    {"school": list("ABCDEFGH"), "y": [28.0, 8, -3, 7, -1, 1, 18, 12], "s": [15.0, 10, 16, 11, 9, 11, 10, 18]}
)


def test_se_response_is_parsed_with_and_without_sigma():
    plain = parse_formula("y | se(s) ~ 1 + (1 | school)")
    assert (plain.response.y, plain.response.se, plain.response.se_sigma) == ("y", "s", False)
    assert plain.response.columns == ("y",) and "s" in plain.variables
    assert parse_formula("y|se( s , sigma = TRUE )~1+(1|g)").response.se_sigma
    assert not parse_formula("y | se(s, sigma = FALSE) ~ 1 + (1 | g)").response.se_sigma  # brms's default
    assert ModelSpec(plain, "gaussian", "identity").has_sigma is False
    assert ModelSpec(parse_formula("y | se(s, sigma = TRUE) ~ (1 | g)"), "gaussian", "identity").has_sigma


@pytest.mark.parametrize("lhs", ["y | se(log(s))", "y | se()", "y | se(s, 2)", "y | se(s, sigma = yes)",
                                 "cbind(a, b) | se(s)", "y | se(s) | trials(n)"])
def test_malformed_se_responses_are_one_line(lhs):
    with pytest.raises(InputError, match="cannot read the response") as err:
        parse_formula(f"{lhs} ~ 1 + (1 | g)")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("s", "message"),
    [([15.0, 10, 0, 11, 9, 11, 10, 18], "known SEs must be positive"),
     ([15.0, 10, -1, 11, 9, 11, 10, 18], "known SEs must be positive"),
     (list("abcdefgh"), "is not numeric")],
)
def test_bad_se_columns_are_refused(s, message):
    frame = SCHOOLS.assign(s=s)
    with pytest.raises(InputError, match=message):
        FitData(frame, parse_formula("y | se(s) ~ 1 + (1 | school)"), "gaussian", "identity").design  # noqa: B018


def test_se_of_a_non_gaussian_model_is_refused():
    frame = SCHOOLS.assign(y=[3, 1, 0, 2, 5, 1, 0, 2])
    with pytest.raises(InputError, match="gaussian models only, not poisson"):
        FitData(frame, parse_formula("y | se(s) ~ 1 + (1 | school)"), "poisson", "log").design  # noqa: B018
    model = ModelSpec(parse_formula("y | se(s) ~ 1 + (1 | school)"), "poisson", "log")
    for engine in ("stan", "pymc", "brms"):
        assert "gaussian models only" in get_estimator(engine).supports(model).reason


def test_the_design_carries_the_ses_to_stan_and_pymc():
    data = FitData(SCHOOLS, parse_formula("y | se(s) ~ 1 + (1 | school)"), "gaussian", "identity")
    np.testing.assert_array_equal(data.design.se, SCHOOLS["s"].to_numpy())
    md = prepare(data, ("Intercept ~ normal(0, 5)", "sd ~ cauchy(0, 5)"))
    assert not md.has_sigma and md.se_mode == 1
    sd = stan_data(md, 0)
    assert sd["se_mode"] == 1 and list(sd["se"]) == list(SCHOOLS["s"])
    assert not any(t.startswith("sigma") for t in md.priors.text)  # no residual SD, so no prior on one
    with_sigma = prepare(FitData(SCHOOLS, parse_formula("y | se(s, sigma = TRUE) ~ (1 | school)"), "gaussian",
                                 "identity"), None)
    assert with_sigma.has_sigma and with_sigma.se_mode == 2
    assert md.shape_key() != with_sigma.shape_key()  # a compiled PyMC graph is never reused across the two


def test_known_se_alone_gets_a_data_scaled_sd_prior_not_decov():
    """rstanarm's decov scales SDs by sigma; without one it would be a unit-scale prior whatever y's units."""
    md = prepare(FitData(SCHOOLS, parse_formula("y | se(s) ~ 1 + (1 | school)"), "gaussian", "identity"), None)
    assert md.priors.separate
    np.testing.assert_allclose(md.priors.sd_par[0], [3.0, 0.0, 2.5 * SCHOOLS["y"].std(ddof=1)])


def test_loglik_and_predictions_use_the_known_ses():
    from compare.estimators import _bayes

    md = prepare(FitData(SCHOOLS, parse_formula("y | se(s) ~ 1 + (1 | school)"), "gaussian", "identity"), None)
    eta = np.full((1, 8), 5.0)
    np.testing.assert_allclose(_bayes._loglik(md, eta, None)[0], stats.norm.logpdf(SCHOOLS["y"], 5.0, SCHOOLS["s"]))
    md2 = prepare(FitData(SCHOOLS, parse_formula("y | se(s, sigma = TRUE) ~ (1 | school)"), "gaussian", "identity"),
                  None)
    scale = np.sqrt(4.0 + SCHOOLS["s"] ** 2)
    np.testing.assert_allclose(_bayes._loglik(md2, eta, np.array([2.0]))[0], stats.norm.logpdf(SCHOOLS["y"], 5, scale))


FREQUENTIST = ["lme4", "mixedlm", "mixedlm-ml", "mixedlm-robust", "glmmtmb", "rstanarm"]


@pytest.mark.parametrize("engine", FREQUENTIST)
def test_engines_without_known_ses_refuse_them(engine):
    model = ModelSpec(parse_formula("y | se(s) ~ 1 + (1 | school)"), "gaussian", "identity")
    verdict = get_estimator(engine).supports(model)
    assert not verdict and "cannot fit known measurement SEs" in verdict.reason
    assert get_estimator(engine).supports(ModelSpec(parse_formula("y ~ 1 + (1 | school)"), "gaussian", "identity"))


@pytest.mark.parametrize("engine", ["stan", "pymc", "brms"])
def test_samplers_take_known_ses(engine):
    for lhs in ("y | se(s)", "y | se(s, sigma = TRUE)"):
        assert get_estimator(engine).supports(ModelSpec(parse_formula(f"{lhs} ~ 1 + (1 | g)"), "gaussian", "identity"))


def test_hbench_fit_names_the_refusing_engine(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    csv = tmp_path / "schools.csv"
    SCHOOLS.to_csv(csv, index=False)
    code = cli.main(["fit", str(csv), "--formula", "y | se(s) ~ 1 + (1 | school)", "--engine", "lme4"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "lme4 cannot fit known measurement SEs" in err
    code = cli.main(["fit", str(csv), "--formula", "y | se(q) ~ 1 + (1 | school)", "--engine", "stan"])
    out, err = capsys.readouterr()
    assert code == 2 and "no column 'q'" in err and len(err.strip().splitlines()) == 1


def _spec(**changes) -> dict:
    raw = {
        "name": "ma", "formula": "y | se(s) ~ 1 + (1 | study)", "family": "gaussian",
        "layout": {"factors": {"study": 8}, "size": 1},
        "covariates": {"s": {"dist": "uniform", "low": 9, "high": 18}},
        "truth": {"b": {"Intercept": 5}, "sd": {"study": {"Intercept": 5}}},
    }
    raw.update(changes)
    return raw


def test_a_spec_with_se_takes_no_sigma_and_gaussian_only():
    parse_scenario(_spec(), PATH)
    with pytest.raises(InputError, match="truth.sigma.*has no residual SD"):
        parse_scenario(_spec(truth={"b": {"Intercept": 5}, "sd": {"study": {"Intercept": 5}}, "sigma": 1}), PATH)
    with pytest.raises(InputError, match="gaussian models only"):
        parse_scenario(_spec(family="poisson"), PATH)
    with pytest.raises(InputError, match="truth.sigma"):
        parse_scenario(_spec(formula="y | se(s, sigma = TRUE) ~ 1 + (1 | study)"), PATH)


def test_meta_analysis_scenario_draws_each_estimate_with_its_se():
    """Standardised errors (y_j - mu - r_j) / s_j over 20 replications of the J = 50 cell (1,000 studies) are
    N(0, 1): mean within 4 / sqrt(1000) = 0.13 of 0 and SD within 4 sqrt(1 / 2000) = 0.09 of 1 (4 MCSEs)."""
    scenario = load_scenario("meta_analysis")
    cell = next(k for k in range(scenario.n_cells) if scenario.cell(k).factors["layout.factors.study"] == 50)
    z = []
    for rep in range(20):
        ds = dataset_for(scenario, cell, rep, 1)
        assert "sigma" not in ds.truth and "sd[study][Intercept]" in ds.truth
        f = ds.frame
        r = np.array([ds.truth[f"r[study][{lv},Intercept]"] for lv in f["study"].astype(str)])
        assert np.all((f["s"] >= 9) & (f["s"] <= 18))
        z.append((f["y"] - ds.truth["b[Intercept]"] - r) / f["s"])
    z = np.concatenate(z)
    assert z.size == 1000
    assert abs(z.mean()) < 4 / np.sqrt(1000) and abs(z.std(ddof=1) - 1) < 4 * np.sqrt(1 / 2000)


def test_a_sigma_prior_on_a_model_without_sigma_is_noted():
    """As brms drops a prior for a class the model lacks with a note, stan and pymc say they did not use it."""
    data = FitData(SCHOOLS, parse_formula("y | se(s) ~ 1 + (1 | school)"), "gaussian", "identity")
    text = prepare(data, ("sigma ~ exponential(1)",)).priors.text
    assert "priors with no parameter in this model (applied to nothing): sigma ~ exponential(1)" in text
    assert "sigma ~" not in text[0]  # not among the priors used
