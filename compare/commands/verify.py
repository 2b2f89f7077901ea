"""`hbench verify RUN_ID`: check a run's integrity before trusting its numbers.

Read-only (it moves nothing, unlike --resume). Checks: the manifest reads; every part reads back
whole; part keys against the tasks the manifest's suite expands to (missing = not done yet,
unexpected = corrupt); no duplicated (scenario, cell, rep, engine, parameter, interval) row; every fit the
suite asks for has a row with a status. One line per problem, then a summary; exit 0 when sound,
1 when problems were found, 2 for an unknown run.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd

from compare.errors import InputError
from compare.store import BAD, BadPart, RunStore, read_verified_part

KEYS = ["scenario", "cell", "rep", "engine", "parameter", "interval"]
SHOWN = 5  # missing tasks named in the summary


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="check a run's integrity (manifest, parts, task keys, rows)")
    p.add_argument("run_id")
    p.add_argument("--results", default="results", help="results root folder")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    problems, summary = verify(RunStore(args.run_id, Path(args.results)))
    for line in problems:
        print(line)
    print(summary)
    return 1 if problems else 0


def expected_fits(manifest: dict[str, Any]) -> dict[str, set[str]]:
    """Task key -> engine names, as the manifest's suite expands today. The one place that calls
    the harness and the task expansion, whose signatures may change."""
    from compare.harness import suite_from_manifest
    from compare.tasks import expand

    return {task.key: {e.label for e in task.engines} for task in expand(suite_from_manifest(manifest))}


def verify(store: RunStore) -> tuple[list[str], str]:
    """Problems found (one line each) and a summary line; InputError when there is no such run."""
    if not store.dir.is_dir():
        raise InputError(f"no run {store.run_id!r} under {store.dir.parent}/")
    problems: list[str] = []
    manifest = _manifest(store, problems)
    rows = _parts(store, problems)
    expected = _expected(manifest, problems) if manifest is not None else None
    done = set(rows["key"]) if len(rows) else set()
    if manifest is not None and expected is not None:
        _check_keys(manifest, expected, done, problems)
        _check_fits(rows[rows["key"].isin(set(expected))], expected, problems)
    _check_duplicates(rows, problems)
    return problems, _summary(store, manifest, expected, done, problems)


def _manifest(store: RunStore, problems: list[str]) -> dict[str, Any] | None:
    try:
        return store.manifest()
    except InputError as exc:
        problems.append(f"manifest: {exc}")
        return None


def _parts(store: RunStore, problems: list[str]) -> pd.DataFrame:
    """The key and status columns of every part that reads back whole (one frame, `key` = file stem)."""
    frames = []
    for path in store.part_paths():
        try:
            table = read_verified_part(path)
        except FileNotFoundError:
            continue
        except BadPart as exc:
            problems.append(f"part {path.name}: {exc}")
            continue
        frame = table.select(KEYS + ["status"]).to_pandas()
        frame["key"] = path.stem
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=KEYS + ["status", "key"])


def _expected(manifest: dict[str, Any], problems: list[str]) -> dict[str, set[str]] | None:
    try:
        return expected_fits(manifest)
    except Exception as exc:  # noqa: BLE001 - whatever it is, it becomes one line, not a traceback
        problems.append(f"manifest: its suite does not expand to tasks ({type(exc).__name__}: {exc})")
        return None


def _check_keys(manifest: dict[str, Any], expected: dict[str, set[str]], done: set[str], problems: list[str]) -> None:
    for key in sorted(done - set(expected)):
        problems.append(f"part {key}.parquet: not a task of the run's suite")
    if manifest.get("n_tasks") != len(expected):
        problems.append(
            f"manifest: n_tasks is {manifest.get('n_tasks')} but its suite expands to {len(expected)} "
            "tasks today (--resume would run a different set of tasks)"
        )
        return
    missing = sorted(set(expected) - done)
    if missing and manifest.get("status") == "complete":
        problems.append(f"manifest says complete but {_n(len(missing), 'task')} without a part (first: {missing[0]})")


def _check_fits(rows: pd.DataFrame, expected: dict[str, set[str]], problems: list[str]) -> None:
    """Every engine the suite runs on a finished task has rows there, each with a status."""
    for key, task_rows in rows.groupby("key", sort=True):
        absent = sorted(expected[key] - set(task_rows["engine"].dropna()))
        if absent:
            problems.append(f"part {key}.parquet: no rows for engine {', '.join(absent)}")
        blank = task_rows[task_rows["status"].isna() | (task_rows["status"].astype(str).str.strip() == "")]
        for engine, n in blank.groupby("engine", dropna=False).size().items():
            problems.append(f"part {key}.parquet: engine {engine} has {_n(n, 'row')} without a status")


def _check_duplicates(rows: pd.DataFrame, problems: list[str]) -> None:
    dup = rows[rows.duplicated(KEYS, keep=False)]
    for (key, engine), group in dup.groupby(["key", "engine"], dropna=False, sort=True):
        params = sorted(group["parameter"].astype(str).unique())
        problems.append(
            f"part {key}.parquet: engine {engine} has duplicated rows (parameter, interval) for "
            f"{', '.join(params[:5])}{' ...' if len(params) > 5 else ''}"
        )


def _summary(
    store: RunStore,
    manifest: dict[str, Any] | None,
    expected: dict[str, set[str]] | None,
    done: set[str],
    problems: list[str],
) -> str:
    verdict = _n(len(problems), "problem") if problems else "sound"
    if expected is not None:
        todo = sorted(set(expected) - done)
        progress = f"{len(done & set(expected))}/{len(expected)} tasks done"
        if todo:
            shown = ", ".join(todo[:SHOWN]) + (", ..." if len(todo) > SHOWN else "")
            progress += f" ({len(todo)} not done yet: {shown})"
        elif manifest and manifest.get("status") != "complete":
            progress += " (complete)"  # a sharded run: its shards never mark the manifest complete
    else:
        progress = f"{len(done)} parts read back"
    notes = []
    aside = store.parts / BAD
    if aside.is_dir() and any(aside.iterdir()):
        notes.append(f"{_n(sum(1 for _ in aside.iterdir()), 'bad part')} set aside in parts/{BAD}/")
    owner = store.writer()
    shards = store.shard_writers()
    if owner:
        notes.append(f"being written by process {owner.get('pid', '?')} on {owner['host']}")
    elif shards:
        notes.append(f"{_n(len(shards), 'shard')} being written ({', '.join(shards)})")
    elif manifest and manifest.get("status") == "running":
        notes.append("no live writer: interrupted, `hbench run --resume` completes it")
    status = f"status {manifest.get('status')}, " if manifest else ""
    return f"run {store.run_id}: {verdict}: {status}{progress}" + "".join(f"; {n}" for n in notes)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"
