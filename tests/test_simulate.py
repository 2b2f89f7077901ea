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
        if cell.shapes.log_sigma:
            pytest.skip("heteroscedastic: sigma is the SD at x = 0 only (test_heteroscedastic_errors_follow_the_log_linear_sd)")
        resid = np.concatenate([ds.data.design.y - _eta(ds) for ds in datasets])
        sigma = cell.truth.sigma
        if cell.formula.response.se is not None:  # y | se(s): each row's known SD (and sigma beside it, if any)
            sd = np.concatenate([np.hypot(ds.data.design.se, sigma or 0.0) for ds in datasets])
            resid, sigma = resid / sd, 1.0
        assert abs(resid.mean()) <= Z * sigma / np.sqrt(resid.size)
        assert abs(resid.std(ddof=1) - sigma) <= Z * sigma / np.sqrt(2 * (resid.size - 1))
    elif cell.family == "poisson":  # counts against the rate: a standardised total (variance = mean)
        obs = np.concatenate([ds.data.design.y for ds in datasets])
        mu = np.concatenate([np.exp(_eta(ds)) for ds in datasets])
        assert abs((obs.sum() - mu.sum()) / np.sqrt(mu.sum())) <= Z
    elif cell.family == "negbinomial":  # the same with NB2's variance mu + mu^2 / phi
        obs = np.concatenate([ds.data.design.y for ds in datasets])
        mu = np.concatenate([np.exp(_eta(ds)) for ds in datasets])
        phi = datasets[0].truth["phi"]
        assert abs((obs.sum() - mu.sum()) / np.sqrt((mu + mu**2 / phi).sum())) <= Z
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


def test_the_dataset_hash_sees_every_change_a_fit_would():
    """The hash is read from the columns' buffers: equal for a copy, different after a change in the last bit of
    one value, a relabelled or reordered factor level, a renamed column, a missing text cell or a dtype."""
    from compare.data import frame_hash

    frame = pd.DataFrame(
        {"g": pd.Categorical(["a", "b", "a"]), "x": [0.1, 0.2, 0.3], "n": [1, 2, 3], "s": ["u", "v", "w"]}
    )
    base = frame_hash(frame)
    assert frame_hash(frame.copy()) == base
    bit = frame.copy()
    bit.loc[1, "x"] = np.nextafter(0.2, 1.0)
    relabel = frame.assign(g=pd.Categorical(["a", "c", "a"]))
    reorder = frame.assign(g=pd.Categorical(["a", "b", "a"], categories=["b", "a"]))
    missing = frame.assign(s=["u", None, "w"])
    changed = [bit, relabel, reorder, missing, frame.rename(columns={"x": "z"}), frame.astype({"n": "float64"})]
    assert len({base, *map(frame_hash, changed)}) == 1 + len(changed)


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


# --- shapes of group effects and errors ([shape]) ---------------------------------------------------------------
# Each shape is drawn standardized; its sample mean, SD, skewness and excess kurtosis are checked against theory
# (scipy.stats, or the closed-form moments of the normal mixture) on N fixed-seed draws. Tolerance: Z standard
# errors of each statistic from the delta method: a sample moment statistic T has variance E[IF(X)^2] / N where
# IF is its influence function, a polynomial in X, so the variance needs the shape's central moments up to the
# eighth (second for the mean, fourth for the SD). Where a needed moment is infinite (t(5): sixth and eighth),
# that statistic's sample value has no finite variance and is not checked; t(5)'s whole distribution is checked
# instead by Kolmogorov-Smirnov at level 1e-4 (a robust check), and t(10) checks the t's skewness and kurtosis.
SHAPE_N = 1_000_000
SHAPE_CASES = {
    "normal": {}, "chisq": {"df": 1}, "chisq3": {"df": 3}, "laplace": {}, "uniform": {}, "t": {"df": 5},
    "t10": {"df": 10}, "skewnormal": {"alpha": 4}, "lognormal": {"sdlog": 0.5},
    "mixture": {"p": 0.1, "delta": 0, "ratio": 3}, "mixture_bimodal": {"p": 0.5, "delta": 3, "ratio": 1},
}


def _shape(case):
    from compare.distributions import parse_shape

    kind = "mixture" if case.startswith("mixture") else "".join(c for c in case if c.isalpha())
    return parse_shape({"dist": kind, **SHAPE_CASES[case]}, "test")


def _central_moments(shape, upto=8):
    """Central moments mu_0..mu_upto of the unstandardized shape (nan where infinite)."""
    from math import comb

    raw = [1.0] + [shape.raw_moment(k) for k in range(1, upto + 1)]
    m = raw[1]
    return [sum(comb(k, j) * raw[j] * (-m) ** (k - j) for j in range(k + 1)) for k in range(upto + 1)]


