"""Engine registry: every module in this package that defines `ESTIMATORS` (a list of Estimator
subclasses) registers them by name.  A new engine is one new module here and nothing else changes.

Engines outside the package (a user's own, or test doubles) are named in the environment variable
HBENCH_ENGINES as comma-separated importable modules; worker processes inherit it, so spawned and
Dask workers see the same registry as the parent."""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Mapping
from typing import Any

from compare.errors import InputError
from compare.estimators.base import Estimator

_REGISTRY: dict[str, type[Estimator]] = {}
_DISCOVERED: list[bool] = []  # non-empty once the package and HBENCH_ENGINES have been imported


def register(cls: type[Estimator]) -> type[Estimator]:
    """Register an estimator class (tests use this for test doubles)."""
    _REGISTRY[cls.name] = cls
    return cls


def _discover() -> None:
    if _DISCOVERED:
        return
    names = [
        f"{__name__}.{i.name}"
        for i in pkgutil.iter_modules(__path__)
        if not i.name.startswith("_") and i.name != "base"
    ]
    names += [m.strip() for m in os.environ.get("HBENCH_ENGINES", "").split(",") if m.strip()]
    for name in names:
        module = importlib.import_module(name)
        for cls in getattr(module, "ESTIMATORS", []):
            _REGISTRY.setdefault(cls.name, cls)
    _DISCOVERED.append(True)


def engine_names() -> list[str]:
    _discover()
    return sorted(_REGISTRY)


def engine_class(name: str) -> type[Estimator]:
    """The registered class by name; InputError naming the known ones otherwise."""
    _discover()
    if name not in _REGISTRY:
        raise InputError(f"unknown engine {name!r} (known: {', '.join(engine_names())})")
    return _REGISTRY[name]


def get_estimator(
    name: str, settings: Mapping[str, Any] | None = None, where: str | None = None, **internal: Any
) -> Estimator:
    """An estimator by registered name with user settings checked (InputError on an unknown key or type)."""
    return engine_class(name).configured(settings, where or f"engine {name!r} settings", **internal)
