"""Conformance checks for engines (scikit-learn's check_estimator, for hbench): public, so an engine written
outside the package (plugged in through HBENCH_ENGINES) can prove it keeps the contract.

    from compare.testing import check_engine
    check_engine("my-engine")                      # raises AssertionError naming the broken rule

    @pytest.mark.parametrize("check", [c for _, c in checks("my-engine")], ids=...)   # one test per rule

Each engine fits the first small dataset below that it supports. The rules: settings are a frozen, typed,
documented class that refuses unknown keys and wrong types; `supports` says why not; `fit(data, *, seed)`
takes its seed explicitly, returns the FitResult columns and naming convention with every model parameter
(extra interval rows as compare.fitresult describes: `check_interval_rows`), lower <= estimate <= upper
wherever a primary interval is given (a note wherever none is), fit-level fields of
the right types; it does not change its input, can reach no truth, gives the same result for the same
seed whatever it fitted before, and fails cleanly (an exception with a message, or converged=False) on
data it cannot fit.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd

from compare.data import FitData
from compare.errors import InputError
from compare.estimators import engine_class
from compare.estimators.base import Estimator, Support
from compare.fitresult import DESCRIPTORS, PARAM_COLUMNS, FitResult, describe, primary
from compare.formula import ModelSpec, parse_formula
from compare.settings import Settings

SHORT_SAMPLER = {"chains": 2, "warmup": 300, "draws": 300}  # samplers run short chains in the checks
CANDIDATES = [
    ("y ~ x + (1 | g)", "gaussian", "identity"),
    ("s | trials(n) ~ x + (1 | g)", "binomial", "logit"),
    ("c ~ x + (1 | g)", "poisson", "log"),
]
FITDATA_FIELDS = {"frame", "formula", "family", "link", "poststratify", "label"}
SEED = 7


def small_frame(seed: int = 11, J: int = 10, n_j: int = 8) -> pd.DataFrame:
    """Small grouped data with a real group effect, used for every family."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(J), n_j)
    x = rng.normal(0, 1, J * n_j)
    a = rng.normal(0, 0.8, J)[g]
    y = 1.0 + 0.5 * x + a + rng.normal(0, 1, J * n_j)
    n = rng.integers(5, 15, J * n_j)
    s = rng.binomial(n, 1 / (1 + np.exp(-(-0.3 + 0.5 * x + a))))
    c = rng.poisson(np.exp(0.5 + 0.3 * x + 0.5 * a))
    return pd.DataFrame({"g": [f"g{k}" for k in g], "x": x, "y": y, "s": s, "n": n, "c": c})


def fit_data(formula: str, family: str, link: str, frame: pd.DataFrame | None = None) -> FitData:
    return FitData(small_frame() if frame is None else frame, parse_formula(formula), family, link, label="conformance")


def configured(engine: Estimator | str) -> Estimator:
    """The engine to check: a name gets default settings (samplers: short chains)."""
    if isinstance(engine, Estimator):
        return engine
    cls = engine_class(engine)
    return cls.configured(SHORT_SAMPLER if cls.kind == "bayesian" else {})


def supported_data(engine: Estimator) -> FitData | None:
    for formula, family, link in CANDIDATES:
        data = fit_data(formula, family, link)
        if engine.supports(data.model):
            return data
    return None


class Unavailable(Exception):
    """The engine cannot run here (R missing, ...): its fitting checks do not apply on this machine."""


@functools.cache
def _fit(engine: Estimator) -> tuple[FitData, FitResult]:
    """One fit per engine instance, shared by the checks that read it."""
    if not engine.available():
        raise Unavailable(f"{engine.name} unavailable: {engine.available().reason}")
    data = supported_data(engine)
    assert data is not None, f"{engine.name} supports none of the conformance datasets: {CANDIDATES}"
    return data, engine.fit(data, seed=SEED)


# ---- static checks ---------------------------------------------------------------------------------------


