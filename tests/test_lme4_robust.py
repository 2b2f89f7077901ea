"""lme4's `robust` setting (issue 20): cluster-robust CR2 standard errors with Satterthwaite df for the fixed
effects, through clubSandwich, as extra 'cr2' interval rows. The reference is clubSandwich called directly
(through rpy2's importr, not the engine's R code) on the same lmer fit. Skips with the reason when R, lme4 or
clubSandwich is missing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from compare import testing
from compare.catalogue import load_scenario
from compare.data import FitData
from compare.estimators import _r, get_estimator
from compare.formula import parse_formula
from compare.simulate import dataset_for
from tests.handmade import pupils_in_classes_in_schools

_STATUS = get_estimator("lme4", {"robust": True}).available()
pytestmark = pytest.mark.skipif(not _STATUS, reason=f"lme4 with robust = true unavailable: {_STATUS.reason}")


def _cr2(fit, parameter: str) -> pd.Series:
    hit = fit.params[(fit.params["parameter"] == parameter) & (fit.params["interval"] == "cr2")]
    assert len(hit) == 1, fit.params[fit.params["parameter"] == parameter]
    return hit.iloc[0]


def _clubsandwich(data: FitData, reml: bool, level: float) -> dict[str, np.ndarray]:
    """lmer on the engine's own R frame, then clubSandwich's coef_test and conf_int (CR2, Satterthwaite)."""
    import rpy2.robjects as ro
    from rpy2.robjects.conversion import localconverter
    from rpy2.robjects.packages import importr

    options = ro.baseenv["options"]
    saved = options(warn=-1)  # R's deferred warnings (library paths, lmer's convergence checks) are not the test's
    try:
        with _r.quiet_r(), localconverter(_r.converter()):
            lme4, cs = importr("lme4"), importr("clubSandwich")
            frame = ro.conversion.get_conversion().py2rpy(_r.r_frame(data))
            fit = lme4.lmer(ro.Formula(_r.r_formula(data.formula, data.family)), data=frame, REML=reml)
            ct = cs.coef_test(fit, vcov="CR2", test="Satterthwaite")
            ci = cs.conf_int(fit, vcov="CR2", level=level, test="Satterthwaite")
    finally:
        options(saved)
    return {"se": np.asarray(ct["SE"], float), "df": np.asarray(ct["df_Satt"], float),
            "lower": np.asarray(ci["CI_L"], float), "upper": np.asarray(ci["CI_U"], float)}


@pytest.fixture(scope="module")
def j20() -> FitData:
    return dataset_for(load_scenario("seed_slopes"), 0, 0, 1).data  # J = 20, random intercept and slope


@pytest.mark.parametrize("reml", [True, False])
def test_cr2_rows_are_clubsandwichs_on_the_same_fit(j20, reml):
    fit = get_estimator("lme4", {"profile": False, "robust": True, "reml": reml}).fit(j20, seed=0)
    ref = _clubsandwich(j20, reml, 0.95)
    for k, name in enumerate(("b[Intercept]", "b[x]")):
        row, primary = _cr2(fit, name), fit.param(name)
        assert (row["lower"], row["upper"]) == pytest.approx((ref["lower"][k], ref["upper"][k]), rel=1e-6), name
        assert fit.details["cr2"][name]["se"] == pytest.approx(ref["se"][k], rel=1e-6)
        assert fit.details["cr2"][name]["df"] == pytest.approx(ref["df"][k], rel=1e-6)
        assert row["estimate"] == primary["estimate"] and row["se"] == primary["se"]  # the row contract
    testing.check_interval_rows(fit.params)
    assert "robust: CR2 clustered on g" in fit.notes


def test_robust_is_off_by_default_and_refused_for_glmer(j20):
    assert not (get_estimator("lme4", {"profile": False}).fit(j20, seed=0).params["interval"] == "cr2").any()
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(12), 10)
    x = rng.normal(size=g.size)
    y = rng.binomial(1, 1 / (1 + np.exp(-(0.3 * x + rng.normal(0, 0.5, 12)[g]))))
    data = FitData(pd.DataFrame({"g": g.astype(str), "x": x, "y": y}), parse_formula("y ~ x + (1 | g)"),
                   "binomial", "logit")
    fit = get_estimator("lme4", {"robust": True}).fit(data, seed=0)
    assert not (fit.params["interval"] == "cr2").any()
    assert any("for gaussian (lmer) fits" in n for n in fit.notes), fit.notes


def test_crossed_factors_get_a_note_not_a_failed_fit():
    """clubSandwich refuses non-nested random effects: the fit stands, without cr2 rows, saying why."""
    rng = np.random.default_rng(4)
    a, b = np.repeat(np.arange(10), 12), np.tile(np.arange(6), 20)
    x = rng.normal(size=a.size)
    y = 1 + x + rng.normal(0, 0.5, 10)[a] + rng.normal(0, 0.5, 6)[b] + rng.normal(size=a.size)
    frame = pd.DataFrame({"a": a.astype(str), "b": b.astype(str), "x": x, "y": y})
    fit = get_estimator("lme4", {"profile": False, "robust": True}).fit(
        FitData(frame, parse_formula("y ~ x + (1 | a) + (1 | b)"), "gaussian", "identity"), seed=0)
    assert fit.converged and not (fit.params["interval"] == "cr2").any()
    assert any(n.startswith("CR2 (clubSandwich) failed: Non-nested random effects") for n in fit.notes), fit.notes


def test_nested_factors_cluster_on_the_outermost():
    frame = pupils_in_classes_in_schools()
    data = FitData(frame, parse_formula("y ~ x + (1 | school) + (1 | klass)"), "gaussian", "identity")
    fit = get_estimator("lme4", {"profile": False, "robust": True}).fit(data, seed=0)
    assert "robust: CR2 clustered on school" in fit.notes
    ref = _clubsandwich(data, True, 0.95)
    assert _cr2(fit, "b[x]")["upper"] == pytest.approx(ref["upper"][1], rel=1e-6)
