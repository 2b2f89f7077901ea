"""Fuzzing (issue 13): property-based tests over scenario specs, suites and CSVs.

Every input has one of two outcomes: a correct result, or exactly one line on stderr starting
"hbench: error:" with exit status 2 and nothing written. Never a traceback, never "internal error".

- Scenario specs: the shipped specs, parsed, mutated (keys dropped or renamed, values of the wrong type,
  NaN/inf/huge/negative numbers, formula text spliced, grid values, layout sizes, distribution parameters,
  truth SDs and correlations), written back as TOML and run through `hbench simulate` and `hbench scenarios`;
  plus raw-text damage (truncation, stray bytes, invalid UTF-8).
- Suites: the shipped suites and a small suite of test-double engines, mutated the same way and validated by
  `compare.suite.load_suite` (with --reps/--seed now and then); a suite that fails validation is also given to
  `hbench run`, which must say the same in one line and write no run folder. Valid suites are not run (too slow):
  load_suite returning a Suite is the result.
- CSVs for `hbench fit`: small hostile frames (empty group cells, NaN/inf, text in numeric columns, one group,
  one row per group, constant response, names formulae or R read as literals, successes above trials, negative
  counts, unicode and duplicated column names, empty files) fitted with mixedlm and bayesmixedglm-map.

The budget is fixed and derandomized (the same examples on every run), so `make test` stays fast and
reproducible. For a deeper search: HBENCH_FUZZ_EXAMPLES=2000 pytest tests/test_fuzz.py (per test).
Commands run in-process through compare.cli.main, which is what the `hbench` script calls.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import math
import os
import shutil
import tempfile
import tomllib
import warnings
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compare import catalogue, cli
from compare import suite as suite_module
from compare.catalogue import ENV as SCENARIOS_ENV
from compare.catalogue import SHIPPED
from compare.errors import InputError
from compare.suite import Suite, load_suite

DEEP = int(os.environ.get("HBENCH_FUZZ_EXAMPLES", "0") or 0)


def budget(examples: int):
    """`examples` per test (HBENCH_FUZZ_EXAMPLES overrides), the same ones on every run, no example database."""
    return settings(max_examples=DEEP or examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


# -- a small TOML writer (tomllib only reads) -------------------------------------------------------------

def _toml_str(s: str) -> str:
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _toml_str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_str(str(k))} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"no TOML for {v!r}")


def toml_text(table: dict[str, Any]) -> str:
    """Every top-level key as `"key" = value`, tables inline: enough for anything the strategies generate."""
    return "".join(f"{_toml_str(str(k))} = {_toml_value(v)}\n" for k, v in table.items())


def _same(a: Any, b: Any) -> bool:
    """Equality with NaN equal to NaN (to check the writer round-trips)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def write_toml(path: Path, table: dict[str, Any]) -> str:
    text = toml_text(table)
    assert _same(tomllib.loads(text), table), "the fuzz TOML writer lost something"
    path.write_text(text, encoding="utf-8")
    return text


# -- running hbench in-process -----------------------------------------------------------------------------

@contextlib.contextmanager
def _isolated(tmp: Path):
    """Restore the scenario-folder variable (`--scenarios` prepends to it) and keep internal-error files in tmp."""
    saved_env, saved_tmp = os.environ.get(SCENARIOS_ENV), tempfile.tempdir
    tempfile.tempdir = str(tmp)
    try:
        yield
    finally:
        tempfile.tempdir = saved_tmp
        if saved_env is None:
            os.environ.pop(SCENARIOS_ENV, None)
        else:
            os.environ[SCENARIOS_ENV] = saved_env


class _Dropped(logging.Handler):
    """formulae logs when it drops incomplete rows, from X only: the data rule (compare.data) must prevent that."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "removing" in record.getMessage():
            self.messages.append(record.getMessage())


def hbench(tmp: Path, *args: str) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of `hbench ARGS`. Python warnings go to stderr in a real run (pytest would
    swallow them here), so they are recorded and put back on stderr as the lines a user would see."""
    out, err = io.StringIO(), io.StringIO()
    formulae_log, dropped = logging.getLogger("formulae"), _Dropped()
    level = formulae_log.level
    formulae_log.addHandler(dropped)
    formulae_log.setLevel(logging.INFO)
    try:
        with (_isolated(tmp), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err),
              warnings.catch_warnings(record=True) as caught):
            warnings.simplefilter("always")
            code = cli.main([str(a) for a in args])
    finally:
        formulae_log.removeHandler(dropped)
        formulae_log.setLevel(level)
    assert not dropped.messages, f"formulae dropped rows behind the data rule's back: {dropped.messages}"
    shown = "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line) for w in caught)
    return code, out.getvalue(), shown + err.getvalue()


