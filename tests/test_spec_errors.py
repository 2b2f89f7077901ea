"""Malformed scenario specs: one line on stderr naming file, field and value; exit status 2."""

import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOOD = """
name = "t"
formula = "y ~ x + (1 + x | g)"
family = "gaussian"
[layout]
factors = { g = 5 }
size = 4
[covariates]
x = { dist = "normal", mean = 0, sd = 1 }
[truth]
b = { Intercept = 1, x = 0.5 }
sd = { g = { Intercept = 1, x = 0.5 } }
cor = { g = { "Intercept,x" = 0.3 } }
sigma = 1
"""

CASES = {
    "unknown_family": (('family = "gaussian"', 'family = "gamma"'), ["family", "'gamma'"]),
    "negative_sd": (("x = 0.5 } }\ncor", "x = -0.5 } }\ncor"), ["truth.sd.g.x", "-0.5"]),
    "correlation_out_of_range": (('"Intercept,x" = 0.3', '"Intercept,x" = 1.3'), ["truth.cor.g.Intercept,x", "1.3"]),
    "formula_column_not_generated": (("y ~ x + (1 + x | g)", "y ~ z + (1 + x | g)"), ["formula", "'z'"]),
    "typo_in_key": (("[layout]\nfactors", "[layout]\nfactor"), ["layout.factor", "unknown key"]),
    "typo_in_top_key": (('family = "gaussian"', 'family = "gaussian"\nfamly = 1'), ["famly", "unknown key"]),
    "missing_truth_for_term": (("b = { Intercept = 1, x = 0.5 }", "b = { Intercept = 1 }"), ["truth.b.x", "missing"]),
    "unknown_distribution": (('dist = "normal"', 'dist = "normall"'), ["covariates.x.dist", "'normall'"]),
    "bad_grid_value": (("sigma = 1\n", 'sigma = 1\n[grid]\n"truth.sd.g.x" = [0.5, -2]\n'),
                       ["grid cell 1", "truth.sd.g.x", "-2"]),
    "nan_in_truth": (("sigma = 1\n", "sigma = nan\n"), ["truth.sigma", "not a finite number"]),
    "inf_in_truth": (("b = { Intercept = 1, x = 0.5 }", "b = { Intercept = 1, x = inf }"), ["truth.b.x", "finite"]),
    "size_not_whole": (("size = 4", 'size = [1, "a"]'), ["layout.size", "expected [min, max]"]),
    "link_no_engine_fits": (('family = "gaussian"', 'family = "gaussian"\nlink = "log"'), ["link", "'log'"]),
}


def _run_simulate(spec: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "compare", "simulate", str(spec), "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT)


def test_good_spec_simulates(tmp_path):
    spec = tmp_path / "t.toml"
    spec.write_text(GOOD)
    res = _run_simulate(spec, tmp_path / "d.csv")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "d.csv").exists() and (tmp_path / "d.json").exists()


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_spec_is_one_line_exit_2(tmp_path, case):
    (old, new), expected = CASES[case]
    assert old in GOOD
    spec = tmp_path / f"{case}.toml"
    spec.write_text(GOOD.replace(old, new, 1))
    res = _run_simulate(spec, tmp_path / "d.csv")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert str(spec) in lines[0]
    for part in expected:
        assert part in lines[0], lines[0]
    assert not (tmp_path / "d.csv").exists()


def test_non_positive_definite_covariance(tmp_path):
    spec = tmp_path / "npd.toml"
    three = (GOOD.replace("y ~ x + (1 + x | g)", "y ~ x + z + (1 + x + z | g)")
             .replace('x = { dist = "normal", mean = 0, sd = 1 }',
                      'x = { dist = "normal", mean = 0, sd = 1 }\nz = { dist = "normal", mean = 0, sd = 1 }')
             .replace("b = { Intercept = 1, x = 0.5 }", "b = { Intercept = 1, x = 0.5, z = 0 }")
             .replace("x = 0.5 } }\ncor", "x = 0.5, z = 1 } }\ncor")
             .replace('"Intercept,x" = 0.3', '"Intercept,x" = 0.9, "Intercept,z" = 0.9, "x,z" = -0.9'))
    spec.write_text(three)
    res = _run_simulate(spec, tmp_path / "d.csv")
    assert res.returncode == 2
    assert "positive-definite" in res.stderr and "truth.cor.g" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


