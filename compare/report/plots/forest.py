"""Forest (lollipop) plot, rsimsum's `autoplot(type = "forest")`: measures of one cell, a point per engine with
its 95% Monte Carlo interval (value -/+ 1.96 MCSE) against the reference line (the nominal level for coverage,
0 for bias), one column per parameter and one row per group of measures; measures of one group share a panel
with different markers (bias beside RMSE: how far off on average, and how far off in all)."""

from __future__ import annotations

import pandas as pd

from compare.report.measures import TITLES, key_parameters
from compare.report.plots._style import engine_colours, figure
from compare.settings import DEFAULT_LEVEL

MARKERS = ("o", "^", "s", "D")
REFERENCE = {"coverage": "nominal", "be_coverage": "nominal", "bias": 0.0, "relative_bias": 0.0, "relerr_modse": 0.0}
FRONT = (("coverage",), ("bias", "rmse"))  # the front page's two rows


def data(
    long: pd.DataFrame, scenario: str, cell: int, measures: tuple[str, ...], parameters: list[str] | None = None
) -> pd.DataFrame:
    """The slice of the long measures the plot draws (also its CSV)."""
    params = parameters or key_parameters(long, scenario)
    d = long[
        (long["scenario"] == scenario)
        & (long["cell"] == cell)
        & long["measure"].isin(measures)
        & long["parameter"].isin(params)
        & long["value"].notna()
    ]
    return d.sort_values(["parameter", "engine", "measure"], kind="stable").reset_index(drop=True)


def _panel(ax, g: pd.DataFrame, measures: list[str], engines: list[str], colours: dict, nominal: float) -> None:
    for k, m in enumerate(measures):
        h = g[g["measure"] == m].set_index("engine").reindex(engines)
        y = [i + 0.2 * (k - (len(measures) - 1) / 2) for i in range(len(engines))]
        ax.errorbar(h["value"], y, xerr=1.96 * h["mcse"].fillna(0), fmt="none", ecolor="#555", lw=0.9)
        ax.scatter(
            h["value"],
            y,
            c=[colours[e] for e in engines],
            marker=MARKERS[k % len(MARKERS)],
            s=20,
            zorder=3,
            edgecolors="black",
            linewidths=0.3,
            label=TITLES.get(m, m),
        )
    ref = REFERENCE.get(measures[0])
    if ref is not None:
        ax.axvline(nominal if ref == "nominal" else ref, color="black", lw=0.8, ls="--")
    if measures[0] in ("coverage", "be_coverage"):  # a coverage axis always shows the nominal line and 1
        shown = g[g["measure"].isin(measures)]
        lo = (shown["value"] - 1.96 * shown["mcse"].fillna(0)).min()
        ax.set_xlim(min(nominal - 0.1, lo - 0.02), 1.01)
    ax.set_ylim(len(engines) - 0.5, -0.5)
    ax.tick_params(axis="x", labelsize=6)


def draw(d: pd.DataFrame, title: str, rows: tuple[tuple[str, ...], ...] = FRONT, nominal: float = DEFAULT_LEVEL):
    rows = tuple(r for r in rows if d["measure"].isin(r).any()) if len(d) else ()
    if not rows:
        return None
    params = list(dict.fromkeys(d["parameter"]))
    engines = sorted(d["engine"].unique())
    colours = engine_colours(engines)
    fig, axes = figure(len(rows) * len(params), width=1.9, height=0.28 * len(engines) + 0.9, ncols=len(params))
    for r, measures in enumerate(rows):
        present = [m for m in measures if d["measure"].eq(m).any()]
        for c, p in enumerate(params):
            ax = axes[r * len(params) + c]
            _panel(ax, d[d["parameter"] == p], present, engines, colours, nominal)
            ax.set_yticks(range(len(engines)), engines if c == 0 else [""] * len(engines), fontsize=7)
            if r == 0:
                ax.set_title(p, fontsize=7.5)
            if c == 0:
                ax.set_ylabel(" / ".join(TITLES.get(m, m) for m in present), fontsize=7)
        if len(present) > 1:
            axes[r * len(params)].legend(fontsize=5.5, loc="best", markerscale=0.8, handletextpad=0.2)
    fig.suptitle(title, fontsize=8.5)
    fig.tight_layout()
    return fig


def plot(
    long: pd.DataFrame,
    scenario: str,
    cell: int,
    rows: tuple[tuple[str, ...], ...] = FRONT,
    nominal: float = DEFAULT_LEVEL,
    cell_label: str = "",
    parameters: list[str] | None = None,
):
    """(figure, its numbers) for one cell; (None, empty) when nothing to draw."""
    d = data(long, scenario, cell, tuple(m for r in rows for m in r), parameters)
    what = "; ".join(" and ".join(TITLES.get(m, m) for m in r) for r in rows)
    note = "bars: 95% Monte Carlo intervals"
    if any("coverage" in r for r in rows):
        note += f"; dashed: nominal {nominal:g}; each engine's primary interval"
    title = f"{scenario} cell {cell}{f' ({cell_label})' if cell_label else ''}: {what} ({note})"
    return draw(d, title, rows, nominal), d
