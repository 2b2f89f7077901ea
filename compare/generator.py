"""A generator of your own: `generator = "package.module:function"` in a scenario instead of the declarative
layout, covariates and truth.

The function is imported like an HBENCH_ENGINES module (any importable name: PYTHONPATH, an installed package;
worker processes inherit PYTHONPATH, so they import the same one) and called as `function(params, rng)` with a
copy of the cell's `[params]` table (grid axes such as `"params.n_groups" = [30, 100]` vary it) and the
replication's numpy Generator. It returns `(frame, truth)`: a pandas DataFrame holding every column the formula
reads (other columns are dropped: the engines see what the model reads), and a dict of true values named as
the engines report parameters (`b[x]`, `sd[g][Intercept]`,
`cor[g][Intercept,x]`, `sigma`; optionally `r[g][level,term]` and `pred_new[g]`). Both are checked here, so a
wrong generator is one line naming it and what was wrong; the module's source is hashed into the run's
fingerprint (compare.provenance), so `--resume` refuses a run whose generator changed.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import importlib.util
import itertools
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from compare.data import Dataset, FitData, _missing
from compare.design import Design, build_design
from compare.errors import InputError
from compare.formula import has_sigma

TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
# text that pandas.read_csv (its default na_values) and R read back as missing: a label such as "nan" would
# make `hbench simulate`'s CSV a different dataset from the one the engines were given
READS_AS_MISSING = frozenset(
    {
        "",
        "#N/A",
        "#N/A N/A",
        "#NA",
        "-1.#IND",
        "-1.#QNAN",
        "-NaN",
        "-nan",
        "1.#IND",
        "1.#QNAN",
        "<NA>",
        "N/A",
        "NA",
        "NULL",
        "NaN",
        "None",
        "n/a",
        "nan",
        "null",
    }
)


def _split(target: Any) -> tuple[str, str]:
    if not isinstance(target, str) or not TARGET.match(target):
        raise InputError(f"field 'generator': {target!r}: expected \"package.module:function\"")
    module, func = target.split(":")
    return module, func


def resolve(target: Any) -> Callable[..., Any]:
    """The generator function named by "package.module:function"; InputError when it cannot be imported."""
    module_name, func = _split(target)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any error importing the user's module: its message is what they need
        raise InputError(f"field 'generator': cannot import {module_name!r}: {_one_line(exc)}") from None
    fn = getattr(module, func, None)
    if not callable(fn):
        raise InputError(f"field 'generator': module {module_name!r} has no function {func!r}")
    return fn


def check_target(target: Any) -> str:
    """Validate the field's form at parse time (importing waits for the load-time dry run)."""
    _split(target)
    return target


def source_digest(target: str) -> str:
    """sha256 of the generator module's source file (what the run's fingerprint records)."""
    module_name, _ = _split(target)
    resolve(target)
    spec = importlib.util.find_spec(module_name)
    origin = spec.origin if spec is not None else None
    if origin is None or not Path(origin).is_file():
        raise InputError(f"field 'generator': module {module_name!r} has no source file to fingerprint")
    return hashlib.sha256(Path(origin).read_bytes()).hexdigest()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def expected_truth(design: Design) -> list[str]:
    """The parameters every engine reports for this model, which the truth must name."""
    names = [f"b[{n}]" for n in design.x_names]
    for bd in design.blocks:
        names += [f"sd[{bd.group}][{t}]" for t in bd.names]
        if bd.block.correlated:
            names += [f"cor[{bd.group}][{a},{b}]" for a, b in itertools.combinations(bd.names, 2)]
    if has_sigma(design.formula, design.family):
        names.append("sigma")
    if design.family == "negbinomial":
        names.append("phi")
    return names


def _optional_truth(design: Design) -> set[str]:
    out = set()
    for bd in design.blocks:
        out |= {f"r[{bd.group}][{lv},{t}]" for lv in bd.levels for t in bd.names}
        out.add(f"pred_new[{bd.group}]")
    return out


def _check_frame(frame: Any, cell: Any, where: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"{where} returned {type(frame).__name__} as the data: expected a pandas DataFrame")
    if len(frame) == 0:
        raise InputError(f"{where} returned a data frame with no rows")
    needed = sorted(cell.formula.variables)
    absent = [c for c in needed if c not in frame.columns]
    if absent:
        have = ", ".join(map(str, frame.columns)) or "none"
        raise InputError(
            f"{where} returned no column {', '.join(map(repr, absent))} named in the formula (has: {have})"
        )
    counts = _missing(frame[needed]).sum()
    bad = counts[counts > 0]
    if not bad.empty:
        listed = ", ".join(f"{c!r} ({n})" for c, n in bad.items())
        raise InputError(f"{where} returned missing values (NaN or empty) in {listed}")
    for col in needed:
        values = frame[col]
        if not pd.api.types.is_numeric_dtype(values):
            text = values.astype(str).str.strip()
            hits = text[text.isin(READS_AS_MISSING)]
            if len(hits):
                raise InputError(
                    f"{where} returned {hits.iloc[0]!r} in column {col!r}: text that reads back as "
                    "missing (CSV, R); use another label"
                )
    return frame[needed].reset_index(drop=True)  # the columns the model reads: what every engine sees


def _check_truth(truth: Any, design: Design, where: str) -> dict[str, float]:
    if not isinstance(truth, dict):
        raise InputError(f"{where} returned {type(truth).__name__} as the truth: expected a dict of true values")
    expected = expected_truth(design)
    allowed = set(expected) | _optional_truth(design)
    out = {}
    for name, value in truth.items():
        if name not in allowed:
            raise InputError(
                f"{where} returned truth {name!r}: not a parameter the engines report for this "
                f"formula (expected: {', '.join(expected)})"
            )
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not math.isfinite(value):
            raise InputError(f"{where} returned truth {name!r} = {value!r}: expected a finite number")
        out[name] = float(value)
    missing = [n for n in expected if n not in out]
    if missing:
        raise InputError(f"{where} returned no truth for {', '.join(missing)}")
    return out


def generate(cell: Any, rng: np.random.Generator) -> Dataset:
    """One dataset of a generator cell (compare.spec.CellSpec with `generator`), checked."""
    where = f"generator {cell.generator}"
    fn = resolve(cell.generator)
    try:
        result = fn(copy.deepcopy(cell.params), rng)
    except Exception as exc:  # noqa: BLE001 - the user's code failed: one line naming it, never their traceback
        raise InputError(f"{where} raised {_one_line(exc)}") from None
    if not isinstance(result, tuple) or len(result) != 2:
        raise InputError(f"{where} returned {type(result).__name__}: expected a tuple (data frame, truth dict)")
    frame = _check_frame(result[0], cell, where)
    try:
        design = build_design(cell.formula, cell.family, frame)
    except InputError as exc:
        raise InputError(f"{where} returned data the model cannot take: {exc}") from None
    truth = _check_truth(result[1], design, where)
    data = FitData(frame, cell.formula, cell.family, cell.link)
    return Dataset(data, truth, cell.scenario, cell.index)
