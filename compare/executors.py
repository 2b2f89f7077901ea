"""Execution backends: a local pool of worker processes, or a Dask distributed cluster.

Both yield (task, rows) as tasks finish and produce the same rows for the same
seeds, since both call `tasks.run_task`/`fit_one` on the same Task.

The local pool is our own rather than concurrent.futures: a native abort (nutpie
can kill its process) breaks a ProcessPoolExecutor for every task in flight,
and it cannot say which one did it.  Here each worker holds one task at a time
and reports each engine as it starts, so the parent knows exactly which fit
crashed or overran its timeout, records that fit as a failure, replaces the
worker and sends the task's remaining engines to the new one.  Workers prefer
tasks of the shape they last ran, so compiled models are reused.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait

import pyarrow as pa

from compare.cluster import worker_lifetime
from compare.lifeline import tie_to_parent
from compare.status import Status
from compare.store import from_ipc, to_ipc
from compare.tasks import Task, failure_rows, fit_all, prepare_worker, run_task


def _worker_main(conn: Connection, parent: int) -> None:
    """Worker loop: receive a task, fit its engines one by one, reporting each start and result.

    The worker leads its own process group, so the processes its engines start (httpstan runs Stan
    chains in a process pool) are killed with it and never outlive the run holding its stdout open; and it
    is tied to the parent (`compare.lifeline`): if the run's main process dies, the whole group ends."""
    tie_to_parent(parent)
    prepare_worker()
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):  # the parent is gone (killed): nothing left to do
            return
        if task is None:
            return
        for label, rows in fit_all(task, on_start=lambda label: conn.send(("start", label))):
            conn.send(("rows", label, to_ipc(rows)))
        conn.send(("done",))


def _pid(w: _Worker) -> int:
    assert w.proc.pid is not None, "a worker is started when it is made"
    return w.proc.pid


@dataclass
class _Worker:
    proc: mp.process.BaseProcess
    conn: Connection
    tasks: deque[Task] = field(default_factory=deque)  # sent, not yet done; the first is running
    engine: str | None = None
    started: float = 0.0
    last_shape: tuple | None = None

    @property
    def task(self) -> Task | None:
        return self.tasks[0] if self.tasks else None


@dataclass
class _Pending:
    frames: list[pa.Table] = field(default_factory=list)


