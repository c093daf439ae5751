#!/usr/bin/env bash
# Install Virtuoso Open Source (Debian's `virtuoso-opensource`) for tests/test_remote_backends.py,
# if missing. Idempotent: does nothing when virtuoso-t (or $KG_VIRTUOSO) is on the PATH. The
# tests start their own virtuoso-t on a temporary database and free ports; the package's system
# service is neither configured nor started here. KG_SKIP_VIRTUOSO=1: the Virtuoso tests skip.
set -euo pipefail
server="${KG_VIRTUOSO:-virtuoso-t}"
if command -v "$server" >/dev/null 2>&1; then
  echo "virtuoso: $(command -v "$server") present"
  exit 0
fi
if [ "${KG_SKIP_VIRTUOSO:-}" = "1" ]; then
  echo "virtuoso: missing, KG_SKIP_VIRTUOSO=1 set: Virtuoso backend tests will be skipped"
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "virtuoso: missing and not root (no sudo): install Debian's virtuoso-opensource" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
# the package's postinst asks for a DBA password and starts a service: neither is wanted here
echo "virtuoso-opensource-7 virtuoso-opensource-7/dba-password password dba" \
  | $sudo debconf-set-selections
echo "virtuoso-opensource-7 virtuoso-opensource-7/dba-password-again password dba" \
  | $sudo debconf-set-selections
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends virtuoso-opensource >/dev/null
# the package may have started its system service (policy-rc.d permitting): leave it alone
echo "virtuoso: installed $(command -v virtuoso-t)"
