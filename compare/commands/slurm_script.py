"""`hbench slurm-script SUITE --shards N`: an sbatch array script that runs the suite as N shards (array tasks
1..N, each `hbench run SUITE --run-id ID --shard i/N`) into one run folder, with the suite's `[cluster]`
settings as its #SBATCH lines. Nothing is submitted: read it, then `sbatch` it."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from compare.cluster import add_arguments, given, overridden, sbatch_script
from compare.errors import InputError
from compare.store import RunStore
from compare.suite import load_suite


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("slurm-script", help="write an sbatch array script that runs a suite in N shards")
    p.add_argument("suite", help="suite file, or a name from scenarios/suites/")
    p.add_argument("--shards", type=int, required=True, help="array tasks (shards) to split the run into")
    p.add_argument("--run-id", help="the run all shards write into (default: <suite>-<timestamp>)")
    p.add_argument("--reps", type=int, help="replications per cell (overrides the suite), for every shard")
    p.add_argument("--seed", type=int, help="run seed (overrides the suite), for every shard")
    p.add_argument("--results", default="results", help="results root folder (on a filesystem every node sees)")
    add_arguments(p)
    p.add_argument("--output", "-o", help="write the script here (default: standard output)")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    if args.shards < 1:
        raise InputError(f"--shards {args.shards}: must be at least 1")
    suite = overridden(load_suite(args.suite, reps=args.reps, seed=args.seed), given(args))  # fails here, not there
    if args.shards > (n := _n_tasks(suite)):
        raise InputError(f"--shards {args.shards}: the suite has only {n} tasks")
    run_id = args.run_id or f"{suite.name}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    RunStore(run_id, args.results)  # checks the id
    extra = [
        arg
        for flag, value in (("--reps", args.reps), ("--seed", args.seed))
        if value is not None
        for arg in (flag, str(value))
    ]
    scenarios = [arg for folder in args.scenarios for arg in ("--scenarios", str(Path(folder).resolve()))]
    text = sbatch_script(
        suite.cluster,
        suite=Path(suite.path).resolve(),
        run_id=run_id,
        shards=args.shards,
        python=sys.executable,
        results=Path(args.results).resolve(),
        workdir=Path.cwd(),
        extra_args=extra,
        global_args=scenarios,
    )
    if args.output:
        Path(args.output).write_text(text)
        print(
            f"wrote {args.output}: `sbatch {args.output}` runs {run_id} as {args.shards} array tasks", file=sys.stderr
        )
    else:
        sys.stdout.write(text)
    return 0


def _n_tasks(suite) -> int:
    from compare.tasks import expand

    return len(expand(suite))
