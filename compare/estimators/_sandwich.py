"""Sandwich standard errors for gaussian mixed models, computed in Python from an engine's estimates and the data
(issue 20). Kept out of the registry (leading underscore): it defines no engine.

Both parts start from the working marginal covariance of cluster j (the outermost grouping factor),

    V_j = sigma^2 I + sum_b  [same level of b] o (Z_bj C_b Z_bj')

over every random-effect block b with covariance C_b, `o` the elementwise product with the 0/1 matrix of row pairs
that share b's level (so nested inner factors contribute their within-level blocks).

CR2 for the fixed effects (Bell & McCaffrey 2002, Pustejovsky & Tipton 2018), defined as clubSandwich 0.5.8's
vcovCR(type = "CR2") of an lmerMod and coef_test(test = "Satterthwaite") (read from its source; written anew):
working weights W_j = V_j^{-1} with V_j relative to sigma^2 (the adjustment is scale-free, but the eigenvalue
cut-off 1e-12 of G^{-1/2} is taken, as there, on that relative scale), M = (sum X_j' W_j X_j)^{-1},
r_j = y_j - X_j b (marginal residuals), U_j upper Cholesky of V_j (U_j'U_j = V_j),
G_j = U_j (V_j - X_j M X_j') U_j', A_j = U_j' G_j^{-1/2} U_j, e_j = X_j' W_j A_j r_j and
vcov = M (sum e_j e_j') M. Satterthwaite df of coefficient i: with ME_j = M X_j' W_j A_j, g_j its row i times U_j'
and h_j row i of ME_j X_j L (L L' = M), P = diag(|g_j|^2) - [h_j . h_k], df = tr(P)^2 / sum(P^2).

Robust (Huber-White, CR0) SEs of the variance components, as Maas & Hox (2004) compare with the ML ones: over
the ML log-likelihood l = sum_j l_j, l_j = -(1/2)[n_j log 2pi + log|V_j| + r_j' V_j^{-1} r_j], in
(b, variance parameters), the variance parameters being the elements of each C_b (variances and covariances)
and sigma^2, on which V_j is linear (V_j = sum_k theta_k D_jk). Scores and the observed Hessian are analytic:
with a = V^{-1} r, ds/db = X'a, dl/dtheta_k = -(1/2) tr(V^{-1} D_k) + (1/2) a' D_k a;
d2l/db db' = -X'V^{-1}X, d2l/db dtheta_k = -X'V^{-1}D_k a,
d2l/dtheta_k dtheta_l = (1/2) tr(V^{-1} D_k V^{-1} D_l) - a' D_k V^{-1} D_l a.
Sandwich = H^{-1} (sum_j s_j s_j') H^{-1}; model-based = -H^{-1}. The variance scale is the one Maas & Hox
report; the log-SD scale follows by the delta method (SE(log sd) = SE(var) / (2 var)), which at the MLE is the
sandwich taken on that scale. Only ML fits (the REML criterion is not a sum over clusters) with one grouping
factor (else the clusters are not independent units of the likelihood). A parameter at the boundary (an SD below
SD_TOL x sigma) is held there with its covariances; a |cor| above 1 - COR_TOL gives no variance sandwich (the
boundary is |cor| = 1, on which no covariance is held fixed, so no parametrisation here has zero scores there).
Estimates that are not at the optimum (a Newton step of more than OPTIMUM_TOL model SEs, as after statsmodels'
default optimiser stalls on a random-slope fit) get no variance sandwich: it needs scores that sum to zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from compare.design import BlockDesign, Design
from compare.fitresult import interval_row, name_sd

SD_TOL = 1e-4  # an SD below SD_TOL x sigma is at zero (lme4's singularity tolerance)
COR_TOL = 0.01  # a |cor| above 1 - COR_TOL is at the boundary (boundary_flags' corr_at_bound rule)
# the fit is at the ML optimum when a Newton step from it moves no parameter by more than this many model SEs
OPTIMUM_TOL = 0.01
EIG_TOL = 1e-12  # clubSandwich's matrix_power: eigenvalues at or below 10^-12 count as zero

Key = tuple[str, str, str] | str  # (group, term, term) of a variance, (group, a, b) of a covariance, or "sigma"


@dataclass
class Component:
    """One random-effect block of the fitted model: its design, covariance (y units) and whether its
    off-diagonal elements are free parameters (false for independent terms, such as MixedLM's variance
    components)."""

    block: BlockDesign
    cov: np.ndarray
    correlated: bool = True


@dataclass
class CR2Result:
    vcov: np.ndarray
    se: np.ndarray
    df: np.ndarray


@dataclass
class VarianceSandwich:
    """Variances (and covariances) with robust and model-based SEs, by (group, term i, term l) keys and "sigma"."""

    estimate: dict[Key, float] = field(default_factory=dict)
    se_robust: dict[Key, float] = field(default_factory=dict)
    se_model: dict[Key, float] = field(default_factory=dict)
    held: list[Key] = field(default_factory=list)
    score_sum: np.ndarray | None = None  # sum over clusters of the score at the estimates (0 at the MLE)
    scores: np.ndarray | None = None  # (J, k) per-cluster scores in (b, theta)


def clusters(cluster: BlockDesign) -> list[np.ndarray]:
    """Row indices of each cluster, in level order."""
    return [np.flatnonzero(cluster.index == j) for j in range(cluster.n_levels)]


def marginal_cov(components: list[Component], sigma2: float, rows: np.ndarray) -> np.ndarray:
    """V_j of the rows of one cluster (y units)."""
    V = sigma2 * np.eye(len(rows))
    for c in components:
        Z = c.block.X[rows]
        same = c.block.index[rows][:, None] == c.block.index[rows][None, :]
        V += same * (Z @ c.cov @ Z.T)
    return V


def cr2(
    design: Design, beta: np.ndarray, components: list[Component], sigma2: float, cluster: BlockDesign
) -> CR2Result:
    """CR2 covariance of the fixed effects and Satterthwaite df per coefficient (module docstring)."""
    y = design.y - design.offset
    parts = []
    for rows in clusters(cluster):
        V = marginal_cov(components, sigma2, rows) / sigma2
        parts.append((design.X[rows], y[rows] - design.X[rows] @ beta, V, np.linalg.inv(V)))
    M = np.linalg.inv(sum(X.T @ W @ X for X, _, _, W in parts))
    M = (M + M.T) / 2
    L = np.linalg.cholesky(M)
    es, gs, hs = [], [], []
    for X, r, V, W in parts:
        U = np.linalg.cholesky(V).T
        G = U @ (V - X @ M @ X.T) @ U.T
        A = U.T @ _power(G, -0.5) @ U
        ME = M @ X.T @ W @ A
        es.append(X.T @ W @ A @ r)
        gs.append(ME @ U.T)
        hs.append(ME @ X @ L)
    E = np.array(es)
    vcov = M @ E.T @ E @ M
    df = np.array([_satterthwaite(gs, hs, i) for i in range(len(beta))])
    return CR2Result(vcov, np.sqrt(np.diag(vcov)), df)


def _power(G: np.ndarray, p: float) -> np.ndarray:
    vals, vecs = np.linalg.eigh((G + G.T) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        vp = np.where(vals > EIG_TOL, np.abs(vals) ** p, 0.0)
    return (vecs * vp) @ vecs.T


def _satterthwaite(gs: list[np.ndarray], hs: list[np.ndarray], i: int) -> float:
    H = np.array([h[i] for h in hs])  # (J, p)
    P = -H @ H.T
    P[np.diag_indices_from(P)] += [float(g[i] @ g[i]) for g in gs]
    return float(np.trace(P) ** 2 / np.sum(P * P))


# ------------------------------------------------------------------------------------ variance components


def _parameters(components: list[Component], sigma: float) -> tuple[list[tuple[int, int, int]], list[Key]]:
    """Free variance parameters (component, i, l) with i >= l, and the keys of the held ones."""
    free: list[tuple[int, int, int]] = []
    held: list[Key] = []
    for k, c in enumerate(components):
        sds = np.sqrt(np.clip(np.diag(c.cov), 0, None))
        zero = sds <= SD_TOL * sigma
        q = len(sds)
        for i in range(q):
            for m in range(i + 1):
                if i != m and not c.correlated:
                    continue
                key = (c.block.group, c.block.names[i], c.block.names[m])
                cor = c.cov[i, m] / (sds[i] * sds[m]) if i != m and not (zero[i] or zero[m]) else 0.0
                if abs(cor) > 1 - COR_TOL:
                    # the boundary is |cor| = 1, not a fixed covariance: no parametrisation here has zero scores
                    raise ValueError(f"correlation of {key[1]} and {key[2]} at the boundary (|cor| > {1 - COR_TOL:g})")
                if zero[i] or zero[m]:
                    held.append(key)
                else:
                    free.append((k, i, m))
    return free, held


def _derivatives(components: list[Component], free: list[tuple[int, int, int]], rows: np.ndarray) -> list[np.ndarray]:
    """dV_j / dtheta for each free parameter, then sigma^2 (the identity)."""
    out = []
    for k, i, m in free:
        c = components[k]
        Z = c.block.X[rows]
        same = c.block.index[rows][:, None] == c.block.index[rows][None, :]
        outer = np.outer(Z[:, i], Z[:, m])
        out.append(same * (outer if i == m else outer + outer.T))
    out.append(np.eye(len(rows)))
    return out


def variance_sandwich(design: Design, beta: np.ndarray, components: list[Component], sigma2: float) -> VarianceSandwich:
    """Robust and model-based SEs of the variance parameters of an ML fit with one grouping factor (module
    docstring). Raises ValueError when the observed information is not positive definite."""
    sigma = math.sqrt(sigma2)
    cluster = components[0].block
    free, held = _parameters(components, sigma)
    p, k = design.X.shape[1], len(free) + 1
    y = design.y - design.offset
    scores, H = [], np.zeros((p + k, p + k))
    for rows in clusters(cluster):
        X, r = design.X[rows], y[rows] - design.X[rows] @ beta
        Vi = np.linalg.inv(marginal_cov(components, sigma2, rows))
        a = Vi @ r
        D = _derivatives(components, free, rows)
        ViD = [Vi @ d for d in D]
        s_t = [0.5 * (a @ d @ a - np.trace(vd)) for d, vd in zip(D, ViD, strict=True)]
        scores.append(np.concatenate([X.T @ a, s_t]))
        H[:p, :p] -= X.T @ Vi @ X
        for u, (du, vdu) in enumerate(zip(D, ViD, strict=True)):
            H[:p, p + u] -= X.T @ vdu @ a
            for v in range(u + 1):
                H[p + u, p + v] += 0.5 * np.sum(vdu * ViD[v].T) - a @ du @ ViD[v] @ a
    H[p:, :p] = H[:p, p:].T
    H[p:, p:] = np.tril(H[p:, p:]) + np.tril(H[p:, p:], -1).T
    S = np.array(scores)
    ev = np.linalg.eigvalsh(-H)
    if not np.min(ev) > 1e-10 * np.max(np.abs(ev)):
        raise ValueError(f"the observed information is not positive definite (smallest eigenvalue {np.min(ev):.3g})")
    Hi = np.linalg.inv(H)
    step = np.abs(Hi @ S.sum(axis=0)) / np.sqrt(np.diag(-Hi))
    if np.max(step) > OPTIMUM_TOL:
        raise ValueError(
            f"the estimates are not at the ML optimum (a Newton step of {np.max(step):.2g} model SEs remains): "
            "the sandwich needs scores that sum to zero"
        )
    robust = Hi @ S.T @ S @ Hi
    out = VarianceSandwich(held=held, score_sum=S.sum(axis=0), scores=S)
    keys: list[Key] = [
        (components[c].block.group, components[c].block.names[i], components[c].block.names[m]) for c, i, m in free
    ]
    values = [float(components[c].cov[i, m]) for c, i, m in free]
    for u, (key, val) in enumerate(zip([*keys, "sigma"], [*values, sigma2], strict=True)):
        out.estimate[key] = val
        out.se_robust[key] = math.sqrt(robust[p + u, p + u])
        out.se_model[key] = math.sqrt(-Hi[p + u, p + u])
    return out


# ------------------------------------------------------------------------------------------------- rows


def cr2_rows(
    primary: list[dict[str, Any]], res: CR2Result, level: float
) -> tuple[list[dict[str, Any]], dict[str, dict[str, float]]]:
    """Extra 'cr2' rows of the fixed effects, estimate +- t(df) x CR2 SE, laid out like the lme4 engine's (the SE
    and df go to details["cr2"][parameter]: an extra row repeats the primary's estimate and SE)."""
    rows, info, tail = [], {}, 0.5 + level / 2
    for base, s, d in zip(primary, res.se, res.df, strict=True):
        info[base["parameter"]] = {"df": float(d), "se": float(s)}
        if np.isfinite(s) and np.isfinite(d) and d > 0:
            q = float(stats.t.ppf(tail, d))
            rows.append(interval_row(base, "cr2", base["estimate"] - q * s, base["estimate"] + q * s))
        else:
            rows.append(interval_row(base, "none", math.nan, math.nan, note="cr2: no finite df or SE"))
    return rows, info


