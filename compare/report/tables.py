"""Tables for papers: the headline answers and the full measures, as CSV and LaTeX (booktabs)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

FIT_KEYS = ["scenario", "cell", "engine"]


def _with_mcse(df: pd.DataFrame, value: str) -> pd.Series:
    return df[value].map(lambda v: f"{v:.3f}") + " (" + df[f"{value}_mcse"].map(lambda v: f"{v:.3f}") + ")"


def headline_tables(ivals: pd.DataFrame, fits: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The three questions a reader asks first: coverage (one row per engine and interval type), boundary fits,
    runtime, by engine and cell. `ivals` is the summary's interval table."""
    out: dict[str, pd.DataFrame] = {}
    if len(ivals):
        fixed = ivals[(ivals["param_class"] == "b") & ivals["coverage"].notna()].copy()
        if len(fixed):
            fixed["coverage (MCSE)"] = _with_mcse(fixed, "coverage")
            fixed = _by_interval(fixed, ["scenario", "cell", "parameter", "engine"])
            out["headline_coverage"] = fixed[
                ["scenario", "cell", "parameter", "engine", "interval", "n", "coverage (MCSE)"]
            ]
    if len(fits):
        sing = fits[fits["singular_rate"].notna()].copy()
        if len(sing):
            sing["singular (MCSE)"] = _with_mcse(sing, "singular_rate")
            out["headline_boundary"] = sing[["scenario", "cell", "engine", "fits", "singular (MCSE)"]]
        rt = fits.groupby("engine").agg(
            fits=("fits", "sum"),
            median_s=("wall_s_median", "median"),
            q90_s=("wall_s_q90", "max"),
            compile_s=("compile_s_total", "sum"),
        )
        out["headline_runtime"] = rt.reset_index()
    return out


def write_tables(folder: Path, tables: dict[str, pd.DataFrame], tex: dict[str, pd.DataFrame] | None = None) -> None:
    """Each table as CSV and booktabs LaTeX. `tex` gives the text form of a table whose CSV is numbers (a value
    and its MCSE in two columns) for the LaTeX file, where a reader wants "value (MCSE)" in one cell."""
    folder.mkdir(parents=True, exist_ok=True)
    tex = tex or {}
    for name, df in tables.items():
        if df is None:
            continue
        df.to_csv(folder / f"{name}.csv", index=False)
        shown = tex.get(name, df)
        if len(shown) and name not in CSV_ONLY:
            (folder / f"{name}.tex").write_text(booktabs(shown))


CSV_ONLY = ("measures",)  # the figures' numbers in long form: a data file, not a table for a paper
_LATEX_SPECIAL = {
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "\\": r"\textbackslash{}",
}


def _latex_cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    text = f"{value:.3f}" if isinstance(value, float) else str(value)
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def booktabs(df: pd.DataFrame) -> str:
    """`df` as a booktabs tabular (floats to 3 decimals, blanks for missing), written directly: pandas' Styler
    takes seconds for a table of thousands of rows, and the report writes dozens."""
    cols = "".join("r" if pd.api.types.is_numeric_dtype(df[c]) else "l" for c in df.columns)
    lines = [
        f"\\begin{{tabular}}{{{cols}}}",
        "\\toprule",
        " & ".join(_latex_cell(c) for c in df.columns) + " \\\\",
        "\\midrule",
    ]
    lines += [" & ".join(_latex_cell(v) for v in row) + " \\\\" for row in df.itertuples(index=False)]
    lines += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(lines)


# ---- the seed's question: does the Bayesian version work fine? -------------------------------------------------

HEADLINE_CLASSES = ("b", "sd", "cor")
HEADLINE_PARAM_MEASURES = ("coverage", "width")
HEADLINE_FIT_MEASURES = ("divergent_fit_rate", "singular_rate", "failure_rate")
FIT_MEASURE_TITLES = {
    "divergent_fit_rate": "fits with divergences",
    "singular_rate": "singular fits",
    "failure_rate": "failed fits",
}
# The order interval types are read in, as the seed argues: Wald z, its small-J corrections, likelihood and
# resampling intervals, then the posterior's; types not named here follow in name order.
INTERVAL_ORDER = ("wald-z", "wald-t", "satterthwaite", "kenward-roger", "cr2", "profile", "bootstrap", "quantile")
LABEL_SEP = " · "


