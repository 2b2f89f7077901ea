"""What an engine may see (FitData) and what the harness keeps beside it (Dataset).

The seam between the harness and the engines: `Estimator.fit(data: FitData, *, seed)`. FitData holds
the frame, the parsed formula (and the design built from it), family, link, the poststratification
weight column (part of the question asked, not of the answer) and a label for messages. The truth,
the replication and the scenario live only in Dataset, which the harness never hands to an engine,
so no engine (and no test double) can read them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from compare.design import Design, build_design
from compare.errors import InputError
from compare.formula import Formula, ModelSpec

# Names that R (and so hbench's formula reader) or Python read as literals rather than as a column: one engine
# would use the column, another the constant, so a model naming one is refused rather than fitted two ways.
RESERVED = frozenset({"True", "False", "None", "TRUE", "FALSE", "T", "F", "NA", "NULL", "Inf", "NaN", "pi"})


@dataclass(frozen=True, eq=False)
class FitData:
    """One dataset and the model to fit to it: everything an engine may read, nothing more."""

    frame: pd.DataFrame
    formula: Formula
    family: str
    link: str
    poststratify: str | None = None  # column of population counts for `mrp`, when the model asks for it
    label: str = ""  # for messages only ("data.csv", "dataset 3f2a...")

    @property
    def model(self) -> ModelSpec:
        return ModelSpec(self.formula, self.family, self.link)

    @cached_property
    def design(self) -> Design:
        """Model matrices, built once and shared by every engine that reads them."""
        return build_design(self.formula, self.family, self.frame)

    @cached_property
    def hash(self) -> str:
        """Content hash of the frame: equal hashes mean byte-identical data."""
        return frame_hash(self.frame)


def checked_frame(
    frame: pd.DataFrame, formula: Formula, *, drop_missing: bool = False, extra: tuple[str, ...] = ()
) -> tuple[pd.DataFrame, int]:
    """A user's frame made safe to hand to every engine alike, and how many rows were dropped.

    One rule for data, so that every engine of a task sees exactly the same rows: a missing value in any
    column the model reads (response, trials, covariates, grouping factors) is an error naming the columns and
    counts, unless `drop_missing`, when such rows are dropped here, once, for every engine. Left to the
    engines, a model-matrix builder drops a row from X only (formulae did), MixedLM turns an empty group cell
    into a phantom group and lme4 drops the row."""
    needed = sorted(formula.variables | set(extra))
    reserved = [c for c in needed if c in RESERVED]
    if reserved:
        raise InputError(f"column {reserved[0]!r}: a name that R reads as a literal, not a column; rename it")
    absent = [c for c in needed if c not in frame.columns]
    if absent:
        raise InputError(f"data has no column {', '.join(map(repr, absent))} named in the formula")
    missing = _missing(frame[needed])
    counts = missing.sum()
    bad = counts[counts > 0]
    if bad.empty:
        return frame, 0
    if not drop_missing:
        listed = ", ".join(f"{c!r} ({n})" for c, n in bad.items())
        raise InputError(
            f"missing values in {listed}: fix the data, or pass --drop-missing to drop those rows for every engine"
        )
    keep = ~missing.any(axis=1)
    return frame.loc[keep].reset_index(drop=True), int((~keep).sum())


def _missing(frame: pd.DataFrame) -> pd.DataFrame:
    """NaN/None, and text cells that are empty or blank (a CSV's empty group cell)."""

    def blank(col: pd.Series) -> pd.Series:
        if col.dtype == object or isinstance(col.dtype, pd.StringDtype):  # pandas 3 reads text as str
            return col.astype(str).str.strip().eq("")
        return pd.Series(False, index=col.index)

    return frame.isna() | pd.DataFrame({c: blank(frame[c]) for c in frame.columns}, index=frame.index)


def frame_hash(frame: pd.DataFrame) -> str:
    """sha256 of a frame's rows, column names, dtypes and values (a float's bits, a factor's labels and codes):
    equal hashes mean the same data. From the columns' buffers: the CSV text it replaced cost 0.7 ms a task, 1.5%
    of a 50 ms fit, and every task hashes its dataset."""
    digest = hashlib.sha256(str(len(frame)).encode())
    for name, col in frame.items():
        digest.update(f"\x00{name}\x00{col.dtype}\x00".encode())
        if isinstance(col.dtype, pd.CategoricalDtype):
            digest.update("\x1f".join(map(str, col.cat.categories)).encode())
            digest.update(col.cat.codes.to_numpy().tobytes())
        elif isinstance(col.dtype, np.dtype) and col.dtype.kind in "biuf":
            digest.update(np.ascontiguousarray(col.to_numpy()).tobytes())
        else:  # text, nullable and other extension columns: their values as text, a missing one marked apart
            digest.update("\x1f".join("\x1e" if pd.isna(v) else str(v) for v in col.tolist()).encode())
    return digest.hexdigest()


@dataclass
class Dataset:
    """A simulated replication as the harness holds it: the engines' FitData plus what they must not see."""

    data: FitData
    truth: dict[str, float]
    scenario: str = ""
    cell: int = 0
    rep: int = 0
    seed: int = 0  # the engines' seed for this replication (samplers, VB)

    @property
    def frame(self) -> pd.DataFrame:
        return self.data.frame

    @property
    def hash(self) -> str:
        return self.data.hash
