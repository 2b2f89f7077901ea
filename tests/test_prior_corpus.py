"""Issue 24's corpus: for every engine and every prior request, either the model the engine fits has exactly the
requested prior (read back from the engine: our Stan program's data, the PyMC model's own log densities,
rstanarm's prior_summary(fit), brms's prior_summary) or the request is refused in one line before anything runs
(the InputError that `hbench fit` and suites turn into exit 2). No third outcome.

What the engines read back is compared per parameter (b[x], Intercept, sigma, sd[g][x], cor, cov) with what the
request asks for that parameter; parameters the request leaves alone are not compared (they keep each engine's
defaults, also recorded). The R samplers' read-back: rstanarm from a real, very short fit (1 chain x 50
iterations: prior_summary does not depend on the draws); brms from brm(empty = TRUE) built exactly as a fit
builds its priors (planned_priors), and one real brms fit (slow: a compile) to show the fitted model reads back
the same.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from compare.commands.fit import choose_engines
from compare.data import FitData
from compare.errors import InputError
from compare.estimators import _bayes, engine_class
from compare.formula import parse_formula
from compare.priors import Dist, Layout, parse_priors

# (prior strings, engines that must refuse them): every other engine must honour them
CORPUS: list[tuple[tuple[str, ...], set[str]]] = [
    (("b ~ normal(0, 4)",), set()),
    (("b[x] ~ normal(0.5, 0.5)",), set()),
    (("b[x] ~ student_t(3, 0, 1)",), {"rstanarm"}),  # the others keep rstanarm's normal: a mix of families
    (("b ~ cauchy(0, 2)", "b[z] ~ cauchy(1, 3)"), set()),
    (("b ~ student_t(4, 0, 2)", "b[x] ~ student_t(7, 0.5, 1)"), set()),
    (("Intercept ~ normal(30, 10)",), set()),
    (("b[Intercept] ~ normal(100, 0.1)",), {"rstanarm", "brms"}),  # the data's scale, beside slopes
    (("sd ~ cauchy(0, 1)",), {"rstanarm"}),
    (("sd ~ uniform(0, 100)",), {"rstanarm"}),
    (("sd[g][x] ~ gamma(2, 4)",), {"rstanarm"}),
    (("sd[g][Intercept] ~ inv_gamma(3, 2)", "sd[g][x] ~ lognormal(0, 1)"), {"rstanarm"}),
    (("sd ~ student_t(3, 0, 2.5)", "cor ~ lkj(4)"), {"rstanarm"}),
    (("sd ~ exponential(1)", "sd[g][x] ~ normal(0, 0.5)"), {"rstanarm"}),
    (("sd[g][x] ~ uniform(0, 10)",), {"rstanarm", "brms"}),  # brms bounds an SD per class only
    (("sigma ~ exponential(0.5)",), set()),
    (("sigma ~ student_t(3, 0, 5)",), set()),
    (("sigma ~ gamma(2, 0.5)",), {"rstanarm"}),
    (("sigma ~ uniform(0, 50)",), {"rstanarm"}),
    (("sigma ~ lognormal(1, 0.5)",), {"rstanarm"}),
    (("cov ~ decov(2, 1, 1, 1)",), {"brms"}),
    (("cov ~ decov(1, 2, 3, 0.5)", "b ~ normal(0, 1)", "Intercept ~ student_t(5, 30, 10)"), {"brms"}),
    # refused by every engine: not a prior on this model's parameters, or not on a positive support
    (("sd ~ normal(1, 2)",), {"pymc", "stan", "rstanarm", "brms"}),
    (("sd ~ uniform(-1, 10)",), {"pymc", "stan", "rstanarm", "brms"}),
    (("sigma ~ uniform(-5, 5)",), {"pymc", "stan", "rstanarm", "brms"}),
    (("b[w] ~ normal(0, 1)",), {"pymc", "stan", "rstanarm", "brms"}),
    (("sd[h][x] ~ normal(0, 1)",), {"pymc", "stan", "rstanarm", "brms"}),
    (("cov ~ decov(1, 1, 1, 1)", "sd ~ normal(0, 1)"), {"pymc", "stan", "rstanarm", "brms"}),
]
ENGINES = ("stan", "pymc", "rstanarm", "brms")


def _data(family: str = "gaussian") -> FitData:
    rng = np.random.default_rng(24)
    g = np.repeat(np.arange(8), 10)
    x, z = rng.normal(5, 2, 80), rng.normal(0, 1, 80)
    eta = 30 + 0.5 * x + z + rng.normal(0, 3, 8)[g] + rng.normal(0, 0.3, 8)[g] * x
    y = eta + rng.normal(0, 2, 80) if family == "gaussian" else rng.poisson(np.exp((eta - 33) / 10))
    frame = pd.DataFrame({"y": y, "x": x, "z": z, "g": [f"g{k}" for k in g]})
    return FitData(frame, parse_formula("y ~ x + z + (1 + x | g)"), family, "identity" if family == "gaussian" else "log")


DATA = _data()
LAYOUT = Layout.of(DATA.design, DATA.family)


def expected(strings: tuple[str, ...], layout: Layout) -> dict[str, Dist]:
    """What the request asks of each parameter: class priors spread over its parameters, coefficient priors
    over them (b[Intercept] is the centred Intercept when there is no other fixed effect)."""
    spec = parse_priors(strings)
    out: dict[str, Dist] = {}
    if spec.b is not None:
        out.update({f"b[{n}]": spec.b for n in layout.free})
    if spec.sd is not None:
        out.update({f"sd[{g}][{t}]": spec.sd for g, t in layout.terms})
    for p in spec.priors():
        if p.cls in ("Intercept", "sigma", "cor", "cov") or p.target:
            out[p.label] = p.dist
    return out


def refused(engine: str, strings: tuple[str, ...], data: FitData = DATA) -> str | None:
    """The one-line refusal `hbench fit --engine ENGINE --prior ...` stops with (exit 2), or None."""
    try:
        choose_engines(data, [engine], {"priors": list(strings)})
    except InputError as exc:
        return str(exc)
    return None


def same(asked: Dist, got: str) -> bool:
    """A read-back distribution `name(args)` is the requested one (to 6 significant digits: %g)."""
    if "(" not in got or " truncated " in got:
        return False  # "flat", or a prior on other bounds than its own support
    name, rest = got.split("(", 1)
    args = tuple(float(a) for a in rest.rstrip(")").split(","))
    return name.strip() == asked.name and len(args) == len(asked.args) and np.allclose(args, asked.args, rtol=1e-5)


def read(lines: list[str]) -> dict[str, str]:
    return dict(line.split(" ~ ", 1) for line in lines)


def assert_honoured(engine: str, strings: tuple[str, ...], back: dict[str, str], layout: Layout = LAYOUT) -> None:
    for label, dist in expected(strings, layout).items():
        if label == "b[Intercept]" and not layout.free and label not in back:
            label = "Intercept"
        assert label in back, f"{engine} {strings}: no prior read back for {label} (got {back})"
        assert same(dist, back[label]), f"{engine} {strings}: {label} asked {dist}, the engine has {back[label]}"


def _accepted(engine: str):
    """The corpus requests an engine must honour, as pytest parameters named by their strings."""
    return [pytest.param(s, id=" ".join(s)) for s, no in CORPUS if engine not in no]


# ---------------------------------------------------------------- refusals: every engine, one line, before fitting


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("strings, must_refuse", [(s, no) for s, no in CORPUS], ids=[" ".join(s) for s, _ in CORPUS])
def test_each_request_is_refused_exactly_where_the_engine_cannot_express_it(engine, strings, must_refuse):
    if not engine_class(engine)().available():
        pytest.skip(f"{engine} not available here")
    why = refused(engine, strings)
    assert (why is not None) == (engine in must_refuse), f"{engine} {strings}: {why}"
    if why is not None:
        assert "\n" not in why and (engine in why or "prior" in why), why


def test_a_class_prior_the_model_has_no_parameter_for_applies_to_nothing_and_says_so():
    """sigma of a poisson model, cor without correlations: every engine alike fits without it (brms is not even
    given it: it would refuse a prior on nothing), and the fit's notes name it. One coefficient the model lacks
    (b[w], sd[h][x]) is refused instead: the corpus above."""
    counts = _data("poisson")
    strings = ("sigma ~ exponential(1)", "b ~ normal(0, 1)")
    for engine in ENGINES:
        if engine_class(engine)().available():
            assert refused(engine, strings, counts) is None, engine
    md = _bayes.prepare(counts, strings)
    assert md.priors.text[-1] == "priors with no parameter in this model (applied to nothing): sigma ~ exponential(1)"
    assert "sigma" not in read(md.priors.used) and read(md.priors.used)["b[x]"] == "normal(0, 1)"
    if engine_class("brms")().available():
        from compare.estimators.brms import planned_priors

        back = read(planned_priors(counts, strings))
        assert "sigma" not in back and same(Dist("normal", (0.0, 1.0)), back["b[x]"])


def test_the_issue_example_exits_2_in_one_line_before_rstanarm_runs(tmp_path):
    """`hbench fit --engine rstanarm --prior "b[Intercept] ~ normal(100, 0.1)"` once ran under rstanarm's default
    intercept prior and returned b[Intercept] = 8.2; now it stops with exit 2 and says why."""
    path = tmp_path / "d.csv"
    DATA.frame.to_csv(path, index=False)
    cmd = [sys.executable, "-m", "compare", "fit", str(path), "--formula", "y ~ x + z + (1 + x | g)", "--engine",
           "rstanarm", "--prior", "b[Intercept] ~ normal(100, 0.1)"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "rstanarm" in lines[0] and "b[Intercept] ~ normal(100, 0.1)" in lines[0], lines


# ---------------------------------------------------------------- hbench's samplers: the program's data, the PyMC model


@pytest.mark.parametrize("strings", _accepted("stan"))
def test_stan_data_carries_every_accepted_request(strings):
    from compare.estimators.stan import priors_in_data, stan_data

    md = _bayes.prepare(DATA, strings)
    assert_honoured("stan", strings, read(priors_in_data(stan_data(md, 0), md)))
    assert read(md.priors.used) == read(priors_in_data(stan_data(md, 0), md))  # what the fit records


def _half(d: Dist) -> stats.rv_continuous:
    """scipy's density of a positive-class prior: half distributions for real families (x2 on x > 0)."""
    table = {
        "normal": lambda a: stats.halfnorm(scale=a[1]),
        "cauchy": lambda a: stats.halfcauchy(scale=a[1]),
        "student_t": lambda a: stats.t(a[0], scale=a[2]),  # doubled below
        "exponential": lambda a: stats.expon(scale=1 / a[0]),
        "gamma": lambda a: stats.gamma(a[0], scale=1 / a[1]),
        "inv_gamma": lambda a: stats.invgamma(a[0], scale=a[1]),
        "lognormal": lambda a: stats.lognorm(a[1], scale=math.exp(a[0])),
        "uniform": lambda a: stats.uniform(a[0], a[1] - a[0]),
    }
    return table[d.name](d.args)


