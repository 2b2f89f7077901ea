"""The R bridge every R engine shares (lme4, glmmTMB, rstanarm, brms): R started once per process through
rpy2, packages loaded once, R's console swallowed, data frames and formulas translated the same way.

Why one module: the four engines must see identical data (the same columns, factor levels and reference
levels) for their results to be comparable, and R's start-up quirks (rpy2 rewriting LD_LIBRARY_PATH) must
be handled once. R is started lazily: importing this module does not start it. Conversions happen inside
rpy2 conversion contexts (no global activation). Kept out of the registry (leading underscore).

The engines' R code lives in .R files beside this module (compare/estimators/R/, package data), each sourced
once per process into an R environment of its own (`r_env`), so two files' names cannot collide; Python calls
their functions by name (`call`) and passes values as arguments, never as R code built from strings.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from compare.data import FitData
from compare.estimators import _frequentist as fq
from compare.estimators.base import YES, Support, no
from compare.formula import Formula
from compare.rexpr import level_labels

# Debian package of each R package we load (the `apt-get install` hint of an unavailable engine)
DEBIAN = {"lme4": "r-cran-lme4", "glmmTMB": "r-cran-glmmtmb", "rstanarm": "r-cran-rstanarm", "brms": "r-cran-brms"}

R_DIR = resources.files("compare.estimators") / "R"
# Shared by every file: its environment is the parent of all the others' (has_package, the condition collector)
BRIDGE = "bridge.R"
# The other files whose functions a file calls: copied into an environment between it and the bridge's
IMPORTS = {"lme4.R": ("lme4_intervals.R",), "rstanarm.R": ("rstan_sampler.R",), "brms.R": ("rstan_sampler.R",)}


@contextmanager
def quiet_r() -> Iterator[list[str]]:
    """Swallow R's console output (kept in the yielded list) for the duration of the block."""
    from rpy2.rinterface_lib import callbacks

    out: list[str] = []
    saved = callbacks.consolewrite_print, callbacks.consolewrite_warnerror
    callbacks.consolewrite_print = callbacks.consolewrite_warnerror = out.append
    try:
        yield out
    finally:
        callbacks.consolewrite_print, callbacks.consolewrite_warnerror = saved


@functools.lru_cache(maxsize=1)
def r_started() -> Support:
    """Start R once per process (through rpy2); a reason when that is impossible."""
    saved = os.environ.get("LD_LIBRARY_PATH")
    try:
        return _start_r()
    finally:
        # rpy2 prepends R's and the system's library folders to LD_LIBRARY_PATH. That only matters to child
        # processes, where it breaks them: a pyenv Python started by the harness then loads Debian's
        # libpython (AttributeError: '_thread.RLock' object has no attribute '_recursion_count').
        if saved is None:
            os.environ.pop("LD_LIBRARY_PATH", None)
        else:
            os.environ["LD_LIBRARY_PATH"] = saved


def _start_r() -> Support:
    try:
        import rpy2.robjects  # noqa: F401 - importing it starts R
    except Exception as exc:  # noqa: BLE001 - ImportError, or rpy2 built for another R (undefined symbols)
        return no(f"needs R and rpy2 (`pip install 'rpy2>=3.5,<3.6'` for R < 4.5): {_first_line(exc)}")
    from rpy2.robjects.conversion import localconverter

    try:
        with quiet_r(), localconverter(converter()):
            r_env(BRIDGE)
    except Exception as exc:  # noqa: BLE001 - any R failure means no R engine can run
        return no(f"cannot start R: {_first_line(exc)}")
    return YES


@functools.cache
def r_env(r_file: str) -> Any:
    """The R environment holding what compare/estimators/R/`r_file` defines, sourced once per process.

    Its parent is an environment with the functions of the files it imports (IMPORTS), whose parent is the
    bridge's, whose parent is R's global environment (so the search path, `stats::gaussian` and the like, is
    found as when the code ran at top level). An R error (a syntax error names the file and line) propagates."""
    import rpy2.robjects as ro

    new_env, source = ro.baseenv["new.env"], ro.baseenv["sys.source"]
    if r_file == BRIDGE:
        parent = ro.globalenv
    else:
        parent = new_env(parent=r_env(BRIDGE))
        for dep in IMPORTS.get(r_file, ()):
            for name in r_env(dep).keys():
                if name in parent:
                    raise RuntimeError(f"{r_file}: {name!r} is defined by two of its imports {IMPORTS[r_file]}")
                parent[name] = r_env(dep)[name]
    env = new_env(parent=parent)
    with resources.as_file(R_DIR / r_file) as path:
        source(str(path), envir=env)
    return env


