"""The R samplers `rstanarm` and `brms`: their prior translations (refused before anything runs where the
package cannot express a prior), agreement with the `stan` engine on the seed's funding data within Monte
Carlo error, and brms's compile-once reuse with each dataset's own default priors.

Fits are marked slow (a brms compile takes 1-4 minutes and ~2 GB). A posterior mean's MCSE is sd / sqrt(ess_bulk);
seeds are fixed, so a passing test passes every time on this software stack. Tests that fit skip with the
reason when R, rpy2 or the package is missing.
"""

from __future__ import annotations

import math
import re

import pytest

from compare import testing
from compare.cli import main
from compare.errors import InputError
from compare.estimators import get_estimator
from compare.estimators import _bayes
from compare.estimators.rstanarm import rstanarm_priors
from compare.estimators.brms import brms_priors
from compare.priors import parse_priors
from tests.test_bayes import FUNDING_PRIORS, FUNDING_SEED, funding_data


def _needs(engine: str):
    status = get_estimator(engine).available()
    return pytest.mark.skipif(not status, reason=f"{engine} unavailable: {status.reason}")


def _mcse(row) -> float:
    return row["se"] / math.sqrt(row["ess_bulk"])


# ---- settings and priors (no fitting) ---------------------------------------------------------------

def test_defaults_are_the_packages_own():
    arm, brm = get_estimator("rstanarm").settings, get_estimator("brms").settings
    assert (arm.chains, arm.warmup, arm.draws, arm.adapt_delta, arm.max_treedepth, arm.QR, arm.cores, arm.priors) == \
        (4, 1000, 1000, 0.95, 15, False, 1, ())
    assert (brm.adapt_delta, brm.max_treedepth, brm.cores, brm.priors) == (0.95, 10, 1, ())
    assert not hasattr(brm, "QR")


def test_rstanarm_prior_translation():
    """Class priors on the data's scale (autoscale = FALSE); `prior` as one location/scale per coefficient."""
    strings = ["b ~ normal(0, 1)", "Intercept ~ student_t(3, 50, 20)", "cov ~ decov(2, 1, 1, 3)"]
    md = _bayes.prepare(funding_data(), tuple(strings))
    args = rstanarm_priors(parse_priors(strings + ["sigma ~ exponential(0.1)"]), md)
    assert args == {"prior": ("normal", {"location": (0.0,), "scale": (1.0,), "autoscale": False}),
                    "prior_intercept": ("student_t", {"df": 3.0, "location": 50.0, "scale": 20.0, "autoscale": False}),
                    "prior_aux": ("exponential", {"rate": 0.1, "autoscale": False}),
                    "prior_covariance": ("decov", {"regularization": 2.0, "concentration": 1.0, "shape": 1.0,
                                                   "scale": 3.0})}
    assert rstanarm_priors(parse_priors([]), md) == {}  # rstanarm's own defaults


@pytest.mark.parametrize("engine, priors, fragment", [
    ("rstanarm", ["sd ~ cauchy(0, 1)"], "stan_glmer's only covariance prior is decov"),
    ("rstanarm", ["cor ~ lkj(2)"], "stan_glmer's only covariance prior is decov"),
    ("rstanarm", ["sigma ~ gamma(2, 1)"], "prior_aux takes"),
    ("brms", ["cov ~ decov(1, 1, 1, 1)"], "brms has no decov prior"),
])
def test_priors_a_package_cannot_express_are_refused_by_the_settings(engine, priors, fragment):
    """One InputError line from the settings' problems(), so suites and `hbench fit` refuse before any fit."""
    with pytest.raises(InputError) as err:
        get_estimator(engine, {"priors": priors})
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_hbench_fit_refuses_an_inexpressible_prior_before_fitting(capsys, tmp_path):
    csv = tmp_path / "funding.csv"
    funding_data().frame.to_csv(csv, index=False)
    code = main(["fit", str(csv), "--formula", "awards | trials(applications) ~ 1 + male + (1 + male | discipline)",
                 "--family", "binomial", "--engine", "rstanarm", "--prior", "sd ~ cauchy(0, 1)"])
    _, err = capsys.readouterr()
    assert code == 2 and "stan_glmer's only covariance prior is decov" in err and len(err.strip().splitlines()) == 1


