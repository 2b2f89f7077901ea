"""Scenarios and suites ship inside the package: a normal (non-editable) install runs from any folder, and a
user's own folder of scenarios and suites is searched first (--scenarios DIR / HBENCH_SCENARIOS)."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
MY_SCENARIO = """
name = "my_intercepts"
formula = "y ~ x + (1 | school)"
family = "gaussian"
layout = { factors = { school = 6 }, size = 5 }
covariates = { x = { dist = "normal", mean = 0, sd = 1 } }
truth = { b = { Intercept = 1.0, x = 0.5 }, sd = { school = { Intercept = 0.7 } }, sigma = 1.0 }
"""
MY_SUITE = """
name = "mine"
seed = 4
reps = 2
[[scenario]]
name = "my_intercepts"
[[scenario]]
name = "varying_intercept"
cells = [0]
[[engine]]
name = "mixedlm"
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The package built as a wheel and installed (not editable) into a folder of its own."""
    tmp = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"), str(ROOT)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next((tmp / "dist").glob("hbench-*.whl"))
    target = tmp / "site"
    inst = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                          capture_output=True, text=True)
    assert inst.returncode == 0, inst.stderr[-2000:]
    return target


def _hbench(site: Path, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HBENCH_SCENARIOS", "HBENCH_ENGINES")}
    return subprocess.run([sys.executable, "-m", "compare", *args], capture_output=True, text=True, cwd=cwd,
                          env={**environ, "PYTHONPATH": str(site), **env})


def test_installed_package_carries_its_scenarios_and_suites(installed, tmp_path):
    where = _hbench(installed, tmp_path, "--help")
    assert where.returncode == 0
    probe = subprocess.run([sys.executable, "-c", "import compare.catalogue as c; print(c.SHIPPED)"],
                           capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(installed)})
    assert probe.stdout.strip().startswith(str(installed)), "the installed copy, not the checkout, is under test"
    listed = _hbench(installed, tmp_path, "scenarios")
    assert listed.returncode == 0 and "seed_slopes" in listed.stdout and "funding_like" in listed.stdout
    assert list(tmp_path.iterdir()) == []  # listing wrote nothing into the user's folder


def test_installed_package_carries_its_r_code(installed, tmp_path):
    """The R engines' .R files are package data: the installed copy's R bridge finds every one the checkout has."""
    shipped = sorted(p.name for p in (ROOT / "compare" / "estimators" / "R").glob("*.R"))
    probe = subprocess.run([sys.executable, "-c", "from compare.estimators import _r; "
                            "print(_r.R_DIR); print(*sorted(p.name for p in _r.R_DIR.iterdir()))"],
                           capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(installed)})
    where, names = probe.stdout.splitlines()
    assert where.startswith(str(installed)), "the installed copy, not the checkout, is under test"
    assert shipped and names.split() == shipped


def test_a_users_folder_of_scenarios_and_suites_runs_from_an_empty_directory(installed, tmp_path):
    mine = tmp_path / "mine"
    (mine / "suites").mkdir(parents=True)
    (mine / "my_intercepts.toml").write_text(MY_SCENARIO)
    (mine / "suites" / "mine.toml").write_text(MY_SUITE)
    work = tmp_path / "work"
    work.mkdir()
    res = _hbench(installed, work, "--scenarios", str(mine), "run", "mine", "--run-id", "m", "--no-progress",
                  "--workers", "1")
    assert res.returncode == 0, res.stderr[-2000:]
    listed = _hbench(installed, work, "scenarios", HBENCH_SCENARIOS=str(mine))
    assert "my_intercepts" in listed.stdout and "seed_slopes" in listed.stdout
    status = _hbench(installed, work, "status", "m")
    assert "complete, 4/4" in status.stdout, status.stdout + status.stderr
    tutorial = _readme_tutorial(work / "results" / "m" / "parts")  # the README's own code, run on this run
    assert list(tutorial["by_sql"]["engine"]) == ["mixedlm"]
    assert tutorial["by_sql"]["coverage"].iloc[0] == pytest.approx(tutorial["coverage"]["mixedlm"])
    metrics = _hbench(installed, work, "metrics", "m")
    assert metrics.returncode == 0, metrics.stderr[-2000:]
    ivals = pd.read_csv(work / "results" / "m" / "metrics" / "intervals.csv")
    mine = ivals[(ivals["engine"] == "mixedlm") & (ivals["parameter"] == "b[x]") & (ivals["interval"] == "wald-z")]
    pooled = (mine["coverage"] * mine["n"]).sum() / mine["n"].sum()  # the tutorial pools the two scenarios
    assert len(mine) == 2 and tutorial["coverage"]["mixedlm"] == pytest.approx(pooled)
    missing = _hbench(installed, work, "--scenarios", str(tmp_path / "nope"), "scenarios")
    assert missing.returncode == 2 and "not a directory" in missing.stderr


def _readme_tutorial(parts: Path) -> dict:
    """Run the README's "Read the results" code block on `parts` (its run id swapped in); its variables."""
    text = (ROOT / "README.md").read_text()
    block = text[text.index("```python", text.index("Read the results")) + len("```python"):]
    code = block[:block.index("```")].replace("results/mine1/parts", str(parts))
    namespace: dict = {}
    exec(compile(code, "README.md tutorial", "exec"), namespace)  # noqa: S102 - our own README, under test
    return namespace


@pytest.mark.slow
def test_fresh_venv_runs_the_quick_suite_from_an_empty_directory(installed, tmp_path):
    """The issue's acceptance check: a fresh virtualenv, the wheel with its dependencies, `hbench run quick
    --reps 1` from an empty folder (minutes: it installs PyMC/Stan and compiles their models)."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    wheel = next(installed.parent.glob("dist/hbench-*.whl"))
    # Outside the checkout and without PYTHONPATH: `python -m pip` puts its working folder on sys.path, and a
    # checkout's hbench.egg-info there (or on PYTHONPATH) makes pip find hbench "already satisfied", install
    # nothing and exit 0, leaving no bin/hbench
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HBENCH_SCENARIOS", "HBENCH_ENGINES")}
    inst = subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True,
                          cwd=tmp_path, env=clean)
    assert inst.returncode == 0, inst.stderr[-2000:]
    assert (env_dir / "bin" / "hbench").exists(), f"pip installed no hbench script: {inst.stdout[-2000:]}"
    work = tmp_path / "empty"
    work.mkdir()
    res = subprocess.run([str(env_dir / "bin" / "hbench"), "run", "quick", "--reps", "1", "--run-id", "q",
                          "--no-progress"], capture_output=True, text=True, cwd=work, env=clean)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (work / "results" / "q" / "manifest.json").exists()
