"""The `stan` engine's two backends, PyStan 3 and CmdStan through cmdstanpy (issue 22).

CmdStan comes from `make setup` (scripts/install_cmdstan.sh). Where set-up was told to build it
(HBENCH_CMDSTAN_SRC set, as CI's .ci/run does) and none is found, these tests fail instead of skipping, so
CI cannot silently stop testing the CmdStan backend. Statistical checks use Monte Carlo standard errors
from the fits' own ESS (a posterior mean's MCSE is sd / sqrt(ess_bulk)); seeds are fixed.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from compare.catalogue import load_scenario
from compare.estimators import _cmdstan, get_estimator
from compare.estimators import stan as stan_module
from compare.estimators.stan import StanEstimator, cmdstan_path
from compare.simulate import dataset_for
from compare.store import RunStore

ROOT = Path(__file__).resolve().parent.parent
VALENCE_PRIORS = ["b ~ normal(0, 1)", "Intercept ~ normal(50, 20)", "sigma ~ exponential(0.1)"]
SHORT = {"warmup": 200, "draws": 200, "priors": VALENCE_PRIORS}
# a program that compiles in seconds (no precompiled header): for the compile cache, not for statistics
TINY = "parameters { real mu; } model { mu ~ normal(0, 1); }\n"


@pytest.fixture(scope="module")
def cmdstan() -> str:
    path = cmdstan_path()
    if path is None:
        if os.environ.get("HBENCH_CMDSTAN_SRC"):
            pytest.fail(f"set-up was to build CmdStan from {os.environ['HBENCH_CMDSTAN_SRC']} but none is found: "
                        f"{_cmdstan.missing()}")
        pytest.skip(f"no CmdStan here ({_cmdstan.missing()})")
    return path


def _seed_slopes(rep: int = 0):
    return dataset_for(load_scenario("seed_slopes"), 0, rep, 2024)


def test_backends_sample_the_same_posterior_within_mcse(cmdstan):
    """Same data, independent seeds: posterior means of b, sd and sigma agree within 4 combined MCSEs, the
    kept InferenceData has the same groups, variables and shapes, and each fit's notes name its backend."""
    ds = _seed_slopes()
    fits = {b: get_estimator("stan", {**SHORT, "backend": b, "keep_draws": True}).fit(ds.data, seed=ds.seed + k)
            for k, b in enumerate(["cmdstanpy", "pystan"])}
    a, b = fits["cmdstanpy"], fits["pystan"]
    assert f"backend: CmdStan {_cmdstan.version(cmdstan)} through cmdstanpy" in a.notes
    assert any(n.startswith("backend: PyStan") for n in b.notes)
    for name in ("b[Intercept]", "b[x]", "sd[g][Intercept]", "sd[g][x]", "sigma"):
        pa, pb = a.param(name), b.param(name)
        mcse = math.hypot(pa["se"] / math.sqrt(pa["ess_bulk"]), pb["se"] / math.sqrt(pb["ess_bulk"]))
        assert abs(pa["estimate"] - pb["estimate"]) < 4 * mcse, name
    assert list(a.params["parameter"]) == list(b.params["parameter"])
    assert a.idata.groups() == b.idata.groups()
    for group in a.idata.groups():
        da, db = a.idata[group], b.idata[group]
        assert {k: v.shape for k, v in da.data_vars.items()} == {k: v.shape for k, v in db.data_vars.items()}, group
    for field in ("divergences", "treedepth_hits", "ebfmi_min", "rhat_max", "ess_bulk_min"):
        assert math.isfinite(getattr(a.sampler, field)), field


def test_cmdstan_compile_error_is_one_line(cmdstan, tmp_path, monkeypatch):
    """stanc's message (what and where) in one line naming CmdStan and the log holding the full output;
    nothing half-built is left in the cache."""
    monkeypatch.setenv("HBENCH_CACHE", str(tmp_path))
    with pytest.raises(_cmdstan.CmdStanError) as err:
        _cmdstan.executable("parameters { real mu; } model { y ~ normal(mu, 1); }\n", cmdstan)
    text = str(err.value)
    assert "\n" not in text and "could not compile" in text and "Semantic error" in text, text
    assert "Identifier 'y' not in scope" in text and str(tmp_path) in text
    assert sorted(p.suffix for p in (tmp_path / "cmdstan").iterdir()) == [".lock", ".log"]


