"""Runtime per fit by engine (log scale), compile time shown apart, and ESS/s for samplers."""

from __future__ import annotations

import matplotlib
import pandas as pd

from compare.report.plots._style import engine_colours, figure

# boxplot's `vert` is deprecated from matplotlib 3.10 on, whose `orientation` older ones lack (we allow >= 3.8)
_SIDEWAYS = (
    {"orientation": "horizontal"}
    if tuple(int(v) for v in matplotlib.__version__.split(".")[:2]) >= (3, 10)
    else {"vert": False}
)


def plot(table: pd.DataFrame):
    fits = table[table["status"] == "ok"].drop_duplicates(["scenario", "cell", "rep", "engine"])
    if fits.empty:
        return None
    engines = sorted(fits["engine"].unique())
    colours = engine_colours(engines)
    has_ess = fits["ess_bulk_per_s"].notna().any()
    fig, axes = figure(3 if has_ess else 2, width=5.0, height=3.2, ncols=3)
    sampling = [
        (fits[fits["engine"] == e]["wall_s"] - fits[fits["engine"] == e]["compile_s"].fillna(0)).clip(lower=1e-4)
        for e in engines
    ]
    box = axes[0].boxplot(sampling, patch_artist=True, **_SIDEWAYS)
    for patch, e in zip(box["boxes"], engines):
        patch.set_facecolor(colours[e])
    axes[0].set_yticks(range(1, len(engines) + 1), engines, fontsize=7)
    axes[0].set_xscale("log")
    axes[0].set_title("seconds per fit, compile excluded", fontsize=9)
    compile_s = fits.groupby("engine")["compile_s"].sum().reindex(engines).fillna(0)
    axes[1].barh(engines, compile_s, color=[colours[e] for e in engines])
    axes[1].set_title("total compile seconds", fontsize=9)
    axes[1].tick_params(labelsize=7)
    if has_ess:
        ess = fits[fits["ess_bulk_per_s"].notna()]
        names = sorted(ess["engine"].unique())
        axes[2].boxplot([ess[ess["engine"] == e]["ess_bulk_per_s"] for e in names], vert=False)
        axes[2].set_yticks(range(1, len(names) + 1), names, fontsize=7)
        axes[2].set_title("min bulk ESS per second", fontsize=9)
    fig.tight_layout()
    return fig
