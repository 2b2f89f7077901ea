"""`hbench --help`, `hbench scenarios`, `hbench simulate` as a user runs them."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from compare.catalogue import scenario_names as shipped_scenarios

ROOT = Path(__file__).resolve().parent.parent


def hbench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "compare", *args], capture_output=True, text=True, cwd=ROOT)


def test_help_lists_subcommands():
    res = hbench("--help")
    assert res.returncode == 0
    for cmd in ("scenarios", "simulate"):
        assert cmd in res.stdout


def test_scenarios_lists_every_shipped_scenario_with_cells():
    res = hbench("scenarios")
    assert res.returncode == 0
    names = shipped_scenarios()
    for required in ("varying_intercept", "seed_slopes", "uncorrelated_slopes", "nested", "crossed_psych",
                     "offset_prior_means", "funding_like", "poll_high_dim", "mrp"):
        assert required in names
    for name in names:
        assert any(line.startswith(name) for line in res.stdout.splitlines())


def test_simulate_writes_csv_and_truth(tmp_path):
    out = tmp_path / "d.csv"
    res = hbench("simulate", "seed_slopes", "--cell", "0", "--rep", "2", "--seed", "99", "--out", str(out))
    assert res.returncode == 0, res.stderr
    frame = pd.read_csv(out)
    meta = json.loads(out.with_suffix(".json").read_text())
    assert list(frame.columns) == ["g", "x", "y"] and len(frame) == 20 * 14
    assert meta["truth"]["b[Intercept]"] == 30 and meta["truth"]["cor[g][Intercept,x]"] == -0.6
    again = tmp_path / "e.csv"
    hbench("simulate", "seed_slopes", "--cell", "0", "--rep", "2", "--seed", "99", "--out", str(again))
    assert out.read_bytes() == again.read_bytes()


def test_simulate_bad_input_exit_2(tmp_path):
    for args in (["nope", "--out", str(tmp_path / "d.csv")],
                 ["seed_slopes", "--cell", "99", "--out", str(tmp_path / "d.csv")],
                 ["seed_slopes", "--out", str(tmp_path / "missing" / "d.csv")]):
        res = hbench("simulate", *args)
        assert res.returncode == 2, args
        assert len(res.stderr.strip().splitlines()) == 1


def test_the_issue_13_tracebacks_are_one_line_now(tmp_path):
    """Inputs that used to end in a traceback: simulate --out naming a folder, --results naming a file, a
    seed past int64; each is one line and exit 2 (and writes nothing)."""
    a_file = tmp_path / "f"
    a_file.write_text("x")
    for args in (["simulate", "seed_slopes", "--out", str(tmp_path)],
                 ["run", "quick", "--results", str(a_file), "--no-progress"],
                 ["run", "quick", "--seed", str(2**63), "--results", str(tmp_path / "r"), "--no-progress"],
                 ["status", "nope", "--results", str(a_file)]):
        res = hbench(*args)
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, (args, res.stderr)
        assert res.stderr.startswith("hbench: error:") and "Traceback" not in res.stderr
    assert not (tmp_path / "r").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_a_reader_that_leaves_early_is_not_an_internal_error():
    """`hbench scenarios | head -1` was "hbench: internal error: BrokenPipeError" (exit 1)."""
    proc = subprocess.Popen([sys.executable, "-m", "compare", "scenarios", "-v"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT)
    proc.stdout.close()  # before hbench has written anything: its first write meets a closed pipe
    err = proc.stderr.read().decode()
    assert proc.wait() == 141 and err == "", err


def test_suite_keys_lists_every_key_a_shipped_suite_uses():
    """`hbench suite-keys` (text and JSON) is generated from the suite's typed tables: every key the shipped
    suites write appears in it under its table, with a type and a doc; the text names each table."""
    import tomllib

    from compare.catalogue import SHIPPED

    res = hbench("suite-keys", "--format", "json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert all(set(r) == {"table", "name", "type", "default", "range", "doc"} and r["doc"] for r in rows)
    listed = {(r["table"], r["name"]) for r in rows}
    for path in sorted((SHIPPED / "suites").glob("*.toml")):
        raw = tomllib.loads(path.read_text())
        used = {("", k) for k, v in raw.items() if not isinstance(v, (dict, list)) or k == "reference"}
        used |= {("failsafe", k) for k in raw.get("failsafe", {})}
        used |= {(f"[[{t}]]", k) for t in ("scenario", "engine") for entry in raw[t] for k in entry}
        assert used <= listed, (path.name, used - listed)
    from compare.settings import DEFAULT_LEVEL

    assert next(r for r in rows if (r["table"], r["name"]) == ("", "level"))["default"] == json.dumps(DEFAULT_LEVEL)
    text = hbench("suite-keys")
    assert text.returncode == 0
    for header in ("(top level)", "[failsafe]", "[[scenario]]", "[[engine]]"):
        assert header in text.stdout.splitlines()
