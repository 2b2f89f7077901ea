"""The results store: `results/<run_id>/` with a manifest and one Parquet part per finished task.

Trust nothing a killed or interrupted process could leave behind:
- a run folder appears whole: it is prepared (manifest.json, parts/, the writer lock) in
  `<root>/.starting/` and renamed into place, so `results/<run_id>/` always has its manifest;
- parts are written atomically (temporary file, then rename), and still verified on read: a part
  counts as done only if it reads back whole (footer, columns, rows, its own task's key). The
  writer sets bad parts aside in parts/.bad/ so --resume refits them; readers skip them;
- one writer per run: the writer holds an exclusive `flock` on `lock` for its lifetime. The OS
  drops it when the process dies (even by SIGKILL), so a stale lock is simply a free one and a
  takeover race has one winner; the file records host and pid for the error message only;
- or one writer per shard (`hbench run --shard i/N`, array jobs on a shared filesystem): each shard's
  writer holds `shards/<i>-of-<N>.lock` instead, and writes only its own tasks' parts and its own
  record `shards/<i>-of-<N>.json`, never the manifest; a whole-run writer and shard writers exclude
  each other (each refuses to start while the other kind is live).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import math
import os
import secrets
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from compare.errors import InputError
from compare.fitresult import PARAM_COLUMNS, column_docs, fit_columns

RESULTS_DIR = Path("results")

# What the harness adds around each fit: where it came from, and what only the harness may know (the truth).
TASK_COLUMNS: dict[str, str] = {
    "scenario": "string",
    "cell": "int64",
    "rep": "int64",
    "run_seed": "int64",
    "engine_seed": "int64",
    "dataset_hash": "string",
    "engine": "string",
    "status": "string",
    "error": "string",
}
TRUTH_COLUMNS: dict[str, str] = {"true": "float64", "covered": "boolean", "sbc_rank": "float64", "sbc_draws": "float64"}
HARNESS_DOCS: dict[str, str] = {
    "scenario": "scenario name (its spec file's stem)",
    "cell": "grid cell index of the scenario",
    "rep": "replication index within the cell",
    "run_seed": "the run's seed",
    "engine_seed": "seed of this replication: simulates its dataset and is every engine's fit seed",
    "dataset_hash": "content hash of the replication's dataset (the same for every engine of the task)",
    "engine": "engine label as the suite names it (results, tables and compare key on it)",
    "status": "ok, skipped, failed, timeout or crashed (compare.status.Status)",
    "error": "why the fit was skipped or failed (with the innermost frames)",
    "true": "the truth for this estimand in this replication (only the harness knows it)",
    "covered": "lower <= true <= upper (null where either is missing)",
    "sbc_rank": "rank of the truth among the fit's thinned draws (prior-DGP cells, primary rows only)",
    "sbc_draws": "number of draws sbc_rank is out of",
}
# Column order and dtypes of the long results table, derived from FitResult (never written out by hand).
SCHEMA: dict[str, str] = {**TASK_COLUMNS, **PARAM_COLUMNS, **TRUTH_COLUMNS, **fit_columns()}
# What a part must have to be read at all; a column added to FitResult since a part was written reads as null.
REQUIRED_COLUMNS = [*TASK_COLUMNS, *PARAM_COLUMNS, "converged"]
# Version of the table's contract, recorded in every manifest. 2: rows say what they are (primary, param_class,
# group, term, group_level) instead of leaving it to row order and names.
RESULTS_SCHEMA = 2
_ARROW_TYPES = {
    "string": pa.string(),
    "int64": pa.int64(),
    "Int64": pa.int64(),
    "float64": pa.float64(),
    "boolean": pa.bool_(),
}
ARROW_SCHEMA = pa.schema([(col, _ARROW_TYPES[dtype]) for col, dtype in SCHEMA.items()])
# Columns that legitimately differ between two runs of the same seeds (clock time).
TIMING_COLUMNS = [
    "wall_s",
    "cpu_s",
    "compile_s",
    "warmup_s",
    "sampling_s",
    "compile_count",
    "ess_bulk_per_s",
    "peak_rss_mb",
]


def schema_markdown() -> str:
    """docs/results.md: every column of the long results table, its dtype and what it means, in store order.
    Written from the classes that define the columns (`hbench schema` prints it), so it cannot drift."""
    docs = {**HARNESS_DOCS, **column_docs()}
    lines = [
        "# The results table",
        "",
        f"Results schema {RESULTS_SCHEMA} (recorded as `results_schema` in every run's manifest). One row per "
        "(scenario, cell, replication, engine, parameter, interval type) under `results/<run_id>/parts/*.parquet`; "
        "a fit that gave no estimates is one row with its status and error and no parameter. Each parameter of a "
        "fit has exactly one row with `primary` true: point measures (bias, EmpSE, RMSE, agreement, SBC) read "
        "those rows, interval measures read every row of their interval type. Select on `param_class`, "
        "`group`, `term` and `group_level`, never by parsing `parameter`.",
        "",
        "Generated by `hbench schema` from `compare/fitresult.py` and `compare/store.py`.",
        "",
        "| column | type | meaning |",
        "|---|---|---|",
    ]
    lines += [f"| `{name}` | {dtype} | {docs[name]} |" for name, dtype in SCHEMA.items()]
    return "\n".join(lines) + "\n"


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
    unknown = sorted(set(rows) - set(SCHEMA))
    if unknown:  # a new FitResult field the schema does not derive, or a typo: never drop it silently
        raise ValueError(f"to_table: columns not in the store schema: {', '.join(unknown)}")
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


def to_ipc(table: pa.Table) -> pa.Buffer:
    """Rows as an Arrow IPC stream, what a worker sends its parent: a tenth of pickling the table (0.8 ms a task)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def from_ipc(data: bytes | pa.Buffer) -> pa.Table:
    return pa.ipc.open_stream(data).read_all()


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
        if isinstance(values, np.ndarray) and values.dtype.kind in "fiu":  # the common case, without pandas (30 us)
            arr = pa.array(values.astype("float64", copy=False), from_pandas=True)
            return arr if dtype == "float64" else pc.round(arr).cast(typ)
        values = pd.Series(values) if not isinstance(values, pd.Series) else values
        num = pd.to_numeric(values, errors="coerce") if values.dtype == object else values
        arr = pa.array(num.to_numpy(dtype="float64", na_value=np.nan), from_pandas=True)
        return arr if dtype == "float64" else pc.round(arr).cast(typ)
    return pa.array(values, type=typ, from_pandas=True)


