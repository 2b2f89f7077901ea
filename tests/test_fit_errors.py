"""`hbench fit` inputs the fuzzer (tests/test_fuzz.py) found mishandled: each is now one line on stderr, exit 2,
nothing on stdout. In-process, so fast."""

import json
import tempfile

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
