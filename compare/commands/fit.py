"""`hbench fit`: fit your own data with every engine side by side.

The JSON output is a contract (scripts and papers parse it): a list with one object per engine,
{"engine", "kind", "converged", "singular", "loglik", "warnings", "notes", "wall_s", "error",
 "parameters": [{"parameter", "estimate", "se", "lower", "upper"}, ...]}; Bayesian engines add
"rhat_max", "ess_bulk_min", "ess_tail_min", "divergences". Non-finite numbers become null.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from compare.errors import InputError
from compare.estimators import engine_names, get_estimator
from compare.estimators.base import Estimator
from compare.fitresult import FitResult, parameter_class
from compare.formula import parse_formula
from compare.simulate import Dataset
from compare.spec import FAMILIES

BAYES_FIELDS = ("rhat_max", "ess_bulk_min", "ess_tail_min", "divergences")
PARAM_FIELDS = ("parameter", "estimate", "se", "lower", "upper")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fit", help="fit a CSV with every engine (or the ones named) side by side")
    p.add_argument("data", help="CSV file")
    p.add_argument("--formula", required=True, help='lme4/brms formula, e.g. "y ~ x + (1 + x | g)"')
    p.add_argument("--family", default="gaussian", help="gaussian (default), binomial or poisson")
    p.add_argument("--link", default=None, help="link function (default: the family's canonical link)")
    p.add_argument("--engine", action="append", default=None, metavar="NAME",
                   help="engine to use (repeatable); default: every available non-Bayesian engine that "
                        f"supports the model. Known: {', '.join(engine_names())}")
    reml = p.add_mutually_exclusive_group()
    reml.add_argument("--reml", dest="reml", action="store_true", default=None, help="REML (gaussian)")
    reml.add_argument("--ml", dest="reml", action="store_false", help="maximum likelihood (gaussian)")
    p.add_argument("--prior", action="append", default=None, metavar="SPEC",
                   help='prior for Bayesian engines, e.g. "b ~ normal(0, 4)" (repeatable)')
    p.add_argument("--level", type=float, default=0.95, help="level of the central intervals (default 0.95)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(handler=run)


def load_dataset(path: str, formula_text: str, family: str, link: str | None) -> Dataset:
    """The user's CSV as a Dataset; every input problem is one InputError line."""
    if family not in FAMILIES:
        raise InputError(f"unknown family {family!r} (known: {', '.join(FAMILIES)})")
    link = link or FAMILIES[family][0]
    if link not in FAMILIES[family]:
        raise InputError(f"link {link!r} is not available for {family} (known: {', '.join(FAMILIES[family])})")
    file = Path(path)
    if not file.is_file():
        raise InputError(f"data file {path} does not exist")
    try:
        frame = pd.read_csv(file)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path} as CSV: {str(exc).splitlines()[0]}") from None
    ds = Dataset(frame, {}, parse_formula(formula_text), family, link)
    ds.design  # builds the design now: missing columns, non-numeric responses fail here  # noqa: B018
    return ds


def choose_engines(ds: Dataset, names: list[str] | None, reml: bool | None,
                   priors: list[str] | None) -> list[Estimator]:
    if reml is not None and ds.family != "gaussian":
        raise InputError("--reml/--ml apply to gaussian models only")
    if names:
        engines = [_named(name, ds) for name in dict.fromkeys(names)]
    else:
        engines = [e for e in (get_estimator(n) for n in engine_names())
                   if e.kind != "bayesian" and e.available() and e.supports(ds.model)]
        if not engines:
            raise InputError("no available engine supports this model")
    if priors and not any(e.kind == "bayesian" for e in engines):
        raise InputError("--prior needs a Bayesian engine: name one with --engine (e.g. --engine pymc)")
    if priors:
        from compare.priors import parse_priors

        parse_priors(priors)  # an unknown class or distribution is bad input (exit 2), before any fit
    for e in engines:
        if priors and e.kind == "bayesian":
            e.settings["priors"] = list(priors)
        if reml is not None and getattr(e, "uses_reml", False):
            e.settings["reml"] = reml
    return engines


