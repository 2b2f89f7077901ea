"""Named distributions used by scenario specs, for covariates and for priors.

Each one is a small frozen record with a `draw(rng, n)` method, so a spec file
reads like the seed's slides: `x ~ normal(5, 2)`, `sigma ~ exponential(0.1)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from compare.errors import InputError

# name -> (required parameters, optional parameters)
DISTRIBUTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "normal": (("mean", "sd"), ()),
    "halfnormal": (("sd",), ()),
    "lognormal": (("meanlog", "sdlog"), ()),
    "uniform": (("low", "high"), ()),
    "uniform_int": (("low", "high"), ()),
    "exponential": (("rate",), ()),
    "gamma": (("shape", "rate"), ()),
    "halfcauchy": (("scale",), ()),
    "bernoulli": (("p",), ()),
    "poisson": (("mean",), ("min",)),
    "negbinomial": (("mean", "phi"), ("min",)),  # NB2: variance mean + mean^2 / phi
    "categorical": (("levels",), ("probs",)),
    "values": (("values",), ()),
    "constant": (("value",), ()),
    "lkj": (("eta",), ()),
}
_POSITIVE = {"sd", "sdlog", "rate", "shape", "scale", "eta", "phi"}
_LISTS = {"levels", "probs", "values"}
MAX_WHOLE = 2**62  # bounds of uniform_int and poisson's min: numpy draws int64
MAX_POISSON = 1e18  # numpy's largest poisson mean is about 9.2e18


@dataclass(frozen=True)
class Dist:
    kind: str
    params: dict[str, Any]

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        p, k = self.params, self.kind
        if k == "normal":
            return rng.normal(p["mean"], p["sd"], n)
        if k == "halfnormal":
            return np.abs(rng.normal(0.0, p["sd"], n))
        if k == "lognormal":
            return rng.lognormal(p["meanlog"], p["sdlog"], n)
        if k == "uniform":
            return rng.uniform(p["low"], p["high"], n)
        if k == "uniform_int":
            return rng.integers(p["low"], p["high"], n, endpoint=True)
        if k == "exponential":
            return rng.exponential(1.0 / p["rate"], n)
        if k == "gamma":
            return rng.gamma(p["shape"], 1.0 / p["rate"], n)
        if k == "halfcauchy":
            return np.abs(p["scale"] * rng.standard_cauchy(n))
        if k == "bernoulli":
            return rng.binomial(1, p["p"], n)
        if k == "poisson":
            return np.maximum(rng.poisson(p["mean"], n), p.get("min", 0))
        if k == "negbinomial":
            phi = p["phi"]
            return np.maximum(rng.negative_binomial(phi, phi / (phi + p["mean"]), n), p.get("min", 0))
        if k == "categorical":
            levels = np.asarray(p["levels"])
            return levels[rng.choice(len(levels), n, p=p.get("probs"))]
        if k == "values":
            vals = np.asarray(p["values"])
            if n % len(vals):
                raise InputError(f"values: {len(vals)} values do not tile {n} rows")
            return np.tile(vals, n // len(vals))
        if k == "constant":
            return np.full(n, p["value"])
        raise InputError(f"distribution {k!r} cannot be drawn as a vector")


def lkj_corr(rng: np.random.Generator, dim: int, eta: float) -> np.ndarray:
    """Draw a correlation matrix from LKJ(eta) by the onion method (Lewandowski et al. 2009)."""
    if dim == 1:
        return np.ones((1, 1))
    beta = eta + (dim - 2) / 2.0
    r12 = 2.0 * rng.beta(beta, beta) - 1.0
    corr = np.array([[1.0, r12], [r12, 1.0]])
    for k in range(2, dim):
        beta -= 0.5
        y = rng.beta(k / 2.0, beta)
        u = rng.normal(size=k)
        u /= np.linalg.norm(u)
        w = np.sqrt(y) * u
        chol = np.linalg.cholesky(corr)
        z = chol @ w
        corr = np.block([[corr, z[:, None]], [z[None, :], np.ones((1, 1))]])
    return corr


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _scalar(v: Any) -> bool:
    """A value a covariate can take: a finite number or a string."""
    return isinstance(v, str) or _number(v)


def parse_dist(value: Any, where: str) -> Dist:
    """Read `{dist = "normal", mean = 5, sd = 2}`; errors name the field `where`."""
    if not isinstance(value, dict) or "dist" not in value:
        raise InputError(f"field '{where}': expected a table with a 'dist' key, got {value!r}")
    kind = value["dist"]
    if not isinstance(kind, str) or kind not in DISTRIBUTIONS:
        raise InputError(f"field '{where}.dist': unknown distribution {kind!r} (known: {', '.join(DISTRIBUTIONS)})")
    required, optional = DISTRIBUTIONS[kind]
    params = {k: v for k, v in value.items() if k != "dist"}
    for key in params:
        if key not in required + optional:
            raise InputError(
                f"field '{where}.{key}': unknown key for {kind} (expected {', '.join(required + optional)})"
            )
    for key in required:
        if key not in params:
            raise InputError(f"field '{where}': {kind} needs '{key}'")
    for key, v in params.items():
        if key in _LISTS:
            if not isinstance(v, list) or not v or not all(_scalar(x) for x in v):
                raise InputError(f"field '{where}.{key}': {v!r} must be a non-empty list of numbers or strings")
        elif key == "value":
            if not _scalar(v):
                raise InputError(f"field '{where}.{key}': {v!r} must be a number or a string")
        elif not _number(v):
            raise InputError(f"field '{where}.{key}': {v!r} must be a finite number")
        if key in _POSITIVE and v <= 0:
            raise InputError(f"field '{where}.{key}': {v!r} must be a positive number")
    if kind in ("uniform", "uniform_int") and params["low"] > params["high"]:
        raise InputError(f"field '{where}': low {params['low']!r} is above high {params['high']!r}")
    if kind == "uniform" and not math.isfinite(params["high"] - params["low"]):
        raise InputError(f"field '{where}': low {params['low']!r} to high {params['high']!r} is too wide a range")
    for key in ("low", "high") if kind == "uniform_int" else ("min",) if kind in ("poisson", "negbinomial") else ():
        v = params.get(key, 0)
        if not float(v).is_integer() or abs(v) > MAX_WHOLE:
            raise InputError(f"field '{where}.{key}': {v!r} must be a whole number between -2^62 and 2^62")
    if kind in ("poisson", "negbinomial") and not 0 < params["mean"] <= MAX_POISSON:
        raise InputError(f"field '{where}.mean': {params['mean']!r} must be a positive number up to {MAX_POISSON:g}")
    if kind == "bernoulli" and not 0 <= params["p"] <= 1:
        raise InputError(f"field '{where}.p': {params['p']!r} is not a probability")
    if kind == "categorical" and "probs" in params:
        probs, levels = params["probs"], params["levels"]
        if (
            len(probs) != len(levels)
            or not all(_number(q) and 0 <= q <= 1 for q in probs)
            or abs(sum(probs) - 1) > 1e-8
        ):
            raise InputError(
                f"field '{where}.probs': {probs!r} must be {len(levels)} probabilities (one per level) that sum to 1"
            )
    return Dist(kind, params)


# Shapes of group effects and level-1 errors (a scenario's [shape] table): name -> parameters and their defaults.
# Every shape is drawn standardized (mean 0, SD 1) and scaled by the truth's SD, so [truth] keeps its meaning
# whatever the shape. Defaults: chisq(1) is Maas & Hox (2004)'s skewed shape; the mixture's default is Tukey's
# contaminated normal (10% of draws from a component with three times the SD).
SHAPES: dict[str, dict[str, float]] = {
    "normal": {},
    "chisq": {"df": 1.0},
    "laplace": {},
    "uniform": {},
    "t": {"df": 5.0},
    "skewnormal": {"alpha": 5.0},
    "lognormal": {"sdlog": 0.5},
    "mixture": {"p": 0.1, "delta": 0.0, "ratio": 3.0},  # weight of component 2, its mean and SD (component 1: N(0, 1))
}


@dataclass(frozen=True)
class Shape:
    """A distribution shape, drawn standardized to mean 0 and SD 1."""

    kind: str
    params: dict[str, float]

    def scipy(self) -> Any:
        """The frozen scipy.stats distribution (for the mixture: None, its moments are closed-form)."""
        from scipy import stats

        p = self.params
        return {
            "normal": lambda: stats.norm(),
            "chisq": lambda: stats.chi2(p.get("df")),
            "laplace": lambda: stats.laplace(),
            "uniform": lambda: stats.uniform(),
            "t": lambda: stats.t(p.get("df")),
            "skewnormal": lambda: stats.skewnorm(p.get("alpha")),
            "lognormal": lambda: stats.lognorm(p.get("sdlog")),
            "mixture": lambda: None,
        }[self.kind]()

    def raw_moment(self, k: int) -> float:
        """E[X^k] of the unstandardized shape."""
        from scipy import stats

        if self.kind == "t":  # scipy integrates numerically and returns finite nonsense for k >= df
            df = self.params["df"]
            if k >= df:
                return math.nan if k % 2 else math.inf
            return 0.0 if k % 2 else math.prod(df * (2 * i - 1) / (df - 2 * i) for i in range(1, k // 2 + 1))
        closed = {
            "laplace": lambda: 0.0 if k % 2 else float(math.factorial(k)),
            "uniform": lambda: 1.0 / (k + 1),
            "lognormal": lambda: math.exp(k * k * self.params["sdlog"] ** 2 / 2),
        }  # scipy would integrate
        if self.kind in closed:
            return closed[self.kind]()
        if self.kind != "mixture":
            return float(self.scipy().moment(k))
        p, delta, ratio = self.params["p"], self.params["delta"], self.params["ratio"]
        return float((1 - p) * stats.norm().moment(k) + p * stats.norm(delta, ratio).moment(k))

    def mean_sd(self) -> tuple[float, float]:
        if self.kind == "mixture":
            mean = self.raw_moment(1)
            return mean, math.sqrt(self.raw_moment(2) - mean**2)
        mean, var = self.scipy().stats("mv")
        return float(mean), math.sqrt(float(var))

    def standard(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n draws with mean 0 and SD 1 (the normal one as rng.standard_normal, the simulator's historical draw)."""
        if self.kind == "normal":
            return rng.standard_normal(n)
        if self.kind == "mixture":
            p = self.params
            second = rng.random(n) < p["p"]
            z = rng.standard_normal(n)
            x = np.where(second, p["delta"] + p["ratio"] * z, z)
        else:
            x = self.scipy().rvs(size=n, random_state=rng)
        mean, sd = self.mean_sd()
        return (np.asarray(x, dtype=float) - mean) / sd


