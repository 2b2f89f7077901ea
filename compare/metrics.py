"""Performance measures with Monte Carlo standard errors (Morris, White & Crowther 2019, Table 6),
computed from the results table only, never by refitting.

One small function per measure returns (estimate, MCSE), like rsimsum's performance.R, so each can be
checked against a hand computation.  `est` are the estimates over replications, `true` the truth
(constant under a fixed DGP; per replication under a prior DGP or for group effects, which is why
bias works with est - true), `se` the model SEs, `lower`/`upper` the intervals.

Point measures read each parameter's primary row (`performance`); interval measures are kept per
parameter and interval type (`intervals`), so Wald z, t(J-1), profile and posterior intervals read side by side.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from compare.fitresult import DESCRIPTORS, primary
from compare.status import FAILED, Status

Pair = tuple[float, float]
NAN: Pair = (math.nan, math.nan)


def bias(est: np.ndarray, true: np.ndarray) -> Pair:
    """mean(est - true); MCSE sqrt(sum((d - mean d)^2) / (n (n - 1)))."""
    d = est - true
    n = d.size
    if n < 2:
        return NAN
    return float(d.mean()), float(np.sqrt(((d - d.mean()) ** 2).sum() / (n * (n - 1))))


def relative_bias(est: np.ndarray, true: np.ndarray) -> Pair:
    """bias / true, defined when the truth is one non-zero constant."""
    if true.size < 2 or not np.all(true == true[0]) or true[0] == 0:
        return NAN
    b, m = bias(est, true)
    return b / true[0], m / abs(true[0])


def empirical_se(est: np.ndarray) -> Pair:
    """sd(est); MCSE EmpSE / sqrt(2 (n - 1))."""
    n = est.size
    if n < 2:
        return NAN
    emp = float(est.std(ddof=1))
    return emp, emp / math.sqrt(2 * (n - 1))


def mse(est: np.ndarray, true: np.ndarray) -> Pair:
    """mean((est - true)^2); MCSE sqrt(sum(((est - true)^2 - MSE)^2) / (n (n - 1)))."""
    sq = (est - true) ** 2
    n = sq.size
    if n < 2:
        return NAN
    m = float(sq.mean())
    return m, float(np.sqrt(((sq - m) ** 2).sum() / (n * (n - 1))))


def rmse(est: np.ndarray, true: np.ndarray) -> Pair:
    """sqrt(MSE); MCSE by the delta method, MCSE(MSE) / (2 RMSE)."""
    m, s = mse(est, true)
    if not m > 0:
        return (math.sqrt(m), math.nan) if m == 0 else NAN
    r = math.sqrt(m)
    return r, s / (2 * r)


def model_se(se: np.ndarray) -> Pair:
    """sqrt(mean(se^2)); MCSE sqrt(var(se^2) / (4 n ModSE^2))."""
    n = se.size
    if n < 2:
        return NAN
    mod = math.sqrt(float((se**2).mean()))
    if mod == 0:
        return mod, math.nan
    return mod, math.sqrt(float((se**2).var(ddof=1)) / (4 * n * mod**2))


def relative_error_model_se(est: np.ndarray, se: np.ndarray) -> Pair:
    """100 (ModSE / EmpSE - 1); MCSE 100 (ModSE/EmpSE) sqrt(var(se^2) / (4 n ModSE^4) + 1 / (2 (n - 1)))."""
    n = se.size
    emp, _ = empirical_se(est)
    mod, _ = model_se(se)
    if n < 2 or not emp > 0 or not mod > 0:
        return NAN
    ratio = mod / emp
    mcse = 100 * ratio * math.sqrt(float((se**2).var(ddof=1)) / (4 * n * mod**4) + 1 / (2 * (n - 1)))
    return 100 * (ratio - 1), mcse


def proportion(hits: np.ndarray) -> Pair:
    """A rate and its binomial MCSE sqrt(p (1 - p) / n)."""
    n = hits.size
    if n == 0:
        return NAN
    p = float(np.mean(hits))
    return p, math.sqrt(p * (1 - p) / n)


def coverage(lower: np.ndarray, upper: np.ndarray, true: np.ndarray) -> Pair:
    return proportion((lower <= true) & (true <= upper))


def bias_eliminated_coverage(lower: np.ndarray, upper: np.ndarray, est: np.ndarray) -> Pair:
    """Coverage of mean(est) instead of the truth: separates bias from interval width."""
    centre = est.mean()
    return proportion((lower <= centre) & (centre <= upper))


def median_width(lower: np.ndarray, upper: np.ndarray) -> Pair:
    """median(upper - lower), beside the mean because a few Wald intervals on the log-SD scale at a boundary are
    1e+36 wide and carry the mean; MCSE distribution-free from the order statistics around the median,
    (w_(u) - w_(l)) / (2 x 1.96) with l, u = n/2 -/+ 1.96 sqrt(n)/2 (the binomial interval for the median)."""
    w = np.sort(upper - lower)
    n = w.size
    if n < 2:
        return NAN
    half = 1.96 * math.sqrt(n) / 2
    lo, hi = max(0, int(math.floor(n / 2 - half))), min(n - 1, int(math.ceil(n / 2 + half)) - 1)
    with np.errstate(invalid="ignore"):
        spread = float(w[hi] - w[lo])
    return float(np.median(w)), spread / (2 * 1.96)


def interval_width(lower: np.ndarray, upper: np.ndarray) -> Pair:
    """mean(upper - lower); MCSE sd(width) / sqrt(n). Coverage alone rewards wide intervals: at equal coverage
    the engine with the narrower intervals is the better one, so the two are read together."""
    w = upper - lower
    n = w.size
    if n < 2:
        return NAN
    return float(w.mean()), float(w.std(ddof=1) / math.sqrt(n))


def rejection(lower: np.ndarray, upper: np.ndarray, null: float = 0.0) -> Pair:
    """Share of intervals excluding the null value: power, or type I error when the truth is the null."""
    return proportion((lower > null) | (upper < null))


def relative_precision(est_a: np.ndarray, est_b: np.ndarray) -> Pair:
    """100 ((EmpSE_b / EmpSE_a)^2 - 1): % gain in precision of A over reference B, on paired replications;
    MCSE 200 (EmpSE_b / EmpSE_a)^2 sqrt((1 - rho^2) / (n - 1)), rho the correlation of the two estimates."""
    n = est_a.size
    if n < 3:
        return NAN
    ea, eb = est_a.std(ddof=1), est_b.std(ddof=1)
    if not ea > 0 or not eb > 0:
        return NAN
    rho = float(np.corrcoef(est_a, est_b)[0, 1])
    ratio2 = (eb / ea) ** 2
    return 100 * (ratio2 - 1), 200 * ratio2 * math.sqrt(max(0.0, 1 - rho**2) / (n - 1))


SBC_MIN_RANKS = 10  # fewer ranks than this give no verdict (chi-square nor ECDF band)


def sbc_uniformity(ranks: np.ndarray, n_draws: int, bins: int | None = None) -> tuple[float, float, int]:
    """Chi-square test that SBC ranks (0..n_draws) are uniform; returns (statistic, p-value, bins).

    Bins are equal-width over the n_draws + 1 possible ranks, as many as keep >= 5 expected per bin
    (at most 20)."""
    n = ranks.size
    if n < SBC_MIN_RANKS:
        return math.nan, math.nan, 0
    bins = bins or int(max(2, min(20, n // 5, n_draws + 1)))
    edges = np.linspace(0, n_draws + 1, bins + 1)
    counts, _ = np.histogram(ranks, bins=edges)
    expected = n * np.diff(edges) / (n_draws + 1)
    stat = float(((counts - expected) ** 2 / expected).sum())
    return stat, float(stats.chi2.sf(stat, bins - 1)), bins


# ---- SBC: ECDF difference with simultaneous bands (Saeilynoja, Buerkner & Vehtari 2022; the SBC R package) -----
#
# A chi-square test needs bins and says nothing about where ranks go wrong; the ECDF of the fractional ranks
# against the uniform CDF shows it (a U-shaped histogram is an S-shaped ECDF difference: posteriors too narrow),
# and a band that holds the whole uniform curve with probability 1 - alpha turns the picture into a test.
# Conventions follow the SBC package: fractional rank u = (rank + 1) / (n_draws + 1); K evaluation points,
# K = n_draws + 1 for fewer than 50 ranks, else min(n_draws + 1, n); point i counts the ranks below
# floor(i (n_draws + 1) / K). One difference: a point is placed at that threshold / (n_draws + 1), the value
# of u it tests, which is exactly the uniform CDF there (the package writes i / K; the same when K divides
# n_draws + 1, as with K = n_draws + 1).

SBC_LEVEL = 0.95
# Uniform rank sets simulated to find the band: the false-alarm rate of the band it gives has a Monte Carlo
# error of about sqrt(0.05 * 0.95 / 5000) = 0.003 around its target.
SBC_SIMULATIONS = 5000
SBC_SEED = 20220502  # fixed, so a band (hence every verdict) is the same in every report


def sbc_grid(n: int, n_draws: int) -> np.ndarray:
    """Rank thresholds t_0..t_K of the ECDF's evaluation points (the SBC package's choice of K, above):
    the ECDF at point i is the share of ranks < t_i, i.e. of fractional ranks <= t_i / (n_draws + 1)."""
    k = n_draws + 1 if n < 50 else min(n_draws + 1, n)
    return np.floor(np.arange(k + 1) * (n_draws + 1) / k).astype(int)


def _counts_below(ranks: np.ndarray, thresholds: np.ndarray, n_draws: int) -> np.ndarray:
    """Per row of integer ranks (0..n_draws): how many are < each threshold (rows x thresholds)."""
    ranks = np.atleast_2d(ranks)
    rows = ranks.shape[0]
    flat = (ranks + (n_draws + 1) * np.arange(rows)[:, None]).ravel()
    hist = np.bincount(flat, minlength=rows * (n_draws + 1)).reshape(rows, n_draws + 1)
    below = np.concatenate([np.zeros((rows, 1), dtype=int), hist.cumsum(axis=1)], axis=1)
    return below[:, thresholds]


def _tail_stat(counts: np.ndarray, n: int, z: np.ndarray) -> np.ndarray:
    """2 min_i min(P(X <= c_i), P(X >= c_i)), X ~ Binomial(n, z_i), per row of counts: how far into a tail
    the worst point of an ECDF lies. A set leaves the band exactly when this is below gamma."""
    return 2 * np.minimum(stats.binom.cdf(counts, n, z), stats.binom.sf(counts - 1, n, z)).min(axis=-1)


@functools.lru_cache(maxsize=128)
def sbc_gamma(
    n: int, n_draws: int, level: float = SBC_LEVEL, sims: int = SBC_SIMULATIONS, seed: int = SBC_SEED
) -> float:
    """The pointwise level gamma that makes the band simultaneous, by the paper's simulation method: `sims` sets
    of n uniform ranks (drawn as the discrete ranks themselves), each set's tail statistic, and gamma = the
    largest simulated value with at most 1 - level of the sets below it (ties cannot push the rate above)."""
    rng = np.random.default_rng(seed)
    thresholds = sbc_grid(n, n_draws)
    counts = _counts_below(rng.integers(0, n_draws + 1, size=(sims, n)), thresholds, n_draws)
    g = np.sort(_tail_stat(counts, n, thresholds / (n_draws + 1)))
    return float(g[int(math.floor((1 - level) * sims + 1e-9))])


def sbc_band_counts(n: int, z: np.ndarray, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """Per point z_i, the counts c (of n) with P(X <= c) >= gamma/2 and P(X >= c) >= gamma/2, X ~ Binomial(n, z_i):
    the band's lower and upper limits, the same rule as the tail statistic so picture and verdict agree."""
    c = np.arange(n + 1)[:, None]
    ok = (2 * stats.binom.cdf(c, n, z) >= gamma) & (2 * stats.binom.sf(c - 1, n, z) >= gamma)
    return ok.argmax(axis=0), n - ok[::-1].argmax(axis=0)