# Inputs the fuzzer (tests/test_fuzz.py) found crashing `hbench simulate` (internal error, exit 1) or simulating
# nonsense (NaN or inf data, exit 0); each is now one line naming the field, exit 2, nothing written. In-process:
# an (old, new) edit of GOOD (or a tuple of them), and the parts the error line must hold.
X = 'x = { dist = "normal", mean = 0, sd = 1 }'
BINOMIAL = (('y ~ x + (1 + x | g)', 'y | trials(n) ~ x + (1 + x | g)'), ('"gaussian"', '"binomial"'),
            ("sigma = 1\n", ""))  # GOOD as a binomial model, before its [trials]
FOUND = {
    "layout_too_many_levels": (("factors = { g = 5 }", "factors = { g = 10000000000 }"),
                               ["layout.factors.g", "10000000000 levels"]),
    "layout_size_too_large": (("size = 4", "size = [1, 100000000000]"), ["field 'layout'", "rows"]),
    "dist_name_not_a_string": (('dist = "normal"', 'dist = {}'), ["covariates.x.dist", "unknown distribution {}"]),
    "dist_parameter_a_table": (("mean = 0, sd = 1", "mean = {}, sd = 1"),
                               ["covariates.x.mean", "{} must be a finite number"]),
    "dist_parameter_nan": (("mean = 0, sd = 1", "mean = 0, sd = nan"),
                           ["covariates.x.sd", "nan must be a finite number"]),
    "poisson_mean_nan": ((X, 'x = { dist = "poisson", mean = nan }'), ["covariates.x.mean", "nan"]),
    "poisson_mean_too_large": ((X, 'x = { dist = "poisson", mean = 1e300 }'), ["covariates.x.mean", "1e+300"]),
    "poisson_min_beyond_int64": ((X, 'x = { dist = "poisson", mean = 4, min = -9223372036854775809 }'),
                                 ["covariates.x.min", "-9223372036854775809", "whole number"]),
    "uniform_range_overflows": ((X, 'x = { dist = "uniform", low = -1e308, high = 1e308 }'),
                                ["covariates.x", "too wide"]),
    "uniform_int_bounds_not_whole": ((X, 'x = { dist = "uniform_int", low = 0.5, high = 3 }'),
                                     ["covariates.x.low", "0.5"]),
    "bernoulli_p_a_string": ((X, 'x = { dist = "bernoulli", p = "a" }'), ["covariates.x.p", "'a'"]),
    "values_holding_a_list": ((X, 'x = { dist = "values", values = [1, []] }'), ["covariates.x.values", "[1, []]"]),
    "values_empty": ((X, 'x = { dist = "values", values = [] }'), ["covariates.x.values", "non-empty"]),
    "categorical_probs_not_summing_to_1": (
        (X, 'x = { dist = "categorical", levels = ["a", "b"], probs = [0.5, 0.6] }'),
        ["covariates.x.probs", "sum to 1"]),
    "layout_level_listed_twice": (("factors = { g = 5 }", 'factors = { g = ["a", "b", "a"] }'),
                                  ["layout.factors.g", "lists a level twice"]),
    "layout_level_a_table": (("factors = { g = 5 }", 'factors = { g = ["a", {}] }'), ["layout.factors.g", "labels"]),
    "name_not_a_string": (('name = "t"', "name = 5"), ["field 'name'", "5: expected a scenario name"]),
    "name_a_path": (('name = "t"', 'name = "../t"'), ["field 'name'", "'../t'"]),
    "covariates_a_number": ((("[covariates]\n" + X, ""), ('name = "t"', 'name = "t"\ncovariates = 30')),
                            ["field 'covariates'", "expected a table, got 30"]),
    "factors_a_number": (("factors = { g = 5 }", "factors = 5"), ["layout.factors", "expected a table, got 5"]),
    "truth_b_a_list_of_tables": (("b = { Intercept = 1, x = 0.5 }", 'b = ["lme4", {}]'),
                                 ["truth.b", "expected a table"]),
    "truth_sd_a_number": (("sd = { g = { Intercept = 1, x = 0.5 } }", "sd = 0"),
                          ["truth.sd", "expected a table, got 0"]),
    "truth_cor_a_list": (('cor = { g = { "Intercept,x" = 0.3 } }', "cor = [{}]"), ["truth.cor", "expected a table"]),
    "priors_b_a_number": (("sigma = 1\n", "sigma = 1\n[priors]\nb = 0\n"), ["priors.b", "expected a table, got 0"]),
    "priors_sd_group_a_list": (("sigma = 1\n", "sigma = 1\n[priors]\nsd = { g = [] }\n"),
                               ["priors.sd.g", "expected a table"]),
    "priors_cor_a_list": (("sigma = 1\n", "sigma = 1\n[priors]\ncor = []\n"), ["priors.cor", "expected a table"]),
    "trials_beyond_int64": (BINOMIAL + ((X, X + '\n[trials]\ndist = "values"\nvalues = [3, 18446744073709551616]'),),
                            ["field 'trials'", "18446744073709551616"]),
    "trials_a_string": (BINOMIAL + ((X, X + '\n[trials]\ndist = "values"\nvalues = [3, ""]'),),
                        ["field 'trials'", "'' is not a number of trials"]),
    "poststratify_a_list": (('name = "t"', 'name = "t"\npoststratify = [1, []]'), ["poststratify", "[1, []]"]),
    "covariate_overflows": ((X, 'x = { dist = "lognormal", meanlog = 800, sdlog = 1 }'),
                            ["covariates.x", "too large for a float"]),
    "mean_overflows": (((X, 'x = { dist = "constant", value = 2 }'), ("x = 0.5 }", "x = 1e308 }")),
                       ["field 'truth'", "mean overflows"]),
    "poisson_mean_beyond_numpy": (
        (('"gaussian"', '"poisson"'), ("sigma = 1\n", ""), ("Intercept = 1, x", "Intercept = 50, x")),
        ["field 'truth'", "poisson mean", "more than 1e+18"]),
    "response_overflows": ((("Intercept = 1, x", "Intercept = 1.7e308, x"), ("sigma = 1\n", "sigma = 1e308\n")),
                           ["field 'truth'", "response overflows"]),
    "grid_too_many_cells": (("sigma = 1\n", "sigma = 1\n[grid]\n" + "".join(
        f'"{k}" = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n' for k in ("truth.sigma", "truth.b.x", "truth.b.Intercept",
                                                               "covariates.x.mean", "covariates.x.sd"))),
                            ["field 'grid'", "100,000 cells"]),
}


