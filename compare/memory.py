"""Peak memory of one fit: the resident set's high-water mark of this process (R under rpy2 included) over the
fit, and of its child processes (CmdStan, httpstan's pool, Rscript) where one grew larger than any before.

Linux lets a process reset its own high-water mark (writing 5 to /proc/self/clear_refs sets VmHWM to the current
RSS), so a worker that has fitted other models before still measures each fit alone. Elsewhere, or where the
reset is refused, the measure is None: never a number that means something else.
"""

from __future__ import annotations

import resource
from pathlib import Path

_CLEAR = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


class PeakMemory:
    """Started before a fit; `mb()` after it: peak resident megabytes over the fit, or None."""

    def __init__(self) -> None:
        self.ok = _reset()
        self.children_before = _children_kb()

    def mb(self) -> float | None:
        if not self.ok:
            return None
        own = _hwm_kb()
        if own is None:
            return None
        children = _children_kb()
        grew = children if children > self.children_before else 0
        return round(max(own, grew) / 1024, 1)


def _reset() -> bool:
    try:
        _CLEAR.write_text("5")
        return True
    except OSError:
        return False


def _hwm_kb() -> int | None:
    try:
        line = next(x for x in _STATUS.read_text().splitlines() if x.startswith("VmHWM:"))
        return int(line.split()[1])
    except (OSError, StopIteration, ValueError, IndexError):
        return None


def _children_kb() -> int:
    return int(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
