"""Isolated Python environments for `hbench matrix`: one per `--env NAME=SPEC`, built with uv.

SPEC is pip requirement pins (`statsmodels==0.14.4`, several separated by commas; a comma followed by a
version operator continues the same requirement, so `statsmodels>=0.14,<0.15` is one pin) or the path of a
requirements file. The pins are resolved together with hbench's own dependencies (`uv pip compile`); the
environment is cached under `<results>/.envs/<key>/`, the key a hash of the resolved pins and the interpreter,
so two matrices asking for the same versions share one environment, and a pin that resolves to other versions
tomorrow (a new release of a dependency) gets a new one. hbench itself is not part of the key: every matrix
builds a wheel of the checkout it runs from and installs it, without its dependencies, into each environment,
so every environment runs the same hbench code.

Only Python packages vary: R and its packages come from Debian, one version each (out of scope here).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from compare.errors import InputError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
OPERATOR = re.compile(r"^\s*(==|!=|<=|>=|<|>|~=|===)")
ENVS_DIR = ".envs"
READY = ".ready"  # written last: an environment without it is unfinished and is rebuilt


class BuildError(Exception):
    """A build or run step of an environment failed: one line naming the step and the log that has its output."""


@dataclass(frozen=True)
class EnvSpec:
    """One `--env NAME=SPEC`: its name and the requirement lines it asks for (empty: hbench's own defaults)."""

    name: str
    pins: tuple[str, ...]
    source: str  # the SPEC as given, for the report


@dataclass(frozen=True)
class Resolved:
    spec: EnvSpec
    lock: tuple[str, ...]  # name==version lines, sorted, without hbench
    key: str

    def versions(self) -> dict[str, str]:
        return dict(line.split("==", 1) for line in self.lock)


def parse_env(text: str) -> EnvSpec:
    """`NAME=SPEC` -> EnvSpec, or InputError naming what is wrong."""
    name, eq, spec = text.partition("=")
    if not eq or not NAME.match(name.strip()) or spec.startswith("="):  # "statsmodels==0.14.4": a pin, no name
        raise InputError(
            f"--env {text!r}: expected NAME=SPEC with NAME of letters, digits, '.', '_' or '-' "
            "(e.g. old=statsmodels==0.14.4)"
        )
    name, spec = name.strip(), spec.strip()
    lines = _file_lines(spec, name) if spec and Path(spec).is_file() else split_pins(spec)
    return EnvSpec(name, tuple(_check_pin(p, name) for p in lines), spec)


def split_pins(spec: str) -> list[str]:
    """Comma-separated pins; a piece that starts with a version operator belongs to the requirement before it."""
    out: list[str] = []
    for piece in (p.strip() for p in spec.split(",")):
        if out and OPERATOR.match(piece):
            out[-1] += "," + piece
        elif piece:
            out.append(piece)
    return out


def _file_lines(path: str, name: str) -> list[str]:
    lines = [line.split("#", 1)[0].strip() for line in Path(path).read_text().splitlines()]
    bad = [line for line in lines if line.startswith("-")]
    if bad:
        raise InputError(f"--env {name}: {path}: only requirement lines are taken, not options ({bad[0]!r})")
    return [line for line in lines if line]


def _check_pin(pin: str, name: str) -> str:
    try:
        req = Requirement(pin)
    except InvalidRequirement as exc:
        raise InputError(f"--env {name}: {pin!r} is not a requirement ({str(exc).splitlines()[0]})") from None
    if canonicalize_name(req.name) == "hbench":
        raise InputError(f"--env {name}: hbench itself is installed from this checkout; pin its dependencies")
    return str(req)


def parse_envs(texts: list[str]) -> list[EnvSpec]:
    if len(texts) < 2:
        raise InputError("hbench matrix needs at least two --env NAME=SPEC (each is compared with the first)")
    specs = [parse_env(t) for t in texts]
    names = [s.name for s in specs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"--env names must differ: {', '.join(dup)} given twice")
    return specs


def uv() -> str:
    from uv import find_uv_bin  # the uv wheel ships the binary

    return find_uv_bin()


def checkout() -> Path:
    """The source tree of the running hbench: what every environment gets installed from."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        raise InputError(
            f"hbench matrix installs hbench from its source checkout; {root} has no pyproject.toml "
            "(run it from a clone)"
        )
    return root


def cache_key(lock: tuple[str, ...], python: str) -> str:
    """Hash of the resolved pins and the interpreter's version and platform: equal pins share an environment."""
    text = "\n".join([python, *sorted(lock)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def python_id() -> str:
    return f"{sys.implementation.name}-{'.'.join(map(str, sys.version_info[:3]))}-{sys.platform}"


def parse_lock(text: str) -> tuple[str, ...]:
    """`uv pip compile` output -> sorted name==version lines (comments, hbench and blank lines dropped)."""
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        name = re.split(r"[=@ \[;]", line, maxsplit=1)[0]
        if canonicalize_name(name) != "hbench":
            out.append(line)
    return tuple(sorted(out, key=str.lower))


def resolve(spec: EnvSpec, root: Path) -> Resolved:
    """Resolve hbench's dependencies with the pins on top; a pin that does not resolve is InputError."""
    wanted = "\n".join([f"hbench @ {root.as_uri()}", *spec.pins]) + "\n"
    r = subprocess.run(
        [uv(), "pip", "compile", "-", "--python", sys.executable, "--quiet", "--no-header", "--no-annotate"],
        input=wanted,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if r.returncode != 0:
        raise InputError(f"--env {spec.name}={spec.source}: does not resolve: {_one_line(r.stderr)}")
    lock = parse_lock(r.stdout)
    return Resolved(spec, lock, cache_key(lock, python_id()))


def _one_line(stderr: str, limit: int = 400) -> str:
    text = " ".join(line.strip(" ×╰─▶│") for line in stderr.splitlines() if line.strip())
    return (text[:limit] + "...") if len(text) > limit else text or "uv said nothing"


def env_dir(results: Path, key: str) -> Path:
    return results / ENVS_DIR / key


def env_python(path: Path) -> Path:
    return path / "venv" / "bin" / "python"


def ensure_env(resolved: Resolved, results: Path, log) -> tuple[Path, bool]:
    """The environment's folder, built unless a finished one with this key exists; True when built now.
    Built in place (a venv names its own path in its scripts, so it cannot be renamed into place) under an
    exclusive lock, so two matrices wanting the same key build it once; READY is written last."""
    final = env_dir(results, resolved.key)
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.with_name(f"{final.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / READY).is_file() and env_python(final).exists():
            return final, False
        shutil.rmtree(final, ignore_errors=True)  # unfinished: an interrupted build
        final.mkdir()
        (final / "requirements.txt").write_text("\n".join(resolved.lock) + "\n")
        run_logged([uv(), "venv", str(final / "venv"), "--python", sys.executable, "--quiet"], log)
        run_logged([uv(), "pip", "sync", str(final / "requirements.txt"), "--python", str(env_python(final))], log)
        (final / READY).write_text(resolved.key + "\n")
    return final, True


def build_wheel(root: Path, out: Path, log) -> Path:
    """A wheel of the checkout (built fresh, so it holds the code as it is now)."""
    run_logged([uv(), "build", "--wheel", "--out-dir", str(out), str(root)], log)
    wheels = sorted(out.glob("hbench-*.whl"))
    if not wheels:
        raise BuildError(f"uv build wrote no hbench wheel into {out}")
    return wheels[-1]


def install_hbench(env: Path, wheel: Path, log) -> None:
    run_logged([uv(), "pip", "install", "--python", str(env_python(env)), "--no-deps", "--reinstall", str(wheel)], log)


def run_logged(cmd: list[str], log) -> None:
    """Run a build step, its output appended to `log`; a failure is an error naming the command and the log."""
    log.write(f"$ {' '.join(cmd)}\n")
    log.flush()
    r = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, text=True, env=clean_env())
    if r.returncode != 0:
        raise BuildError(f"{' '.join(cmd[:3])} ... failed (exit {r.returncode}); see {log.name}")


def clean_env(path_first: Path | None = None) -> dict[str, str]:
    """The environment for a child of another Python: without PYTHONPATH (which would import this checkout's
    code instead of the environment's) and without a venv of ours; PYTHONSAFEPATH, so that `python -m compare`
    started in the checkout does not import ./compare ahead of the installed wheel."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONSAFEPATH"] = "1"
    if path_first is not None:
        env["PATH"] = f"{path_first}{os.pathsep}{env.get('PATH', '')}"
    return env
