"""Nested-loop plot (Rücker & Schwarzer 2014; rsimsum's `nlp`): one measure across every grid cell of a scenario,
the cells in nested order (the first factor varies slowest), one step line per engine; under it, each factor's
level as a step line, so a reader sees which factor moves the measure."""

from __future__ import annotations

import numpy as np
import pandas as pd

from compare.report import grid as gridmod
from compare.report.measures import TITLES
from compare.report.plots._style import engine_colours, engine_legend
from compare.report.plots.forest import REFERENCE
from compare.settings import DEFAULT_LEVEL


def data(long: pd.DataFrame, grid: pd.DataFrame, scenario: str, parameter: str, measure: str) -> pd.DataFrame:
    order = gridmod.nested_order(grid)
    d = long[(long["scenario"] == scenario) & (long["parameter"] == parameter) & (long["measure"] == measure)]
    d = d[d["cell"].isin(order)].copy()
    d["position"] = d["cell"].map({c: i for i, c in enumerate(order)})
    for f in gridmod.factors(grid):
        d[f] = d["cell"].map(grid[f])
    return d.sort_values(["engine", "position"]).reset_index(drop=True)


def draw(d: pd.DataFrame, grid: pd.DataFrame, title: str, nominal: float = DEFAULT_LEVEL):
    import matplotlib.pyplot as plt

    if d.empty or d["value"].notna().sum() == 0:
        return None
    names = gridmod.factors(grid)
    order = gridmod.nested_order(grid)
    engines = sorted(d["engine"].unique())
    colours = engine_colours(engines)
    fig, (ax, low) = plt.subplots(
        2,
        1,
        figsize=(max(6.0, 0.28 * len(order) + 3), 3.6 + 0.25 * len(names)),
        sharex=True,
        gridspec_kw={"height_ratios": [3, 0.5 + 0.35 * len(names)]},
    )
    for e in engines:
        g = d[d["engine"] == e]
        ax.step(g["position"], g["value"], where="mid", color=colours[e], lw=1.3)
        ax.errorbar(
            g["position"],
            g["value"],
            yerr=1.96 * g["mcse"].fillna(0),
            fmt="o",
            ms=2.5,
            color=colours[e],
            lw=0.6,
            alpha=0.7,
        )
    measure = d["measure"].iloc[0]
    ref = REFERENCE.get(measure)
    if ref is not None:
        ax.axhline(nominal if ref == "nominal" else ref, color="black", lw=0.8, ls="--")
    if measure in ("coverage", "be_coverage"):
        ax.set_ylim(min(nominal - 0.1, float((d["value"] - 1.96 * d["mcse"].fillna(0)).min()) - 0.02), 1.02)
    ax.set_ylabel(TITLES.get(measure, measure), fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title(title, fontsize=9)
    x = np.arange(len(order))
    for k, name in enumerate(names):  # each factor a step line in its own band, labelled with its levels
        ranks = grid.loc[order, f"{name}#"].to_numpy(float)
        span = max(1.0, ranks.max() - ranks.min())
        base = -k * 1.5
        low.step(x, base + (ranks - ranks.min()) / span, where="mid", color="#444", lw=1)
        low.text(-0.6, base + 0.5, name, fontsize=7, ha="right", va="center")
        for i in [0, *[i for i in range(1, len(order)) if ranks[i] != ranks[i - 1]]]:
            low.text(x[i], base + (ranks[i] - ranks.min()) / span + 0.12, grid.loc[order[i], name], fontsize=5.5)
    low.set_yticks([])
    low.set_xticks(x, [str(c) for c in order], fontsize=6)
    low.set_xlabel("grid cell (nested order)", fontsize=7)
    for side in ("top", "right", "left"):
        low.spines[side].set_visible(False)
    engine_legend(fig, colours, engines)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def plot(long: pd.DataFrame, scenario: str, parameter: str, measure: str = "coverage", nominal: float = DEFAULT_LEVEL):
    """(figure, its numbers): `measure` of `parameter` across the scenario's cells in the run; None under two cells."""
    cells = sorted(long.loc[long["scenario"] == scenario, "cell"].unique())
    grid = gridmod.cell_grid(scenario, [int(c) for c in cells])
    if len(cells) < 2 or not gridmod.factors(grid):
        return None, pd.DataFrame()
    d = data(long, grid, scenario, parameter, measure)
    bars = "bars: 95% MC intervals" + (f"; dashed: nominal {nominal:g}" if measure == "coverage" else "")
    # two lines: on a grid of a few cells the figure is 6 inches wide and one line ran past its right edge
    title = f"{scenario}: {TITLES.get(measure, measure)} of {parameter} across the grid\n{bars}"
    return draw(d, grid, title, nominal), d