NORMAL = Shape("normal", {})


def parse_shape(value: Any, where: str) -> Shape:
    """Read `{ dist = "chisq", df = 1 }`; parameters not given take SHAPES' defaults; errors name `where`."""
    if not isinstance(value, dict) or "dist" not in value:
        raise InputError(f"field '{where}': expected a table with a 'dist' key, got {value!r}")
    kind = value["dist"]
    if not isinstance(kind, str) or kind not in SHAPES:
        raise InputError(f"field '{where}.dist': unknown shape {kind!r} (known: {', '.join(SHAPES)})")
    params = dict(SHAPES[kind])
    for key, v in value.items():
        if key == "dist":
            continue
        if key not in SHAPES[kind]:
            known = ", ".join(SHAPES[kind]) or "none"
            raise InputError(f"field '{where}.{key}': unknown parameter for shape {kind} (parameters: {known})")
        if not _number(v):
            raise InputError(f"field '{where}.{key}': {v!r} must be a finite number")
        params[key] = float(v)
    limits = {
        "df": (0.0 if kind == "chisq" else 2.0, 1e6),
        "sdlog": (0.0, 5.0),
        "p": (0.0, 1.0),
        "ratio": (0.0, 1e6),
        "alpha": (-1e6, 1e6),
        "delta": (-1e6, 1e6),
    }
    for key, v in params.items():
        lo, hi = limits[key]
        if not lo < v < hi:
            why = " (a t shape needs a finite variance to be standardized)" if kind == "t" and key == "df" else ""
            raise InputError(f"field '{where}.{key}': {v:g} must be above {lo:g} and below {hi:g}{why}")
    return Shape(kind, params)
