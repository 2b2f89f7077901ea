"""The `stan` engine's CmdStan backend (through cmdstanpy): where CmdStan is, compiling glmm.stan once per
machine, and one sampling run read back as arrays in PyStan's layout.

Where CmdStan is, first match: `CMDSTAN` (an existing installation), the one `make setup` builds inside the
virtualenv (`<sys.prefix>/cmdstan-*`, see scripts/install_cmdstan.sh), cmdstanpy's default (~/.cmdstan).

Compiled executables are cached per machine in `$HBENCH_CACHE/cmdstan/` (default ~/.cache/hbench), one
folder per hash of (program text, CmdStan folder, CmdStan version). Several workers may want the same
program at once: one compiles under an exclusive file lock while the others wait on it, and the compile
happens in a scratch folder renamed into place when complete, so a worker killed mid-compile leaves no
half-built executable where the next one would look.

Seeds: CmdStan takes one `seed` for the run plus a chain id per chain (cmdstanpy passes ids 1..chains);
each chain's generator is Stan's own, seeded with `seed` and advanced by its chain id. PyStan sends the
same pair (random_seed, chain = 1..chains) to the same Stan services, so a seed means the same thing on
both backends.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

PROGRAM_NAME = "glmm"
SIG_FIGS = 18  # CmdStan writes 6 significant digits by default; 18 round-trips a double, as PyStan keeps it


class CmdStanError(RuntimeError):
    """A CmdStan failure, in one line (the full compiler or sampler output goes to a log file it names)."""


def _valid(path: str | os.PathLike) -> bool:
    p = Path(path)
    return (p / "makefile").is_file() and (p / "bin" / "stanc").is_file()


def find() -> str | None:
    """The CmdStan installation to use, or None (see the module docstring for the order)."""
    env = os.environ.get("CMDSTAN")
    if env:
        return str(Path(env).resolve()) if _valid(env) else None
    built = sorted(glob.glob(os.path.join(sys.prefix, "cmdstan-*")), key=_version_key, reverse=True)
    for path in built + _dot_cmdstan():
        if _valid(path):
            return str(Path(path).resolve())
    return None


def missing() -> str:
    """Why no CmdStan is found, in one line."""
    env = os.environ.get("CMDSTAN")
    if env:
        return f"CMDSTAN={env} is not a built CmdStan installation (no makefile or bin/stanc)"
    return (
        "no CmdStan installation found (set CMDSTAN, or run make setup with HBENCH_CMDSTAN_SRC naming a "
        "CmdStan source tarball; see scripts/install_cmdstan.sh)"
    )


def _dot_cmdstan() -> list[str]:
    return sorted(glob.glob(os.path.expanduser("~/.cmdstan/cmdstan-*")), key=_version_key, reverse=True)


def _version_key(path: str) -> tuple[int, ...]:
    tail = Path(path).name.removeprefix("cmdstan-")
    return tuple(int(x) if x.isdigit() else -1 for x in tail.split("."))


def version(path: str) -> str:
    """CmdStan's version, from its makefile (as cmdstanpy reads it)."""
    for line in (Path(path) / "makefile").read_text().splitlines():
        if line.startswith("CMDSTAN_VERSION :="):
            return line.split(":=", 1)[1].strip()
    return "unknown"


def cache_root() -> Path:
    base = os.environ.get("HBENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "hbench"
    )
    return Path(base) / "cmdstan"


def program_key(code: str, cmdstan: str) -> str:
    text = "\0".join([code, cmdstan, version(cmdstan)])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` (released by the kernel if the holder dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def executable(code: str, cmdstan: str) -> tuple[Path, bool]:
    """The compiled program for `code` (compiling it unless this machine already has); True when compiled now."""
    root, key = cache_root(), program_key(code, cmdstan)
    final = root / key / PROGRAM_NAME
    if final.is_file():
        return final, False
    with _locked(root / f"{key}.lock"):
        if final.is_file():  # another worker compiled it while we waited
            return final, False
        for stale in root.glob(f".tmp-{key}-*"):  # left by a process killed mid-compile; we hold the lock
            shutil.rmtree(stale, ignore_errors=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=root))
        try:
            _compile(code, cmdstan, scratch, root / f"{key}.log")
            os.replace(scratch, root / key)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return final, True


def _compile(code: str, cmdstan: str, folder: Path, log: Path) -> None:
    import cmdstanpy

    stan_file = folder / f"{PROGRAM_NAME}.stan"
    stan_file.write_text(code)
    cmdstanpy.set_cmdstan_path(cmdstan)
    try:
        with cmdstanpy.disable_logging():
            cmdstanpy.CmdStanModel(stan_file=str(stan_file))
    except Exception as exc:  # noqa: BLE001 - cmdstanpy raises ValueError / RuntimeError with the whole compiler output
        log.write_text(str(exc))
        raise CmdStanError(
            f"CmdStan {version(cmdstan)} ({cmdstan}) could not compile {stan_file.name}: "
            f"{_first_error(str(exc))} (full output: {log})"
        ) from None


def _first_error(text: str) -> str:
    """The line that says what went wrong: stanc's 'Semantic error'/'Syntax error' or a compiler 'error:'."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for marker in ("Semantic error", "Syntax error", "error:", "Error"):
        hit = next((ln for ln in lines if marker in ln), None)
        if hit is not None:
            at = lines.index(hit)
            detail = lines[at + 1 : at + 8]
            reason = next(
                (d for d in detail if not d[:1].isdigit() and "|" not in d and "^" not in d and "-----" not in d), ""
            )
            return f"{hit} {reason}".strip()[:300]
    return (lines[0] if lines else "no output")[:300]


def sample(
    exe: Path,
    cmdstan: str,
    data: dict[str, Any],
    *,
    chains: int,
    warmup: int,
    draws: int,
    adapt_delta: float,
    max_treedepth: int,
    seed: int,
) -> tuple[Callable[[str], np.ndarray], float]:
    """One NUTS run; returns `get(name) -> (chains, draws, k)` over the run's columns, and its seconds."""
    import cmdstanpy

    cmdstanpy.set_cmdstan_path(cmdstan)
    out = tempfile.mkdtemp(prefix="hbench_cmdstan_fit_")
    try:
        with cmdstanpy.disable_logging():
            model = cmdstanpy.CmdStanModel(exe_file=str(exe))
            t0 = time.perf_counter()
            try:
                fit = model.sample(
                    data=data,
                    chains=chains,
                    iter_warmup=warmup,
                    iter_sampling=draws,
                    adapt_delta=adapt_delta,
                    max_treedepth=max_treedepth,
                    seed=seed,
                    output_dir=out,
                    sig_figs=SIG_FIGS,
                    show_progress=False,
                    show_console=False,
                )
            except RuntimeError as exc:
                raise CmdStanError(f"CmdStan sampling failed: {_first_error(str(exc))}") from None
            seconds = time.perf_counter() - t0
            raw = fit.draws(concat_chains=False)  # (draws, chains, columns), read before `out` goes
            columns = list(fit.column_names)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return _getter(raw, columns), seconds


def _getter(raw: np.ndarray, columns: list[str]) -> Callable[[str], np.ndarray]:
    """Columns of a variable in CmdStan's CSV order (Stan's flattening, the order PyStan uses too)."""

    def get(name: str) -> np.ndarray:
        idx = [i for i, c in enumerate(columns) if c == name or c.startswith(name + "[")]
        return np.transpose(raw[:, :, idx], (1, 0, 2))

    return get