def _influence_variance(terms, mu):
    """E[IF^2] for IF = sum c_k (X - mean)^k given as {k: c_k}, from central moments mu."""
    return sum(a * b * mu[i + j] for i, a in terms.items() for j, b in terms.items())


def _standard_errors(shape):
    """Delta-method SEs of the sample mean, SD, skewness and excess kurtosis of N standardized draws."""
    mu = _central_moments(shape)
    s2 = mu[2]
    mu = [v / s2 ** (k / 2) for k, v in enumerate(mu)]  # standardized: mu2 = 1
    if2 = {2: 1.0, 0: -1.0}  # IF of m2 (mean 0, so no first-order term from the mean's estimation)
    if3 = {3: 1.0, 0: -mu[3], 1: -3 * mu[2]}
    if4 = {4: 1.0, 0: -mu[4], 1: -4 * mu[3]}
    sd = {k: 0.5 * v for k, v in if2.items()}
    skew = {k: if3.get(k, 0) - 1.5 * mu[3] * if2.get(k, 0) for k in set(if3) | set(if2)}
    kurt = {k: if4.get(k, 0) - 2 * mu[4] * if2.get(k, 0) for k in set(if4) | set(if2)}
    n = SHAPE_N
    return [np.sqrt(_influence_variance(t, mu) / n) for t in ({1: 1.0}, sd, skew, kurt)]


@pytest.mark.parametrize("case", sorted(SHAPE_CASES))
def test_shape_draws_have_mean_0_sd_1_and_the_theoretical_skewness_and_kurtosis(case):
    from scipy import stats

    shape = _shape(case)
    x = shape.standard(np.random.default_rng(sorted(SHAPE_CASES).index(case)), SHAPE_N)
    mu = _central_moments(shape)
    skew_true, kurt_true = mu[3] / mu[2] ** 1.5, mu[4] / mu[2] ** 2 - 3
    if shape.scipy() is not None:  # scipy's own figures agree with the moments used here
        s, k = shape.scipy().stats("sk")
        assert skew_true == pytest.approx(float(s), abs=1e-6) and kurt_true == pytest.approx(float(k), abs=1e-6)
    got = [x.mean(), x.std(), stats.skew(x), stats.kurtosis(x)]
    ses = _standard_errors(shape)
    for name, g, true, se in zip(("mean", "sd", "skewness", "kurtosis"), got, (0.0, 1.0, skew_true, kurt_true), ses):
        if np.isfinite(se):
            assert abs(g - true) <= Z * se, (case, name, g, true, se)
    if case == "t":  # sixth and eighth moments infinite: the distribution instead
        assert not np.isfinite(ses[2]) and not np.isfinite(ses[3])
        mean, sd = shape.mean_sd()
        assert stats.kstest(x, lambda q: shape.scipy().cdf(q * sd + mean)).pvalue > 1e-4


def test_chisq1_has_the_skewness_and_kurtosis_maas_and_hox_used():
    mu = _central_moments(_shape("chisq"))
    assert mu[3] / mu[2] ** 1.5 == pytest.approx(2.828, abs=1e-3)  # sqrt(8)
    assert mu[4] / mu[2] ** 2 - 3 == pytest.approx(12.0)


SHAPED = """
name = "shaped"
formula = "y ~ x + (1 + x | g)"
family = "gaussian"
[layout]
factors = { g = 4000 }
size = 2
[covariates]
x = { dist = "normal", mean = 0, sd = 1 }
[truth]
b = { Intercept = 1, x = 0.5 }
sd = { g = { Intercept = 2, x = 0.5 } }
cor = { g = { "Intercept,x" = 0.6 } }
sigma = 1.5
[shape]
g = { Intercept = { dist = "chisq", df = 1 }, x = { dist = "laplace" } }
residual = { dist = "uniform" }
"""


def _spec(tmp_path, text, name="shaped"):
    from compare.spec import read_scenario

    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return read_scenario(path)


