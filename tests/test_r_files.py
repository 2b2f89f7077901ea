"""The R engines' R code is real R files (compare/estimators/R/, package data): each parses with R's own parser,
every file is used by the bridge, and each is sourced into an environment of its own, so names cannot collide.

Tests that need R skip with the reason when R or rpy2 is missing; the bookkeeping test needs neither.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from compare import provenance, realdata
from compare.estimators import _r, brms, glmmtmb, lme4, rstanarm

R_DIR = Path(str(_r.R_DIR))
R_FILES = sorted(R_DIR.glob("*.R"))
_STARTED = _r.r_started()
needs_r = pytest.mark.skipif(not _STARTED, reason=f"R unavailable: {_STARTED.reason}")


def parse_problems(paths: list[Path]) -> list[str]:
    """R's parse error for each file that does not parse (R names the file, line and column), [] if all do."""
    import rpy2.robjects as ro
    from rpy2.rinterface_lib.embedded import RRuntimeError

    problems = []
    for path in paths:
        try:
            with _r.quiet_r():
                ro.baseenv["parse"](file=str(path), **{"keep.source": False})
        except RRuntimeError as exc:
            problems.append(" ".join(str(exc).split()))
    return problems


@needs_r
def test_every_shipped_r_file_parses_in_r():
    assert R_FILES, f"no .R files under {R_DIR}"
    problems = parse_problems(R_FILES)
    assert not problems, "\n".join(problems)


@needs_r
def test_a_syntax_error_is_reported_with_its_file_and_line(tmp_path):
    """The parse check can fail, and its message says where: an unbalanced brace on line 3."""
    bad = tmp_path / "broken.R"
    bad.write_text("f <- function(x) {\n  y <- x + 1\n  y y\n}\n")
    problems = parse_problems([bad])
    assert len(problems) == 1 and "broken.R:3:" in problems[0], problems


def test_every_r_file_is_the_bridge_an_engine_or_an_import():
    """No orphan file and no file named in Python that is missing from the folder (versions.R is run by
    Rscript for a run's provenance)."""
    named = {_r.BRIDGE, lme4.R_CODE, glmmtmb.R_CODE, rstanarm.R_CODE, brms.R_CODE, provenance.R_VERSIONS,
             realdata.R_CODE}
    named |= {f for deps in _r.IMPORTS.values() for f in deps} | set(_r.IMPORTS)
    assert named == {p.name for p in R_FILES}


@needs_r
def test_each_file_has_its_own_environment():
    """lme4.R sees its import (lme4_intervals.R) and the bridge, not glmmtmb.R; nothing lands in R's global
    environment."""
    import rpy2.robjects as ro

    for package, r_file in (("lme4", lme4.R_CODE), ("glmmTMB", glmmtmb.R_CODE)):
        status = _r.package_status(package, r_file)
        if not status:
            pytest.skip(status.reason)
    exists = ro.baseenv["exists"]
    env = _r.r_env(lme4.R_CODE)
    assert list(env.keys()) == ["fit_lme4"]
    assert exists("wald_se", envir=env)[0] and exists("collector", envir=env)[0]
    assert not exists("fit_glmmtmb", envir=env)[0]
    assert exists("fit_glmmtmb", envir=_r.r_env(glmmtmb.R_CODE))[0]
    assert not {"fit_lme4", "fit_glmmtmb", "wald_se", "collector", "has_package"} & set(ro.globalenv.keys())


@needs_r
def test_provenance_reads_r_package_versions_through_versions_r():
    """versions.R (run by Rscript) gives R's version and each package's, as R itself reports them."""
    import rpy2.robjects as ro

    got = provenance.r_versions(["lme4", "hbenchNoSuchPackage"])
    assert got["R"] == ro.baseenv["R.version.string"][0]
    assert got["lme4"] == ro.baseenv["as.character"](ro.r["packageVersion"]("lme4"))[0]
    assert got["hbenchNoSuchPackage"] == "missing"


THREAD_FIRST = """
import threading
from compare.estimators import _r
_r.r_started()  # R started in the main thread, as a Dask worker may have it from an earlier task
out = {}
t = threading.Thread(target=lambda: out.update(s=_r.package_status("stats")))  # a task thread: no conversion rules
t.start()
t.join()
print(bool(out["s"]), getattr(out["s"], "reason", ""))
"""


@needs_r
def test_a_package_is_found_from_a_thread_other_than_the_one_that_started_r():
    """rpy2's conversion rules are a context variable; a Dask worker runs tasks in a thread that lacks them, and a
    SLURM run once recorded brms and rstanarm as skipped ("Conversion rules ... missing") for its first fit."""
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-c", THREAD_FIRST], capture_output=True, text=True, timeout=300)
    assert res.stdout.strip() == "True", res.stdout + res.stderr[-2000:]
