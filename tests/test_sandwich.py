"""Sandwich SEs (compare.estimators._sandwich, issue 20): MixedLM's CR2 rows against clubSandwich on lme4 fits of
the same data, and the Huber-White SEs of the variance components (scores, Hessian, calibration, coverage).

The clubSandwich reference is coef_test(vcov = "CR2", test = "Satterthwaite") on an lmer REML fit through rpy2
(tests/test_lme4_robust.py's helper): the two fits differ only by their optimisers, so SEs and df agree to 1e-4
relative. Those cases skip with the reason when R, lme4 or clubSandwich is missing; the rest needs statsmodels only.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from compare import testing
from compare.data import FitData
from compare.estimators import _sandwich as sw
from compare.estimators import get_estimator
from compare.estimators import mixedlm as ml
from compare.formula import parse_formula
from tests.handmade import pupils_in_classes_in_schools

_LME4 = get_estimator("lme4", {"robust": True}).available()
needs_r = pytest.mark.skipif(not _LME4, reason=f"lme4 with robust = true unavailable: {_LME4.reason}")


def _data(formula: str, sizes: np.ndarray, seed: int, sd=(0.7, 0.5), shape: str = "normal") -> FitData:
    """y = 1 + 0.5 x + a_j + b_j x + e, x ~ N(0, 1), sigma 1; `shape` 'chisq' draws a_j, b_j as standardized
    chi-square(1) (mean 0, the SDs given)."""
    rng = np.random.default_rng(seed)
    J = len(sizes)
    g = np.repeat(np.arange(J), sizes)
    x = rng.normal(size=g.size)
    draw = (lambda n: (rng.chisquare(1, n) - 1) / math.sqrt(2)) if shape == "chisq" else (lambda n: rng.normal(size=n))
    a, b = sd[0] * draw(J), sd[1] * draw(J)
    y = 1 + 0.5 * x + a[g] + b[g] * x + rng.normal(size=g.size)
    frame = pd.DataFrame({"g": [f"g{j:03d}" for j in g], "x": x, "y": y})
    return FitData(frame, parse_formula(formula), "gaussian", "identity")


CASES = {
    "intercept": ("y ~ x + (1 | g)", np.full(15, 8)),
    "slope": ("y ~ x + (1 + x | g)", np.full(20, 10)),
    "unbalanced": ("y ~ x + (1 + x | g)", np.random.default_rng(9).integers(2, 25, 18)),
}


def _rows(fit, interval: str) -> pd.DataFrame:
    return fit.params[fit.params["interval"] == interval].set_index("parameter")


@needs_r
@pytest.mark.parametrize("case", list(CASES))
def test_mixedlm_cr2_equals_clubsandwich_on_lme4(case):
    from tests.test_lme4_robust import _clubsandwich

    formula, sizes = CASES[case]
    data = _data(formula, sizes, seed=len(case))
    fit = get_estimator("mixedlm-robust", {"robust": True}).fit(data, seed=0)
    ref = _clubsandwich(data, True, 0.95)
    cr2 = _rows(fit, "cr2")
    for k, name in enumerate(("b[Intercept]", "b[x]")):
        assert fit.details["cr2"][name]["se"] == pytest.approx(ref["se"][k], rel=1e-4), name
        assert fit.details["cr2"][name]["df"] == pytest.approx(ref["df"][k], rel=1e-4), name
        assert (cr2.loc[name, "lower"], cr2.loc[name, "upper"]) == pytest.approx(
            (ref["lower"][k], ref["upper"][k]), rel=1e-4
        )
    testing.check_interval_rows(fit.params)
    assert "robust: CR2 clustered on g" in fit.notes


def _ml_fit(data: FitData):
    """statsmodels' ML fit of the careful engine's winning method, and its components (for direct calls)."""
    engine = get_estimator("mixedlm-robust", {"reml": False})
    layout = ml.build_layout(data.design)
    res = engine._best_fit(data.design, layout)[0]._results
    return res, ml.components(res, data.design, layout)


@pytest.mark.parametrize("case", ["intercept", "slope", "unbalanced"])
def test_scores_sum_to_zero_at_the_mle_and_the_hessian_is_the_engines(case):
    """sum_j s_j = 0 at the ML optimum (to the optimiser's precision: 1e-3 of the scores' spread), and the
    model-based SE of each variance from the analytic Hessian equals the engine's own Wald SE (a numerical
    Hessian on the log-SD scale, _mixedlm_hessian) mapped to the variance, SE(var) = 2 sd SE(sd), to 1e-4."""
    formula, sizes = CASES[case]
    data = _data(formula, sizes, seed=len(case))
    res, comps = _ml_fit(data)
    vs = sw.variance_sandwich(data.design, np.asarray(res.fe_params), comps, float(res.scale))
    spread = np.sqrt((vs.scores**2).sum(axis=0))
    assert np.all(np.abs(vs.score_sum) < 1e-3 * spread), (vs.score_sum, spread)
    fit = get_estimator("mixedlm-robust", {"reml": False, "robust": True}).fit(data, seed=0)
    first = fit.params[fit.params["primary"]].set_index("parameter")
    for name, info in fit.details["robust_variance"].items():
        sd, se = first.loc[name, "estimate"], first.loc[name, "se"]
        assert info["se_var_model"] == pytest.approx(2 * sd * se, rel=1e-4), name
    assert set(fit.details["robust_variance"]) == {p for p in first.index if p.startswith("sd[") or p == "sigma"}
    for kind in ("robust-variance", "robust-log-sd"):
        rows = _rows(fit, kind)
        assert (rows["lower"] <= rows["estimate"]).all() and (rows["estimate"] <= rows["upper"]).all()
    testing.check_interval_rows(fit.params)


def test_scores_do_not_sum_to_zero_away_from_the_mle():
    """The check can fail: moved off the optimum, the score sum is large and the sandwich is refused."""
    data = _data(*CASES["intercept"], seed=3)
    res, comps = _ml_fit(data)
    comps[0].cov = comps[0].cov * 1.5
    with pytest.raises(ValueError, match="not at the ML optimum"):
        sw.variance_sandwich(data.design, np.asarray(res.fe_params), comps, float(res.scale))


def test_mean_sandwich_variance_is_the_model_based_one_under_the_model():
    """Correctly specified normal random-intercept model, J = 100 clusters of 8, 150 fixed-seed replications:
    the mean over replications of the sandwich variance of each variance parameter equals the mean model-based
    (inverse observed information) variance within 4 Monte Carlo SEs, the MCSE being the SD over replications of
    their difference / sqrt(150). (The CR0 sandwich's own O(1/J) downward bias shows: measured mean ratio
    robust / model 0.961 for the intercept variance, 2.4 MCSEs below 1, and 1.006 for sigma^2 (0.5 MCSEs).)"""
    diffs, ratios = [], []
    for rep in range(150):
        data = _data("y ~ x + (1 | g)", np.full(100, 8), seed=1000 + rep, sd=(0.7, 0.0))
        layout = ml.build_layout(data.design)
        res = ml.fit_once(ml.make_model(data.design, layout), False, "default")[0]._results  # always converges here
        comps = ml.components(res, data.design, layout)
        vs = sw.variance_sandwich(data.design, np.asarray(res.fe_params), comps, float(res.scale))
        rob = np.array([vs.se_robust[k] ** 2 for k in vs.estimate])
        mod = np.array([vs.se_model[k] ** 2 for k in vs.estimate])
        diffs.append(rob - mod)
        ratios.append(rob / mod)
    d = np.array(diffs)
    mcse = d.std(axis=0, ddof=1) / math.sqrt(len(d))
    assert np.all(np.abs(d.mean(axis=0)) < 4 * mcse), (d.mean(axis=0), mcse, np.mean(ratios, axis=0))


@pytest.mark.slow
def test_robust_variance_interval_covers_better_than_ml_with_chisq_effects():
    """chi-square(1) random intercepts (SD 0.7), J = 50 clusters of 10, 200 fixed-seed replications, ML: Wald
    intervals undercover the intercept SD badly (the variance of a variance estimate grows with the kurtosis,
    excess 12 here); the robust ones come closer to 0.95, by more than 2 MCSEs of the coverages' difference
    (each coverage has MCSE <= sqrt(0.25 / 200) = 0.035). Measured on these seeds with mixedlm-ml's 190 fits at
    the optimum: wald-variance 0.584, robust-variance 0.795, wald-log-sd 0.568, robust-log-sd 0.853. The careful
    engine: statsmodels' default optimiser stopped 3.5 log-likelihood units short of the ML optimum on 10 of
    these 200 random-intercept fits (reported converged), which the variance sandwich refuses (no rows)."""
    hits = {"wald-variance": 0, "robust-variance": 0, "wald-log-sd": 0, "robust-log-sd": 0}
    engine = get_estimator("mixedlm-robust", {"reml": False, "robust": True})
    for rep in range(200):
        data = _data("y ~ x + (1 | g)", np.full(50, 10), seed=5000 + rep, sd=(0.7, 0.0), shape="chisq")
        fit = engine.fit(data, seed=0)
        for kind in hits:
            row = _rows(fit, kind).loc["sd[g][Intercept]"]
            hits[kind] += row["lower"] <= 0.7 <= row["upper"]
    cover = {k: v / 200 for k, v in hits.items()}
    for scale in ("variance", "log-sd"):
        assert abs(cover[f"robust-{scale}"] - 0.95) + 2 * 0.035 < abs(cover[f"wald-{scale}"] - 0.95), cover


def test_reml_fits_and_several_factors_get_a_note_not_rows():
    data = _data(*CASES["intercept"], seed=4)
    fit = get_estimator("mixedlm", {"robust": True}).fit(data, seed=0)  # REML
    assert (fit.params["interval"] == "cr2").any() and not (fit.params["interval"] == "robust-variance").any()
    assert any("are for ML fits" in n for n in fit.notes), fit.notes
    frame = pupils_in_classes_in_schools()
    nested = FitData(frame, parse_formula("y ~ x + (1 | school/klass)"), "gaussian", "identity")
    fit = get_estimator("mixedlm-ml", {"robust": True}).fit(nested, seed=0)
    assert "robust: CR2 clustered on school" in fit.notes
    assert any("single grouping factor" in n for n in fit.notes), fit.notes
    assert not (fit.params["interval"] == "robust-variance").any()


def test_crossed_factors_get_a_note():
    rng = np.random.default_rng(4)
    a, b = np.repeat(np.arange(10), 12), np.tile(np.arange(6), 20)
    x = rng.normal(size=a.size)
    y = 1 + x + rng.normal(0, 0.5, 10)[a] + rng.normal(0, 0.5, 6)[b] + rng.normal(size=a.size)
    frame = pd.DataFrame({"a": a.astype(str), "b": b.astype(str), "x": x, "y": y})
    data = FitData(frame, parse_formula("y ~ x + (1 | a) + (1 | b)"), "gaussian", "identity")
    fit = get_estimator("mixedlm-ml", {"robust": True}).fit(data, seed=0)
    assert not fit.params["interval"].isin(["cr2", "robust-variance"]).any()
    assert any("crossed grouping factors" in n for n in fit.notes), fit.notes


@needs_r
def test_lme4_variance_rows_equal_mixedlms_on_the_same_ml_fit():
    """lme4's robust-variance rows are computed in Python from lme4's estimates: on the same data they equal
    MixedLM's to 1e-3 relative. Both fits are at the ML optimum (log-likelihoods 4e-8 apart, score sums ~1e-3
    against per-cluster scores of order 1), but a sandwich SE moves ~10x more than the SDs it is taken at
    (measured: SDs 1e-5, robust SEs 2.6e-4 apart): the optimisers' difference, not the formula's."""
    data = _data(*CASES["unbalanced"], seed=7)
    a = get_estimator("lme4", {"reml": False, "profile": False, "robust": True}).fit(data, seed=0)
    b = get_estimator("mixedlm-robust", {"reml": False, "robust": True}).fit(data, seed=0)
    assert (
        set(a.details["robust_variance"])
        == set(b.details["robust_variance"])
        == {"sd[g][Intercept]", "sd[g][x]", "sigma"}
    )
    for name, info in a.details["robust_variance"].items():
        assert info["se_var"] == pytest.approx(b.details["robust_variance"][name]["se_var"], rel=1e-3), name
    ra, rb = _rows(a, "robust-variance"), _rows(b, "robust-variance")
    assert ra[["lower", "upper"]].to_numpy() == pytest.approx(rb.loc[ra.index, ["lower", "upper"]].to_numpy(), rel=1e-3)
    testing.check_interval_rows(a.params)


def test_robust_is_a_typed_setting():
    from compare.errors import InputError

    with pytest.raises(InputError, match="robust"):
        get_estimator("mixedlm", {"robust": "yes"})
    assert not (
        get_estimator("mixedlm", {})
        .fit(_data(*CASES["intercept"], seed=1), seed=0)
        .params["interval"]
        .isin(["cr2", "robust-variance"])
        .any()
    )