@functools.cache
def package_status(package: str, r_file: str = "") -> Support:
    """R started, `package` loadable, and the engine's R file (its fit functions) sourced; once per process.

    The reason names the engine's package and how to install it, so `hbench engines` says what is missing."""
    started = r_started()
    if not started:
        return no(f"{package} {started.reason}")

    from rpy2.robjects.conversion import localconverter

    try:  # rpy2's conversion rules live in a context variable: a Dask worker's task thread starts without them
        with quiet_r(), localconverter(converter()):
            ok = bool(r_env(BRIDGE)["has_package"](package)[0])
            if ok and r_file:
                r_env(r_file)
    except Exception as exc:  # noqa: BLE001 - any R failure means the engine is unavailable
        return no(f"R failed to load {package}: {_first_line(exc)}")
    if not ok:
        return no(f"R is installed but the {package} package is not (apt-get install {DEBIAN.get(package, package)})")
    return YES


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def r_formula(formula: Formula, family: str, binomial: str = "cbind") -> str:
    """R syntax for a parsed formula: binomial responses as cbind(hb_s, hb_f) (lme4, glmmTMB, rstanarm) or
    hb_s | trials(hb_n) (brms, which has no cbind); `||` blocks are already separate terms."""
    if family == "binomial":
        lhs = "cbind(hb_s, hb_f)" if binomial == "cbind" else "hb_s | trials(hb_n)"
    else:
        lhs = formula.response.y
    if formula.response.se is not None:  # brms's known SEs (the engines that cannot fit them refuse the model)
        lhs += f" | se({formula.response.se}{', sigma = TRUE' if formula.response.se_sigma else ''})"
    terms = [formula.fixed if formula.fixed else "0"]
    if formula.offset:
        terms.append(f"offset({formula.offset})")
    terms += [f"({b.expr} | {b.group})" for b in formula.blocks]
    return f"{lhs} ~ {' + '.join(terms)}"


def r_frame(data: FitData) -> pd.DataFrame:
    """Only the columns the formula reads; groups as strings; binomial successes, failures and trials added.

    Factors get the design's reference level and R's default (treatment) contrasts, so R's coefficient names
    are the design's: a pandas categorical keeps its category order but is passed unordered (an ordered one
    would get polynomial contrasts, `Age.L`), text columns (object, or pandas' `str` dtype) get sorted
    levels as the design gives them, not R's locale-dependent order, and a number read only as factor(x) or
    C(x) becomes a factor with the design's level labels (R's C() refuses a number)."""
    f = data.formula
    design = data.design
    cols = sorted(f.variables - set(f.response.columns))
    frame = data.frame[cols].copy()
    for g in {c for b in f.blocks for c in b.group_columns}:
        frame[g] = frame[g].astype(str)
    for c in f.factor_columns:  # numbers read only as factor(x) / C(x): an R factor with the design's levels
        col = frame[c]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            values = np.unique(col.to_numpy())
            labels = level_labels(values, pd.api.types.is_integer_dtype(col))
            frame[c] = pd.Categorical.from_codes(np.searchsorted(values, col.to_numpy()), categories=labels)
    for c in frame.columns:
        col = frame[c]
        if isinstance(col.dtype, pd.CategoricalDtype):
            frame[c] = col.cat.as_unordered()
        elif col.dtype == object or pd.api.types.is_string_dtype(col):
            frame[c] = pd.Categorical(col, categories=sorted(col.unique()))
    if data.family == "binomial":
        assert design.trials is not None, "binomial designs carry their trials"
        frame["hb_s"] = design.y
        frame["hb_f"] = design.trials - design.y
        frame["hb_n"] = design.trials
    else:
        frame[f.response.y] = design.y
    return frame.reset_index(drop=True)