def check_identity(engine: Estimator) -> None:
    assert engine.name and engine_class(engine.name) is type(engine), "registered under its own name"
    assert engine.kind in ("frequentist", "bayesian")
    assert isinstance(engine.available(), Support)
    assert inspect.signature(engine.fit).parameters["seed"].kind is inspect.Parameter.KEYWORD_ONLY, (
        "fit(data, *, seed): the seed is an explicit keyword argument"
    )


def check_settings_are_typed(engine: Estimator) -> None:
    cls = engine.Settings
    assert issubclass(cls, Settings) and dataclasses.is_dataclass(cls)
    assert cls.__dataclass_params__.frozen, "settings are frozen: an engine cannot be reconfigured mid-run"  # type: ignore[attr-defined]
    for f in dataclasses.fields(cls):
        assert f.metadata.get("doc"), f"setting {f.name!r} needs a one-line doc (setting(default, doc))"
    hash(engine.settings)  # workers key their cached engines by settings
    for bad in ({"no_such_setting": 1}, {"level": 0.9}):
        try:
            type(engine).configured(bad)
        except InputError as exc:
            assert str(exc).strip() and "\n" not in str(exc)
        else:
            raise AssertionError(f"settings {bad} were accepted; unknown keys must be refused")
    public = [f for f in dataclasses.fields(cls) if f.name != "level"]
    if public:
        f = public[0]
        wrong = "not a valid value" if not isinstance(f.default, str) else 12345
        try:
            type(engine).configured({f.name: wrong})
        except InputError:
            pass
        else:
            raise AssertionError(f"setting {f.name}={wrong!r} was accepted; wrong types must be refused")


def check_supports_says_why_not(engine: Estimator) -> None:
    verdict = engine.supports(ModelSpec(parse_formula("y ~ x + (1 | g)"), "gamma", "inverse"))
    assert isinstance(verdict, Support) and not verdict
    assert verdict.reason.strip(), "a refusal must say why"
    assert supported_data(engine) is not None, f"{engine.name} supports none of: {CANDIDATES}"


# ---- fitting checks --------------------------------------------------------------------------------------


def check_fitresult_columns_and_names(engine: Estimator) -> None:
    data, fit = _fit(engine)
    assert isinstance(fit, FitResult) and fit.engine == engine.name
    assert list(fit.params.columns) == list(PARAM_COLUMNS)
    check_interval_rows(fit.params)
    names = primary(fit.params)["parameter"].tolist()
    for row in fit.params[["parameter", *DESCRIPTORS]].itertuples(index=False):
        said = tuple(None if pd.isna(v) else v for v in row[1:])  # describe raises on a name outside the convention
        assert said == tuple(describe(row[0])), f"{row[0]}: columns {said} are not what its name says"
    design = data.design
    for x in design.x_names:
        assert f"b[{x}]" in names
    for b in design.blocks:
        for t in b.names:
            assert f"sd[{b.group}][{t}]" in names
        for level in b.levels:
            for t in b.names:
                assert f"r[{b.group}][{level},{t}]" in names
    assert ("sigma" in names) == data.model.has_sigma


def check_interval_rows(params: pd.DataFrame) -> None:
    """The interval-row contract (compare.fitresult): each parameter has exactly one primary row; each other row
    repeats the primary's estimate and SE with another interval type, and no (parameter, interval) pair
    appears twice. Takes a params frame, so it also checks frames built by hand."""
    dup = params[params.duplicated(["parameter", "interval"], keep=False)]
    assert dup.empty, f"a (parameter, interval) pair appears twice: {sorted(set(dup['parameter']))[:5]}"
    primaries = params.groupby("parameter")["primary"].sum()
    assert (primaries == 1).all(), (
        f"parameters without exactly one primary row: {list(primaries[primaries != 1].index)[:5]}"
    )
    first = primary(params).set_index("parameter")
    extra = params[~params["primary"].astype(bool)]
    for col in ("estimate", "se"):
        want = first.loc[extra["parameter"], col].to_numpy(float)
        got = extra[col].to_numpy(float)
        same = (got == want) | (np.isnan(got) & np.isnan(want))
        assert same.all(), (
            f"extra interval rows must repeat the primary row's {col}: {extra.loc[~same, 'parameter'].tolist()[:5]}"
        )


