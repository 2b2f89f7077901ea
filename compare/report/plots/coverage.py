"""Coverage by engine and interval type with MCSE error bars against the nominal level, one panel per
parameter (one line per 'engine · interval', e.g. lme4's wald-z and wald-t)."""

from __future__ import annotations

import pandas as pd

from compare.report.plots._style import engine_colours, figure
from compare.report.tables import interval_label
from compare.settings import DEFAULT_LEVEL


def plot(ivals: pd.DataFrame, scenario: str, cell: int, nominal: float = DEFAULT_LEVEL, max_panels: int = 12):
    d = ivals[(ivals["scenario"] == scenario) & (ivals["cell"] == cell) & ivals["coverage"].notna()]
    d = d[d["param_class"] != "r"]
    if d.empty:
        return None
    params = list(dict.fromkeys(d["parameter"]))[:max_panels]
    colours = engine_colours(ivals["engine"].unique())
    fig, axes = figure(len(params), width=3.6, height=2.6, ncols=4)
    for ax, p in zip(axes, params):
        g = d[d["parameter"] == p].reset_index(drop=True)
        ax.errorbar(
            g["coverage"],
            range(len(g)),
            xerr=1.96 * g["coverage_mcse"].fillna(0),
            fmt="o",
            ecolor=[colours[e] for e in g["engine"]],
            mfc="none",
            mec="black",
            ms=4,
        )
        for y, (e, c) in enumerate(zip(g["engine"], g["coverage"])):
            ax.plot(c, y, "o", color=colours[e], ms=6)
        ax.axvline(nominal, color="black", lw=1, ls="--")
        labels = [interval_label(e, i) for e, i in zip(g["engine"], g["interval"])]
        ax.set_yticks(range(len(g)), labels, fontsize=7)
        ax.set_xlim(max(0.0, min(0.7, g["coverage"].min() - 0.05)), 1.0)
        ax.set_title(p, fontsize=9)
        ax.set_xlabel("coverage (bars: 95% MC interval)", fontsize=7)
    fig.suptitle(f"{scenario} cell {cell}: interval coverage", fontsize=10)
    fig.tight_layout()
    return fig
