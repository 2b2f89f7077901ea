"""The R engines against hbench's own, side by side in one run (issue 11).

1. Samplers on the seed model (seed_slopes cell 0: J = 20, n_j = 14, y ~ x + (1 + x | g)): rstanarm, brms, stan and
   pymc, 4 chains x 1000 warm-up + 1000 draws, adapt_delta 0.95, max_treedepth 15, the seed's stan_glmer priors
   (b ~ normal(0, 1), Intercept ~ normal(50, 20), sigma ~ exponential(0.1)). The covariance prior is each package's
   default that the others can share: decov(1, 1, 1, 1) for rstanarm, stan and pymc; brms has no decov, so it keeps
   its own sd ~ student_t(3, 0, mad(y)) and cor ~ lkj(1). R engines run chains on R_CORES cores (default 2: stan
   and pymc run their chains in parallel too). Every engine is warmed first (brms compiles, pymc compiles, PyStan
   finds its cached build) on replication 0, and that fit's compile seconds are reported apart; then each round
   fits the next replication with every engine, the engines' order rotating from round to round, so load drift
   on a shared machine hits all alike. Per fit: wall seconds of engine.fit() (compile excluded: it is 0 after the
   warm-up, asserted) and min bulk ESS (over b, sd, cor, sigma, group effects) per wall second.
2. glmmTMB against lme4 per-fit wall time on seed_slopes J = 20 (cell 0), J = 8 (cell 1) and funding_like (cell 0),
   each round one replication fitted by lme4 (default: profile intervals for lmer), lme4 with profile = false
   (Wald; like for like with glmmTMB's default) and glmmTMB, order rotating.
   10 rounds each (HBENCH_BENCH_FREQ_REPS), 35 s for the three. Converged and singular counts are printed too:
   glmmTMB's converged needs a positive-definite Hessian, which fits near the boundary (a slope SD near 0) lack.

Timings are recorded, not asserted (shared, noisy machine): benchmark.extra_info holds each engine's medians and
its ratios to stan / to lme4, and a markdown table is printed (`-s`). The benchmarked round is the whole round.

Run from the repository root (no Makefile needed):

    pytest -m bench tests/benchmarks/test_bench_r_engines.py -s                  # both parts (about 5 min)
    pytest -m bench tests/benchmarks/test_bench_r_engines.py -s -k samplers  # part 1 (4 min 20 s: warm-ups, 3 rounds)
    HBENCH_BENCH_REPS=5 HBENCH_BENCH_R_CORES=1 HBENCH_BENCH_SEED=7 \
        pytest -m bench tests/benchmarks/test_bench_r_engines.py -s -k samplers  # more rounds, other datasets
    pytest -m bench tests/benchmarks/test_bench_r_engines.py --benchmark-autosave  # keep the run under .benchmarks/

On a machine shared with other heavy jobs, wrap it: `flock /tmp/hbench-heavy.lock pytest ...`. Engines whose R
package is missing are left out (said in the table); part 1 needs stan and pymc.
"""

from __future__ import annotations

import os
import statistics
import time

import pytest

from compare.catalogue import load_scenario
from compare.estimators import get_estimator
from compare.simulate import dataset_for

RUN_SEED = int(os.environ.get("HBENCH_BENCH_SEED", "2026"))  # another seed: other datasets (a run in pieces)
REPS = int(os.environ.get("HBENCH_BENCH_REPS", "3"))
FREQ_REPS = int(os.environ.get("HBENCH_BENCH_FREQ_REPS", "10"))
R_CORES = int(os.environ.get("HBENCH_BENCH_R_CORES", "2"))
VALENCE_PRIORS = ["b ~ normal(0, 1)", "Intercept ~ normal(50, 20)", "sigma ~ exponential(0.1)"]
CONTROLS = {"chains": 4, "warmup": 1000, "draws": 1000, "adapt_delta": 0.95, "max_treedepth": 15,
            "priors": VALENCE_PRIORS}
SAMPLERS = {"rstanarm": {**CONTROLS, "cores": R_CORES}, "brms": {**CONTROLS, "cores": R_CORES},
            "stan": CONTROLS, "pymc": CONTROLS}


def _available(specs: dict[str, dict]) -> tuple[dict, list[str]]:
    engines, missing = {}, []
    for name, settings in specs.items():
        key, _, _ = name.partition(" ")
        est = get_estimator(key, settings)
        status = est.available()
        if status:
            engines[name] = est
        else:
            missing.append(f"{name}: {status.reason}")
    return engines, missing


def _rounds(engines: dict, datasets: list, record) -> callable:
    """One round: the next dataset fitted by every engine, order rotated by the round number."""
    pending = iter(enumerate(datasets))
    names = list(engines)

    def one_round():
        k, ds = next(pending)
        for name in names[k % len(names):] + names[:k % len(names)]:
            t0 = time.perf_counter()
            fit = engines[name].fit(ds.data, seed=ds.seed)
            record(name, fit, time.perf_counter() - t0)

    return one_round


def _med(values) -> float:
    return statistics.median(values) if values else float("nan")


