"""What an engine may see (FitData) and what the harness keeps beside it (Dataset).

The seam between the harness and the engines: `Estimator.fit(data: FitData, *, seed)`. FitData holds
the frame, the parsed formula (and the design built from it), family, link, the poststratification
weight column (part of the question asked, not of the answer) and a label for messages. The truth,
the replication and the scenario live only in Dataset, which the harness never hands to an engine,
so no engine (and no test double) can read them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property

import pandas as pd

from compare.design import Design, build_design
from compare.formula import Formula, ModelSpec


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


def frame_hash(frame: pd.DataFrame) -> str:
    text = frame.to_csv(index=False, float_format="%.17g", lineterminator="\n")
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Dataset:
    """A simulated replication as the harness holds it: the engines' FitData plus what they must not see."""

    data: FitData
    truth: dict[str, float]
    scenario: str = ""
    cell: int = 0
    rep: int = 0
    seed: int = 0  # the engines' seed for this replication (samplers, VB)
    meta: dict = field(default_factory=dict)

    @property
    def frame(self) -> pd.DataFrame:
        return self.data.frame

    @property
    def hash(self) -> str:
        return self.data.hash