def _named(name: str, ds: Dataset) -> Estimator:
    engine = get_estimator(name)  # unknown name -> InputError
    for check in (engine.available(), engine.supports(ds.model)):
        if not check:
            raise InputError(f"engine {name!r} cannot fit this: {check.reason}")
    return engine


def fit_all(ds: Dataset, engines: list[Estimator]) -> list[dict[str, Any]]:
    out = []
    for engine in engines:
        try:
            result = engine.fit(ds)
        except Exception as exc:  # noqa: BLE001 - one engine's failure is a row, not a crash
            out.append(failure_record(engine, exc))
            continue
        out.append(record(result, engine.kind))
    return out


def _num(x: Any) -> float | None:
    if x is None:
        return None
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def record(result: FitResult, kind: str) -> dict[str, Any]:
    params = [{k: (_num(row[k]) if k != "parameter" else str(row[k])) for k in PARAM_FIELDS}
              for row in result.params.to_dict("records")]
    rec = {"engine": result.engine, "kind": kind, "converged": bool(result.converged),
           "singular": None if result.singular is None else bool(result.singular),
           "loglik": _num(result.loglik), "warnings": list(result.warnings), "notes": list(result.notes),
           "wall_s": _num(result.wall_s), "error": None, "parameters": params}
    if kind == "bayesian":
        rec.update({k: _num(result.diagnostics.get(k)) for k in BAYES_FIELDS})
    return rec


def failure_record(engine: Estimator, exc: Exception) -> dict[str, Any]:
    rec = {"engine": engine.name, "kind": engine.kind, "converged": False, "singular": None, "loglik": None,
           "warnings": [], "notes": [], "wall_s": None, "error": f"{type(exc).__name__}: {exc}",
           "parameters": []}
    if engine.kind == "bayesian":
        rec.update({k: None for k in BAYES_FIELDS})
    return rec


def table(records: list[dict[str, Any]]) -> str:
    """Estimates side by side: 'estimate [lower, upper]' per engine (group effects r[...] left out)."""
    cells: dict[str, dict[str, str]] = {}
    for rec in records:
        for p in rec["parameters"]:
            if parameter_class(p["parameter"]) == "r":
                continue
            cells.setdefault(p["parameter"], {})[rec["engine"]] = _cell(p)
    engines = [r["engine"] for r in records]
    frame = pd.DataFrame.from_dict(cells, orient="index").reindex(columns=engines).fillna("")
    summary = pd.DataFrame({r["engine"]: {
        "converged": str(r["converged"]), "singular": str(r["singular"]),
        "loglik": "" if r["loglik"] is None else f"{r['loglik']:.3f}",
        "warnings": str(len(r["warnings"])), "wall_s": "" if r["wall_s"] is None else f"{r['wall_s']:.2f}"}
        for r in records}).reindex(columns=engines)
    lines = [frame.to_string(), "", summary.to_string()]
    for r in records:
        for text in ([f"error: {r['error']}"] if r["error"] else []) + r["notes"] + r["warnings"]:
            lines.append(f"{r['engine']}: {text}")
    return "\n".join(lines)


def _cell(p: dict[str, Any]) -> str:
    fmt = lambda v: "NA" if v is None else f"{v:.4g}"  # noqa: E731
    if p["lower"] is None and p["upper"] is None:
        return fmt(p["estimate"])
    return f"{fmt(p['estimate'])} [{fmt(p['lower'])}, {fmt(p['upper'])}]"


def run(args: argparse.Namespace) -> int:
    if args.reml is not None and args.family != "gaussian":
        raise InputError("--reml/--ml apply to gaussian models only")
    if not 0 < args.level < 1:
        raise InputError(f"--level {args.level:g}: must be between 0 and 1 (e.g. 0.9)")
    ds = load_dataset(args.data, args.formula, args.family, args.link)
    engines = choose_engines(ds, args.engine, args.reml, args.prior)
    if args.level != 0.95:
        for e in engines:
            e.settings["level"] = args.level
    records = fit_all(ds, engines)
    if args.format == "json":
        json.dump(records, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(table(records))
    return 0
