"""One conformance suite for every registered engine (scikit-learn's check_estimator, for hbench).

A new engine is done when it passes this file. Each engine fits the first small dataset below that it
supports and must return a FitResult that keeps the contract: the columns, the naming convention, every
model parameter present, lower <= estimate <= upper wherever an interval is given (NaN only with a note
saying why), timing and fit-level fields of the right types, and clean failure (an exception with a
message, or converged=False) on data it cannot fit.

Bayesian engines (kind == "bayesian") run with short chains through settings. Their fits are marked
`slow`: on a cold CI machine the first compile alone takes 51 s (nutpie) to 70 s (Stan) (FINDINGS.md),
so a fit exceeds 60 s. Their static checks (name, kind, supports, settings) run in the default suite.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

from compare.estimators import engine_names, get_estimator
from compare.estimators.base import Support
from compare.fitresult import PARAM_COLUMNS, FitResult
from compare.formula import ModelSpec, parse_formula
from compare.simulate import Dataset

BAYES_SETTINGS = {"chains": 2, "warmup": 300, "draws": 300}
NAME = re.compile(r"^(b\[[^\]]+\]|sd\[[^\]]+\]\[[^\]]+\]|cor\[[^\]]+\]\[[^\],]+,[^\]]+\]|sigma|"
                  r"r\[[^\]]+\]\[[^\],]+,[^\]]+\]|mrp|pred_new\[[^\]]+\])$")


def _frame(seed: int = 11, J: int = 10, n_j: int = 8) -> pd.DataFrame:
    """Small grouped data with a real group effect, used for every family below."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(J), n_j)
    x = rng.normal(0, 1, J * n_j)
    a = rng.normal(0, 0.8, J)[g]
    y = 1.0 + 0.5 * x + a + rng.normal(0, 1, J * n_j)
    n = rng.integers(5, 15, J * n_j)
    s = rng.binomial(n, 1 / (1 + np.exp(-(-0.3 + 0.5 * x + a))))
    c = rng.poisson(np.exp(0.5 + 0.3 * x + 0.5 * a))
    return pd.DataFrame({"g": [f"g{k}" for k in g], "x": x, "y": y, "s": s, "n": n, "c": c})


CANDIDATES = [("y ~ x + (1 | g)", "gaussian", "identity"),
              ("s | trials(n) ~ x + (1 | g)", "binomial", "logit"),
              ("c ~ x + (1 | g)", "poisson", "log")]


def _dataset(formula: str, family: str, link: str, frame: pd.DataFrame | None = None) -> Dataset:
    return Dataset(_frame() if frame is None else frame, {}, parse_formula(formula), family, link, seed=7)


def _settings(name: str) -> dict:
    return dict(BAYES_SETTINGS) if get_estimator(name).kind == "bayesian" else {}


def _supported(name: str) -> Dataset | None:
    engine = get_estimator(name)
    for formula, family, link in CANDIDATES:
        ds = _dataset(formula, family, link)
        if engine.supports(ds.model):
            return ds
    return None


@lru_cache(maxsize=None)
def _fit(name: str) -> tuple[Dataset, FitResult]:
    """One fit per engine, shared by the checks below."""
    engine = get_estimator(name, **_settings(name))
    if not engine.available():
        pytest.skip(f"{name} unavailable: {engine.available().reason}")
    ds = _supported(name)
    if ds is None:
        pytest.skip(f"{name} supports none of the small conformance datasets")
    return ds, engine.fit(ds)


def _params(names):
    """Engines as pytest params; Bayesian engines' fitting cases carry the `slow` mark."""
    out = []
    for n in names:
        marks = [pytest.mark.slow] if get_estimator(n).kind == "bayesian" else []
        out.append(pytest.param(n, marks=marks, id=n))
    return out


ENGINES = engine_names()
FIT_ENGINES = _params(ENGINES)


# ---- static checks (no fitting): every engine, default suite ----------------------------------------

@pytest.mark.parametrize("name", ENGINES)
def test_identity_and_kind(name):
    engine = get_estimator(name)
    assert engine.name == name
    assert engine.kind in ("frequentist", "bayesian")
    assert isinstance(engine.available(), Support)


@pytest.mark.parametrize("name", ENGINES)
def test_supports_says_why_not(name):
    engine = get_estimator(name)
    verdict = engine.supports(ModelSpec(parse_formula("y ~ x + (1 | g)"), "gamma", "inverse"))
    assert isinstance(verdict, Support) and not verdict
    assert verdict.reason.strip(), "a refusal must say why"
    assert _supported(name) is not None, f"{name} supports none of: {CANDIDATES}"