def test_shaped_group_effects_keep_the_true_sds_and_pearson_correlation(tmp_path):
    """J = 4000 effects with chisq(1) intercepts and Laplace slopes, correlated 0.6 through the Cholesky factor:
    SDs and the Pearson correlation as in [truth] (Z SEs from the fourth moments / (1 - rho^2)/sqrt(J) bound
    widened by the kurtosis), the intercept keeps chisq(1)'s skewness (first term of the Cholesky factor)."""
    from scipy import stats

    sc = _spec(tmp_path, SHAPED)
    ds = simulate(sc.cell(0), np.random.default_rng(5))
    u = _effects(ds)[block_key(ds.data.design.blocks[0])]
    j = u.shape[0]
    for k, sd in enumerate((2.0, 0.5)):
        # SE of an SD: sd sqrt((excess kurtosis + 2) / (4 J)), at chisq(1)'s 12 (the larger of the two shapes')
        assert abs(u[:, k].std(ddof=1) - sd) <= Z * sd * np.sqrt((12 + 2) / (4 * j)), (k, u[:, k].std())
    # correlation: the normal-theory SE inflated by sqrt(1 + excess kurtosis / 2) of the heavier margin, a
    # conservative bound for non-normal pairs
    r = np.corrcoef(u.T)[0, 1]
    assert abs(r - 0.6) <= Z * (1 - 0.36) / np.sqrt(j) * np.sqrt(1 + 12 / 2), r
    assert stats.skew(u[:, 0]) > 1.5  # chisq(1): 2.83; a normal intercept would give about 0
    resid = ds.data.design.y - _eta(ds)  # uniform errors: SD 1.5 and no tails beyond sqrt(3) * 1.5
    assert abs(resid.std(ddof=1) - 1.5) <= Z * 1.5 * np.sqrt((-1.2 + 2) / (4 * resid.size))
    assert np.abs(resid).max() <= np.sqrt(3) * 1.5 + 1e-9


def test_no_shape_table_draws_what_it_always_drew(tmp_path):
    """[shape] with every shape normal is the same data as no [shape] at all (the historical draws)."""
    plain = SHAPED.split("[shape]")[0]
    normal = plain + '[shape]\ng = { dist = "normal" }\nresidual = { dist = "normal" }\n'
    a = simulate(_spec(tmp_path, plain, "a").cell(0), np.random.default_rng(1))
    b = simulate(_spec(tmp_path, normal, "b").cell(0), np.random.default_rng(1))
    assert a.hash == b.hash


HETERO = """
name = "hetero"
formula = "y ~ x + (1 | g)"
family = "gaussian"
[layout]
factors = { g = 400 }
size = 100
[covariates]
x = { dist = "normal", mean = 0, sd = 1 }
[truth]
b = { Intercept = 1, x = 0.5 }
sd = { g = { Intercept = 1 } }
sigma = 2
[shape]
residual = { log_sigma = { x = 0.4, g = 0.5 } }
"""


def test_heteroscedastic_errors_follow_the_log_linear_sd(tmp_path):
    """log sigma_i = log 2 + 0.4 x_i + v_g, v_g ~ N(0, 0.5^2). log|e_i| = log sigma_i + log|z_i| with
    var(log|z|) = pi^2 / 8 for normal z, so regressing log|e| on x and group dummies recovers 0.4 with OLS SE
    sqrt(pi^2 / 8 / (N var x)); per-group mean log|e| has variance 0.25 + pi^2 / (8 n), checked against its SE
    sqrt(2 / (J - 1)) times that (normal theory, the group means being near normal at n = 100)."""
    ds = simulate(_spec(tmp_path, HETERO, "hetero").cell(0), np.random.default_rng(3))
    frame = ds.frame.assign(l=np.log(np.abs(ds.data.design.y - _eta(ds))))
    within = frame.groupby("g", observed=True)[["x", "l"]].transform(lambda c: c - c.mean())
    slope = (within["x"] * within["l"]).sum() / (within["x"] ** 2).sum()
    n = len(frame)
    assert abs(slope - 0.4) <= Z * np.sqrt(np.pi**2 / 8 / (n * frame["x"].var())), slope
    # group means of log|e| - 0.4 x: log 2 + E log|z| + v_g + noise
    means = (frame["l"] - 0.4 * frame["x"]).groupby(frame["g"], observed=True).mean()
    expected = 0.25 + np.pi**2 / 8 / 100
    assert abs(means.var() - expected) <= Z * np.sqrt(2 / (len(means) - 1)) * expected, means.var()
    e_log_abs_z = -(np.euler_gamma + np.log(2)) / 2
    assert abs(means.mean() - (np.log(2) + e_log_abs_z)) <= Z * np.sqrt(expected / len(means))


MISSING = HETERO.split("[shape]")[0].replace("factors = { g = 400 }", "factors = { g = 200 }").replace(
    "size = 100", "size = 50")


