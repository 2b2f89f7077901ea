"""A comparison of two runs as Markdown: short enough for a pull-request comment, whole enough to act on.

Reads only what `regress.compare_runs` returned: counts per table, the flagged measures by |z| (at most
`limit` of them, the rest counted), runtime per engine (median CPU and wall ratios over its cells) and the
flagged runtime cells, and the notes that qualify the comparison.
"""

from __future__ import annotations

import pandas as pd

from compare.regress import Thresholds, any_flagged, notes

MEASURE_TABLES = ("parameters", "intervals", "fits", "realdata")
MEASURE_COLUMNS = [
    "scenario",
    "cell",
    "engine",
    "parameter",
    "interval",
    "measure",
    "value_base",
    "value_run",
    "diff",
    "z",
]
RUNTIME_COLUMNS = [
    "scenario",
    "cell",
    "engine",
    "cpu_s_median_base",
    "cpu_s_median_run",
    "cpu_ratio",
    "wall_s_median_base",
    "wall_s_median_run",
    "wall_ratio",
    "judged",
]


def _table(df: pd.DataFrame, columns: list[str]) -> str:
    shown = df[[c for c in columns if c in df.columns]].astype(object).where(lambda d: d.notna(), "")
    return shown.to_markdown(index=False, floatfmt=".4g", missingval="")


def headline(result: dict[str, pd.DataFrame], thresholds: Thresholds) -> str:
    verdict = "**CHANGED**" if any_flagged(result) else "no change"
    return (
        f"{verdict} beyond |z| > {thresholds.z:g} ({thresholds.adjust_label()}) or runtime x"
        f"{thresholds.runtime_ratio:g} (median {thresholds.runtime} seconds per fit)"
    )


def counts(result: dict[str, pd.DataFrame]) -> str:
    rows = [
        {"table": name, "compared": len(df), "flagged": int(df["flagged"].sum()) if len(df) else 0}
        for name, df in result.items()
    ]
    return pd.DataFrame(rows).to_markdown(index=False)


def flagged_measures(result: dict[str, pd.DataFrame], limit: int = 30) -> str:
    frames = [df[df["flagged"]] for name, df in result.items() if name in MEASURE_TABLES and len(df)]
    hit = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if hit.empty:
        return "No measure moved beyond its Monte Carlo error."
    hit = hit.assign(abs_z=hit["z"].abs()).sort_values("abs_z", ascending=False)
    more = f"\n\n... and {len(hit) - limit} more (see the JSON)" if len(hit) > limit else ""
    return _table(hit.head(limit), MEASURE_COLUMNS) + more


def runtime_by_engine(rt: pd.DataFrame) -> str:
    """Per engine, the median over its cells of the CPU and wall ratios (run / base)."""
    if rt.empty:
        return "No runtime in common."
    agg = (
        rt.groupby("engine")
        .agg(
            cells=("ratio", "size"),
            cpu_ratio=("cpu_ratio", "median"),
            wall_ratio=("wall_ratio", "median"),
            flagged=("flagged", "sum"),
        )
        .reset_index()
    )
    return agg.to_markdown(index=False, floatfmt=".3g")


def to_markdown(
    result: dict[str, pd.DataFrame],
    base_name: str,
    run_name: str,
    thresholds: Thresholds,
    title: str = "hbench compare",
) -> str:
    rt = result["runtime"]
    parts = [
        f"### {title}: `{base_name}` -> `{run_name}`",
        "",
        headline(result, thresholds),
        "",
        counts(result),
        "",
        "#### Flagged measures",
        "",
        flagged_measures(result),
        "",
        "#### Runtime (ratio run / baseline)",
        "",
        runtime_by_engine(rt),
    ]
    if len(rt) and rt["flagged"].any():
        parts += ["", "Flagged runtime cells:", "", _table(rt[rt["flagged"]], RUNTIME_COLUMNS)]
    parts += [f"\n> {n}" for n in notes(result, thresholds)]
    return "\n".join(parts) + "\n"