# Bad values in the open data-generating fields (issue 20): [shape], ...
SHAPE = "sigma = 1\n"
DGP = {
    "shape_unknown": ((SHAPE, 'sigma = 1\n[shape]\ng = { dist = "cauchy" }\n'), ["shape.g.dist", "unknown shape 'cauchy'"]),
    "shape_negative_df": ((SHAPE, 'sigma = 1\n[shape]\ng = { dist = "chisq", df = -1 }\n'),
                          ["shape.g.df", "-1 must be above 0"]),
    "shape_t_infinite_variance": ((SHAPE, 'sigma = 1\n[shape]\nresidual = { dist = "t", df = 2 }\n'),
                                  ["shape.residual.df", "finite variance"]),
    "shape_unknown_parameter": ((SHAPE, 'sigma = 1\n[shape]\ng = { dist = "laplace", df = 3 }\n'),
                                ["shape.g.df", "unknown parameter for shape laplace"]),
    "shape_parameter_a_string": ((SHAPE, 'sigma = 1\n[shape]\ng = { dist = "skewnormal", alpha = "a" }\n'),
                                 ["shape.g.alpha", "'a' must be a finite number"]),
    "shape_mixture_weight_1": ((SHAPE, 'sigma = 1\n[shape]\ng = { dist = "mixture", p = 1 }\n'),
                               ["shape.g.p", "below 1"]),
    "shape_not_a_group": ((SHAPE, 'sigma = 1\n[shape]\nh = { dist = "laplace" }\n'),
                          ["shape.h", "not a grouping factor", "g"]),
    "shape_not_a_term": ((SHAPE, 'sigma = 1\n[shape]\ng = { z = { dist = "laplace" } }\n'),
                         ["shape.g.z", "not a term of the model"]),
    "shape_a_number": ((SHAPE, 'sigma = 1\n[shape]\ng = 3\n'), ["shape.g", "expected a shape"]),
    "shape_residual_of_binomial": (BINOMIAL + ((X, X + '\n[trials]\ndist = "constant"\nvalue = 3\n[shape]\n'
                                                   'residual = { dist = "laplace" }'),),
                                   ["shape.residual", "binomial model has no level-1 errors"]),
    "shape_grid_unknown": ((SHAPE, 'sigma = 1\n[grid]\n"shape.g.dist" = ["normal", "gamma"]\n'),
                           ["grid cell 1", "shape.g.dist", "'gamma'"]),
    "log_sigma_unknown_name": ((SHAPE, 'sigma = 1\n[shape]\nresidual = { log_sigma = { w = 0.5 } }\n'),
                               ["shape.residual.log_sigma.w", "not a covariate"]),
    "log_sigma_negative_group_sd": ((SHAPE, 'sigma = 1\n[shape]\nresidual = { log_sigma = { g = -0.5 } }\n'),
                                    ["shape.residual.log_sigma.g", "-0.5 is below 0"]),
    "log_sigma_not_a_table": ((SHAPE, 'sigma = 1\n[shape]\nresidual = { log_sigma = 0.5 }\n'),
                              ["shape.residual.log_sigma", "expected a table"]),
    "log_sigma_of_text": (((X, 'x = { dist = "categorical", levels = ["a", "b"] }'),
                           (SHAPE, 'sigma = 1\n[shape]\nresidual = { log_sigma = { x = 0.5 } }\n'),
                           ("y ~ x + (1 + x | g)", "y ~ 1 + (1 | g)"), ("b = { Intercept = 1, x = 0.5 }", "b = { Intercept = 1 }"),
                           ("sd = { g = { Intercept = 1, x = 0.5 } }", "sd = { g = { Intercept = 1 } }"),
                           ('cor = { g = { "Intercept,x" = 0.3 } }', "")),
                          ["shape.residual.log_sigma.x", "not numeric"]),
    "dropout_rate_1": ((SHAPE, "sigma = 1\n[dropout]\nrate = 1\n"), ["dropout.rate", "below 1"]),
    "dropout_rate_negative": ((SHAPE, "sigma = 1\n[dropout]\nrate = -0.1\n"), ["dropout.rate", "-0.1 is below 0"]),
    "dropout_by_unknown": ((SHAPE, 'sigma = 1\n[dropout]\nrate = 0.2\nby = "w"\n'), ["dropout.by", "'w'"]),
    "dropout_slope_without_by": ((SHAPE, "sigma = 1\n[dropout]\nrate = 0.2\nslope = 1\n"), ["dropout.slope", "by"]),
    "dropout_without_rate": ((SHAPE, "sigma = 1\n[dropout]\nslope = 1\n"), ["dropout", "needs 'rate'"]),
    "size_dist_not_a_count": (("size = 4", 'size = { dist = "normal", mean = 4, sd = 1 }'),
                              ["layout.size.dist", "poisson or negbinomial"]),
    "size_min_0": (("size = 4", 'size = { dist = "poisson", mean = 4, min = 0 }'), ["layout.size.min", "at least 1"]),
    "size_negbinomial_phi_negative": (("size = 4", 'size = { dist = "negbinomial", mean = 4, phi = -1 }'),
                                      ["layout.size.phi", "positive"]),
    "between_cor_out_of_range": ((X, ('x = { dist = "normal", mean = 0, sd = 1, between = { group = "g", sd = 1, '
                                       'cor = 1.5 } }')), ["covariates.x.between.cor", "1.5 is above 1"]),
    "between_group_unknown": ((X, 'x = { dist = "normal", mean = 0, sd = 1, between = { group = "h", sd = 1 } }'),
                              ["covariates.x.between.group", "'h'"]),
    "between_without_sd": ((X, 'x = { dist = "normal", mean = 0, sd = 1, between = { group = "g" } }'),
                           ["covariates.x.between", "needs 'sd'"]),
    "between_fixed": ((X, 'x = { dist = "normal", mean = 0, sd = 1, fixed = true, between = { group = "g", sd = 1 } }'),
                      ["covariates.x.between", "fixed = true"]),
    "between_per_group": ((X, 'x = { dist = "normal", mean = 0, sd = 1, per = "g", center = "g" }'),
                          ["covariates.x", "no within-group part"]),
    "between_no_random_intercept": (((X, 'x = { dist = "normal", mean = 0, sd = 1, between = { group = "g", sd = 1 } }'),
                                     ("y ~ x + (1 + x | g)", "y ~ x + (0 + x | g)"),
                                     ("sd = { g = { Intercept = 1, x = 0.5 } }", "sd = { g = { x = 0.5 } }"),
                                     ('cor = { g = { "Intercept,x" = 0.3 } }', "")),
                                    ["covariates.x.between", "no random intercept of 'g'"]),
    "center_unknown_group": ((X, 'x = { dist = "normal", mean = 0, sd = 1, center = "h" }'),
                             ["covariates.x.center", "'h' is not a layout factor"]),
    "derived_column_not_made": (("y ~ x + (1 + x | g)", "y ~ x_within + (1 + x | g)"), ["formula", "'x_within'"]),
}
FOUND.update(DGP)


