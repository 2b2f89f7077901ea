"""Design matrices for a parsed formula on a data frame, shared by the simulator and every engine.

One design for every engine, built as R's model.matrix builds it (compare.formula gives the terms,
compare.rexpr the values of their atoms): treatment contrasts, a factor coded by all its levels where R does so
(no intercept, or an interaction whose margin is absent), columns of an interaction with the first variable
varying fastest, names as lme4 prints them (`Intercept`, `x`, `GenderMale`, `factor(YEAR)96`, `age:SexMale`,
`poly(x, 2)1`). Each random-effect block is kept as (X_block, group index) rather than a wide Z, which is what
MixedLM, Stan and PyMC all want; the R engines get the same formula and factor levels (compare.estimators._r)
and their coefficient names are checked against these.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from compare import rexpr
from compare.errors import InputError
from compare.formula import Block, Formula, Terms


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
    se: np.ndarray | None = None  # known measurement SDs of a gaussian response (`y | se(s)`), else None

    @property
    def n(self) -> int:
        return self.X.shape[0]


def _codings(terms: Terms, values: dict[str, rexpr.Factor | rexpr.Numeric]) -> list[list[bool]]:
    """Per term, per atom: True where a factor is coded by contrasts, False by all its levels (R's TermCode:
    contrasts when the term without that factor is empty or contained in an earlier term; with no intercept,
    the first factor of the first term holding one gets all its levels)."""
    sets = [frozenset(a.label for a in t) for t in terms.terms]
    out = []
    for j, term in enumerate(terms.terms):
        row = []
        for a in term:
            margin = sets[j] - {a.label}
            row.append(not margin or any(margin <= sets[k] for k in range(j)))
        out.append(row)
    if not terms.intercept:
        for j, term in enumerate(terms.terms):
            first = next((i for i, a in enumerate(term) if isinstance(values[a.label], rexpr.Factor)), None)
            if first is not None:
                out[j][first] = False
                break
    return out


def _atom_columns(
    label: str, value: rexpr.Factor | rexpr.Numeric, contrasts: bool
) -> tuple[list[np.ndarray], list[str]]:
    if isinstance(value, rexpr.Factor):
        levels = list(enumerate(value.levels))[1 if contrasts else 0 :]
        return [(value.codes == k).astype(float) for k, _ in levels], [f"{label}{lv}" for _, lv in levels]
    X = value.X
    if X.shape[1] == 1:
        return [X[:, 0]], [label]
    colnames = value.colnames or tuple(str(k + 1) for k in range(X.shape[1]))
    return [X[:, k] for k in range(X.shape[1])], [f"{label}{c}" for c in colnames]


def model_matrix(terms: Terms | str, frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """R's model matrix of a right-hand side ('1 + x', '0 + factor(g)', parsed or as text); its column names."""
    if isinstance(terms, str):
        from compare.formula import parse_rhs

        terms = parse_rhs(terms) if terms.strip() else Terms(False, ())
    values = {a.label: rexpr.evaluate(a.node, frame) for t in terms.terms for a in t}
    cols, names = ([np.ones(len(frame))], ["Intercept"]) if terms.intercept else ([], [])
    for term, coding in zip(terms.terms, _codings(terms, values), strict=True):
        cur_cols, cur_names = [np.ones(len(frame))], [""]
        for a, contrasts in zip(term, coding, strict=True):
            new_cols, new_names = _atom_columns(a.label, values[a.label], contrasts)
            cur_cols = [c * n for n in new_cols for c in cur_cols]
            cur_names = [f"{p}:{q}" if p else q for q in new_names for p in cur_names]
        cols += cur_cols
        names += cur_names
    X = np.column_stack(cols) if cols else np.zeros((len(frame), 0))
    bad = [n for k, n in enumerate(names) if not np.all(np.isfinite(X[:, k]))]
    if bad:
        raise InputError(
            f"formula: the column {bad[0]!r} of the design has missing or infinite values "
            "(a log of 0, scale() of a constant?)"
        )
    return X, names


