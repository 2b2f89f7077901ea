"""Pieces shared by the frequentist engines (MixedLM, BayesMixedGLM, lme4): interval rows in the
common naming convention (b rows: a primary Wald z row and a "wald-t" row), warning capture and the
t(J-1) degrees of freedom.

Kept out of the registry (leading underscore): it defines no engine.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from scipy import stats

from compare.design import Design
from compare.fitresult import interval_row, name_b, name_cor, name_r, name_sd
from compare.settings import DEFAULT_LEVEL

LEVEL = DEFAULT_LEVEL  # interval level unless an engine is given another (suite `level`, `hbench fit --level`)


def z_quantile(level: float) -> float:
    """Normal quantile of a central `level` interval (1.96 for 0.95)."""
    return float(stats.norm.ppf(0.5 + level / 2))


NAN = math.nan


def t_df(design: Design) -> int:
    """Degrees of freedom of the t(J-1) interval: J = the fewest levels of any grouping factor.

    With several factors the smallest J is the conservative choice (the seed's argument is about
    the number of groups informing the intercept's variance)."""
    if not design.blocks:
        return max(design.n - design.X.shape[1], 1)
    return max(min(b.n_levels for b in design.blocks) - 1, 1)


def fixed_rows(
    names: list[str], est: np.ndarray, se: np.ndarray, df: int | None, level: float = LEVEL
) -> list[dict[str, Any]]:
    """b[...] rows: the primary row with a Wald z interval, then (given `df`) a "wald-t" row with the t(df)
    interval, the seed's small-J correction, wherever the SE is finite."""
    z = z_quantile(level)
    tq = float(stats.t.ppf(0.5 + level / 2, df)) if df is not None else NAN
    rows = []
    for name, b, s in zip(names, np.asarray(est, float), np.asarray(se, float), strict=True):
        row = {
            "parameter": name_b(name),
            "estimate": b,
            "se": s,
            "lower": b - z * s,
            "upper": b + z * s,
            "interval": "wald-z",
        }
        if not np.isfinite(s):  # the fit's covariance could not be computed (a singular Hessian)
            note = "no finite SE for this fixed effect (covariance not computed)"
            rows.append({**row, "interval": "none", "note": note})
            continue
        rows.append(row)
        if df is not None:
            rows.append(interval_row(row, "wald-t", b - tq * s, b + tq * s))
    return rows


def sd_row(
    group: str,
    term: str,
    sd: float,
    se_log: float,
    how: str = "wald-log-sd",
    note: str | None = None,
    level: float = LEVEL,
) -> dict[str, Any]:
    """sd[g][term] with a Wald interval on the log-SD scale (SE of the SD is sd * se_log)."""
    ok, z = np.isfinite(se_log) and sd > 0, z_quantile(level)
    with np.errstate(over="ignore"):  # a huge log-scale SE gives an infinite upper bound, honestly
        lo, hi = (sd * float(np.exp(-z * se_log)), sd * float(np.exp(z * se_log))) if ok else (NAN, NAN)
    row = {
        "parameter": name_sd(group, term),
        "estimate": sd,
        "se": sd * se_log if ok else NAN,
        "lower": lo,
        "upper": hi,
        "interval": how if ok else "none",
    }
    if not ok:
        row["note"] = note or "no finite SE for this variance parameter (estimate at or near zero?)"
    return row


def phi_row(phi: float, se_log: float, note: str | None = None, level: float = LEVEL) -> dict[str, Any]:
    """negbinomial's dispersion with a Wald interval on log(phi), the scale both lme4 (glmer.nb's theta, here)
    and glmmTMB (its nbinom2 dispersion parameter) estimate it on; SE of phi is phi * se_log. Named "wald-log"
    and not "wald-log-sd": phi is no SD, so `variance_rows` adds no variance-scale row for it."""
    ok, z = bool(np.isfinite(se_log)) and phi > 0, z_quantile(level)
    with np.errstate(over="ignore"):
        lo, hi = (phi * float(np.exp(-z * se_log)), phi * float(np.exp(z * se_log))) if ok else (NAN, NAN)
    row = {
        "parameter": "phi",
        "estimate": phi,
        "se": phi * se_log if ok else NAN,
        "lower": lo,
        "upper": hi,
        "interval": "wald-log" if ok else "none",
    }
    if not ok:
        row["note"] = note or "no finite SE for log(phi)"
    return row


def variance_rows(rows: list[dict[str, Any]], level: float = LEVEL) -> list[dict[str, Any]]:
    """For every SD (and sigma) with a Wald interval on the log-SD scale, an extra "wald-variance" row: Wald
    on the variance, s^2 +- z * 2 s SE(s), the interval of MLwiN, SAS PROC MIXED and HLM, which Maas & Hox
    (2005) and much of the sample-size literature report. Given as SD bounds (the square roots; 0 where the
    variance interval goes below zero), so its coverage of the SD is its coverage of the variance."""
    z, out = z_quantile(level), []
    for row in rows:
        if row.get("interval") != "wald-log-sd":
            continue
        s, se = float(row["estimate"]), float(row["se"])
        lo, hi = s * s - z * 2 * s * se, s * s + z * 2 * s * se
        out.append(interval_row(row, "wald-variance", math.sqrt(max(lo, 0.0)), math.sqrt(hi), note=None))
    return out


def cor_row(
    group: str, a: str, b: str, r: float, se_r: float, note: str | None = None, level: float = LEVEL
) -> dict[str, Any]:
    """cor[g][a,b] with a Wald interval on Fisher's atanh scale (keeps it inside (-1, 1))."""
    ok = np.isfinite(se_r) and abs(r) < 1
    row = {
        "parameter": name_cor(group, a, b),
        "estimate": r,
        "se": se_r if ok else NAN,
        "lower": NAN,
        "upper": NAN,
        "interval": "wald-atanh" if ok else "none",
    }
    if ok:
        q, z, sz = z_quantile(level), math.atanh(r), se_r / (1 - r * r)
        row["lower"], row["upper"] = math.tanh(z - q * sz), math.tanh(z + q * sz)
    else:
        row["note"] = note or "no finite SE for this correlation (at the boundary?)"
    return row


def group_effect_rows(
    group: str,
    levels: list[str],
    terms: list[str],
    values: np.ndarray,
    sds: np.ndarray | None,
    note: str | None = None,
    level: float = LEVEL,
) -> list[dict[str, Any]]:
    """r[g][level,term] rows: conditional mode/mean with a normal interval from the conditional SD."""
    rows, z = [], z_quantile(level)
    for i, lv in enumerate(levels):
        for k, term in enumerate(terms):
            est = float(values[i, k])
            s = float(sds[i, k]) if sds is not None else NAN
            row = {
                "parameter": name_r(group, lv, term),
                "estimate": est,
                "se": s,
                "lower": est - z * s,
                "upper": est + z * s,
                "interval": "conditional-sd" if np.isfinite(s) else "none",
            }
            if not np.isfinite(s):
                row["note"] = note or "no conditional SD from this engine"
            rows.append(row)
    return rows


def cov_blocks_to_rows(
    group: str,
    terms: list[str],
    cov: np.ndarray,
    cov_se: np.ndarray | None,
    how: str = "wald-log-sd",
    level: float = LEVEL,
) -> list[dict[str, Any]]:
    """sd and cor rows of one block from its covariance matrix and, optionally, the covariance of the
    packed lower triangle (row-major tril order, variance units) for delta-method SEs."""
    q = len(terms)
    sds = np.sqrt(np.clip(np.diag(cov), 0, None))
    tril = [(int(i), int(j)) for i, j in zip(*np.tril_indices(q), strict=True)]
    pos = {ij: k for k, ij in enumerate(tril)}
    rows = []
    for i, term in enumerate(terms):
        var = cov[i, i]
        se_var = safe_sqrt(float(cov_se[pos[(i, i)], pos[(i, i)]])) if cov_se is not None else NAN
        se_log = se_var / (2 * var) if var > 0 else NAN
        rows.append(sd_row(group, term, float(sds[i]), se_log, how, level=level))
    for i in range(q):
        for j in range(i):
            r = cov[i, j] / (sds[i] * sds[j]) if sds[i] > 0 and sds[j] > 0 else NAN
            se_r = NAN
            if cov_se is not None and np.isfinite(r):
                grad = np.zeros(len(tril))  # d r / d (v_jj, v_ij, v_ii)
                grad[pos[(i, j)]] = 1 / (sds[i] * sds[j])
                grad[pos[(i, i)]] = -0.5 * r / cov[i, i]
                grad[pos[(j, j)]] = -0.5 * r / cov[j, j]
                se_r = safe_sqrt(float(grad @ cov_se @ grad))
            rows.append(cor_row(group, terms[j], terms[i], float(r), se_r, level=level))
    return rows


def safe_sqrt(v: float) -> float:
    """sqrt of a variance from an inverted Hessian; NaN when it is negative or not finite (not a minimum)."""
    v = float(v)
    return math.sqrt(v) if np.isfinite(v) and v >= 0 else NAN


@contextmanager
def captured_warnings() -> Iterator[list[str]]:
    """Collect every warning raised inside the block as 'Category: message' text."""
    texts: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield texts
    texts.extend(f"{w.category.__name__}: {w.message}" for w in caught)


def timed(func: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = func()
    return out, time.perf_counter() - start


def mrp_row(weights: np.ndarray, p_hat: np.ndarray) -> dict[str, Any]:
    """Plug-in poststratified mean: no interval (a frequentist fit gives no joint uncertainty for it)."""
    est = float(np.sum(weights * p_hat) / np.sum(weights))
    return {
        "parameter": "mrp",
        "estimate": est,
        "se": NAN,
        "lower": NAN,
        "upper": NAN,
        "interval": "none",
        "note": "plug-in estimate from the fitted expected outcomes; no interval",
    }
