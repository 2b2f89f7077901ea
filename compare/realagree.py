"""Published datasets have no truth, so what a real-data run measures is agreement: between engines within a
run (the report's table) and between two runs of the same suite (`hbench compare`).

Both read one summary per (scenario, cell, engine, parameter) of the primary rows: the estimate and SE
(posterior mean and SD for samplers) averaged over the fits (a frequentist engine fits once; a sampler once per
seed), and for samplers the Monte Carlo SE of that mean, sd / sqrt(bulk ESS) per fit, combined over the fits.
Frequentist engines are set against lme4 fitted with the same criterion (REML or ML), in lme4's SEs; samplers
against rstanarm, in the Monte Carlo SE of the difference. The differences a deterministic engine shows are
optimiser tolerances or a different optimum; a sampler's are Monte Carlo error or different priors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from compare import metrics
from compare.status import Status

MODEL_CLASSES = ("b", "sd", "cor", "sigma")  # the model's own parameters: what agreement is judged on
KEYS = ["scenario", "cell", "engine", "parameter"]


def estimates(table: pd.DataFrame) -> pd.DataFrame:
    """Per (scenario, cell, engine, parameter) of b, sd, cor and sigma: fits, mean estimate, mean SE, the MCSE
    of the mean (samplers; NaN for optimisers), criterion and mean log-likelihood."""
    rows = metrics.primary_rows(table)
    rows = rows[rows["param_class"].isin(MODEL_CLASSES)].copy()
    ess = rows["ess_bulk"].astype(float) if "ess_bulk" in rows else pd.Series(np.nan, index=rows.index)
    rows["mcse2"] = rows["se"].astype(float) ** 2 / ess.where(ess > 0)
    out = (
        rows.groupby(KEYS, sort=True)
        .agg(
            fits=("estimate", "size"),
            estimate=("estimate", "mean"),
            se=("se", "mean"),
            mcse2=("mcse2", "sum"),
            n_mcse=("mcse2", "count"),
            criterion=("criterion", "first"),
            loglik=("loglik", "mean"),
        )
        .reset_index()
    )
    out["mcse"] = np.where(out["n_mcse"] > 0, np.sqrt(out["mcse2"]) / out["fits"], np.nan)
    return out.drop(columns=["mcse2", "n_mcse"])


def _labels(manifest: dict, engine: str, table: pd.DataFrame) -> list[str]:
    """The labels a run gave an engine, from its manifest (else labels starting with its name), in the order
    they serve as the reference: the engine with its default settings first (lme4, then lme4-ml), a variant
    that changes its optimiser last (used where the others failed)."""
    entries = [e for e in manifest.get("engines", []) if e.get("name") == engine]
    if not entries:
        return sorted({e for e in table["engine"].unique() if str(e).startswith(engine)})
    moved = [bool((e.get("settings") or {}).get("glmer_optimizer", "nlminbwrap") != "nlminbwrap") for e in entries]
    return [e.get("label") or e["name"] for _, e in sorted(zip(moved, entries), key=lambda p: p[0])]


def agreement(table: pd.DataFrame, manifest: dict) -> pd.DataFrame:
    """Each frequentist engine against lme4 of the same criterion (diff / lme4's SE, SE ratio, log-likelihood
    difference), each sampler against rstanarm (diff / MCSE of the difference), per parameter."""
    est = estimates(table)
    if est.empty:
        return pd.DataFrame()
    kinds = metrics.engine_kinds(table)
    est["kind"] = est["engine"].map(kinds)
    lme4, rstanarm = _labels(manifest, "lme4", table), _labels(manifest, "rstanarm", table)
    parts = [_against(est, lme4, "optimiser", ["criterion"]), _against(est, rstanarm, "sampler", [])]
    out = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else pd.DataFrame()
    return out


def _against(est: pd.DataFrame, refs: list[str], kind: str, also: list[str]) -> pd.DataFrame:
    keys = ["scenario", "cell", "parameter", *also]
    ref = est[est["engine"].isin(refs)].assign(rank=lambda d: d["engine"].map(refs.index))
    ref = ref.sort_values("rank", kind="stable").drop_duplicates(keys)  # per parameter, the first that fitted
    others = est[est["kind"] == kind]
    if ref.empty or others.empty:
        return pd.DataFrame()
    cols = ["estimate", "se", "mcse", "loglik", "engine"]
    both = others.merge(ref[keys + cols].rename(columns={c: f"ref_{c}" for c in cols}), on=keys)
    both = both[both["engine"] != both["ref_engine"]].reset_index(drop=True)
    diff = both["estimate"] - both["ref_estimate"]
    both["diff"] = diff
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "optimiser":
            both["diff_in_se"] = diff / both["ref_se"].where(both["ref_se"] > 0)
            both["se_ratio"] = both["se"] / both["ref_se"].where(both["ref_se"] > 0)
            both["loglik_diff"] = both["loglik"] - both["ref_loglik"]
        else:
            both["diff_in_mcse"] = diff / np.sqrt(both["mcse"] ** 2 + both["ref_mcse"] ** 2)
            both["sd_ratio"] = both["se"] / both["ref_se"].where(both["ref_se"] > 0)
    both = both.rename(columns={"ref_engine": "reference"})
    return both.drop(columns=[c for c in ("ref_mcse", "ref_loglik") if c in both])


def agreement_by_engine(agree: pd.DataFrame) -> pd.DataFrame:
    """One line per (engine, reference): cells and parameters compared, the largest |diff| in SEs (optimisers)
    or in MCSEs (samplers) and where, the median SE ratio, the largest |log-likelihood difference|."""
    if agree.empty:
        return pd.DataFrame()
    out = []
    for (engine, ref), g in agree.groupby(["engine", "reference"], sort=True):
        unit = "diff_in_se" if "diff_in_se" in g and g["diff_in_se"].notna().any() else "diff_in_mcse"
        d = g[unit].abs() if unit in g else pd.Series(dtype=float)
        worst = g.loc[d.idxmax()] if d.notna().any() else None
        ratio = g["se_ratio"] if "se_ratio" in g and g["se_ratio"].notna().any() else g.get("sd_ratio")
        ll = g["loglik_diff"].abs() if "loglik_diff" in g else pd.Series(dtype=float)
        out.append(
            {
                "engine": engine,
                "reference": ref,
                "cells": len(g[["scenario", "cell"]].drop_duplicates()),
                "parameters": len(g),
                "unit": "SE" if unit == "diff_in_se" else "MCSE",
                "max_abs_diff": float(d.max()) if d.notna().any() else np.nan,
                "worst": f"{worst['scenario']}:{worst['cell']} {worst['parameter']}" if worst is not None else "",
                "median_se_ratio": float(ratio.median()) if ratio is not None and ratio.notna().any() else np.nan,
                "max_abs_loglik_diff": float(ll.drop_duplicates().max()) if ll.notna().any() else np.nan,
            }
        )
    return pd.DataFrame(out)


def fit_outcomes(table: pd.DataFrame) -> pd.DataFrame:
    """Per (scenario, cell, engine): fits by status, median wall seconds, largest peak memory (MB), converged and
    singular shares,
    divergences, and the distinct warnings (the first line of each), so a real-data run's runtimes and
    warnings read in one table."""
    fits = table.drop_duplicates(["scenario", "cell", "rep", "engine"])
    rows = []
    for (scenario, cell, engine), g in fits.groupby(["scenario", "cell", "engine"], sort=True):
        ok = g[g["status"] == Status.OK]
        warned = sorted({w for text in ok["warnings"].dropna() for w in str(text).splitlines() if w.strip()})
        errors = sorted({str(e).splitlines()[0] for e in g.loc[g["status"] != Status.OK, "error"].dropna()})
        rows.append(
            {
                "scenario": scenario,
                "cell": int(cell),
                "engine": engine,
                "status": ", ".join(f"{s} {n}" for s, n in g["status"].value_counts().sort_index().items()),
                "wall_s_median": float(ok["wall_s"].median()) if len(ok) else np.nan,
                "peak_rss_mb": _max(ok, "peak_rss_mb"),
                "converged": float(ok["converged"].astype(float).mean()) if len(ok) else np.nan,
                "singular": float(ok["singular"].astype(float).mean()) if ok["singular"].notna().any() else np.nan,
                "divergences": float(ok["divergences"].sum()) if ok["divergences"].notna().any() else np.nan,
                "warnings": _first(warned, 3, 120),
                "error": _first(errors, 3, 160),
            }
        )
    return pd.DataFrame(rows)


def _max(rows: pd.DataFrame, col: str) -> float:
    values = rows[col].astype(float) if col in rows else pd.Series(dtype=float)
    return float(values.max()) if values.notna().any() else np.nan


def _first(lines: list[str], n: int, width: int) -> str:
    """The first `n` lines, each cut at `width`, and how many more there were."""
    more = f" (+{len(lines) - n})" if len(lines) > n else ""
    return " | ".join(line[:width] for line in lines[:n]) + more


def is_realdata(manifest: dict) -> bool:
    """A run that fitted published datasets (its fingerprint records them)."""
    return bool((manifest.get("fingerprint") or {}).get("datasets"))


SE_TOL = 0.01  # frequentist engines: |change| beyond this many SEs (the baseline's) is a change of optimum
LOGLIK_TOL = 0.01  # and a log-likelihood that moved by more than this


def judge_runs(base: pd.DataFrame, run: pd.DataFrame, z: float, se_tol: float = SE_TOL) -> pd.DataFrame:
    """Two real-data runs of the same suite, per (scenario, cell, engine, parameter): an optimiser's estimate
    judged by its change in the baseline's SEs (flagged beyond `se_tol`; an SE that is missing or zero, as
    at a boundary, falls back to the change relative to the estimate's size) and its log-likelihood by
    LOGLIK_TOL; a sampler's posterior mean by its change in the MCSE of the difference (flagged beyond `z`).
    Columns as the other compare tables (value_base, value_run, diff, z, flagged), with `scale` (what diff was
    divided by) and `limit` (what |z| is held to)."""
    kinds = {**metrics.engine_kinds(base), **metrics.engine_kinds(run)}
    eb, er = estimates(base), estimates(run)
    both = eb.merge(er, on=KEYS, suffixes=("_base", "_run"))
    if both.empty:
        return pd.DataFrame(
            columns=[*KEYS, "measure", "value_base", "value_run", "diff", "scale", "z", "limit", "flagged"]
        )
    both["kind"] = both["engine"].map(kinds)
    sampler = both["kind"] == "sampler"
    size = np.maximum(both["estimate_base"].abs(), both["estimate_run"].abs())
    se = both["se_base"].where(both["se_base"] > 0)
    scale = np.where(sampler, np.sqrt(both["mcse_base"] ** 2 + both["mcse_run"] ** 2), se.fillna(size))
    out = both[KEYS].assign(
        measure=np.where(sampler, "posterior_mean", "estimate"),
        value_base=both["estimate_base"],
        value_run=both["estimate_run"],
        diff=both["estimate_run"] - both["estimate_base"],
        scale=scale,
        limit=np.where(sampler, z, se_tol),
    )
    ll = _loglik_rows(both[~sampler])
    out = pd.concat([out, ll], ignore_index=True) if len(ll) else out
    with np.errstate(divide="ignore", invalid="ignore"):
        out["z"] = np.where(out["diff"] == 0, 0.0, out["diff"] / out["scale"])
    out["flagged"] = out["z"].abs() > out["limit"]
    return out


def _loglik_rows(both: pd.DataFrame) -> pd.DataFrame:
    """One row per optimiser fit: its log-likelihood, judged on LOGLIK_TOL (scale 1)."""
    fits = both.drop_duplicates(["scenario", "cell", "engine"])
    fits = fits[fits["loglik_base"].notna() & fits["loglik_run"].notna()]
    return pd.DataFrame(
        {
            **{k: fits[k].to_numpy() for k in ("scenario", "cell", "engine")},
            "parameter": "loglik",
            "measure": "loglik",
            "value_base": fits["loglik_base"].to_numpy(),
            "value_run": fits["loglik_run"].to_numpy(),
            "diff": (fits["loglik_run"] - fits["loglik_base"]).to_numpy(),
            "scale": 1.0,
            "limit": LOGLIK_TOL,
        }
    )
