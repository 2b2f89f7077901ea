"""brms-style prior strings and rstanarm's default priors, resolved to numbers both Bayesian engines use.

A prior string is `class ~ dist(args)`, e.g. `b ~ normal(0, 4)`, `Intercept ~ normal(0, 4)`,
`sd ~ cauchy(0, 1)`, `cor ~ lkj(4)`, `sigma ~ exponential(0.1)`, `cov ~ decov(1, 1, 1, 1)`.
Meaning follows brms: `Intercept` is the intercept *after centring the fixed-effect predictors*
(brms and rstanarm both do this), `sd` and `sigma` priors are half distributions (truncated at 0),
`cor` is the LKJ prior on each block's correlation matrix.

Defaults are rstanarm's stan_glmer defaults (priors vignette, post July 2020):
  b          normal(0, 2.5 * s_y / s_x)   s_y = sd(y) for gaussian, 1 otherwise; s_x = sd(x), or the
                                          range for a predictor with two values, 1 for a constant one
  Intercept  normal(mean(y), 2.5 * sd(y)) for gaussian; normal(0, 2.5) otherwise (centred predictors)
  sigma      exponential(1 / sd(y))
  cov        decov(regularization=1, concentration=1, shape=1, scale=1): per block of q terms,
             correlation ~ LKJ(regularization), variance shares pi ~ Dirichlet(concentration),
             tau ~ Gamma(shape, rate = 1 / scale), SDs = dispersion * tau * sqrt(q * pi)
             (dispersion = sigma for gaussian, 1 otherwise), as rstanarm's make_theta_L.
Simplifications: rstanarm's QR option and its mean(y) location for non-identity links are not
modelled; an offset does not shift the default intercept location.  Giving an `sd` or `cor` prior
switches the covariance from decov to brms's separate form (independent half priors on SDs, LKJ on
correlations); the other one then takes brms-like defaults: sd ~ student_t(3, 0, 2.5 * s_y),
cor ~ lkj(1).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from compare.errors import InputError

# distribution -> (engine code, number of arguments, argument names)
DISTS: dict[str, tuple[int, tuple[str, ...]]] = {
    "normal": (1, ("mu", "sigma")),
    "student_t": (2, ("nu", "mu", "sigma")),
    "cauchy": (3, ("mu", "sigma")),
    "exponential": (4, ("rate",)),
    "gamma": (5, ("shape", "rate")),
    "lkj": (6, ("eta",)),
    "decov": (7, ("regularization", "concentration", "shape", "scale")),
}
CLASSES: dict[str, tuple[str, ...]] = {
    "b": ("normal", "student_t", "cauchy"),
    "Intercept": ("normal", "student_t", "cauchy"),
    "sd": ("normal", "student_t", "cauchy", "exponential", "gamma"),
    "sigma": ("normal", "student_t", "cauchy", "exponential", "gamma"),
    "cor": ("lkj",),
    "cov": ("decov",),
}
_PRIOR = re.compile(r"^\s*([A-Za-z_]+)\s*~\s*([A-Za-z_]+)\s*\((.*)\)\s*$")


@dataclass(frozen=True)
class Dist:
    """One distribution with its arguments in the order of DISTS (e.g. student_t: nu, mu, sigma)."""

    name: str
    args: tuple[float, ...]

    @property
    def code(self) -> int:
        return DISTS[self.name][0]

    def padded(self) -> list[float]:
        """Arguments padded to three numbers (the engines' fixed-width parameter rows)."""
        return list(self.args) + [0.0] * (3 - len(self.args))

    def __str__(self) -> str:
        return f"{self.name}({', '.join(f'{a:g}' for a in self.args)})"


@dataclass(frozen=True)
class Prior:
    cls: str
    dist: Dist


def parse_prior(text: str) -> Prior:
    """`"sd ~ cauchy(0, 1)"` -> Prior; InputError (one line) for anything else."""
    m = _PRIOR.match(text)
    if not m:
        raise InputError(f"prior {text!r}: expected 'class ~ distribution(args)', e.g. 'b ~ normal(0, 4)'")
    cls, name, arg_text = m.groups()
    if cls not in CLASSES:
        raise InputError(f"prior {text!r}: unknown class {cls!r} (known: {', '.join(CLASSES)})")
    if name not in DISTS:
        raise InputError(f"prior {text!r}: unknown distribution {name!r} (known: {', '.join(DISTS)})")
    if name not in CLASSES[cls]:
        raise InputError(f"prior {text!r}: class {cls!r} takes {', '.join(CLASSES[cls])}, not {name!r}")
    args = _parse_args(text, arg_text)
    _check_args(text, name, args)
    return Prior(cls, Dist(name, args))


def _parse_args(text: str, arg_text: str) -> tuple[float, ...]:
    if not arg_text.strip():
        return ()
    try:
        return tuple(float(a) for a in arg_text.split(","))
    except ValueError:
        raise InputError(f"prior {text!r}: arguments must be numbers") from None


def _check_args(text: str, name: str, args: tuple[float, ...]) -> None:
    want = DISTS[name][1]
    if len(args) != len(want):
        raise InputError(f"prior {text!r}: {name} takes {len(want)} arguments ({', '.join(want)}), got {len(args)}")
    if not all(math.isfinite(a) for a in args):
        raise InputError(f"prior {text!r}: arguments must be finite")
    positive = [a for n, a in zip(want, args) if n not in ("mu",)]
    if any(a <= 0 for a in positive):
        raise InputError(f"prior {text!r}: {', '.join(n for n in want if n != 'mu')} must be positive")


def _check_half(prior: Prior, text: str) -> None:
    """Half priors are centred at 0 (brms's usual use); a shifted truncation is not supported."""
    if prior.dist.name in ("normal", "student_t", "cauchy") and prior.dist.args[-2] != 0:
        raise InputError(f"prior {text!r}: {prior.cls} priors are half distributions and must be centred at 0")


@dataclass(frozen=True)
class PriorSpec:
    """What the user asked for, per class (None = the rstanarm default)."""

    b: Dist | None = None
    intercept: Dist | None = None
    sd: Dist | None = None
    cor: Dist | None = None
    sigma: Dist | None = None
    cov: Dist | None = None

    @property
    def separate(self) -> bool:
        """brms's covariance form (half priors on SDs + LKJ) rather than rstanarm's decov."""
        return self.sd is not None or self.cor is not None


_FIELD = {"b": "b", "Intercept": "intercept", "sd": "sd", "cor": "cor", "sigma": "sigma", "cov": "cov"}


def parse_priors(texts: list[str] | tuple[str, ...] | None) -> PriorSpec:
    """Prior strings -> PriorSpec; a class given twice or decov mixed with sd/cor is an InputError."""
    given: dict[str, Dist] = {}
    for text in texts or ():
        prior = parse_prior(text)
        if prior.cls in ("sd", "sigma"):
            _check_half(prior, text)
        name = _FIELD[prior.cls]
        if name in given:
            raise InputError(f"prior {text!r}: class {prior.cls!r} given twice")
        given[name] = prior.dist
    spec = PriorSpec(**given)
    if spec.cov is not None and spec.separate:
        raise InputError("priors: 'cov ~ decov(...)' cannot be combined with 'sd' or 'cor' priors")
    return spec


@dataclass
class ResolvedPriors:
    """Numbers for one dataset: every prior with its data-dependent scales filled in.

    Codes are DISTS codes; parameter rows are padded to three numbers.
    """

    b_code: int
    b_par: np.ndarray  # (P0, 3), one row per non-intercept coefficient
    int_code: int
    int_par: np.ndarray  # (3,)
    sigma_code: int
    sigma_par: np.ndarray  # (3,)
    separate: bool
    sd_code: int
    sd_par: np.ndarray  # (Q, 3), one row per group-level term (separate form)
    lkj_eta: float
    decov: tuple[float, float, float, float]  # regularization, concentration, shape, scale
    text: list[str] = field(default_factory=list)  # human-readable summary for notes


def _predictor_scale(x: np.ndarray) -> float:
    """rstanarm's autoscale divisor: 1 for a constant, the range for two values, sd otherwise."""
    values = np.unique(x)
    if values.size <= 1:
        return 1.0
    if values.size == 2:
        return float(values[-1] - values[0])
    return float(np.std(x, ddof=1))


def resolve(spec: PriorSpec, family: str, y: np.ndarray, X_free: np.ndarray, n_terms: int) -> ResolvedPriors:
    """Fill rstanarm's autoscaled defaults for one dataset (X_free: fixed predictors without the intercept)."""
    gaussian = family == "gaussian"
    sy = float(np.std(y, ddof=1)) if gaussian and len(y) > 1 else 1.0
    sy = sy if sy > 0 and math.isfinite(sy) else 1.0
    p0 = X_free.shape[1]
    if spec.b is None:
        scales = [2.5 * sy / _predictor_scale(X_free[:, k]) for k in range(p0)]
        b_code, b_par = 1, np.array([[0.0, s, 0.0] for s in scales]).reshape(p0, 3)
    else:
        b_code, b_par = spec.b.code, np.tile(spec.b.padded(), (p0, 1)).reshape(p0, 3)
    intercept = spec.intercept or Dist("normal", (float(np.mean(y)) if gaussian else 0.0, 2.5 * sy))
    sigma = spec.sigma or Dist("exponential", (1.0 / sy,))
    sd = spec.sd or Dist("student_t", (3.0, 0.0, 2.5 * sy))
    cor = spec.cor or Dist("lkj", (1.0,))
    decov = spec.cov.args if spec.cov is not None else (1.0, 1.0, 1.0, 1.0)
    text = [f"b ~ {spec.b or 'normal(0, 2.5*s_y/s_x) (rstanarm autoscale)'}", f"Intercept (centred) ~ {intercept}"]
    if gaussian:
        text.append(f"sigma ~ {sigma}")
    text.append(f"sd ~ half {sd}, cor ~ {cor}" if spec.separate else f"cov ~ decov{tuple(decov)}")
    return ResolvedPriors(b_code, b_par.astype(float), intercept.code, np.array(intercept.padded()),
                          sigma.code, np.array(sigma.padded()), spec.separate, sd.code,
                          np.tile(sd.padded(), (n_terms, 1)).reshape(n_terms, 3), float(cor.args[0]),
                          tuple(float(a) for a in decov), text)
