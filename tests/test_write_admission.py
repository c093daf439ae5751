"""Writes under pressure (issue 7): the write queue is capped (503 + Retry-After, nothing
changed), a rehearsal that overruns its time limit is stopped by killing the rehearsal process
(503, nothing changed) and the next write succeeds, and a default-graph write is rehearsed and
committed like a named-graph one (kg.store.writes, kg.store.rehearsal)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pyoxigraph as ox
import pytest
from starlette.requests import Request

from kg.config import Settings
from kg.errors import UpdateTimeout, WritesBusy
from kg.server.problems import problem_response
from kg.server.state import AppState
from kg.store import writes
from kg.store.embedded import EmbeddedStore
from tests.server_process import BASE_IRI

CARTESIAN = ("INSERT { <http://ex/n> <http://ex/count> ?n } WHERE { SELECT (COUNT(*) AS ?n) "
             "WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l } }")


class FakeExecutor:
    async def refresh(self) -> None:
        return None


@pytest.fixture
def state(sample_store: Path, tmp_path: Path) -> Iterator[AppState]:
    shutil.copytree(sample_store, tmp_path / "store")
    settings = Settings(store_path=tmp_path / "store", base_iri=BASE_IRI)
    store = EmbeddedStore(settings.store_path)
    yield AppState(settings=settings, store=store, executor=FakeExecutor())
    store.close()


def quads(state: AppState) -> set[ox.Quad]:
    return set(state.store.raw.quads_for_pattern(None, None, None, None))


def test_a_full_write_queue_is_refused_with_retry_after(state: AppState) -> None:
    state.extras["pending_writes"] = state.settings.write_queue
    before = quads(state)
    with pytest.raises(WritesBusy) as err:
        asyncio.run(writes.run_update(state, "INSERT DATA { <http://ex/s> <http://ex/p> 1 }"))
    assert err.value.status == 503 and quads(state) == before
    assert state.extras["pending_writes"] == state.settings.write_queue
    request = Request({"type": "http", "method": "POST", "path": "/sparql", "headers": []})
    response = problem_response(request, err.value.status, err.value.title, err.value.detail,
                                **err.value.extra)
    assert response.headers["Retry-After"] == str(writes.RETRY_AFTER) and writes.RETRY_AFTER > 0


def test_an_overrunning_rehearsal_is_killed_and_the_next_write_succeeds(
    state: AppState,
) -> None:
    before = quads(state)
    state.store.rehearsal_timeout = 1.0  # KG_REHEARSAL_TIMEOUT
    with pytest.raises(UpdateTimeout) as err:
        asyncio.run(writes.run_update(state, CARTESIAN))
    assert err.value.status == 503 and quads(state) == before
    assert state.extras["pending_writes"] == 0
    state.store.rehearsal_timeout = 60.0
    outcome = asyncio.run(writes.run_update(
        state, "INSERT DATA { GRAPH <http://ex/g> { <http://ex/s> <http://ex/p> 1 } }"))
    assert outcome.graphs == ["", "http://ex/g"] and outcome.added == 2


def test_a_default_graph_write_is_rehearsed_and_committed(state: AppState) -> None:
    before = quads(state)
    triple = (ox.NamedNode("http://ex/d"), ox.NamedNode("http://ex/p"), ox.Literal("x"))
    data = "{ <http://ex/d> <http://ex/p> 'x' }"
    outcome = asyncio.run(writes.run_update(state, f"INSERT DATA {data}"))
    assert outcome.graphs == [""] and outcome.added == 1
    assert quads(state) == before | {ox.Quad(*triple, ox.DefaultGraph())}
    outcome = asyncio.run(writes.run_update(state, f"DELETE DATA {data}"))
    assert outcome.removed == 1 and quads(state) == before