def test_mcar_and_mar_dropout_remove_the_stated_share_of_rows(tmp_path):
    """Dropout comes last, so a spec with it sees a subset of the rows of the same spec without it (same seed).
    The count dropped is a sum of independent Bernoulli(p_i) with mean(p_i) = rate: Z * sqrt(N rate (1 - rate))
    bounds it. Under MAR with slope 1.5 on x the dropped rows' x is above the full sample's (by far more than
    Z SEs: the mean of x among the dropped is about 0.5 here)."""
    full = simulate(_spec(tmp_path, MISSING, "full").cell(0), np.random.default_rng(8)).frame
    n = len(full)
    for extra, name in (("[dropout]\nrate = 0.3\n", "mcar"), ('[dropout]\nrate = 0.3\nby = "x"\nslope = 1.5\n', "mar")):
        seen = simulate(_spec(tmp_path, MISSING + extra, name).cell(0), np.random.default_rng(8)).frame
        assert seen.notna().all().all()
        dropped = n - len(seen)
        assert abs(dropped - 0.3 * n) <= Z * np.sqrt(n * 0.3 * 0.7), (name, dropped)
        merged = full.merge(seen, how="left", on=["g", "x", "y"], indicator=True)
        assert (merged["_merge"] == "both").sum() == len(seen)  # the engines' rows are rows of the full data
        gone = merged.loc[merged["_merge"] == "left_only", "x"]
        shift = gone.mean() - full["x"].mean()
        if name == "mcar":
            assert abs(shift) <= Z * np.sqrt(1 / len(gone) + 1 / n)
        else:
            assert shift > 0.3


@pytest.mark.parametrize("size", ['{ dist = "poisson", mean = 6, min = 2 }', '{ dist = "negbinomial", mean = 6, phi = 2 }'])
def test_cluster_sizes_drawn_from_a_distribution_with_a_minimum(tmp_path, size):
    """Group sizes: J = 2000 draws of max(X, min); their mean against E max(X, min) computed from scipy's pmf,
    tolerance Z * sd / sqrt(J) with the sd of max(X, min) from the same pmf."""
    from scipy import stats

    text = MISSING.replace("factors = { g = 200 }", "factors = { g = 2000 }").replace("size = 50", f"size = {size}")
    cell = _spec(tmp_path, text, "sizes").cell(0)
    sizes = simulate(cell, np.random.default_rng(4)).frame.groupby("g", observed=True).size().to_numpy()
    p = cell.layout.size.params
    dist = stats.poisson(p["mean"]) if "phi" not in p else stats.nbinom(p["phi"], p["phi"] / (p["phi"] + p["mean"]))
    k = np.arange(0, 200)
    values = np.maximum(k, p["min"])
    e1 = (values * dist.pmf(k)).sum()
    sd = np.sqrt((values**2 * dist.pmf(k)).sum() - e1**2)
    assert sizes.min() >= p["min"] and len(sizes) == 2000
    assert abs(sizes.mean() - e1) <= Z * sd / np.sqrt(len(sizes)), (sizes.mean(), e1)
    # SE of an SD: sd sqrt((excess kurtosis + 2) / (4 J)), below sd sqrt(2 / J) for excess kurtosis < 6 (NB2 at
    # mean 6, phi 2: about 3.1)
    assert abs(sizes.std() - sd) <= Z * sd * np.sqrt(2 / len(sizes))


def test_endogenous_covariate_group_part_correlates_with_the_random_intercept(tmp_path):
    """mundlak's x with J = 5000: cor(xbar_j, u_j) = cor * sd_m / sqrt(sd_m^2 + var(w) / n) = 0.5 / sqrt(1.1)
    (normal theory SE (1 - r^2) / sqrt(J), all parts normal); x_within + x_mean = x, x_within sums to 0 in a
    group; both formulas of the shipped scenario see the same kind of data (same columns)."""
    from compare.catalogue import SHIPPED

    text = (SHIPPED / "mundlak.toml").read_text().replace("factors = { g = 50 }", "factors = { g = 5000 }")
    sc = _spec(tmp_path, text, "mundlak")
    ds = simulate(sc.cell(0), np.random.default_rng(2))
    f = ds.frame
    xbar = f.groupby("g", observed=True)["x"].mean()
    u = np.array([ds.truth[f"r[g][{lv},Intercept]"] for lv in xbar.index.astype(str)])
    r, true = np.corrcoef(xbar.to_numpy(), u)[0, 1], 0.5 / np.sqrt(1.1)
    assert abs(r - true) <= Z * (1 - true**2) / np.sqrt(len(u)), r
    assert np.allclose(f["x_within"] + f["x_mean"], f["x"])
    assert np.allclose(f.groupby("g", observed=True)["x_within"].sum(), 0, atol=1e-9)
    exogenous = simulate(sc.cell(1), np.random.default_rng(2)).frame
    xbar0 = exogenous.groupby("g", observed=True)["x"].mean().to_numpy()
    assert abs(np.corrcoef(xbar0, u)[0, 1]) <= Z / np.sqrt(len(u))  # cor = 0: independent of the same u draw
    assert set(simulate(sc.cell(2), np.random.default_rng(2)).frame.columns) == set(f.columns)
