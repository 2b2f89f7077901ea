"""Singular (boundary) fit rate by engine, against a grid factor (number of groups, group size, slope SD)."""

from __future__ import annotations

import pandas as pd

from compare.report.plots._style import engine_colours, figure


def plot(fits: pd.DataFrame, scenario: str, cell_labels: dict[int, str]):
    d = fits[(fits["scenario"] == scenario) & fits["singular_rate"].notna()]
    if d.empty:
        return None
    colours = engine_colours(fits["engine"].unique())
    measures = [m for m in ("singular_rate", "corr_at_bound_rate", "reached_reference_rate") if d[m].notna().any()]
    fig, axes = figure(len(measures), width=4.6, height=3.0, ncols=3)
    cells = sorted(d["cell"].unique())
    for ax, m in zip(axes, measures):
        engines = sorted(d["engine"].unique())
        width = 0.8 / max(1, len(engines))
        for k, e in enumerate(engines):
            g = d[d["engine"] == e].set_index("cell").reindex(cells)
            x = [i + k * width for i in range(len(cells))]
            ax.bar(x, g[m], width, yerr=1.96 * g[f"{m}_mcse"].fillna(0), color=colours[e], label=e, capsize=2)
        ax.set_xticks(
            [i + 0.4 - width / 2 for i in range(len(cells))],
            [cell_labels.get(c, str(c)) for c in cells],
            fontsize=7,
            rotation=20,
        )
        ax.set_ylim(0, 1)
        ax.set_title(m.replace("_", " "), fontsize=9)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{scenario}: boundary fits by engine and grid cell", fontsize=10)
    fig.tight_layout()
    return fig