def robust_variance_rows(
    vs: VarianceSandwich, first: dict[str, dict[str, Any]], level: float
) -> tuple[list[dict[str, Any]], dict[str, dict[str, float]]]:
    """For each SD and sigma with a robust SE, a 'robust-variance' row (var +- z SE(var), given as SD bounds, 0
    where the variance bound is negative: the interval of Maas & Hox) and a 'robust-log-sd' row
    (sd x exp(+-z SE(var) / (2 var))); the SEs of the variance go to details["robust_variance"]."""
    z = float(stats.norm.ppf(0.5 + level / 2))
    rows, info = [], {}
    for key, var in vs.estimate.items():
        if isinstance(key, tuple) and key[1] != key[2]:
            continue  # covariances: parameters of the sandwich, no rows (the cor rows stay model-based)
        name = name_sd(key[0], key[1]) if isinstance(key, tuple) else "sigma"
        base = first.get(name)
        se = vs.se_robust[key]
        if base is None or not (var > 0 and np.isfinite(se)):
            continue
        info[name] = {"se_var": se, "se_var_model": vs.se_model[key]}
        lo, hi = var - z * se, var + z * se
        rows.append(interval_row(base, "robust-variance", math.sqrt(max(lo, 0.0)), math.sqrt(hi)))
        sd, se_log = math.sqrt(var), se / (2 * var)
        rows.append(interval_row(base, "robust-log-sd", sd * math.exp(-z * se_log), sd * math.exp(z * se_log)))
    return rows, info


def single_factor(components: list[Component]) -> str | None:
    """Why the variance sandwich does not apply to these components (None when it does)."""
    groups = sorted({c.block.group for c in components})
    if len(groups) != 1:
        return (
            "robust variance SEs need a single grouping factor (clusters as independent units); "
            f"this model has {', '.join(groups)}"
        )
    return None
