"""Posterior predictive check for one example fit (the seed's pp_check "ribbon_grouped" idea):
observed outcomes per group against the fitted group means with predictive intervals.

Reads the stored estimates of one replication and regenerates that replication's data from its seed
(simulation, not refitting). The interval per group is mean +- 1.96 sqrt(se_mean^2 + sigma^2) for
gaussian models: an approximation to the full predictive distribution, stated on the plot."""

from __future__ import annotations

import numpy as np
import pandas as pd

from compare.report.plots._style import engine_colours, figure


def _group_means(rows: pd.DataFrame, ds) -> tuple[np.ndarray, np.ndarray] | None:
    d = ds.design
    est = dict(zip(rows["parameter"], rows["estimate"]))
    se = dict(zip(rows["parameter"], rows["se"]))
    try:
        beta = np.array([est[f"b[{n}]"] for n in d.x_names])
    except KeyError:
        return None
    mu = d.X @ beta + d.offset if beta.size else d.offset.copy()
    var = np.zeros(d.n)
    for bd in d.blocks:
        for k, term in enumerate(bd.names):
            names = [f"r[{bd.group}][{lv},{term}]" for lv in bd.levels]
            if not all(n in est for n in names):
                return None
            u = np.array([est[n] for n in names])
            s = np.nan_to_num(np.array([se.get(n, 0.0) for n in names]))
            mu = mu + bd.X[:, k] * u[bd.index]
            var = var + (bd.X[:, k] * s[bd.index]) ** 2
    sigma = est.get("sigma", 0.0)
    return mu, np.sqrt(var + sigma**2)


def plot(table: pd.DataFrame, dataset, scenario: str, cell: int, rep: int, max_groups: int = 12):
    if dataset.family != "gaussian" or not dataset.design.blocks:
        return None
    d = table[(table["scenario"] == scenario) & (table["cell"] == cell) & (table["rep"] == rep)
              & (table["status"] == "ok")]
    engines = [e for e in sorted(d["engine"].unique()) if _group_means(d[d["engine"] == e], dataset) is not None]
    if not engines:
        return None
    bd = dataset.design.blocks[0]
    x_name = dataset.design.x_names[1] if len(dataset.design.x_names) > 1 else None
    x = dataset.frame[x_name].to_numpy() if x_name else np.arange(dataset.design.n)
    y = dataset.design.y
    colours = engine_colours(table["engine"].unique())
    groups = list(range(min(max_groups, bd.n_levels)))
    fig, axes = figure(len(groups), width=2.6, height=2.2, ncols=6)
    fitted = {e: _group_means(d[d["engine"] == e], dataset) for e in engines}
    for ax, j in zip(axes, groups):
        rows = np.where(bd.index == j)[0]
        order = rows[np.argsort(x[rows])]
        for e in engines:
            mu, sd = fitted[e]
            ax.fill_between(x[order], mu[order] - 1.96 * sd[order], mu[order] + 1.96 * sd[order],
                            color=colours[e], alpha=0.2)
            ax.plot(x[order], mu[order], color=colours[e], lw=1, label=e)
        ax.plot(x[order], y[order], "k.", ms=3)
        ax.set_title(f"{bd.group} {bd.levels[j]}", fontsize=7)
        ax.tick_params(labelsize=6)
    axes[0].legend(fontsize=5)
    fig.suptitle(f"{scenario} cell {cell} rep {rep}: observed (dots) vs fitted group lines with ~95% "
                 f"predictive bands (mean +- 1.96 sqrt(se^2 + sigma^2))", fontsize=8)
    fig.tight_layout()
    return fig
