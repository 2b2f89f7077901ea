"""hbench matrix (issue 23): --env parsing, cache keys, bad input as one line with exit 2 and nothing written;
and, marked slow, two real environments that differ in one pin running a tiny suite (MixedLM, 3 replications)
with the report showing both versions and the comparison."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from compare import envs
from compare.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "fixtures" / "matrix" / "tiny.toml"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def hbench(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "compare", *args], cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=1800)


@pytest.mark.parametrize("text, pins", [
    ("old=statsmodels==0.14.4", ("statsmodels==0.14.4",)),
    ("a=statsmodels==0.14.4, tqdm==4.66.5", ("statsmodels==0.14.4", "tqdm==4.66.5")),
    ("a=statsmodels>=0.14,<0.15,tqdm", ("statsmodels<0.15,>=0.14", "tqdm")),  # the comma before < continues it
    ("defaults=", ()),
    ("x= pymc==5.10.4 , pytensor==2.18.6 ", ("pymc==5.10.4", "pytensor==2.18.6")),
])
def test_spec_pins_split_on_commas_between_requirements(text, pins):
    assert envs.parse_env(text).pins == pins


def test_spec_can_be_a_requirements_file(tmp_path):
    req = tmp_path / "reqs.txt"
    req.write_text("# the old stack\nstatsmodels==0.14.4  # pinned\n\ntqdm==4.66.5\n")
    spec = envs.parse_env(f"old={req}")
    assert spec.name == "old" and spec.pins == ("statsmodels==0.14.4", "tqdm==4.66.5")
    req.write_text("-e .\n")
    with pytest.raises(InputError, match="only requirement lines"):
        envs.parse_env(f"old={req}")


@pytest.mark.parametrize("text, message", [
    ("statsmodels==0.14.4", "expected NAME=SPEC"),  # no name
    ("bad name=tqdm", "expected NAME=SPEC"),
    ("a=statsmodels===", "is not a requirement"),
    ("a=hbench==0.1", "hbench itself"),
])
def test_malformed_env_is_input_error(text, message):
    with pytest.raises(InputError, match=message):
        envs.parse_env(text)


def test_envs_need_two_distinct_names():
    with pytest.raises(InputError, match="at least two"):
        envs.parse_envs(["a=tqdm"])
    with pytest.raises(InputError, match="a given twice"):
        envs.parse_envs(["a=tqdm", "a=tabulate"])


def test_cache_key_is_the_resolved_pins_and_the_interpreter():
    lock = ("numpy==2.1.0", "statsmodels==0.14.4")
    key = envs.cache_key(lock, "cpython-3.11.7-linux")
    assert key == envs.cache_key(tuple(reversed(lock)), "cpython-3.11.7-linux")  # order does not matter
    assert key != envs.cache_key(("numpy==2.1.0", "statsmodels==0.15.0"), "cpython-3.11.7-linux")
    assert key != envs.cache_key(lock, "cpython-3.12.1-linux")


def test_lock_drops_hbench_comments_and_options():
    text = ("--index-url https://x\nhbench @ file:///src\n    # via -r -\nNumPy==2.1.0\n"
            "statsmodels==0.14.4\n    # via hbench\n")
    assert envs.parse_lock(text) == ("NumPy==2.1.0", "statsmodels==0.14.4")


def test_children_of_another_python_do_not_inherit_pythonpath(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/somewhere")
    env = envs.clean_env(Path("/env/bin"))
    assert "PYTHONPATH" not in env and env["PATH"].startswith("/env/bin") and env["PYTHONSAFEPATH"] == "1"


@pytest.mark.parametrize("args, message", [
    (["nosuchsuite", "--env", "a=tqdm", "--env", "b=tqdm"], "unknown suite"),
    ([str(TINY), "--env", "a=tqdm", "--env", "=tqdm"], "expected NAME=SPEC"),
    ([str(TINY), "--env", "a=tqdm"], "at least two"),
    ([str(TINY), "--env", "a=tqdm", "--env", "b=tqdm==0.0.0.999"], "does not resolve"),  # asks the index
])
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, args, message):
    res = hbench(tmp_path, "matrix", *args)
    assert res.returncode == 2, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and message in res.stderr
    assert not (tmp_path / "results").exists() and not (tmp_path / "reports").exists()


@pytest.mark.slow
def test_two_environments_differing_in_one_pin(tmp_path):
    """Two tqdm versions (hbench's progress bar: it cannot change an estimate): both environments build, run the
    tiny suite with one seed and compare as unchanged; the page names both versions. A second matrix with the
    same pins reuses both environments."""
    pins = ["--env", "old=tqdm==4.66.5", "--env", "new=tqdm==4.67.1"]
    res = hbench(tmp_path, "matrix", str(TINY), *pins, "--id", "m1", "--workers", "1")
    assert res.returncode == 0, res.stdout + res.stderr
    out = tmp_path / "reports" / "m1"
    page, md = (out / "index.html").read_text(), (out / "summary.md").read_text()
    for text in (page, md):
        assert "4.66.5" in text and "4.67.1" in text and "tqdm" in text
    assert "new against old" in page and "No measure moved" in page
    data = json.loads((out / "matrix.json").read_text())
    assert data["resolved"]["old"]["tqdm"] == "4.66.5" and data["resolved"]["new"]["tqdm"] == "4.67.1"
    cmp = data["comparisons"]["new"]
    assert not cmp["flagged"] and len(cmp["parameters"]) > 0 and not cmp["not_comparable"]
    assert all(r["judged"] == "cpu" for r in cmp["runtime"])  # both runs measured CPU seconds per fit
    for env in data["environments"]:  # each environment has its own tqdm and this checkout's hbench, not editable
        py = envs.env_python(tmp_path / "results" / ".envs" / env["key"])
        probe = subprocess.run([str(py), "-c", "import compare, tqdm; print(tqdm.__version__, compare.__file__)"],
                               capture_output=True, text=True, env=envs.clean_env())
        version, where = probe.stdout.split()
        assert version == data["resolved"][env["env"]]["tqdm"] and "site-packages" in where
    again = hbench(tmp_path, "matrix", str(TINY), *pins, "--id", "m2", "--workers", "1")
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("reused") == 2
    assert all(e["built now"] is False for e in json.loads((tmp_path / "reports" / "m2" / "matrix.json")
                                                         .read_text())["environments"])


def test_upgrade_suite_loads_with_python_engines_only():
    from compare.provenance import R_PACKAGES
    from compare.suite import load_suite

    suite = load_suite("upgrade")
    assert suite.reps == 40 and not {e.name for e in suite.engines} & set(R_PACKAGES)  # R: one version each
