"""Published datasets from R packages (`hbench data`): a catalogue (compare/realdata.toml) of datasets with the
formulas their literature fits, loaded through R at first use and cached as Parquet beside a provenance file.

Why through R and cached: the data are the packages' own (factors stay factors, with R's level order), a run
needs no R start to read them again, and the provenance (package version, licence, R version) says which
release of the data a result came from. The cache is $HBENCH_DATA_CACHE, else $XDG_CACHE_HOME/hbench/data,
else ~/.cache/hbench/data; it is never committed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from compare import rexpr
from compare.data import Dataset, FitData, checked_frame, frame_hash
from compare.errors import InputError
from compare.rsyntax import parse

R_CODE = "datasets.R"  # compare/estimators/R/datasets.R


@dataclass(frozen=True)
class RealDataset:
    """One catalogue entry: where the data come from and the models fitted to them."""

    name: str
    package: str
    title: str
    family: str
    formulas: tuple[str, ...]
    citation: str
    derive: dict[str, str] = field(default_factory=dict)  # new column -> arithmetic on columns
    indicator: dict[str, tuple[str, str]] = field(default_factory=dict)  # new column -> (factor, level)


def catalogue() -> dict[str, RealDataset]:
    """Every dataset of compare/realdata.toml, by name."""
    raw = tomllib.loads((resources.files("compare") / "realdata.toml").read_text(encoding="utf-8"))
    return {
        name: RealDataset(
            name,
            e["package"],
            e["title"],
            e["family"],
            tuple(e["formulas"]),
            e["citation"],
            dict(e.get("derive", {})),
            {k: tuple(v) for k, v in e.get("indicator", {}).items()},
        )
        for name, e in raw.items()
    }


def get(name: str) -> RealDataset:
    known = catalogue()
    if name not in known:
        raise InputError(f"no dataset {name!r} (hbench data list: {', '.join(known)})")
    return known[name]


def cache_dir() -> Path:
    if os.environ.get("HBENCH_DATA_CACHE"):
        return Path(os.environ["HBENCH_DATA_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "hbench" / "data"


def _paths(name: str) -> tuple[Path, Path]:
    folder = cache_dir()
    return folder / f"{name}.parquet", folder / f"{name}.json"


def cached(name: str) -> dict[str, Any] | None:
    """The provenance of a cached dataset, None when it has not been loaded here yet."""
    data, prov = _paths(name)
    return json.loads(prov.read_text()) if data.exists() and prov.exists() else None


def _from_r(ds: RealDataset) -> tuple[pd.DataFrame, dict[str, Any]]:
    from compare.estimators import _r

    status = _r.package_status(ds.package, R_CODE)
    if not status:
        raise InputError(f"dataset {ds.name!r} is loaded through R: {status.reason}")
    out = _r.call(ds.package, R_CODE, "load_dataset", ds.package, ds.name)
    frame = out["data"] if isinstance(out["data"], pd.DataFrame) else pd.DataFrame(out["data"])
    prov = {
        "dataset": ds.name,
        "package": ds.package,
        "package_version": _r.strs(out["version"])[0],
        "licence": " ".join(_r.strs(out["licence"])),
        "r_version": _r.strs(out["r_version"])[0],
        "ordered_factors_made_plain": _r.strs(out["ordered"]),
        "loaded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "citation": ds.citation,
    }
    return frame.reset_index(drop=True), prov


def _derived(ds: RealDataset, frame: pd.DataFrame) -> pd.DataFrame:
    """The catalogue's derived columns (a binary response from a factor, failures from trials)."""
    frame = frame.copy()
    for col, expr in ds.derive.items():
        frame[col] = rexpr.numeric(parse(expr), frame)
    for col, (factor, level) in ds.indicator.items():
        values = frame[factor].astype(str)
        if level not in set(values):
            raise RuntimeError(f"dataset {ds.name}: column {factor!r} has no level {level!r}")
        frame[col] = (values == level).astype("int64")
    return frame


def load(name: str, *, refresh: bool = False) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The dataset and its provenance: from the cache, or through R (then cached)."""
    ds = get(name)
    data_path, prov_path = _paths(name)
    prov_cached = None if refresh else cached(name)
    if prov_cached is not None:
        return pd.read_parquet(data_path), prov_cached
    frame, prov = _from_r(ds)
    frame = _derived(ds, frame)
    prov.update(
        rows=len(frame),
        columns={c: str(t) for c, t in frame.dtypes.items()},
        derived={**ds.derive, **{k: f"{f} == {lv!r}" for k, (f, lv) in ds.indicator.items()}},
    )
    data_path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(data_path, index=False)
    prov_path.write_text(json.dumps(prov, indent=1) + "\n")
    return frame, prov


def as_dataset(cell: Any) -> Dataset:
    """The one dataset of a scenario cell with `dataset = NAME` (compare.spec): the published data, the columns
    its formula reads, no truth. Columns absent or values missing are one line naming them (InputError)."""
    frame, _ = load(cell.dataset)
    needed = sorted(cell.formula.variables)
    try:
        frame, _ = checked_frame(frame, cell.formula)
        data = FitData(frame[needed].reset_index(drop=True), cell.formula, cell.family, cell.link)
        data.design  # noqa: B018 - built now, so a formula the data cannot take is refused when the scenario loads
    except InputError as exc:
        raise InputError(f"dataset {cell.dataset}: {exc}") from None
    return Dataset(data, {}, cell.scenario, cell.index)


def provenance(name: str) -> dict[str, Any]:
    """What a run records of a dataset it fitted: its package and version, R's version, rows, and a content
    hash of the cached data (so `--resume` notices a cache reloaded from another release of the package)."""
    frame, prov = load(name)
    keep = ("package", "package_version", "r_version", "licence", "rows")
    return {**{k: prov.get(k) for k in keep}, "sha256": frame_hash(frame)}


def export(name: str, out: str | Path, *, refresh: bool = False) -> tuple[int, dict[str, Any]]:
    """Write the dataset as CSV (factor levels as text, as R's write.csv does); rows written and provenance."""
    frame, prov = load(name, refresh=refresh)
    path = Path(out)
    if not path.parent.is_dir():
        raise InputError(f"cannot write {out}: folder {path.parent} does not exist")
    frame.to_csv(path, index=False)
    return len(frame), prov
