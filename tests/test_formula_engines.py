"""Every engine fits the same model from R's formula language: the same coefficient names (the design's, which
tests/test_formula_r.py checks against R's model.matrix) and, for the deterministic engines, the same optimum.

The R engines get the formula text and the data (factor columns as R factors with the design's levels); the
Python engines get the design matrix. If the two routes built different models, the names or the optimum would
differ. Deterministic optimisers on the same likelihood: estimates within 0.01 SE of lme4's and log-likelihoods
within 0.01 (the issue's tolerance; REML for lme4, glmmTMB and MixedLM alike). Samplers (short chains, fixed
seeds) are checked for names and for posterior means within 5 posterior SDs of lme4's estimate: with 2 x 200
draws the Monte Carlo error of a mean is ~0.1 SD, and prior pull on 120 rows is small; 5 SD flags a different
model (a column coded otherwise moves a coefficient by many SDs), not sampling noise.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from compare.data import FitData
from compare.estimators import engine_class, get_estimator
from compare.formula import parse_formula

ROOT = Path(__file__).resolve().parent.parent
FORMULA = ("y ~ factor(YEAR) + sex * scale(age) + I(age^2) + poly(x, 2) + C(period) + offset(log(n)/10) "
           "+ (1 + x | g)")
NAMES = ["Intercept", "factor(YEAR)96", "factor(YEAR)98", "factor(YEAR)100", "sexmale", "scale(age)", "I(age^2)",
         "poly(x, 2)1", "poly(x, 2)2", "C(period)2", "C(period)3", "sexmale:scale(age)"]


def frame(seed: int = 7) -> pd.DataFrame:
    """120 rows, 12 groups: whole-number years and periods (numbers read as factors), a text factor, an age."""
    rng = np.random.default_rng(seed)
    J, m = 12, 10
    g = np.repeat(np.arange(J), m)
    year = np.tile([94, 96, 98, 100], J * m // 4)
    sex = rng.choice(["female", "male"], J * m)
    age = np.round(rng.uniform(20, 70, J * m), 1)
    x = rng.normal(size=J * m)
    period = rng.integers(1, 4, J * m)
    n = rng.integers(5, 30, J * m)
    u0, u1 = rng.normal(0, 0.8, J), rng.normal(0, 0.3, J)
    y = (1 + 0.3 * (year == 96) - 0.2 * (year == 100) + 0.5 * (sex == "male") + 0.03 * age - 3e-4 * age**2
         + (0.4 + u1[g]) * x + 0.2 * x**2 + 0.1 * period + u0[g] + np.log(n) / 10 + rng.normal(0, 0.5, J * m))
    return pd.DataFrame({"y": np.round(y, 5), "x": np.round(x, 5), "g": [f"s{j:02d}" for j in g], "YEAR": year,
                         "sex": sex, "age": age, "period": period, "n": n})


def fit_data() -> FitData:
    return FitData(frame(), parse_formula(FORMULA), "gaussian", "identity", label="formula-engines")


def b_rows(fit) -> pd.DataFrame:
    p = fit.params
    return p[(p["param_class"] == "b") & p["primary"]].set_index("term")


def usable(name: str) -> bool:
    cls = engine_class(name)
    return bool(cls().available())


def test_design_names():
    assert fit_data().design.x_names == NAMES


@pytest.fixture(scope="module")
def frequentist_fits():
    data = fit_data()
    fits = {}
    for name in ("lme4", "glmmtmb", "mixedlm"):
        if not usable(name):
            pytest.skip(f"{name} is not available here")
        settings = {"profile": False} if name == "lme4" else {}
        fits[name] = get_estimator(name, settings).fit(data, seed=1)
    return fits


@pytest.mark.parametrize("engine", ["lme4", "glmmtmb", "mixedlm"])
def test_frequentist_engines_fit_the_same_model(frequentist_fits, engine):
    fit, ref = frequentist_fits[engine], frequentist_fits["lme4"]
    assert fit.converged or engine == "glmmtmb", fit.notes
    ours, theirs = b_rows(fit), b_rows(ref)
    assert list(ours.index) == NAMES
    gap = np.abs(ours["estimate"] - theirs["estimate"]) / theirs["se"]
    assert gap.max() < 0.01, gap.sort_values().tail(3)
    assert abs(fit.loglik - ref.loglik) < 0.01


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["stan", "pymc", "rstanarm", "brms"])
def test_samplers_fit_the_same_model(frequentist_fits, engine):
    if not usable(engine):
        pytest.skip(f"{engine} is not available here")
    fit = get_estimator(engine, {"chains": 2, "warmup": 200, "draws": 200}).fit(fit_data(), seed=3)
    ours, ref = b_rows(fit), b_rows(frequentist_fits["lme4"])
    assert list(ours.index) == NAMES
    gap = np.abs(ours["estimate"] - ref["estimate"]) / ours["se"]
    assert gap.max() < 5, gap.sort_values().tail(3)


def hbench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "compare", *args], capture_output=True, text=True, cwd=ROOT)


def test_hbench_fit_on_a_csv_with_r_formulas(tmp_path):
    """`hbench fit` of a CSV with factor(), C(), scale(), I(), poly() and an offset: every named engine reports
    the design's coefficient names."""
    csv = tmp_path / "d.csv"
    frame().to_csv(csv, index=False)
    engines = [e for e in ("lme4", "glmmtmb", "mixedlm") if usable(e)]
    res = hbench("fit", str(csv), "--formula", FORMULA, *[a for e in engines for a in ("--engine", e)],
                 "--format", "json")
    assert res.returncode == 0, res.stderr[-2000:]
    entries = json.loads(res.stdout)
    assert [e["engine"] for e in entries] == engines and all(e["status"] == "ok" for e in entries)
    for entry in entries:
        names = [p["parameter"] for p in entry["parameters"] if p["param_class"] == "b" and p["primary"]]
        assert names == [f"b[{n}]" for n in NAMES], entry["engine"]


@pytest.mark.parametrize("formula,says", [
    ("y ~ ns(age, 3) + (1 | g)", "ns() is not supported"),
    ("y ~ x %% 2 + (1 | g)", "unexpected character"),
    ("y ~ C(sex, sum) + (1 | g)", "only treatment contrasts"),
    ("y ~ sex:age + scale(age) + (1 | g)", "linear combination"),
    ("y ~ log(sex) + (1 | g)", "not numeric"),
])
def test_unsupported_syntax_is_one_line_exit_2(tmp_path, formula, says):
    csv = tmp_path / "d.csv"
    frame().to_csv(csv, index=False)
    res = hbench("fit", str(csv), "--formula", formula, "--engine", "mixedlm")
    assert res.returncode == 2 and says in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
