"""Bayesian engines `stan` (PyStan) and `pymc` (PyMC + nutpie): priors, compile caching, case studies.

Statistical checks use Monte Carlo standard errors from the fits' own ESS: a posterior mean's MCSE is
sd / sqrt(ess_bulk).  Seeds are fixed, so a passing test passes every time on this software stack.
Compiles cost ~1-3 minutes cold (Stan C++ build, PyTensor/numba), so the engines are module-level
objects whose per-process caches every test shares.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from compare import posterior
from compare.catalogue import load_scenario
from compare.data import Dataset, FitData
from compare.errors import InputError
from compare.estimators import _bayes, get_estimator
from compare.formula import parse_formula
from compare.priors import parse_prior, parse_priors, resolve
from compare.simulate import dataset_for

VALENCE_PRIORS = ["b ~ normal(0, 1)", "Intercept ~ normal(50, 20)", "sigma ~ exponential(0.1)"]
FUNDING_PRIORS = ["Intercept ~ normal(0, 4)", "b ~ normal(0, 4)", "sd ~ cauchy(0, 1)", "cor ~ lkj(4)"]
SHORT = {"warmup": 200, "draws": 200}


# ---------------------------------------------------------------- priors

@pytest.mark.parametrize("text, fragment", [
    ("bogus ~ normal(0, 1)", "unknown class 'bogus'"),
    ("b ~ weibull(1, 2)", "unknown distribution 'weibull'"),
    ("b ~ normal(0)", "takes 2 arguments"),
    ("cor ~ normal(0, 1)", "takes lkj"),
    ("b normal(0, 1)", "expected 'class ~ distribution(args)'"),
    ("b ~ normal(0, -1)", "must be positive"),
    ("b ~ normal(0, x)", "must be numbers"),
])
def test_bad_prior_is_one_line_input_error(text, fragment):
    with pytest.raises(InputError) as err:
        parse_prior(text)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_prior_set_errors():
    with pytest.raises(InputError, match="given twice"):
        parse_priors(["b ~ normal(0, 1)", "b ~ cauchy(0, 1)"])
    with pytest.raises(InputError, match="centred at 0"):
        parse_priors(["sd ~ normal(1, 2)"])
    with pytest.raises(InputError, match="cannot be combined"):
        parse_priors(["cov ~ decov(1, 1, 1, 1)", "cor ~ lkj(2)"])


def test_parsed_priors_keep_brms_meaning():
    spec = parse_priors(FUNDING_PRIORS + ["sigma ~ student_t(3, 0, 2.5)"])
    assert spec.separate and spec.cor.args == (4.0,) and spec.sd.name == "cauchy"
    assert spec.sigma.args == (3.0, 0.0, 2.5)
    assert not parse_priors(["b ~ normal(0, 1)"]).separate


def test_rstanarm_default_scales():
    """Gaussian: b ~ N(0, 2.5 sd(y)/sd(x)), sd for a binary x too (rstanarm 2.21); Intercept N(mean y, 2.5 sd y);
    sigma Exp(1/sd y)."""
    rng = np.random.default_rng(1)
    y = rng.normal(10, 4, 200)
    X = np.column_stack([rng.normal(0, 3, 200), rng.integers(0, 2, 200) * 5.0])
    r = resolve(parse_priors([]), "gaussian", y, X, ["a", "b"], [("g", "Intercept"), ("g", "x")])
    sy = np.std(y, ddof=1)
    assert r.b_code == 1 and np.allclose(r.b_par[:, 1], [2.5 * sy / np.std(X[:, 0], ddof=1),
                                                           2.5 * sy / np.std(X[:, 1], ddof=1)])
    assert np.allclose(r.int_par[:2], [y.mean(), 2.5 * sy]) and math.isclose(r.sigma_par[0], 1 / sy)
    assert not r.separate and r.decov == (1.0, 1.0, 1.0, 1.0)
    g = resolve(parse_priors([]), "binomial", (y > 10).astype(float), X, ["a", "b"], [("g", "Intercept")])
    assert np.allclose(g.b_par[:, 1], [2.5 / np.std(X[:, 0], ddof=1), 2.5 / np.std(X[:, 1], ddof=1)])
    assert np.allclose(g.int_par[:2], [0, 2.5])


def test_coefficient_priors_reach_each_coefficient_and_term():
    """b[x], b[Intercept] (the data's scale) and sd[g][term] priors: parameters and a family per coefficient
    (hbench's samplers take a class mixing families), unknown names refused in one line."""
    X = np.random.default_rng(2).normal(0, 2, (50, 2))
    y = np.random.default_rng(3).normal(0, 1, 50)
    spec = parse_priors(["b[x] ~ normal(0.5, 0.5)", "b[Intercept] ~ normal(30, 10)", "sd[g][x] ~ normal(0, 0.3)",
                         "sd ~ normal(0, 20)", "cor ~ lkj(2)"])
    r = resolve(spec, "gaussian", y, X, ["x", "z"], [("g", "Intercept"), ("g", "x")])
    assert r.int_uncentred and list(r.int_par[:2]) == [30, 10]
    assert list(r.b_par[0, :2]) == [0.5, 0.5] and r.b_par[1, 1] == pytest.approx(2.5 * np.std(y, ddof=1) / np.std(X[:, 1], ddof=1))
    assert r.separate and r.sd_par[:, 1].tolist() == [20, 0.3] and r.lkj_eta == 2
    mixed = resolve(parse_priors(["sd[g][x] ~ cauchy(0, 1)", "sd ~ uniform(0, 100)"]), "gaussian", y, X, ["x", "z"],
                    [("g", "Intercept"), ("g", "x")])
    assert mixed.sd_codes.tolist() == [8, 3] and mixed.sd_bounds.tolist() == [[0, 100], [0, math.inf]]
    for bad, words in ((["b[w] ~ normal(0, 1)"], "no such coefficient"),
                       (["Intercept ~ normal(0, 1)", "b[Intercept] ~ normal(0, 1)"], "once")):
        with pytest.raises(InputError, match=words):
            resolve(parse_priors(bad), "gaussian", y, X, ["x", "z"], [("g", "Intercept"), ("g", "x")])


def test_scenario_priors_become_the_samplers_priors():
    """seed_slopes' [priors] as prior strings: the very distributions the prior-DGP truth is drawn from."""
    from compare.priors import for_cell

    sc = load_scenario("seed_slopes")
    prior_cell = next(c for c in sc.cells if c.dgp == "prior")
    design = dataset_for(sc, prior_cell.index, 0, 1).data.design
    strings = for_cell(None, prior_cell, design)
    assert strings == ("b[Intercept] ~ normal(30, 10)", "b[x] ~ normal(0.5, 0.5)", "sd[g][Intercept] ~ normal(0, 20)",
                       "sd[g][x] ~ normal(0, 0.3)", "cor ~ lkj(2.0)", "sigma ~ exponential(0.1)")
    assert for_cell(None, sc.cell(0), design) == ()  # fixed DGP: rstanarm's defaults unless asked
    assert for_cell("scenario", sc.cell(0), design) == strings
    assert for_cell(("b ~ normal(0, 1)",), prior_cell, design) == ("b ~ normal(0, 1)",)


@pytest.mark.parametrize("engine", ["stan", "pymc"])
def test_a_data_scale_intercept_prior_reaches_both_samplers(engine):
    """b[Intercept] ~ normal(30, 0.01) (the truth, inside the data's support) pins the intercept on the data's
    scale: its posterior mean is 30 within a few prior SDs. Put on the centred intercept instead, the same
    prior would give b[Intercept] = 30 - mean(x) * b[x], about 27.5 here (mean(x) = 5, b[x] = 0.5)."""
    ds = _seed_slopes(0)
    est = get_estimator(engine, {**SHORT, "chains": 2, "priors": ["b[Intercept] ~ normal(30, 0.01)"]})
    fit = est.fit(ds.data, seed=ds.seed)
    assert fit.param("b[Intercept]")["estimate"] == pytest.approx(30, abs=0.05)


# ---------------------------------------------------------------- shared post-processing (no sampling)

@pytest.mark.parametrize("q", [2, 3, 4])
def test_cpc_cholesky_and_its_log_jacobian(q):
    """The correlation parameterisation both engines use (glmm.stan writes the same loops): L is a valid
    correlation Cholesky factor and logjac is log|det d vech(L) / dy| (central differences)."""
    import pytensor.tensor as pt
    from pytensor import function

    from compare.estimators.pymc_nutpie import cpc_cholesky

    y = pt.vector("y")
    L, logjac = cpc_cholesky(pt, y, q)
    f = function([y], [L, logjac], mode="FAST_COMPILE")
    y0 = np.random.default_rng(q).normal(size=q * (q - 1) // 2)
    L0, lj = f(y0)
    assert np.allclose(np.diag(L0 @ L0.T), 1) and np.allclose(np.triu(L0, 1), 0)
    low = np.tril_indices(q, -1)
    h = 1e-6
    jac = np.array([(f(y0 + h * e)[0][low] - f(y0 - h * e)[0][low]) / (2 * h) for e in np.eye(y0.size)]).T
    assert math.isclose(np.log(abs(np.linalg.det(jac))), float(lj), rel_tol=1e-6, abs_tol=1e-6)


@pytest.mark.parametrize("engine", ["stan", "pymc"])
def test_constant_gaussian_response_is_refused_before_sampling(engine):
    ds = _seed_slopes(0)
    ds.frame["y"] = 3.0
    with pytest.raises(ValueError, match="constant"):
        get_estimator(engine).fit(ds.data, seed=ds.seed)


def test_interval_level_gives_central_quantiles():
    """Posterior intervals at `level` are the (1 -/+ level)/2 quantiles of the pooled draws."""
    draws = np.random.default_rng(1).normal(size=(4, 500, 1))
    for level in (0.95, 0.5):
        (row,) = _bayes.summary_rows(["a"], draws, level)
        lo, hi = np.quantile(draws.ravel(), [0.5 - level / 2, 0.5 + level / 2])
        assert (row["lower"], row["upper"]) == (pytest.approx(lo), pytest.approx(hi))


def _point_draws(md, ds, chains=2, n=50):
    """Draws that sit exactly on the simulation truth: every summary must then reproduce the truth."""
    t = ds.truth
    b = np.array([t[f"b[{n_}]"] for n_ in md.x_names])
    sd = np.array([t[f"sd[{blk.group}][{x}]"] for blk in md.blocks for x in blk.names])
    cor = np.array([t[f"cor[{blk.group}][{blk.names[i]},{blk.names[j]}]"] for blk in md.blocks for i, j in blk.pairs])
    r = np.array([t[f"r[{blk.group}][{lv},{x}]"] for blk in md.blocks for lv in blk.levels for x in blk.names])
    tile = lambda v: np.broadcast_to(v, (chains, n, v.size)).copy()  # noqa: E731
    sigma = np.full((chains, n), t["sigma"]) if "sigma" in t else None
    return _bayes.Draws(tile(b), tile(sd), tile(cor), tile(r), sigma)


def test_mrp_and_loglik_from_draws_match_truth():
    ds = dataset_for(load_scenario("mrp"), 0, 0, 11)
    md = _bayes.prepare(ds.data, ())
    draws = _point_draws(md, ds)
    w = ds.frame[ds.data.poststratify].to_numpy(float)
    ll, mrp = _bayes.pointwise(md, draws, w)
    assert np.allclose(mrp, ds.truth["mrp"], rtol=1e-10)
    assert ll.shape == (2, 50, md.N) and np.all(np.isfinite(ll))


def test_pred_new_draws_new_group_effects():
    """Gaussian pred_new = mean covariate row's prediction + new-group effect + noise: its spread is the
    model's sd(Intercept + x_bar * slope + eps); checked against the analytic value within 5 MC SEs."""
    ds = dataset_for(load_scenario("seed_slopes"), 0, 0, 3)
    md = _bayes.prepare(ds.data, ())
    draws = _point_draws(md, ds, chains=4, n=5000)
    pred = _bayes.pred_new(md, draws, seed=5).ravel()
    t = ds.truth
    xbar = md.Z[:, 1].mean()
    var = (t["sd[g][Intercept]"] ** 2 + (xbar * t["sd[g][x]"]) ** 2
           + 2 * xbar * t["cor[g][Intercept,x]"] * t["sd[g][Intercept]"] * t["sd[g][x]"] + t["sigma"] ** 2)
    mean = t["b[Intercept]"] + t["b[x]"] * md.X[:, 1].mean()
    assert abs(pred.mean() - mean) < 5 * math.sqrt(var / pred.size)
    assert abs(pred.var() / var - 1) < 5 * math.sqrt(2 / pred.size)


# ---------------------------------------------------------------- engines

# stan on PyStan: the httpstan traps below are PyStan's (the CmdStan backend: tests/test_stan_backends.py)
ENGINES = {"stan": get_estimator("stan", {**SHORT, "priors": VALENCE_PRIORS, "backend": "pystan"}),
           "pymc": get_estimator("pymc", {**SHORT, "priors": VALENCE_PRIORS})}


def _seed_slopes(rep: int) -> Dataset:
    return dataset_for(load_scenario("seed_slopes"), 0, rep, 2024)


def _deleted_our_fits(fit) -> bool:
    """stan notes when it could not find (and delete) its chains' fit files in httpstan's cache."""
    return not any("httpstan fit cache" in n for n in fit.notes)


@pytest.mark.parametrize("engine", ["pymc", "stan"])
def test_compile_once_per_shape(engine, tmp_path, monkeypatch):
    """3 replications of one shape: one compile, three real fits on three different datasets."""
    monkeypatch.chdir(tmp_path)  # any build/ folder would appear here
    est = ENGINES[engine]
    fits = [est.fit(ds.data, seed=ds.seed) for ds in map(_seed_slopes, range(3))]
    counts = [f.compile_count for f in fits]
    assert sum(counts) <= 1 and counts[1:] == [0, 0]  # 0 on the first if an earlier test compiled
    assert all(f.compile_s == 0 for f in fits[1:]) and all(f.sampling_s > 0 for f in fits)
    means = [f.param("b[x]")["estimate"] for f in fits]
    assert len(set(means)) == 3
    for f in fits:
        assert f.engine == engine and f.singular is None
        assert math.isfinite(f.sampler.loo_elpd) and math.isfinite(f.sampler.p_loo) and f.sampler.pareto_k_gt_07 >= 0
        assert f.param("pred_new[g]")["interval"] == "quantile"
        assert not f.params["estimate"].isna().any()
    assert list(tmp_path.iterdir()) == []  # no build/ folder or other droppings in the working directory
    assert all(_deleted_our_fits(f) for f in fits)


def test_stan_same_seed_same_data_is_reproducible_and_not_a_cached_fit():
    """httpstan would return its cached fit for an identical request; the nonce makes each a new run,
    and a fixed seed makes the run reproducible."""
    ds = _seed_slopes(0)
    a, b = ENGINES["stan"].fit(ds.data, seed=ds.seed), ENGINES["stan"].fit(ds.data, seed=ds.seed)
    pd.testing.assert_frame_equal(a.params, b.params)
    assert _deleted_our_fits(a) and _deleted_our_fits(b)


# brms b13.bonus_2 on the original NWO data, as printed in the seed: (estimate, est.error, bulk ESS)
FUNDING_SEED = {"b[Intercept]": (-1.62, 0.14, 1927), "b[male]": (0.15, 0.17, 2189),
                "sd[discipline][Intercept]": (0.28, 0.14, 1050), "sd[discipline][male]": (0.33, 0.17, 899),
                "cor[discipline][Intercept,male]": (-0.18, 0.31, 2078)}


def funding_data() -> FitData:
    """The seed's funding table with the original NWO Medical-sciences counts (shared FINDINGS)."""
    disc = ["Chemical sciences", "Physical sciences", "Physics", "Humanities", "Technical sciences",
            "Interdisciplinary", "Earth/life sciences", "Social sciences", "Medical sciences"]
    frame = pd.DataFrame({
        "discipline": np.repeat(disc, 2), "male": [1, 0] * 9,
        "applications": [83, 39, 135, 39, 67, 9, 230, 166, 189, 62, 105, 78, 156, 126, 425, 409, 245, 260],
        "awards": [22, 10, 26, 9, 18, 2, 33, 32, 30, 13, 12, 17, 38, 18, 65, 47, 46, 29]})
    formula = parse_formula("awards | trials(applications) ~ 1 + male + (1 + male | discipline)")
    return FitData(frame, formula, "binomial", "logit", label="NWO funding")


# The seed's two worked examples (funding table, valence model) are refitted by every engine in
# tests/test_seed_examples.py.


def test_pymc_result_does_not_depend_on_which_dataset_compiled_the_model():
    """A worker compiles once per shape and reuses the model for other datasets (`with_data`): the same data
    and seed must give the same draws whether the model was compiled from them or from another replication
    (otherwise a resumed run differs from an uninterrupted one). Everything data-dependent is pm.Data, and the
    start values (support points of data-scaled priors) follow the new data too."""
    from compare.estimators.pymc_nutpie import PyMCNutpieEstimator

    a, b = _seed_slopes(0), _seed_slopes(1)
    engine = get_estimator("pymc", SHORT)  # rstanarm's default priors: their scales (and start values) are data
    PyMCNutpieEstimator._compiled.clear()
    engine.fit(b.data, seed=b.seed)  # compiled from b
    reused = engine.fit(a.data, seed=a.seed)  # a through with_data
    PyMCNutpieEstimator._compiled.clear()
    fresh = engine.fit(a.data, seed=a.seed)  # compiled from a
    assert fresh.compile_count == 1 and reused.compile_count == 0
    cols = ["parameter", "estimate", "se", "lower", "upper"]
    pd.testing.assert_frame_equal(reused.params[cols], fresh.params[cols], check_exact=True)


def test_kept_draws_reload_and_reproduce_the_stored_summaries(tmp_path):
    """keep_draws = true: a task writes the fit's InferenceData beside its part; reloaded, its posterior means
    are exactly the stored estimates, its replicated outcomes have the data's shape, and the report's
    predictive check draws its bands from them."""
    from compare.report.plots import ppc
    from compare.settings import parse
    from compare.suite import EngineSpec
    from compare.tasks import Task, run_task

    sc = load_scenario("seed_slopes")
    settings = parse(ENGINES["pymc"].Settings, {**SHORT, "chains": 2, "priors": VALENCE_PRIORS, "keep_draws": True},
                     "test")
    task = Task("seed_slopes", str(sc.path), 0, 0, 2024, (EngineSpec("pymc", settings),), str(tmp_path))
    rows = run_task(task).to_pandas()
    path = posterior.draws_path(tmp_path, task.key, "pymc")
    assert path.is_file() and not list(path.parent.glob("*.tmp"))
    idata = posterior._az().from_netcdf(path)
    stored = rows.set_index("parameter")["estimate"]
    for cls in ("b", "sd", "cor", "sigma", "r"):
        values = idata.posterior[cls].values
        flat = values.reshape(values.shape[0] * values.shape[1], -1)
        names = idata.posterior[cls].coords[f"{cls}_name"].values if values.ndim > 2 else ["sigma"]
        for j, name in enumerate(names):
            assert flat[:, j].mean() == stored[str(name)], name  # exactly: the same draws, the same arithmetic
    ds = dataset_for(sc, 0, 0, 2024)
    y_rep = idata.posterior_predictive["y"].values
    assert y_rep.shape == (2, 200, len(ds.frame)) and "pred_new" in idata.posterior_predictive
    assert np.array_equal(idata.observed_data["y"].values, ds.frame["y"].to_numpy())
    fig = ppc.plot(rows.assign(scenario="seed_slopes", cell=0, rep=0), ds.data, "seed_slopes", 0, 0,
                   {"pymc": y_rep.reshape(-1, y_rep.shape[-1])})
    assert fig is not None and "kept draws" in fig._suptitle.get_text()
