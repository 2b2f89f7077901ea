"""The results store: `results/<run_id>/` with a manifest and one Parquet part per finished task.

A run folder appears whole: it is prepared (manifest.json, parts/) in `<root>/.starting/` and
renamed into place, so `results/<run_id>/` always has its manifest.
Parts are written atomically (temporary file, then rename), so a killed run
leaves only whole parts; the set of part names is the set of finished tasks,
which is all `--resume` needs.  A lock file holding the writer's pid keeps two
runs out of one directory; a lock whose pid is dead (SIGKILL) is stale and a
resume may take it over.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from compare.errors import InputError

RESULTS_DIR = Path("results")

# Column order and dtypes of the long results table; parts are cast to this on write and read.
SCHEMA: dict[str, str] = {
    "scenario": "string", "cell": "int64", "rep": "int64", "run_seed": "int64", "engine_seed": "int64",
    "dataset_hash": "string", "engine": "string", "status": "string", "error": "string",
    "parameter": "string", "estimate": "float64", "se": "float64", "lower": "float64", "upper": "float64",
    "median": "float64", "lower_t": "float64", "upper_t": "float64", "rhat": "float64", "ess_bulk": "float64",
    "ess_tail": "float64", "interval": "string", "note": "string", "true": "float64", "covered": "boolean",
    "sbc_rank": "float64", "sbc_draws": "float64",
    "converged": "boolean", "singular": "boolean", "corr_at_bound": "boolean", "var_at_zero": "boolean",
    "loglik": "float64", "loglik_finite": "boolean", "optimizer": "string", "reached_reference_optimum": "boolean",
    "warnings": "string", "notes": "string", "wall_s": "float64", "compile_s": "float64", "warmup_s": "float64",
    "sampling_s": "float64", "compile_count": "Int64", "rhat_max": "float64", "ess_bulk_min": "float64",
    "ess_tail_min": "float64", "divergences": "float64", "treedepth_hits": "float64", "ebfmi_min": "float64",
    "ess_bulk_per_s": "float64", "extras": "string",
}
_ARROW_TYPES = {"string": pa.string(), "int64": pa.int64(), "Int64": pa.int64(), "float64": pa.float64(),
                "boolean": pa.bool_()}
ARROW_SCHEMA = pa.schema([(col, _ARROW_TYPES[dtype]) for col, dtype in SCHEMA.items()])
# Columns that legitimately differ between two runs of the same seeds (clock time).
TIMING_COLUMNS = ["wall_s", "compile_s", "warmup_s", "sampling_s", "compile_count", "ess_bulk_per_s"]


def conform(df: pd.DataFrame) -> pd.DataFrame:
    """Cast a frame to SCHEMA (missing columns become NA) so every part has the same Arrow schema.
    Vectorised per column: it runs once per task, in the worker that produced the rows."""
    n = len(df)
    cols: dict[str, object] = {}
    for col, dtype in SCHEMA.items():
        values = df[col] if col in df.columns else pd.Series([None] * n, index=df.index, dtype=object)
        if dtype == "boolean":
            obj = values.astype(object)
            mask = obj.isna().to_numpy()
            cols[col] = pd.arrays.BooleanArray(obj.where(~mask, False).astype(bool).to_numpy(), mask)
        elif dtype == "float64":
            cols[col] = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()
        elif dtype == "Int64":
            cols[col] = pd.to_numeric(values, errors="coerce").round().astype("Int64").array
        else:
            cols[col] = values.astype(dtype).array
    return pd.DataFrame(cols)


def to_table(rows: pd.DataFrame | Mapping[str, Any], n: int | None = None) -> pa.Table:
    """Rows as an Arrow table in ARROW_SCHEMA: what workers send and parts hold.

    `rows` is a frame, or a mapping of column -> one value a row (length `n`) or a scalar repeated on
    every row; columns it lacks are null. Built column by column in Arrow: pandas' astype on ~50 short
    columns costs about as much as a 50 ms fit, so rows meet pandas (`conform`) only when a whole run
    is loaded."""
    if isinstance(rows, pd.DataFrame):
        n, rows = len(rows), {c: rows[c] for c in rows.columns}
    if n is None:
        raise ValueError("to_table: give n, the number of rows, with a mapping")
    arrays = []
    for col, dtype in SCHEMA.items():
        typ = ARROW_SCHEMA.field(col).type
        value = rows.get(col)
        if value is None:
            arrays.append(pa.nulls(n, typ))
        elif np.ndim(value) == 0:
            arrays.append(_arrow_scalar(value, n, dtype, typ))
        else:
            arrays.append(_arrow_column(value, dtype, typ))
    return pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA)


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def _arrow_scalar(value: Any, n: int, dtype: str, typ: pa.DataType) -> pa.Array:
    if _missing(value):
        return pa.nulls(n, typ)
    if dtype == "float64":
        value = float(value)
    elif dtype == "Int64":
        number = float(value)
        if not math.isfinite(number):
            return pa.nulls(n, typ)
        value = round(number)
    elif dtype == "boolean":
        value = bool(value)
    elif dtype == "string":
        value = str(value)
    return pa.array([value] * n, type=typ)


def _arrow_column(values: Any, dtype: str, typ: pa.DataType) -> pa.Array:
    if dtype in ("float64", "Int64"):
        values = pd.Series(values) if not isinstance(values, pd.Series) else values
        num = pd.to_numeric(values, errors="coerce") if values.dtype == object else values
        arr = pa.array(num.to_numpy(dtype="float64", na_value=np.nan), from_pandas=True)
        return arr if dtype == "float64" else pc.round(arr).cast(typ)
    return pa.array(values, type=typ, from_pandas=True)


STAGING = ".starting"  # under the results root: run folders being prepared, renamed into place when whole


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


class RunStore:
    def __init__(self, run_id: str, root: Path | str = RESULTS_DIR) -> None:
        if not run_id or "/" in run_id or run_id.startswith("."):
            raise InputError(f"run id {run_id!r}: use letters, digits, '-', '_'")
        self.run_id = run_id
        self.dir = Path(root) / run_id
        self.parts = self.dir / "parts"

    @property
    def manifest_path(self) -> Path:
        return self.dir / "manifest.json"

    def exists(self) -> bool:
        return self.manifest_path.exists()

    def create(self, manifest: dict[str, Any]) -> None:
        """Make the run folder with its manifest.

        Prepared in `<root>/.starting/` and renamed into place, so an interrupted start-up leaves
        no `results/<run_id>/` without a manifest. Refuses an existing folder: two runs never share one."""
        self._refuse_existing()
        staging = self.dir.parent / STAGING / f"{self.run_id}.{os.getpid()}.{secrets.token_hex(4)}"
        staging.mkdir(parents=True)  # not mkdtemp: its 0700 would stay on the run folder
        try:
            (staging / "parts").mkdir()
            _atomic_write(staging / "manifest.json", _manifest_bytes(manifest))
            os.rename(staging, self.dir)
        except BaseException as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(exc, OSError) and self.dir.exists():
                self._refuse_existing()  # another process created it first
            raise

    def _refuse_existing(self) -> None:
        if self.exists():
            raise InputError(f"run {self.run_id!r} already exists in {self.dir.parent}/: "
                             "choose another --run-id or --resume it")
        if self.dir.exists():
            raise InputError(self._no_manifest())

    def _no_manifest(self) -> str:
        n = len(list(self.parts.glob("*.parquet"))) if self.parts.is_dir() else 0
        held = f"it holds {n} parts that cannot be resumed without it" if n else "it holds no results"
        return (f"{self.dir}/ has no manifest.json (left by an interrupted start-up of an older hbench); "
                f"{held}: remove it (rm -r {self.dir}) and start the run again")

    def acquire(self) -> None:
        """Take the writer lock; a live holder means another process is writing this run."""
        lock = self.dir / "lock"
        if lock.exists():
            try:
                pid = int(lock.read_text().strip() or 0)
            except ValueError:
                pid = 0
            if pid and pid != os.getpid() and _alive(pid):
                raise InputError(f"run {self.run_id!r} is being written by process {pid}")
            lock.unlink(missing_ok=True)
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)

    def release(self) -> None:
        (self.dir / "lock").unlink(missing_ok=True)

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        _atomic_write(self.manifest_path, _manifest_bytes(manifest))

    def manifest(self) -> dict[str, Any]:
        if not self.exists():
            raise InputError(self._no_manifest() if self.dir.is_dir() else
                             f"no run {self.run_id!r} under {self.dir.parent}/")
        try:
            return json.loads(self.manifest_path.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"{self.manifest_path} is unreadable ({_first_line(exc)})") from None

    def done_keys(self) -> set[str]:
        return {p.stem for p in self.parts.glob("*.parquet")} if self.parts.exists() else set()

    def write_part(self, key: str, rows: pa.Table | pd.DataFrame) -> None:
        """Write one finished task's rows atomically (temporary file, then rename)."""
        path = self.parts / f"{key}.parquet"
        table = rows if isinstance(rows, pa.Table) else to_table(rows)
        if table.schema != ARROW_SCHEMA:
            table = table.cast(ARROW_SCHEMA)
        fd, tmp = tempfile.mkstemp(dir=self.parts, prefix=f".{key}.", suffix=".tmp")
        os.close(fd)
        try:
            pq.write_table(table, tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def load(self) -> pd.DataFrame:
        """The whole long table, sorted so that two runs of the same seeds compare equal."""
        files = sorted(self.parts.glob("*.parquet"))
        if not files:
            return conform(pd.DataFrame(columns=list(SCHEMA)))
        df = conform(pa.concat_tables([_read_part(f) for f in files]).to_pandas())
        return df.sort_values(["scenario", "cell", "rep", "engine", "parameter"], na_position="first",
                              kind="stable").reset_index(drop=True)


def _manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, default=str) + "\n").encode()


def _read_part(path: Path) -> pa.Table:
    """One part in ARROW_SCHEMA (parts written by pandas carry their own metadata and string type)."""
    table = pq.read_table(path).replace_schema_metadata(None)
    return table if table.schema == ARROW_SCHEMA else table.select(ARROW_SCHEMA.names).cast(ARROW_SCHEMA)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)
