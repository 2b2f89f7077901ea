"""The measures the figures draw, in one long frame (rsimsum's `summary` in long form): one row per
(scenario, cell, engine, parameter, measure) with its value and Monte Carlo SE, read from the run's summary.

Coverage, width and rejection are those of each engine's primary interval (what it reports first), so a figure
shows one point per engine; point measures come from the primary rows. Every figure's CSV is a slice of this."""

from __future__ import annotations

import pandas as pd

from compare import metrics
from compare.summary import RunSummary

INTERVAL_MEASURES = ("coverage", "width", "width_median", "rejection", "be_coverage")
POINT_MEASURES = ("bias", "rmse", "empse", "modse", "relative_bias", "relerr_modse")
KEYS = ["scenario", "cell", "engine", "parameter", "param_class", "group", "term"]
COLUMNS = [*KEYS, "interval", "true_mean", "n", "measure", "value", "mcse"]
TITLES = {
    "coverage": "coverage",
    "width": "mean interval width",
    "width_median": "median interval width",
    "rejection": "rejection rate (power or type I error)",
    "be_coverage": "bias-eliminated coverage",
    "bias": "bias",
    "rmse": "RMSE",
    "empse": "empirical SE",
    "modse": "model SE",
    "relative_bias": "relative bias",
    "relerr_modse": "relative error in model SE (%)",
}
MEASURES = tuple(TITLES)


def _long(df: pd.DataFrame, measures, interval: bool) -> pd.DataFrame:
    if df.empty:
        return pd.DataFrame(columns=COLUMNS)
    out = []
    for m in measures:
        if m not in df:
            continue
        part = df[[c for c in [*KEYS, "interval", "n"] if c in df]].copy()
        part["measure"], part["value"], part["mcse"] = m, df[m].to_numpy(), df[f"{m}_mcse"].to_numpy()
        if not interval:
            part["interval"] = ""
        out.append(part)
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=COLUMNS)


def long_measures(result: RunSummary, table: pd.DataFrame) -> pd.DataFrame:
    """Every figure's numbers: primary-interval measures and point measures, long, with the mean truth."""
    ivals = metrics.primary_intervals(result.intervals, table)
    out = pd.concat(
        [_long(ivals, INTERVAL_MEASURES, True), _long(result.performance, POINT_MEASURES, False)], ignore_index=True
    )
    truth = (
        result.performance[["scenario", "cell", "engine", "parameter", "true_mean"]]
        if len(result.performance)
        else pd.DataFrame(columns=["scenario", "cell", "engine", "parameter", "true_mean"])
    )
    out = out.merge(truth, on=["scenario", "cell", "engine", "parameter"], how="left")
    return out.reindex(columns=COLUMNS)


CLASS_ORDER = ("b", "sd", "cor", "sigma", "phi", "mrp", "pred_new")


def key_parameters(long: pd.DataFrame, scenario: str, limit: int = 8) -> list[str]:
    """The parameters a scenario's figures show: b, then sd, cor, sigma (mrp, pred_new), never the group effects;
    in name order within a class, at most `limit`."""
    d = long[(long["scenario"] == scenario) & long["param_class"].isin(CLASS_ORDER)]
    named = d[["parameter", "param_class"]].drop_duplicates()
    named = named.assign(_r=named["param_class"].map(CLASS_ORDER.index)).sort_values(["_r", "parameter"])
    return named["parameter"].tolist()[:limit]


def key_parameter(long: pd.DataFrame, scenario: str) -> str | None:
    """The one parameter a single-parameter figure shows by default: the slope of x if any, else the first
    fixed effect, else the first key parameter."""
    names = key_parameters(long, scenario, limit=1000)
    d = long[(long["scenario"] == scenario) & (long["param_class"] == "b")]
    for term in ("x", *sorted(set(d["term"].dropna()) - {"Intercept"}), "Intercept"):
        hit = d[d["term"] == term]["parameter"]
        if len(hit):
            return str(hit.iloc[0])
    return names[0] if names else None