def _logpdf(d: Dist, v: np.ndarray, positive: bool) -> np.ndarray:
    if not positive:
        a = d.args
        real = {"normal": lambda: stats.norm(a[0], a[1]), "cauchy": lambda: stats.cauchy(a[0], a[1]),
                "student_t": lambda: stats.t(a[0], a[1], a[2])}
        return real[d.name]().logpdf(v)
    out = _half(d).logpdf(v)
    return out + math.log(2) if d.name == "student_t" else out


def _pymc_slots(model, md) -> dict[str, tuple]:
    """Each parameter's (random variable, element) in the PyMC model, by the builder's naming: one variable per
    family of a class (`beta`, or `beta_d<code>` when the class mixes families)."""
    def split(name: str, codes) -> list[tuple]:
        if f"{name}" in model.named_vars:
            return [(model[name], i) for i in range(len(codes))]
        seen: dict[int, int] = {}
        out = []
        for c in codes:
            out.append((model[f"{name}_d{int(c)}"], seen.setdefault(int(c), 0)))
            seen[int(c)] += 1
        return out

    free = [n for n in md.x_names if n != "Intercept"]
    slots = dict(zip([f"b[{n}]" for n in free], split("beta", md.priors.b_codes)))
    if "alpha" in model.named_vars and not md.priors.int_uncentred:
        slots["Intercept"] = (model["alpha"], None)
    if "sigma" in model.named_vars:
        slots["sigma"] = (model["sigma"], None)
    if md.priors.separate:
        for k, blk in enumerate(md.blocks):
            codes = md.priors.sd_codes[blk.col : blk.col + blk.q]
            slots.update(zip([f"sd[{blk.group}][{t}]" for t in blk.names], split(f"sd{k}", codes)))
    return slots


