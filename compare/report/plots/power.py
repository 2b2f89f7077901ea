"""Rejection-rate curves along a grid axis: the share of primary intervals that exclude 0 (power where the truth
is not 0, type I error where it is) against each factor of the grid, one line per engine, pooled over the other
factors' cells (weighted by fits; MCSE from the cells' MCSEs). One panel per (factor, fixed effect)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from compare.report import grid as gridmod
from compare.report.plots._style import engine_colours, engine_legend, figure
from compare.settings import DEFAULT_LEVEL


def data(long: pd.DataFrame, grid: pd.DataFrame, scenario: str, parameters: list[str]) -> pd.DataFrame:
    d = long[
        (long["scenario"] == scenario)
        & (long["measure"] == "rejection")
        & long["parameter"].isin(parameters)
        & long["value"].notna()
        & long["cell"].isin(grid.index)
    ]
    rows = []
    for factor in gridmod.factors(grid):
        g = d.assign(level=d["cell"].map(grid[factor]), rank=d["cell"].map(grid[f"{factor}#"]))
        for (p, e, rank, level), h in g.groupby(["parameter", "engine", "rank", "level"], sort=True):
            n = h["n"].astype(float)
            rows.append(
                {
                    "scenario": scenario,
                    "factor": factor,
                    "level": level,
                    "rank": rank,
                    "parameter": p,
                    "engine": e,
                    "true_mean": h["true_mean"].mean(),
                    "cells": len(h),
                    "n": n.sum(),
                    "rejection": float((h["value"] * n).sum() / n.sum()),
                    "rejection_mcse": float(np.sqrt(((h["mcse"] * n) ** 2).sum()) / n.sum()),
                }
            )
    return pd.DataFrame(rows)


def draw(d: pd.DataFrame, title: str, level: float = DEFAULT_LEVEL):
    if d.empty:
        return None
    panels = list(dict.fromkeys(zip(d["factor"], d["parameter"])))[:8]
    engines = sorted(d["engine"].unique())
    colours = engine_colours(engines)
    fig, axes = figure(len(panels), width=2.8, height=2.3, ncols=4)
    for ax, (factor, p) in zip(axes, panels):
        g = d[(d["factor"] == factor) & (d["parameter"] == p)]
        levels = g.drop_duplicates("rank").sort_values("rank")
        for e in engines:
            h = g[g["engine"] == e].sort_values("rank")
            ax.errorbar(
                h["rank"],
                h["rejection"],
                yerr=1.96 * h["rejection_mcse"],
                color=colours[e],
                marker="o",
                ms=3,
                lw=1.1,
                capsize=2,
            )
        null = bool(np.isclose(g["true_mean"].mean(), 0))
        if null:
            ax.axhline(1 - level, color="black", ls="--", lw=0.8)
        ax.set_xticks(levels["rank"], levels["level"], fontsize=6)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel(factor, fontsize=7)
        ax.set_title(f"{p}: {'type I error' if null else 'power'}", fontsize=8)
        ax.tick_params(labelsize=6)
    fig.suptitle(title, fontsize=9)
    engine_legend(fig, colours, engines)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def plot(long: pd.DataFrame, scenario: str, level: float = DEFAULT_LEVEL):
    """(figure, numbers) for the scenario's fixed effects; None without a grid in the run."""
    cells = [int(c) for c in sorted(long.loc[long["scenario"] == scenario, "cell"].unique())]
    grid = gridmod.cell_grid(scenario, cells)
    if len(cells) < 2 or not gridmod.factors(grid):
        return None, pd.DataFrame()
    params = sorted(long.loc[(long["scenario"] == scenario) & (long["param_class"] == "b"), "parameter"].unique())
    d = data(long, grid, scenario, params)
    return draw(
        d,
        f"{scenario}: rejection of 0 by the primary interval along each grid factor "
        f"(bars: 95% MC intervals; dashed: {1 - level:.2g} where the truth is 0)",
        level,
    ), d
