"""Suites the fuzzer (tests/test_fuzz.py) found crashing validation with an internal error: each is now one
InputError line naming the field and the value, before anything runs. In-process (parse_suite), so fast."""

import tempfile

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
    ({"name": "sleepy-double", "settings": {"sleep": -1}}, "field 'engine[0].settings.sleep': -1.0 is outside [0, inf)"),
    # settings that are not a table: TypeError "'int' object is not iterable"
    ({"name": "ols-double", "settings": 1}, "field 'engine[0].settings': expected a table, got 1"),
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
    # a number where the list of scenarios goes: TypeError "object of type 'int' has no len()"
    ({"scenario": 5}, "field 'scenario': 5 must be a list of tables ([[scenario]])"),
    # no scenario at all
    ({"scenario": []}, "field 'scenario': a suite needs at least one [[scenario]]"),
])
def test_fuzz_found_suite_top_level(edit, expected):
    with pytest.raises(InputError) as exc:
        parse_suite({**suite(), **edit})
    assert expected in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("run_id", ["r" * 300, "a\0b"])
def test_run_id_a_folder_cannot_have_is_one_line_exit_2(tmp_path, capsys, monkeypatch, run_id):
    """`hbench run SUITE --run-id ID` with an ID too long for a folder name was OSError "File name too long", and
    with a NUL ValueError "embedded null byte" (internal errors, exit 1); now exit 2 and nothing written."""
    from compare import cli

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # an internal error's traceback file stays here
    path = tmp_path / "s.toml"
    path.write_text('name = "s"\nreps = 1\n[[scenario]]\nname = "varying_intercept"\ncells = [0]\n'
                    '[[engine]]\nname = "ols-double"\n')
    code = cli.main(["run", str(path), "--run-id", run_id, "--results", str(tmp_path / "results"), "--no-progress"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "run id" in lines[0], lines
    results = tmp_path / "results"
    assert not results.exists() or not [p for p in results.iterdir() if p.name != ".starting"]


def test_only_may_name_one_cell_of_a_scenario():
    """`only = ["varying_intercept:2"]`: the engine fits that cell's replications, not the scenario's others
    (a costly engine on one key cell); a cell the suite does not run is one line."""
    from compare.tasks import expand

    raw = {**suite(only=["varying_intercept:2"]), "scenario": [{"name": "varying_intercept", "cells": [0, 2]}]}
    raw["engine"].append({"name": "ols-double", "label": "everywhere"})
    tasks = expand(parse_suite(raw))
    fitted = {(t.cell, e.label) for t in tasks for e in t.engines}
    assert fitted == {(0, "everywhere"), (2, "everywhere"), (2, "ols-double")}
    for bad in ("varying_intercept:1", "varying_intercept:x", "nested:0"):
        with pytest.raises(InputError) as exc:
            parse_suite({**raw, "engine": [{"name": "ols-double", "only": [bad]}]})
        assert f"{bad!r} is not a scenario (or scenario:cell) of this suite" in str(exc.value)
