"""No orphans: a worker process, and every process under it (httpstan's chain pool, R, CmdStan), ends
within a second of the run's main process dying, however it dies (SIGTERM, SIGKILL, a `timeout`).

`tie_to_parent()` runs first thing in a worker. It makes the worker lead its own process group (so one
`killpg` reaches everything it starts), asks the kernel to SIGKILL the worker when its parent dies
(prctl PR_SET_PDEATHSIG), and starts a reaper: a tiny process that checks twice a
second whether the worker still has the parent it started with, and when not (the parent died, the worker
was reparented, or the worker itself is gone) kills the worker's whole group, then ends. The reaper leads a group
of its own, so that a worker with nothing running has no child in its group and `compare.cputime` can tell that in
microseconds instead of scanning every process at each fit.

Why a process and not a thread: a fit in embedded R or a native sampler can hold the GIL for minutes, and
PDEATHSIG kills only the worker itself, not the processes under it; the reaper needs neither. It watches
the parent id rather than a pipe so that it also works for Dask workers, whose file descriptors hbench
does not hand out; a reparented process never gets its old parent back, so a dead parent (zombie or not)
is seen at the next check.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys

_PR_SET_PDEATHSIG = 1
POLL_S = 0.5

# argv: parent pid, worker pid, process group. /proc/<pid>/stat fields 3 and 4 (after the parenthesised name) are
# the state and the ppid; a worker that ended and is not yet reaped (state Z) is gone too, and its group goes.
_REAPER = f"""
import os, signal, sys, time
parent, worker, group = map(int, sys.argv[1:])
def ppid():
    try:
        with open(f"/proc/{{worker}}/stat") as fh:
            state, pp = fh.read().rsplit(")", 1)[1].split()[:2]
        return None if state == "Z" else int(pp)
    except (OSError, ValueError, IndexError):
        return None
while ppid() == parent:
    time.sleep({POLL_S})
try:
    os.killpg(group, signal.SIGKILL)
except ProcessLookupError:
    pass  # the group ended already (the pool killed its worker)
"""

_TIED = False


def _pdeathsig() -> None:
    """SIGKILL this process when its parent dies (Linux only: see `supported`)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def supported() -> bool:
    return sys.platform.startswith("linux") and os.path.isdir("/proc/self")


def tie_to_parent(parent: int | None = None) -> subprocess.Popen | None:
    """Make this process (a worker) and everything it starts end when its parent ends. `parent`: the pid the
    parent had when it started us (None: whatever parent we have now), so that a parent that died before this
    ran is seen. Idempotent; returns the reaper (None where /proc is missing: not Linux, where workers then only
    lead their own group)."""
    global _TIED
    if _TIED:
        return None
    if os.getpgrp() != os.getpid():
        os.setpgrp()
    _TIED = True
    if not supported():
        return None
    parent = parent or os.getppid()
    _pdeathsig()
    if os.getppid() != parent:  # the parent died before the kernel was told (man prctl): end now
        os.killpg(os.getpgrp(), signal.SIGKILL)
    return subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", _REAPER, str(parent), str(os.getpid()), str(os.getpgrp())],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        close_fds=True,
        process_group=0,  # outside the worker's group: see the module docstring
    )
