"""MixedLM's Wald SEs for SDs, correlations and sigma (issue 11): the unprofiled log-likelihood against a
dense direct computation, the SEs against glmmTMB (TMB, sigma free) at the same optimum, sigma's interval
against lme4's profile interval, and "none" with a note at the boundary."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from compare.catalogue import load_scenario
from compare.data import FitData
from compare.estimators import _mixedlm_hessian as mh
from compare.estimators import get_estimator
from compare.estimators.lme4 import r_status
from compare.estimators.mixedlm import build_layout, make_model
from compare.formula import parse_formula
from compare.simulate import dataset_for

needs_lme4 = pytest.mark.skipif(not r_status(), reason=f"lme4 engine unavailable: {r_status().reason}")
_TMB = get_estimator("glmmtmb").available()
needs_tmb = pytest.mark.skipif(not _TMB, reason=f"glmmtmb unavailable: {_TMB.reason}")


def _slopes_data(seed: int = 3, J: int = 7, n: int = 6) -> FitData:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(J), n)
    x = rng.normal(size=J * n)
    y = 1 + 0.5 * x + rng.normal(size=J)[g] + 0.4 * rng.normal(size=J)[g] * x + rng.normal(size=J * n)
    frame = pd.DataFrame({"g": [f"g{i}" for i in g], "x": x, "y": y})
    return FitData(frame, parse_formula("y ~ x + (1 + x | g)"), "gaussian", "identity")


def _direct_loglik(design, cov_re: np.ndarray, sigma: float, reml: bool) -> float:
    """(RE)ML log-likelihood from the dense marginal covariance, fixed effects by GLS."""
    y, X, b = design.y, design.X, design.blocks[0]
    Z = np.zeros((design.n, b.n_levels * len(b.names)))
    for k in range(len(b.names)):
        Z[np.arange(design.n), b.index * len(b.names) + k] = b.X[:, k]
    G = np.kron(np.eye(b.n_levels), cov_re)
    V = sigma**2 * np.eye(design.n) + Z @ G @ Z.T
    Vi = np.linalg.inv(V)
    beta = np.linalg.solve(X.T @ Vi @ X, X.T @ Vi @ y)
    r = y - X @ beta
    n, p = X.shape
    out = -0.5 * (np.linalg.slogdet(V)[1] + r @ Vi @ r)
    if reml:
        return out - 0.5 * ((n - p) * math.log(2 * math.pi) + np.linalg.slogdet(X.T @ Vi @ X)[1])
    return out - 0.5 * n * math.log(2 * math.pi)


@pytest.mark.parametrize("reml", [True, False])
def test_unprofiled_loglik_matches_a_direct_computation(reml):
    """l(theta, sigma^2) = l_p(theta) - (m/2)[log(sigma^2/s2) + s2/sigma^2 - 1] away from the optimum too,
    and equals statsmodels' llf at the fit."""
    ds = _slopes_data()
    design = ds.design
    model = make_model(design, build_layout(design))
    model.reml, model.cov_pen, model.fe_pen = reml, None, None  # what MixedLM.fit sets before loglike
    for cov_re, sigma in [(np.array([[1.3, -0.2], [-0.2, 0.3]]), 0.8), (np.array([[0.2, 0.05], [0.05, 1.1]]), 1.7)]:
        assert mh.loglik(model, cov_re, np.empty(0), sigma) == pytest.approx(
            _direct_loglik(design, cov_re, sigma, reml), abs=1e-9)
    res = make_model(design, build_layout(design)).fit(reml=reml)._results
    assert mh.loglik(res.model, res.cov_re, res.vcomp, math.sqrt(res.scale)) == pytest.approx(res.llf, abs=1e-9)


def test_ses_do_not_depend_on_the_step():
    """The Richardson central differences are flat in the step: STEP and STEP / 4 agree to 1e-6."""
    ds = _slopes_data(J=20, n=8)
    res = make_model(ds.design, build_layout(ds.design)).fit(reml=True, method="lbfgs")._results
    assert res.converged
    a, b = mh.wald_variance(res), mh.wald_variance(res, step=mh.STEP / 4)
    assert a.note is None and all(p.status == "ok" for p in a.params)
    for p, q in zip(a.params, b.params, strict=True):
        assert p.se_u == pytest.approx(q.se_u, rel=1e-6), p


