"""`hbench engines`: every registered engine, whether it can run here (and why not), and its settings."""

from __future__ import annotations

import argparse
import json
import sys

from compare.estimators import engine_class, engine_names
from compare.priors import accepted
from compare.settings import describe


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("engines", help="list the engines, whether each is available here, and their settings")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(handler=handle)


def catalogue() -> list[dict]:
    """One record per engine: name, kind, available (with the reason when not), settings with defaults."""
    out = []
    for name in engine_names():
        cls = engine_class(name)
        engine = cls()
        status = engine.available()
        out.append(
            {
                "engine": name,
                "kind": cls.kind,
                "available": status.ok,
                "why_not": status.reason or None,
                "backends": engine.backends() if hasattr(engine, "backends") else None,
                "description": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "",
                "settings": describe(cls.Settings),
                "priors": _priors(cls),
            }
        )
    return out


def _priors(cls) -> dict | None:
    """The prior strings an engine with a `priors` setting accepts: distributions by class, and the rules that
    depend on the model (checked when a suite or `hbench fit` names one)."""
    if "priors" not in cls.Settings.__dataclass_fields__:
        return None
    return {
        "accepts": accepted(getattr(cls.Settings, "check", None)),
        "model_rules": getattr(cls.Settings, "prior_rules", ""),
    }


def handle(args: argparse.Namespace) -> int:
    records = catalogue()
    if args.format == "json":
        json.dump(records, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for rec in records:
        state = "available" if rec["available"] else f"unavailable: {rec['why_not']}"
        print(f"{rec['engine']} ({rec['kind']}; {state})")
        if rec["description"]:
            print(f"    {rec['description']}")
        if rec["backends"]:
            print(f"    backends: {rec['backends']}")
        if rec["priors"]:
            takes = "; ".join(f"{c}: {', '.join(d) or 'none'}" for c, d in rec["priors"]["accepts"].items())
            print(f"    priors accepted: {takes}")
            if rec["priors"]["model_rules"]:
                print(f"    priors, by model: {rec['priors']['model_rules']}")
        for s in rec["settings"]:
            span = f", {s['range']}" if s["range"] else ""
            print(f"    {s['name']} = {s['default']}  [{s['type']}{span}]  {s['doc']}")
        print()
    print(
        "Settings go in a suite's [[engine]] `settings = { ... }` (`hbench suite-keys` lists a suite's other keys) "
        "or `hbench fit --set ENGINE.KEY=VALUE`; the interval level is the suite's `level` (`hbench fit --level`)."
    )
    return 0
