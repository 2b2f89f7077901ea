"""Suites the fuzzer (tests/test_fuzz.py) found crashing validation with an internal error: each is now one
InputError line naming the field and the value, before anything runs. In-process (parse_suite), so fast."""

import dataclasses
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
    ({"name": "sleepy-double", "settings": {"sleep": -1}}, "field 'engine[0].settings.sleep': -1 is outside [0, inf)"),
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


def test_every_problem_of_every_table_is_named_at_once():
    """One parse names the problems of the top level, the failsafe table, each [[scenario]] and each [[engine]]
    (its keys and its engine's own settings), and what needs the catalogue: one line, "N problems: ..."."""
    raw = {"name": "s", "seed": -1, "reps": 2, "level": float("nan"), "timeout": 0, "colour": "red",
           "failsafe": {"min_fits": 0, "max_failure_rate": 0},
           "scenario": [{"name": "varying_intercept", "cells": [0, 99]}, {"name": "no_such"}, {"cells": "x"}],
           "engine": [{"name": "ols-double", "settings": {"shift": "a", "shfit": 1}}, {"name": "nope"},
                      {"name": "ols-double", "label": "a/b", "max_reps": 0}],
           "reference": "q"}
    with pytest.raises(InputError) as exc:
        parse_suite(raw)
    text = str(exc.value)
    expected = ["field 'seed': -1 is outside [0, 9223372036854775807]", "field 'level': nan is outside (0, 1)",
                "field 'timeout': 0 is outside (0, inf)", "field 'colour': unknown key (expected one of name, ",
                "field 'failsafe.min_fits': 0 is outside [1, inf)",
                "field 'failsafe.max_failure_rate': 0 is outside (0, 1]",
                "field 'scenario[2].cells': 'x' must be a list", "field 'scenario[2].name': missing (required)",
                "field 'scenario[0].cells': 99 is not a cell of varying_intercept (0..5)",
                "field 'scenario[1].name': unknown scenario 'no_such'",
                "field 'engine[0].settings.shift': 'a' must be a number",
                "field 'engine[0].settings.shfit': unknown setting (expected one of shift, t_rows, draws)",
                "field 'engine[1].name': unknown engine 'nope'",
                "field 'engine[2].label': 'a/b': expected a short name without '/'",
                "field 'engine[2].max_reps': 0 is outside [1, inf)",
                "field 'reference': 'q' is not one of the suite's engines"]
    assert text.startswith(f"{len(expected)} problems: ") and "\n" not in text, text
    for part in expected:
        assert part in text, part


def test_suite_keys_listing_is_the_parser():
    """`hbench suite-keys` (generated from the suite's tables) and the parser agree: each table's unknown-key
    message names exactly the keys listed for it, and the listed defaults written out parse to the suite they
    give when left out."""
    import json

    from compare.commands.suite_keys import catalogue

    listed: dict[str, dict[str, dict]] = {}
    for row in catalogue():
        listed.setdefault(row["table"], {})[row["name"]] = row
    base = suite()
    edits = {"": {**base, "zz": 1}, "failsafe": {**base, "failsafe": {"zz": 1}}, "cluster": {**base, "cluster": {"zz": 1}},
             "[[scenario]]": {**base, "scenario": [{**base["scenario"][0], "zz": 1}]},
             "[[engine]]": {**base, "engine": [{**base["engine"][0], "zz": 1}]}}
    assert set(edits) == set(listed)
    for table, raw in edits.items():
        with pytest.raises(InputError) as exc:
            parse_suite(raw)
        named = str(exc.value).partition("expected one of ")[2].rstrip(")").split(", ")
        nested = {"failsafe", "cluster", "scenario", "engine"} if table == "" else set()
        assert set(named) == set(listed[table]) | nested, (table, named)
    written = {k: json.loads(r["default"]) for k, r in listed[""].items() if not r["default"].startswith("(")}
    written["failsafe"] = {k: json.loads(r["default"]) for k, r in listed["failsafe"].items()}
    written["cluster"] = {k: json.loads(r["default"]) for k, r in listed["cluster"].items()}
    plain = parse_suite({k: v for k, v in base.items() if k not in ("seed", "reps")})
    explicit = parse_suite({**written, **{k: v for k, v in base.items() if k not in ("seed", "reps")}})
    assert dataclasses.replace(explicit, raw=plain.raw) == plain
