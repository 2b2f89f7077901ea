"""Each performance measure against a hand-computed case (Morris, White & Crowther 2019 formulas).

Case: estimates 1, 2, 4 of a truth 2; model SEs 1, 1, 2; intervals [0, 3], [1, 1.5], [3, 5].
The expected numbers below were worked out by hand (fractions in the comments)."""

import math

import numpy as np
import pandas as pd
import pytest

from compare import metrics as m
from tests.handmade import long_table

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


def test_sbc_grid_follows_the_sbc_package():
    # fewer than 50 ranks: every possible rank is a point (K = n_draws + 1)
    assert m.sbc_grid(4, 3).tolist() == [0, 1, 2, 3, 4]
    # 60 ranks of 99 draws: K = 60 points, thresholds floor(i * 100 / 60) = 0, 1, 3, 5, 6, ..., 100
    g = m.sbc_grid(60, 99)
    assert len(g) == 61 and g[:5].tolist() == [0, 1, 3, 5, 6] and g[-1] == 100
    assert m.sbc_grid(240, 99).tolist() == list(range(101))  # K = min(n_draws + 1, n)


def test_sbc_ecdf_difference_by_hand():
    # ranks 0, 0, 1, 3 of 3 draws: fractional ranks (r + 1) / 4 = 1/4, 1/4, 1/2, 1; on z = 0, 1/4, 1/2, 3/4, 1
    # the ECDF is 0, 2/4, 3/4, 3/4, 1, so ECDF - z = 0, 1/4, 1/4, 0, 0
    check = m.sbc_ecdf(np.array([0, 0, 1, 3]), 3)
    assert check.z.tolist() == [0, 0.25, 0.5, 0.75, 1]
    assert check.diff == pytest.approx([0, 0.25, 0.25, 0, 0])
    assert check.max_abs_diff == pytest.approx(0.25) and check.n == 4


def test_sbc_band_counts_by_hand():
    # X ~ Binomial(4, 1/2): P(X <= 0) = 1/16 < 0.1 <= P(X <= 1) = 5/16, P(X >= 3) = 5/16 >= 0.1 > P(X >= 4) = 1/16
    # -> counts 1..3; Binomial(4, 1/4): P(X <= 0) = 81/256 >= 0.1, P(X >= 2) = 67/256 >= 0.1 > P(X >= 3) = 13/256
    # -> counts 0..2 (gamma = 0.2: gamma / 2 = 0.1 in each tail)
    lower, upper = m.sbc_band_counts(4, np.array([0.25, 0.5]), 0.2)
    assert lower.tolist() == [0, 1] and upper.tolist() == [2, 3]


@pytest.mark.parametrize("n", [10, 60, 240])
def test_sbc_band_is_simultaneous_for_uniform_ranks(n):
    """Uniform ranks leave the 95% band in 5% of sets. Tolerance: 3 x the Monte Carlo SE of the measured rate,
    sqrt(0.05 * 0.95 / sets), combined with that of the band's own calibration, sqrt(0.05 * 0.95 / 5000):
    3 x 0.0046 = 0.014. A pointwise 95% band (gamma = 0.05) leaves in 22% (n = 10) to 45% (n = 240) of sets.
    Fixed seed, not the band's own, so these are fresh sets. Measured (40,000 sets each): n = 10: 4.8%,
    60: 4.8%, 100: 5.2%, 240: 5.2%."""
    sets = 4000
    rng = np.random.default_rng(2024 + n)
    out = np.mean([not m.sbc_ecdf(r, 99).inside for r in rng.integers(0, 100, size=(sets, n))])
    tol = 3 * math.sqrt(0.05 * 0.95 / sets + 0.05 * 0.95 / m.SBC_SIMULATIONS)
    assert abs(out - 0.05) <= tol, (out, tol)
    assert m.sbc_gamma(n, 99) < 0.05 / 4  # simultaneous: far below the pointwise level