def interval_label(engine: str, interval: Any) -> str:
    """'lme4 · wald-t': an engine and one of its interval types, the unit the coverage tables compare."""
    return engine if interval is None or pd.isna(interval) or interval == "" else f"{engine}{LABEL_SEP}{interval}"


def _by_interval(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """`df` sorted by `keys`, then by interval type (INTERVAL_ORDER, then name)."""
    rank = df["interval"].map(lambda v: INTERVAL_ORDER.index(v) if v in INTERVAL_ORDER else len(INTERVAL_ORDER))
    return (
        df.assign(_rank=rank)
        .sort_values([*keys, "_rank", "interval"], kind="stable", ignore_index=True)
        .drop(columns="_rank")
    )


def _headline_parameters(ivals: pd.DataFrame) -> list[str]:
    """b, then sd, then cor parameters (the order a model is read in), each class in name order."""
    named = ivals.loc[ivals["param_class"].isin(HEADLINE_CLASSES), ["parameter", "param_class"]].drop_duplicates()
    rank = named["param_class"].map(HEADLINE_CLASSES.index)
    return named.assign(_rank=rank).sort_values(["_rank", "parameter"])["parameter"].tolist()


def _wide_intervals(ivals: pd.DataFrame) -> pd.DataFrame:
    """Per (scenario, cell, engine, interval): `<measure> <parameter>` and `... mcse` columns of the headline
    parameters, measure by measure in the order a model is read in."""
    names = _headline_parameters(ivals)
    keys = [*FIT_KEYS, "interval"]
    d = ivals[ivals["parameter"].isin(names)]
    out = d[keys].drop_duplicates().set_index(keys)
    for measure in HEADLINE_PARAM_MEASURES:
        for name in names:
            rows = d[d["parameter"] == name].set_index(keys)
            out[f"{measure} {name}"] = rows[measure]
            out[f"{measure} {name} mcse"] = rows[f"{measure}_mcse"]
    return out.reset_index()


def headline(ivals: pd.DataFrame, fits: pd.DataFrame) -> pd.DataFrame:
    """The seed lecture's question as data: for every (scenario, cell) where samplers and optimisers fitted the
    same datasets, one row per engine and interval type (e.g. lme4's wald-z, wald-t and profile intervals) with
    the coverage and mean interval width of each b, sd and cor parameter that interval is given for, and the
    engine's share of fits with divergences (samplers), of singular fits (optimisers) and of failed fits, each
    with its MCSE (`<measure> <parameter>` and `... mcse` columns). An engine without any interval keeps one
    row (blank interval). Numbers only: rendering is headline_display's."""
    if fits.empty or "kind" not in fits:
        return pd.DataFrame(columns=[*FIT_KEYS, "interval", "kind", "fits"])
    attempted = fits[fits["fits"] > 0]
    mixed = attempted.groupby(["scenario", "cell"])["kind"].transform("nunique") > 1
    base = attempted[mixed].reindex(
        columns=[*FIT_KEYS, "kind", "fits", "ok", *[f"{m}{s}" for m in HEADLINE_FIT_MEASURES for s in ("", "_mcse")]]
    )
    if base.empty:
        return base.assign(interval=pd.Series(dtype=object))
    wide = _wide_intervals(ivals.merge(base[FIT_KEYS], on=FIT_KEYS))
    out = base.merge(wide, on=FIT_KEYS, how="left")
    out = out[[*FIT_KEYS, "interval", *[c for c in out.columns if c not in (*FIT_KEYS, "interval")]]]
    return _by_interval(out, ["scenario", "cell", "kind", "engine"])


def _fmt(value: Any, mcse: Any, digits: str) -> str:
    """'value (MCSE)', or blank where the measure does not apply."""
    if value is None or pd.isna(value):
        return ""
    return f"{value:{digits}}" + ("" if mcse is None or pd.isna(mcse) else f" ({mcse:{digits}})")


def headline_display(data: pd.DataFrame) -> pd.DataFrame:
    """The headline as text, "value (MCSE)" per measure, one row per engine and interval type labelled
    "engine · interval": coverage and rates to 3 decimals, widths to 3 significant digits, trailing zeros kept
    (their scale is the parameter's)."""
    out = data[["scenario", "cell"]].copy()
    out["engine"] = [interval_label(e, i) for e, i in zip(data["engine"], data["interval"])]
    out["kind"] = data["kind"]
    out["fits"] = data["fits"].map(lambda v: "" if pd.isna(v) else f"{int(v)}")
    columns = [c for c in data.columns if c.startswith(HEADLINE_PARAM_MEASURES) and not c.endswith(" mcse")]
    for col in columns:
        digits = "#.3g" if col.startswith("width") else ".3f"
        out[col] = [_fmt(v, s, digits) for v, s in zip(data[col], data[f"{col} mcse"])]
    for m in HEADLINE_FIT_MEASURES:
        out[FIT_MEASURE_TITLES[m]] = [_fmt(v, s, ".3f") for v, s in zip(data[m], data[f"{m}_mcse"])]
    return out


def headline_cells(display: pd.DataFrame) -> dict[tuple[str, int], pd.DataFrame]:
    """One table per (scenario, cell): rows engines x interval types, without the columns that are blank for
    every row there (another cell's parameters)."""
    out = {}
    for (scenario, cell), g in display.groupby(["scenario", "cell"], sort=True):
        g = g.drop(columns=["scenario", "cell"])
        out[(scenario, int(cell))] = g.loc[:, (g != "").any(axis=0)]
    return out


# ---- controls and calibration ----------------------------------------------------------------------------------


def _setting_text(value: Any) -> str:
    if value is None or (isinstance(value, (list, tuple)) and not value):
        return "(default)"  # TOML has no null and an empty list means the engine's own choice (e.g. priors)
    if isinstance(value, (list, tuple)):
        return "[" + "; ".join(str(v) for v in value) + "]"
    return str(value)


def engine_controls(manifest: dict, kinds: dict[str, str] | None = None) -> pd.DataFrame:
    """Each engine of the run with the controls that produced its numbers, as the manifest recorded them
    (chains, warmup, draws, adapt_delta, max_treedepth, priors for samplers; reml, profile, ... for others),
    so a coverage is never read apart from the settings behind it."""
    rows = []
    for e in manifest.get("engines", []):
        label = e.get("label") or e["name"]
        settings = e.get("settings") or {}
        rows.append(
            {
                "engine": label,
                "name": e["name"],
                "kind": (kinds or {}).get(label, ""),
                "settings": ", ".join(f"{k}={_setting_text(v)}" for k, v in settings.items()) or "(defaults)",
                "replications": "all" if e.get("max_reps") is None else f"first {e['max_reps']}",
                "scenarios": ", ".join(e.get("only") or []) or "all",
            }
        )
    return pd.DataFrame(rows, columns=["engine", "name", "kind", "settings", "replications", "scenarios"])


def sbc_verdicts(sbc: pd.DataFrame, scenario: str | None = None, cell: int | None = None) -> pd.DataFrame:
    """Per engine and parameter: ranks, chi-square p, whether the ECDF difference stays inside the simultaneous
    95% band, and its largest excursion. Group effects r[...] (dozens per cell) stay in tables/sbc.csv."""
    d = sbc[sbc["param_class"] != "r"] if len(sbc) else sbc
    if scenario is not None:
        d = d[(d["scenario"] == scenario) & (d["cell"] == cell)]
    if d.empty:
        return pd.DataFrame()
    inside = d["inside_band"].map(lambda v: "" if pd.isna(v) else ("yes" if v else "no"))
    text = lambda v, spec: "" if math.isnan(v) else f"{v:{spec}}"  # noqa: E731
    return pd.DataFrame(
        {
            "scenario": d["scenario"],
            "cell": d["cell"],
            "engine": d["engine"],
            "parameter": d["parameter"],
            "n": d["n"].astype(int),
            "draws": d["draws"].astype(int),
            "chi-square p": d["p_value"].map(lambda v: text(v, ".3g")),
            "inside 95% band": inside,
            "max abs(ECDF - z)": d["ecdf_max_abs_diff"].map(lambda v: text(v, ".3f")),
        }
    )
