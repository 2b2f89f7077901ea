"""The store's schema is derived from FitResult: a field added there is a column here, with the dtype its
annotation says, and a column nobody declared is an error rather than silently dropped."""

from __future__ import annotations

import dataclasses

import pytest

from compare.fitresult import FitResult, SamplerDiagnostics, make_params
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
    fit = FitResult("e", make_params([{"parameter": "b[x]", "estimate": 1.0, "se": 0.1, "lower": 0.8, "upper": 1.2}]),
                    criterion="REML", details={"code": 0})
    cols = fit.columns({"b[x]": 1.1})
    table = to_table({**cols, "scenario": "s", "cell": 0, "rep": 0, "engine": "e", "status": "ok"}, 1)
    assert table.schema.names == list(SCHEMA) and table.column("covered").to_pylist() == [True]
    assert table.column("details").to_pylist() == ['{"code": 0}']
    with pytest.raises(ValueError, match="not in the store schema: colour"):
        to_table({**cols, "colour": "red"}, 1)