def _ranks(rng, n, scale):
    """SBC ranks of theta ~ N(0, 1) among 99 draws of a posterior after one y ~ N(theta, 1): the right posterior
    is N(y / 2, sqrt(1/2)); `scale` < 1 makes it too narrow (overconfident)."""
    theta = rng.normal(0, 1, n)
    y = rng.normal(theta, 1)
    draws = rng.normal(y[:, None] / 2, scale * math.sqrt(0.5), size=(n, 99))
    return (draws < theta[:, None]).sum(axis=1)


def test_sbc_ecdf_catches_a_too_narrow_posterior():
    """Posterior SD halved: ranks pile at both ends (a U), the ECDF difference rises above 0 early and falls below
    it late, and leaves the band (caught in 300 of 300 seeded sets of 100 when written); the right posterior on
    the same seed stays inside (it leaves in ~5% of seeds, so this fixed seed is one of the 95%)."""
    bad = _ranks(np.random.default_rng(11), 100, 0.5)
    check = m.sbc_ecdf(bad, 99)
    assert not check.inside
    assert check.diff[check.z <= 0.1].max() > 0.1 and check.diff[check.z >= 0.9].min() < -0.1
    assert m.sbc_uniformity(bad, 99)[1] < 1e-3
    assert m.sbc_ecdf(_ranks(np.random.default_rng(11), 100, 1.0), 99).inside


def test_sbc_summary_verdicts():
    rng = np.random.default_rng(3)
    rows = [{"scenario": "s", "cell": 0, "rep": i, "engine": "e", "parameter": p, "sbc_rank": float(r), "sbc_draws": 99.0}
            for p, ranks in (("b[x]", _ranks(rng, 100, 1.0)), ("sd[g][x]", _ranks(rng, 100, 0.5)),
                             ("cor[g][Intercept,x]", rng.integers(0, 100, 5)))
            for i, r in enumerate(ranks)]
    rows.append({**rows[0], "rep": 100, "sbc_rank": 3.0, "sbc_draws": 49.0})  # another draw count: left out
    sbc = m.sbc_summary(long_table(rows)).set_index("parameter")
    assert sbc.loc["b[x]", "n"] == 100 and sbc.loc["b[x]", "draws"] == 99
    assert bool(sbc.loc["b[x]", "inside_band"]) and not bool(sbc.loc["sd[g][x]", "inside_band"])
    assert sbc.loc["sd[g][x]", "p_value"] < 1e-3
    assert pd.isna(sbc.loc["cor[g][Intercept,x]", "inside_band"])  # 5 ranks: no verdict
    assert sbc.loc["b[x]", "grid"] == 100 and 0 < sbc.loc["b[x]", "gamma"] < 0.05


def _table():
    rows = []
    for rep, (e, lo, hi) in enumerate(zip(EST, LO, HI)):
        rows.append({"scenario": "s", "cell": 0, "rep": rep, "engine": "a", "status": "ok", "parameter": "b[x]",
                     "estimate": e, "se": SE[rep], "lower": lo, "upper": hi, "true": 2.0, "singular": rep == 0,
                     "corr_at_bound": False, "var_at_zero": False, "converged": rep != 2,
                     "reached_reference_optimum": pd.NA, "divergences": np.nan, "rhat_max": np.nan,
                     "ess_bulk_per_s": np.nan, "wall_s": 1.0 + rep, "compile_s": 0.0, "compile_count": 0,
                     "sbc_rank": np.nan, "sbc_draws": np.nan, "interval": "wald-z"})
    rows.append({**rows[0], "rep": 3, "status": "failed", "parameter": None, "estimate": np.nan})
    rows.append({**rows[0], "rep": 4, "status": "skipped", "parameter": None, "estimate": np.nan})
    return long_table(rows)


