#!/usr/bin/env bash
# Installs schemathesis (pinned with its dependencies in scripts/fuzz-requirements.txt) from PyPI
# into a venv under node_modules/.cache, once. `npm run fuzz` calls it; nothing downloads after it.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=node_modules/.cache/schemathesis-venv
want=$(grep -E '^schemathesis==' scripts/fuzz-requirements.txt | cut -d= -f3)
if [ -x "$venv/bin/st" ] && [ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null)" = "$want" ] \
  && [ "$venv/.requirements" -nt scripts/fuzz-requirements.txt ]; then
  exit 0
fi
echo "fuzz-setup: installing schemathesis $want into $venv" >&2
mkdir -p "$(dirname "$venv")"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r scripts/fuzz-requirements.txt
touch "$venv/.requirements"
