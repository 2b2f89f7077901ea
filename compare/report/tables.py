"""Tables for papers: the headline answers and the full measures, as CSV and LaTeX (booktabs)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def _with_mcse(df: pd.DataFrame, value: str) -> pd.Series:
    return df[value].map(lambda v: f"{v:.3f}") + " (" + df[f"{value}_mcse"].map(lambda v: f"{v:.3f}") + ")"


def headline_tables(perf: pd.DataFrame, fits: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The three questions a reader asks first: coverage, boundary fits, runtime, by engine and cell."""
    out: dict[str, pd.DataFrame] = {}
    if len(perf):
        fixed = perf[perf["parameter"].str.startswith("b[") & perf["coverage"].notna()].copy()
        if len(fixed):
            fixed["coverage (MCSE)"] = _with_mcse(fixed, "coverage")
            cols = ["scenario", "cell", "parameter", "engine", "n", "coverage (MCSE)"]
            if "coverage_t" in fixed:
                fixed["t(J-1) coverage"] = fixed["coverage_t"].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
                cols.append("t(J-1) coverage")
            out["headline_coverage"] = fixed[cols]
    if len(fits):
        sing = fits[fits["singular_rate"].notna()].copy()
        if len(sing):
            sing["singular (MCSE)"] = _with_mcse(sing, "singular_rate")
            out["headline_boundary"] = sing[["scenario", "cell", "engine", "fits", "singular (MCSE)"]]
        rt = fits.groupby("engine").agg(fits=("fits", "sum"), median_s=("wall_s_median", "median"),
                                        q90_s=("wall_s_q90", "max"), compile_s=("compile_s_total", "sum"))
        out["headline_runtime"] = rt.reset_index()
    return out


def write_tables(folder: Path, tables: dict[str, pd.DataFrame]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        if df is None:
            continue
        df.to_csv(folder / f"{name}.csv", index=False)
        if len(df):
            styler = df.style.format(precision=3, na_rep="").hide(axis="index")
            (folder / f"{name}.tex").write_text(styler.to_latex(hrules=True))
