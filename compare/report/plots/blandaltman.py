"""Bland-Altman plot between engines: per replication both fitted, the difference of one parameter's
estimates (engine - reference) against their mean, with the mean difference and its 95% limits of agreement
(mean -/+ 1.96 SD). Shows whether two engines differ by a constant, by an amount growing with the value, or
on a few datasets only."""

from __future__ import annotations

import pandas as pd

from compare.report.plots._style import engine_colours, figure
from compare.report.plots.scatter import pairs


def data(table: pd.DataFrame, scenario: str, cell: int, parameter: str, reference: str) -> pd.DataFrame:
    d = pairs(table, scenario, cell, parameter, reference)
    if d.empty:
        return d
    return d.assign(
        mean=(d["estimate"] + d["reference_estimate"]) / 2, difference=d["estimate"] - d["reference_estimate"]
    )


def draw(d: pd.DataFrame, title: str):
    if d is None or d.empty:
        return None
    engines = sorted(d["engine"].unique())
    colours = engine_colours(engines)
    fig, axes = figure(len(engines), width=2.4, height=2.4, ncols=5)
    for ax, e in zip(axes, engines):
        g = d[d["engine"] == e]
        m, s = g["difference"].mean(), g["difference"].std(ddof=1) if len(g) > 1 else 0.0
        ax.scatter(g["mean"], g["difference"], s=5, color=colours[e], alpha=0.6, lw=0)
        ax.axhline(0, color="grey", lw=0.6)
        ax.axhline(m, color="black", lw=0.9)
        for lim in (m - 1.96 * s, m + 1.96 * s):
            ax.axhline(lim, color="black", lw=0.7, ls="--")
        ax.set_title(f"{e} - {g['reference'].iloc[0]} (n={len(g)})", fontsize=8)
        ax.set_xlabel("mean of the two", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot(table: pd.DataFrame, scenario: str, cell: int, parameter: str, reference: str):
    d = data(table, scenario, cell, parameter, reference)
    return draw(
        d,
        f"{scenario} cell {cell}, {parameter}: Bland-Altman against {reference} (line: mean "
        f"difference; dashed: 95% limits of agreement)",
    ), d
