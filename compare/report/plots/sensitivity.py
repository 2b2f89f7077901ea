"""Sensitivity of coverage and bias to the doubtful fits: each engine's measure over all fits beside the same
measure without the fits that diverged (samplers) or did not converge (optimisers), 95% MC bars, for the
(cell, engine) pairs that had any such fit. If the two agree, the doubtful fits do not drive the result."""

from __future__ import annotations

import pandas as pd

from compare.report.plots._style import figure
from compare.settings import DEFAULT_LEVEL


def data(sens: pd.DataFrame, parameters: list[str]) -> pd.DataFrame:
    d = sens[sens["parameter"].isin(parameters) & (sens["n_clean"] < sens["n_all"])]
    return d.sort_values(["scenario", "cell", "parameter", "engine"]).reset_index(drop=True)


def draw(d: pd.DataFrame, nominal: float = DEFAULT_LEVEL):
    if d.empty:
        return None
    labels = [f"{s} {c} {e}: {p}" for s, c, e, p in zip(d["scenario"], d["cell"], d["engine"], d["parameter"])]
    fig, axes = figure(2, width=4.2, height=0.28 * len(d) + 1.2, ncols=2)
    for ax, m, ref in zip(axes, ("coverage", "bias"), (nominal, 0.0)):
        for k, (which, colour) in enumerate((("all", "#888"), ("clean", "#1f78b4"))):
            y = [i + 0.15 * (k - 0.5) for i in range(len(d))]
            ax.errorbar(
                d[f"{m}_{which}"],
                y,
                xerr=1.96 * d[f"{m}_mcse_{which}"].fillna(0),
                fmt="o",
                ms=3,
                color=colour,
                lw=0.8,
                label=f"{which} fits",
            )
        ax.axvline(ref, color="black", ls="--", lw=0.8)
        ax.set_yticks(range(len(d)), labels if m == "coverage" else [""] * len(d), fontsize=6)
        ax.set_ylim(len(d) - 0.5, -0.5)
        ax.set_title(m, fontsize=8)
        ax.tick_params(axis="x", labelsize=6)
    axes[0].legend(fontsize=6)
    fig.suptitle("all fits (grey) vs without divergent / non-converged fits (blue); bars: 95% MC intervals", fontsize=8)
    fig.tight_layout()
    return fig


def plot(sens: pd.DataFrame, parameters: list[str], nominal: float = DEFAULT_LEVEL):
    d = data(sens, parameters)
    return draw(d, nominal), d