@dataclass(frozen=True)
class EcdfCheck:
    """One parameter's ECDF difference ECDF(z) - z on the grid, and the simultaneous band around 0."""

    z: np.ndarray
    diff: np.ndarray
    lower: np.ndarray  # band for the difference
    upper: np.ndarray
    inside: bool  # the whole curve in the band: no evidence against uniform ranks at 1 - level
    gamma: float
    n: int

    @property
    def max_abs_diff(self) -> float:
        return float(np.abs(self.diff).max())


@functools.lru_cache(maxsize=128)
def _band(n: int, n_draws: int, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    thresholds = sbc_grid(n, n_draws)
    z = thresholds / (n_draws + 1)
    gamma = sbc_gamma(n, n_draws, level)
    lower, upper = sbc_band_counts(n, z, gamma)
    return thresholds, z, lower, upper, gamma


def sbc_ecdf(ranks: np.ndarray, n_draws: int, level: float = SBC_LEVEL) -> EcdfCheck:
    """ECDF difference of SBC ranks (0..n_draws) with its simultaneous `level` band, and the verdict."""
    r = np.rint(np.asarray(ranks, float)).astype(int)
    if r.size == 0 or r.min() < 0 or r.max() > n_draws:
        raise ValueError(f"SBC ranks must lie in 0..{n_draws}")
    n = r.size
    thresholds, z, lower, upper, gamma = _band(n, int(n_draws), float(level))
    counts = _counts_below(r, thresholds, n_draws)[0]
    inside = bool(np.all((lower <= counts) & (counts <= upper)))
    return EcdfCheck(
        z=z, diff=counts / n - z, lower=lower / n - z, upper=upper / n - z, inside=inside, gamma=gamma, n=n
    )


# ---- tables ---------------------------------------------------------------------------------------

PARAM_KEYS = ["scenario", "cell", "engine", "parameter"]
INTERVAL_KEYS = [*PARAM_KEYS, "interval"]  # interval measures: one row per parameter x interval type
ROW_KEYS = ["scenario", "cell", "rep", "engine", "parameter"]  # one fit's rows of one parameter
FIT_KEYS = ["scenario", "cell", "engine"]
RUNTIME_COLUMNS = ("wall_s", "cpu_s")  # per fit: quantiles of each in fit_summary (cpu_s is what compare judges)
NO_INTERVAL = "none"


def estimate_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Rows of successful fits that name a parameter (every interval row)."""
    return table[(table["status"] == Status.OK) & table["parameter"].notna()]


def primary_rows(table: pd.DataFrame) -> pd.DataFrame:
    """One row per fit and parameter, its primary row: what every point measure reads, so a parameter with
    three interval types still counts once."""
    return primary(estimate_rows(table))


def described(out: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """`out` (one row per parameter key) with what each parameter is (param_class, group, term, group_level)
    beside its name, taken from the results table's own columns: readers select on those, never on names."""
    if "parameter" not in out or any(c in out for c in DESCRIPTORS):
        return out
    parts = table.loc[table["parameter"].notna(), ["parameter", *DESCRIPTORS]].drop_duplicates("parameter")
    merged = out.merge(parts, on="parameter", how="left")
    at = list(out.columns).index("parameter") + 1
    order = [*out.columns[:at], *DESCRIPTORS, *out.columns[at:]]
    return merged[order]


def _put(out: dict[str, Any], name: str, pair: Pair) -> None:
    out[name], out[f"{name}_mcse"] = pair


def _point_measures(g: pd.DataFrame) -> dict[str, float]:
    """Bias, empirical and model SE, MSE/RMSE of one parameter's primary rows."""
    ok = g[g["estimate"].notna()]
    est, true = ok["estimate"].to_numpy(float), ok["true"].to_numpy(float)
    has_truth = np.isfinite(true)
    out: dict[str, float] = {"n": float(len(ok))}
    e_t, t_t = est[has_truth], true[has_truth]
    _put(out, "bias", bias(e_t, t_t))
    _put(out, "relative_bias", relative_bias(e_t, t_t))
    _put(out, "empse", empirical_se(est))
    _put(out, "mse", mse(e_t, t_t))
    _put(out, "rmse", rmse(e_t, t_t))
    se = ok["se"].to_numpy(float)
    se_ok = np.isfinite(se)
    _put(out, "modse", model_se(se[se_ok]) if se_ok.all() else NAN)
    _put(out, "relerr_modse", relative_error_model_se(est, se) if se_ok.all() else NAN)
    out["true_mean"] = float(np.mean(t_t)) if t_t.size else math.nan
    return out


def _interval_measures(g: pd.DataFrame) -> dict[str, float]:
    """Coverage, bias-eliminated coverage, rejection and width of one parameter's intervals of one type."""
    ok = g[g["estimate"].notna()]
    est, true = ok["estimate"].to_numpy(float), ok["true"].to_numpy(float)
    has_truth = np.isfinite(true)
    lo, hi = ok["lower"].to_numpy(float), ok["upper"].to_numpy(float)
    iv = np.isfinite(lo) & np.isfinite(hi)
    out: dict[str, float] = {"n": float(iv.sum())}
    _put(out, "coverage", coverage(lo[iv & has_truth], hi[iv & has_truth], true[iv & has_truth]))
    _put(out, "be_coverage", bias_eliminated_coverage(lo[iv], hi[iv], est) if iv.any() else NAN)
    _put(out, "rejection", rejection(lo[iv], hi[iv]))
    _put(out, "width", interval_width(lo[iv], hi[iv]))
    _put(out, "width_median", median_width(lo[iv], hi[iv]))
    return out


def _per_key(rows: pd.DataFrame, keys: list[str], measures) -> pd.DataFrame:
    if rows.empty:  # every column still there, so readers need no special case for a run without estimates
        return pd.DataFrame(columns=keys + list(measures(rows.iloc[:0])))
    with np.errstate(over="ignore"):  # an SE of ~1e200 (a log-scale interval at a boundary) squares to inf, honestly
        out = [{**dict(zip(keys, key)), **measures(g)} for key, g in rows.groupby(keys, sort=True)]
    return pd.DataFrame(out)


def performance(table: pd.DataFrame) -> pd.DataFrame:
    """Per (scenario, cell, engine, parameter): the point measures and their MCSE, from the primary rows of
    successful fits. Interval measures are `intervals`'."""
    return described(_per_key(primary_rows(table), PARAM_KEYS, _point_measures), table)


def intervals(table: pd.DataFrame) -> pd.DataFrame:
    """Per (scenario, cell, engine, parameter, interval): coverage, bias-eliminated coverage, rejection rate
    (power or type I error) and mean width with MCSE, each interval type on its own row ("wald-z", "wald-t",
    "profile", "quantile", ...); rows without an interval ("none") are left out."""
    rows = estimate_rows(table)
    rows = rows[rows["interval"].notna() & (rows["interval"] != NO_INTERVAL)]
    return described(_per_key(rows, INTERVAL_KEYS, _interval_measures), table)


def precision_vs(table: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Relative precision of every engine against `reference`, on the replications both fitted."""
    ok = primary_rows(table)
    ok = ok[ok["estimate"].notna()]
    wide = ok.pivot_table(index=["scenario", "cell", "parameter", "rep"], columns="engine", values="estimate")
    if reference not in wide.columns:
        return described(pd.DataFrame(columns=PARAM_KEYS + ["relprec", "relprec_mcse"]), table)
    keys = wide.index.droplevel("rep").unique()
    parts = [
        _relative_precision_by_key(wide[[engine, reference]], engine, reference, keys)
        for engine in wide.columns
        if engine != reference
    ]
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return described(out.reindex(columns=[*PARAM_KEYS, "reference", "relprec", "relprec_mcse", "n_paired"]), table)


def _relative_precision_by_key(pair: pd.DataFrame, engine: str, reference: str, keys: pd.MultiIndex) -> pd.DataFrame:
    """relative_precision of `engine` against `reference` for every (scenario, cell, parameter) at once, on the
    replications both estimated (the same formula, vectorised: one groupby instead of a loop over keys)."""
    pair = pair.dropna()
    g = pair.groupby(level=[0, 1, 2])
    n = g.size().reindex(keys, fill_value=0)
    ea, eb = g[engine].std().reindex(keys), g[reference].std().reindex(keys)
    centred = pair - g.transform("mean")
    cov = (centred[engine] * centred[reference]).groupby(level=[0, 1, 2]).sum().reindex(keys) / (n - 1)
    ratio2 = (eb / ea) ** 2
    valid = (n >= 3) & (ea > 0) & (eb > 0)
    rho = (cov / (ea * eb)).clip(-1, 1)
    value = (100 * (ratio2 - 1)).where(valid)
    mcse = (200 * ratio2 * np.sqrt((1 - rho**2).clip(lower=0) / (n - 1))).where(valid)
    out = keys.to_frame(index=False)
    out.columns = ["scenario", "cell", "parameter"]
    return out.assign(
        engine=engine,
        reference=reference,
        relprec=value.to_numpy(),
        relprec_mcse=mcse.to_numpy(),
        n_paired=n.to_numpy(),
    )


def _rate(put, name: str, flags: pd.Series) -> None:
    put(name, proportion(flags.dropna().astype(bool).to_numpy()) if flags.notna().any() else NAN)


REFERENCE_TOL = 1e-3  # log-likelihood units: within this of the reference's optimum counts as reaching it


def reached_reference(fits: pd.DataFrame, reference: str | None) -> pd.Series:
    """Per fit (one row each): did it reach the reference engine's optimum on the same dataset?

    Compared only where both fits maximised the same likelihood (`criterion`: REML or ML) and the reference's
    log-likelihood is finite; NA elsewhere (and for the reference itself). An engine never refits another to
    know this: it is read from the two fits' stored results."""
    out = pd.Series(pd.NA, index=fits.index, dtype="boolean")
    if reference is None or "criterion" not in fits or fits["criterion"].isna().all():
        return out
    keys = ["scenario", "cell", "rep", "criterion"]
    ref = fits[(fits["engine"] == reference) & (fits["status"] == Status.OK) & np.isfinite(fits["loglik"])]
    ref = ref[keys + ["loglik"]].rename(columns={"loglik": "ref_loglik"})
    others = fits[(fits["engine"] != reference) & (fits["status"] == Status.OK) & fits["criterion"].notna()]
    joined = others[keys + ["loglik"]].reset_index().merge(ref, on=keys).set_index("index")
    finite = np.isfinite(joined["loglik"])
    out.loc[joined.index] = finite & (joined["loglik"].where(finite, -np.inf) >= joined["ref_loglik"] - REFERENCE_TOL)
    return out


def engine_kinds(table: pd.DataFrame) -> dict[str, str]:
    """'sampler' or 'optimiser' per engine label, read from the results: an engine reports sampler diagnostics
    (divergences, R-hat) on some fit iff it samples. Read once for the whole run, so a cell where a sampler
    failed every fit still shows it as a sampler."""
    diag = [c for c in ("divergences", "rhat_max") if c in table]
    has = table[diag].notna().any(axis=1) if diag else pd.Series(False, index=table.index)
    return {e: "sampler" if bool(flag) else "optimiser" for e, flag in has.groupby(table["engine"]).any().items()}


def fit_summary(table: pd.DataFrame, reference: str | None = None) -> pd.DataFrame:
    """Per (scenario, cell, engine): failure, singular, boundary, convergence, reference-optimum and sampler
    rates with binomial MCSE, and runtime quantiles. Skipped fits (engine cannot express the model) are
    counted apart, not as failures."""
    fits = table.drop_duplicates(["scenario", "cell", "rep", "engine"]).copy()
    fits["reached_reference_optimum"] = reached_reference(fits, reference)
    kinds = engine_kinds(table)
    rows = []
    for key, g in fits.groupby(FIT_KEYS, sort=True):
        out: dict[str, Any] = dict(zip(FIT_KEYS, key))
        out["kind"] = kinds[key[2]]
        attempted = g[g["status"] != Status.SKIPPED]
        ok = g[g["status"] == Status.OK]
        out.update(
            {
                "fits": float(len(attempted)),
                "ok": float(len(ok)),
                "skipped": float((g["status"] == Status.SKIPPED).sum()),
            }
        )
        put = functools.partial(_put, out)

        put("failure_rate", proportion(attempted["status"].isin(list(FAILED)).to_numpy()) if len(attempted) else NAN)
        _rate(put, "singular_rate", ok["singular"])
        _rate(put, "corr_at_bound_rate", ok["corr_at_bound"])
        _rate(put, "var_at_zero_rate", ok["var_at_zero"])
        _rate(put, "nonconvergence_rate", ~ok["converged"].astype("boolean"))
        _rate(put, "reached_reference_rate", ok["reached_reference_optimum"])
        if ok["divergences"].notna().any():
            _rate(put, "divergent_fit_rate", (ok["divergences"] > 0).where(ok["divergences"].notna()))
            _rate(put, "rhat_gt_101_rate", (ok["rhat_max"] > 1.01).where(ok["rhat_max"].notna()))
            hits = ok["treedepth_hits"] if "treedepth_hits" in ok else pd.Series(pd.NA, index=ok.index)
            _rate(put, "treedepth_rate", (hits > 0).where(hits.notna()))
            out["ess_bulk_per_s_median"] = float(ok["ess_bulk_per_s"].median())
        for col in RUNTIME_COLUMNS:
            times = ok[col].dropna() if col in ok else ok["wall_s"].iloc[:0]  # cpu_s: absent in old runs
            for q, label in ((0.1, "q10"), (0.5, "median"), (0.9, "q90")):
                out[f"{col}_{label}"] = float(times.quantile(q)) if len(times) else math.nan
        out["compile_s_total"] = float(ok["compile_s"].fillna(0).sum())
        out["compile_count_total"] = float(ok["compile_count"].fillna(0).sum())
        rows.append(out)
    return pd.DataFrame(rows)


def sbc_summary(table: pd.DataFrame, level: float = SBC_LEVEL) -> pd.DataFrame:
    """Per (scenario, cell, engine, parameter) of prior-DGP runs: SBC rank uniformity by the chi-square test and
    by the ECDF difference's simultaneous band (`inside_band`), from at least SBC_MIN_RANKS ranks.

    Ranks out of different numbers of draws cannot share one histogram or ECDF: only the fits with the
    parameter's most common draw count are used (every fit, when an engine's settings fix the count)."""
    have = table[table["sbc_rank"].notna() & table["sbc_draws"].notna()]  # the harness ranks primary rows only
    rows = []
    for key, g in have.groupby(PARAM_KEYS, sort=True):
        n_draws = int(g["sbc_draws"].mode().max())
        ranks = g.loc[g["sbc_draws"] == n_draws, "sbc_rank"].to_numpy(float)
        stat, p, bins = sbc_uniformity(ranks, n_draws)
        row = {
            **dict(zip(PARAM_KEYS, key)),
            "n": len(ranks),
            "draws": n_draws,
            "bins": bins,
            "chi2": stat,
            "p_value": p,
            "grid": math.nan,
            "gamma": math.nan,
            "ecdf_max_abs_diff": math.nan,
            "inside_band": pd.NA,
        }
        if len(ranks) >= SBC_MIN_RANKS:
            check = sbc_ecdf(ranks, n_draws, level)
            row.update(
                grid=len(check.z) - 1, gamma=check.gamma, ecdf_max_abs_diff=check.max_abs_diff, inside_band=check.inside
            )
        rows.append(row)
    out = pd.DataFrame(
        rows,
        columns=[
            *PARAM_KEYS,
            "n",
            "draws",
            "bins",
            "chi2",
            "p_value",
            "grid",
            "gamma",
            "ecdf_max_abs_diff",
            "inside_band",
        ],
    )
    out["inside_band"] = out["inside_band"].astype("boolean")
    return described(out, table)


AGREEMENT_CLASSES = ("b", "sd", "cor", "sigma", "phi", "mrp", "pred_new")


def agreement(table: pd.DataFrame) -> pd.DataFrame:
    """Every pair of engines fitted on the same datasets: per parameter, the standardised difference of their
    estimates d = (est_a - est_b) / sqrt((se_a^2 + se_b^2) / 2) (SE or posterior-SD units), its mean with MCSE
    sd(d)/sqrt(n), and mean |d|. Two engines that agree have mean d near 0 and mean |d| well below 1."""
    ok = primary_rows(table)
    ok = ok[ok["estimate"].notna() & ok["se"].notna()]
    ok = ok[ok["param_class"].isin(AGREEMENT_CLASSES)]
    if ok.empty:
        return described(pd.DataFrame(columns=["scenario", "cell", "parameter", "engine_a", "engine_b", "n"]), table)
    est = ok.pivot_table(index=["scenario", "cell", "parameter", "rep"], columns="engine", values="estimate")
    se = ok.pivot_table(index=["scenario", "cell", "parameter", "rep"], columns="engine", values="se")
    engines = sorted(est.columns)
    rows = []
    for i, a in enumerate(engines):
        for b in engines[i + 1 :]:
            scale = np.sqrt((se[a] ** 2 + se[b] ** 2) / 2)
            d = ((est[a] - est[b]) / scale.where(scale > 0)).dropna()
            for key, g in d.groupby(level=[0, 1, 2]):
                n = len(g)
                rows.append(
                    {
                        "scenario": key[0],
                        "cell": key[1],
                        "parameter": key[2],
                        "engine_a": a,
                        "engine_b": b,
                        "n": n,
                        "mean_d": float(g.mean()),
                        "mean_d_mcse": float(g.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan,
                        "mean_abs_d": float(g.abs().mean()),
                    }
                )
    return described(pd.DataFrame(rows), table)


# ---- warnings tally and the sensitivity view -------------------------------------------------------------------

# The warnings a reader checks before trusting a cell (SimDesign's tally per condition), as fit_summary columns;
# each a share of fits with its binomial MCSE in `<name>_mcse`.
WARNINGS = {
    "failure_rate": "failed",
    "singular_rate": "singular",
    "nonconvergence_rate": "not converged",
    "divergent_fit_rate": "divergent",
    "treedepth_rate": "tree depth reached",
    "rhat_gt_101_rate": "R-hat > 1.01",
}


def warnings_tally(fits: pd.DataFrame) -> pd.DataFrame:
    """Long form of the warnings of fit_summary: per (scenario, cell, engine, warning) the share of fits, its MCSE
    and the fits it is out of; a warning an engine cannot raise (divergences of an optimiser) has no row."""
    rows = []
    for _, f in fits.iterrows():
        for col, label in WARNINGS.items():
            if col in f and pd.notna(f[col]):
                rows.append(
                    {
                        "scenario": f["scenario"],
                        "cell": f["cell"],
                        "engine": f["engine"],
                        "kind": f["kind"],
                        "warning": label,
                        "share": f[col],
                        "share_mcse": f[f"{col}_mcse"],
                        "fits": f["fits"],
                    }
                )
    return pd.DataFrame(rows, columns=["scenario", "cell", "engine", "kind", "warning", "share", "share_mcse", "fits"])


def flagged_fits(table: pd.DataFrame) -> pd.Series:
    """Per row: does its fit count as doubtful? Samplers: divergent transitions; optimisers: the engine said it did
    not converge. What the sensitivity view leaves out."""
    kinds = engine_kinds(table)
    sampler = table["engine"].map(kinds).eq("sampler")
    divergent = table["divergences"].fillna(0).astype(float) > 0 if "divergences" in table else False
    not_converged = table["converged"].astype("boolean").eq(False).fillna(False).astype(bool)
    return (sampler & divergent) | (~sampler & not_converged)


SENSITIVITY_CLASSES = ("b", "sd", "cor", "sigma", "phi")


def sensitivity(table: pd.DataFrame) -> pd.DataFrame:
    """Coverage of the primary interval and bias, with MCSE, of every b, sd, cor and sigma parameter: over all
    successful fits (`_all`) beside those that neither diverged (samplers) nor failed to converge (optimisers)
    (`_clean`), per (scenario, cell, engine, parameter), with the fits each reads (`n_all`, `n_clean`)."""
    rows = primary_rows(table)
    rows = rows[rows["param_class"].isin(SENSITIVITY_CLASSES)]
    rows = rows.assign(_flag=flagged_fits(rows).to_numpy())
    parts = []
    for suffix, part in (("all", rows), ("clean", rows[~rows["_flag"]])):
        point = _per_key(part, PARAM_KEYS, _point_measures)
        iv = _per_key(part, PARAM_KEYS, _interval_measures)
        keep = point[[*PARAM_KEYS, "n", "bias", "bias_mcse"]].merge(
            iv[[*PARAM_KEYS, "coverage", "coverage_mcse"]], on=PARAM_KEYS, how="outer"
        )
        parts.append(keep.set_index(PARAM_KEYS).add_suffix(f"_{suffix}"))
    out = parts[0].join(parts[1], how="left").reset_index()
    if len(out):
        out["n_clean"] = out["n_clean"].fillna(0)
    return described(out, table)


def primary_intervals(ivals: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """The rows of the interval table (`intervals`) of each engine's primary interval type: per parameter, the
    type its primary rows carry most often, i.e. what the engine reports first."""
    rows = primary_rows(table)
    rows = rows[rows["interval"].notna() & (rows["interval"] != NO_INTERVAL)]
    if rows.empty or ivals.empty:
        return ivals.iloc[:0]
    kind = rows.groupby(PARAM_KEYS)["interval"].agg(lambda s: s.mode().iloc[0]).rename("interval").reset_index()
    return ivals.merge(kind, on=[*PARAM_KEYS, "interval"])
