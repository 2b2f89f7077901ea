"""Test doubles registered only in tests (via HBENCH_ENGINES=tests.doubles): a cheap real estimator
(OLS on the fixed effects, ignoring groups), and engines that fail, crash their process, or hang.

Engines never see the replication, so the doubles pick their victims by the seed the harness hands them;
tests name those seeds with `seeds_of` (compare.seeds.engine_seed, the harness's own derivation)."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass

import numpy as np
from scipy import stats

from compare.estimators.base import YES, Estimator, no
from compare.fitresult import FitResult, interval_row, make_params, name_b
from compare.seeds import engine_seed
from compare.settings import Settings, setting


def seeds_of(run_seed: int, cells: list[tuple[str, int]], reps: list[int]) -> list[int]:
    """The engine seeds of replications `reps` of each (scenario, cell)."""
    return [engine_seed(run_seed, s, c, r) for s, c in cells for r in reps]


@dataclass(frozen=True)
class OLSSettings(Settings):
    shift: float = setting(0.0, "added to every coefficient: a deliberate behaviour change for regression tests")
    t_rows: bool = setting(False, "give each coefficient a second interval row, 'wald-t' (t with n - p df)")
    draws: bool = setting(False, "return 99 normal 'posterior' draws per coefficient, as samplers do for SBC")


class OLSDouble(Estimator):
    """Ordinary least squares on the fixed effects: wrong model, right contract, milliseconds."""

    name = "ols-double"
    Settings = OLSSettings

    def supports(self, model):
        return YES if model.family == "gaussian" and model.formula.fixed else no("needs gaussian with fixed effects")

    def fit(self, data, *, seed):
        self.require(data.model)
        d = data.design
        y = d.y - d.offset
        if np.ptp(y) == 0:
            raise ValueError("the response is constant: no residual variance")
        beta, *_ = np.linalg.lstsq(d.X, y, rcond=None)
        resid = y - d.X @ beta
        dof = d.n - d.X.shape[1]
        s2 = resid @ resid / dof
        se = np.sqrt(np.diag(s2 * np.linalg.inv(d.X.T @ d.X)))
        z = stats.norm.ppf(0.5 + self.level / 2)
        beta = beta + self.settings.shift
        rows = [{"parameter": name_b(n), "estimate": b, "se": s, "lower": b - z * s, "upper": b + z * s,
                 "interval": "wald-z"} for n, b, s in zip(d.x_names, beta, se)]
        if self.settings.t_rows:
            t = stats.t.ppf(0.5 + self.level / 2, dof)
            rows += [interval_row(r, "wald-t", r["estimate"] - t * r["se"], r["estimate"] + t * r["se"]) for r in rows]
        rows.append({"parameter": "sigma", "estimate": np.sqrt(s2), "se": np.nan, "lower": np.nan, "upper": np.nan,
                     "interval": "none", "note": "no interval"})
        for bd in d.blocks:  # OLS ignores groups; it says so rather than leaving estimands out
            rows += [{"parameter": f"sd[{bd.group}][{t}]", "estimate": 0.0, "se": np.nan, "lower": np.nan,
                      "upper": np.nan, "interval": "none", "note": "OLS has no group effects"} for t in bd.names]
            rows += [{"parameter": f"r[{bd.group}][{lv},{t}]", "estimate": 0.0, "se": np.nan, "lower": np.nan,
                      "upper": np.nan, "interval": "none", "note": "OLS has no group effects"}
                     for lv in bd.levels for t in bd.names]
        draws = None
        if self.settings.draws:
            rng = np.random.default_rng(seed)
            draws = {name_b(n): rng.normal(b, s, 99) for n, b, s in zip(d.x_names, beta, se)}
        return FitResult(self.name, make_params(rows), converged=True, loglik=float(-0.5 * d.n * np.log(s2)),
                         wall_s=1e-3, draws=draws)


@dataclass(frozen=True)
class FailingSettings(OLSSettings):
    fail_seeds: tuple[int, ...] = setting((), "engine seeds (replications) to fail on; empty: every one")


class FailingDouble(OLSDouble):
    """Raises on every replication whose seed is in `fail_seeds` (all when empty)."""

    name = "failing-double"
    Settings = FailingSettings

    def fit(self, data, *, seed):
        if not self.settings.fail_seeds or seed in self.settings.fail_seeds:
            raise RuntimeError(f"deliberate failure on seed {seed}")
        return OLSDouble.fit(self, data, seed=seed)


@dataclass(frozen=True)
class CrashingSettings(OLSSettings):
    crash_seeds: tuple[int, ...] = setting((), "engine seeds (replications) on which to kill the process")


class CrashingDouble(OLSDouble):
    """Kills its own process (like a native abort in nutpie) on the replications in `crash_seeds`."""

    name = "crashing-double"
    Settings = CrashingSettings

    def fit(self, data, *, seed):
        if seed in self.settings.crash_seeds:
            os.abort()
        return OLSDouble.fit(self, data, seed=seed)


@dataclass(frozen=True)
class SleepySettings(OLSSettings):
    slow_seeds: tuple[int, ...] = setting((), "engine seeds (replications) on which to sleep")
    sleep: float = setting(60.0, "seconds to sleep on those", lo=0)


class SleepyDouble(OLSDouble):
    """Sleeps `sleep` seconds on the replications in `slow_seeds`, to trip the timeout."""

    name = "sleepy-double"
    Settings = SleepySettings

    def fit(self, data, *, seed):
        if seed in self.settings.slow_seeds:
            time.sleep(self.settings.sleep)
        return OLSDouble.fit(self, data, seed=seed)


@dataclass(frozen=True)
class SlowSettings(OLSSettings):
    sleep: float = setting(0.2, "seconds to pause before each fit", lo=0)


class SlowDouble(OLSDouble):
    """OLS after a fixed pause: a stand-in for an engine whose fit costs real time (throughput tests)."""

    name = "slow-double"
    Settings = SlowSettings

    def fit(self, data, *, seed):
        time.sleep(self.settings.sleep)
        return OLSDouble.fit(self, data, seed=seed)


@dataclass(frozen=True)
class ChildSettings(SleepySettings):
    short: float = setting(0.2, "seconds the child process runs on the other replications", lo=0)


class ChildDouble(OLSDouble):
    """OLS after a child process (`sleep`) has run: `sleep` seconds on `slow_seeds`, `short` seconds otherwise.
    A stand-in for the R and Stan processes an engine starts under its worker (the no-orphans tests)."""

    name = "child-double"
    Settings = ChildSettings

    def fit(self, data, *, seed):
        pause = self.settings.sleep if seed in self.settings.slow_seeds else self.settings.short
        subprocess.run(["sleep", f"{pause:g}"], check=True)
        return OLSDouble.fit(self, data, seed=seed)


class MutatingDouble(OLSDouble):
    """Breaks the contract: scales the response in place (the next engine on the task would see it)."""

    name = "mutating-double"

    def fit(self, data, *, seed):
        data.frame["y"] *= 2.0
        return OLSDouble.fit(self, data, seed=seed)


class SeedlessDouble(OLSDouble):
    """Breaks the contract: jitters its estimates from global, unseeded randomness."""

    name = "seedless-double"

    def fit(self, data, *, seed):
        out = OLSDouble.fit(self, data, seed=seed)
        fixed = out.params["parameter"].str.startswith("b[")
        jitter = np.random.default_rng().uniform(1e-9, 1e-6, int(fixed.sum()))
        out.params.loc[fixed, ["estimate", "lower", "upper"]] += jitter[:, None]
        return out


ESTIMATORS = [OLSDouble, FailingDouble, CrashingDouble, SleepyDouble, SlowDouble, ChildDouble]