LOCK = "lock"
SHARDS = "shards"  # under the run folder: one lock and one record per shard writer
STAGING = ".starting"  # under the results root: run folders being prepared, renamed into place when whole
BAD = ".bad"  # under parts/: parts that did not read back, set aside by the writer
_LOCK_TRIES = 4  # a status probe holds the lock for microseconds, a writer for its whole run
_LOCK_WAIT_S = 0.05


class BadPart(Exception):
    """A part file that does not read back as one whole task's rows; its message says why."""


def part_key(scenario: Any, cell: Any, rep: Any) -> str:
    """The part name of a task's rows: the same format as `tasks.Task.key`."""
    return f"{scenario}__c{cell}__r{rep}"


def read_verified_part(path: Path) -> pa.Table:
    """A part's rows in ARROW_SCHEMA, or BadPart: a part's name is a claim that its task is done,
    and a truncated, empty or misnamed file must not make --resume skip a task."""
    try:
        meta = pq.ParquetFile(path)
        names, n_rows = meta.schema_arrow.names, meta.metadata.num_rows
    except FileNotFoundError:
        raise
    except (OSError, pa.ArrowException) as exc:
        raise BadPart(f"unreadable Parquet footer: {_first_line(exc)}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in names]  # later-added columns are read as nulls
    if missing:
        raise BadPart(f"{len(missing)} columns missing: {', '.join(missing[:3])}{' ...' * (len(missing) > 3)}")
    if n_rows == 0:
        raise BadPart("no rows")
    try:
        table = _read_part(path)
    except FileNotFoundError:
        raise
    except (OSError, pa.ArrowException) as exc:
        raise BadPart(f"unreadable data: {_first_line(exc)}") from None
    _check_key(table, path.stem)
    _check_not_null(table)
    return table


def _check_key(table: pa.Table, key: str) -> None:
    """Every row must belong to the task the file is named after."""
    found = set(zip(*(table.column(c).to_pylist() for c in ("scenario", "cell", "rep"))))
    if len(found) != 1 or part_key(*next(iter(found))) != key:
        shown = ", ".join(sorted(part_key(*k) for k in found)[:3])
        raise BadPart(f"its rows are for {shown}, not {key}")


def _check_not_null(table: pa.Table) -> None:
    """Columns loaded as plain int64 cannot hold a null: such a part would crash every load."""
    nulls = [c for c, dtype in SCHEMA.items() if dtype == "int64" and table.column(c).null_count]
    if nulls:
        raise BadPart(f"null values in {', '.join(nulls)}")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


class RunStore:
    def __init__(self, run_id: str, root: Path | str = RESULTS_DIR) -> None:
        if not run_id or "/" in run_id or "\0" in run_id or run_id.startswith(".") or len(run_id.encode()) > 200:
            raise InputError(f"run id {run_id!r}: use letters, digits, '-', '_' (up to 200)")
        if Path(root).exists() and not Path(root).is_dir():
            raise InputError(f"results folder {root} is a file, not a folder")
        self.run_id = run_id
        self.dir = Path(root) / run_id
        self.parts = self.dir / "parts"
        self._lock_fd: int | None = None  # set while this store is the run's writer
        self._owner: dict[str, Any] | None = None  # what it wrote into the lock file
        self._verified: dict[str, tuple[int, int]] = {}  # part name -> (size, mtime_ns) read back whole
        self._warned: set[str] = set()

    @property
    def manifest_path(self) -> Path:
        return self.dir / "manifest.json"

    @property
    def lock_path(self) -> Path:
        return self.dir / LOCK

    def exists(self) -> bool:
        return self.manifest_path.exists()

    # -- creating a run -------------------------------------------------------------------------

    def create(self, manifest: dict[str, Any], writer: bool = True) -> None:
        """Make the run folder with its manifest, owned by this store (as after `acquire`) unless `writer` is
        False (a sharded run: its shards take their own locks).

        Prepared in `<root>/.starting/` and renamed into place, so an interrupted start-up leaves
        no `results/<run_id>/` without a manifest. Refuses an existing folder: two runs never share one."""
        self._refuse_existing()
        manifest.setdefault("results_schema", RESULTS_SCHEMA)  # in the caller's dict too: later writes keep it
        staging = self.dir.parent / STAGING / f"{self.run_id}.{os.getpid()}.{secrets.token_hex(4)}"
        staging.mkdir(parents=True)  # not mkdtemp: its 0700 would stay on the run folder
        fd = None
        try:
            (staging / "parts").mkdir()
            fd = _try_lock(staging / LOCK) if writer else None
            if writer and fd is None:  # nobody else can know this folder's name yet
                raise RuntimeError(f"could not lock {staging / LOCK}")
            owner = _write_owner(fd) if fd is not None else None
            _atomic_write(staging / "manifest.json", _manifest_bytes(manifest))
            os.rename(staging, self.dir)
        except BaseException as exc:
            if fd is not None:
                os.close(fd)
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(exc, OSError) and self.dir.exists():
                self._refuse_existing()  # another process created it first
            raise
        self._lock_fd, self._owner = fd, owner

    def _refuse_existing(self) -> None:
        if self.exists():
            raise InputError(
                f"run {self.run_id!r} already exists in {self.dir.parent}/: choose another --run-id or --resume it"
            )
        if self.dir.exists():
            raise InputError(self._no_manifest())

    def _no_manifest(self) -> str:
        n = len(list(self.parts.glob("*.parquet"))) if self.parts.is_dir() else 0
        held = f"it holds {n} parts that cannot be resumed without it" if n else "it holds no results"
        return (
            f"{self.dir}/ has no manifest.json (left by an interrupted start-up of an older hbench); "
            f"{held}: remove it (rm -r {self.dir}) and start the run again"
        )

    # -- the writer lock --------------------------------------------------------------------------

    def acquire(self) -> None:
        """Become the run's only writer, or InputError naming the process that is.

        Holds an exclusive flock on `lock` until `release` or the process ends (the OS drops it
        then, even on SIGKILL, so a dead writer's lock is free). Calling it again is a no-op."""
        if self._lock_fd is not None:
            return
        if not self.dir.is_dir():
            raise InputError(f"no run {self.run_id!r} under {self.dir.parent}/")
        for _ in range(_LOCK_TRIES):
            fd = _try_lock(self.lock_path)
            if fd is not None:
                self._lock_fd, self._owner = fd, _write_owner(fd)
                break
            time.sleep(_LOCK_WAIT_S)
        else:
            raise InputError(self._busy())
        shards = self.shard_writers()
        if shards:
            self.release()
            label, owner = next(iter(shards.items()))
            raise InputError(
                f"run {self.run_id!r} has {len(shards)} shard writers running (shard {label}: process "
                f"{owner.get('pid', '?')} on {owner['host']}): wait for them to finish"
            )

    # -- shard writers ------------------------------------------------------------------------------

    def shard_lock_path(self, label: str) -> Path:
        return self.dir / SHARDS / f"{label}.lock"

    def acquire_shard(self, label: str) -> int:
        """Become the only writer of one shard (an fd holding its flock, released by closing it or by the
        process ending), or InputError naming who writes it, or the whole run, now."""
        (self.dir / SHARDS).mkdir(exist_ok=True)
        fd = _try_lock(self.shard_lock_path(label))
        if fd is None:
            owner = _read_owner(self.shard_lock_path(label))
            raise InputError(
                f"shard {label} of run {self.run_id!r} is being written by process "
                f"{owner.get('pid', '?')} on {owner['host']} (since {owner['since']})"
            )
        _write_owner(fd)
        if self.writer() is not None:
            os.close(fd)
            raise InputError(self._busy())
        return fd

    def shard_writers(self) -> dict[str, dict[str, Any]]:
        """Shard label -> owner, for every shard whose writer is alive now."""
        live = {}
        for path in sorted((self.dir / SHARDS).glob("*.lock")) if (self.dir / SHARDS).is_dir() else []:
            fd = os.open(path, os.O_RDONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                live[path.stem] = _read_owner(path)
            finally:
                os.close(fd)
        return live

    def write_shard_record(self, label: str, record: dict[str, Any]) -> None:
        _atomic_write(self.dir / SHARDS / f"{label}.json", _manifest_bytes(record))

    def shard_records(self) -> dict[str, dict[str, Any]]:
        """What each shard writer recorded of its sessions (label -> record), unreadable ones left out."""
        out = {}
        for path in sorted((self.dir / SHARDS).glob("*.json")) if (self.dir / SHARDS).is_dir() else []:
            try:
                out[path.stem] = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
        return out

    def _busy(self) -> str:
        owner = self.writer() or _read_owner(self.lock_path)
        who = (
            f"process {owner['pid']} on {owner['host']} (since {owner['since']})"
            if owner.get("pid")
            else "another process"
        )
        return (
            f"run {self.run_id!r} is being written by {who}: "
            f"wait for it, or stop it and `hbench run --resume {self.run_id}`"
        )

    def release(self) -> None:
        """Stop being the writer. A store that does not hold the lock changes nothing: it never
        removes another process's lock."""
        fd, self._lock_fd, self._owner = self._lock_fd, None, None
        if fd is None:
            return
        try:
            if _is_current(fd, self.lock_path):
                self.lock_path.unlink()  # while still locked: a waiter that opened it retries on a new file
        except OSError:
            pass
        finally:
            os.close(fd)

    def writer(self) -> dict[str, Any] | None:
        """The live writer's host, pid and start time, or None when no process holds the lock
        (a manifest saying "running" then means the writer was killed)."""
        if self._lock_fd is not None:
            return self._owner
        for _ in range(3):
            try:
                fd = os.open(self.lock_path, os.O_RDONLY)
            except FileNotFoundError:
                return None
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return _read_owner(self.lock_path)
            else:
                if _is_current(fd, self.lock_path):
                    return None
            finally:
                os.close(fd)  # drops our shared lock at once
        return None

    # -- manifest ---------------------------------------------------------------------------------

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        _atomic_write(self.manifest_path, _manifest_bytes(manifest))

    def manifest(self) -> dict[str, Any]:
        if not self.exists():
            raise InputError(
                self._no_manifest() if self.dir.is_dir() else f"no run {self.run_id!r} under {self.dir.parent}/"
            )
        try:
            return json.loads(self.manifest_path.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"{self.manifest_path} is unreadable ({_first_line(exc)})") from None

    # -- parts ------------------------------------------------------------------------------------

    def part_paths(self) -> list[Path]:
        """Every part file, sorted, whether or not it reads back."""
        return sorted(self.parts.glob("*.parquet")) if self.parts.is_dir() else []

    def state(self, manifest: dict[str, Any] | None = None) -> str | None:
        """The manifest's status, except that "running" needs a live writer: a killed run never got to
        write "interrupted" itself."""
        state = (manifest or self.manifest()).get("status")
        if state != "running":
            return state
        owner = self.writer()
        if owner is None:
            return "interrupted (no live writer)"
        return f"running (process {owner['pid']} on {owner['host']})" if owner.get("pid") else "running"

    def done_keys(self) -> set[str]:
        """Tasks whose parts read back whole: what --resume skips. A bad part does not count; the
        writer moves it to parts/.bad/ so its task is refitted, a reader skips it; one stderr line each."""
        return {path.stem for path, _ in self._good_parts(tables=False)}

    def write_part(self, key: str, rows: pa.Table | pd.DataFrame) -> None:
        """Write one finished task's rows atomically (temporary file, then rename)."""
        path = self.parts / f"{key}.parquet"
        table = rows if isinstance(rows, pa.Table) else to_table(rows)
        if table.schema != ARROW_SCHEMA:
            table = table.cast(ARROW_SCHEMA)
        buffer = pa.BufferOutputStream()  # in memory, then one write: a third faster than Arrow opening the file
        pq.write_table(table, buffer)
        _atomic_write(path, buffer.getvalue())
        if table.num_rows:
            self._remember(path)

    def check_schema(self, manifest: dict[str, Any]) -> None:
        """InputError when the run was written under another results contract: its rows cannot be read as
        this version reads them (and a resume would set every part aside as incomplete)."""
        found = manifest.get("results_schema", 1)
        if found != RESULTS_SCHEMA:
            raise InputError(
                f"run {self.run_id!r} was written by another hbench (results schema {found}; this one "
                f"reads {RESULTS_SCHEMA}, where rows name their primary interval and parameter class): "
                "run its suite again with this version"
            )

    def load(self) -> pd.DataFrame:
        """The whole long table, sorted so that two runs of the same seeds compare equal.
        Parts that do not read back are left out, with one stderr line each (see done_keys)."""
        if self.exists():
            self.check_schema(self.manifest())
        tables = [table for _, table in self._good_parts(tables=True)]
        if not tables:
            return conform(pd.DataFrame(columns=list(SCHEMA)))
        df = conform(pa.concat_tables(tables).to_pandas())
        return df.sort_values(
            ["scenario", "cell", "rep", "engine", "parameter"], na_position="first", kind="stable"
        ).reset_index(drop=True)

    def _good_parts(self, tables: bool) -> Iterator[tuple[Path, pa.Table | None]]:
        """Parts that read back whole (with their rows if `tables`); parts already verified by
        this store and unchanged since are not read again unless their rows are wanted."""
        for path in self.part_paths():
            try:
                if not tables and self._verified.get(path.name) == _stamp(path):
                    yield path, None
                    continue
                table = read_verified_part(path)
            except FileNotFoundError:
                continue  # set aside by the writer since we listed it
            except BadPart as exc:
                self._bad_part(path, str(exc))
                continue
            self._remember(path)
            yield path, table if tables else None

    def _remember(self, path: Path) -> None:
        try:
            self._verified[path.name] = _stamp(path)
        except FileNotFoundError:
            pass

    def _bad_part(self, path: Path, reason: str) -> None:
        """The writer sets a bad part aside (its task is then refitted); a reader only skips it."""
        where = f"run {self.run_id}: part {path.name}: {reason};"
        if self._lock_fd is not None:
            target = self.parts / BAD / f"{path.name}.{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%fZ}"
            try:
                target.parent.mkdir(exist_ok=True)
                os.replace(path, target)
            except OSError as exc:
                raise InputError(
                    f"{where} could not be moved aside ({_first_line(exc)}): remove it and resume"
                ) from None
            _warn(f"{where} moved to {target.relative_to(self.dir)}; its task will be refitted")
        elif path.name not in self._warned:
            self._warned.add(path.name)
            _warn(f"{where} skipped; `hbench run --resume {self.run_id}` sets it aside and refits its task")


def _warn(message: str) -> None:
    print(f"hbench: warning: {message}", file=sys.stderr)


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _try_lock(path: Path) -> int | None:
    """An fd holding an exclusive flock on the file now at `path`, or None if a live process holds it.
    A lock file is only removed by its owner while locked, so a file we locked after it was removed
    is not the lock any more: try again on the current one."""
    for _ in range(100):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        if _is_current(fd, path):
            return fd
        os.close(fd)
    return None


def _is_current(fd: int, path: Path) -> bool:
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def _write_owner(fd: int) -> dict[str, Any]:
    """Record who writes (for other processes' error messages; the flock itself is the lock)."""
    owner = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(owner) + "\n").encode(), 0)
    return owner


def _read_owner(path: Path) -> dict[str, Any]:
    """What the live writer recorded; without `pid` when it has not written it yet."""
    unknown = {"host": "an unknown host", "since": "an unknown time"}
    try:
        return {**unknown, **json.loads(path.read_text())}
    except (OSError, ValueError, TypeError):
        return unknown


def _manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, default=str) + "\n").encode()


def _read_part(path: Path) -> pa.Table:
    """One part in ARROW_SCHEMA (parts written by pandas carry their own metadata and string type; parts
    written before a column existed get it as nulls, and columns since removed are dropped)."""
    table = pq.read_table(path).replace_schema_metadata(None)
    if table.schema == ARROW_SCHEMA:
        return table
    for name in ARROW_SCHEMA.names:  # a column added to FitResult since the part was written: null there
        if name not in table.column_names:
            table = table.append_column(ARROW_SCHEMA.field(name), pa.nulls(len(table), ARROW_SCHEMA.field(name).type))
    return table.select(ARROW_SCHEMA.names).cast(ARROW_SCHEMA)


def _atomic_write(path: Path, data: bytes | pa.Buffer) -> None:
    """The whole file or, on any error, none of it (a temporary file beside it, renamed into place)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