def converter():
    """numpy + pandas conversion rules, used locally (never activated globally)."""
    from rpy2.robjects import default_converter, numpy2ri, pandas2ri

    return default_converter + numpy2ri.converter + pandas2ri.converter


def call(package: str, r_file: str, function: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Call an R function defined by an engine's `r_file` and bring its named-list result back as a dict.

    Arguments that are pandas frames become R data frames. R errors become a RuntimeError with R's own
    message (one engine's failure is recorded by the harness, with what R said). The swallowed console
    output is kept under "console"."""
    import rpy2.robjects as ro
    from rpy2.rinterface_lib.embedded import RRuntimeError
    from rpy2.robjects.conversion import localconverter

    status = package_status(package, r_file)
    if not status:
        raise RuntimeError(status.reason)
    with quiet_r() as console, localconverter(converter()):
        py2r = ro.conversion.get_conversion().py2rpy
        args = tuple(py2r(a) if isinstance(a, pd.DataFrame) else a for a in args)
        try:
            res = r_env(r_file)[function](*args, **kwargs)
        except RRuntimeError as exc:  # R's message often spans lines ("Error in f(...) :\n  what went wrong")
            said = " ".join(" ".join(console).split())
            message = " ".join(str(exc).split()) or said
            extra = f" [R console: {said[-500:]}]" if said and said not in message and message not in said else ""
            raise RuntimeError(f"{package} failed in R: {message}{extra}") from None
        out = dict(res.items())  # an R named list arrives as an OrdDict under these converters
    out["console"] = console
    return out


def str_vector(values: list[str]):
    """An R character vector (an empty Python list would not convert to one)."""
    import rpy2.robjects as ro

    return ro.StrVector(values)


def named_list(values: dict[str, Any]):
    """An R named list of `values` (numbers, booleans, strings, tuples of numbers as numeric vectors, or further
    named lists)."""
    import rpy2.robjects as ro

    def value(v: Any) -> Any:
        if isinstance(v, dict):
            return named_list(v)
        return ro.FloatVector([float(x) for x in v]) if isinstance(v, tuple) else v

    return ro.ListVector({k: value(v) for k, v in values.items()})


def is_null(x: Any) -> bool:
    import rpy2.rinterface as ri

    return x is None or x is ri.NULL


def strs(x: Any) -> list[str]:
    """An R character vector (or NULL) as a list of Python strings."""
    return [] if is_null(x) else [str(v) for v in np.atleast_1d(x)]


def num(x: Any) -> float:
    """The first element of an R numeric (or logical) vector as a float."""
    return float(np.atleast_1d(x)[0])


def nth(x: Any, k: int) -> Any:
    """k-th element of a converted R list (an OrdDict, a ListVector or a Python list)."""
    if hasattr(x, "byindex"):
        return x.byindex(k)[1]
    return list(x.values())[k] if isinstance(x, dict) else x[k]


def items(x: Any) -> list[tuple[str, Any]]:
    """(name, value) pairs of a converted named R list."""
    if is_null(x):
        return []
    if hasattr(x, "items"):
        return [(str(k), v) for k, v in x.items()]
    return [(str(k), v) for k, v in zip(x.names, x)]


def term(name: str) -> str:
    """R's '(Intercept)' is hbench's 'Intercept'; other term names are the same (compare.design builds them as
    R's model.matrix names them)."""
    return "Intercept" if name == "(Intercept)" else name


def r_term(name: str) -> str:
    """hbench's term name as R's model matrix calls it."""
    return "(Intercept)" if name == "Intercept" else name


def ranef_rows(re: Any, level: float) -> list[dict[str, Any]]:
    """r[g][level,term] from as.data.frame(ranef(fit, condVar = TRUE)) (lme4 and glmmTMB give the same columns):
    conditional modes with a normal interval from the conditional SDs."""
    df = re if isinstance(re, pd.DataFrame) else pd.DataFrame(re)
    rows = []
    for rec in df.itertuples(index=False):
        mode, sd = float(rec.condval), float(rec.condsd)
        rows += fq.group_effect_rows(
            str(rec.grpvar), [str(rec.grp)], [term(str(rec.term))], np.array([[mode]]), np.array([[sd]]), level=level
        )
    return rows
