"""A short version of bench/load.py (issue 7): ~20 s of concurrent readers, a writer and a slow
query against a live server. Asserts only what must hold on any machine: no error and no 500,
every write acknowledged, and fast queries kept being answered while the slow one ran (no
latency thresholds; figures come from `python -m bench.load`, see docs/reliability.md). Then a
burst of concurrent writes larger than the write queue: admitted or refused with Retry-After."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from bench.load import run_load

from kg.config import Settings
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


def test_a_burst_of_writes_is_admitted_or_refused_with_retry_after(
    loaded: ServerProcess,
) -> None:
    """More concurrent writes than the queue holds: each is committed (204) or refused at once
    (503 Writes busy, Retry-After) — never a time-out or a reset — and exactly the
    acknowledged ones are in the store."""
    graph = f"{BASE_IRI}graph/burst"

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=loaded.url, timeout=120, headers={
                "Authorization": f"Bearer {TOKEN}"}) as client:
            return await asyncio.gather(*(client.post("/sparql", data={
                "update": f'INSERT DATA {{ GRAPH <{graph}> {{ <{BASE_IRI}id/burst/{i}> '
                          f'<http://www.w3.org/2000/01/rdf-schema#label> "b{i}" }} }}'})
                for i in range(3 * Settings().write_queue)))

    responses = asyncio.run(burst())
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {204, 503}, statuses
    for r in responses:
        if r.status_code == 503:
            assert r.headers["Retry-After"] and r.json()["title"] == "Writes busy", r.text
    query = f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}"
    answer = httpx.get(f"{loaded.url}/sparql", params={"query": query},
                       headers={"Accept": "application/sparql-results+json"}, timeout=30)
    count = int(answer.json()["results"]["bindings"][0]["n"]["value"])
    assert count == statuses.count(204) >= 1
