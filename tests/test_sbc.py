"""Simulation-based calibration both ways (slow): on seed_slopes' prior-DGP cell (J = 20), pymc fitted with
the scenario's own priors (what a sampler gets on a dgp = "prior" cell by default) gives uniform ranks for
every b, sd, cor and sigma; the same engine under a second label with the SD priors five times too wide is
caught.

200 replications by default (HBENCH_SBC_REPS to change it; the statistics below assume >= 200). Ranks are
among 99 thinned draws. Tolerances: the correct prior must pass the chi-square test at a Bonferroni-corrected
1% over the 6 parameters (p > 0.01 / 6); the wrong prior must fail it for an SD at p < 0.001 or leave the 95%
simultaneous ECDF band. Seeds are fixed, so the outcome is the same every run on this software stack."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from compare import harness, metrics
from compare.catalogue import load_scenario
from compare.store import RunStore

REPS = int(os.environ.get("HBENCH_SBC_REPS", "200"))
SHORT = "chains = 2, warmup = 300, draws = 300"
WIDE = ('"b[Intercept] ~ normal(30, 10)", "b[x] ~ normal(0.5, 0.5)", "sd[g][Intercept] ~ normal(0, 100)", '
        '"sd[g][x] ~ normal(0, 1.5)", "cor ~ lkj(2)", "sigma ~ exponential(0.1)"')
SUITE = f"""
name = "sbc"
seed = 7
reps = {REPS}
timeout = 600
[[scenario]]
name = "seed_slopes"
cells = [3]
[[engine]]
name = "pymc"
settings = {{ {SHORT} }}
[[engine]]
name = "pymc"
label = "pymc-wide-sd"
settings = {{ {SHORT}, priors = [{WIDE}] }}
"""
HYPER = ("b[", "sd[", "cor[", "sigma")


@pytest.mark.slow
def test_sbc_passes_with_the_scenarios_priors_and_catches_wide_sd_priors(tmp_path: Path):
    suite = tmp_path / "sbc.toml"
    suite.write_text(SUITE)
    harness.run(str(suite), run_id="sbc", root=tmp_path / "results", progress=False)
    table = RunStore("sbc", tmp_path / "results").load()
    assert load_scenario("seed_slopes").cell(3).dgp == "prior"
    sbc = metrics.sbc_summary(table)
    sbc = sbc[sbc["parameter"].str.startswith(HYPER)]
    right, wide = sbc[sbc["engine"] == "pymc"], sbc[sbc["engine"] == "pymc-wide-sd"]
    assert len(right) == 6 and (right["n"] >= 0.95 * REPS).all(), right
    assert (right["p_value"] > 0.01 / 6).all(), right[["parameter", "p_value", "inside_band"]].to_string()
    sds = wide[wide["parameter"].str.startswith("sd[")]
    caught = (sds["p_value"] < 0.001) | ~sds["inside_band"].astype(bool)
    assert caught.any(), sds[["parameter", "p_value", "inside_band"]].to_string()
