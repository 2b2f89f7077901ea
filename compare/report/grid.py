"""A scenario's grid as the figures need it: per cell, the value of each factor that varies among the run's
cells, as text and as its rank among the factor's values (the order nested-loop plots loop in)."""

from __future__ import annotations

import json

import pandas as pd


def _text(value) -> str:
    if isinstance(value, dict):
        vals = list(value.values())
        if vals and all(v == vals[0] for v in vals):  # {Intercept: 0.35, x: 0.35}: one number says it
            return _text(vals[0])
        return json.dumps(value, sort_keys=True)
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def factor_name(key: str) -> str:
    """'layout.factors.g' -> 'g', 'truth.sd.g' -> 'sd.g': short, still unambiguous in one scenario."""
    parts = key.split(".")
    return ".".join(parts[-2:]) if parts[0] == "truth" else parts[-1]


def cell_grid(scenario: str, cells: list[int], among_spec: bool = False) -> pd.DataFrame:
    """Index: the run's cells of `scenario`; per factor that varies among them (`among_spec`: among all the
    spec's cells, for labels) a text column (its short name) and a rank column (`<name>#`), in the spec's
    factor order. Empty columns when the scenario cannot be loaded."""
    from compare.catalogue import load_scenario
    from compare.errors import InputError

    try:
        spec = load_scenario(scenario)
    except InputError:  # renamed or removed since the run: the figures fall back to cell numbers
        return pd.DataFrame(index=pd.Index(cells, name="cell"))
    by_index = {c.index: c.factors for c in spec.cells}
    rows = {c: by_index.get(c, {}) for c in cells}
    keys = list(dict.fromkeys(k for f in rows.values() for k in f))
    out = pd.DataFrame(index=pd.Index(cells, name="cell"))
    for key in keys:
        texts = [_text(rows[c].get(key, "")) for c in cells]
        pool = {_text(f.get(key, "")) for f in by_index.values()} if among_spec else set(texts)
        if len(pool) < 2:
            continue
        order = list(dict.fromkeys(_text(c.factors.get(key, "")) for c in spec.cells))  # the spec's level order
        name = factor_name(key)
        out[name] = texts
        out[f"{name}#"] = [order.index(t) if t in order else len(order) for t in texts]
    return out


def factors(grid: pd.DataFrame) -> list[str]:
    return [c for c in grid.columns if not c.endswith("#")]


def nested_order(grid: pd.DataFrame) -> list[int]:
    """Cells sorted by the first factor, then the second within it, ...: the nested loop."""
    ranks = [f"{f}#" for f in factors(grid)]
    return list(grid.sort_values(ranks, kind="stable").index) if ranks else sorted(grid.index)


def label(grid: pd.DataFrame, cell: int) -> str:
    names = factors(grid)
    return ", ".join(f"{n}={grid.loc[cell, n]}" for n in names) if names and cell in grid.index else f"cell {cell}"
