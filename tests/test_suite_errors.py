"""Suites the fuzzer (tests/test_fuzz.py) found crashing validation with an internal error: each is now one
InputError line naming the field and the value, before anything runs. In-process (parse_suite), so fast."""

import pytest

from compare.errors import InputError
from compare.suite import parse_suite


@pytest.fixture(autouse=True, scope="module")
def doubles():
    """The test-double engines (tests/doubles.py), registered beside the shipped ones."""
    import tests.doubles
    from compare.estimators import engine_names, register

    engine_names()
    for cls in tests.doubles.ESTIMATORS:
        register(cls)


def suite(**engine) -> dict:
    return {"name": "s", "seed": 1, "reps": 2, "scenario": [{"name": "varying_intercept", "cells": [0]}],
            "engine": [{"name": "ols-double", **engine}]}


def test_valid_suite_parses():
    assert parse_suite(suite()).engines[0].name == "ols-double"


@pytest.mark.parametrize("engine,expected", [
    # a setting below its lower bound when it has no upper bound: the message's format was a ValueError
    ({"name": "sleepy-double", "settings": {"sleep": -1}}, "engine[0].settings.sleep: -1.0 is outside 0..inf"),
])
def test_fuzz_found_suite_is_one_input_error(engine, expected):
    with pytest.raises(InputError) as exc:
        parse_suite(suite(**engine))
    assert expected in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("edit,expected", [
    # a name too long for a folder was OSError "File name too long" when the run folder was made
    ({"name": "a" * 300}, "field 'name': 'aaaa"),
    # a NUL in the name was ValueError "embedded null byte" when the run folder was made
    ({"name": "nul\0x"}, "field 'name': 'nul\\x00x'"),
    # a trillion replications was a MemoryError while the harness listed the tasks
    ({"reps": 10**12}, "field 'reps': 1,000,000,000,000 tasks"),
])
def test_fuzz_found_suite_top_level(edit, expected):
    with pytest.raises(InputError) as exc:
        parse_suite({**suite(), **edit})
    assert expected in str(exc.value) and "\n" not in str(exc.value)
