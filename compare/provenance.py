"""What ran a run: machine, package versions, hbench's commit, and a fingerprint of the suite and of every
scenario's file. A run is one version of all of these; `--resume` refuses, naming what changed, when any
differs, so no run mixes replications simulated from two versions of a spec or fitted by two versions of
an engine.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compare.generator import source_digest

if TYPE_CHECKING:
    from compare.suite import Suite

PACKAGES = [
    "hbench",
    "numpy",
    "scipy",
    "pandas",
    "statsmodels",
    "pymc",
    "pytensor",
    "nutpie",
    "pystan",
    "httpstan",
    "cmdstanpy",
    "arviz",
    "rpy2",
    "dask",
    "distributed",
]


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        cpu = platform.processor()
    return {"cores": os.cpu_count(), "cpu": cpu, "platform": platform.platform(), "python": platform.python_version()}


R_VERSIONS = "versions.R"  # compare/estimators/R/versions.R, run by Rscript
# R packages whose versions define what an R engine computes (R itself is recorded with any of them)
R_PACKAGES = {
    "lme4": ("lme4",),
    "glmmtmb": ("glmmTMB", "TMB"),
    "rstanarm": ("rstanarm", "rstan"),
    "brms": ("brms", "rstan"),
}


def versions(engines: list[str]) -> dict[str, str]:
    out = {}
    for pkg in PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    out.update(r_versions(sorted({p for e in engines for p in R_PACKAGES.get(e, ())})))
    if "stan" in engines:  # which Stan backend `auto` takes depends on it: a change is a change of engine
        out["CmdStan"] = cmdstan_version()
    return out


def cmdstan_version() -> str:
    """The version of the CmdStan the stan engine would use, or "missing"."""
    from compare.estimators import _cmdstan

    path = _cmdstan.find()
    return _cmdstan.version(path) if path else "missing"


def engine_backend(name: str, settings: Any) -> str | None:
    """The backend an engine resolves its settings to on this machine (the stan engine's `auto`), if it has one."""
    from compare.estimators import engine_class

    engine = engine_class(name)(settings)
    return engine.backend() if hasattr(engine, "backend") else None


def r_versions(packages: list[str]) -> dict[str, str]:
    """R's version string and each package's version ("missing" when not installed), by one Rscript call."""
    if not packages:
        return {}
    try:
        with resources.as_file(resources.files("compare.estimators") / "R" / R_VERSIONS) as script:
            r = subprocess.run(["Rscript", str(script), *packages], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return {"R": "unavailable"}
    fields = [f.strip() for f in r.stdout.split("|")]
    if len(fields) != len(packages) + 1:
        return {"R": "unavailable"}
    return {"R": fields[0], **dict(zip(packages, fields[1:]))}


def git_commit() -> str:
    """The commit of the hbench checkout that ran (not of the current directory)."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, cwd=here
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=here,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "") if sha else "unknown"
    except OSError:
        return "unknown"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fingerprint(suite: Suite) -> dict[str, Any]:
    """Content hashes of the suite's table (but `[cluster]`), of each scenario's spec file, and of the source of
    each generator module a scenario names (compare.generator), by scenario name."""
    generators = {}
    for s in suite.scenarios:
        targets = sorted({c.generator for c in s.scenario.cells if c.generator is not None})
        if targets:
            generators[s.scenario.name] = {t: source_digest(t) for t in targets}
    # where it runs ([cluster]: queue, walltime...) is not what it computes: shards may be placed differently
    what = {key: value for key, value in suite.raw.items() if key != "cluster"}
    return {
        "suite": _digest(json.dumps(what, sort_keys=True, default=str).encode()),
        "scenarios": {s.scenario.name: _digest(Path(s.scenario.path).read_bytes()) for s in suite.scenarios},
        "generators": generators,
        "datasets": datasets(suite),
    }


def datasets(suite: Suite) -> dict[str, Any]:
    """Each published dataset a scenario fits (compare.realdata): package, its version, R's, rows and a content
    hash, by dataset name. The data are the package's release, so they are part of what a run computed."""
    from compare import realdata

    names = sorted({c.dataset for s in suite.scenarios for c in s.scenario.cells if c.dataset is not None})
    return {name: realdata.provenance(name) for name in names}


def changes(manifest: dict[str, Any], suite: Suite) -> list[str]:
    """What differs between the run's manifest and this machine now: scenario files, packages, hbench itself."""
    before = manifest.get("fingerprint")
    if before is None:
        return ["its manifest records no fingerprint of its specs (written by an older hbench)"]
    now = fingerprint(suite)
    out = [
        f"scenario {name} changed since the run started ({suite_file(suite, name)})"
        for name, digest in before["scenarios"].items()
        if now["scenarios"].get(name) != digest
    ]
    for name, targets in before.get("generators", {}).items():
        out += [
            f"generator {t} of scenario {name} changed since the run started"
            for t, digest in targets.items()
            if now["generators"].get(name, {}).get(t) != digest
        ]
    out += [
        f"dataset {name} is not what the run started with (package {now['datasets'].get(name, {}).get('package')} "
        f"{now['datasets'].get(name, {}).get('package_version')} now, {prov.get('package_version')} then)"
        for name, prov in before.get("datasets", {}).items()
        if now["datasets"].get(name) != prov
    ]
    if before["suite"] != now["suite"]:
        out.append("the suite recorded in the manifest was edited")
    old_versions = manifest.get("versions", {})
    new_versions = versions([e.name for e in suite.engines])
    out += [
        f"{pkg} was {old} when the run started and is {new_versions.get(pkg, 'missing')} now"
        for pkg, old in old_versions.items()
        if new_versions.get(pkg) != old
    ]
    commit = git_commit()
    if "unknown" not in (commit, manifest.get("git_commit", "unknown")) and commit != manifest.get("git_commit"):
        out.append(f"hbench was at commit {manifest.get('git_commit')} when the run started and is at {commit} now")
    return out


def suite_file(suite: Suite, name: str) -> str:
    return next((str(s.scenario.path) for s in suite.scenarios if s.scenario.name == name), name)
