"""The simulator reproduces the truth it reports, and seeds behave.

Statistical checks use 200 replications of cell 0 of every shipped scenario with fixed seeds.
Tolerance: 4 Monte Carlo standard errors of the statistic (SD: sd / sqrt(2(n-1)); correlation:
(1 - rho^2) / sqrt(n - 1); mean: sd / sqrt(n)), a false-alarm chance near 6e-5 per check.
"""

import numpy as np
import pandas as pd
import pytest

from compare.simulate import block_key, dataset_for, simulate
from compare.catalogue import load_scenario, scenario_names as shipped_scenarios

REPS = 200
Z = 4.0


def _effects(ds):
    """Realised group effects of each block as an (J, q) array, from the truth."""
    out = {}
    for bd in ds.data.design.blocks:
        out[block_key(bd)] = np.array([[ds.truth[f"r[{bd.group}][{lv},{t}]"] for t in bd.names] for lv in bd.levels])
    return out


def _eta(ds):
    d = ds.data.design
    beta = np.array([ds.truth[f"b[{n}]"] for n in d.x_names])
    eta = d.X @ beta + d.offset if beta.size else d.offset.copy()
    for bd in d.blocks:
        u = _effects(ds)[block_key(bd)]
        eta += np.einsum("nq,nq->n", bd.X, u[bd.index])
    return eta


@pytest.fixture(scope="module", params=shipped_scenarios())
def replications(request):
    sc = load_scenario(request.param)
    return sc, [dataset_for(sc, 0, r, 7) for r in range(REPS)]


def test_realised_group_effects_match_true_sds_and_correlations(replications):
    sc, datasets = replications
    cell = sc.cell(0)
    if cell.design == "stratified":
        pytest.skip("stratified: one draw of group effects by design")
    first = datasets[0]
    for bd in first.data.design.blocks:
        pooled = np.vstack([_effects(ds)[block_key(bd)] for ds in datasets])
        n = pooled.shape[0]
        for k, term in enumerate(bd.names):
            true = first.truth[f"sd[{bd.group}][{term}]"]
            est = pooled[:, k].std(ddof=1)
            assert abs(est - true) <= Z * true / np.sqrt(2 * (n - 1)) + 1e-12, (bd.group, term, est, true)
        for i in range(len(bd.names)):
            for j in range(i + 1, len(bd.names)):
                key = f"cor[{bd.group}][{bd.names[i]},{bd.names[j]}]"
                true = first.truth.get(key, 0.0)
                est = np.corrcoef(pooled[:, i], pooled[:, j])[0, 1]
                assert abs(est - true) <= Z * (1 - true**2) / np.sqrt(n - 1), (key, est, true)


def test_response_is_generated_from_the_reported_truth(replications):
    sc, datasets = replications
    cell = sc.cell(0)
    if cell.family == "gaussian":
        resid = np.concatenate([ds.data.design.y - _eta(ds) for ds in datasets])
        sigma = cell.truth.sigma
        assert abs(resid.mean()) <= Z * sigma / np.sqrt(resid.size)
        assert abs(resid.std(ddof=1) - sigma) <= Z * sigma / np.sqrt(2 * (resid.size - 1))
    else:  # successes against trials * p: a standardised total
        from scipy.special import expit
        obs = np.concatenate([ds.data.design.y for ds in datasets])
        p = np.concatenate([expit(_eta(ds)) for ds in datasets])
        n = np.concatenate([ds.data.design.trials for ds in datasets])
        z = (obs.sum() - (n * p).sum()) / np.sqrt((n * p * (1 - p)).sum())
        assert abs(z) <= Z


def test_within_group_ols_slopes_recover_beta_and_slope_sd():
    """seed_slopes: per-group OLS slopes have mean beta and variance sd_b^2 + sigma^2 / Sxx_j."""
    sc = load_scenario("seed_slopes")
    slopes, noise = [], []
    for r in range(REPS):
        ds = dataset_for(sc, 0, r, 11)
        for _, grp in ds.frame.groupby("g", observed=True):
            x, y = grp["x"].to_numpy(), grp["y"].to_numpy()
            sxx = ((x - x.mean()) ** 2).sum()
            slopes.append(((x - x.mean()) * (y - y.mean())).sum() / sxx)
            noise.append(9.0**2 / sxx)
    slopes = np.array(slopes)
    var_expected = 0.25**2 + np.mean(noise)
    assert abs(slopes.mean() - 0.5) <= Z * np.sqrt(var_expected / slopes.size)
    # SE of a sample variance from the fourth central moment (the slopes are a normal mixture, not normal)
    centred = slopes - slopes.mean()
    se_var = np.sqrt((np.mean(centred**4) - np.mean(centred**2) ** 2) / slopes.size)
    assert abs(slopes.var(ddof=1) - var_expected) <= Z * se_var


