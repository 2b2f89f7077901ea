#!/usr/bin/env bash
# Install the named Debian packages that are not installed yet, when this machine has apt-get and we are root.
# Usage: install_debian.sh "what they are for" PACKAGE...
# When it cannot (no apt-get, not root, apt failed) it prints one line and returns 0: the caller goes on
# without them, and what needs them says so itself (a skipped test, an unavailable engine).
set -u
why=$1
shift
missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != "0" ]; then
  echo "setup: no apt-get or not root; skipping ${missing[*]} ($why)"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
echo "setup: installing from Debian: ${missing[*]} ($why) ..."
# Refresh the package lists unless that happened in the last hour (a second call in the same `make` run,
# e.g. chromium after R, skips it); a fresh machine has none, and stale ones give 404s, hence the retry.
fresh=$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -60 2>/dev/null | head -n 1)
if [ -z "$fresh" ]; then
  apt-get update -qq >/dev/null || echo "setup: apt-get update failed"
fi
if ! apt-get install -y -qq "${missing[@]}" >/dev/null; then
  if [ -n "$fresh" ] && apt-get update -qq >/dev/null && apt-get install -y -qq "${missing[@]}" >/dev/null; then
    exit 0
  fi
  echo "setup: apt-get could not install ${missing[*]}; skipping them ($why)"
fi
exit 0
