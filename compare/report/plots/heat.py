"""The warnings tally (SimDesign's per-condition warning counts): a heat map of engines x cells for each
warning (failed, singular, not converged, divergent, tree depth reached, R-hat > 1.01), each tile the share of
fits with its MCSE written in it; blank where the engine cannot raise that warning."""

from __future__ import annotations

import numpy as np
import pandas as pd

from compare.metrics import WARNINGS
from compare.report.plots._style import figure

MAX_WIDTH = 14.0  # inches: panels side by side up to this width, then the next row


def data(warnings: pd.DataFrame, scenario: str | None = None) -> pd.DataFrame:
    d = warnings if scenario is None else warnings[warnings["scenario"] == scenario]
    return d.reset_index(drop=True)


def draw(d: pd.DataFrame, title: str):
    if d.empty:
        return None
    labels = [w for w in WARNINGS.values() if w in set(d["warning"])]
    one = d["scenario"].nunique() == 1
    d = d.assign(column=d["cell"].astype(str) if one else d["scenario"] + " " + d["cell"].astype(str))
    columns = list(dict.fromkeys(d.sort_values(["scenario", "cell"])["column"]))
    engines = sorted(d["engine"].unique())
    width = 0.5 * len(columns) + 1.6
    fig, axes = figure(
        len(labels), width=width, height=0.28 * len(engines) + 1.2, ncols=max(1, int(MAX_WIDTH // width))
    )
    for ax, w in zip(axes, labels):
        g = d[d["warning"] == w]
        share = g.pivot_table(index="engine", columns="column", values="share").reindex(index=engines, columns=columns)
        mcse = g.pivot_table(index="engine", columns="column", values="share_mcse").reindex(
            index=engines, columns=columns
        )
        ax.imshow(np.ma.masked_invalid(share.to_numpy(float)), cmap="Reds", vmin=0, vmax=1, aspect="auto")
        for i in range(len(engines)):
            for j in range(len(columns)):
                v = share.iat[i, j]
                if pd.notna(v):
                    ax.text(
                        j,
                        i,
                        f"{v:.2f}\n({mcse.iat[i, j]:.2f})",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="white" if v > 0.6 else "black",
                    )
        ax.set_xticks(
            range(len(columns)), columns, fontsize=6, rotation=0 if one else 45, ha="center" if one else "right"
        )
        ax.set_yticks(range(len(engines)), engines, fontsize=6)
        ax.set_title(w, fontsize=8)
        if one:
            ax.set_xlabel(f"{d['scenario'].iloc[0]} cell", fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot(warnings: pd.DataFrame, scenario: str | None = None):
    d = data(warnings, scenario)
    where = f"{scenario}: " if scenario else ""
    return draw(d, f"{where}warnings per engine and cell: share of fits (MCSE)"), d
