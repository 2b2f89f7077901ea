"""The results store can be trusted after crashes, kills and races (issue 13).

Checks: an interrupted start-up leaves no run folder without its manifest; an existing folder, or
one an older version left without a manifest, is one line telling the user what to do; one writer
per run, even when several processes take over a dead writer's lock at once; only the owner
removes its lock; `status` tells a killed run from a running one; a truncated, empty or misnamed
part is not counted as done, is set aside and refitted by --resume, and never crashes a load;
`hbench verify` names each problem and exits 0 (sound), 1 (problems) or 2 (unknown run)."""

import json
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import compare.store as store_module
from compare.cli import main
from compare.errors import InputError
from compare.store import TIMING_COLUMNS, RunStore, part_key, to_table
from compare.tasks import Task
from tests.doubles import seeds_of

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "HBENCH_ENGINES": "tests.doubles", "PYTHONPATH": str(ROOT)}
os.environ["HBENCH_ENGINES"] = "tests.doubles"

SUITE = """
name = "t"
seed = 3
reps = 2
timeout = 60
[[scenario]]
name = "varying_intercept"
cells = [0, 4]
[[scenario]]
name = "seed_slopes"
cells = [0]
[[engine]]
name = "ols-double"
[[engine]]
name = "failing-double"
settings = { fail_seeds = %s }
""" % seeds_of(3, [("varying_intercept", 0), ("varying_intercept", 4), ("seed_slopes", 0)], [1])
N_TASKS = 6


def hbench(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "compare", *args, "--results", str(root)],
                          capture_output=True, text=True, cwd=root.parent, env=ENV, timeout=300)


def cli(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def new_run(root: Path, run_id: str = "r", **manifest) -> RunStore:
    """A run folder as `hbench run` leaves it, with no writer."""
    store = RunStore(run_id, root)
    store.create({"status": "running", "n_tasks": 1, **manifest})
    store.release()
    return RunStore(run_id, root)


# -- creating a run --------------------------------------------------------------------------------

def test_an_interrupted_start_up_leaves_no_run_folder(tmp_path, monkeypatch):
    def ctrl_c(path, data):
        raise KeyboardInterrupt

    monkeypatch.setattr(store_module, "_atomic_write", ctrl_c)  # Ctrl-C while the manifest is written
    with pytest.raises(KeyboardInterrupt):
        RunStore("r", tmp_path).create({"status": "running", "n_tasks": 1})
    assert not (tmp_path / "r").exists()
    assert list((tmp_path / ".starting").iterdir()) == []
    monkeypatch.undo()
    store = RunStore("r", tmp_path)
    store.create({"status": "running", "n_tasks": 1})
    assert store.manifest()["n_tasks"] == 1 and store.writer()["pid"] == os.getpid()


def test_an_existing_run_folder_is_one_line(tmp_path, capsys):
    new_run(tmp_path)
    with pytest.raises(InputError, match="already exists"):
        RunStore("r", tmp_path).create({"status": "running", "n_tasks": 1})
    (tmp_path / "old" / "parts").mkdir(parents=True)  # an older hbench interrupted between mkdir and manifest
    with pytest.raises(InputError, match="has no manifest.json"):
        RunStore("old", tmp_path).create({"status": "running", "n_tasks": 1})
    remove = f"remove it (rm -r {tmp_path / 'old'})"
    for args in (["status", "old"], ["run", "--resume", "old"]):
        rc, out, err = cli(capsys, *args, "--results", str(tmp_path))
        assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1 and remove in err, (args, err)
    rc, out, err = cli(capsys, "verify", "old", "--results", str(tmp_path))
    assert rc == 1 and err == "" and remove in out.splitlines()[0]


# -- the writer lock -------------------------------------------------------------------------------

def _contend(root: str, rounds: int, start, go, end, results) -> None:
    for r in range(rounds):
        store = RunStore(f"run{r}", root)
        start.wait(timeout=60)
        while go.value != r + 1:  # spin, so that all take over within microseconds (a barrier wakes them in turn)
            pass
        try:
            store.acquire()
            won = True
        except (InputError, OSError):
            won = False
        results.put(won)
        end.wait(timeout=60)  # everyone has tried while the winner still holds the lock
        store.release()


def test_racing_takeovers_of_a_stale_lock_have_exactly_one_winner(tmp_path, monkeypatch):
    n, rounds = 8, 50
    monkeypatch.setattr(store_module, "_LOCK_WAIT_S", 0.001)  # losers give up sooner; the winner holds on anyway
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()
    for r in range(rounds):  # what a SIGKILLed writer leaves: a lock file naming a dead process
        run = new_run(tmp_path, f"run{r}")
        run.lock_path.write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid, "since": "x"}))
    ctx = mp.get_context("fork")  # children only open files and flock: no threads, no imports needed
    start, go, end, results = ctx.Barrier(n + 1), ctx.Value("i", 0, lock=False), ctx.Barrier(n + 1), ctx.Queue()
    procs = [ctx.Process(target=_contend, args=(str(tmp_path), rounds, start, go, end, results)) for _ in range(n)]
    for p in procs:
        p.start()
    winners = []
    for r in range(rounds):
        start.wait(timeout=60)
        time.sleep(0.005)  # let them all reach the spin
        go.value = r + 1
        winners.append(sum(results.get(timeout=60) for _ in range(n)))
        end.wait(timeout=60)
    for p in procs:
        p.join(timeout=60)
    assert winners == [1] * rounds
    assert all(p.exitcode == 0 for p in procs)
    assert not any((tmp_path / f"run{r}" / "lock").exists() for r in range(rounds))  # each winner cleaned up


