"""hbench's design matrix against R's own `model.matrix` on a corpus of formulas: the same column names (lme4's
coefficient names, `(Intercept)` being hbench's `Intercept`) and the same values.

R reads the data as a user's CSV is read (`read.csv`: TRUE/FALSE columns logical, whole numbers integer) and
text columns become factors (`factor()`: levels in sorted order), as the R engines get them (R's C() refuses text). The values are deterministic, so the tolerance is floating-point
round-off only (1e-9 relative to the column's scale).
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from compare.design import model_matrix
from compare.errors import InputError
from compare.fitresult import describe
from compare.formula import parse_formula, parse_rhs

pytestmark = pytest.mark.skipif(shutil.which("Rscript") is None, reason="needs R (Rscript)")

CORPUS = [
    "y ~ x", "y ~ 1", "y ~ factor(YEAR)", "y ~ factor(YEAR) + age", "y ~ sex + age:sex", "y ~ age * sex",
    "y ~ age + I(age^2)", "y ~ I(age^2) + I(x * 2 + 1) + I(x^-1) + I((x + 1)^2)", "y ~ log(n) + exp(z) + sqrt(x)",
    "y ~ log(x, base = 2) + abs(z) + log10(n)", "y ~ scale(age)", "y ~ scale(age) * sex", "y ~ poly(x, 2)",
    "y ~ poly(x, 3) + grp", "y ~ poly(age, degree = 2)", "y ~ poly(age, 2, raw = TRUE)", "y ~ poly(x, 1)",
    "y ~ (age + sex + grp)^2", "y ~ (x + z + sex)^3", "y ~ x * z * sex", "y ~ 0 + grp", "y ~ grp - 1",
    "y ~ -1 + grp + sex", "y ~ 0 + grp:sex", "y ~ x:grp", "y ~ grp:sex", "y ~ grp/x", "y ~ sex * grp - sex",
    "y ~ factor(YEAR):age", "y ~ flag", "y ~ factor(flag) + x", "y ~ flag:x", "y ~ C(grp)", "y ~ C(grp, treatment)",
    "y ~ factor(period) * x", "y ~ factor(x * 10)", "y ~ x:sex + sex", "y ~ sex:x + x", "y ~ age*sex - age",
    "y ~ x + offset(log(n))", "y ~ 0 + age", "y ~ (grp + sex)^2 - grp:sex", "y ~ factor(YEAR) * scale(age) - 1",
]


def frame() -> pd.DataFrame:
    """12 rows: numbers, whole numbers, two text factors (lower case: one sort order in every locale), a flag."""
    rng = np.random.default_rng(25)
    n = 12
    return pd.DataFrame({
        "y": rng.normal(size=n), "x": np.linspace(0.5, 3.0, n) + rng.uniform(0, 0.1, n), "z": rng.normal(size=n),
        "age": np.round(rng.uniform(20, 70, n), 1), "sex": ["female", "male"] * 6,
        "grp": ["b", "c", "a"] * 4, "YEAR": [94, 96, 98, 100] * 3, "flag": [True, False, False] * 4,
        "n": rng.integers(1, 50, n), "period": [1, 2, 3, 4, 2, 3] * 2,
    })


def r_model_matrices(tmp_path, data: pd.DataFrame, formulas: list[str]) -> list[pd.DataFrame | str]:
    """R's model.matrix of each formula on the CSV of `data` (its column names kept), or R's error message."""
    csv, forms = tmp_path / "d.csv", tmp_path / "f.txt"
    data.replace({True: "TRUE", False: "FALSE"}).to_csv(csv, index=False)  # as R's write.csv writes logicals
    forms.write_text("\n".join(formulas) + "\n")
    script = """