@needs_tmb
@pytest.mark.parametrize("reml", [True, False])
def test_ses_match_glmmtmb_at_the_same_optimum(reml):
    """seed_slopes J = 50 (cell 2), rep 3, run seed 1: sd, cor and sigma SEs within 1% of glmmTMB's. Before
    the numerical Hessian, statsmodels' rescaled cov_params gave SD SEs 1.3-3.8% larger (REML)."""
    ds = dataset_for(load_scenario("seed_slopes"), 2, 3, 1).data
    ours = get_estimator("mixedlm-robust", {"reml": reml}).fit(ds, seed=0)
    tmb = get_estimator("glmmtmb", {"reml": reml}).fit(ds, seed=0)
    assert ours.loglik == pytest.approx(tmb.loglik, abs=1e-3)
    for name in ("sd[g][Intercept]", "sd[g][x]", "cor[g][Intercept,x]", "sigma"):
        a, b = ours.param(name), tmb.param(name)
        assert a["interval"] == b["interval"], name
        assert a["se"] == pytest.approx(b["se"], rel=0.01), name
    for name in ("sd[g][Intercept]", "sd[g][x]", "sigma"):  # variance-scale Wald, the same for both engines
        a, b = (f.params[(f.params["parameter"] == name) & (f.params["interval"] == "wald-variance")].iloc[0]
                for f in (ours, tmb))
        assert (a["lower"], a["upper"]) == pytest.approx((b["lower"], b["upper"]), rel=0.01), name
    if reml:  # the old SE (statsmodels' scale^2 * cov_params) fails this comparison
        res = make_model(ds.design, build_layout(ds.design)).fit(reml=True)._results
        old = float(res.scale) ** 2 * np.asarray(res.cov_params())[2:, 2:]
        se_log_old = math.sqrt(old[0, 0]) / (2 * res.cov_re[0, 0])
        b = tmb.param("sd[g][Intercept]")
        assert se_log_old > 1.02 * b["se"] / b["estimate"]


@needs_lme4
def test_sigma_wald_interval_matches_lme4_profile_on_large_data():
    """Random intercepts, 300 groups x 20: sigma's Wald interval on log sigma is lme4's profile interval
    within 1% (the likelihood is nearly quadratic in log sigma there)."""
    rng = np.random.default_rng(11)
    J, n = 300, 20
    g = np.repeat(np.arange(J), n)
    x = rng.normal(size=J * n)
    y = 2 + 0.3 * x + 0.7 * rng.normal(size=J)[g] + 1.3 * rng.normal(size=J * n)
    frame = pd.DataFrame({"g": [f"g{i}" for i in g], "x": x, "y": y})
    ds = FitData(frame, parse_formula("y ~ x + (1 | g)"), "gaussian", "identity")
    ours = get_estimator("mixedlm").fit(ds, seed=0).param("sigma")
    ref = get_estimator("lme4", {"profile": True}).fit(ds, seed=0).param("sigma")
    assert ours["interval"] == "wald-log-sd" and ref["interval"] == "profile"
    for col in ("estimate", "lower", "upper"):
        assert ours[col] == pytest.approx(ref[col], rel=0.01), col


def test_a_singular_fit_gives_no_interval_for_the_sd_at_zero():
    """Noise centred within groups: the REML intercept SD is at zero. Its row says why it has no interval;
    sigma and the fixed effects keep theirs."""
    rng = np.random.default_rng(4)
    J, n = 30, 10
    g = np.repeat(np.arange(J), n)
    x = rng.normal(size=J * n)
    e = rng.normal(size=J * n)
    e -= pd.Series(e).groupby(g).transform("mean").to_numpy()
    frame = pd.DataFrame({"g": [f"g{i}" for i in g], "x": x, "y": 1 + 0.5 * x + e})
    fit = get_estimator("mixedlm-robust").fit(FitData(frame, parse_formula("y ~ x + (1 | g)"), "gaussian",
                                                      "identity"), seed=0)
    assert fit.singular
    sd = fit.param("sd[g][Intercept]")
    assert sd["interval"] == "none" and math.isnan(sd["se"]) and "boundary" in sd["note"]
    assert fit.param("sigma")["interval"] == "wald-log-sd" and fit.param("sigma")["se"] > 0
    assert fit.param("b[x]")["interval"] == "wald-z"


@needs_tmb
@pytest.mark.parametrize("scenario, formula, seed", [("nested", None, 1),
                                                     ("crossed_psych", "y ~ x + (1 | person) + (1 | question)", 5)])
def test_variance_component_ses_match_glmmtmb(scenario, formula, seed):
    """Variance components (nested g1/g2; crossed factors as components of one group): SEs within 1%."""
    sim = dataset_for(load_scenario(scenario), 0, 0, seed)
    ds = sim.data if formula is None else FitData(sim.frame, parse_formula(formula), "gaussian", "identity")
    ours, tmb = get_estimator("mixedlm-robust").fit(ds, seed=0), get_estimator("glmmtmb").fit(ds, seed=0)
    assert ours.loglik == pytest.approx(tmb.loglik, abs=1e-3)
    names = [n for n in tmb.params.parameter.unique() if n.startswith("sd[") or n == "sigma"]
    assert len(names) == 3
    for name in names:
        assert ours.param(name)["se"] == pytest.approx(tmb.param(name)["se"], rel=0.01), name
