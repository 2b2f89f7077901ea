"""Library notices that say nothing about the user's results, kept off the terminal.

Each filter names one warning by category, module and message, never a whole category or library: a
library warning about a fit (a convergence problem, a singular fit, a divergent transition) is recorded
with that fit in the results, and anything new from a library still reaches the terminal. PyTensor's
"could not link to a BLAS" block is not silenced here: compare/pytensor_setup.py removes its cause.

Installed by the CLI (`compare.cli.main`) and in every worker process (`compare.tasks.prepare_worker`, local and
Dask alike), never by importing `compare`: a library that imports hbench keeps its own warning filters. A user
who asks for warnings (`python -W ...` or PYTHONWARNINGS) sees everything: the filters are then left out.
"""

from __future__ import annotations

import sys
import warnings

# (category, module regex, message regex, why it is noise)
NOISE: list[tuple[type[Warning], str, str, str]] = [
    (
        FutureWarning,
        r"arviz(\.|$)",
        r"\s*ArviZ is undergoing a major refactor",
        "ArviZ announces its next major version once a day, on import (PyMC imports it); hbench uses a few "
        "stable functions (rhat, ess, loo) of the installed version, so the notice changes nothing it computes",
    ),
    (
        UserWarning,
        r"rpy2\.rinterface(\.|$)",
        r"R is not initialized by the main thread",
        "Dask runs tasks in a worker thread, so rpy2 starts the embedded R there and warns that Ctrl-C cannot "
        "interrupt R; a Dask worker is stopped by its nanny, not by Ctrl-C, and the fits are unaffected",
    ),
]


def install() -> None:
    """Ignore exactly the NOISE warnings, unless the user set warning options of their own."""
    if sys.warnoptions:
        return
    for category, module, message, _why in NOISE:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
