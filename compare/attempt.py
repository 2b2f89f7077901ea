"""One fit, attempted: the single path from an engine and its data to an outcome, shared by the harness and
`hbench fit`, so the two cannot apply different rules to the same fit.

Every way a fit can end is an `Outcome` with a `Status`: the engine cannot run or cannot express the model
(skipped, with its reason), it raised (failed, with the exception and the innermost frames), it returned NaN
for every fixed effect and SD (failed: nothing to measure), or it returned estimates (ok). `wall_s` is the
engine's own figure when it gives one, else the time around `fit`; `cpu_s` is always measured here, around `fit`
(`compare.cputime`: this process and its children), so every engine's is counted the same way; the fit's peak
resident memory (`compare.memory`) is measured here too (`peak_rss_mb`).
"""

from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass

import numpy as np

from compare.cputime import CpuClock
from compare.data import FitData
from compare.estimators.base import Estimator
from compare.fitresult import FitResult
from compare.memory import PeakMemory
from compare.status import Status

CORE_CLASSES = ("b", "sd", "sigma")  # all NaN across these: the fit produced nothing to measure
ALL_NAN = "returned NaN for every fixed effect and SD"


@dataclass(frozen=True)
class Outcome:
    status: Status
    result: FitResult | None = None  # set when status is ok
    error: str = ""  # why it was skipped or failed
    wall_s: float = math.nan
    cpu_s: float = math.nan


def attempt(estimator: Estimator, data: FitData, seed: int) -> Outcome:
    """Fit `estimator` on `data` with `seed`; never raises for anything the engine does."""
    start, cpu = time.perf_counter(), CpuClock()
    try:
        for check in (estimator.available(), estimator.supports(data.model)):
            if not check:
                return Outcome(Status.SKIPPED, error=check.reason)
        start = time.perf_counter()
        cpu.restart()
        peak = PeakMemory()
        result = estimator.fit(data, seed=seed)
    except Exception as exc:  # noqa: BLE001 - a failing fit is a result, recorded with where it happened
        return Outcome(
            Status.FAILED, error=describe_exception(exc), wall_s=time.perf_counter() - start, cpu_s=cpu.elapsed()
        )
    result.cpu_s = cpu.elapsed()
    result.peak_rss_mb = peak.mb() or math.nan
    if not math.isfinite(result.wall_s):
        result.wall_s = time.perf_counter() - start
    if _all_core_nan(result):
        return Outcome(Status.FAILED, error=ALL_NAN, wall_s=result.wall_s, cpu_s=result.cpu_s)
    return Outcome(Status.OK, result=result, wall_s=result.wall_s, cpu_s=result.cpu_s)


def _all_core_nan(result: FitResult) -> bool:
    """In numpy: pandas' isin and a boolean frame index cost 0.7 ms a fit, 2% of a 30 ms one."""
    p = result.params
    core = p["param_class"].isin(CORE_CLASSES).to_numpy(dtype=bool)
    return bool(core.any()) and bool(np.isnan(p["estimate"].to_numpy(dtype=float, na_value=np.nan)[core]).all())


def describe_exception(exc: BaseException, frames: int = 4) -> str:
    """The exception line first (what a table shows), then the innermost frames (where to look)."""
    head = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    tail = "".join(traceback.format_list(traceback.extract_tb(exc.__traceback__)[-frames:])).rstrip()
    return f"{head}\n{tail}" if tail else head
