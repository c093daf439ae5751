#!/usr/bin/env bash
# Refresh the browser assets the service serves itself (no CDN at run time).
# Needs npm; run by a maintainer when bumping versions. The outputs are committed under
# src/kg/server/static/vendor/ so that installing the project needs Python only.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=src/kg/server/static/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fetch() {  # package@version, then pairs of "path-in-package target-name"
  local spec=$1; shift
  (cd "$work" && npm pack --silent "$spec" >/dev/null)
  local tgz; tgz=$(ls -t "$work"/*.tgz | head -1)
  mkdir -p "$work/x" && rm -rf "$work/x"/* && tar xzf "$tgz" -C "$work/x"
  while [ $# -gt 0 ]; do
    install -D -m 0644 "$work/x/package/$1" "$dest/$2"; shift 2
  done
  rm -f "$tgz"
}
fetch @zazuko/yasgui@4.6.2 build/yasgui.min.js yasgui/yasgui.min.js build/yasgui.min.css yasgui/yasgui.min.css package.json yasgui/package.json
fetch chart.js@4.4.7 dist/chart.umd.js chartjs/chart.umd.js LICENSE.md chartjs/LICENSE.md package.json chartjs/package.json
fetch vis-network@9.1.9 standalone/umd/vis-network.min.js vis/vis-network.min.js LICENSE-MIT vis/LICENSE-MIT package.json vis/vis-network.package.json
fetch vis-timeline@7.7.3 standalone/umd/vis-timeline-graph2d.min.js vis/vis-timeline-graph2d.min.js dist/vis-timeline-graph2d.min.css vis/vis-timeline-graph2d.min.css LICENSE.MIT.txt vis/LICENSE-MIT.txt package.json vis/vis-timeline.package.json
echo "vendored into $dest:"; find "$dest" -type f | sort
