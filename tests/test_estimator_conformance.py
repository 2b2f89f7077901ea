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