args <- commandArgs(TRUE)
d <- read.csv(args[1])
d[] <- lapply(d, function(col) if (is.character(col)) factor(col) else col)  # as the R engines get them
fs <- readLines(args[2])
for (k in seq_along(fs)) {
  out <- file.path(args[3], paste0("m", k, ".csv"))
  m <- tryCatch(model.matrix(as.formula(fs[k]), d), error = function(e) conditionMessage(e))
  if (is.character(m)) writeLines(m, paste0(out, ".err")) else write.csv(m, out, row.names = FALSE)
}
"""
    subprocess.run(["Rscript", "-e", script, str(csv), str(forms), str(tmp_path)], check=True, capture_output=True)
    out = []
    for k in range(1, len(formulas) + 1):
        err = tmp_path / f"m{k}.csv.err"
        out.append(err.read_text().strip() if err.exists() else pd.read_csv(tmp_path / f"m{k}.csv"))
    return out


def test_corpus_matches_r_model_matrix(tmp_path):
    data = frame()
    ours = {}
    for text in CORPUS:
        X, names = model_matrix(parse_formula(text).fixed_terms, data)
        ours[text] = (X, ["(Intercept)" if n == "Intercept" else n for n in names])
    theirs = r_model_matrices(tmp_path, data, CORPUS)
    failures = []
    for text, ref in zip(CORPUS, theirs):
        X, names = ours[text]
        if isinstance(ref, str):
            failures.append(f"{text}: R failed: {ref}")
        elif list(ref.columns) != names:
            failures.append(f"{text}: names {names} != R's {list(ref.columns)}")
        elif not np.allclose(X, ref.to_numpy(float), rtol=1e-9, atol=1e-9 * max(1.0, float(np.abs(X).max()))):
            failures.append(f"{text}: values differ by {np.abs(X - ref.to_numpy(float)).max():g}")
    assert not failures, "\n".join(failures)


def test_the_fixed_text_hands_r_the_same_terms(tmp_path):
    """Formula.fixed is what the R engines get (compare.estimators._r.r_formula): R's model matrix of it equals
    R's model matrix of the formula as written (a sorted rewrite would reorder variables: `x:b + b` is not
    `b + x:b`)."""
    data = frame()
    rewritten = [f"y ~ {parse_formula(t).fixed or '0'}" for t in CORPUS]
    (tmp_path / "rewritten").mkdir()
    for text, a, b in zip(CORPUS, r_model_matrices(tmp_path, data, CORPUS),
                          r_model_matrices(tmp_path / "rewritten", data, rewritten)):
        assert list(a.columns) == list(b.columns), text


def test_block_expressions_match_r(tmp_path):
    """A random-effect block's columns are the model matrix of its expression, as lme4 builds them."""
    data = frame()
    f = parse_formula("y ~ x + (1 + poly(x, 2) | grp) + (0 + sex | grp) + (scale(age) || sex)")
    exprs = [b.expr for b in f.blocks]
    assert exprs == ["1 + poly(x, 2)", "0 + sex", "1", "0 + scale(age)"]
    theirs = r_model_matrices(tmp_path, data, [f"y ~ {e}" for e in exprs])
    for e, ref in zip(exprs, theirs):
        X, names = model_matrix(parse_rhs(e), data)
        assert ["(Intercept)" if n == "Intercept" else n for n in names] == list(ref.columns), e
        assert np.allclose(X, ref.to_numpy(float), atol=1e-9), e


def test_grouping_names_are_lme4s():
    f = parse_formula("y ~ 1 + (1 | batch/cask)")
    assert [b.group for b in f.blocks] == ["batch", "cask:batch"]
    assert f.blocks[1].group_columns == ("cask", "batch")
    deep = parse_formula("y ~ 1 + (1 | a/b/c)")
    assert [b.group for b in deep.blocks] == ["a", "b:a", "c:(b:a)"]  # lme4's names (lFormula's cnms)
    assert deep.blocks[2].group_columns == ("c", "b", "a")


@pytest.mark.parametrize("name,parts", [
    ("b[factor(YEAR)96]", ("b", None, "factor(YEAR)96", None)),
    ("b[poly(x, 2)1]", ("b", None, "poly(x, 2)1", None)),
    ("r[g][lvl,poly(x, 2)1]", ("r", "g", "poly(x, 2)1", "lvl")),
    ("sd[cask:batch][I(age^2)]", ("sd", "cask:batch", "I(age^2)", None)),
    ("cor[g][poly(x, 2)1,poly(x, 2)2]", ("cor", "g", "poly(x, 2)1,poly(x, 2)2", None)),
])
def test_parameter_names_round_trip(name, parts):
    d = describe(name)
    assert (d.param_class, d.group, d.term, d.group_level) == parts


@pytest.mark.parametrize("bad,says", [
    ("y ~ bs(x, 3) + (1 | g)", r"bs\(\) is not supported"),
    ("y ~ x %% 2 + (1 | g)", "unexpected character"),
    ("y ~ C(grp, sum) + (1 | g)", "only treatment contrasts"),
    ("y ~ log(factor(x)) + (1 | g)", "term of its own"),
    ("y ~ x + 2 + (1 | g)", "the number 2 is not a term"),
    ("y ~ x^1.5 + (1 | g)", "whole number"),
    ("y ~ poly(x, k) + (1 | g)", "degree must be a whole number"),
    ("y ~ x + 1 | g", "must be in parentheses"),
])
def test_unsupported_syntax_is_one_clear_error(bad, says):
    with pytest.raises(InputError, match=says):
        parse_formula(bad)


def test_c_of_a_number_is_a_factor():
    """R's C() refuses a numeric column ("object not interpretable as a factor": cbpp's `period` read from a
    CSV); hbench reads C(x) as factor(x) with treatment contrasts, and the R engines get x as an R factor."""
    X, names = model_matrix(parse_rhs("1 + C(period)"), frame())
    assert names == ["Intercept", "C(period)2", "C(period)3", "C(period)4"]
    assert np.array_equal(X[:, 1:].argmax(axis=1) + 2 * X[:, 1:].any(axis=1), np.where(frame().period > 1,
                                                                                       frame().period, 0))
