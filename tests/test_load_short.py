"""A short version of bench/load.py (issue 7): ~20 s of concurrent readers, a writer and a slow
query against a live server. Asserts only what must hold on any machine: no error and no 500,
every write acknowledged, and fast queries kept being answered while the slow one ran (no
latency thresholds; figures come from `python -m bench.load`, see docs/reliability.md)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.load import run_load

from tests.server_process import BASE_IRI, ServerProcess, start_server

TOKEN = "load-token"


@pytest.fixture(scope="module")
def loaded(
    sample_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    store = tmp_path_factory.mktemp("load") / "store"
    shutil.copytree(sample_store, store)
    proc = start_server(store, tmp_path_factory.mktemp("load-logs"),
                        KG_WRITE_TOKEN=TOKEN, KG_QUERY_TIMEOUT="4")
    yield proc
    proc.stop()


def test_short_load(loaded: ServerProcess) -> None:
    report = asyncio.run(run_load(
        loaded.url, duration=20, readers=4, token=TOKEN, base_iri=BASE_IRI,
        pid=loaded.process.pid, write_interval=0.2,
    ))
    assert report.errors == 0, report.error_examples
    for kind, statuses in report.statuses.items():
        assert not any(s.startswith("5") for s in statuses if kind != "slow"), report.statuses
    assert report.requests["write"] >= 10, report.requests
    assert set(report.statuses["write"]) == {"204"}
    assert report.slow_queries >= 1
    assert report.fast_answers_during_slow >= 10, report.summary()
    # liveness: every run of the slow query saw fast queries answered meanwhile
    assert report.slow_runs_without_fast_answers == 0, report.summary()
    assert loaded.process.poll() is None
