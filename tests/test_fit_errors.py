"""`hbench fit` inputs the fuzzer (tests/test_fuzz.py) found mishandled: each is now one line on stderr, exit 2,
nothing on stdout. In-process, so fast."""

import json
import tempfile
from pathlib import Path

import pytest

from compare import cli


@pytest.fixture
def run(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # an internal error's traceback file stays here

    def fit(csv_text: str, *args: str) -> tuple[int, str, str]:
        path = tmp_path / "data.csv"
        path.write_text(csv_text, encoding="utf-8")
        code = cli.main(["fit", str(path), *args])
        out, err = capsys.readouterr()
        return code, out, err

    return fit


def one_line_error(code: int, out: str, err: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) == 1 and lines[0].startswith("hbench: error:"), (code, err)
    return lines[0]


def test_missing_value_in_a_non_ascii_column(run):
    """`y ~ é + (1 | g)` with a hole in é: the missing-value rule skipped é, formulae dropped the row from X only,
    and mixedlm failed on 'endog and exog matrices are different sizes' (lme4 would have dropped the row)."""
    code, out, err = run("y,g,é\n1,a,0.5\n2,a,1.5\n3,b,\n4,b,2\n5,c,1\n6,c,3\n",
                         "--formula", "y ~ é + (1 | g)", "--engine", "mixedlm", "--format", "json")
    assert "missing values in 'é' (1)" in one_line_error(code, out, err)


@pytest.mark.parametrize("column", ["x", "g"])
def test_infinite_covariate_or_group_code(run, column):
    """inf in the response was already one line; inf in a covariate reached the engines ('MissingDataError: exog
    contains inf or nans' from mixedlm, exit 0); inf as a numeric group code was fitted as a group."""
    rows = {"x": "3,b,inf", "g": "3,inf,1"}[column]
    code, out, err = run(f"y,g,x\n1,1,0.5\n2,1,1.5\n{rows}\n4,2,2\n5,3,1\n6,3,3\n",
                         "--formula", "y ~ x + (1 | g)", "--engine", "mixedlm", "--format", "json")
    assert f"column '{column}' has infinite values" in one_line_error(code, out, err)


def test_blank_group_cell_is_missing(run):
    """A group cell holding only spaces (`" "` in the CSV) is missing, like an empty one. pandas 3 reads text as
    a string dtype, not object, so the blank check was skipped and " " was fitted as a phantom group."""
    code, out, err = run('y,g,x\n1,a,0.5\n2,a,1.5\n3," ",1\n4,b,2\n5,c,1\n6,c,3\n',
                         "--formula", "y ~ x + (1 | g)", "--engine", "mixedlm", "--format", "json")
    assert "missing values in 'g' (1)" in one_line_error(code, out, err)


def test_text_in_a_numeric_column_after_a_numeric_one(run):
    """`x` read as text ("1,5") after a numeric column `g`: the blank-cell check (DataFrame.apply returning a
    scalar for one column and a Series for the next) was ValueError 'setting an array element with a sequence'
    (internal error, exit 1)."""
    code, out, err = run('y,g,x\n0,2,"1,5"\n0.5,2,\n', "--formula", "y ~ x + (1 | g)", "--engine", "mixedlm")
    assert "missing values in 'x' (1)" in one_line_error(code, out, err)


@pytest.mark.parametrize("trials", ["1e308", "2.5"])
def test_binomial_trials_must_be_whole_numbers(run, trials):
    """Trials of 1e308 reached bayesmixedglm-map ('repeats may not contain negative values' after an int cast) and
    trials of 2.5 were fitted as they stood: the successes were checked, the trials not."""
    code, out, err = run(f"y,g,x,n\n0,a,0.5,3\n1,a,1.5,{trials}\n2,b,1,4\n1,b,2,2\n",
                         "--formula", "y | trials(n) ~ x + (1 | g)", "--family", "binomial",
                         "--engine", "bayesmixedglm-map", "--format", "json")
    assert "column 'n': binomial trials" in one_line_error(code, out, err)


def test_an_engine_that_fails_is_a_row_that_says_so_and_exit_1(run, monkeypatch):
    """One fit path for `hbench fit` and the harness (compare.attempt): a failing engine is a record with status
    failed and its error, the others still fit, the exit status is 1; never an empty table."""
    from compare import estimators
    from tests.doubles import FailingDouble, OLSDouble

    estimators.engine_names()  # discovered first, so the doubles below are removed again after the test
    for cls in (OLSDouble, FailingDouble):
        monkeypatch.setitem(estimators._REGISTRY, cls.name, cls)
    csv = "y,x,g\n" + "".join(f"{i % 7 + 0.1 * i},{i % 5},g{i % 4}\n" for i in range(40))
    code, out, err = run(csv, "--formula", "y ~ x + (1 | g)", "--engine", "ols-double", "--engine",
                         "failing-double", "--format", "json")
    records = {r["engine"]: r for r in json.loads(out)}
    assert code == 1 and "1 of 2 engines failed: failing-double" in err
    assert records["ols-double"]["status"] == "ok" and records["ols-double"]["parameters"]
    failed = records["failing-double"]
    assert failed["status"] == "failed" and failed["parameters"] == []
    assert failed["error"].startswith("RuntimeError: deliberate failure on seed 1")
    code, out, err = run(csv, "--formula", "y ~ x + (1 | g)", "--engine", "failing-double")
    assert code == 1 and "no estimates: every engine failed" in out and "error: RuntimeError" in out


# -- --set ENGINE.KEY=VALUE, --engine with several names, sampler flags from the settings classes -----------

FIXTURE = Path(__file__).parent / "fixtures" / "lme4" / "varying_intercept.csv"


@pytest.mark.parametrize("sets,expected", [
    (["mixedlm.reml=maybe"], "--set mixedlm.reml: 'maybe' must be true or false"),
    (["mixedlm.rmel=false"], "--set mixedlm.rmel: unknown setting (expected one of reml, robust)"),
    (["mixedlm.level=0.9"], "--set mixedlm.level: unknown setting (the interval level is set once"),
    (["nope.reml=false"], "--set nope.reml: unknown engine 'nope' (known: "),
    (["mixedlm-reml=false"], "--set 'mixedlm-reml=false': expected ENGINE.KEY=VALUE"),
    (["mixedlm.reml"], "--set 'mixedlm.reml': expected ENGINE.KEY=VALUE"),
    (["mixedlm.reml=false", "mixedlm.reml=true"], "--set mixedlm.reml: given twice"),
    (["mixedlm-ml.reml=true"], "--set mixedlm-ml.reml: mixedlm-ml is not among the engines fitted (mixedlm); "
                               "name it with --engine"),
    (["lme4.ddf=satterthwaite"], "--set lme4.ddf: 'satterthwaite' must be a list"),
    (['lme4.ddf=["satterwhaite"]'], "ddf 'satterwhaite' is not one of 'satterthwaite', 'kenward-roger'"),
    (["lme4.bootstrap=-1"], r"--set lme4.bootstrap: -1 is outside [0, inf)"),
    (["stan.backend=cmdstan"], "--set stan.backend: 'cmdstan' is not one of 'auto', 'pystan', 'cmdstanpy'"),
    (["pymc.adapt_delta=nan"], "--set pymc.adapt_delta: nan is outside [0.5, 0.9999]"),
])
def test_set_problem_is_one_line(run, sets, expected):
    """Every --set is checked by the engine's settings class (the same parser as a suite's settings), before the
    data is read: one line naming the item, exit 2, nothing on stdout."""
    args = [a for item in sets for a in ("--set", item)]
    line = one_line_error(*run(FIXTURE.read_text(), "--formula", "y ~ x + (1 | g)", "--engine", "mixedlm", *args))
    assert expected in line, line


def test_set_values_are_toml_literals_or_text():
    from compare.commands.fit import parse_sets, toml_literal

    assert toml_literal("false") is False and toml_literal("3") == 3 and toml_literal("0.9") == 0.9
    assert toml_literal('["satterthwaite"]') == ["satterthwaite"] and toml_literal('"3"') == "3"
    assert toml_literal("cmdstanpy") == "cmdstanpy" and toml_literal("1\nx = 2") == "1\nx = 2"
    sets = parse_sets(["stan.backend=cmdstanpy", "lme4.profile=false", 'lme4.ddf=["satterthwaite"]', "pymc.chains=2"])
    assert sets == {"stan": {"backend": "cmdstanpy"}, "lme4": {"profile": False, "ddf": ["satterthwaite"]},
                    "pymc": {"chains": 2}}


def _fit_json(run, *args: str) -> list[dict]:
    import json

    code, out, err = run(FIXTURE.read_text(), "--formula", "y ~ x + (1 | g)", "--format", "json", *args)
    assert code == 0, err
    return json.loads(out)


def test_set_reaches_the_engine_and_engine_takes_several_names(run):
    """`--engine mixedlm mixedlm-ml` fits both (as the flag twice does); `--set mixedlm.reml=false` makes mixedlm
    the ML fit mixedlm-ml is: the same log-likelihood and estimates (same code, same data), and not the REML
    fit mixedlm is without it."""
    both = _fit_json(run, "--engine", "mixedlm", "mixedlm-ml")
    assert [r["engine"] for r in both] == ["mixedlm", "mixedlm-ml"]
    twice = _fit_json(run, "--engine", "mixedlm", "--engine", "mixedlm-ml")
    assert [r["parameters"] for r in twice] == [r["parameters"] for r in both]
    ml = _fit_json(run, "--engine", "mixedlm", "--set", "mixedlm.reml=false")[0]
    assert ml["loglik"] == pytest.approx(both[1]["loglik"], rel=1e-12)
    assert [p["estimate"] for p in ml["parameters"]] == pytest.approx([p["estimate"] for p in both[1]["parameters"]],
                                                                      rel=1e-12)
    assert ml["loglik"] != pytest.approx(both[0]["loglik"], rel=1e-6)


def test_set_overrides_a_flag_for_its_engine_only():
    """--chains 2 reaches every sampler named; --set stan.chains=3 overrides it for stan alone."""
    from compare.commands.fit import choose_engines, load_data

    data, _ = load_data(str(FIXTURE), "y ~ x + (1 | g)", "gaussian", None)
    engines = choose_engines(data, ["stan", "pymc"], {"chains": 2}, sets={"stan": {"chains": 3}})
    assert [(e.name, e.settings.chains) for e in engines] == [("stan", 3), ("pymc", 2)]


def test_sampler_flags_are_generated_from_the_settings_classes():
    """Each sampler flag's help names the default most samplers declare, every sampler whose default differs
    (brms's max_treedepth 10, which the hand-written help missed), the declared doc and range; argparse's type
    is the declared type; the flag's own default is unset (each engine keeps its own)."""
    import argparse
    from collections import Counter

    from compare.commands import fit
    from compare.estimators import engine_class, engine_names
    from compare.estimators._bayes import SamplerSettings
    from compare.settings import bounds_text

    parser = argparse.ArgumentParser()
    fit.register(parser.add_subparsers())
    actions = {a.dest: a for a in parser._subparsers._group_actions[0].choices["fit"]._actions}
    samplers = [engine_class(n) for n in engine_names() if engine_class(n).kind == "bayesian"]
    for key in fit.SAMPLER_KEYS:
        action, declared = actions[key], SamplerSettings.__dataclass_fields__[key]
        defaults = {c.name: c.Settings.__dataclass_fields__[key].default for c in samplers}
        common = Counter(defaults.values()).most_common(1)[0][0]
        assert action.default is None and action.type is type(declared.default)
        assert action.help.startswith(f"samplers: {declared.metadata['doc']} (default {common:g}")
        assert f"within {bounds_text(declared)})" in action.help
        for name, value in defaults.items():
            assert (value == common) != (f"{name} {value:g}" in action.help), (key, name, action.help)
    assert "brms 10" in actions["max_treedepth"].help


def test_a_huge_covariate_in_a_rank_check_is_one_line(tmp_path):
    """Found by the fuzzer: x = 1e308 made the rank check's column norms overflow, and numpy's RuntimeWarning
    reached stderr beside the one-line error. In a subprocess: pytest would catch the warning in-process."""
    import subprocess
    import sys

    (tmp_path / "d.csv").write_text("y,x,g\n1,1e308,a\n")
    res = subprocess.run([sys.executable, "-m", "compare", "fit", str(tmp_path / "d.csv"), "--formula",
                          "y ~ x + (1 | g)", "--engine", "mixedlm", "--drop-missing", "--format", "json"],
                         capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    assert "is a linear combination of the columns before it" in one_line_error(res.returncode, res.stdout,
                                                                                 res.stderr)
