"""`hbench run SUITE.toml`: run a suite (or resume a killed run) into results/<run_id>/."""

from __future__ import annotations

import argparse
import signal
import sys
from functools import partial

from compare import cluster
from compare.errors import InputError
from compare.harness import FailSafeTriggered
from compare.harness import run as run_suite
from compare.precision import parse_targets, run_until, summary


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a suite of scenarios x engines x replications")
    p.add_argument("suite", nargs="?", help="suite file, or a name from scenarios/suites/ (quick, default, paper)")
    p.add_argument(
        "--reps",
        type=int,
        help="replications per cell (overrides the suite); with --resume, "
        "extends the run to N replications (adds, never refits)",
    )
    p.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    p.add_argument("--seed", type=int, help="run seed (overrides the suite)")
    p.add_argument("--run-id", help="results/<run-id>/ (default: <suite>-<timestamp>)")
    p.add_argument(
        "--executor",
        choices=["local", "dask", "slurm"],
        default="local",
        help="local: a pool of worker processes; dask: a Dask cluster (--scheduler, or a local one); "
        "slurm: Dask workers as SLURM jobs (the suite's [cluster] table, or --queue ...)",
    )
    p.add_argument("--scheduler", help="dask scheduler address (default: a LocalCluster)")
    p.add_argument("--resume", metavar="RUN_ID", help="complete a run that was interrupted")
    p.add_argument(
        "--shard",
        metavar="i/N",
        help="run only shard i of N of the tasks into --run-id (array jobs on a "
        "shared filesystem; every shard gets the same SUITE, --run-id and N)",
    )
    p.add_argument(
        "--until-mcse",
        action="append",
        metavar="MEASURE=MCSE",
        help="run batches of replications until every key MEASURE (coverage, bias, rejection) has a Monte "
        "Carlo SE of at most MCSE, e.g. coverage=0.01; repeatable; needs --max-reps",
    )
    p.add_argument("--max-reps", type=int, help="with --until-mcse: stop at this many replications per cell")
    cluster.add_arguments(p)
    p.add_argument("--results", default="results", help="results root folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    # SIGTERM (`timeout`, `kill`, SLURM's scancel) ends a run like Ctrl-C: workers stopped, manifest "interrupted"
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    common = dict(
        workers=args.workers,
        executor=args.executor,
        scheduler=args.scheduler,
        root=args.results,
        progress=not args.no_progress,
        cluster=cluster.given(args),
    )
    start = partial(
        run_suite,
        args.suite,
        run_id=args.run_id,
        reps=args.reps,
        seed=args.seed,
        resume=args.resume,
        shard=args.shard,
        **common,
    )
    try:
        if args.until_mcse or args.max_reps is not None:
            store, lines = _until(args, start, common)
        else:
            store, lines = start(), []
    except FailSafeTriggered as exc:
        print(f"hbench: {exc}. Results so far are kept; fix the cause and resume.", file=sys.stderr)
        return 1
    print(f"run {store.run_id}: {len(store.done_keys())} tasks in {store.dir}")
    for line in lines:
        print(line)
    return 0


def _until(args: argparse.Namespace, start, common: dict) -> tuple:
    if not args.until_mcse or args.max_reps is None:
        raise InputError("--until-mcse and --max-reps go together: targets, and a cap on replications per cell")
    if args.shard:
        raise InputError("--until-mcse runs batches one after another: it cannot run a --shard")
    if args.max_reps < 1:
        raise InputError(f"--max-reps {args.max_reps}: must be at least 1")
    targets = parse_targets(args.until_mcse)

    def extend(run_id: str, reps: int):
        return run_suite(None, resume=run_id, reps=reps, **common)

    store, found, reps = run_until(targets, args.max_reps, start, extend)
    return store, summary(found, reps, args.max_reps)
