"""CPU seconds of one fit: what a fit costs whatever else the machine is doing.

Wall seconds per fit double when another job shares the cores (issue 23 saw runtime ratios of 0.41-0.48 between
two runs that used the same CPU time), so runtime regressions are judged on CPU seconds. A fit's CPU time is
  - this process's own (`time.process_time`: every thread, so nutpie's chains and R under rpy2, which runs
    in-process, are counted),
  - plus children that ended and were waited for during the fit (`os.times` children_user + children_system:
    CmdStan and Rscript subprocesses),
  - plus the CPU that live child processes spent during the fit (psutil): httpstan (PyStan) samples in a
    process pool whose workers outlive the fit, so `os.times` never sees them.
Processes started outside our tree (an R PSOCK cluster launched through a shell and orphaned) are not counted.

Reading live children costs a scan of every process on the machine (psutil: about 1.5 ms with a hundred processes,
twice a fit: 10% of a 30 ms fit), so a worker first asks the kernel whether it has any child at all (`os.waitid`,
microseconds) and skips the scan when it has none, which is the common case (statsmodels, rpy2 and nutpie fit
in-process; CmdStan's child is reaped by the time the fit returns).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import psutil


def _own() -> float:
    t = os.times()
    return time.process_time() + t.children_user + t.children_system


def _childless() -> bool:
    """True when this process surely has no live descendant: it leads its process group (a worker does, see
    `compare.lifeline`, and everything it starts stays in that group, which is how it is killed) and the kernel
    knows no child of it in that group, dead or alive. Anywhere else (not a group leader, no `os.waitid`), False:
    then the scan decides."""
    if not hasattr(os, "waitid") or os.getpgrp() != os.getpid():
        return False
    try:  # WNOWAIT: a child that ended stays waitable for whoever started it
        os.waitid(os.P_PGID, os.getpid(), os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return False


def _live_children() -> dict[int, float]:
    if _childless():
        return {}
    out = {}
    for child in psutil.Process().children(recursive=True):
        try:
            t = child.cpu_times()  # with the children it has reaped (a CmdStan under an Rscript)
            out[child.pid] = t.user + t.system + t.children_user + t.children_system
        except psutil.Error:  # it ended between listing and reading: os.times counts it once reaped
            pass
    return out


@dataclass
class CpuClock:
    """Started at construction; `elapsed()` is the CPU seconds of this process and its children since."""

    own: float = 0.0
    children: dict[int, float] | None = None

    def __post_init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        self.own, self.children = _own(), _live_children()

    def elapsed(self) -> float:
        own = _own() - self.own
        before, now = self.children or {}, _live_children()
        live = sum(cpu - before.get(pid, 0.0) for pid, cpu in now.items())
        # a child alive at the start and reaped since: os.times counts its whole life, so take off what it had
        # spent before the fit began
        reaped = sum(cpu for pid, cpu in before.items() if pid not in now)
        return max(own + live - reaped, 0.0)
