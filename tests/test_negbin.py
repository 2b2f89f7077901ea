"""The negative binomial family (NB2: mean mu, variance mu + mu^2 / phi) and the olre scenario (issue 20).

Fast checks: the simulator's NB2 draws have the family's moments (tolerances Z = 4 Monte Carlo SEs: the SE of a
mean from the theoretical variance, that of a variance from the sample's fourth central moment), the family
table, the `phi` truth and prior fields and their one-line errors, the `phi` result row, the engines that cannot
fit it saying so, and `hbench fit --family negbinomial` with lme4 and glmmTMB on a CSV, whose two phi intervals
(lme4: curvature of glmer.nb's profile deviance; glmmTMB: TMB's sdreport) must agree.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from compare.catalogue import load_scenario
from compare.errors import InputError
from compare.estimators import get_estimator
from compare.estimators.brms import brms_priors
from compare.estimators.rstanarm import check as rstanarm_check
from compare.estimators.rstanarm import rstanarm_priors
from compare.families import FAMILIES, resolve_link
from compare.fitresult import describe, make_params
from compare.formula import ModelSpec, parse_formula
from compare.generator import expected_truth
from compare.priors import for_cell, parse_priors, resolve
from compare.simulate import dataset_for, dry_run, negbinomial_draws
from compare.spec import parse_scenario

ROOT = Path(__file__).resolve().parent.parent
Z = 4.0
N = 200_000


@pytest.mark.parametrize("mu, phi", [(3.0, 2.0), (20.0, 0.5), (0.4, 10.0)])
def test_negbinomial_draws_have_the_nb2_mean_and_variance(mu, phi):
    y = negbinomial_draws(np.random.default_rng(5), np.full(N, mu), phi)
    var = mu + mu**2 / phi
    assert y.dtype.kind == "i" and y.min() >= 0
    assert abs(y.mean() - mu) <= Z * math.sqrt(var / N)
    c = y - y.mean()
    se_var = math.sqrt((np.mean(c**4) - np.mean(c**2) ** 2) / N)
    assert abs(y.var(ddof=1) - var) <= Z * se_var


def test_the_family_table_has_negbinomial_with_the_log_link_and_phi():
    fam = FAMILIES["negbinomial"]
    assert fam.links == ("log",) and fam.aux == "phi" and resolve_link("negbinomial", None) == "log"
    with pytest.raises(InputError, match="not available for negbinomial"):
        resolve_link("negbinomial", "identity")
    assert describe("phi").param_class == "phi"
    row = make_params([{"parameter": "phi", "estimate": 2.0, "se": 0.2, "lower": 1.6, "upper": 2.4,
                        "interval": "wald-log"}])
    assert row.loc[0, "param_class"] == "phi" and pd.isna(row.loc[0, "group"])


def _spec(**changes) -> dict:
    raw = {
        "name": "nb", "formula": "y ~ x + (1 | g)", "family": "negbinomial",
        "layout": {"factors": {"g": 10}, "size": 5}, "covariates": {"x": {"dist": "normal", "mean": 0, "sd": 1}},
        "truth": {"b": {"Intercept": 1, "x": 0.3}, "sd": {"g": {"Intercept": 0.5}}, "phi": 2},
    }
    raw.update(changes)
    return raw


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"truth": {"b": {"Intercept": 1, "x": 0.3}, "sd": {"g": {"Intercept": 0.5}}}}, "truth.phi': a negbinomial"),
        ({"truth": {"b": {"Intercept": 1, "x": 0.3}, "sd": {"g": {"Intercept": 0.5}}, "phi": 0}}, "truth.phi': 0"),
        ({"truth": {"b": {"Intercept": 1, "x": 0.3}, "sd": {"g": {"Intercept": 0.5}}, "phi": -1}}, "below 0"),
        ({"family": "poisson"}, "a poisson scenario has no dispersion phi"),
        ({"link": "logit"}, "'link'"),
    ],
)
def test_bad_phi_fields_are_one_line_errors(changes, message):
    with pytest.raises(InputError, match=message) as info:
        parse_scenario(_spec(**changes), Path("nb.toml"))
    assert "\n" not in str(info.value)


def test_a_prior_dgp_negbinomial_cell_without_a_phi_prior_says_so():
    raw = _spec(dgp="prior", priors={
        "b": {"*": {"dist": "normal", "mean": 0, "sd": 1}}, "sd": {"g": {"*": {"dist": "halfnormal", "sd": 1}}}})
    del raw["truth"]
    cell = parse_scenario(raw, Path("nb.toml")).cell(0)
    with pytest.raises(InputError, match="priors.phi': missing"):
        dry_run(cell)  # what loading a scenario runs on every cell


def test_the_negbin_scenario_truth_and_prior_cell_carry_phi():
    sc = load_scenario("negbin")
    fixed, prior = dataset_for(sc, 0, 0, 1), dataset_for(sc, 2, 0, 1)
    assert fixed.truth["phi"] == 2.0 and prior.truth["phi"] != 2.0 and prior.truth["phi"] > 0
    assert "phi" in expected_truth(fixed.data.design)
    strings = for_cell(None, sc.cell(2), prior.data.design)
    assert "phi ~ gamma(4, 1)" in strings


def test_olre_has_one_row_per_level_of_its_observation_factor():
    sc = load_scenario("olre")
    ds = dataset_for(sc, 0, 0, 3)
    obs = next(b for b in ds.data.design.blocks if b.group == "obs:g")
    assert obs.n_levels == len(ds.frame) == 300 and ds.truth["sd[obs:g][Intercept]"] == 0.5
    assert sc.cell(0).family == "poisson"


def test_phi_priors_parse_resolve_and_translate():
    spec = parse_priors(["phi ~ exponential(0.5)"])
    assert spec.phi is not None and spec.phi.name == "exponential"
    with pytest.raises(InputError, match="half distributions"):
        parse_priors(["phi ~ normal(1, 1)"])
    default = resolve(parse_priors([]), "negbinomial", np.arange(5.0), np.ones((5, 0)), [], [])
    assert default.phi_code == 4 and default.phi_par[0] == 1.0  # rstanarm's exponential(1)
    assert "phi ~ exponential(1)" in default.used
    assert ("exponential(0.5)", "shape", "", "", "", "", "phi") in brms_priors(spec)
    # with no b prior, rstanarm's translation reads nothing of the model data
    assert rstanarm_priors(spec, None)["prior_aux_phi"] == ("exponential", {"rate": 0.5, "autoscale": False})
    with pytest.raises(InputError, match="rstanarm: prior 'phi ~ gamma"):
        rstanarm_check(parse_priors(["phi ~ gamma(2, 1)"]), None)


@pytest.mark.parametrize("engine", ["mixedlm", "mixedlm-robust", "bayesmixedglm-map", "bayesmixedglm-vb"])
def test_engines_that_cannot_fit_negbinomial_say_why(engine):
    verdict = get_estimator(engine).supports(ModelSpec(parse_formula("y ~ x + (1 | g)"), "negbinomial", "log"))
    assert not verdict and "negbinomial" in verdict.reason


@pytest.mark.parametrize("engine", ["lme4", "glmmtmb", "pymc", "stan", "rstanarm", "brms"])
def test_engines_that_fit_negbinomial_say_so(engine):
    assert get_estimator(engine).supports(ModelSpec(parse_formula("y ~ x + (1 | g)"), "negbinomial", "log"))


def hbench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "compare", *args], capture_output=True, text=True, cwd=ROOT)


def _csv(path: Path, seed: int = 1, J: int = 40, n: int = 15) -> Path:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(J), n)
    x = rng.normal(0, 1, J * n)
    mu = np.exp(1 + 0.3 * x + rng.normal(0, 0.5, J)[g])
    frame = pd.DataFrame({"g": [f"g{k}" for k in g], "x": x, "y": negbinomial_draws(rng, mu, 3.0)})
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    "args, message",
    [
        (["--link", "identity"], "link 'identity' is not available for negbinomial"),
        (["--engine", "mixedlm"], "MixedLM fits gaussian"),
    ],
)
def test_hbench_fit_negbinomial_bad_input_is_one_line_exit_2(tmp_path, args, message):
    data = _csv(tmp_path / "d.csv")
    res = hbench("fit", str(data), "--formula", "y ~ x + (1 | g)", "--family", "negbinomial", *args)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1 and message in res.stderr, res.stderr
    assert res.stdout == ""


def test_hbench_fit_negbinomial_refuses_non_counts(tmp_path):
    data = tmp_path / "d.csv"
    pd.DataFrame({"g": ["a", "a", "b", "b"], "x": [0.0, 1, 2, 3], "y": [1.5, 2, 3, 4]}).to_csv(data, index=False)
    res = hbench("fit", str(data), "--formula", "y ~ x + (1 | g)", "--family", "negbinomial", "--engine", "lme4")
    assert res.returncode == 2 and "negbinomial counts must be non-negative whole numbers" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


_R = get_estimator("glmmtmb").available() and get_estimator("lme4").available()


@pytest.mark.skipif(not _R, reason="lme4 or glmmTMB unavailable")
def test_hbench_fit_negbinomial_with_lme4_and_glmmtmb_reports_matching_phi(tmp_path):
    data = _csv(tmp_path / "d.csv")
    res = hbench("fit", str(data), "--formula", "y ~ x + (1 | g)", "--family", "negbinomial",
                 "--engine", "lme4", "glmmtmb", "--format", "json")
    assert res.returncode == 0, res.stderr
    phi = {}
    for rec in json.loads(res.stdout):
        assert rec["status"] == "ok" and rec["converged"], rec
        rows = [p for p in rec["parameters"] if p["parameter"] == "phi"]
        assert len(rows) == 1 and rows[0]["param_class"] == "phi" and rows[0]["interval"] == "wald-log"
        phi[rec["engine"]] = rows[0]
        assert not any(p["parameter"] == "sigma" for p in rec["parameters"])
    a, b = phi["lme4"], phi["glmmtmb"]
    # the same ML fit (Laplace): estimates within a few thousandths of a standard error of each other, and the two
    # SEs of log(phi) (a profile-deviance curvature, TMB's joint Hessian) within 5%
    assert abs(a["estimate"] - b["estimate"]) <= 0.05 * b["se"], (a, b)
    assert abs(a["se"] / a["estimate"] - b["se"] / b["estimate"]) <= 0.05 * b["se"] / b["estimate"], (a, b)
    assert a["lower"] < a["estimate"] < a["upper"]
