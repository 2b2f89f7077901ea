"""Long results tables written by hand for the tests of readers (metrics, report): each row says what it is, as
rows the harness writes do (`primary`, param_class, group, term, group_level from compare.fitresult.describe)."""

from __future__ import annotations

from typing import Any

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
