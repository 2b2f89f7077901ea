"""`hbench fit`: fit your own data with every engine side by side.

The JSON output is a contract (scripts and papers parse it): a list with one object per engine,
{"engine", "kind", "status", "converged", "singular", "loglik", "warnings", "notes", "wall_s", "error",
 "parameters": [{"parameter", "param_class", "group", "term", "group_level", "interval", "primary", "estimate",
 "se", "lower", "upper"}, ...]} (the entry with "primary" true is a parameter's primary interval; its other
entries give other interval types); Bayesian engines add "rhat_max", "ess_bulk_min", "ess_tail_min",
"divergences". Non-finite numbers become null. `status` is ok, or failed with `error` saying why; the exit
status is 1 when any engine failed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tomllib
import typing
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from compare import posterior
from compare.attempt import Outcome, attempt
from compare.data import FitData, checked_frame
from compare.errors import InputError
from compare.estimators import engine_class, engine_names
from compare.estimators.base import Estimator
from compare.families import resolve_link
from compare.fitresult import FitResult
from compare.formula import parse_formula
from compare.priors import Layout
from compare.settings import DEFAULT_LEVEL, Settings, bounds_text, parse
from compare.status import FAILED, Status

BAYES_FIELDS = ("rhat_max", "ess_bulk_min", "ess_tail_min", "divergences")
SAMPLER_KEYS = ("chains", "warmup", "draws", "adapt_delta", "max_treedepth")  # --chains ... for every sampler
PARAM_FIELDS = (
    "parameter",
    "param_class",
    "group",
    "term",
    "group_level",
    "interval",
    "primary",
    "estimate",
    "se",
    "lower",
    "upper",
)
TEXT_FIELDS = ("parameter", "param_class", "group", "term", "group_level", "interval")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fit", help="fit a CSV with every engine (or the ones named) side by side")
    p.add_argument("data", help="CSV file")
    p.add_argument("--formula", required=True, help='lme4/brms formula, e.g. "y ~ x + (1 + x | g)"')
    p.add_argument("--family", default="gaussian", help="gaussian (default), binomial, poisson or negbinomial")
    p.add_argument("--link", default=None, help="link function (default: the family's canonical link)")
    p.add_argument(
        "--engine",
        action="extend",
        nargs="+",
        default=None,
        metavar="NAME",
        help="engines to use (several after one flag, or the flag repeated); default: every available "
        f"non-Bayesian engine that supports the model. Known: {', '.join(engine_names())}",
    )
    reml = p.add_mutually_exclusive_group()
    reml.add_argument("--reml", dest="reml", action="store_true", default=None, help="REML (gaussian)")
    reml.add_argument("--ml", dest="reml", action="store_false", help="maximum likelihood (gaussian)")
    p.add_argument(
        "--prior",
        action="append",
        default=None,
        metavar="SPEC",
        help='prior for Bayesian engines, e.g. "b ~ normal(0, 4)" (repeatable)',
    )
    level_doc = Settings.__dataclass_fields__["level"].metadata["doc"]
    p.add_argument("--level", type=float, default=DEFAULT_LEVEL, help=f"{level_doc} (default {DEFAULT_LEVEL:g})")
    p.add_argument("--seed", type=int, default=1, help="seed for the engines' samplers (default 1)")
    for flag, kind, text in sampler_flags():
        p.add_argument(flag, type=kind, default=None, help=f"samplers: {text}")
    p.add_argument(
        "--set",
        action="append",
        default=None,
        metavar="ENGINE.KEY=VALUE",
        dest="sets",
        help="any setting of a fitted engine (repeatable; `hbench engines` lists them), VALUE as a TOML "
        "literal (text that is not one is a string): --set lme4.profile=false, "
        "--set stan.backend=cmdstanpy, --set 'lme4.ddf=[\"satterthwaite\"]'; "
        "it overrides the flags above for that engine",
    )
    p.add_argument(
        "--save-draws",
        metavar="DIR",
        help="samplers: keep every draw as DIR/<engine>.nc (ArviZ "
        "InferenceData: posterior, sample_stats, observed data, posterior predictive)",
    )
    p.add_argument(
        "--drop-missing",
        action="store_true",
        help="drop rows with a missing value in any model column (once, for every engine)",
    )
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(handler=run)


def sampler_flags() -> list[tuple[str, type, str]]:
    """(flag, type, help) of the sampler controls, generated from the engines' declared settings so that the
    help cannot drift from them: type, doc and range where the key is first declared (the samplers' shared
    settings class), the default most samplers share, and the samplers whose default differs."""
    classes = [engine_class(n) for n in engine_names() if engine_class(n).kind == "bayesian"]
    out = []
    for key in SAMPLER_KEYS:
        having = [c for c in classes if key in c.Settings.__dataclass_fields__]
        if not having:
            continue
        root = _declaring(having[0].Settings, key)
        declared = root.__dataclass_fields__[key]
        defaults = {c.name: c.Settings.__dataclass_fields__[key].default for c in having}
        common = Counter(defaults.values()).most_common(1)[0][0]
        others = ", ".join(f"{name} {value:g}" for name, value in defaults.items() if value != common)
        span = f"; within {bounds_text(declared)}" if bounds_text(declared) else ""
        out.append(
            (
                f"--{key.replace('_', '-')}",
                typing.get_type_hints(root)[key],
                f"{declared.metadata['doc']} (default {common:g}{', ' + others if others else ''}{span})",
            )
        )
    return out


def _declaring(cls: type[Settings], key: str) -> type[Settings]:
    """The base-most settings class that declares `key` (whose doc is the general one)."""
    return next(c for c in reversed(cls.__mro__) if key in vars(c).get("__annotations__", {}))


def toml_literal(text: str) -> Any:
    """VALUE of --set as a TOML literal (false, 3, 0.9, "x", ["a", "b"]); text that is not one stays a string,
    so `--set stan.backend=cmdstanpy` needs no quotes."""
    try:
        parsed = tomllib.loads(f"value = {text}")
    except tomllib.TOMLDecodeError:
        return text
    return parsed["value"] if list(parsed) == ["value"] else text


def parse_sets(items: list[str] | None, level: float = DEFAULT_LEVEL) -> dict[str, dict[str, Any]]:
    """--set ENGINE.KEY=VALUE items as {engine: {key: value}}, each engine's checked by its settings class: an
    unknown engine or key, a wrong type or a value out of range is one InputError line."""
    out: dict[str, dict[str, Any]] = {}
    for item in items or []:
        target, eq, text = item.partition("=")
        engine, dot, key = target.strip().rpartition(".")
        if not (eq and dot and engine and key):
            raise InputError(f"--set {item!r}: expected ENGINE.KEY=VALUE, e.g. --set lme4.profile=false")
        try:
            engine_class(engine)
        except InputError as exc:
            raise InputError(f"--set {target}: {exc}") from None
        if key in out.setdefault(engine, {}):
            raise InputError(f"--set {target}: given twice")
        out[engine][key] = toml_literal(text)
    for engine, table in out.items():
        parse(engine_class(engine).Settings, table, f"--set {engine}", level=level)
    return out


def load_data(
    path: str, formula_text: str, family: str, link: str | None, drop_missing: bool = False
) -> tuple[FitData, int]:
    """The user's CSV as FitData, and how many rows with missing values were dropped; every input problem is
    one InputError line."""
    link = resolve_link(family, link)
    file = Path(path)
    if not file.is_file():
        raise InputError(f"data file {path} does not exist")
    try:
        frame = pd.read_csv(file)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path} as CSV: {str(exc).splitlines()[0]}") from None
    formula = parse_formula(formula_text)
    frame, dropped = checked_frame(frame, formula, drop_missing=drop_missing)
    if frame.empty:
        raise InputError(f"{path}: no rows left to fit")
    data = FitData(frame, formula, family, link, label=str(path))
    data.design  # builds the design now: non-numeric responses and the like fail here  # noqa: B018
    return data, dropped


def engine_settings(cls: type[Estimator], options: dict[str, Any]) -> dict[str, Any]:
    """The settings a user's options give one engine: only those its settings class has (--prior and the
    sampler controls for samplers, --reml/--ml where it applies)."""
    fields = set(cls.Settings.__dataclass_fields__)
    return {k: v for k, v in options.items() if v is not None and k in fields}


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """Engine settings named on the command line (unset ones left out)."""
    out = {key: getattr(args, key, None) for key in SAMPLER_KEYS}
    out["priors"] = list(args.prior) if args.prior else None
    out["reml"] = args.reml
    out["keep_draws"] = True if args.save_draws else None
    return {k: v for k, v in out.items() if v is not None}


def choose_engines(
    data: FitData,
    names: list[str] | None,
    options: dict[str, Any],
    level: float = DEFAULT_LEVEL,
    sets: dict[str, dict[str, Any]] | None = None,
) -> list[Estimator]:
    """The engines to fit, built with checked settings (`sets`: --set's per engine, over `options`); the named
    ones must be able to fit the model, and every engine --set names must be one of those fitted."""
    sets = sets or {}
    if options.get("reml") is not None and data.family != "gaussian":
        raise InputError("--reml/--ml apply to gaussian models only")
    classes = (
        [engine_class(n) for n in dict.fromkeys(names)]
        if names
        else [engine_class(n) for n in engine_names() if engine_class(n).kind != "bayesian"]
    )
    for key in options:
        if key != "reml" and not any(key in c.Settings.__dataclass_fields__ for c in classes):
            flag = "--prior" if key == "priors" else "--" + key.replace("_", "-")
            raise InputError(f"{flag} needs a Bayesian engine: name one with --engine (e.g. --engine pymc)")
    engines = [
        c.configured({**engine_settings(c, options), **sets.get(c.name, {})}, f"engine {c.name!r}", level=level)
        for c in classes
    ]
    if names:
        for engine in engines:
            for check in (engine.available(), engine.supports(data.model)):
                if not check:
                    raise InputError(f"engine {engine.name!r} cannot fit this: {check.reason}")
            if hasattr(engine.settings, "check_priors"):  # honoured or refused now, before anything runs
                engine.settings.check_priors(Layout.of(data.design, data.family))
    else:
        engines = [e for e in engines if e.available() and e.supports(data.model)]
        if not engines:
            raise InputError("no available engine supports this model")
    fitted = [e.name for e in engines]
    for name in sets:
        if name not in fitted:
            raise InputError(
                f"--set {name}.{next(iter(sets[name]))}: {name} is not among the engines fitted "
                f"({', '.join(fitted)}); name it with --engine"
            )
    return engines


def fit_all(data: FitData, engines: list[Estimator], seed: int, draws_dir: Path | None = None) -> list[dict[str, Any]]:
    """One record per engine, each fitted through `compare.attempt` (the harness's own path): a fit that fails is
    a record with its status and error, never a crash."""
    out = []
    for engine in engines:
        outcome = attempt(engine, data, seed)
        if outcome.result is None:
            out.append(failure_record(engine, outcome))
            continue
        out.append(record(outcome.result, engine.kind))
        if draws_dir is not None and outcome.result.idata is not None:
            path = posterior.save(outcome.result.idata, draws_dir / f"{engine.name}{posterior.SUFFIX}")
            out[-1]["notes"].append(f"draws kept in {path}")
    return out


def _num(x: Any) -> float | None:
    if x is None:
        return None
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _text(x: Any) -> str | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else str(x)


def record(result: FitResult, kind: str) -> dict[str, Any]:
    params = [
        {
            k: (bool(row[k]) if k == "primary" else _text(row[k]) if k in TEXT_FIELDS else _num(row[k]))
            for k in PARAM_FIELDS
        }
        for row in result.params.to_dict("records")
    ]
    rec = {
        "engine": result.engine,
        "kind": kind,
        "status": str(Status.OK),
        "converged": bool(result.converged),
        "singular": None if result.singular is None else bool(result.singular),
        "loglik": _num(result.loglik),
        "warnings": list(result.warnings),
        "notes": list(result.notes),
        "wall_s": _num(result.wall_s),
        "error": None,
        "parameters": params,
    }
    if kind == "bayesian":
        rec.update({k: _num(getattr(result.sampler, k, None)) for k in BAYES_FIELDS})
    return rec


def failure_record(engine: Estimator, outcome: Outcome) -> dict[str, Any]:
    rec = {
        "engine": engine.name,
        "kind": engine.kind,
        "status": str(outcome.status),
        "converged": False,
        "singular": None,
        "loglik": None,
        "warnings": [],
        "notes": [],
        "wall_s": _num(outcome.wall_s),
        "error": outcome.error.splitlines()[0] if outcome.error else None,
        "parameters": [],
    }
    if engine.kind == "bayesian":
        rec.update({k: None for k in BAYES_FIELDS})
    return rec


def table(records: list[dict[str, Any]]) -> str:
    """Estimates side by side: 'estimate [lower, upper]' per engine with each parameter's primary interval
    (group effects r[...] left out)."""
    cells: dict[str, dict[str, str]] = {}
    for rec in records:
        for p in rec["parameters"]:
            if p["param_class"] != "r" and p["primary"]:
                cells.setdefault(p["parameter"], {})[rec["engine"]] = _cell(p)
    engines = [r["engine"] for r in records]
    frame = pd.DataFrame.from_dict(cells, orient="index").reindex(columns=engines).fillna("")
    summary = pd.DataFrame(
        {
            r["engine"]: {
                "status": r["status"],
                "converged": str(r["converged"]),
                "singular": str(r["singular"]),
                "loglik": "" if r["loglik"] is None else f"{r['loglik']:.3f}",
                "warnings": str(len(r["warnings"])),
                "wall_s": "" if r["wall_s"] is None else f"{r['wall_s']:.2f}",
            }
            for r in records
        }
    ).reindex(columns=engines)
    estimates = frame.to_string() if len(frame) else "no estimates: every engine failed (errors below)"
    lines = [estimates, "", summary.to_string()]
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
    if not 0 <= args.seed < 2**63:
        raise InputError(f"--seed {args.seed}: must be between 0 and 2^63 - 1")
    draws_dir = Path(args.save_draws) if args.save_draws else None
    if draws_dir is not None and draws_dir.exists() and not draws_dir.is_dir():
        raise InputError(f"--save-draws {draws_dir}: is a file, not a folder")
    sets = parse_sets(args.sets, args.level)  # before the data is read: a typo costs nothing
    data, dropped = load_data(args.data, args.formula, args.family, args.link, args.drop_missing)
    engines = choose_engines(data, args.engine, _options(args), args.level, sets)
    records = fit_all(data, engines, args.seed, draws_dir)
    if dropped:
        note = f"{dropped} rows with missing values were dropped before fitting (the same rows for every engine)"
        print(f"hbench: {note}", file=sys.stderr)
        for rec in records:
            rec["notes"].insert(0, note)
    if args.format == "json":
        json.dump(records, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(table(records))
    failed = [r["engine"] for r in records if r["status"] in FAILED]
    if failed:
        print(
            f"hbench: {len(failed)} of {len(records)} engines failed: {', '.join(failed)} (see their errors above)",
            file=sys.stderr,
        )
    return 1 if failed else 0
