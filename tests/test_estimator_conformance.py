"""One conformance suite for every engine shipped in the package, through the public checks of
compare.testing (scikit-learn's check_estimator, for hbench). A new engine is done when it passes them.

Static checks (settings, supports, the fit signature) run for every engine in the default suite. Fitting
checks of Bayesian engines (kind == "bayesian") are marked `slow`: on a cold CI machine the first compile
alone takes 51 s (nutpie) to 70 s (Stan) (FINDINGS.md). An engine that cannot run here (R missing) skips
its fitting checks with the reason.
"""

from __future__ import annotations

import pytest

from compare import testing
from compare.estimators import engine_class, engine_names

SHIPPED = [n for n in engine_names() if engine_class(n).__module__.startswith("compare.")]


def _cases(fitting: bool):
    out = []
    for name in SHIPPED:
        cls = engine_class(name)
        checks = testing.FITTING_CHECKS if fitting else testing.STATIC_CHECKS
        marks = [pytest.mark.slow] if fitting and cls.kind == "bayesian" else []
        out += [pytest.param(name, check, marks=marks, id=f"{name}-{check.__name__}") for check in checks]
    return out


@pytest.mark.parametrize(("name", "check"), _cases(fitting=False))
def test_static(name, check):
    check(testing.configured(name))


_ENGINES: dict[str, object] = {}


@pytest.mark.parametrize(("name", "check"), _cases(fitting=True))
def test_fitting(name, check):
    engine = _ENGINES.setdefault(name, testing.configured(name))  # one instance: its fit is shared by the checks
    try:
        check(engine)
    except testing.Unavailable as exc:
        pytest.skip(str(exc))


def test_every_shipped_engine_is_covered():
    assert {"lme4", "mixedlm", "mixedlm-ml", "mixedlm-robust", "bayesmixedglm-map", "bayesmixedglm-vb",
            "pymc", "stan"} <= set(SHIPPED)


def test_an_engine_from_outside_the_package_runs_the_checks_on_itself(monkeypatch):
    """What a plug-in author does: register through HBENCH_ENGINES, then check_engine on their engine."""
    from tests.doubles import OLSDouble

    from compare.estimators import register

    register(OLSDouble)
    assert testing.check_engine("ols-double") == []


def test_the_checks_catch_an_engine_that_breaks_the_contract():
    """The checks can fail: an engine that changes its input, or ignores its seed, is caught."""
    from tests.doubles import MutatingDouble, SeedlessDouble

    from compare.estimators import register

    for cls, rule in ((MutatingDouble, "check_fit_does_not_change_its_input"),
                      (SeedlessDouble, "check_same_seed_same_result")):
        register(cls)
        with pytest.raises(AssertionError, match=rule):
            testing.check_engine(cls.name)


def test_the_checks_accept_extra_interval_rows():
    """An engine giving a second interval type per coefficient (a "wald-t" row after each primary) conforms."""
    from tests.doubles import OLSDouble

    engine = OLSDouble.configured({"t_rows": True})
    fit = engine.fit(testing.supported_data(engine), seed=1)
    assert fit.params["interval"].value_counts()["wald-t"] == 2 and fit.param("b[x]")["interval"] == "wald-z"
    for _, run in testing.checks(engine):
        run()


def _params_with_t_row(**t_row):
    from compare.fitresult import interval_row, make_params

    b = {"parameter": "b[x]", "estimate": 1.0, "se": 0.1, "lower": 0.8, "upper": 1.2, "interval": "wald-z"}
    return make_params([b, {**interval_row(b, "wald-t", 0.7, 1.3), **t_row}])


def test_the_interval_row_check_by_hand():
    testing.check_interval_rows(_params_with_t_row())
    with pytest.raises(AssertionError, match="repeat the primary row's estimate"):
        testing.check_interval_rows(_params_with_t_row(estimate=1.1))
    with pytest.raises(AssertionError, match="repeat the primary row's se"):
        testing.check_interval_rows(_params_with_t_row(se=0.2))
    with pytest.raises(AssertionError, match=r"\(parameter, interval\) pair appears twice: \['b\[x\]'\]"):
        testing.check_interval_rows(_params_with_t_row(interval="wald-z"))
