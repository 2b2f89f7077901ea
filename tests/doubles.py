"""Test doubles registered only in tests (via HBENCH_ENGINES=tests.doubles): a cheap real estimator
(OLS on the fixed effects, ignoring groups), and engines that fail, crash their process, or hang."""

from __future__ import annotations

import os
import time

import numpy as np
from scipy import stats

from compare.estimators.base import YES, Estimator, no
from compare.fitresult import FitResult, make_params, name_b


class OLSDouble(Estimator):
    """Ordinary least squares on the fixed effects: wrong model, right contract, milliseconds."""

    name = "ols-double"

    def supports(self, model):
        return YES if model.family == "gaussian" and model.formula.fixed else no("needs gaussian with fixed effects")

    def fit(self, dataset):
        d = dataset.design
        y = d.y - d.offset
        beta, *_ = np.linalg.lstsq(d.X, y, rcond=None)
        resid = y - d.X @ beta
        dof = d.n - d.X.shape[1]
        s2 = resid @ resid / dof
        se = np.sqrt(np.diag(s2 * np.linalg.inv(d.X.T @ d.X)))
        z = stats.norm.ppf(0.5 + self.level / 2)
        beta = beta + self.settings.get("shift", 0.0)  # a deliberate behaviour change for regression tests
        rows = [{"parameter": name_b(n), "estimate": b, "se": s, "lower": b - z * s, "upper": b + z * s,
                 "interval": "wald-z"} for n, b, s in zip(d.x_names, beta, se)]
        rows.append({"parameter": "sigma", "estimate": np.sqrt(s2), "se": np.nan, "lower": np.nan, "upper": np.nan,
                     "interval": "none", "note": "no interval"})
        return FitResult(self.name, make_params(rows), converged=True, loglik=float(-0.5 * d.n * np.log(s2)))


class FailingDouble(OLSDouble):
    """Raises on every replication whose number is in `fail_reps` (all when empty)."""

    name = "failing-double"

    def fit(self, dataset):
        fail = self.settings.get("fail_reps")
        if not fail or dataset.rep in fail:
            raise RuntimeError(f"deliberate failure on rep {dataset.rep}")
        return super().fit(dataset)


class CrashingDouble(OLSDouble):
    """Kills its own process (like a native abort in nutpie) on the replications in `crash_reps`."""

    name = "crashing-double"

    def fit(self, dataset):
        if dataset.rep in self.settings.get("crash_reps", []):
            os.abort()
        return super().fit(dataset)


class SleepyDouble(OLSDouble):
    """Sleeps `sleep` seconds on the replications in `slow_reps`, to trip the timeout."""

    name = "sleepy-double"

    def fit(self, dataset):
        if dataset.rep in self.settings.get("slow_reps", []):
            time.sleep(self.settings.get("sleep", 60))
        return super().fit(dataset)


class SlowDouble(OLSDouble):
    """OLS after a fixed pause: a stand-in for an engine whose fit costs real time (throughput tests)."""

    name = "slow-double"

    def fit(self, dataset):
        time.sleep(self.settings.get("sleep", 0.2))
        return super().fit(dataset)


ESTIMATORS = [OLSDouble, FailingDouble, CrashingDouble, SleepyDouble, SlowDouble]
