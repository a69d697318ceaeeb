#!/usr/bin/env bash
# Chromium for the browser tests (Temporal Web, the Mermaid page), from Debian's packages: the
# tests drive it with playwright-core, whose own browser download cannot work without internet.
# Idempotent; `npm test` and `.ci/run` call it. CHROMIUM_PATH points the tests at another build.
set -euo pipefail

path="${CHROMIUM_PATH:-/usr/bin/chromium}"
[ -x "$path" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-browser: no Chromium at $path and no apt-get; install Chromium and set CHROMIUM_PATH" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo -n"; else
    echo "setup-browser: installing Chromium needs root: apt-get install -y chromium (or set CHROMIUM_PATH)" >&2
    exit 1
  fi
fi
echo "setup-browser: installing Chromium (apt-get install chromium)" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y --no-install-recommends chromium >/dev/null \
  || { $sudo apt-get update -qq && $sudo apt-get install -y --no-install-recommends chromium >/dev/null; }
