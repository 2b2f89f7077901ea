"""Simulation-based calibration as the SBC package draws it (Säilynoja, Bürkner & Vehtari 2022): the ECDF of the
fractional ranks minus the uniform CDF, with the simultaneous 95% band. A curve that leaves the band anywhere is
evidence against calibration; its shape says which way (an S: posteriors too narrow; a hump: too wide; one-signed:
biased). Besides the rank histograms, which need bins and give no simultaneous test."""

from __future__ import annotations

import pandas as pd

from compare import metrics
from compare.report.plots._style import figure


def plot(table: pd.DataFrame, scenario: str, cell: int, max_panels: int = 12):
    d = table[
        (table["scenario"] == scenario)
        & (table["cell"] == cell)
        & table["sbc_rank"].notna()
        & table["sbc_draws"].notna()
    ]
    d = d[d["param_class"] != "r"]
    keys = [k for k, g in d.groupby(["engine", "parameter"], sort=False) if len(g) >= metrics.SBC_MIN_RANKS]
    if not keys:
        return None
    fig, axes = figure(len(keys[:max_panels]), width=3.2, height=2.4, ncols=4)
    for ax, (e, p) in zip(axes, keys[:max_panels]):
        g = d[(d["engine"] == e) & (d["parameter"] == p)]
        draws = int(g["sbc_draws"].mode().max())  # the ranks sbc_summary judges: one draw count
        check = metrics.sbc_ecdf(g.loc[g["sbc_draws"] == draws, "sbc_rank"].to_numpy(float), draws)
        ax.fill_between(check.z, check.lower, check.upper, step="post", color="#c6dbef", lw=0, antialiased=False)
        ax.step(check.z, check.diff, where="post", color="black" if check.inside else "#d7301f", lw=1)
        ax.axhline(0, color="grey", lw=0.6)
        ax.set_xlim(0, 1)
        ax.set_title(f"{e}: {p} ({'inside' if check.inside else 'OUTSIDE'}, n={check.n})", fontsize=8)
        ax.tick_params(labelsize=6)
    fig.suptitle(f"SBC ECDF - uniform: {scenario} cell {cell} (band: simultaneous 95%)", fontsize=10)
    fig.supxlabel("fractional rank z", fontsize=8)
    fig.tight_layout()
    return fig
