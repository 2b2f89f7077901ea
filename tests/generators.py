"""Generator functions for tests (scenarios name them as `generator = "tests.generators:NAME"`): one that makes
a two-level dataset the way a user would, and broken ones that hbench must refuse with one line."""

from __future__ import annotations

import numpy as np
import pandas as pd


def two_level(params: dict, rng: np.random.Generator) -> tuple[pd.DataFrame, dict[str, float]]:
    """y = b0 + b1 x + u_g + e with Laplace group effects (SD tau) and t(5) errors scaled to SD sigma."""
    j, n = int(params["groups"]), int(params["size"])
    b0, b1, tau, sigma = params["b0"], params["b1"], params["tau"], params["sigma"]
    g = np.repeat(np.arange(j), n)
    x = rng.normal(0.0, 1.0, j * n)
    u = rng.laplace(0.0, tau / np.sqrt(2), j)
    e = rng.standard_t(5, j * n) * sigma / np.sqrt(5 / 3)
    frame = pd.DataFrame({"g": [f"g{k + 1}" for k in g], "x": x, "y": b0 + b1 * x + u[g] + e})
    truth = {"b[Intercept]": b0, "b[x]": b1, "sd[g][Intercept]": tau, "sigma": sigma}
    return frame, truth


def wrong_columns(params, rng):
    frame, truth = two_level(params, rng)
    return frame.rename(columns={"x": "z"}), truth


def with_nan(params, rng):
    frame, truth = two_level(params, rng)
    frame.loc[3, "y"] = np.nan
    return frame, truth


def raises(params, rng):
    raise ValueError("no such design\nsecond line")


def unknown_truth(params, rng):
    frame, truth = two_level(params, rng)
    return frame, {**truth, "b[z]": 1.0}


def missing_truth(params, rng):
    frame, truth = two_level(params, rng)
    del truth["sigma"]
    return frame, truth


def not_a_tuple(params, rng):
    return two_level(params, rng)[0]


def nan_label(params, rng):
    frame, truth = two_level(params, rng)
    frame.loc[0, "g"] = "NA"
    return frame, truth