def test_release_by_a_non_owner_keeps_the_owners_lock(tmp_path):
    owner = new_run(tmp_path)
    owner.acquire()
    RunStore("r", tmp_path).release()  # e.g. a second `hbench run --resume r` cleaning up after itself
    assert owner.lock_path.exists()
    with pytest.raises(InputError, match=f"being written by process {os.getpid()} on {socket.gethostname()}"):
        RunStore("r", tmp_path).acquire()
    owner.release()
    assert not owner.lock_path.exists()
    RunStore("r", tmp_path).acquire()  # free once its owner let go


HOLD = ("import sys, time; from compare.store import RunStore; s = RunStore(sys.argv[1], sys.argv[2]); "
        "s.acquire(); print('held', flush=True); time.sleep(120)")


def test_a_killed_writer_frees_the_run_and_status_says_interrupted(tmp_path, capsys):
    new_run(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, "r", str(tmp_path)], stdout=subprocess.PIPE, text=True,
                              env=ENV)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(InputError, match=f"process {holder.pid} on {socket.gethostname()}"):
            RunStore("r", tmp_path).acquire()
        rc, out, _ = cli(capsys, "status", "r", "--results", str(tmp_path))
        assert rc == 0 and f"run r: running (process {holder.pid} on {socket.gethostname()})" in out
    finally:
        holder.kill()  # SIGKILL: no cleanup, the lock file stays
        holder.wait()
    assert (tmp_path / "r" / "lock").exists()
    rc, out, _ = cli(capsys, "status", "r", "--results", str(tmp_path))
    assert rc == 0 and "run r: interrupted (no live writer)" in out
    RunStore("r", tmp_path).acquire()


# -- parts -----------------------------------------------------------------------------------------

def rows(scenario: str = "s", cell: int = 0, rep: int = 0, n: int = 3) -> pa.Table:
    return to_table({"scenario": scenario, "cell": cell, "rep": rep, "run_seed": 1, "engine_seed": 2,
                     "engine": "e", "status": "ok",
                     "parameter": [f"p{i}" for i in range(n)], "estimate": [float(i) for i in range(n)]}, n)


