"""Departures from the textbook multilevel model, applied by the simulator (compare.simulate) to one dataset:
heteroscedastic level-1 errors, an endogenous covariate (its group part correlated with the random
intercept) and its within/between columns, and missing responses (MCAR or MAR dropout).

Each is switched on by its own field of a scenario (`shape.residual.log_sigma`, a covariate's `between` and
`center`, `[dropout]`; see compare.spec) and does nothing otherwise, so scenarios without them draw exactly
the data they always drew.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from compare.design import group_index
from compare.errors import InputError
from compare.spec import CellSpec


def residual_sd(cell: CellSpec, frame: pd.DataFrame, sigma: float | None, rng: np.random.Generator):
    """sigma, or each row's sigma_i under `shape.residual.log_sigma`: log sigma_i = log sigma + gamma * x_i for a
    covariate x, + v_l for the row's level l of a grouping factor, v_l ~ normal(0, its SD) (drawn with the groups'
    effects). `truth.sigma` stays the SD at x = 0 in a level with v = 0."""
    if sigma is None or not cell.shapes.log_sigma:
        return sigma
    log_sd = np.full(len(frame), np.log(sigma))
    for name, v in cell.shapes.log_sigma.items():
        where = f"shape.residual.log_sigma.{name}"
        if name in cell.covariates:
            x = frame[name]
            if not pd.api.types.is_numeric_dtype(x) or pd.api.types.is_bool_dtype(x):
                raise InputError(f"field '{where}': covariate {name!r} is not numeric")
            log_sd += v * x.to_numpy(dtype=float)
        else:
            index, levels = group_index(frame, name)
            log_sd += v * rng.standard_normal(len(levels))[index]
    sd = np.exp(log_sd)
    if not np.all(np.isfinite(sd)):
        raise InputError("field 'shape.residual.log_sigma': the residual SD overflows")
    if np.any(sd <= 0):
        raise InputError("field 'shape.residual.log_sigma': the residual SD underflows to 0")
    return sd


def center(cell: CellSpec, frame: pd.DataFrame) -> None:
    """`center = "g"`: x_mean, the mean of x over the rows of the row's level of g, and x_within = x - x_mean
    (group-mean centering, the Mundlak / within-between decomposition), on every row drawn (before dropout, so
    that a formula of them generates the same data as one of x)."""
    for x, group in cell.center.items():
        values = frame[x]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            raise InputError(f"field 'covariates.{x}.center': covariate {x!r} is not numeric")
        index, _ = group_index(frame, group)
        means = pd.Series(values.to_numpy(dtype=float)).groupby(index).transform("mean").to_numpy()
        frame[f"{x}_mean"] = means
        frame[f"{x}_within"] = values.to_numpy(dtype=float) - means


def _intercepts(intercepts: dict[str, tuple[np.ndarray, np.ndarray, float]], group: str, where: str):
    """(row level index, standardized random intercepts) of `group`."""
    if group not in intercepts:
        raise InputError(f"field '{where}': the formula has no random intercept of {group!r} to correlate with")
    index, u, sd = intercepts[group]
    if not sd > 0:
        raise InputError(f"field '{where}': needs a positive SD of the random intercept of {group}")
    return index, u / sd


def shift_between(
    cell: CellSpec,
    frame: pd.DataFrame,
    intercepts: dict[str, tuple[np.ndarray, np.ndarray, float]],
    rng: np.random.Generator,
) -> bool:
    """Add each `between` covariate's group part m_j, correlated `cor` with the standardized random intercept
    z_j; True when some covariate moved (the design must then be rebuilt)."""
    for x, bt in cell.between.items():
        where = f"covariates.{x}.between"
        index, z = _intercepts(intercepts, bt.group, where)
        m = bt.sd * (bt.cor * z + np.sqrt(1 - bt.cor**2) * rng.standard_normal(len(z)))
        values = frame[x]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            raise InputError(f"field '{where}': covariate {x!r} is not numeric")
        frame[x] = values.to_numpy(dtype=float) + m[index]
    return bool(cell.between)


def drop_missing(cell: CellSpec, frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The observed rows under `[dropout]`: each row's response is missing with probability p_i (MCAR: the rate;
    MAR: expit(a + slope * x_i) with `a` solved so that mean(p_i) is the rate on this dataset's covariate), and
    the engines see only the other rows, as `--drop-missing` does for a user's data. Levels left without rows
    are dropped from categorical columns."""
    d = cell.dropout
    if d is None or d.rate == 0:
        return frame
    p = np.full(len(frame), d.rate)
    if d.by is not None and d.slope != 0:
        x = frame[d.by]
        if not pd.api.types.is_numeric_dtype(x) or pd.api.types.is_bool_dtype(x):
            raise InputError(f"field 'dropout.by': covariate {d.by!r} is not numeric")
        p = _calibrated(d.slope * x.to_numpy(dtype=float), d.rate)
    keep = rng.random(len(frame)) >= p
    if not keep.any():
        raise InputError(f"field 'dropout.rate': every one of {len(frame)} responses dropped out")
    out = frame.loc[keep].reset_index(drop=True)
    for col in out.columns:
        if isinstance(out[col].dtype, pd.CategoricalDtype):
            out[col] = out[col].cat.remove_unused_categories()
    return out


def _calibrated(lin: np.ndarray, rate: float) -> np.ndarray:
    """expit(a + lin) with mean `rate`: the mean is increasing in a, so bisection on a finds it."""
    from scipy.optimize import brentq
    from scipy.special import expit, logit

    spread = float(np.max(np.abs(lin - lin.mean()), initial=0.0))
    lo, hi = logit(rate) - lin.mean() - spread - 1, logit(rate) - lin.mean() + spread + 1
    a = brentq(lambda a: float(expit(a + lin).mean()) - rate, lo, hi, xtol=1e-12)
    return expit(a + lin)
