"""Estimate against estimate (Morris, White & Crowther 2019, Fig. 5): each engine's estimate of one parameter
on the same replications as the reference engine's, with the identity line. Points off the line are datasets
on which two engines disagree; a cloud off the line is a systematic difference."""

from __future__ import annotations

import pandas as pd

from compare.metrics import primary_rows
from compare.report.plots._style import engine_colours, figure


def pairs(table: pd.DataFrame, scenario: str, cell: int, parameter: str, reference: str) -> pd.DataFrame:
    """Per replication both fitted: rep, engine, estimate, reference_estimate (long: one row per other engine)."""
    rows = primary_rows(table)
    rows = rows[
        (rows["scenario"] == scenario)
        & (rows["cell"] == cell)
        & (rows["parameter"] == parameter)
        & rows["estimate"].notna()
    ]
    wide = rows.pivot_table(index="rep", columns="engine", values="estimate")
    if reference not in wide:
        return pd.DataFrame(
            columns=["scenario", "cell", "parameter", "rep", "engine", "reference", "estimate", "reference_estimate"]
        )
    out = []
    for e in [c for c in wide.columns if c != reference]:
        both = wide[[e, reference]].dropna()
        out.append(
            pd.DataFrame(
                {
                    "scenario": scenario,
                    "cell": cell,
                    "parameter": parameter,
                    "rep": both.index,
                    "engine": e,
                    "reference": reference,
                    "estimate": both[e].to_numpy(),
                    "reference_estimate": both[reference].to_numpy(),
                }
            )
        )
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def reference_engine(table: pd.DataFrame, reference: str | None) -> str | None:
    """The suite's reference engine when it ran, else lme4, else the first engine in name order."""
    engines = sorted(table.loc[table["status"] == "ok", "engine"].unique())
    for e in (reference, "lme4"):
        if e in engines:
            return e
    return engines[0] if engines else None


def draw(d: pd.DataFrame, title: str):
    if d is None or d.empty:
        return None
    engines = sorted(d["engine"].unique())
    colours = engine_colours([*engines, d["reference"].iloc[0]])
    fig, axes = figure(len(engines), width=2.4, height=2.4, ncols=5)
    for ax, e in zip(axes, engines):
        g = d[d["engine"] == e]
        lo = min(g["estimate"].min(), g["reference_estimate"].min())
        hi = max(g["estimate"].max(), g["reference_estimate"].max())
        ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8)
        ax.scatter(g["reference_estimate"], g["estimate"], s=5, color=colours[e], alpha=0.6, lw=0)
        ax.set_title(f"{e} (n={len(g)})", fontsize=8)
        ax.set_xlabel(d["reference"].iloc[0], fontsize=7)
        ax.tick_params(labelsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot(table: pd.DataFrame, scenario: str, cell: int, parameter: str, reference: str):
    d = pairs(table, scenario, cell, parameter, reference)
    return draw(
        d,
        f"{scenario} cell {cell}, {parameter}: each engine's estimate (y) against {reference}'s (x) "
        f"on the same replications",
    ), d
