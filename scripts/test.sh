#!/usr/bin/env bash
# The test command (README, .ci/run). First installs what the tests drive besides Python, then
# runs the whole suite over the embedded store, then the tests that drive the service again
# over `oxigraph serve` (but for OXIGRAPH_LEFT_OUT below), and the protocol, update, Graph Store,
# linked-data and W3C modules over Virtuoso (pytest --backend, tests/conftest.py). Each pass
# runs its modules in parallel, one test process per core (pytest-xdist, a module stays in one
# process), then the modules marked `serial` alone (their outcome depends on having the cores
# to themselves: tests/conftest.py). Arguments go to every pytest run (e.g. -x).
# KG_TEST_WORKERS sets the number of parallel processes (default: one per core; 0: none).
# KG_SKIP_BROWSER=1 / KG_SKIP_VIRTUOSO=1 skip those parts, saying so. Exit status: non-zero if
# an install or any pass failed.
set -uo pipefail
cd "$(dirname "$0")/.."
# what the tests drive besides Python (each script is idempotent: quick when present):
# Debian's chromium (tests/test_browser.py), Virtuoso (remote backends), wrk + the bench extra
bash scripts/install_browser.sh || exit 1
bash scripts/install_virtuoso.sh || exit 1
bash bench/install.sh || exit 1
pytest=.venv/bin/pytest
# (tests/test_update_writes.py passes over Virtuoso too but starts one per test: 100 s)
VIRTUOSO_MODULES=(
  tests/test_sparql_protocol.py tests/test_update.py tests/test_graph_store.py
  tests/test_linked_data.py tests/test_w3c_conformance.py tests/test_w3c_update.py
  tests/test_w3c_syntax.py
)
failed=()

workers=${KG_TEST_WORKERS:-logical}

run() {  # run NAME ARGS...: one pass over a store (parallel part, then serial part), timed
  local name=$1 started=$SECONDS parallel serial
  shift
  echo "== tests over the $name store: pytest $* (-n $workers -m 'not serial', then -m serial)"
  "$pytest" -n "$workers" --dist loadfile -m "not serial" "$@"
  parallel=$?
  "$pytest" -p no:xdist -m serial "$@"
  serial=$?
  # 5: no test selected in that part (e.g. no serial module among those a backend runs)
  if ((parallel == 5 && serial == 5)); then
    echo "== $name: no test selected"
    failed+=("$name")
  elif ((parallel != 0 && parallel != 5 || serial != 0 && serial != 5)); then
    failed+=("$name")
  fi
  echo "== $name: $((SECONDS - started)) s"
}

# left out of the oxigraph pass, as their subject does not depend on the store behind the
# service (CI time: ~75 s of its ~310 s on a slow day): junk HTTP, RDF uploads and schema-made
# requests (refused or parsed before the store is reached), the short load test, and the W3C
# query suite (oxigraph serve runs the same engine it is compared with). fuzz_sparql stays.
OXIGRAPH_LEFT_OUT=(
  --ignore=tests/test_fuzz_http.py --ignore=tests/test_fuzz_rdf.py
  --ignore=tests/test_fuzz_schema.py --ignore=tests/test_load_short.py
  --ignore=tests/test_w3c_query.py
)

run embedded "$@"
run oxigraph --backend=oxigraph "$@" "${OXIGRAPH_LEFT_OUT[@]}"
if command -v virtuoso-t >/dev/null 2>&1; then
  run virtuoso --backend=virtuoso "$@" "${VIRTUOSO_MODULES[@]}"
else
  echo "== virtuoso: virtuoso-t not installed (scripts/install_virtuoso.sh): pass skipped"
fi
if ((${#failed[@]})); then
  echo "== failed: ${failed[*]}"
  exit 1
fi