def damage(parts: Path) -> dict[str, str]:
    """Break three parts the ways a crash, a full disk or a careless copy do; {part: what the user is told}."""
    first, second, third, fourth = sorted(parts.glob("*.parquet"))[:4]
    first.write_bytes(first.read_bytes()[: first.stat().st_size // 2])
    second.write_bytes(b"")
    shutil.copyfile(fourth, third)
    return {first.name: "footer", second.name: "footer", third.name: f"rows are for {fourth.stem}"}


def test_only_parts_that_read_back_whole_count_as_done(tmp_path, capsys):
    store = new_run(tmp_path)
    for rep in range(5):
        store.write_part(part_key("s", 0, rep), rows(rep=rep))
    broken = damage(store.parts)
    store.write_part(part_key("s", 0, 5), rows(rep=5, n=0))  # no rows
    pq.write_table(rows(rep=6).select(["scenario", "cell", "rep"]), store.parts / "s__c0__r6.parquet")
    no_seed = rows(rep=7)
    no_seed = no_seed.set_column(no_seed.schema.get_field_index("run_seed"), "run_seed", pa.nulls(3, pa.int64()))
    store.write_part(part_key("s", 0, 7), no_seed)
    good = {"s__c0__r3", "s__c0__r4"}

    reader = RunStore("r", tmp_path)
    assert reader.done_keys() == good
    assert sorted(reader.load()["rep"].unique()) == [3, 4]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 6 and all("skipped" in line and "--resume" in line for line in err)
    for name, reason in broken.items():
        assert any(name in line and reason in line for line in err)
    assert len(list(store.parts.glob("*.parquet"))) == 8  # a reader moves nothing

    writer = RunStore("r", tmp_path)
    writer.acquire()
    assert writer.done_keys() == good
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 6 and all("moved to parts/.bad/" in line and "refitted" in line for line in err)
    assert {p.stem for p in store.parts.glob("*.parquet")} == good
    assert len(list((store.parts / ".bad").iterdir())) == 6


def test_part_names_are_task_keys():
    assert part_key("seed_slopes", 2, 7) == Task("seed_slopes", "x.toml", 2, 7, 1).key


# -- hbench verify ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished run "base" of SUITE (6 tasks, ols-double and failing-double), made once by `hbench run`."""
    tmp = tmp_path_factory.mktemp("finished")
    (tmp / "s.toml").write_text(SUITE)
    res = hbench(tmp / "results", "run", str(tmp / "s.toml"), "--run-id", "base", "--workers", "1", "--no-progress")
    assert res.returncode == 0, res.stderr[-2000:]
    return tmp / "results"


def copy_run(finished: Path, tmp_path: Path, run_id: str) -> RunStore:
    shutil.copytree(finished / "base", tmp_path / "results" / run_id)
    return RunStore(run_id, tmp_path / "results")


def test_resume_refits_damaged_parts_and_verify_agrees(finished, tmp_path):
    expected = RunStore("base", finished).load().drop(columns=TIMING_COLUMNS)
    store = copy_run(finished, tmp_path, "r")
    broken = damage(store.parts)
    root = tmp_path / "results"

    res = hbench(root, "verify", "r")
    assert res.returncode == 1, res.stdout + res.stderr
    lines = res.stdout.strip().splitlines()
    missing = ", ".join(sorted(Path(name).stem for name in broken))
    assert lines[-1] == f"run r: 4 problems: status complete, {N_TASKS - 3}/{N_TASKS} tasks done (3 not done yet: {missing})"
    assert sorted(line.split(":")[0] for line in lines[:-2]) == sorted(f"part {name}" for name in broken)
    assert lines[-2].startswith("manifest says complete but 3 tasks without a part")

    res = hbench(root, "run", "--resume", "r", "--no-progress", "--workers", "1")
    assert res.returncode == 0, res.stderr[-2000:]
    moved = [line for line in res.stderr.splitlines() if "moved to parts/.bad/" in line]
    assert sorted(line.split(" part ")[1].split(":")[0] for line in moved) == sorted(broken)
    pd.testing.assert_frame_equal(RunStore("r", root).load().drop(columns=TIMING_COLUMNS), expected)

    res = hbench(root, "verify", "r")
    assert res.returncode == 0, res.stdout
    assert res.stdout.strip() == (f"run r: sound: status complete, {N_TASKS}/{N_TASKS} tasks done; "
                                  "3 bad parts set aside in parts/.bad/")


def test_verify_names_each_problem(finished, tmp_path, capsys):
    store = copy_run(finished, tmp_path, "r")
    store.write_manifest({**store.manifest(), "status": "interrupted"})
    part = {p.stem: pq.read_table(p) for p in store.parts.glob("*.parquet")}
    (store.parts / "seed_slopes__c0__r0.parquet").unlink()  # not done yet: not a problem
    store.write_part("varying_intercept__c1__r0", rows("varying_intercept", 1, 0))  # cell 1 is not in the suite
    dup = part["varying_intercept__c0__r0"]
    store.write_part("varying_intercept__c0__r0", pa.concat_tables([dup, dup.slice(0, 2)]))
    blank = part["varying_intercept__c4__r1"]
    store.write_part("varying_intercept__c4__r1", blank.set_column(
        blank.schema.get_field_index("status"), "status", pa.nulls(len(blank), pa.string())))
    one = part["seed_slopes__c0__r1"]
    store.write_part("seed_slopes__c0__r1", one.filter(pa.compute.equal(one["engine"], "ols-double")))

    rc, out, _ = cli(capsys, "verify", "r", "--results", str(tmp_path / "results"))
    lines = out.strip().splitlines()
    assert rc == 1
    assert lines[:-1] == [
        "part varying_intercept__c1__r0.parquet: not a task of the run's suite",
        "part seed_slopes__c0__r1.parquet: no rows for engine failing-double",
        "part varying_intercept__c4__r1.parquet: engine failing-double has 1 row without a status",
        "part varying_intercept__c4__r1.parquet: engine ols-double has 54 rows without a status",
        "part varying_intercept__c0__r0.parquet: engine ols-double has duplicated rows (parameter, interval) for "
        "b[Intercept], b[x]",
    ]
    assert lines[-1] == (f"run r: 5 problems: status interrupted, {N_TASKS - 1}/{N_TASKS} tasks done "
                         "(1 not done yet: seed_slopes__c0__r0)")


def test_verify_unknown_run_is_exit_2(tmp_path, capsys):
    rc, out, err = cli(capsys, "verify", "nope", "--results", str(tmp_path))
    assert rc == 2 and out == "" and err.strip() == f"hbench: error: no run 'nope' under {tmp_path}/"




def test_a_run_written_under_an_older_results_schema_is_refused_in_one_line_and_kept(tmp_path, capsys):
    """Results schema 2 (rows say `primary`, `param_class`, ...): a run whose manifest predates it is refused by
    readers and by --resume with one line naming the schema, and its parts are left exactly as they were (a
    resume must not set them aside as incomplete)."""
    store = new_run(tmp_path, "old")
    store.write_part(part_key("s", 0, 0), rows())
    manifest = store.manifest()
    assert manifest["results_schema"] == store_module.RESULTS_SCHEMA
    del manifest["results_schema"]  # as an hbench before schema 2 wrote it
    store.write_manifest(manifest)
    before = sorted(p.name for p in store.parts.rglob("*"))
    with pytest.raises(InputError, match="results schema 1; this one reads 2"):
        store.load()
    rc, out, err = cli(capsys, "run", "--resume", "old", "--results", str(tmp_path), "--no-progress")
    assert rc == 2 and "results schema 1" in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in store.parts.rglob("*")) == before