def test_a_fit_whose_program_does_not_compile_fails_in_one_line(cmdstan, tmp_path, monkeypatch):
    monkeypatch.setenv("HBENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(stan_module, "program_code", lambda: "model { real x = ; }\n")
    monkeypatch.setattr(StanEstimator, "_compiled", {})
    ds = _seed_slopes()
    with pytest.raises(_cmdstan.CmdStanError, match="Syntax error") as err:
        get_estimator("stan", {**SHORT, "backend": "cmdstanpy"}).fit(ds.data, seed=1)
    assert "\n" not in str(err.value)


def test_missing_cmdstan_is_one_line_and_auto_falls_back_to_pystan(tmp_path, monkeypatch):
    monkeypatch.setenv("CMDSTAN", str(tmp_path / "nowhere"))
    status = get_estimator("stan", {"backend": "cmdstanpy"}).available()
    assert not status and "\n" not in status.reason
    assert f"CMDSTAN={tmp_path / 'nowhere'} is not a built CmdStan installation" in status.reason
    auto = get_estimator("stan", {})
    assert auto.backend() == "pystan" and auto.available()


def test_missing_cmdstan_in_a_suite_is_a_skipped_row_with_that_line(tmp_path):
    suite = tmp_path / "s.toml"
    suite.write_text('name = "m"\nseed = 3\nreps = 1\n[[scenario]]\nname = "seed_slopes"\ncells = [0]\n'
                     '[[engine]]\nname = "stan"\nsettings = { backend = "cmdstanpy" }\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CMDSTAN": str(tmp_path / "nowhere")}
    res = subprocess.run([sys.executable, "-m", "compare", "run", str(suite), "--run-id", "m", "--no-progress",
                          "--results", str(tmp_path / "results")], capture_output=True, text=True, cwd=tmp_path,
                         env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = RunStore("m", tmp_path / "results").load()
    assert set(rows["status"]) == {"skipped"}
    assert rows["error"].str.contains("backend cmdstanpy: CMDSTAN=").all()
    assert not rows["error"].str.contains("\n").any()
    manifest = RunStore("m", tmp_path / "results").manifest()  # provenance: CmdStan's version, the backend
    assert manifest["versions"]["CmdStan"] == "missing" and manifest["engines"][0]["backend"] == "cmdstanpy"


def test_provenance_records_cmdstan_and_the_backend_auto_takes(cmdstan):
    from compare.estimators.stan import StanSettings
    from compare.provenance import engine_backend, versions

    assert versions(["stan"])["CmdStan"] == _cmdstan.version(cmdstan) and "CmdStan" not in versions(["pymc"])
    assert engine_backend("stan", StanSettings()) == "cmdstanpy"
    assert engine_backend("stan", StanSettings(backend="pystan")) == "pystan"
    assert engine_backend("pymc", None) is None


def test_compiled_once_per_machine_even_by_concurrent_workers(cmdstan, tmp_path, monkeypatch):
    """Two processes ask for the same program at once: one compiles (under the lock), the other waits and
    reuses it; a third finds it on disk. The executable runs."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HBENCH_CACHE": str(tmp_path)}
    code = ("import sys; from compare.estimators import _cmdstan; "
            "exe, now = _cmdstan.executable(sys.argv[1], sys.argv[2]); print(exe, now)")
    procs = [subprocess.Popen([sys.executable, "-c", code, TINY, cmdstan], stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    outs = [p.communicate(timeout=600)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(o[1] for o in outs) == ["False", "True"] and outs[0][0] == outs[1][0]
    monkeypatch.setenv("HBENCH_CACHE", str(tmp_path))
    exe, compiled = _cmdstan.executable(TINY, cmdstan)
    assert str(exe) == outs[0][0] and not compiled
    assert not list((tmp_path / "cmdstan").glob(".tmp-*"))  # the scratch folder was renamed into place
    get, _ = _cmdstan.sample(exe, cmdstan, {}, chains=2, warmup=50, draws=50, adapt_delta=0.8, max_treedepth=10,
                             seed=1)
    assert get("mu").shape == (2, 50, 1) and get("divergent__").shape == (2, 50, 1)


def test_pystan_fit_cache_note_is_a_note_not_a_failure(monkeypatch):
    """Regression (issue 19): when our chains' httpstan fit files are not all found, the fit gets a note;
    the note once read `s['chains']` off the frozen settings dataclass, a TypeError that failed the fit."""
    real = stan_module._drop_fits
    monkeypatch.setattr(stan_module, "_drop_fits", lambda names: real(names) - 1)
    ds = _seed_slopes()
    fit = get_estimator("stan", {"backend": "pystan", "chains": 2, "warmup": 100, "draws": 100,
                                 "priors": VALENCE_PRIORS}).fit(ds.data, seed=ds.seed)
    assert "httpstan fit cache: found 1 of 2 fit files to delete" in fit.notes
    assert not fit.params["estimate"].isna().any()