def _pymc_check(model, md, label: str, asked: Dist) -> None:
    """The model's own log density of one parameter equals the requested prior's at points of its support."""
    import pymc as pm

    rv, at = _pymc_slots(model, md)[label]
    positive = not label.startswith(("b[", "Intercept"))
    lo, hi = asked.bounds() if positive else (-math.inf, math.inf)
    points = np.array([0.3, 1.1, 2.7]) if positive else np.array([-3.0, 0.4, 7.5])
    points = lo + (points / 3.0) * (hi - lo) if math.isfinite(hi) else points
    value = rv.type()
    f = _function([value], pm.logp(rv, value))
    for v in points:
        got = np.asarray(f(np.full(tuple(rv.shape.eval()), v)))
        got = got[at] if at is not None else got
        assert float(got) == pytest.approx(float(_logpdf(asked, np.asarray(v), positive)), rel=1e-6, abs=1e-9), label


def _function(inputs, output):
    import pytensor

    return pytensor.function(inputs, output, mode="FAST_COMPILE", on_unused_input="ignore")


def _of_values(model, names: list[str], expr):
    """expr as a function of the named variables' value variables (PyMC's sampling space: log SDs, say)."""
    values = [model.rvs_to_values[model[n]] for n in names]
    return _function(values, model.replace_rvs_by_values([expr])[0])