def test_brms_prior_strings_map_one_to_one():
    """(prior, class, coef, group, lb, ub, label) for set_prior: coefficient and group priors by coef/group, a
    uniform SD prior as the class bound brms needs."""
    got = brms_priors(parse_priors(FUNDING_PRIORS + ["sigma ~ uniform(0, 9)", "b[male] ~ normal(0, 1)",
                                                     "sd[discipline][male] ~ gamma(2, 1)"]))
    assert got == [
        ("normal(0.0, 4.0)", "Intercept", "", "", "", "", "Intercept"), ("normal(0.0, 4.0)", "b", "", "", "", "", "b"),
        ("cauchy(0.0, 1.0)", "sd", "", "", "", "", "sd"), ("lkj(4.0)", "cor", "", "", "", "", "cor"),
        ("uniform(0.0, 9.0)", "sigma", "", "", "0.0", "9.0", "sigma"),
        ("normal(0.0, 1.0)", "b", "male", "", "", "", "b[male]"),
        ("gamma(2.0, 1.0)", "sd", "male", "discipline", "", "", "sd[discipline][male]")]


# ---- fits ------------------------------------------------------------------------------------------

def _agree(fit, ref, names: list[str], k: float = 3.5) -> None:
    for name in names:
        a, b = fit.param(name), ref.param(name)
        tol = k * math.hypot(_mcse(a), _mcse(b))
        assert abs(a["estimate"] - b["estimate"]) <= tol, (name, a["estimate"], b["estimate"], tol)


FUNDING_NAMES = list(FUNDING_SEED)
LONG = {"chains": 4, "warmup": 1000, "draws": 1000}


@pytest.fixture(scope="module")
def stan_funding():
    """The `stan` engine's fits of the funding data: rstanarm-expressible priors (decov) and brms's (sd, cor)."""
    def fit(priors):
        return get_estimator("stan", {**LONG, "priors": priors, "adapt_delta": 0.95}).fit(funding_data(), seed=20240502)
    return {"decov": fit(FUNDING_PRIORS[:2]), "separate": fit(FUNDING_PRIORS)}


@pytest.mark.slow
@_needs("rstanarm")
def test_rstanarm_funding_agrees_with_stan(stan_funding):
    """stan_glmer with normal(0, 4) on the intercept and coefficient and its default decov(1, 1, 1, 1): the same
    posterior as hbench's `stan` with the same priors (means of b, sd, cor and the 18 group effects within 3.5
    combined MCSEs, 4 for group effects); rstanarm's own diagnostics are read (R-hat, no divergences)."""
    fit = get_estimator("rstanarm", {**LONG, "priors": FUNDING_PRIORS[:2]}).fit(funding_data(), seed=20240502)
    ref = stan_funding["decov"]
    assert fit.sampler.rhat_max_hyper <= 1.01 and fit.sampler.divergences <= 10
    assert fit.compile_count == 0 and fit.sampling_s > 0 and math.isfinite(fit.sampler.ebfmi_min)
    assert any("adapt_delta = 0.95" in n and "max_treedepth = 15" in n for n in fit.notes)
    assert any("normal(location = 0, scale = 4)" in n for n in fit.notes)  # rstanarm's own prior summary
    _agree(fit, ref, FUNDING_NAMES)
    _agree(fit, ref, [n for n in fit.params["parameter"] if n.startswith("r[")], k=4)


@pytest.mark.slow
@_needs("brms")
def test_brms_funding_agrees_with_stan(stan_funding):
    """The seed's b13.bonus_2 priors at adapt_delta 0.95: brms agrees with `stan` (same priors) within Monte Carlo
    error. (The seed's printed table, at its adapt_delta 0.92, against brms, stan and pymc: test_seed_examples.)"""
    fit = get_estimator("brms", {**LONG, "priors": FUNDING_PRIORS}).fit(funding_data(), seed=20240502)
    assert fit.sampler.rhat_max_hyper <= 1.01 and fit.sampler.divergences <= 40
    _agree(fit, stan_funding["separate"], FUNDING_NAMES)
    _agree(fit, stan_funding["separate"], [n for n in fit.params["parameter"] if n.startswith("r[")], k=4)


def _prior_numbers(fit) -> dict[str, list[float]]:
    """brms's default priors as the fit's notes print them: class -> the numbers of its student_t."""
    text = next(n for n in fit.notes if n.startswith("brms priors:"))
    return {m.group(1): [float(v) for v in m.group(2).split(",")]
            for m in re.finditer(r"(\w+) ~ student_t\(([^)]*)\) \(brms default\)", text)}


