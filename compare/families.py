"""Families and links: one name -> function table for the spec, the simulator and every engine.

A family lists the links some engine can fit (so a spec cannot ask for a pair that every engine would
skip), and each link carries its inverse and the code the Stan program uses. Engines narrow these
tables (`Family.links`) to what they can fit; none keeps a table of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import expit
from scipy.stats import norm

from compare.errors import InputError


@dataclass(frozen=True)
class Link:
    name: str
    inverse: Callable[[np.ndarray], np.ndarray]
    code: int  # `link` in compare/stan/glmm.stan


@dataclass(frozen=True)
class Family:
    name: str
    links: tuple[str, ...]  # the first is the canonical (default) link
    code: int  # `family` in compare/stan/glmm.stan
    aux: str | None = None  # the family's own parameter, reported as a row of that name: sigma, phi

    @property
    def default_link(self) -> str:
        return self.links[0]


LINKS: dict[str, Link] = {
    "identity": Link("identity", lambda eta: eta, 1),
    "logit": Link("logit", expit, 2),
    "probit": Link("probit", norm.cdf, 3),
    "cloglog": Link("cloglog", lambda eta: -np.expm1(-np.exp(eta)), 4),
    "log": Link("log", np.exp, 5),
}
FAMILIES: dict[str, Family] = {
    "gaussian": Family("gaussian", ("identity",), 1, "sigma"),
    "binomial": Family("binomial", ("logit", "probit", "cloglog"), 2),
    "poisson": Family("poisson", ("log",), 3),
    # NB2: mean mu, variance mu + mu^2 / phi (lme4's theta, glmmTMB's nbinom2 dispersion, brms's shape,
    # rstanarm's reciprocal_dispersion, Stan's neg_binomial_2 phi); phi -> infinity is the poisson
    "negbinomial": Family("negbinomial", ("log",), 4, "phi"),
}
COUNTS = ("poisson", "negbinomial")  # families whose response is a non-negative whole number


def family(name: str) -> Family:
    """The family by name; InputError naming the known ones otherwise."""
    if name not in FAMILIES:
        raise InputError(f"unknown family {name!r} (known: {', '.join(FAMILIES)})")
    return FAMILIES[name]


def resolve_link(family_name: str, link: str | None) -> str:
    """The link to use: the family's canonical one when none is given; an error when no engine fits the pair."""
    fam = family(family_name)
    link = link or fam.default_link
    if link not in fam.links:
        raise InputError(f"link {link!r} is not available for {family_name} (known: {', '.join(fam.links)})")
    return link


def inverse_link(link: str, eta: np.ndarray) -> np.ndarray:
    """The mean (probability, rate) for a linear predictor."""
    if link not in LINKS:
        raise InputError(f"unknown link {link!r} (known: {', '.join(LINKS)})")
    return LINKS[link].inverse(eta)
