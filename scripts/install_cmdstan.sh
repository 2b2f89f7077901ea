#!/usr/bin/env bash
# Provide CmdStan for the `stan` engine's cmdstanpy backend, from the first of these that works:
#   1. CMDSTAN: an existing installation (checked, never modified);
#   2. a build this script made before, under the virtualenv (.venv/cmdstan-VERSION);
#   3. cmdstanpy.install_cmdstan() into the virtualenv, when GitHub answers within a few seconds;
#   4. assembly from a CmdStan source tarball named by HBENCH_CMDSTAN_SRC (a machine without internet: the
#      tarball holds only CmdStan's own makefiles and sources; the Stan, Stan Math, Boost, Eigen, SUNDIALS
#      and TBB headers, SUNDIALS' and TBB's prebuilt libraries and the stanc compiler come from the httpstan
#      wheel that PyStan already installed, which must be the same Stan version).
# When none works it prints one line and returns 0: the `stan` engine then runs on PyStan only.
# Usage: install_cmdstan.sh [PYTHON]   (PYTHON: the virtualenv's python, default .venv/bin/python)
# Builds without the precompiled model header (PRECOMPILED_HEADERS=false: it costs 771 MB and saved no
# compile time here). Set NICE=19 to be polite to other jobs; JOBS defaults to the number of cores.
set -u
PY=${1:-.venv/bin/python}
VENV=$(cd "$(dirname "$PY")/.." && pwd)
VERSION=${HBENCH_CMDSTAN_VERSION:-2.35.0}   # the Stan version PyStan 3.10 / httpstan 4.13 ship: same sampler
DEST=$VENV/cmdstan-$VERSION
LOG=$VENV/cmdstan-build.log
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
NICE=${NICE:-0}
DONE_MARK=.hbench-complete   # written last: a tree without it is a broken build and is redone

say() { echo "setup: $*"; }
give_up() { say "$1; the stan engine will use PyStan only"; exit 0; }

usable() {  # a CmdStan tree cmdstanpy can compile with
  [ -f "$1/makefile" ] && [ -x "$1/bin/stanc" ] && "$1/bin/stanc" --version >/dev/null 2>&1
}

if [ -n "${CMDSTAN:-}" ]; then
  usable "$CMDSTAN" && { say "CmdStan from CMDSTAN=$CMDSTAN"; exit 0; }
  give_up "CMDSTAN=$CMDSTAN is not a built CmdStan (no makefile or bin/stanc)"
fi
if [ -f "$DEST/$DONE_MARK" ] && usable "$DEST"; then
  exit 0
fi

# 3. cmdstanpy's own installer. Probe GitHub first with a short timeout: without internet a blocked
# connection would otherwise hang until TCP gives up, and cmdstanpy retries.
github_answers() {
  timeout 15 "$PY" -c 'import urllib.request as u; u.urlopen("https://github.com/stan-dev/cmdstan/releases", timeout=8)' \
    >/dev/null 2>&1
}
if github_answers; then
  say "installing CmdStan $VERSION with cmdstanpy.install_cmdstan() (log: $LOG) ..."
  rm -rf "$DEST"
  if timeout "${HBENCH_CMDSTAN_INSTALL_TIMEOUT:-2400}" "$PY" -c '
import sys, cmdstanpy
sys.exit(0 if cmdstanpy.install_cmdstan(version=sys.argv[1], dir=sys.argv[2], cores=int(sys.argv[3])) else 1)
' "$VERSION" "$VENV" "$JOBS" >"$LOG" 2>&1 && usable "$DEST"; then
    echo "PRECOMPILED_HEADERS=false" >> "$DEST/make/local"
    find "$DEST/stan/src/stan/model" -name '*.hpp.gch' -delete 2>/dev/null
    touch "$DEST/$DONE_MARK"
    say "CmdStan $VERSION installed in $DEST"
    exit 0
  fi
  say "cmdstanpy.install_cmdstan() failed (see $LOG)"
fi

# 4. assembly from the source tarball and the httpstan wheel
SRC=${HBENCH_CMDSTAN_SRC:-}
[ -n "$SRC" ] || give_up "no CmdStan: CMDSTAN unset, GitHub unreachable and HBENCH_CMDSTAN_SRC unset"
[ -f "$SRC" ] || give_up "HBENCH_CMDSTAN_SRC=$SRC does not exist"
exec "$(dirname "$0")/assemble_cmdstan.sh" "$PY" "$SRC" "$DEST" "$LOG" "$JOBS" "$NICE" "$DONE_MARK"