class LocalExecutor:
    """A pool of `workers` spawned processes with per-fit timeouts and crash recovery."""

    def __init__(self, workers: int, timeout: float) -> None:
        self.n = max(1, workers)
        self.timeout = timeout
        self.ctx = mp.get_context("spawn")
        self.pool: list[_Worker] = []

    def _spawn(self) -> _Worker:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(
            target=_worker_main, args=(child, os.getpid()), daemon=False
        )  # PyStan builds in a process pool
        proc.start()
        child.close()
        return _Worker(proc, parent)

    def _kill(self, w: _Worker, grace: float = 0.0) -> None:
        """Stop a worker and every process it started: wait `grace` seconds for a clean exit first."""
        w.proc.join(timeout=grace)
        try:
            os.killpg(_pid(w), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass  # the group is gone already
        w.proc.join(timeout=5)
        w.conn.close()

    def run(self, tasks: list[Task]) -> Iterator[tuple[Task, pa.Table]]:
        queues: dict[tuple, deque[Task]] = defaultdict(deque)
        for t in tasks:
            queues[t.shape].append(t)
        pending: dict[str, _Pending] = {}
        self.pool = [self._spawn() for _ in range(min(self.n, len(tasks)) or 1)]
        try:
            while queues or any(w.task for w in self.pool):
                self._fill(queues)
                yield from self._collect(pending, queues)
        finally:
            for w in self.pool:
                idle = w.task is None
                try:
                    if w.proc.is_alive() and idle:
                        w.conn.send(None)
                except (BrokenPipeError, OSError):
                    idle = False
                self._kill(w, grace=10.0 if idle else 0.0)

    def _fill(self, queues: dict[tuple, deque[Task]]) -> None:
        """Give every idle worker a task, and a busy one its next task while plenty remain.

        The queued task waits in the pipe, so a worker starts it the moment it finishes the last one
        instead of waiting for the parent to write results and send more; near the end of a run no task
        is queued behind a busy worker, so none waits while another worker is idle."""
        for w in self.pool:
            if not w.tasks and queues:
                self._assign(w, queues)
        for w in self.pool:
            if len(w.tasks) == 1 and sum(map(len, queues.values())) >= len(self.pool):
                self._assign(w, queues)

    def _assign(self, w: _Worker, queues: dict[tuple, deque[Task]]) -> None:
        shape = w.last_shape if w.last_shape in queues else next(iter(queues))
        task = queues[shape].popleft()
        if not queues[shape]:
            del queues[shape]
        try:
            w.conn.send(task)
        except (BrokenPipeError, OSError):
            # The worker died since the last look (a task queued behind a crashing fit): the task goes back;
            # `_collect` records the fit that was running. A worker that died idle is replaced here.
            queues.setdefault(shape, deque()).appendleft(task)
            if not w.tasks:
                self._kill(w)
                self.pool[self.pool.index(w)] = self._spawn()
            return
        if not w.tasks:
            w.engine, w.started = None, time.perf_counter()
        w.tasks.append(task)
        w.last_shape = shape

    def _collect(self, pending: dict[str, _Pending], queues) -> Iterator[tuple[Task, pa.Table]]:
        busy = [w for w in self.pool if w.task is not None]
        ready = wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout=1.0)
        for i, w in enumerate(list(self.pool)):
            if w.task is None:
                continue
            if w.conn in ready:
                try:
                    while w.conn.poll():
                        msg = w.conn.recv()
                        done = self._handle(w, msg, pending)
                        if done is not None:
                            yield done
                            break
                    continue
                except (EOFError, OSError):
                    pass  # the worker died mid-message: treat as a crash below
            if not w.proc.is_alive() or (w.conn not in ready and w.proc.sentinel in ready):
                code = w.proc.exitcode
                yield from self._replace(
                    i, w, Status.CRASHED, f"worker process died (exit code {code}) during this fit", pending, queues
                )
            elif w.engine is not None and time.perf_counter() - w.started > self.timeout:
                yield from self._replace(
                    i, w, Status.TIMEOUT, f"fit exceeded the {self.timeout:g} s timeout", pending, queues
                )

    def _handle(self, w: _Worker, msg: tuple, pending: dict[str, _Pending]):
        kind = msg[0]
        task = w.task
        assert task is not None, "a worker reports only on a task it was sent"
        if kind == "start":
            w.engine, w.started = msg[1], time.perf_counter()
        elif kind == "rows":
            pending.setdefault(task.key, _Pending()).frames.append(from_ipc(msg[2]))
            w.engine = None
        elif kind == "done":
            w.tasks.popleft()
            frames = pending.pop(task.key).frames
            return task, pa.concat_tables(frames)
        return None

    def _replace(self, i: int, w: _Worker, status: Status, error: str, pending, queues):
        """Record the running fit as failed, replace the worker, and requeue the task's remaining engines
        and the tasks queued behind it."""
        task, engine = w.task, w.engine
        assert task is not None, "only a worker with a running task is replaced"
        self._kill(w)
        for queued in list(w.tasks)[1:]:
            queues.setdefault(queued.shape, deque()).appendleft(queued)
        self.pool[i] = self._spawn()
        names = [e.label for e in task.engines]
        done = len(pending.get(task.key, _Pending()).frames)
        current = engine or names[done]
        pending.setdefault(task.key, _Pending()).frames.append(failure_rows(task, None, current, status, error))
        rest = task.engines[names.index(current) + 1 :]
        if rest:
            queues.setdefault(("__rest__", task.key), deque()).appendleft(replace(task, engines=rest))
            return
        yield task, pa.concat_tables(pending.pop(task.key).frames)


