"""Long results tables written by hand for the tests of readers (metrics, report): each row says what it is, as
rows the harness writes do (`primary`, param_class, group, term, group_level from compare.fitresult.describe);
and small datasets written by hand for the engines' tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from compare.fitresult import DESCRIPTORS, describe


def long_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """`rows` as a results table; a row naming a parameter is primary unless it says otherwise."""
    out = []
    for row in rows:
        name = row.get("parameter")
        parts = describe(name) if isinstance(name, str) else (None,) * len(DESCRIPTORS)
        out.append({"primary": isinstance(name, str) or None, **dict(zip(DESCRIPTORS, parts)), **row})
    return pd.DataFrame(out)


def pupils_in_classes_in_schools(seed: int = 5) -> pd.DataFrame:
    """A nested two-factor dataset (15 schools x 3 classes x 4 pupils; y, x, school, klass): for the robust SEs'
    tests of what happens with more than one grouping factor."""
    rng = np.random.default_rng(seed)
    school = np.repeat(np.arange(15), 12)
    klass = school * 3 + np.tile(np.repeat(np.arange(3), 4), 15)
    x = rng.normal(size=school.size)
    y = 1 + 0.5 * x + rng.normal(0, 0.6, 15)[school] + rng.normal(0, 0.4, 45)[klass] + rng.normal(size=x.size)
    return pd.DataFrame({"school": school.astype(str), "klass": klass.astype(str), "x": x, "y": y})