def _lkj_eta(model) -> float:
    """The LKJ eta of a q = 2 block's Potential: with r = tanh(y), the Potential is eta * log(1 - r^2) + const."""
    pot = next(p for p in model.potentials if p.name.startswith("lkj"))
    f = _of_values(model, ["cpc0"], pot)
    y1, y2 = np.array([0.2]), np.array([1.3])
    return float((f(y1) - f(y2)) / (math.log(1 - math.tanh(0.2) ** 2) - math.log(1 - math.tanh(1.3) ** 2)))


def _pymc_uncentred(model, md, asked: Dist) -> None:
    """b[Intercept]'s Potential is the requested log density of alpha - xbar . beta."""
    f = _of_values(model, ["alpha", _beta_name(model)], model["intercept_prior"])
    b = np.full(md.Xc.shape[1], 0.5)
    for a in (90.0, 103.0):
        want = _logpdf(asked, np.asarray(a - md.xbar @ b), positive=False)
        assert float(f(np.asarray(a), b)) == pytest.approx(float(want), rel=1e-6)


def _beta_name(model) -> str:
    return "beta" if "beta" in model.named_vars else next(n for n in model.named_vars if n.startswith("beta_d"))


@pytest.mark.parametrize("strings", _accepted("pymc"))
def test_the_pymc_model_has_every_accepted_request(strings):
    from compare.estimators.pymc_nutpie import build_model

    md = _bayes.prepare(DATA, strings)
    model = build_model(md)
    for label, asked in expected(strings, LAYOUT).items():
        if label == "cor":
            assert _lkj_eta(model) == pytest.approx(asked.args[0], rel=1e-9)
        elif label == "cov":
            assert _lkj_eta(model) == pytest.approx(asked.args[0], rel=1e-9)  # decov's regularization
            _pymc_check_decov(model, asked)
        elif label == "b[Intercept]":
            _pymc_uncentred(model, md, asked)
        else:
            _pymc_check(model, md, label, asked)