def assert_no_crash(code: int, err: str) -> None:
    assert "Traceback" not in err and "internal error" not in err, err
    assert code in (0, 2), (code, err)


def assert_one_line_error(code: int, out: str, err: str) -> str:
    """Exit 2 and exactly one stderr line starting 'hbench: error:'; returns the line."""
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("hbench: error:"), (code, err)
    return lines[0]


@contextlib.contextmanager
def scratch():
    """A fresh folder per example (pytest's tmp_path is one per test, shared by all its examples)."""
    path = Path(tempfile.mkdtemp(prefix="hbench-fuzz-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- mutating parsed TOML ----------------------------------------------------------------------------------

HUGE = [2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**30, 1e300, 1.7976931348623157e308, 1e-320]
WORDS = ["", " ", "1", "0.5", "nan", "inf", "true", "NA", "None", "True", "x", "g", "y", "z", "Intercept", "*",
         "Intercept,x", "x,Intercept", "normal", "halfnormal", "lkj", "values", "constant", "categorical",
         "uniform_int", "poisson", "bernoulli", "cluster", "stratified", "fixed", "prior", "gaussian", "binomial",
         "logit", "identity", "log", "probit", "ols-double", "failing-double", "mixedlm", "lme4",
         "varying_intercept", "seed_slopes", "funding_like", "a/b", "..", "é", "名", "\u0000", "g1:g2",
         "layout.factors.g", "truth.sd.g.x", "layout.size", "mean", "sd", "levels", "probs", "values", "low",
         "high", "p", "rate", "eta", "value", "min", "chisq", "laplace", "t", "skewnormal", "mixture", "df",
         "alpha", "sdlog", "delta", "ratio", "residual", "log_sigma", "shape.g.dist", "negbinomial", "phi", "x_within",
         "x_mean", "center", "between", "group", "cor", "by", "slope", "tests.generators:two_level"]
SCALARS = st.one_of(
    st.sampled_from([0, 1, -1, 2, 3, 20, 0.5, -0.5, 1.0, 0.0, -0.0, 0.999, 1.5, math.nan, math.inf, -math.inf,
                     True, False, *HUGE, *(-h for h in HUGE)]),
    st.integers(-5, 40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(WORDS),
    st.text(max_size=6),
)
SCALARS_INT = st.one_of(st.integers(-3, 5), st.sampled_from([0, 2**63 - 1, 2**63, 2**64, 10**12, -(2**63)]))
KEYS = st.one_of(st.sampled_from(WORDS[1:]), st.text(min_size=1, max_size=6))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=3),
                      max_leaves=6)
# pieces spliced into strings (formulae, names, dotted grid keys)
TOKENS = ["(", ")", "|", "||", "+", "-", "~", "0", "1", "-1", "x", "g", "y", ":", "/", "*", ",", " ", "cbind(",
          "trials(", "offset(", "I(", "C(", "**2", "^", ".", "Intercept", "True", "NA", "z", "(1 | g)",
          "(x || g)", "(1 + x | g)", "é", "\n", "\\", "'", '"']


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    out = []
    for k, v in items:
        out.append(prefix + (k,))
        out += _paths(v, prefix + (k,))
    return out


def _parent(root: Any, path: tuple) -> Any:
    node = root
    for k in path[:-1]:
        node = node[k]
    return node


@st.composite
def spliced(draw, text: str) -> str:
    """`text` with a slice removed, replaced or extended by formula-ish tokens."""
    i = draw(st.integers(0, len(text)))
    j = draw(st.integers(i, min(len(text), i + 4)))
    piece = draw(st.lists(st.sampled_from(TOKENS) | st.text(max_size=2), max_size=2).map("".join))
    return text[:i] + piece + text[j:]


@st.composite
def tweaked(draw, value: Any) -> Any:
    """A near miss of `value` of the same kind: what a typo or an off-by-a-lot edit gives."""
    if isinstance(value, bool):
        return draw(st.sampled_from([not value, int(value), str(value).lower()]))
    if isinstance(value, (int, float)):
        return draw(st.sampled_from([0, -value, value + 1, value - 1, value * 1e6, value / 1e6, float(value),
                                     str(value), math.nan, math.inf, 2**64, -(2**63) - 1, 0.5, 50, 800, 1e300,
                                     -1e300, 1.7e308, 1e-300]))
    if isinstance(value, str):
        return draw(spliced(value))
    if isinstance(value, list):
        op = draw(st.sampled_from(["append", "dup", "empty", "pop", "nest"]))
        if op == "append":
            return value + [draw(SCALARS)]
        if op == "dup" and value:
            return value + [value[draw(st.integers(0, len(value) - 1))]]
        if op == "pop" and value:
            return value[:-1]
        if op == "nest":
            return [value]
        return []
    if isinstance(value, dict):
        return {**value, draw(KEYS): draw(VALUES)}
    return draw(VALUES)


@st.composite
def mutated(draw, base: dict[str, Any], max_edits: int = 3) -> dict[str, Any]:
    """`base` after 1..max_edits edits at random places: drop, replace by any value, rename, tweak, add a key."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, max_edits))):
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _parent(doc, path), path[-1]
        op = draw(st.sampled_from(["drop", "replace", "rename", "tweak", "tweak", "tweak", "add"]))
        if op == "drop":
            del parent[key]
        elif op == "replace":
            parent[key] = draw(VALUES)
        elif op == "rename" and isinstance(parent, dict):
            new = draw(KEYS | spliced(key))
            if new not in parent:
                parent[new] = parent.pop(key)
        elif op == "add" and isinstance(parent, dict):
            parent.setdefault(draw(KEYS), draw(VALUES))
        else:
            parent[key] = draw(tweaked(parent[key]))
    return doc


# -- 1. scenario specs -------------------------------------------------------------------------------------

SPECS = {p.stem: tomllib.loads(p.read_text()) for p in sorted(SHIPPED.glob("*.toml"))}


# what can go wrong in one replication's draws when the load-time dry run went well
REP_ERRORS = ("drew", "overflows", "poisson mean", "do not tile")


def check_spec(tmp: Path, spec_path: Path, cell: int = 0, rep: int = 0, seed: int = 1) -> tuple[int, str]:
    """`hbench simulate SPEC --cell C --rep R --seed S`: a dataset and its truth, or one line and no file."""
    out_csv = tmp / "out" / "data.csv"
    out_csv.parent.mkdir()
    code, out, err = hbench(tmp, "simulate", spec_path, "--cell", cell, "--rep", rep, "--seed", seed, "--out", out_csv)
    assert_no_crash(code, err)
    if code == 0:
        frame = pd.read_csv(out_csv)
        meta = json.loads(out_csv.with_suffix(".json").read_text())
        assert len(frame) > 0 and isinstance(meta["truth"], dict) and (meta["cell"], meta["rep"]) == (cell, rep)
        numbers = frame.select_dtypes("number").to_numpy(dtype=float)
        assert np.isfinite(numbers).all(), "a simulated dataset holds NaN or infinite values"
        assert all(math.isfinite(v) for v in meta["truth"].values()), "a true value is NaN or infinite"
    else:
        assert_one_line_error(code, out, err)
        assert list(out_csv.parent.iterdir()) == []
    return code, err


@budget(300)
@given(data=st.data())
def test_fuzz_scenario_specs(data):
    name = data.draw(st.sampled_from(sorted(SPECS)), label="shipped spec")
    doc = data.draw(mutated(SPECS[name]), label="mutated spec")
    with scratch() as tmp:
        folder = tmp / "specs"
        folder.mkdir()
        spec_path = folder / "fz.toml"
        write_toml(spec_path, doc)
        where = data.draw(st.fixed_dictionaries({"cell": st.sampled_from([0, 0, 0, 1, 3, -1, 10**20]),
                                                 "rep": st.sampled_from([0, 0, 0, 7, -1, 2**64]),
                                                 "seed": st.sampled_from([1, 1, 1, 0, -1, 2**63, 10**40])}),
                          label="--cell/--rep/--seed")
        code, sim_err = check_spec(tmp, spec_path, **where)
        if data.draw(st.integers(0, 3), label="also list") == 0:
            listed, out, err = hbench(tmp, "--scenarios", folder, "scenarios")
            assert_no_crash(listed, err)
            if listed == 2:
                assert_one_line_error(listed, out, err)
                assert code == 2, "a spec `hbench scenarios` refuses must not simulate"
            elif where == {"cell": 0, "rep": 0, "seed": 1}:  # then only a replication's own draws may fail
                assert code == 0 or any(w in sim_err for w in REP_ERRORS), f"a listed spec must simulate: {sim_err}"


@budget(100)
@given(data=st.data())
def test_fuzz_scenario_spec_text(data):
    """Raw damage to a spec file: truncated, bytes inserted (invalid UTF-8, NUL, stray quotes), lines dropped."""
    name = data.draw(st.sampled_from(sorted(SPECS)), label="shipped spec")
    raw = (SHIPPED / f"{name}.toml").read_bytes()
    op = data.draw(st.sampled_from(["truncate", "insert", "drop_line", "dup_line"]), label="op")
    lines = raw.splitlines(keepends=True)
    if op == "truncate":
        raw = raw[:data.draw(st.integers(0, len(raw)))]
    elif op == "insert":
        i = data.draw(st.integers(0, len(raw)))
        junk = data.draw(st.sampled_from([b"\xff", b"\xc3", b"\x00", b'"', b"[", b"]", b"=", b"\n[grid]\n",
                                          b"\r", b"\xef\xbb\xbf", b"#"]) | st.binary(max_size=3))
        raw = raw[:i] + junk + raw[i:]
    else:
        k = data.draw(st.integers(0, len(lines) - 1))
        lines[k:k + 1] = [] if op == "drop_line" else [lines[k], lines[k]]
        raw = b"".join(lines)
    with scratch() as tmp:
        spec_path = tmp / "fz.toml"
        spec_path.write_bytes(raw)
        check_spec(tmp, spec_path)


# -- 2. suites ---------------------------------------------------------------------------------------------

def _register_doubles() -> None:
    import tests.doubles
    from compare.estimators import engine_names, register

    engine_names()  # discover the shipped engines first, so the doubles are added to, not instead of, them
    for cls in tests.doubles.ESTIMATORS:
        register(cls)


SMALL_SUITE = {
    "name": "fz", "seed": 5, "reps": 2, "timeout": 30, "level": 0.9, "reference": "ols-double",
    "failsafe": {"max_failure_rate": 0.5, "min_fits": 3},
    "scenario": [{"name": "varying_intercept", "cells": [0, 4], "reps": 2}, {"name": "seed_slopes", "cells": [0]}],
    "engine": [{"name": "ols-double", "settings": {"shift": 0.0}, "only": ["varying_intercept"], "max_reps": 1},
               {"name": "failing-double", "label": "f", "settings": {"fail_seeds": [1, 2]}},
               {"name": "sleepy-double", "settings": {"slow_seeds": [3], "sleep": 0.5}},
               {"name": "pymc", "max_reps": 1, "settings": {"warmup": 20, "draws": 20, "chains": 2, "adapt_delta": 0.9,
                                                            "priors": ["b ~ normal(0, 4)", "sd ~ cauchy(0, 1)",
                                                                       "cor ~ lkj(4)", "sigma ~ exponential(1)"]}},
               {"name": "stan", "only": ["seed_slopes"],
                "settings": {"priors": ["Intercept ~ student_t(3, 0, 2.5)", "cov ~ decov(1, 1, 1, 1)"]}},
               {"name": "lme4", "settings": {"profile": False}}],
}
SUITES = {"small": SMALL_SUITE,
          **{p.stem: tomllib.loads(p.read_text()) for p in sorted((SHIPPED / "suites").glob("*.toml"))}}


_LOADED: dict[str, Any] = {}


def _load_once(name: str):
    """catalogue.load_scenario, memoised: the shipped specs do not change, and loading one (a dry run of every
    cell) is most of the cost of validating a suite. Unknown names still raise, every time."""
    if name not in _LOADED:
        _LOADED[name] = catalogue.load_scenario(name)
    return _LOADED[name]


@budget(400)
@given(data=st.data())
def test_fuzz_suites(data):
    _register_doubles()
    name = data.draw(st.sampled_from(["small", "small", "small", *sorted(set(SUITES) - {"small"})]), label="suite")
    doc = data.draw(mutated(SUITES[name]), label="mutated suite")
    flags = data.draw(st.fixed_dictionaries({}, optional={"--reps": SCALARS_INT, "--seed": SCALARS_INT}),
                      label="--reps/--seed")
    with scratch() as tmp, mock.patch.object(suite_module, "load_scenario", _load_once):
        path = tmp / "fz.toml"
        write_toml(path, doc)
        try:
            suite = load_suite(path, reps=flags.get("--reps"), seed=flags.get("--seed"))
        except InputError as exc:
            message = str(exc)
        else:
            assert isinstance(suite, Suite)  # valid: running it is another test's job (and slow)
            return
        results = tmp / "results"
        args = [a for kv in flags.items() for a in kv]
        code, out, err = hbench(tmp, "run", path, *args, "--results", results, "--no-progress")
        line = assert_one_line_error(code, out, err)
        assert cli.one_line(message) in line
        assert not results.exists() or [p for p in results.iterdir() if p.name != ".starting"] == []
        assert not (results / ".starting").exists() or list((results / ".starting").iterdir()) == []


# -- 3. CSVs for `hbench fit` ------------------------------------------------------------------------------

NAMES = ["y", "x", "g", "n", "True", "NA", "F", "x.1", "é", "名前", " x", "y y", "1", "Intercept"]
CELL = st.one_of(
    st.floats(-1e3, 1e3, allow_nan=False).map(lambda v: repr(round(v, 3))),
    st.integers(-3, 12).map(str),
    st.sampled_from(["", " ", "nan", "NaN", "NA", "inf", "-inf", "1e308", "1e999", "a", "1,5", "True", "é", '"x"',
                     "0", "0", "1", "1"]),
)
GROUPS = st.sampled_from(["a", "b", "c", "", " ", "1", "2", "NA", "é", "a b"])


@st.composite
def csv_case(draw):
    """A small CSV (bytes), a formula over its columns and the options of one `hbench fit`."""
    family = draw(st.sampled_from(["gaussian", "gaussian", "binomial", "poisson"]))
    if draw(st.integers(0, 3)) > 0:
        y, x, g, n = "y", "x", "g", "n"
    else:  # hostile names, possibly the same name twice
        y, x, g, n = (draw(st.sampled_from(["y", "x", "g", "n"]) | st.sampled_from(NAMES)) for _ in range(4))
    constant = draw(st.integers(0, 9)) == 0  # the same response on every row
    header = [y, x, g] + ([n] if family == "binomial" else [])
    header = draw(st.permutations(header))
    if draw(st.integers(0, 7)) == 0:  # a duplicated or an extra column
        header = header + [draw(st.sampled_from(header + NAMES))]
    n_groups = draw(st.integers(1, 5))
    per_group = draw(st.integers(1, 5))
    labels = draw(st.lists(GROUPS, min_size=n_groups, max_size=n_groups))
    numbers = {y: draw(st.floats(-5, 5, allow_nan=False)), x: draw(st.floats(-2, 2, allow_nan=False))}
    clean = draw(st.integers(0, 2)) > 0  # most cases: plausible numbers with a few hostile cells
    rows = []
    for lab in labels:
        for i in range(per_group):
            row = []
            for col in header:
                if col == g:
                    row.append(lab)
                elif col == y and constant:
                    row.append("1")
                elif clean and draw(st.integers(0, 9)) > 0:
                    row.append(str(draw(st.integers(0, 6))) if family != "gaussian" or col == n
                               else repr(round(numbers.get(col, 0.0) + draw(st.floats(-3, 3)), 3)))
                else:
                    row.append(draw(CELL))
            rows.append(row)
    quote = lambda c: '"' + c.replace('"', '""') + '"' if any(ch in c for ch in ',"\n ') else c  # noqa: E731
    text = "\n".join(",".join(quote(c) for c in r) for r in [header, *rows]) + "\n"
    shape = draw(st.sampled_from(["ok"] * 10 + ["empty", "header", "ragged", "crlf", "bom", "latin-1", "bytes"]))
    if shape == "empty":
        text = ""
    elif shape == "header":
        text = text.splitlines()[0] + "\n"
    elif shape == "ragged":
        text += "1,2,3,4,5,6\n"
    elif shape == "crlf":
        text = text.replace("\n", "\r\n")
    elif shape == "bom":
        text = "\ufeff" + text
    raw = text.encode("latin-1", errors="replace") if shape == "latin-1" else text.encode("utf-8")
    if shape == "bytes":
        i = draw(st.integers(0, len(raw)))
        raw = raw[:i] + draw(st.sampled_from([b"\x00", b"\xff", b"\r", b'"', b"\n\n", b","])) + raw[i:]
    lhs = draw(st.sampled_from([f"{y} | trials({n})", f"cbind({y}, {n})"])) if family == "binomial" else y
    rhs = draw(st.sampled_from([f"{x} + (1 | {g})", f"{x} + (1 + {x} | {g})", f"1 + (1 | {g})",
                                f"{x} + ({x} || {g})"]))
    formula = f"{lhs} ~ {rhs}"
    engine = "mixedlm" if family == "gaussian" else "bayesmixedglm-map"
    options = ["--family", family] + (["--drop-missing"] if draw(st.integers(0, 3)) == 0 else [])
    options += ["--format", draw(st.sampled_from(["json", "json", "json", "table"]))]
    return raw, formula, engine, options


@budget(400)
@given(case=csv_case())
def test_fuzz_fit_csv(case):
    raw, formula, engine, options = case
    with scratch() as tmp:
        path = tmp / "data.csv"
        path.write_bytes(raw)
        code, out, err = hbench(tmp, "fit", path, "--formula", formula, "--engine", engine, *options)
        if code == 1:  # the engine's fit failed: a record that says so (compare.attempt), never a traceback
            assert "Traceback" not in err and "internal error" not in err, err
            assert "1 of 1 engines failed" in err, err
            if options[-1] == "json":
                (rec,) = json.loads(out)
                assert rec["status"] == "failed" and rec["error"] and rec["parameters"] == []
            return
        assert_no_crash(code, err)
        if code == 2:
            assert_one_line_error(code, out, err)
            assert out == ""
            return
        if options[-1] == "table":
            assert engine in out
            return
        records = json.loads(out)
        assert isinstance(records, list) and [r["engine"] for r in records] == [engine]
        for rec in records:
            if rec["error"] is None:
                assert rec["parameters"] and all(isinstance(p["parameter"], str) for p in rec["parameters"])
            else:
                assert isinstance(rec["error"], str) and rec["parameters"] == []
            levels = {p["group_level"] for p in rec["parameters"] if p["param_class"] == "r"}
            assert all(level.strip() and level != "nan" for level in levels), f"a phantom group: {levels}"


# -- what a generator of one's own returns (compare.generator) ---------------------------------------------

GEN_SPEC = """
name = "fz"
generator = "tests.generators:two_level"
formula = "y ~ x + (1 | g)"
family = "gaussian"
[params]
groups = 3
size = 2
b0 = 1.0
b1 = 0.5
tau = 0.8
sigma = 1.0
"""
CELL_VALUES = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 3), st.sampled_from(WORDS),
                        st.none(), st.booleans())
TRUTH_NAMES = ["b[Intercept]", "b[x]", "sd[g][Intercept]", "sigma", "b[z]", "sd[g][x]", "cor[g][Intercept,x]",
               "r[g][g1,Intercept]", "pred_new[g]", "mrp", "", "sigma "]


@st.composite
def generator_return(draw):
    """(frame, truth) such as a careless generator returns: columns missing, renamed or holding NaN, text or
    None; truth names misspelt, values NaN or text; or something that is not a pair at all."""
    n = draw(st.integers(0, 6))
    cols = draw(st.lists(st.sampled_from(["g", "x", "y", "z", "Y", "x "]), max_size=5, unique=True))
    good = {"g": [f"g{i % 3 + 1}" for i in range(n)], "x": [float(i) for i in range(n)],
            "y": [float((i * 7) % 5) for i in range(n)], "z": [1.0] * n}
    frame = pd.DataFrame({c: draw(st.one_of(st.just(good.get(c, [0.0] * n)),
                                            st.lists(CELL_VALUES, min_size=n, max_size=n))) for c in cols})
    truth = draw(st.one_of(
        st.just({"b[Intercept]": 1.0, "b[x]": 0.5, "sd[g][Intercept]": 0.8, "sigma": 1.0}),
        st.dictionaries(st.sampled_from(TRUTH_NAMES), CELL_VALUES, max_size=6)))
    return draw(st.sampled_from([(frame, truth), (frame, truth), [frame, truth], frame, None, (truth, frame),
                                 (frame, truth, 1)]))


@budget(150)
@given(returned=generator_return())
def test_fuzz_generator_returns(returned):
    """Whatever a generator returns, `hbench simulate` writes a finite dataset whose truth names the model's
    parameters, or says what was wrong in one line (exit 2) and writes nothing."""
    import tests.generators

    with scratch() as tmp, mock.patch.object(tests.generators, "two_level", lambda params, rng: returned):
        spec = tmp / "fz.toml"
        spec.write_text(GEN_SPEC)
        code, err = check_spec(tmp, spec)
        if code == 0:
            meta = json.loads((tmp / "out" / "data.json").read_text())
            assert set(meta["truth"]) >= {"b[Intercept]", "b[x]", "sd[g][Intercept]", "sigma"}
