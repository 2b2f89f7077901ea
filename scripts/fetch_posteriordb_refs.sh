#!/usr/bin/env bash
# posteriordb's eight schools data and reference posterior draws (eight_schools-eight_schools_noncentered) for
# tests/test_eight_schools.py, put OUTSIDE the repository: the check compares hbench with posteriors it never
# computed, so the references must not be something a commit here could change.
# Usage: scripts/fetch_posteriordb_refs.sh [POSTERIORDB]
#   POSTERIORDB: a posteriordb clone (work tree or bare git directory); without it, a shallow, blob-less clone of
#   https://github.com/stan-dev/posteriordb is made in a temporary folder (needs GitHub).
# Writes to $HBENCH_POSTERIORDB (default ~/.cache/hbench/posteriordb): eight_schools.json (data J, y, sigma),
# eight_schools-eight_schools_noncentered.json (10 chains x 1,000 draws of mu, tau, theta[1..8]), its .info.json,
# the Stan program and SOURCE (the posteriordb commit they come from).
set -euo pipefail
OUT=${HBENCH_POSTERIORDB:-$HOME/.cache/hbench/posteriordb}
SRC=${1:-}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
if [ -z "$SRC" ]; then
  git clone --quiet --depth 1 --filter=blob:none --no-checkout https://github.com/stan-dev/posteriordb "$TMP/pdb"
  SRC=$TMP/pdb
fi
if [ "$(git --git-dir="$SRC" rev-parse --is-bare-repository 2>/dev/null)" = true ]; then
  GITDIR=$SRC
else
  GITDIR=$(git -C "$SRC" rev-parse --absolute-git-dir)
fi
COMMIT=$(git --git-dir="$GITDIR" rev-parse HEAD)
DB=posterior_database
NAME=eight_schools-eight_schools_noncentered
show() { git --git-dir="$GITDIR" show "$COMMIT:$DB/$1"; }
unzip_to() {  # ZIP DEST: the archive's single member, written to DEST
  python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); open(sys.argv[2], "wb").write(z.read(z.namelist()[0]))' "$1" "$2"
}
mkdir -p "$OUT"
show data/data/eight_schools.json.zip > "$TMP/data.zip"
show "reference_posteriors/draws/draws/$NAME.json.zip" > "$TMP/draws.zip"
unzip_to "$TMP/data.zip" "$OUT/eight_schools.json"
unzip_to "$TMP/draws.zip" "$OUT/$NAME.json"
show "reference_posteriors/draws/info/$NAME.info.json" > "$OUT/$NAME.info.json"
show models/stan/eight_schools_noncentered.stan > "$OUT/eight_schools_noncentered.stan"
echo "posteriordb $COMMIT (https://github.com/stan-dev/posteriordb)" > "$OUT/SOURCE"
echo "posteriordb references (commit ${COMMIT:0:12}) in $OUT"
