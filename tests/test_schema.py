"""The store's schema is derived from FitResult: a field added there is a column here, with the dtype its
annotation says, and a column nobody declared is an error rather than silently dropped."""

from __future__ import annotations

import dataclasses

import pytest

from compare.fitresult import FitResult, SamplerDiagnostics, interval_row, make_params, primary
from compare.store import SCHEMA, to_table


def test_every_fit_level_field_is_a_store_column():
    skip = {"engine", "params", "sampler", "draws", "idata"}  # a task column, and the non-scalar fields
    for cls in (FitResult, SamplerDiagnostics):
        for f in dataclasses.fields(cls):
            if f.name not in skip:
                assert f.name in SCHEMA, f.name
    assert SCHEMA["converged"] == "boolean" and SCHEMA["divergences"] == "Int64" and SCHEMA["loglik"] == "float64"
    assert SCHEMA["criterion"] == "string" and SCHEMA["details"] == "string"


def test_a_fit_becomes_rows_in_the_schema_and_an_unknown_column_is_an_error():
    fit = FitResult("e", make_params([{"parameter": "b[x]", "estimate": 1.0, "se": 0.1, "lower": 0.8, "upper": 1.2,
                                        "interval": "wald-z"}]),
                    criterion="REML", details={"code": 0})
    cols = fit.columns({"b[x]": 1.1})
    table = to_table({**cols, "scenario": "s", "cell": 0, "rep": 0, "engine": "e", "status": "ok"}, 1)
    assert table.schema.names == list(SCHEMA) and table.column("covered").to_pylist() == [True]
    assert table.column("details").to_pylist() == ['{"code": 0}']
    with pytest.raises(ValueError, match="not in the store schema: colour"):
        to_table({**cols, "colour": "red"}, 1)


def _two_interval_fit() -> FitResult:
    """b[x] with a primary wald-z row and a wald-t row appended after sigma (engines may append extras last)."""
    b = {"parameter": "b[x]", "estimate": 1.0, "se": 0.1, "lower": 0.8, "upper": 1.2, "interval": "wald-z"}
    sigma = {"parameter": "sigma", "estimate": 2.0, "se": 0.2, "lower": 1.7, "upper": 2.4, "interval": "wald-log-sd"}
    return FitResult("e", make_params([b, sigma, interval_row(b, "wald-t", 0.7, 1.3)]))


def test_extra_interval_rows_follow_their_primary_row():
    fit = _two_interval_fit()
    assert fit.params[["parameter", "interval"]].values.tolist() == [
        ["b[x]", "wald-z"], ["b[x]", "wald-t"], ["sigma", "wald-log-sd"]]
    assert primary(fit.params)["interval"].tolist() == ["wald-z", "wald-log-sd"]
    t = fit.params.iloc[1]
    assert (t["estimate"], t["se"], t["lower"], t["upper"]) == (1.0, 0.1, 0.7, 1.3)
    assert "lower_t" not in fit.params and "lower_t" not in SCHEMA


def test_param_returns_the_primary_row():
    row = _two_interval_fit().param("b[x]")
    assert row["interval"] == "wald-z" and (row["lower"], row["upper"]) == (0.8, 1.2)


def test_each_interval_row_is_covered_on_its_own():
    rows = _two_interval_fit().rows({"b[x]": 1.25, "sigma": 2.0})  # outside wald-z [0.8, 1.2], inside wald-t
    assert rows["covered"].tolist() == [False, True, True] and len(rows) == 3
