"""Array jobs: `hbench run SUITE --run-id ID --shard i/N` shards into one run folder, concurrently; the shards
together equal an unsharded run (timings aside); `hbench verify` names the missing tasks until the last shard
has run; a shard that differs from the run's (suite, N, seed) is refused; `hbench slurm-script` writes the
array script that runs them."""

import subprocess
import sys

import pandas as pd
import pytest

from compare.harness import suite_from_manifest
from compare.shards import Shard, parse_shard
from compare.store import RunStore
from compare.tasks import expand
from tests.test_harness import ENV, OLS, hbench, on_reps, table, write_suite

ENGINES = OLS + f'[[engine]]\nname = "failing-double"\nsettings = {{ fail_seeds = {on_reps(1)} }}\n'


def shard(tmp, suite, i, n=3, run_id="sh", *extra) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "compare", "run", str(suite), "--run-id", run_id, "--shard",
                             f"{i}/{n}", "--workers", "1", "--no-progress", "--results", str(tmp / "results"), *extra],
                            cwd=tmp, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(*procs: subprocess.Popen, timeout: float = 300) -> None:
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        assert p.returncode == 0, err[-2000:]


def test_shards_partition_the_tasks():
    tasks = list(range(10))
    got = [Shard(i, 3).of(tasks) for i in (1, 2, 3)]
    assert got == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    assert parse_shard(" 2/8 ") == Shard(2, 8)


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "3", "a/b", "-1/3"])
def test_a_bad_shard_is_one_line_exit_2(tmp_path, text):
    res = hbench(tmp_path, "run", str(write_suite(tmp_path)), "--run-id", "x", f"--shard={text}", "--no-progress")
    assert res.returncode == 2 and "--shard" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "results" / "x").exists()


def test_three_concurrent_shards_equal_an_unsharded_run(tmp_path):
    suite = write_suite(tmp_path, reps=4, engines=ENGINES)  # 12 tasks, 4 per shard
    res = hbench(tmp_path, "run", str(suite), "--run-id", "whole", "--workers", "2", "--no-progress")
    assert res.returncode == 0, res.stderr[-2000:]
    finish(shard(tmp_path, suite, 1), shard(tmp_path, suite, 2))  # at once: one creates the run, one joins
    res = hbench(tmp_path, "verify", "sh")
    third = sorted(t.key for t in Shard(3, 3).of(expand(suite_from_manifest(RunStore("sh", tmp_path / "results")
                                                                              .manifest()))))
    assert res.returncode == 0 and f"8/12 tasks done (4 not done yet: {', '.join(third)})" in res.stdout, res.stdout
    assert "sharded, no shard running" in hbench(tmp_path, "status", "sh").stdout

    refused = [hbench(tmp_path, "run", str(suite), "--run-id", "sh", "--shard", "3/4", "--no-progress"),
               hbench(tmp_path, "run", str(suite), "--run-id", "sh", "--shard", "3/3", "--seed", "6", "--no-progress"),
               hbench(tmp_path, "run", str(suite), "--run-id", "whole", "--shard", "3/3", "--no-progress")]
    for res, word in zip(refused, ["split in 3 shards", "its seed", "not started in shards"]):
        assert res.returncode == 2 and word in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    text = suite.read_text()
    suite.write_text(text.replace("timeout = 30", "timeout = 31"))
    res = hbench(tmp_path, "run", str(suite), "--run-id", "sh", "--shard", "3/3", "--no-progress")
    assert res.returncode == 2 and "edited" in res.stderr, res.stderr
    suite.write_text(text)

    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "results" / "sh" / "parts").glob("*.parquet")}
    finish(shard(tmp_path, suite, 3), shard(tmp_path, suite, 1))  # shard 1 again: nothing left to do
    after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "results" / "sh" / "parts").glob("*.parquet")}
    assert {k: after[k] for k in before} == before  # refits nothing
    res = hbench(tmp_path, "verify", "sh")
    assert res.returncode == 0 and "sound: status sharded, 12/12 tasks done (complete)" in res.stdout, res.stdout
    assert "complete, 12/12" in hbench(tmp_path, "status", "sh").stdout
    pd.testing.assert_frame_equal(table(tmp_path, "whole"), table(tmp_path, "sh"))


