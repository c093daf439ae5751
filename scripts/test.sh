#!/usr/bin/env bash
# The test command (README, .ci/run). First installs what the tests drive besides Python, then
# runs the whole suite over the embedded store, then the tests that drive the service again
# over `oxigraph serve` (but for OXIGRAPH_LEFT_OUT below), and the protocol, update, Graph Store,
# linked-data and W3C modules over Virtuoso (pytest --backend, tests/conftest.py). Each pass
# runs its modules in parallel, one test process per core (pytest-xdist, a module stays in one
# process), then the modules marked `serial` alone (their outcome depends on having the cores
# to themselves: tests/conftest.py). Arguments go to every pytest run: options (-x),
# not paths (plain .venv/bin/pytest runs chosen modules).
# KG_TEST_WORKERS sets the number of parallel processes (default: one per core; 0: none).
# KG_SKIP_BROWSER=1 / KG_SKIP_VIRTUOSO=1 skip those parts (install, tests, the Virtuoso pass),
# saying so. Exit status: non-zero if an install or any pass failed.
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
  tests/test_sparql_protocol.py tests/test_update.py tests/test_update_merge.py
  tests/test_graph_store.py
  tests/test_linked_data.py tests/test_w3c_conformance.py tests/test_w3c_update.py
  tests/test_w3c_syntax.py
)
failed=()

workers=${KG_TEST_WORKERS:-logical}
# the modules marked serial (tests/conftest.py): the serial part collects only these
mapfile -t SERIAL_MODULES < <(grep -l '^pytestmark = pytest.mark.serial' tests/test_*.py)

run() {  # run NAME MODULES-ARRAY LEFT-OUT-ARRAY ARGS...: one pass over a store, its modules
  # (all when MODULES is empty, but LEFT-OUT) in parallel, then the serial ones alone; timed
  local name=$1 started=$SECONDS parallel=0 serial=5 module
  local -n modules=$2 left_out=$3
  shift 3
  local alone=() ignored=()
  for module in "${left_out[@]}"; do ignored+=("--ignore=$module"); done
  for module in "${SERIAL_MODULES[@]}"; do
    if { ((${#modules[@]} == 0)) || [[ " ${modules[*]} " == *" $module "* ]]; } \
        && [[ " ${left_out[*]} " != *" $module "* ]]; then
      alone+=("$module")  # (a path named on the command line escapes --ignore)
    fi
  done
  echo "== tests over the $name store: pytest $* ${modules[*]} ${ignored[*]}" \
    "(-n $workers -m 'not serial', then -m serial: ${alone[*]:-none})"
  "$pytest" -n "$workers" --dist loadfile -m "not serial" "$@" "${ignored[@]}" "${modules[@]}"
  parallel=$?
  if ((${#alone[@]})); then
    "$pytest" -p no:xdist -m serial "$@" "${alone[@]}"
    serial=$?
  fi
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
# service, or another module covers it there: junk HTTP, RDF uploads and schema-made
# requests (refused or parsed before the store is reached), credentials (checked before it),
# the short load test, the notebook (a client of the service), the W3C query suite (oxigraph
# serve runs the same engine it is compared with), and the competency queries
# (tests/test_remote_competency.py runs them over oxigraph serve in the embedded pass).
# fuzz_sparql stays. CI time: ~75 s of the pass's ~310 s on a slow day, before the last three.
OXIGRAPH_LEFT_OUT=(
  tests/test_fuzz_http.py tests/test_fuzz_rdf.py tests/test_fuzz_schema.py
  tests/test_load_short.py tests/test_w3c_query.py tests/test_access_control.py
  tests/test_notebook.py tests/test_competency_queries.py
)
NONE=()

run embedded NONE NONE "$@"
run oxigraph NONE OXIGRAPH_LEFT_OUT --backend=oxigraph "$@"
if [[ "${KG_SKIP_VIRTUOSO:-}" == 1 ]]; then
  echo "== virtuoso: KG_SKIP_VIRTUOSO=1: pass skipped"
elif command -v virtuoso-t >/dev/null 2>&1; then
  run virtuoso VIRTUOSO_MODULES NONE --backend=virtuoso "$@"
else
  echo "== virtuoso: virtuoso-t not installed (scripts/install_virtuoso.sh): pass skipped"
fi
if ((${#failed[@]})); then
  echo "== failed: ${failed[*]}"
  exit 1
fi