def check_intervals_ordered_or_explained(engine: Estimator) -> None:
    _, fit = _fit(engine)
    p = fit.params
    for col in ("estimate", "se", "lower", "upper"):
        assert pd.api.types.is_float_dtype(p[col]), col
    assert np.all(np.isfinite(p["estimate"])), "estimates must be finite on a well-posed fit"
    given = p["lower"].notna() & p["upper"].notna()
    assert (p.loc[given, "lower"] <= p.loc[given, "upper"]).all(), "lower above upper"
    main = primary(p)
    main_given = main["lower"].notna() & main["upper"].notna()
    ok = (main.loc[main_given, "lower"] <= main.loc[main_given, "estimate"] + 1e-12) & (
        main.loc[main_given, "estimate"] <= main.loc[main_given, "upper"] + 1e-12
    )
    assert ok.all(), main.loc[main_given][~ok].to_string()
    missing = p[~given]
    assert missing["note"].map(lambda v: isinstance(v, str) and v.strip() != "").all(), (
        f"NaN intervals need a note: {missing['parameter'].tolist()[:5]}"
    )
    width = (p["upper"] - p["lower"]).groupby([p["parameter"], p["interval"]]).first().unstack()
    if {"wald-z", "wald-t"} <= set(width.columns):
        both = width[["wald-z", "wald-t"]].dropna()
        assert (both["wald-t"] >= both["wald-z"] - 1e-12).all(), "t(J-1) is narrower than z"
    assert p["interval"].notna().all(), "say how each interval was made ('none' when there is none)"
    assert (p[p["param_class"] == "sd"]["estimate"] >= 0).all()
    assert (p[p["param_class"] == "cor"]["estimate"].abs() <= 1 + 1e-9).all()


def check_fit_level_fields(engine: Estimator) -> None:
    _, fit = _fit(engine)
    assert isinstance(fit.converged, bool)
    for flag in (fit.singular, fit.corr_at_bound, fit.var_at_zero):
        assert flag is None or isinstance(flag, bool)
    assert isinstance(fit.loglik, float)
    assert fit.criterion in (None, "REML", "ML")
    assert isinstance(fit.warnings, list) and all(isinstance(w, str) for w in fit.warnings)
    assert isinstance(fit.notes, list) and all(isinstance(n, str) for n in fit.notes)
    assert math.isfinite(fit.wall_s) and fit.wall_s > 0
    assert fit.compile_s >= 0 and isinstance(fit.compile_count, int) and fit.compile_count >= 0
    if engine.kind == "bayesian":
        assert fit.sampler is not None, "a sampler reports its diagnostics"
        for key in ("rhat_max", "ess_bulk_min", "ess_tail_min", "divergences"):
            assert math.isfinite(getattr(fit.sampler, key)), key
        assert fit.draws, "a sampler hands back thinned draws for simulation-based calibration"
    rows = fit.rows({"b[x]": 0.5})
    assert "covered" in rows.columns and len(rows) == len(fit.params)


def check_fit_does_not_change_its_input(engine: Estimator) -> None:
    data = supported_data(engine)
    if not engine.available() or data is None:
        raise Unavailable(engine.available().reason or "no supported data")
    before = data.frame.copy(deep=True)
    fields_before = {f: getattr(data, f) for f in FITDATA_FIELDS if f != "frame"}
    engine.fit(data, seed=SEED)
    pd.testing.assert_frame_equal(data.frame, before, check_exact=True, obj="the data frame after fit")
    assert {f: getattr(data, f) for f in fields_before} == fields_before, "fit changed its FitData"


