"""The one vocabulary of a fit's outcome, stored in the results table's `status` column.

A StrEnum, so a stored value and a member compare equal (`"ok" == Status.OK`) and Parquet keeps plain text.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    OK = "ok"  # the engine returned estimates
    SKIPPED = "skipped"  # the engine cannot fit this model here (supports() or available() said why)
    FAILED = "failed"  # the fit raised, returned NaN for every fixed effect and SD, or its data could not be made
    TIMEOUT = "timeout"  # the fit exceeded the suite's timeout
    CRASHED = "crashed"  # the worker process died during the fit (a native abort)


FAILED = frozenset({Status.FAILED, Status.TIMEOUT, Status.CRASHED})  # what the fail-safe and failure rates count
