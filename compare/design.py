"""Design matrices for a parsed formula on a data frame, shared by the simulator and every engine.

`formulae` encodes the fixed part and each block's expression (categorical
coding, interactions); we keep each random-effect block as (X_block, group
index) rather than a wide Z, which is what MixedLM, Stan and PyMC all want.
Column names follow lme4/brms: `Intercept`, `x`, `GenderMale`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from formulae import design_matrices

from compare.errors import InputError
from compare.formula import Block, Formula


@dataclass(frozen=True)
class BlockDesign:
    block: Block
    names: list[str]  # term names within the block, e.g. ["Intercept", "x"]
    X: np.ndarray  # (N, q) block covariates
    index: np.ndarray  # (N,) group level of each row, 0..J-1
    levels: list[str]  # group level labels, in index order

    @property
    def group(self) -> str:
        return self.block.group

    @property
    def n_levels(self) -> int:
        return len(self.levels)


@dataclass(frozen=True)
class Design:
    formula: Formula
    family: str
    X: np.ndarray  # (N, p)
    x_names: list[str]
    offset: np.ndarray  # (N,), zeros when the formula has none
    blocks: list[BlockDesign]
    y: np.ndarray | None  # response (successes for binomial); None when simulating
    trials: np.ndarray | None  # binomial trials per row

    @property
    def n(self) -> int:
        return self.X.shape[0]


def lme4_name(label: str) -> str:
    """formulae's `Gender[Male]` -> lme4/brms's `GenderMale`."""
    return re.sub(r"\[(.*?)\]", r"\1", label)


def model_matrix(expr: str, frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Model matrix of a right-hand side such as '1 + x' or '0 + x'; empty when expr is ''."""
    if expr.strip() == "":
        return np.zeros((len(frame), 0)), []
    if expr.strip() == "0":
        return np.zeros((len(frame), 0)), []
    try:
        common = design_matrices(expr, frame).common
    except Exception as exc:  # formulae raises several types; the message is what the user needs
        raise InputError(f"cannot build design for '{expr}': {exc}") from None
    df = common.as_dataframe()
    return np.asarray(df, dtype=float), [lme4_name(c) for c in df.columns]


def group_index(frame: pd.DataFrame, group: str) -> tuple[np.ndarray, list[str]]:
    """Integer codes for a grouping factor, `g1:g2` being the interaction of two columns."""
    cols = group.split(":")
    key = frame[cols[0]].astype(str)
    for c in cols[1:]:
        key = key + ":" + frame[c].astype(str)
    codes, uniques = pd.factorize(key, sort=False)
    return codes.astype(np.int64), [str(u) for u in uniques]


def block_designs(formula: Formula, frame: pd.DataFrame) -> list[BlockDesign]:
    out = []
    for block in formula.blocks:
        X, names = model_matrix(block.expr, frame)
        index, levels = group_index(frame, block.group)
        out.append(BlockDesign(block, names, X, index, levels))
    return out


def check_columns(formula: Formula, frame: pd.DataFrame, *, need_response: bool) -> None:
    needed = formula.variables if need_response else formula.variables - set(formula.response.columns)
    missing = sorted(c for c in needed if c not in frame.columns)
    if missing:
        raise InputError(f"data has no column {', '.join(map(repr, missing))} named in the formula")


def build_design(formula: Formula, family: str, frame: pd.DataFrame, *, with_response: bool = True) -> Design:
    """Everything an engine needs to fit `formula` to `frame`."""
    check_columns(formula, frame, need_response=with_response)
    for col in sorted(formula.variables - set(formula.response.columns)):
        values = frame[col]
        if (pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
                and np.isinf(values.to_numpy(dtype=float, na_value=np.nan)).any()):
            raise InputError(f"column {col!r} has infinite values")
    X, names = model_matrix(formula.fixed, frame)
    offset = np.zeros(len(frame)) if formula.offset is None else _numeric(frame, formula.offset).astype(float)
    y = trials = None
    if with_response:
        y, trials = response_arrays(formula, family, frame)
    return Design(formula, family, X, names, offset, block_designs(formula, frame), y, trials)


def _numeric(frame: pd.DataFrame, col: str) -> np.ndarray:
    values = frame[col]
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        raise InputError(f"column {col!r} is not numeric")
    arr = values.to_numpy(dtype=float)
    if not np.all(np.isfinite(arr)):
        raise InputError(f"column {col!r} has missing or infinite values")
    return arr


def response_arrays(formula: Formula, family: str, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
    r = formula.response
    y = _numeric(frame, r.y)
    if family == "binomial":
        if r.kind == "single":
            trials = np.ones_like(y)
        else:
            other = _numeric(frame, r.other)
            trials = other if r.kind == "trials" else y + other
        if np.any(trials != np.round(trials)) or np.any(trials > 2**62):
            raise InputError(f"column {r.other!r}: binomial trials (and failures) must be whole numbers up to 2^62")
        if np.any(y < 0) or np.any(y > trials) or np.any(y != np.round(y)):
            raise InputError(f"column {r.y!r}: binomial successes must be whole numbers between 0 and the trials")
        return y, trials
    if r.kind != "single":
        raise InputError(f"{family} takes a single response column, not {r.kind}()")
    if family == "poisson" and (np.any(y < 0) or np.any(y != np.round(y))):
        raise InputError(f"column {r.y!r}: poisson counts must be non-negative whole numbers")
    return y, None