def test_same_seed_gives_byte_identical_data():
    sc = load_scenario("seed_slopes")
    a, b = dataset_for(sc, 0, 3, 42), dataset_for(sc, 0, 3, 42)
    assert a.hash == b.hash and a.truth == b.truth
    assert dataset_for(sc, 0, 4, 42).hash != a.hash
    assert dataset_for(sc, 0, 3, 43).hash != a.hash


def test_replication_is_the_same_alone_or_in_a_batch():
    sc = load_scenario("crossed_psych")
    batch = [dataset_for(sc, 1, r, 5) for r in range(6)]
    alone = dataset_for(sc, 1, 4, 5)
    assert alone.hash == batch[4].hash
    assert [d.hash for d in reversed(batch)] == [dataset_for(sc, 1, r, 5).hash for r in reversed(range(6))]


def test_stratified_design_keeps_group_effects_cluster_does_not():
    sc = load_scenario("funding_like")
    cluster = next(c for c in sc.cells if c.design == "cluster").index
    strat = next(c for c in sc.cells if c.design == "stratified").index

    def effects(cell, rep):
        return {k: v for k, v in dataset_for(sc, cell, rep, 9).truth.items() if k.startswith("r[")}

    assert effects(strat, 0) == effects(strat, 1)
    assert dataset_for(sc, strat, 0, 9).hash != dataset_for(sc, strat, 1, 9).hash  # observations redrawn
    assert effects(cluster, 0) != effects(cluster, 1)


def test_fixed_covariates_are_the_same_in_every_replication_of_a_cluster_design():
    # Maas & Hox (2005) hold x (individual level) and z (group level) fixed; only effects and residuals vary
    sc = load_scenario("maas_hox")
    a, b = dataset_for(sc, 4, 0, 11).frame, dataset_for(sc, 4, 1, 11).frame
    assert a["x"].equals(b["x"]) and a["z"].equals(b["z"]) and not a["y"].equals(b["y"])
    assert (a.groupby("g", observed=True)["z"].nunique() == 1).all()
    assert not dataset_for(sc, 5, 0, 11).frame["x"].equals(a["x"])  # another cell draws its own
    pop = [dataset_for(load_scenario("mrp"), 0, r, 3).frame["pop"] for r in range(2)]
    assert pop[0].equals(pop[1])


def test_prior_dgp_draws_new_parameters_each_replication():
    sc = load_scenario("seed_slopes")
    cell = next(c for c in sc.cells if c.dgp == "prior").index
    sigmas = {dataset_for(sc, cell, r, 1).truth["sigma"] for r in range(5)}
    assert len(sigmas) == 5


def test_mrp_truth_is_the_population_weighted_mean():
    ds = dataset_for(load_scenario("mrp"), 0, 0, 3)
    from scipy.special import expit
    p = expit(_eta(ds))
    w = ds.frame["pop"].to_numpy()
    assert ds.truth["mrp"] == pytest.approx((w * p).sum() / w.sum(), rel=1e-12)
    # the sample is not representative: the raw sample proportion is not the estimand
    raw = ds.frame["y"].sum() / ds.frame["n"].sum()
    assert raw != pytest.approx(ds.truth["mrp"], abs=1e-6)


def test_every_scenario_cell_simulates():
    for name in shipped_scenarios():
        sc = load_scenario(name)
        for cell in sc.cells:
            ds = simulate(cell, np.random.default_rng(cell.index))
            assert isinstance(ds.frame, pd.DataFrame) and len(ds.frame) > 0
            assert set(ds.data.formula.variables) <= set(ds.frame.columns)
            assert all(np.isfinite(v) for v in ds.truth.values())
