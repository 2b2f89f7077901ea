"""Evaluate a formula's atoms on a data frame as R's model.frame does: columns, factor(), C(), I(), arithmetic,
log/exp/sqrt, scale() and poly().

Why here and not in each engine: the design matrix every engine gets is built from these values, so they follow
R exactly where R defines them: a text column is a factor with its levels in sorted order, a boolean column a
factor with levels FALSE, TRUE, `factor(x)` of a number has the sorted distinct values as levels written as R
writes numbers (96, 0.5, 1e+05; integers in full), `scale(x)` divides by the standard deviation with n - 1,
`poly(x, k)` is R's orthogonal polynomial basis (QR of the centred powers, columns of unit length).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from compare.errors import InputError
from compare.rsyntax import Bin, Call, Node, Num, Paren, Unary, Var, deparse, r_number

FACTOR_FNS = ("factor", "as.factor", "C")
MATH = {
    "log": np.log,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "log10": np.log10,
    "log2": np.log2,
    "log1p": np.log1p,
}
TREATMENT = ("treatment", "contr.treatment")
SUPPORTED = "factor(), as.factor(), C(), I(), scale(), poly(), offset(), " + ", ".join(f"{f}()" for f in MATH)


@dataclass(frozen=True)
class Factor:
    """A factor: level codes 0..L-1 per row and the level labels; treatment contrasts (first level dropped)."""

    codes: np.ndarray
    levels: tuple[str, ...]


@dataclass(frozen=True)
class Numeric:
    """Numeric columns; `colnames` None for a vector (its column is named by the atom's label alone)."""

    X: np.ndarray  # (N, k)
    colnames: tuple[str, ...] | None = None


def _fail(what: str, text: str) -> InputError:
    return InputError(f"formula: {what} in {text!r}")


def check_numeric(node: Node, text: str) -> None:
    """Refuse, before any data is read, an expression that is not arithmetic on columns and numbers."""
    if isinstance(node, (Num, Var)):
        return
    if isinstance(node, Paren):
        return check_numeric(node.inner, text)
    if isinstance(node, Unary):
        return check_numeric(node.operand, text)
    if isinstance(node, Bin):
        if node.op not in ("+", "-", "*", "/", "^"):
            raise _fail(f"operator {node.op!r} inside {deparse(node)!r} is not arithmetic hbench evaluates", text)
        check_numeric(node.left, text)
        return check_numeric(node.right, text)
    if isinstance(node, Call):
        if node.fn == "I" or node.fn in MATH:
            shape = (len(node.args), tuple(k for k, _ in node.kwargs))
            base_ok = node.fn == "log" and shape in ((2, ()), (1, ("base",)))
            if not base_ok and (len(node.args) != 1 or node.kwargs):
                raise _fail(f"{node.fn}() takes {'x (and base)' if node.fn == 'log' else 'one argument'}", text)
            for a in [*node.args, *(v for _, v in node.kwargs)]:
                check_numeric(a, text)
            return
        if node.fn in ("scale", "poly", *FACTOR_FNS):
            raise _fail(f"{node.fn}() can only be a term of its own, not part of an expression", text)
        raise _fail(f"function {node.fn}() is not supported (supported: {SUPPORTED})", text)
    raise _fail(f"cannot read {deparse(node)!r}", text)


def _poly_args(node: Call, text: str) -> tuple[Node, int, bool]:
    kw = dict(node.kwargs)
    if set(kw) - {"degree", "raw"} or not node.args or len(node.args) > 2 or ("degree" in kw and len(node.args) > 1):
        raise _fail(f"poly() takes poly(x, degree) and raw = TRUE/FALSE, not {deparse(node)!r}", text)
    deg = node.args[1] if len(node.args) > 1 else kw.get("degree", Num(1.0))
    raw = kw.get("raw", Num(0.0, "FALSE"))
    if not (isinstance(deg, Num) and deg.value >= 1 and deg.value == int(deg.value)) or not deg.literal == "":
        raise _fail(f"poly()'s degree must be a whole number >= 1 in {deparse(node)!r}", text)
    if not (isinstance(raw, Num) and raw.literal in ("TRUE", "FALSE")):
        raise _fail(f"poly()'s raw must be TRUE or FALSE in {deparse(node)!r}", text)
    return node.args[0], int(deg.value), raw.literal == "TRUE"


def check_atom(node: Node, text: str) -> None:
    """Refuse, before any data is read, an atom hbench cannot evaluate exactly as R does (one clear line)."""
    if isinstance(node, Var):
        return
    if not isinstance(node, Call):
        raise _fail(f"cannot read the term {deparse(node)!r}", text)
    if node.fn in FACTOR_FNS:
        extra = node.args[1:]
        if node.kwargs or not node.args or len(extra) > (node.fn == "C"):
            raise _fail(f"{node.fn}() takes one column{' (and treatment)' if node.fn == 'C' else ''}", text)
        if extra and not (isinstance(extra[0], Var) and extra[0].name in TREATMENT):
            raise _fail(f"C(): only treatment contrasts are supported, not {deparse(extra[0])!r}", text)
        if not isinstance(node.args[0], Var):
            check_numeric(node.args[0], text)
    elif node.fn == "scale":
        if len(node.args) != 1 or node.kwargs:
            raise _fail("scale() takes one argument (centred and scaled, as R's default)", text)
        check_numeric(node.args[0], text)
    elif node.fn == "poly":
        x, _, _ = _poly_args(node, text)
        check_numeric(x, text)
    else:
        check_numeric(node, text)


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame.columns:
        raise InputError(f"data has no column {name!r} named in the formula")
    return frame[name]


def _is_text(col: pd.Series) -> bool:
    return col.dtype == object or pd.api.types.is_string_dtype(col)


def column_factor(col: pd.Series, *, drop_unused: bool) -> Factor | None:
    """A column that R reads as a factor (text, boolean, categorical) as one; None for a number."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        levels = [str(c) for c in col.cat.categories]
        codes = col.cat.codes.to_numpy().astype(np.int64)
        if drop_unused:
            used = np.unique(codes)
            remap = np.full(len(levels), -1)
            remap[used] = np.arange(len(used))
            return Factor(remap[codes], tuple(levels[k] for k in used))
        return Factor(codes, tuple(levels))
    if pd.api.types.is_bool_dtype(col):
        values = col.to_numpy(dtype=bool)
        present = sorted(set(values.tolist())) if drop_unused else [False, True]
        labels = tuple("TRUE" if v else "FALSE" for v in present)
        return Factor(np.searchsorted(present, values).astype(np.int64), labels)
    if _is_text(col):
        text = col.astype(str).to_numpy()
        levels = sorted(set(text.tolist()))
        return Factor(np.searchsorted(levels, text).astype(np.int64), tuple(levels))
    return None


def level_labels(values: np.ndarray, integer: bool) -> list[str]:
    """Labels of numeric factor levels as R's as.character writes them (integers in full, doubles 15 digits)."""
    return [str(int(v)) if integer else r_number(float(v)) for v in values]


def _number_factor(values: np.ndarray, integer: bool) -> Factor:
    uniq, codes = np.unique(values, return_inverse=True)
    return Factor(codes.astype(np.int64), tuple(level_labels(uniq, integer)))


def numeric(node: Node, frame: pd.DataFrame) -> np.ndarray:
    """An arithmetic expression's values (R coerces a logical to 0/1; text is refused)."""
    if isinstance(node, Num):
        return np.full(len(frame), node.value)
    if isinstance(node, Var):
        col = _column(frame, node.name)
        if _is_text(col) or isinstance(col.dtype, pd.CategoricalDtype):
            raise InputError(f"column {node.name!r} is not numeric (used in arithmetic in the formula)")
        return col.to_numpy(dtype=float)
    if isinstance(node, Paren):
        return numeric(node.inner, frame)
    if isinstance(node, Unary):
        v = numeric(node.operand, frame)
        return -v if node.op == "-" else v
    if isinstance(node, Bin):
        a, b = numeric(node.left, frame), numeric(node.right, frame)
        with np.errstate(all="ignore"):
            return {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "^": np.power}[node.op](a, b)
    if isinstance(node, Call):
        args = [numeric(a, frame) for a in [*node.args, *(v for _, v in node.kwargs)]]
        if node.fn == "I":
            return args[0]
        with np.errstate(all="ignore"):
            out = MATH[node.fn](args[0])
            return out / np.log(args[1]) if len(args) == 2 else out
    raise TypeError(f"not an expression node: {node!r}")


def poly_basis(x: np.ndarray, degree: int) -> np.ndarray:
    """R's poly(x, degree): orthonormal columns from the QR decomposition of the centred powers of x, signed so
    that R's diagonal is positive (which is what R's qr.qy(QR, diag(R)) scaled to unit length gives)."""
    if len(np.unique(x)) <= degree:
        raise InputError(f"poly(): degree {degree} needs more than {degree} distinct values")
    xc = x - x.mean()
    Q, R = np.linalg.qr(np.vander(xc, degree + 1, increasing=True))
    return (Q * np.sign(np.diag(R)))[:, 1:]


def evaluate(node: Node, frame: pd.DataFrame) -> Factor | Numeric:
    """An atom's values: a factor, or numeric columns."""
    if isinstance(node, Var):
        f = column_factor(_column(frame, node.name), drop_unused=False)
        return f if f is not None else Numeric(numeric(node, frame)[:, None])
    if isinstance(node, Call) and node.fn in FACTOR_FNS:
        arg = node.args[0]
        if isinstance(arg, Var):
            col = _column(frame, arg.name)
            f = column_factor(col, drop_unused=node.fn != "C")
            if f is not None:
                return f
            return _number_factor(col.to_numpy(), pd.api.types.is_integer_dtype(col))
        return _number_factor(numeric(arg, frame), False)
    if isinstance(node, Call) and node.fn == "scale":
        x = numeric(node.args[0], frame)
        sd = np.std(x, ddof=1) if len(x) > 1 else np.nan
        with np.errstate(all="ignore"):
            return Numeric(((x - x.mean()) / sd)[:, None])
    if isinstance(node, Call) and node.fn == "poly":
        arg, degree, raw = _poly_args(node, "")
        x = numeric(arg, frame)
        X = np.vander(x, degree + 1, increasing=True)[:, 1:] if raw else poly_basis(x, degree)
        return Numeric(X, tuple(str(k) for k in range(1, degree + 1)))
    return Numeric(numeric(node, frame)[:, None])