@pytest.mark.slow
@_needs("brms")
def test_brms_reuses_its_compiled_model_with_each_datasets_default_priors():
    """brms writes its data-dependent default priors (gaussian: scale mad(y)) into the Stan code and
    update(recompile = FALSE) would keep the first dataset's. Here they travel as data: a second dataset reuses
    the compiled program (compile_count 0) and samples with its own defaults, and its result is exactly the
    result of a model compiled from that dataset itself (so no fit depends on what a worker did before)."""
    from compare.estimators.brms import forget_compiled

    short = {"chains": 2, "warmup": 200, "draws": 200}
    engine = get_estimator("brms", short)
    a = testing.fit_data("y ~ x + (1 | g)", "gaussian", "identity", testing.small_frame(seed=11))
    frame = testing.small_frame(seed=12)
    frame["y"] = frame["y"] * 3  # another scale: other default prior numbers
    b = testing.fit_data("y ~ x + (1 | g)", "gaussian", "identity", frame)
    fit_a = engine.fit(a, seed=1)
    fit_b = engine.fit(b, seed=2)
    assert fit_b.compile_count == 0 and fit_b.compile_s == 0
    numbers_a, numbers_b = _prior_numbers(fit_a), _prior_numbers(fit_b)
    assert set(numbers_b) == {"Intercept", "sigma", "sd"} and numbers_a != numbers_b
    passed = fit_b.details["prior_data"]
    for cls, values in numbers_b.items():
        assert [passed[f"hb_{cls}_{k + 1}"] for k in range(len(values))] == values, cls
    forget_compiled()
    fresh_b = engine.fit(b, seed=2)
    assert fresh_b.compile_count == 1
    cols = ["parameter", "estimate", "se", "lower", "upper"]
    assert fresh_b.params[cols].equals(fit_b.params[cols])


def test_a_run_records_the_r_packages_of_its_engines():
    """A run's manifest pins R and every R package its engines compute with, so `--resume` refuses a changed one."""
    import shutil

    from compare.provenance import versions

    if shutil.which("Rscript") is None:
        pytest.skip("no Rscript on PATH")
    got = versions(["glmmtmb", "rstanarm", "brms", "stan"])
    assert got["R"].startswith("R version")
    assert {"glmmTMB", "TMB", "rstanarm", "rstan", "brms"} <= set(got) and "lme4" not in got
    assert "R" not in versions(["stan"])


@pytest.mark.slow
@_needs("brms")
def test_brms_reused_program_fits_this_formula_not_the_compiling_one():
    """brms passes design columns as data, so other formulas can generate the very same Stan program (other
    variable names; (1 | g) + (0 + x | g) and (1 | g1) + (1 | g1:g2)). A reused program must fit the formula
    it is given: the same data under other column names gives exactly the same fit under the new names."""
    engine = get_estimator("brms", {"chains": 2, "warmup": 200, "draws": 200})
    frame = testing.small_frame(seed=11)
    fit = engine.fit(testing.fit_data("y ~ x + (1 | g)", "gaussian", "identity", frame), seed=3)
    renamed = frame.rename(columns={"y": "v", "x": "u", "g": "h"})
    other = engine.fit(testing.fit_data("v ~ u + (1 | h)", "gaussian", "identity", renamed), seed=3)
    assert other.compile_count == 0
    new_names = fit.params["parameter"].str.replace("[x]", "[u]", regex=False).str.replace(
        r"^(sd|r|pred_new)\[g\]", r"\1[h]", regex=True)
    assert set(new_names) == set(other.params["parameter"])
    ours = fit.params.assign(parameter=new_names).set_index("parameter")
    theirs = other.params.set_index("parameter").loc[ours.index]
    assert (ours[["estimate", "se", "lower", "upper"]] == theirs[["estimate", "se", "lower", "upper"]]).all().all()


def test_brms_level_labels_of_interaction_groups():
    """brms labels a level of `g1:g2` by its columns' values joined with '_' ('g11_g21'); the design by ':'.
    (Seen on the nested scenario: a lookup by the design's label found no draws.)"""
    from compare.catalogue import load_scenario
    from compare.estimators.brms import level_labels
    from compare.simulate import dataset_for

    data = dataset_for(load_scenario("nested"), 0, 0, 1).data
    outer, inner = level_labels(data)
    assert all(k == v for k, v in outer.items())
    assert len(inner) == data.design.blocks[1].n_levels
    for level, label in inner.items():
        assert label == level.replace(":", "_")
