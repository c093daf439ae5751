"""Smoke test of the benchmark harness (bench/): it runs and writes a table. Never asserts speed.

Needs wrk (Debian) and the `bench` extra (oxigraph CLI, psutil, matplotlib, rdflib-endpoint):
`bash bench/install.sh`. Without them the test is skipped, saying which is missing.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXPECTED_COLUMNS = [
    "kind", "mode", "server", "req/s", "× oxigraph", "p50 ms", "p99 ms", "errors", "results",
]


def _missing() -> list[str]:
    missing = []
    if shutil.which("wrk") is None:
        missing.append("wrk (apt-get install wrk)")
    oxigraph = Path(sys.executable).parent / "oxigraph"
    if not oxigraph.exists() and shutil.which("oxigraph") is None:
        missing.append("the oxigraph CLI (PyPI package oxigraph)")
    for module in ("psutil", "matplotlib"):
        if importlib.util.find_spec(module) is None:
            missing.append(module)
    return missing


@pytest.mark.slow
def test_quick_benchmark_writes_a_table(tmp_path: Path) -> None:
    missing = _missing()
    if missing:
        pytest.skip(f"benchmark tools missing: {', '.join(missing)}; run `bash bench/install.sh`")
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--servers", "oxigraph,kg",
         "--sizes", "real", "--source", str(ROOT / "tests" / "fixtures" / "sample.trig"),
         "--duration", "1", "--out", str(out), "--work", str(tmp_path / "work")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "latest.json").read_text(encoding="utf-8"))
    (size,) = results["sizes"]
    table = size["table"]
    assert table, "no rows measured"
    assert all(list(row) == EXPECTED_COLUMNS for row in table)
    assert {row["server"] for row in table} == {"oxigraph", "kg"}
    assert {row["mode"] for row in table} == {"cold", "warm"}
    assert {"point", "join", "aggregate", "construct", "competency"} <= {r["kind"] for r in table}
    kg = size["servers"]["kg"]  # the stream, twice, with the processes that grew
    assert kg["stream"]["status"] == kg["stream_again"]["status"] == 200
    assert isinstance(kg["stream_again"]["rss_growth_by_process_mb"], dict)
    paired = size["paired"]["kinds"]  # bench/paired.py: one round in quick mode
    assert set(paired) == {"point", "join", "construct"}
    assert all(len(entry["ratios"]) == 1 and entry["ratios"][0] > 0 for entry in paired.values())
    markdown = (out / "latest.md").read_text(encoding="utf-8")
    assert "| " + " | ".join(EXPECTED_COLUMNS) + " |" in markdown
    assert "Cold small queries in pairs" in markdown
    assert (out / "latest.png").is_file()
    # bench/worker_cap.py on the run's stores: one row per kind, from answers it checked
    proc = subprocess.run(
        [sys.executable, "-m", "bench.worker_cap", "--work", str(tmp_path / "work"),
         "--queries", "20", "--rounds", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line.split(" | ") for line in proc.stdout.splitlines()
            if line.startswith(("| point", "| join", "| construct"))]
    assert [row[0] for row in rows] == ["| point", "| join", "| construct"]
    assert all(float(row[3].rstrip(" |").replace(",", "")) > 0 for row in rows)


def test_handling_measurement_runs_and_answers_every_request() -> None:
    """bench/handling.py (kg's own handling of a cold GET, in-process): it exits non-zero if any
    request was not answered 200, and prints one figure per round."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.handling", "--requests", "300", "--rounds", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rounds = [line for line in proc.stdout.splitlines() if line.startswith("round ")]
    assert len(rounds) == 2 and all("µs per cold GET /sparql" in line for line in rounds)
