"""Simulation-based calibration rank histograms for prior-DGP cells, with the uniform band."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from compare.report.plots._style import figure


def plot(table: pd.DataFrame, scenario: str, cell: int, max_panels: int = 12):
    d = table[(table["scenario"] == scenario) & (table["cell"] == cell) & table["sbc_rank"].notna()]
    d = d[d["param_class"] != "r"]
    if d.empty:
        return None
    keys = list(dict.fromkeys(zip(d["engine"], d["parameter"])))[:max_panels]
    fig, axes = figure(len(keys), width=3.2, height=2.4, ncols=4)
    for ax, (e, p) in zip(axes, keys):
        g = d[(d["engine"] == e) & (d["parameter"] == p)]
        n, draws = len(g), int(g["sbc_draws"].max())
        bins = int(max(2, min(20, n // 5, draws + 1)))
        ax.hist(g["sbc_rank"], bins=np.linspace(0, draws + 1, bins + 1), color="#7570b3")
        lo, hi = stats.binom.ppf([0.005, 0.995], n, 1 / bins)
        ax.axhspan(lo, hi, color="grey", alpha=0.25)
        ax.set_title(f"{e}: {p}", fontsize=8)
        ax.tick_params(labelsize=6)
    fig.suptitle(f"SBC ranks: {scenario} cell {cell} (band: 99% for uniform)", fontsize=10)
    fig.tight_layout()
    return fig
