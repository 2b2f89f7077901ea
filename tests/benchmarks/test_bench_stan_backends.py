"""The stan engine on CmdStan against stan on PyStan and against rstanarm, side by side in one run (issue 22).

1. The seed model (seed_slopes cell 0: J = 20, n_j = 14, y ~ x + (1 + x | g)), 4 chains x 1000 warm-up + 1000
   draws, adapt_delta 0.95, max_treedepth 15, the seed's stan_glmer priors: "stan cmdstanpy", "stan pystan" and
   rstanarm (R_CORES cores), warmed first (compiles and R's start reported apart), then REPS rounds of one new
   replication each, engine order rotating (tests/benchmarks/test_bench_r_engines.py's protocol). Per fit: min
   bulk ESS (over b, sd, cor, sigma and the group effects) per wall second of engine.fit(), and per sampling
   second (the sampler call alone).
2. Per-fit overhead of each backend on a small model (varying_intercept cell 0: J = 8, n_j = 5, y ~ x + (1 | g)),
   4 chains x 100 + 100: median wall seconds of engine.fit() over OVERHEAD_REPS fits, and how much of it is not
   the sampler call (data in, draws out, summaries, LOO, predictive draws: the part `sampling_s` excludes).

Timings are recorded, not asserted (shared, noisy machine). Run from the repository root:

    pytest -m bench tests/benchmarks/test_bench_stan_backends.py -s          # both parts (about 5 min)
    HBENCH_BENCH_REPS=6 pytest -m bench tests/benchmarks/test_bench_stan_backends.py -s -k seed_model
"""

from __future__ import annotations

import os
import statistics
import time

import pytest

from compare.catalogue import load_scenario
from compare.simulate import dataset_for
from tests.benchmarks.test_bench_r_engines import CONTROLS, R_CORES, RUN_SEED, _available, _med, _rounds

REPS = int(os.environ.get("HBENCH_BENCH_REPS", "6"))
OVERHEAD_REPS = int(os.environ.get("HBENCH_BENCH_OVERHEAD_REPS", "10"))
BACKENDS = {"stan cmdstanpy": {**CONTROLS, "backend": "cmdstanpy"},
            "stan pystan": {**CONTROLS, "backend": "pystan"},
            "rstanarm": {**CONTROLS, "cores": R_CORES}}


@pytest.mark.bench
def test_stan_backends_and_rstanarm_on_the_seed_model(benchmark):
    engines, missing = _available(BACKENDS)
    assert {"stan cmdstanpy", "stan pystan"} <= set(engines), missing
    scenario = load_scenario("seed_slopes")
    datasets = [dataset_for(scenario, 0, rep, RUN_SEED) for rep in range(REPS + 1)]
    warm = {}
    for name, est in engines.items():
        t0 = time.perf_counter()
        fit = est.fit(datasets[0].data, seed=datasets[0].seed)
        warm[name] = {"compile_s": fit.compile_s, "first_fit_s": time.perf_counter() - t0}
    fits: dict[str, list] = {n: [] for n in engines}

    def record(name, fit, seconds):
        assert fit.compile_count == 0, (name, "compiled again")
        fits[name].append({"s": seconds, "ess": fit.sampler.ess_bulk_min, "sampling_s": fit.sampling_s,
                           "div": fit.sampler.divergences, "rhat": fit.sampler.rhat_max_hyper})

    benchmark.pedantic(_rounds(engines, datasets[1:], record), rounds=REPS, iterations=1)
    table = {name: {"per_fit_s": _med([r["s"] for r in rows]), "sampling_s": _med([r["sampling_s"] for r in rows]),
                    "ess_bulk_min": _med([r["ess"] for r in rows]),
                    "ess_per_wall_s": _med([r["ess"] / r["s"] for r in rows]),
                    "ess_per_wall_s_min": min(r["ess"] / r["s"] for r in rows),
                    "ess_per_sampling_s": _med([r["ess"] / r["sampling_s"] for r in rows]),
                    "divergences": sum(r["div"] for r in rows), "rhat_max": max(r["rhat"] for r in rows),
                    "n": len(rows), **warm[name]} for name, rows in fits.items()}
    ref = table.get("rstanarm", {}).get("ess_per_wall_s", float("nan"))
    for row in table.values():
        row["x_rstanarm"] = row["ess_per_wall_s"] / ref
        row["x_pystan"] = row["ess_per_wall_s"] / table["stan pystan"]["ess_per_wall_s"]
    benchmark.extra_info.update({"engines": table, "missing": missing, "reps": REPS, "r_cores": R_CORES})
    lines = ["| engine | per fit s | sampling s | min bulk ESS | min bulk ESS/s (median; min) | x rstanarm | "
             "x PyStan | ESS per sampling s | compile s | divergences | max R-hat |", "|---" * 11 + "|"]
    for name, r in table.items():
        lines.append(f"| {name} | {r['per_fit_s']:.1f} | {r['sampling_s']:.1f} | {r['ess_bulk_min']:.0f} | "
                     f"{r['ess_per_wall_s']:.0f}; {r['ess_per_wall_s_min']:.0f} | {r['x_rstanarm']:.2f} | "
                     f"{r['x_pystan']:.2f} | {r['ess_per_sampling_s']:.0f} | {r['compile_s']:.0f} | "
                     f"{r['divergences']} | {r['rhat_max']:.3f} |")
    print(f"\nseed model, {REPS} rounds, R cores {R_CORES}" + (f"; missing: {missing}" if missing else "") + "\n"
          + "\n".join(lines))


@pytest.mark.bench
def test_per_fit_overhead_of_each_backend_on_a_small_model(benchmark):
    small = {"chains": 4, "warmup": 100, "draws": 100}
    engines, missing = _available({"stan cmdstanpy": {**small, "backend": "cmdstanpy"},
                                   "stan pystan": {**small, "backend": "pystan"}})
    assert len(engines) == 2, missing
    scenario = load_scenario("varying_intercept")
    datasets = [dataset_for(scenario, 0, rep, RUN_SEED) for rep in range(OVERHEAD_REPS + 1)]
    assert datasets[0].data.design.n == 40
    for est in engines.values():
        est.fit(datasets[0].data, seed=datasets[0].seed)
    fits: dict[str, list] = {n: [] for n in engines}

    def record(name, fit, seconds):
        fits[name].append((seconds, fit.sampling_s))

    benchmark.pedantic(_rounds(engines, datasets[1:], record), rounds=OVERHEAD_REPS, iterations=1)
    table = {n: {"per_fit_s": _med([s for s, _ in rows]), "sampling_s": _med([t for _, t in rows]),
                 "outside_sampler_s": _med([s - t for s, t in rows]), "n": len(rows)} for n, rows in fits.items()}
    benchmark.extra_info.update({"engines": table})
    print("\nsmall model (J = 8, n = 40, 4 x 100 + 100): " + "; ".join(
        f"{n} {r['per_fit_s']:.2f} s a fit (sampler call {r['sampling_s']:.2f} s, rest {r['outside_sampler_s']:.2f} s)"
        for n, r in table.items()))
    assert statistics.median(r["n"] for r in table.values()) == OVERHEAD_REPS
