"""Each performance measure against a hand-computed case (Morris, White & Crowther 2019 formulas).

Case: estimates 1, 2, 4 of a truth 2; model SEs 1, 1, 2; intervals [0, 3], [1, 1.5], [3, 5].
The expected numbers below were worked out by hand (fractions in the comments)."""

import math

import numpy as np
import pandas as pd
import pytest

from compare import metrics as m

EST = np.array([1.0, 2.0, 4.0])
TRUE = np.full(3, 2.0)
SE = np.array([1.0, 1.0, 2.0])
LO = np.array([0.0, 1.0, 3.0])
HI = np.array([3.0, 1.5, 5.0])


def test_bias():  # d = -1, 0, 2: mean 1/3; sum of squared deviations 14/3, / (3 * 2) -> sqrt(7/9)
    assert m.bias(EST, TRUE) == pytest.approx((1 / 3, math.sqrt(7 / 9)))


def test_relative_bias():
    assert m.relative_bias(EST, TRUE) == pytest.approx((1 / 6, math.sqrt(7 / 9) / 2))
    assert all(math.isnan(v) for v in m.relative_bias(EST, np.array([1.0, 2.0, 3.0])))


def test_empirical_se():  # sd = sqrt(7/3); MCSE sqrt(7/3) / sqrt(4)
    assert m.empirical_se(EST) == pytest.approx((math.sqrt(7 / 3), math.sqrt(7 / 3) / 2))


def test_mse_and_rmse():  # squared errors 1, 0, 4: mean 5/3; deviations^2 sum 26/3, / 6 -> sqrt(13/9)
    assert m.mse(EST, TRUE) == pytest.approx((5 / 3, math.sqrt(13 / 9)))
    r = math.sqrt(5 / 3)
    assert m.rmse(EST, TRUE) == pytest.approx((r, math.sqrt(13 / 9) / (2 * r)))


def test_model_se():  # se^2 = 1, 1, 4: mean 2 -> sqrt(2); var 3 -> sqrt(3 / (4 * 3 * 2))
    assert m.model_se(SE) == pytest.approx((math.sqrt(2), math.sqrt(1 / 8)))


def test_relative_error_in_model_se():
    ratio = math.sqrt(2) / math.sqrt(7 / 3)
    mcse = 100 * ratio * math.sqrt(3 / (4 * 3 * 4) + 1 / (2 * 2))
    assert m.relative_error_model_se(EST, SE) == pytest.approx((100 * (ratio - 1), mcse))


def test_coverage_and_bias_eliminated_coverage():  # only [0, 3] holds 2 and holds mean(est) = 7/3
    third = (1 / 3, math.sqrt(2 / 27))
    assert m.coverage(LO, HI, TRUE) == pytest.approx(third)
    assert m.bias_eliminated_coverage(LO, HI, EST) == pytest.approx(third)


def test_rejection():  # [1, 1.5] and [3, 5] exclude 0; [0, 3] touches it and does not reject
    assert m.rejection(LO, HI) == pytest.approx((2 / 3, math.sqrt(2 / 27)))


def test_interval_width():
    # widths 3, 1/2, 2: mean 11/6; deviations 7/6, -4/3, 1/6 -> squares 49/36 + 64/36 + 1/36 = 19/6;
    # var 19/12, MCSE sqrt(19/12 / 3) = sqrt(19) / 6
    assert m.interval_width(LO, HI) == pytest.approx((11 / 6, math.sqrt(19) / 6))
    assert all(math.isnan(v) for v in m.interval_width(LO[:1], HI[:1]))


def test_relative_precision():  # b = 2a - 2: EmpSE ratio 2 -> 100 (4 - 1) = 300; rho = 1 -> MCSE 0
    assert m.relative_precision(EST, np.array([0.0, 2.0, 6.0])) == pytest.approx((300.0, 0.0), abs=1e-9)
    value, mcse = m.relative_precision(np.array([1.0, 2.0, 4.0, 3.0]), np.array([1.0, 3.0, 2.0, 5.0]))
    rho = np.corrcoef([1, 2, 4, 3], [1, 3, 2, 5])[0, 1]
    ratio2 = np.var([1, 3, 2, 5], ddof=1) / np.var([1, 2, 4, 3], ddof=1)
    assert value == pytest.approx(100 * (ratio2 - 1))
    assert mcse == pytest.approx(200 * ratio2 * math.sqrt((1 - rho**2) / 3))


def test_sbc_uniformity_detects_miscalibration():
    rng = np.random.default_rng(1)
    uniform = rng.integers(0, 100, 400)  # ranks 0..99 of 99 draws
    stat, p, bins = m.sbc_uniformity(uniform, 99)
    assert bins == 20 and p > 0.001
    piled = np.concatenate([np.zeros(200), rng.integers(0, 100, 200)])
    assert m.sbc_uniformity(piled, 99)[1] < 1e-6


def _table():
    rows = []
    for rep, (e, lo, hi) in enumerate(zip(EST, LO, HI)):
        rows.append({"scenario": "s", "cell": 0, "rep": rep, "engine": "a", "status": "ok", "parameter": "b[x]",
                     "estimate": e, "se": SE[rep], "lower": lo, "upper": hi, "true": 2.0, "singular": rep == 0,
                     "corr_at_bound": False, "var_at_zero": False, "converged": rep != 2,
                     "reached_reference_optimum": pd.NA, "divergences": np.nan, "rhat_max": np.nan,
                     "ess_bulk_per_s": np.nan, "wall_s": 1.0 + rep, "compile_s": 0.0, "compile_count": 0,
                     "sbc_rank": np.nan, "sbc_draws": np.nan, "lower_t": np.nan, "upper_t": np.nan})
    rows.append({**rows[0], "rep": 3, "status": "failed", "parameter": None, "estimate": np.nan})
    rows.append({**rows[0], "rep": 4, "status": "skipped", "parameter": None, "estimate": np.nan})
    return pd.DataFrame(rows)


def test_performance_table_uses_successful_fits_only():
    perf = m.performance(_table())
    row = perf.iloc[0]
    assert len(perf) == 1 and row["n"] == 3
    assert row["bias"] == pytest.approx(1 / 3) and row["coverage"] == pytest.approx(1 / 3)
    assert (row["width"], row["width_mcse"]) == pytest.approx((11 / 6, math.sqrt(19) / 6))


def test_fit_summary_rates():
    fits = m.fit_summary(_table()).iloc[0]
    assert fits["fits"] == 4 and fits["skipped"] == 1  # a skipped fit is not an attempt
    assert fits["failure_rate"] == pytest.approx(1 / 4)
    assert fits["singular_rate"] == pytest.approx(1 / 3)
    assert fits["nonconvergence_rate"] == pytest.approx(1 / 3)
    assert fits["wall_s_median"] == pytest.approx(2.0)
    assert math.isnan(fits["reached_reference_rate"])
