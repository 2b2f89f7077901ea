"""Posterior predictive check for one example fit (the seed's pp_check "ribbon_grouped" idea):
observed outcomes per group against the fitted group means with predictive intervals.

Reads the stored estimates of one replication and regenerates that replication's data from its seed
(simulation, not refitting). Where an engine kept its draws (`keep_draws = true`) the bands are its real
posterior predictive intervals; elsewhere, for gaussian models, mean +- 1.96 sqrt(se_mean^2 + sigma^2), an
approximation to the predictive distribution, and the plot says which is which."""

from __future__ import annotations

import numpy as np
import pandas as pd

from compare.fitresult import name_b, name_r
from compare.metrics import primary_rows
from compare.report.plots._style import engine_colours, figure


def _group_means(rows: pd.DataFrame, ds) -> tuple[np.ndarray, np.ndarray] | None:
    d = ds.design
    est = dict(zip(rows["parameter"], rows["estimate"]))
    se = dict(zip(rows["parameter"], rows["se"]))
    try:
        beta = np.array([est[name_b(n)] for n in d.x_names])
    except KeyError:
        return None
    mu = d.X @ beta + d.offset if beta.size else d.offset.copy()
    var = np.zeros(d.n)
    for bd in d.blocks:
        for k, term in enumerate(bd.names):
            names = [name_r(bd.group, lv, term) for lv in bd.levels]
            if not all(n in est for n in names):
                return None
            u = np.array([est[n] for n in names])
            s = np.nan_to_num(np.array([se.get(n, 0.0) for n in names]))
            mu = mu + bd.X[:, k] * u[bd.index]
            var = var + (bd.X[:, k] * s[bd.index]) ** 2
    sigma = est.get("sigma", 0.0)
    return mu, np.sqrt(var + sigma**2)


def _bands(rows: pd.DataFrame, data, y_rep: np.ndarray | None):
    """(centre, lower, upper) per data row: posterior predictive quantiles where the draws were kept, else the
    approximation mean -/+ 1.96 sqrt(se_mean^2 + sigma^2) from the stored estimates."""
    if y_rep is not None:
        lo, hi = np.quantile(y_rep, [0.025, 0.975], axis=0)
        return y_rep.mean(axis=0), lo, hi
    fitted = _group_means(rows, data)
    if fitted is None:
        return None
    mu, sd = fitted
    return mu, mu - 1.96 * sd, mu + 1.96 * sd


def plot(
    table: pd.DataFrame, data, scenario: str, cell: int, rep: int, predictive: dict | None = None, max_groups: int = 12
):
    """Observed outcomes per group against each engine's predictive band (the seed's pp_check
    "ribbon_grouped"); `predictive`: engine -> replicated outcomes (draws, rows) where draws were kept."""
    predictive = predictive or {}
    if not data.design.blocks or (data.family != "gaussian" and not predictive):
        return None
    rows = primary_rows(table)  # estimates and SEs: one row per parameter
    d = rows[(rows["scenario"] == scenario) & (rows["cell"] == cell) & (rows["rep"] == rep)]
    bands = {e: _bands(d[d["engine"] == e], data, predictive.get(e)) for e in sorted(d["engine"].unique())}
    bands = {e: b for e, b in bands.items() if b is not None}
    if not bands:
        return None
    bd = data.design.blocks[0]
    x_name = data.design.x_names[1] if len(data.design.x_names) > 1 else None
    # the design's column, not the frame's: a term such as factor(service)1 or I(age^2) names no column
    x = data.design.X[:, 1].astype(float) if x_name else np.arange(data.design.n, dtype=float)
    y = data.design.y
    colours = engine_colours(table["engine"].unique())
    groups = list(range(min(max_groups, bd.n_levels)))
    fig, axes = figure(len(groups), width=2.6, height=2.2, ncols=6)
    for ax, j in zip(axes, groups):
        rows = np.where(bd.index == j)[0]
        order = rows[np.argsort(x[rows], kind="stable")]
        for e, (mu, lo, hi) in bands.items():
            ax.fill_between(x[order], lo[order], hi[order], color=colours[e], alpha=0.2)
            ax.plot(
                x[order], mu[order], color=colours[e], lw=1, label=f"{e} ({'draws' if e in predictive else 'approx.'})"
            )
        ax.plot(x[order], y[order], "k.", ms=3)
        ax.set_title(f"{bd.group} {bd.levels[j]}", fontsize=7)
        ax.tick_params(labelsize=6)
    axes[0].legend(fontsize=5)
    how = "posterior predictive 95% intervals from kept draws" if predictive else ""
    approx = "approximate bands mean +- 1.96 sqrt(se^2 + sigma^2)" if set(bands) - set(predictive) else ""
    fig.suptitle(
        f"{scenario} cell {cell} rep {rep}: observed (dots) vs predicted by group; "
        + "; ".join(t for t in (how, approx) if t),
        fontsize=8,
    )
    fig.tight_layout()
    return fig