def check_no_truth_reachable(engine: Estimator) -> None:
    """FitData holds only what an engine may see; the truth, replication and scenario are not among it."""
    names = {f.name for f in dataclasses.fields(FitData)}
    assert names == FITDATA_FIELDS, f"FitData grew fields an engine could read: {names - FITDATA_FIELDS}"
    params = inspect.signature(engine.fit).parameters
    assert list(params) == ["data", "seed"], f"fit takes (data, *, seed) and nothing else: {list(params)}"


def check_same_seed_same_result(engine: Estimator) -> None:
    """The same data and seed give the same estimates, whatever the engine fitted in between (a resumed run
    must equal an uninterrupted one)."""
    data, first = _fit(engine)
    other = fit_data(data.formula.text, data.family, data.link, small_frame(seed=99))
    engine.fit(other, seed=SEED + 1)
    again = engine.fit(data, seed=SEED)
    cols = ["parameter", "interval", "estimate", "se", "lower", "upper"]
    pd.testing.assert_frame_equal(
        first.params[cols], again.params[cols], check_exact=True, obj=f"{engine.name}: refit with the same seed"
    )


def check_unsupported_data_fails_cleanly(engine: Estimator) -> None:
    """A dataset the engine says it cannot fit raises with a message (never a silent wrong answer)."""
    options = [*CANDIDATES, ("y ~ x", "gaussian", "identity")]
    wrong = next(
        (
            fit_data(f, fam, link)
            for f, fam, link in options
            if not engine.supports(ModelSpec(parse_formula(f), fam, link))
        ),
        None,
    )
    if wrong is None:
        return
    try:
        engine.fit(wrong, seed=SEED)
    except Exception as exc:  # noqa: BLE001 - any exception with a message is a clean refusal
        assert str(exc).strip(), "the refusal needs a message"
        return
    raise AssertionError(f"{engine.name} fitted a model its supports() refuses: {wrong.model}")


def check_degenerate_response_fails_cleanly(engine: Estimator) -> None:
    """A constant response (no variance, all failures): raise with a message or report non-convergence."""
    data = supported_data(engine)
    if not engine.available() or data is None:
        raise Unavailable(engine.available().reason or "no supported data")
    frame = small_frame()
    frame["y"], frame["s"], frame["c"] = 3.0, 0, 0
    degenerate = fit_data(data.formula.text, data.family, data.link, frame)
    try:
        fit = engine.fit(degenerate, seed=SEED)
    except Exception as exc:  # noqa: BLE001 - raising is one of the two clean outcomes
        assert str(exc).strip()
        return
    assert not fit.converged or fit.singular, "a constant response cannot give a regular, converged fit"


STATIC_CHECKS = (check_identity, check_settings_are_typed, check_supports_says_why_not, check_no_truth_reachable)
FITTING_CHECKS = (
    check_fitresult_columns_and_names,
    check_intervals_ordered_or_explained,
    check_fit_level_fields,
    check_fit_does_not_change_its_input,
    check_same_seed_same_result,
    check_unsupported_data_fails_cleanly,
    check_degenerate_response_fails_cleanly,
)


def checks(engine: Estimator | str, fitting: bool = True) -> Iterator[tuple[str, Callable[[], None]]]:
    """(check name, zero-argument callable) pairs for one engine; `fitting=False` gives only the static ones."""
    est = configured(engine)
    for check in STATIC_CHECKS + (FITTING_CHECKS if fitting else ()):
        yield check.__name__, functools.partial(check, est)


def check_engine(engine: Estimator | str) -> list[str]:
    """Run every check; raise AssertionError at the first broken rule. Returns the checks skipped because
    the engine is unavailable here."""
    skipped = []
    for name, run in checks(engine):
        try:
            run()
        except Unavailable:
            skipped.append(name)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from exc
    return skipped