class DaskExecutor:
    """Tasks as futures on a dask.distributed cluster (a LocalCluster when no address is given)."""

    def __init__(self, workers: int, timeout: float, scheduler: str | None = None) -> None:
        self.n = max(1, workers)
        self.timeout = timeout
        self.scheduler = scheduler

    def _client(self):
        import dask
        from distributed import Client, LocalCluster

        if self.scheduler:
            return Client(self.scheduler), None
        from compare.lifeline_dask import LifelinePlugin

        dask.config.set({"distributed.scheduler.allowed-failures": 0})
        cluster = LocalCluster(
            n_workers=self.n, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
        )
        client = Client(cluster)
        client.register_plugin(LifelinePlugin(os.getpid()))  # its workers are our children: they end with us
        return client, cluster

    def _slots(self, client) -> int:
        return max(1, sum(client.nthreads().values()))

    def run(self, tasks: list[Task]) -> Iterator[tuple[Task, pa.Table]]:
        """Keep at most one task per worker thread in flight, so time since submission is running time
        and the per-fit timeout (times the task's engine count) can be enforced from here."""
        from distributed import wait as dask_wait

        client, cluster = self._client()
        try:
            queue: deque[Task] = deque(tasks)
            running: dict = {}
            while queue or running:
                slots = self._slots(client)  # again each round: batch-cluster workers come and go
                while queue and len(running) < slots:
                    t = queue.popleft()
                    running[client.submit(run_task, t, key=f"hbench-{t.key}", pure=False)] = (t, time.perf_counter())
                try:
                    done, _ = dask_wait(list(running), timeout=1.0, return_when="FIRST_COMPLETED")
                except TimeoutError:  # distributed raises rather than returning an empty set
                    done = []
                for future in done:
                    task, _ = running.pop(future)
                    yield task, self._rows(future, task)
                for future, (task, t0) in list(running.items()):
                    if time.perf_counter() - t0 > len(task.engines) * self.timeout:
                        if not self._processing(client, future):  # waiting for a worker (a job in the queue)
                            running[future] = (task, time.perf_counter())
                            continue
                        running.pop(future)
                        self._abandon(client, future)
                        error = f"task exceeded {len(task.engines)} x {self.timeout:g} s on dask"
                        yield (
                            task,
                            pa.concat_tables(
                                [failure_rows(task, None, e.label, Status.TIMEOUT, error) for e in task.engines]
                            ),
                        )
        finally:
            client.close()
            if cluster is not None:
                cluster.close()

    @staticmethod
    def _rows(future, task: Task) -> pa.Table:
        try:
            return future.result()
        except Exception as exc:  # noqa: BLE001 - a killed worker, or a task that raised outside fit_one
            return pa.concat_tables(
                [
                    failure_rows(task, None, e.label, Status.CRASHED, f"dask task failed: {type(exc).__name__}: {exc}")
                    for e in task.engines
                ]
            )

    @staticmethod
    def _processing(client, future) -> bool:
        """Whether a worker holds the task: time spent queued for a worker (a SLURM job waiting in its queue, or
        replacing one that retired) is not the fit's, so the timeout clock restarts while it waits."""
        return any(future.key in keys for keys in client.processing().values())

    @staticmethod
    def _abandon(client, future) -> None:
        """Cancel an overrunning task and restart the worker running it (a thread cannot be stopped)."""
        holders = [w for w, keys in client.processing().items() if future.key in keys]
        future.cancel()
        if holders:
            client.restart_workers(holders)


class SlurmExecutor(DaskExecutor):
    """Dask on SLURM (dask-jobqueue): the workers are SLURM jobs, `spec.jobs` of them, each with `spec.cores`
    single-threaded worker processes, started by sbatch with the queue, memory and walltime of the suite's
    `[cluster]` table. The scheduler runs in this process; when it goes, the workers lose it and end after
    `DEATH_TIMEOUT_S` (and SLURM ends their jobs), and `close` cancels the jobs at once.

    Walltime: a worker retires shortly before its job's walltime (`compare.cluster.worker_lifetime`); its running
    task goes back to the queue, not counted as a failure, and dask's adaptive scaling (minimum = maximum = `jobs`)
    submits a job to replace it, so a run outlives its jobs. A worker lost abruptly (killed at the walltime all
    the same, preempted, its node lost) has its task retried on another, `LOST_RETRIES` times; a task that loses
    a worker more often than that (a fit that kills its process each time) is recorded as crashed."""

    DEATH_TIMEOUT_S = 30
    START_TIMEOUT_S = 600  # a queue can be slow to start the first job
    LOST_RETRIES = 2

    def __init__(self, spec, timeout: float, log_dir: str | None = None) -> None:
        super().__init__(spec.jobs * spec.cores, timeout)
        self.spec = spec
        self.log_dir = log_dir  # the jobs' stdout and stderr (default: the working directory)

    def _client(self):
        import dask
        from dask_jobqueue import SLURMCluster
        from distributed import Client

        from compare.lifeline_dask import LifelinePlugin

        s = self.spec
        lifetime, stagger = worker_lifetime(s)
        dask.config.set({"distributed.scheduler.allowed-failures": self.LOST_RETRIES})
        cluster = SLURMCluster(
            queue=s.queue or None,
            account=s.account or None,
            cores=s.cores,
            processes=s.cores,
            memory=s.memory,
            walltime=s.walltime,
            job_extra_directives=list(s.extra),
            job_script_prologue=list(s.setup),
            worker_extra_args=["--lifetime", f"{lifetime}s", "--lifetime-stagger", f"{stagger}s"],
            python=sys.executable,
            death_timeout=self.DEATH_TIMEOUT_S,
            scheduler_options={"dashboard_address": None},
            log_directory=self.log_dir,
            silence_logs=40,
        )
        cluster.adapt(minimum_jobs=s.jobs, maximum_jobs=s.jobs)  # a job that ends (walltime) is replaced
        client = Client(cluster)
        client.register_plugin(LifelinePlugin())  # a worker and its fits' processes end with its nanny
        client.wait_for_workers(1, timeout=self.START_TIMEOUT_S)
        return client, cluster