@pytest.mark.parametrize("case", sorted(FOUND))
def test_fuzz_found_spec_is_one_line_exit_2(tmp_path, capsys, monkeypatch, case):
    from compare import cli

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # an internal error's traceback file stays here
    edits, expected = FOUND[case]
    spec = tmp_path / f"{case}.toml"
    text = GOOD
    for old, new in edits if isinstance(edits[0], tuple) else [edits]:
        assert old in text
        text = text.replace(old, new, 1)
    spec.write_text(text)
    with warnings.catch_warnings(record=True) as caught:  # a warning would be stderr lines in a real run
        warnings.simplefilter("always")
        code = cli.main(["simulate", str(spec), "--out", str(tmp_path / "d.csv")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert not caught, [str(w.message) for w in caught]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hbench: error:"), err
    for part in [str(spec), *expected]:
        assert part in lines[0], lines[0]
    assert not (tmp_path / "d.csv").exists()


@pytest.mark.parametrize("key", ["a\\nb", "a\\u000bb", "a\\u2028b"])
def test_error_naming_a_key_with_a_line_break_is_still_one_line(tmp_path, capsys, key):
    """Found by the fuzzer: an unknown key "a\\nb" (any character str.splitlines breaks on) was echoed raw,
    so the one-line error came out as two lines; it is now escaped."""
    from compare import cli

    spec = tmp_path / "t.toml"
    spec.write_text(f'"{key}" = 1\n' + GOOD)
    assert cli.main(["simulate", str(spec), "--out", str(tmp_path / "d.csv")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hbench: error:") and "unknown key" in lines[0], lines


def test_spec_that_is_not_utf8_is_one_line_exit_2(tmp_path, capsys):
    """Found by the fuzzer: a byte such as 0xff in a spec file was a UnicodeDecodeError (internal error, exit 1)."""
    from compare import cli

    spec = tmp_path / "latin1.toml"
    spec.write_bytes(GOOD.replace('name = "t"', 'name = "t\xe9"').encode("latin-1"))
    assert cli.main(["simulate", str(spec), "--out", str(tmp_path / "d.csv")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and str(spec) in lines[0] and "not UTF-8" in lines[0] and "0xe9" in lines[0], lines
    assert not (tmp_path / "d.csv").exists()


GEN = """
name = "gen"
generator = "tests.generators:two_level"
formula = "y ~ x + (1 | g)"
family = "gaussian"
[params]
groups = 6
size = 4
b0 = 1.0
b1 = 0.5
tau = 0.8
sigma = 1.0
"""
GENERATOR_CASES = {
    "wrong_columns": (("two_level", "wrong_columns"), ["generator tests.generators:wrong_columns",
                                                       "no column 'x' named in the formula", "has: g, z, y"]),
    "nan": (("two_level", "with_nan"), ["returned missing values", "'y' (1)"]),
    "label_reads_as_missing": (("two_level", "nan_label"), ["'NA' in column 'g'", "reads back as missing"]),
    "raises": (("two_level", "raises"), ["raised ValueError: no such design second line"]),
    "unknown_truth": (("two_level", "unknown_truth"), ["truth 'b[z]'", "expected: b[Intercept], b[x]"]),
    "missing_truth": (("two_level", "missing_truth"), ["no truth for sigma"]),
    "not_a_tuple": (("two_level", "not_a_tuple"), ["returned DataFrame", "expected a tuple"]),
    "no_such_function": (("two_level", "nosuch"), ["field 'generator'", "no function 'nosuch'"]),
    "no_such_module": (("tests.generators", "tests.nosuch"), ["cannot import 'tests.nosuch'", "ModuleNotFoundError"]),
    "not_a_target": (('"tests.generators:two_level"', '"tests/generators.py"'), ["field 'generator'", "package.module"]),
    "declarative_beside": (("[params]", "[layout]\nfactors = { g = 3 }\n[params]"), ["field 'layout'", "not with"]),
    "prior_dgp": (('family = "gaussian"', 'family = "gaussian"\ndgp = "prior"'), ["field 'dgp'", "own truth"]),
    "params_without_generator": (('generator = "tests.generators:two_level"\n', ""), ["field 'params'", "generator"]),
    "count_model_gets_reals": (('family = "gaussian"', 'family = "poisson"'), ["cannot take", "poisson counts"]),
}


@pytest.mark.parametrize("case", sorted(GENERATOR_CASES))
def test_bad_generator_is_one_line_exit_2(tmp_path, capsys, case):
    """A generator that cannot be imported, raises, or returns the wrong columns, NaN or wrong truth names: one
    line naming the generator and what was wrong, exit 2, nothing written (checked when the scenario loads)."""
    from compare import cli

    (old, new), expected = GENERATOR_CASES[case]
    assert old in GEN
    spec = tmp_path / "gen.toml"
    spec.write_text(GEN.replace(old, new, 1))
    code = cli.main(["simulate", str(spec), "--out", str(tmp_path / "d.csv")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("hbench: error:"), lines
    for part in [str(spec), *expected]:
        assert part in lines[0], lines[0]
    assert not (tmp_path / "d.csv").exists()


def test_good_generator_simulates(tmp_path, capsys):
    from compare import cli

    spec = tmp_path / "gen.toml"
    spec.write_text(GEN)
    assert cli.main(["simulate", str(spec), "--out", str(tmp_path / "d.csv"), "--rep", "2"]) == 0
    import json
    meta = json.loads((tmp_path / "d.json").read_text())
    assert meta["truth"] == {"b[Intercept]": 1.0, "b[x]": 0.5, "sd[g][Intercept]": 0.8, "sigma": 1.0}