# ---- fitting checks ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", FIT_ENGINES)
def test_fitresult_columns_and_names(name):
    ds, fit = _fit(name)
    assert isinstance(fit, FitResult) and fit.engine == name
    assert list(fit.params.columns) == PARAM_COLUMNS
    names = fit.params["parameter"].tolist()
    assert len(names) == len(set(names)), "parameter names must be unique"
    bad = [n for n in names if not NAME.match(n)]
    assert not bad, f"names outside the convention: {bad[:5]}"
    design = ds.design
    for x in design.x_names:
        assert f"b[{x}]" in names
    for b in design.blocks:
        for t in b.names:
            assert f"sd[{b.group}][{t}]" in names
        for level in b.levels:
            for t in b.names:
                assert f"r[{b.group}][{level},{t}]" in names
    assert ("sigma" in names) == (ds.family == "gaussian")


@pytest.mark.parametrize("name", FIT_ENGINES)
def test_intervals_ordered_or_explained(name):
    _, fit = _fit(name)
    p = fit.params
    for col in ("estimate", "se", "lower", "upper", "lower_t", "upper_t"):
        assert pd.api.types.is_float_dtype(p[col]), col
    assert np.all(np.isfinite(p["estimate"])), "estimates must be finite on a well-posed fit"
    given = p["lower"].notna() & p["upper"].notna()
    ok = (p.loc[given, "lower"] <= p.loc[given, "estimate"] + 1e-12) & \
         (p.loc[given, "estimate"] <= p.loc[given, "upper"] + 1e-12)
    assert ok.all(), p.loc[given][~ok].to_string()
    missing = p[~given]
    assert missing["note"].map(lambda v: isinstance(v, str) and v.strip() != "").all(), \
        f"NaN intervals need a note: {missing['parameter'].tolist()[:5]}"
    t_given = p["lower_t"].notna()
    assert (p.loc[t_given, "lower_t"] <= p.loc[t_given, "lower"] + 1e-12).all(), "t(J-1) is wider than z"
    assert p["interval"].notna().all(), "say how each interval was made ('none' when there is none)"
    sds = p[p["parameter"].str.startswith("sd[")]
    assert (sds["estimate"] >= 0).all()
    cors = p[p["parameter"].str.startswith("cor[")]
    assert (cors["estimate"].abs() <= 1 + 1e-9).all()


@pytest.mark.parametrize("name", FIT_ENGINES)
def test_fit_level_fields(name):
    ds, fit = _fit(name)
    assert isinstance(fit.converged, bool)
    for flag in (fit.singular, fit.corr_at_bound, fit.var_at_zero):
        assert flag is None or isinstance(flag, bool)
    assert isinstance(fit.loglik, float)
    assert isinstance(fit.warnings, list) and all(isinstance(w, str) for w in fit.warnings)
    assert isinstance(fit.notes, list) and all(isinstance(n, str) for n in fit.notes)
    assert math.isfinite(fit.wall_s) and fit.wall_s > 0
    assert fit.compile_s >= 0 and isinstance(fit.compile_count, int) and fit.compile_count >= 0
    if get_estimator(name).kind == "bayesian":
        for key in ("rhat_max", "ess_bulk_min", "ess_tail_min", "divergences"):
            assert math.isfinite(fit.diagnostics[key]), key
    rows = fit.rows({"b[x]": 0.5})
    assert "covered" in rows.columns and len(rows) == len(fit.params)


@pytest.mark.parametrize("name", FIT_ENGINES)
def test_unsupported_data_fails_cleanly(name):
    """A dataset of the wrong family raises with a message (never returns a silent wrong answer)."""
    engine = get_estimator(name, **_settings(name))
    ds = _supported(name)
    wrong = next((_dataset(f, fam, link) for f, fam, link in [*CANDIDATES, ("y ~ x", "gaussian", "identity")]
                  if not engine.supports(ModelSpec(parse_formula(f), fam, link))), None)
    if wrong is None or ds is None:
        pytest.skip(f"{name} supports every family here")
    with pytest.raises(Exception) as info:
        engine.fit(wrong)
    assert str(info.value).strip()


@pytest.mark.parametrize("name", FIT_ENGINES)
def test_degenerate_response_fails_cleanly(name):
    """A constant response (no variance, all failures): raise with a message or report non-convergence."""
    engine = get_estimator(name, **_settings(name))
    if not engine.available():
        pytest.skip(engine.available().reason)
    ds = _supported(name)
    frame = _frame()
    frame["y"], frame["s"], frame["c"] = 3.0, 0, 0
    degenerate = _dataset(ds.formula.text, ds.family, ds.link, frame)
    try:
        fit = engine.fit(degenerate)
    except Exception as exc:  # noqa: BLE001 - raising is one of the two clean outcomes
        assert str(exc).strip()
        return
    assert not fit.converged or fit.singular, "a constant response cannot give a regular, converged fit"