def test_performance_table_uses_successful_fits_only():
    perf, ivals = m.performance(_table()), m.intervals(_table())
    row, iv = perf.iloc[0], ivals.iloc[0]
    assert len(perf) == 1 and row["n"] == 3 and row["bias"] == pytest.approx(1 / 3)
    assert len(ivals) == 1 and iv["interval"] == "wald-z" and iv["coverage"] == pytest.approx(1 / 3)
    assert (iv["width"], iv["width_mcse"]) == pytest.approx((11 / 6, math.sqrt(19) / 6))


def _with_t_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Each fit's b[x] gets a second, non-primary interval row, "wald-t": [-1, 4], [0, 3], [2, 6]. It comes BEFORE
    its primary row: readers go by the `primary` column, never by row order."""
    t_rows = table[table["status"] == "ok"].assign(interval="wald-t", lower=[-1.0, 0.0, 2.0], upper=[4.0, 3.0, 6.0],
                                                   primary=False)
    both = pd.concat([t_rows, table]).sort_values("rep", kind="stable")
    return both.reset_index(drop=True)


def test_two_interval_types_give_two_coverage_rows_and_one_bias_row():
    table = _with_t_rows(_table())
    perf = m.performance(table)
    assert len(perf) == 1 and perf.iloc[0]["n"] == 3 and perf.iloc[0]["bias"] == pytest.approx(1 / 3)
    ivals = m.intervals(table).set_index("interval")
    assert list(ivals.index) == ["wald-t", "wald-z"] and (ivals["n"] == 3).all()
    # truth 2: wald-z [0, 3], [1, 1.5], [3, 5] covers once; wald-t [-1, 4], [0, 3], [2, 6] covers all three
    assert (ivals.loc["wald-z", "coverage"], ivals.loc["wald-z", "coverage_mcse"]) == pytest.approx(
        (1 / 3, math.sqrt(2 / 27)))
    assert (ivals.loc["wald-t", "coverage"], ivals.loc["wald-t", "coverage_mcse"]) == (1.0, 0.0)
    # t widths 5, 3, 4: mean 4, sd 1, MCSE 1 / sqrt(3)
    assert (ivals.loc["wald-t", "width"], ivals.loc["wald-t", "width_mcse"]) == pytest.approx((4.0, 1 / math.sqrt(3)))


def test_point_measures_read_primary_rows_only():
    """An extra interval row (same estimate) must not count a fit twice, in agreement or SBC either."""
    table = _with_t_rows(_table())
    assert len(m.primary_rows(table)) == 3 and (m.primary_rows(table)["interval"] == "wald-z").all()
    other = table.assign(engine="b", estimate=table["estimate"] + 0.1)
    agree = m.agreement(pd.concat([table, other]))
    assert len(agree) == 1 and agree.iloc[0]["n"] == 3


def test_fit_summary_rates():
    fits = m.fit_summary(_table()).iloc[0]
    assert fits["fits"] == 4 and fits["skipped"] == 1  # a skipped fit is not an attempt
    assert fits["failure_rate"] == pytest.approx(1 / 4)
    assert fits["singular_rate"] == pytest.approx(1 / 3)
    assert fits["nonconvergence_rate"] == pytest.approx(1 / 3)
    assert fits["wall_s_median"] == pytest.approx(2.0)
    assert math.isnan(fits["reached_reference_rate"])
    assert fits["kind"] == "optimiser"


def test_engine_kinds_from_sampler_diagnostics():
    t = _table()
    sampler = t.assign(engine="b", divergences=[0.0, 2.0, np.nan, np.nan, np.nan], rhat_max=np.nan)
    kinds = m.engine_kinds(pd.concat([t, sampler]))
    assert kinds == {"a": "optimiser", "b": "sampler"}
    fits = m.fit_summary(pd.concat([t, sampler])).set_index("engine")
    assert fits.loc["b", "divergent_fit_rate"] == pytest.approx(1 / 2)  # 1 of the 2 ok fits that report it


def test_median_width_beside_the_mean():  # widths 3, 0.5, 2 -> median 2; one enormous width moves only the mean
    assert m.median_width(LO, HI)[0] == pytest.approx(2.0)
    hi = HI.copy()
    hi[0] = 1e36
    assert m.interval_width(LO, hi)[0] > 1e35 and m.median_width(LO, hi)[0] == pytest.approx(2.0)
    # 20 widths 1.5 and 20 of 2.5: l, u = 20 -/+ 1.96 sqrt(40) / 2 = 13.8, 26.2 -> order statistics 13 and 26
    # (0-based, sorted: 1.5 and 2.5): MCSE (2.5 - 1.5) / 3.92
    w = np.tile([1.5, 2.5], 20)
    assert m.median_width(np.zeros(40), w) == pytest.approx((2.0, 1 / 3.92))
    iv = m.intervals(_table()).iloc[0]
    assert iv["width_median"] == pytest.approx(2.0)


def test_treedepth_and_warnings_tally():
    t = _table()
    sampler = t.assign(engine="b", divergences=[0.0, 2.0, 0.0, np.nan, np.nan], rhat_max=[1.0, 1.02, 1.0, np.nan,
                       np.nan], treedepth_hits=pd.array([0, 0, 5, pd.NA, pd.NA], dtype="Int64"))
    fits = m.fit_summary(pd.concat([t, sampler]))
    b = fits.set_index("engine").loc["b"]
    assert (b["treedepth_rate"], b["treedepth_rate_mcse"]) == pytest.approx((1 / 3, math.sqrt(2 / 27)))
    tally = m.warnings_tally(fits).set_index(["engine", "warning"])
    assert tally.loc[("b", "divergent"), "share"] == pytest.approx(1 / 3)
    assert tally.loc[("b", "R-hat > 1.01"), "share"] == pytest.approx(1 / 3)
    assert tally.loc[("a", "failed"), "share"] == pytest.approx(1 / 4)  # 1 failure in 4 attempts
    assert tally.loc[("a", "not converged"), "share_mcse"] == pytest.approx(math.sqrt(2 / 27))
    assert ("a", "divergent") not in tally.index  # an optimiser cannot diverge: no row, not a 0


def test_sensitivity_leaves_out_divergent_and_non_converged_fits():
    """Optimiser a did not converge on rep 2 (interval [3, 5], estimate 4); sampler b diverged on rep 1."""
    t = _table()
    sampler = t.assign(engine="b", divergences=[0.0, 2.0, 0.0, np.nan, np.nan], converged=True)
    sens = m.sensitivity(pd.concat([t, sampler])).set_index("engine")
    a, b = sens.loc["a"], sens.loc["b"]
    assert (a["n_all"], a["n_clean"]) == (3, 2) and (b["n_all"], b["n_clean"]) == (3, 2)
    assert a["coverage_all"] == pytest.approx(1 / 3) and a["coverage_clean"] == pytest.approx(1 / 2)  # [0,3], [1,1.5]
    assert a["bias_all"] == pytest.approx(1 / 3) and a["bias_clean"] == pytest.approx(-1 / 2)  # est 1, 2 of truth 2
    assert b["bias_clean"] == pytest.approx(0.5)  # reps 0 and 2: estimates 1 and 4 of truth 2, errors -1 and 2


def test_precision_vs_matches_relative_precision_on_the_paired_replications():
    t = _table()
    ref = t.assign(engine="ref", estimate=t["estimate"] * 0.5 + np.array([0.3, -0.2, 0.1, 0, 0]))
    out = m.precision_vs(pd.concat([t, ref]), "ref").iloc[0]
    expect = m.relative_precision(EST, EST * 0.5 + np.array([0.3, -0.2, 0.1]))
    assert (out["relprec"], out["relprec_mcse"]) == pytest.approx(expect) and out["n_paired"] == 3