def _pymc_check_decov(model, asked: Dist) -> None:
    """decov(regularization, concentration, shape, scale): tau ~ Gamma(shape, 1), shares ~ Gamma(concentration, 1),
    SDs = sigma * tau * scale * sqrt(q * pi)."""
    import pymc as pm

    reg, conc, shape, scale = asked.args
    for name, a in (("tau0", shape), ("zeta0", conc)):
        rv = model[name]
        v = np.full(tuple(rv.shape.eval()), 0.7)
        assert np.allclose(pm.logp(rv, v).eval(), stats.gamma(a).logpdf(0.7)), name
    f = _of_values(model, ["sigma", "tau0", "zeta0"], model["sds"])
    sds = f(np.log(2.0), np.log(1.5), np.log([1.0, 3.0]))  # the value variables are log-transformed
    assert np.allclose(sds, 2.0 * 1.5 * scale * np.sqrt(2 * np.array([0.25, 0.75])))


# ---------------------------------------------------------------- the R samplers: their own prior_summary


def _available(engine: str) -> None:
    if not engine_class(engine)().available():
        pytest.skip(f"{engine} not available here")


@pytest.mark.parametrize("strings", _accepted("rstanarm"))
def test_rstanarm_prior_summary_of_the_fit_is_the_request(strings):
    """A real stan_glmer fit (2 chains x 20 warm-up + 10 draws: prior_summary does not depend on the draws)."""
    _available("rstanarm")
    engine = engine_class("rstanarm").configured({"chains": 2, "warmup": 20, "draws": 10, "priors": list(strings)})
    fit = engine.fit(DATA, seed=1)
    assert_honoured("rstanarm", strings, read(fit.details["priors"]))


def test_rstanarm_defaults_are_read_back_after_its_autoscaling():
    """With no request the fit records rstanarm's own autoscaled defaults: b ~ normal(0, 2.5 sd(y) / sd(x))."""
    _available("rstanarm")
    fit = engine_class("rstanarm").configured({"chains": 2, "warmup": 20, "draws": 10}).fit(DATA, seed=1)
    back = read(fit.details["priors"])
    y, x = DATA.frame["y"], DATA.frame["x"]
    assert same(Dist("normal", (0.0, 2.5 * y.std() / x.std())), back["b[x]"]), back


@pytest.mark.parametrize("strings", _accepted("brms"))
def test_brms_prior_summary_is_the_request(strings):
    """brm(empty = TRUE) with the priors built exactly as a fit builds them (no compile)."""
    _available("brms")
    from compare.estimators.brms import planned_priors

    assert_honoured("brms", strings, read(planned_priors(DATA, strings)))


@pytest.mark.slow
def test_a_brms_fit_reads_back_the_prior_it_was_given():
    """One real brms fit (a compile, ~35 s or more): prior_summary(fit) of the sampled model has the request."""
    _available("brms")
    strings = ("b[x] ~ normal(0.5, 0.5)", "sd ~ uniform(0, 100)", "sigma ~ gamma(2, 0.5)", "cor ~ lkj(4)")
    engine = engine_class("brms").configured({"chains": 2, "warmup": 100, "draws": 50, "priors": list(strings)})
    fit = engine.fit(DATA, seed=1)
    assert_honoured("brms", strings, read(fit.details["priors"]))