@pytest.mark.bench
def test_samplers_side_by_side_on_the_seed_model(benchmark):
    engines, missing = _available(SAMPLERS)
    assert {"stan", "pymc"} <= set(engines), missing
    scenario = load_scenario("seed_slopes")
    datasets = [dataset_for(scenario, 0, rep, RUN_SEED) for rep in range(REPS + 1)]
    assert datasets[0].data.design.blocks[0].n_levels == 20 and datasets[0].data.design.n == 280
    warm = {}
    for name, est in engines.items():  # compiles (and R's start) paid here, reported apart
        t0 = time.perf_counter()
        fit = est.fit(datasets[0].data, seed=datasets[0].seed)
        warm[name] = {"compile_s": fit.compile_s, "first_fit_s": time.perf_counter() - t0}
    fits: dict[str, list] = {n: [] for n in engines}

    def record(name, fit, seconds):
        assert fit.compile_count == 0 and fit.compile_s == 0, (name, "compiled again")
        fits[name].append({"s": seconds, "ess": fit.sampler.ess_bulk_min, "div": fit.sampler.divergences,
                           "rhat": fit.sampler.rhat_max_hyper, "sampling_s": fit.sampling_s})

    benchmark.pedantic(_rounds(engines, datasets[1:], record), rounds=REPS, iterations=1)
    table = {}
    for name, rows in fits.items():
        table[name] = {"per_fit_s": _med([r["s"] for r in rows]), "per_fit_s_max": max(r["s"] for r in rows),
                       "ess_bulk_min": _med([r["ess"] for r in rows]),
                       "ess_bulk_per_s": _med([r["ess"] / r["s"] for r in rows]),
                       "sampling_s": _med([r["sampling_s"] for r in rows]),
                       "divergences": sum(r["div"] for r in rows), "rhat_max": max(r["rhat"] for r in rows),
                       "n": len(rows), **warm[name]}
    for row in table.values():
        row["s_ratio_to_stan"] = row["per_fit_s"] / table["stan"]["per_fit_s"]
        row["ess_per_s_ratio_to_stan"] = row["ess_bulk_per_s"] / table["stan"]["ess_bulk_per_s"]
    benchmark.extra_info.update({"engines": table, "missing": missing, "reps": REPS, "r_cores": R_CORES})
    lines = ["| engine | per fit s (median, max) | min bulk ESS | min bulk ESS/s | x stan time | x stan ESS/s | "
             "compile s | divergences | max R-hat |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in table.items():
        lines.append(f"| {name} | {r['per_fit_s']:.1f}, {r['per_fit_s_max']:.1f} | {r['ess_bulk_min']:.0f} | "
                     f"{r['ess_bulk_per_s']:.0f} | {r['s_ratio_to_stan']:.2f} | {r['ess_per_s_ratio_to_stan']:.2f} | "
                     f"{r['compile_s']:.0f} | {r['divergences']} | {r['rhat_max']:.3f} |")
    print(f"\nseed model, {REPS} rounds, R cores {R_CORES}" + (f"; missing: {missing}" if missing else "") + "\n"
          + "\n".join(lines))


FREQUENTIST = {"lme4": {}, "lme4 wald": {"profile": False}, "glmmtmb": {}}


@pytest.mark.bench
@pytest.mark.parametrize("scenario, cell, label", [("seed_slopes", 0, "seed_slopes J=20"),
                                                   ("seed_slopes", 1, "seed_slopes J=8"),
                                                   ("funding_like", 0, "funding_like")])
def test_glmmtmb_against_lme4(benchmark, scenario, cell, label):
    engines, missing = _available(FREQUENTIST)
    if "glmmtmb" not in engines or "lme4" not in engines:
        pytest.skip("; ".join(missing))
    spec = load_scenario(scenario)
    datasets = [dataset_for(spec, cell, rep, RUN_SEED) for rep in range(FREQ_REPS + 1)]
    for est in engines.values():  # R's start and package loading
        est.fit(datasets[0].data, seed=0)
    fits: dict[str, list] = {n: [] for n in engines}
    def record(name, fit, seconds):
        fits[name].append((seconds, fit.converged, bool(fit.singular)))

    benchmark.pedantic(_rounds(engines, datasets[1:], record), rounds=FREQ_REPS, iterations=1)
    table = {n: {"per_fit_s": _med([r[0] for r in rows]), "converged": sum(r[1] for r in rows),
                 "singular": sum(r[2] for r in rows), "n": len(rows)} for n, rows in fits.items()}
    for row in table.values():
        row["ratio_to_lme4"] = row["per_fit_s"] / table["lme4"]["per_fit_s"]
        row["ratio_to_lme4_wald"] = row["per_fit_s"] / table["lme4 wald"]["per_fit_s"]
    benchmark.extra_info.update({"scenario": label, "engines": table})
    print(f"\n{label}: " + "; ".join(f"{n} {r['per_fit_s'] * 1000:.0f} ms (x{r['ratio_to_lme4']:.2f} lme4, "
                                       f"x{r['ratio_to_lme4_wald']:.2f} lme4 wald, {r['converged']}/{r['n']} conv., "
                                       f"{r['singular']} singular)"
                                       for n, r in table.items()))