def group_index(frame: pd.DataFrame, group: str) -> tuple[np.ndarray, list[str]]:
    """Integer codes for a grouping factor, `g1:g2` being the interaction of two columns."""
    cols = [p.strip("() ") for p in group.split(":")]
    key = frame[cols[0]].astype(str)
    for c in cols[1:]:
        key = key + ":" + frame[c].astype(str)
    codes, uniques = pd.factorize(key, sort=False)
    return codes.astype(np.int64), [str(u) for u in uniques]


def block_designs(formula: Formula, frame: pd.DataFrame) -> list[BlockDesign]:
    out = []
    for block in formula.blocks:
        X, names = model_matrix(block.terms, frame)
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
        if (
            pd.api.types.is_numeric_dtype(values)
            and not pd.api.types.is_bool_dtype(values)
            and np.isinf(values.to_numpy(dtype=float, na_value=np.nan)).any()
        ):
            raise InputError(f"column {col!r} has infinite values")
    X, names = model_matrix(formula.fixed_terms, frame)
    offset = _offset(formula, frame)
    y = trials = None
    if with_response:
        check_rank(X, names)
        y, trials = response_arrays(formula, family, frame)
    se = known_se(formula, family, frame)
    return Design(formula, family, X, names, offset, block_designs(formula, frame), y, trials, se)


def known_se(formula: Formula, family: str, frame: pd.DataFrame) -> np.ndarray | None:
    """The known measurement SDs of `y | se(s)`: finite and positive, for a gaussian model only (brms's rule)."""
    col = formula.response.se
    if col is None:
        return None
    if family != "gaussian":
        raise InputError(f"formula: se({col}) (known measurement SDs) is for gaussian models only, not {family}")
    se = _numeric(frame, col)
    bad = se[~(se > 0)]
    if bad.size:
        raise InputError(f"column {col!r}: known SEs must be positive ({bad.size} are not, e.g. {bad[0]:g})")
    return se


def check_rank(X: np.ndarray, names: list[str]) -> None:
    """Refuse linearly dependent fixed-effect columns (`age:sex` with `scale(age)`, `0 + a + b` with all levels):
    lme4 drops a column, glmmTMB and MixedLM fail, samplers wander along a ridge, so engines would fit different
    models. One line naming the first column that the ones before it already span, as lme4 would drop it."""
    if X.shape[1] == 0:
        return
    scale = np.max(np.abs(X), axis=0)  # not the 2-norm: its sum of squares overflows for values near 1e308
    Xs = X / np.where(scale > 0, scale, 1.0)
    if np.linalg.matrix_rank(Xs) == X.shape[1]:
        return
    k = next(k for k in range(1, X.shape[1] + 1) if np.linalg.matrix_rank(Xs[:, :k]) < k)
    raise InputError(
        f"formula: the fixed-effect column {names[k - 1]!r} is a linear combination of the columns "
        f"before it ({X.shape[0]} rows, {X.shape[1]} columns): remove a term (lme4 would drop it, "
        "other engines cannot fit it)"
    )


def _offset(formula: Formula, frame: pd.DataFrame) -> np.ndarray:
    if formula.offset_node is None:
        return np.zeros(len(frame))
    values = rexpr.numeric(formula.offset_node, frame)
    if not np.all(np.isfinite(values)):
        raise InputError(f"formula: offset({formula.offset}) has missing or infinite values")
    return values


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
            assert r.other is not None, "cbind() and trials() responses name a second column"
            other = _numeric(frame, r.other)
            trials = other if r.kind == "trials" else y + other
        if np.any(trials != np.round(trials)) or np.any(trials > 2**62):
            raise InputError(f"column {r.other!r}: binomial trials (and failures) must be whole numbers up to 2^62")
        if np.any(y < 0) or np.any(y > trials) or np.any(y != np.round(y)):
            raise InputError(f"column {r.y!r}: binomial successes must be whole numbers between 0 and the trials")
        return y, trials
    if r.kind != "single":
        raise InputError(f"{family} takes a single response column, not {r.kind}()")
    if family in ("poisson", "negbinomial") and (np.any(y < 0) or np.any(y != np.round(y))):
        raise InputError(f"column {r.y!r}: {family} counts must be non-negative whole numbers")
    return y, None
