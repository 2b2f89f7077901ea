"""Negative binomial, the slow half (issue 20's done-when): every engine that fits NB2 recovers b and phi on one
large simulated dataset, and the samplers' simulation-based calibration on negbin's prior-DGP cell is uniform.

Recovery: negbin's truth (b = (1, 0.3), sd = (0.5, 0.2), cor 0.3, phi = 2) at J = 100 groups of 50 rows (5,000
rows), one dataset with a fixed seed. An estimate misses its truth by sampling error (its SE, or posterior SD)
and, for the samplers, Monte Carlo error (posterior SD / sqrt(bulk ESS)); each must be within Z = 3.5 of
sqrt(SE^2 + MCSE^2) (a 1-in-2,000 miss per comparison for a correct engine; 18 comparisons here).

SBC: 200 replications (HBENCH_SBC_REPS) of negbin cell 2 (prior DGP, J = 30 x 10 rows), pymc and stan fitted
with the scenario's priors (the samplers' default on a dgp = "prior" cell); ranks among 99 thinned draws.
Every b, sd, cor and phi must stay inside the simultaneous ECDF band at level 1 - 0.05 / 6 (Bonferroni over an
engine's 6 parameters) and pass the chi-square test at p > 0.01 / 6, as tests/test_sbc.py asks of seed_slopes.

Measured (3 Dec 2026, load ~10 on 2 cores): recovery 31 min for the six engines (rstanarm ~9 min, brms ~9 min
with its compile); phi 1.975-1.980 (SE 0.071-0.077) everywhere, b[x] 0.293-0.297 (SE 0.026-0.027). SBC, 200
replications: pymc 11 min, chi-square p 0.07-0.33; stan (CmdStan) 16 min, p 0.13-0.97; all inside the band.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import numpy as np
import pytest

from compare import harness, metrics
from compare.catalogue import load_scenario
from compare.estimators import get_estimator
from compare.simulate import simulate
from compare.spec import Layout
from compare.store import RunStore

Z = 3.5
ENGINES = {
    "lme4": {},
    "glmmtmb": {},
    "pymc": {"chains": 4, "warmup": 500, "draws": 500},
    "stan": {"chains": 4, "warmup": 500, "draws": 500},
    "rstanarm": {"chains": 2, "warmup": 500, "draws": 500},
    "brms": {"chains": 2, "warmup": 500, "draws": 500},
}
CHECKED = ("b[Intercept]", "b[x]", "phi")


def large_dataset():
    cell = load_scenario("negbin").cell(1)  # fixed DGP, J = 100
    cell = dataclasses.replace(cell, layout=Layout(cell.layout.factors, 50))
    return simulate(cell, np.random.default_rng(20))


@pytest.mark.slow
@pytest.mark.parametrize("engine", list(ENGINES))
def test_every_negbinomial_engine_recovers_b_and_phi_on_a_large_dataset(engine):
    est = get_estimator(engine, ENGINES[engine])
    if not est.available():
        pytest.skip(f"{engine} unavailable: {est.available().reason}")
    ds = large_dataset()
    assert len(ds.frame) == 5000 and ds.truth["phi"] == 2.0
    fit = est.fit(ds.data, seed=3)
    for name in CHECKED:
        row = fit.param(name)
        mcse = row["se"] / math.sqrt(row["ess_bulk"]) if np.isfinite(row["ess_bulk"]) else 0.0
        tol = Z * math.hypot(row["se"], mcse)
        print(f"{engine} {name}: {row['estimate']:.4f} (se {row['se']:.4f}, mcse {mcse:.4f}) truth {ds.truth[name]}")
        assert abs(row["estimate"] - ds.truth[name]) <= tol, (engine, name, row["estimate"], ds.truth[name], tol)


REPS = int(os.environ.get("HBENCH_SBC_REPS", "200"))
SHORT = "chains = 2, warmup = 300, draws = 300"
SUITE = """
name = "sbc-negbin"
seed = 11
reps = {reps}
timeout = 600
[[scenario]]
name = "negbin"
cells = [2]
[[engine]]
name = "{engine}"
settings = {{ {short} }}
"""
HYPER = ("b[", "sd[", "cor[", "phi")


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["pymc", "stan"])
def test_sbc_of_the_samplers_on_the_prior_dgp_negbinomial_cell_is_uniform(tmp_path: Path, engine: str):
    suite = tmp_path / "sbc.toml"
    suite.write_text(SUITE.format(reps=REPS, engine=engine, short=SHORT))
    harness.run(str(suite), run_id="sbc", root=tmp_path / "results", progress=False)
    table = RunStore("sbc", tmp_path / "results").load()
    assert load_scenario("negbin").cell(2).dgp == "prior"
    sbc = metrics.sbc_summary(table, level=1 - 0.05 / 6)
    mine = sbc[sbc["parameter"].str.startswith(HYPER) & (sbc["engine"] == engine)]
    print(mine[["engine", "parameter", "n", "p_value", "ecdf_max_abs_diff", "inside_band"]].to_string())
    assert len(mine) == 6 and (mine["n"] >= 0.95 * REPS).all(), mine
    assert mine["inside_band"].astype(bool).all(), mine.to_string()
    assert (mine["p_value"] > 0.01 / 6).all(), mine.to_string()
