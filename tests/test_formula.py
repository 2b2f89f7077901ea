"""The formula parser: lme4 syntax that formulae does not handle (blocks, ||, binomial responses)."""

import pytest

from compare.errors import InputError
from compare.formula import parse_formula


def test_correlated_block_keeps_terms_together():
    f = parse_formula("y ~ x + (1 + x | g)")
    assert f.fixed == "1 + x"
    assert [(b.group, b.expr, b.correlated) for b in f.blocks] == [("g", "1 + x", True)]


def test_double_bar_splits_into_uncorrelated_blocks():
    f = parse_formula("y ~ x + (x || g)")
    assert [(b.group, b.expr, b.correlated) for b in f.blocks] == [("g", "1", False), ("g", "0 + x", False)]


def test_nesting_expands_like_lme4():
    f = parse_formula("y ~ x + (1 | g1/g2)")
    assert [b.group for b in f.blocks] == ["g1", "g2:g1"]  # lme4's names: (1 | batch/cask) has cask:batch
    assert f.variables == {"y", "x", "g1", "g2"}


def test_offset_and_no_intercept():
    f = parse_formula("y ~ 0 + offset(o) + (1 | g)")
    assert f.fixed == "" and f.offset == "o"


@pytest.mark.parametrize("lhs,kind,cols", [
    ("cbind(s, f)", "cbind", ("s", "f")),
    ("s | trials(n)", "trials", ("s", "n")),
    ("p(s, n)", "trials", ("s", "n")),
    ("y", "single", ("y",)),
])
def test_responses(lhs, kind, cols):
    r = parse_formula(f"{lhs} ~ 1 + (1 | g)").response
    assert r.kind == kind and r.columns == cols


@pytest.mark.parametrize("bad", ["y ~ (1 + x | g", "y x", "y ~ x ~ z", "f(y) ~ x"])
def test_malformed_formulas_raise(bad):
    with pytest.raises(InputError):
        parse_formula(bad)


def test_non_ascii_column_names_are_variables():
    """Found by the fuzzer: `y ~ é + (1 | g)` left é out of the formula's variables (ASCII-only names), so the
    missing-value rule never looked at it, and formulae dropped its NaN rows from X only."""
    f = parse_formula("ÿ ~ é + (1 + é | 名前)")
    assert f.variables == {"ÿ", "é", "名前"} and f.response.y == "ÿ"