@pytest.mark.slow
def test_the_quick_suite_in_three_shards_equals_an_unsharded_run(tmp_path):
    """Every shipped engine: samplers bit for bit (seeded), everything else to 1e-6 relative: lme4 moves by
    ~1e-8 when its R session has fitted other replications first (its optimizer's tolerance), and `details`
    holds R's own wall time. Measured 3 Dec 2026: every engine but lme4 bit for bit. Minutes: the quick
    suite twice."""
    env = {k: v for k, v in ENV.items() if k != "HBENCH_ENGINES"}
    root = ["--results", str(tmp_path / "results"), "--no-progress", "--workers", "1"]
    whole = subprocess.run([sys.executable, "-m", "compare", "run", "quick", "--run-id", "whole", *root],
                           cwd=tmp_path, env=env, capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr[-2000:]
    procs = [subprocess.Popen([sys.executable, "-m", "compare", "run", "quick", "--run-id", "sh", "--shard", f"{i}/3",
                               *root], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in (1, 2, 3)]
    finish(*procs, timeout=3600)
    whole, sharded = (table(tmp_path, run_id).drop(columns=["details"]) for run_id in ("whole", "sh"))
    sampled = whole["engine"].isin(["pymc", "stan", "rstanarm", "brms"])
    assert sampled.any()
    pd.testing.assert_frame_equal(whole[sampled], sharded[sampled])
    pd.testing.assert_frame_equal(whole, sharded, check_exact=False, rtol=1e-6)


CLUSTER = ('[cluster]\nqueue = "short"\naccount = "lab"\ncores = 4\nmemory = "8GB"\nwalltime = "04:00:00"\n'
           'setup = ["echo setting up >&2"]\nextra = ["--qos=normal"]\n')


def test_slurm_script_is_a_ready_array_job(tmp_path):
    """Its #SBATCH lines say what the suite's [cluster] table says; run by bash as array tasks 1..3 would be
    (SLURM's variables set by hand), it fills the run completely."""
    suite = write_suite(tmp_path, reps=2, engines=ENGINES)
    suite.write_text(suite.read_text().replace("[[scenario]]", CLUSTER + "[[scenario]]", 1))
    res = hbench(tmp_path, "slurm-script", str(suite), "--shards", "3", "--run-id", "arr", "-o", "job.sh")
    assert res.returncode == 0, res.stderr
    script = (tmp_path / "job.sh").read_text()
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash"
    for line in ["#SBATCH --array=1-3", "#SBATCH --cpus-per-task=4", "#SBATCH --mem=8G", "#SBATCH --time=04:00:00",
                 "#SBATCH --partition=short", "#SBATCH --account=lab", "#SBATCH --qos=normal",
                 f"#SBATCH --chdir={tmp_path}", "echo setting up >&2"]:
        assert line in lines, line
    assert f'--run-id arr --results {tmp_path / "results"}' in script
    assert '--shard "${SLURM_ARRAY_TASK_ID}/3" --workers "${SLURM_CPUS_PER_TASK:-1}"' in script
    for i in (1, 2, 3):
        job = subprocess.run(["bash", str(tmp_path / "job.sh")], cwd="/", capture_output=True, text=True,
                             env={**ENV, "SLURM_ARRAY_TASK_ID": str(i), "SLURM_CPUS_PER_TASK": "1"})
        assert job.returncode == 0 and "setting up" in job.stderr, job.stderr[-2000:]
    res = hbench(tmp_path, "verify", "arr")
    assert res.returncode == 0 and "6/6 tasks done (complete)" in res.stdout, res.stdout


@pytest.mark.parametrize("old,new,field", [
    ('cores = 4', 'cores = 0', "cluster.cores"), ('memory = "8GB"', 'memory = "lots"', "cluster.memory"),
    ('walltime = "04:00:00"', 'walltime = "4h"', "cluster.walltime"), ('queue = "short"', 'queue = 3', "cluster.queue"),
    ('cores = 4', 'cores = 4\nnodes = 2', "cluster.nodes': unknown key")])
def test_a_bad_cluster_table_is_one_line_exit_2(tmp_path, old, new, field):
    suite = write_suite(tmp_path)
    suite.write_text(suite.read_text().replace("[[scenario]]", CLUSTER.replace(old, new) + "[[scenario]]", 1))
    res = hbench(tmp_path, "slurm-script", str(suite), "--shards", "2")
    assert res.returncode == 2 and field in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
