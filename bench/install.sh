#!/usr/bin/env bash
# Install what the benchmark needs: wrk (Debian) and the Python tools (the `bench` extra).
# Usage: bash bench/install.sh   (from the repository root, venv active or not)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq wrk
fi
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
# the `bench` extra, unless it is there already (pip would rebuild the editable install: ~1 min)
if ! "$PY" -c 'import kg, rdflib_endpoint, psutil, matplotlib' 2>/dev/null \
    || [ ! -x "$(dirname "$(command -v "$PY")")/oxigraph" ]; then
  "$PY" -m pip install -q -e '.[bench]'
fi
wrk --version 2>&1 | head -1 || true
# the `oxigraph` package is a command beside the interpreter, not an importable module
OXIGRAPH="$(dirname "$(command -v "$PY")")/oxigraph"
if [ -x "$OXIGRAPH" ]; then
  echo "oxigraph CLI: $OXIGRAPH"
else
  echo "oxigraph CLI: $(command -v oxigraph || echo missing)"
fi
