"""Zip plot (Morris et al. 2019, Fig. 3): each replication's interval, ranked by |z| = |est - true| / se,
coloured by whether it covers; the share above the nominal rank line is the non-coverage. Each engine's
primary interval (the first row of the parameter in each fit)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from compare.metrics import primary_rows
from compare.report.plots._style import figure
from compare.settings import DEFAULT_LEVEL


def plot(table: pd.DataFrame, scenario: str, cell: int, parameter: str, nominal: float = DEFAULT_LEVEL):
    table = primary_rows(table)
    d = table[
        (table["scenario"] == scenario)
        & (table["cell"] == cell)
        & (table["parameter"] == parameter)
        & (table["status"] == "ok")
        & table["lower"].notna()
        & table["true"].notna()
    ]
    if d.empty:
        return None
    engines = sorted(d["engine"].unique())
    fig, axes = figure(len(engines), width=3.2, height=3.4, ncols=4)
    for ax, e in zip(axes, engines):
        g = d[d["engine"] == e].copy()
        se = g["se"].where(g["se"] > 0, (g["upper"] - g["lower"]) / (2 * stats.norm.ppf(0.975)))
        g["absz"] = np.abs((g["estimate"] - g["true"]) / se)
        g = g.sort_values("absz").reset_index(drop=True)
        rank = (np.arange(len(g)) + 0.5) / len(g) * 100
        covered = g["covered"].fillna(False).astype(bool).to_numpy()
        for y, lo, hi, c in zip(rank, g["lower"] - g["true"], g["upper"] - g["true"], covered):
            ax.plot([lo, hi], [y, y], color="#1f78b4" if c else "#d7301f", lw=1)
        ax.axvline(0, color="black", lw=0.8)
        ax.axhline(nominal * 100, color="grey", ls="--", lw=0.8)
        ax.set_title(f"{e} ({covered.mean():.0%} cover)", fontsize=9)
        ax.set_xlabel("interval minus truth", fontsize=7)
        ax.set_ylabel("centile of |z|", fontsize=7)
    fig.suptitle(f"zip plot: {scenario} cell {cell}, {parameter}", fontsize=10)
    fig.tight_layout()
    return fig
