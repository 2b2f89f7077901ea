"""Bias, empirical vs model SE, and RMSE with MCSE, per engine, for the fixed effects and SDs of a cell."""

from __future__ import annotations

import pandas as pd

from compare.report.plots._style import engine_colours, figure


def plot(perf: pd.DataFrame, scenario: str, cell: int, max_params: int = 6):
    d = perf[(perf["scenario"] == scenario) & (perf["cell"] == cell)]
    d = d[d["param_class"].isin(["b", "sd", "sigma", "cor"])]
    if d.empty:
        return None
    params = list(dict.fromkeys(d["parameter"]))[:max_params]
    colours = engine_colours(perf["engine"].unique())
    fig, axes = figure(len(params), width=3.8, height=2.8, ncols=3)
    for ax, p in zip(axes, params):
        g = d[d["parameter"] == p].reset_index(drop=True)
        y = range(len(g))
        ax.errorbar(g["bias"], y, xerr=1.96 * g["bias_mcse"].fillna(0), fmt="o", color="black", ms=3, label="bias")
        ax.scatter(g["empse"], y, marker="s", c=[colours[e] for e in g["engine"]], s=18, label="EmpSE")
        ax.scatter(g["modse"], y, marker="x", c="black", s=18, label="ModSE")
        ax.scatter(g["rmse"], y, marker="^", c="grey", s=18, label="RMSE")
        ax.axvline(0, color="grey", lw=0.6)
        ax.set_yticks(list(y), g["engine"], fontsize=7)
        ax.set_title(p, fontsize=9)
    axes[0].legend(fontsize=6, loc="best")
    fig.suptitle(f"{scenario} cell {cell}: bias (95% MC bars), EmpSE, ModSE, RMSE", fontsize=10)
    fig.tight_layout()
    return fig
