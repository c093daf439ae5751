#!/usr/bin/env bash
# Install headless Chromium (Debian's `chromium` package) for the browser tests, if missing.
# Idempotent: does nothing when /usr/bin/chromium (or $KG_CHROMIUM) exists. Playwright drives
# this system browser; `playwright install` (which downloads its own build) is never used.
set -euo pipefail
browser="${KG_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$browser" ]; then
  echo "chromium: $browser present"
  exit 0
fi
if [ "${KG_SKIP_BROWSER:-}" = "1" ]; then
  echo "chromium: missing, KG_SKIP_BROWSER=1 set: browser tests will be skipped"
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "chromium: missing and not root (no sudo): install Debian's chromium package" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq chromium >/dev/null
echo "chromium: installed $(command -v chromium)"