# ---------------------------------------------------------------- suites: refused when the suite loads


@pytest.mark.parametrize("engine, priors, words", [
    ("rstanarm", ["b[Intercept] ~ normal(30, 1)"], "rstanarm: prior 'b[Intercept] ~ normal(30, 1)'"),  # per cell
    ("brms", ["b[Intercept] ~ normal(30, 1)"], "brms: prior 'b[Intercept] ~ normal(30, 1)'"),
    ("pymc", ["b[w] ~ normal(0, 1)"], "the model has no such coefficient"),
    ("stan", ["sd[h][x] ~ normal(0, 1)"], "no such group-level SD"),
])
def test_a_suite_whose_engine_cannot_honour_a_prior_is_refused_when_it_loads(engine, priors, words):
    from compare.suite import parse_suite

    _available(engine)
    raw = {"name": "p", "reps": 1, "seed": 1, "scenario": [{"name": "seed_slopes", "cells": [0]}],
           "engine": [{"name": engine, "settings": {"priors": priors}}]}
    with pytest.raises(InputError) as err:
        parse_suite(raw)
    assert words in str(err.value) and "seed_slopes cell 0" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.slow
def test_stan_and_pymc_sample_the_same_posterior_under_the_new_distributions():
    """inv_gamma and lognormal on two SDs (one class mixing families), a bounding uniform on sigma, student_t on
    a slope: glmm.stan's new density codes and the PyMC model agree. Posterior means of b, sd, cor and sigma
    within 4 combined Monte Carlo SEs (sd / sqrt(bulk ESS) of each fit); fixed seeds."""
    from compare.catalogue import load_scenario
    from compare.estimators import get_estimator
    from compare.simulate import dataset_for

    ds = dataset_for(load_scenario("seed_slopes"), 0, 0, 2024)
    strings = ["sd[g][Intercept] ~ inv_gamma(3, 40)", "sd[g][x] ~ lognormal(-1, 0.5)", "sigma ~ uniform(0, 50)",
               "cor ~ lkj(2)", "b[x] ~ student_t(5, 0, 1)"]
    run = {"chains": 4, "warmup": 500, "draws": 500, "priors": strings}
    stan = get_estimator("stan", run).fit(ds.data, seed=11)
    pymc = get_estimator("pymc", run).fit(ds.data, seed=11)
    for name in ("b[Intercept]", "b[x]", "sd[g][Intercept]", "sd[g][x]", "cor[g][Intercept,x]", "sigma"):
        a, b = stan.param(name), pymc.param(name)
        tol = 4 * math.hypot(a["se"] / math.sqrt(a["ess_bulk"]), b["se"] / math.sqrt(b["ess_bulk"]))
        assert abs(a["estimate"] - b["estimate"]) <= tol, (name, a["estimate"], b["estimate"], tol)
    assert read(stan.details["priors"])["sd[g][x]"] == "lognormal(-1, 0.5)"


def test_the_run_manifest_records_each_samplers_prior_request():
    from compare.harness import new_manifest
    from compare.suite import parse_suite

    raw = {"name": "p", "reps": 1, "seed": 1, "scenario": [{"name": "seed_slopes", "cells": [0, 3]}],
           "engine": [{"name": "pymc", "settings": {"priors": ["sd ~ uniform(0, 100)"]}},
                      {"name": "stan", "settings": {"priors": "scenario"}}, {"name": "lme4"}]}
    engines = new_manifest(parse_suite(raw), [], "local", 1)["engines"]
    assert [e["priors"] for e in engines] == [["sd ~ uniform(0, 100)"], ["the scenario's [priors]"], None]
