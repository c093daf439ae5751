"""A remote store's writes keep the embedded store's limits (kg.store.remote_writes): over a real
`oxigraph serve` holding the sample store (`kg publish`), an update whose rehearsal overruns
KG_REHEARSAL_TIMEOUT is stopped by killing the rehearsal process (503, nothing changed) and the
next write succeeds; a writer that waits longer than KG_WRITE_WAIT for the writer lock gets 503
"Writes busy" with Retry-After; the rehearsal process keeps the backend's blank node labels.

Like tests/test_remote_*.py this module starts its own backend (so a `pytest --backend` pass
need not run it again).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyoxigraph as ox
import pytest

from kg.store import rehearsal
from kg.store.rehearsal_process import REHEARSER
from kg.store.writes import RETRY_AFTER
from tests import server_process  # its start_server, not imported by name: see conftest
from tests.conftest import WRITE_TOKEN
from tests.remote_servers import OXIGRAPH, Backend, publish, start_oxigraph
from tests.server_process import BASE_IRI, ServerProcess

pytestmark = pytest.mark.serial("measures how long a writer waits against limits of 2 s")

AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}", "Content-Type": "application/sparql-update"}
CARTESIAN = ("INSERT { <http://ex/n> <http://ex/count> ?n } WHERE { SELECT (COUNT(*) AS ?n) "
             "WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l } }")
REHEARSAL_TIMEOUT = 2.0
WRITE_WAIT = 0.5
ALL_QUADS = "SELECT * WHERE { { ?s ?p ?o } UNION { GRAPH ?g { ?s ?p ?o } } }"


@dataclass
class Deployment:
    backend: Backend
    service: ServerProcess


@pytest.fixture(scope="module")
def deployment(sample_store: Path,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    if not OXIGRAPH:
        pytest.skip("the oxigraph CLI (PyPI oxigraph) is not installed")
    work = tmp_path_factory.mktemp("write-limits")
    backend = start_oxigraph(work / "db")
    (work / "logs").mkdir()
    try:
        publish(backend, sample_store, BASE_IRI)
        service = server_process.start_server(
            sample_store, work / "logs", **backend.env, KG_WRITE_TOKEN=WRITE_TOKEN,
            KG_REHEARSAL_TIMEOUT=str(REHEARSAL_TIMEOUT), KG_WRITE_WAIT=str(WRITE_WAIT))
    except BaseException:
        backend.stop()
        raise
    deployment = Deployment(backend, service)
    try:
        # a write that changes nothing starts the rehearsal process, so the timings below are
        # the limits', not the child's start-up
        warm = _update(deployment, "DELETE DATA { <http://ex/none> <http://ex/p> 1 }")
        assert warm.status_code == 204, warm.text
        yield deployment
    finally:
        service.stop()
        backend.stop()


def _update(deployment: Deployment, text: str) -> httpx.Response:
    return httpx.post(f"{deployment.service.url}/sparql", headers=AUTH, content=text,
                      timeout=120)


def _backend_quads(deployment: Deployment) -> list[tuple[str, ...]]:
    """Every quad the backend holds (asked of it directly, not through the service)."""
    response = httpx.post(deployment.backend.query_url, data={"query": ALL_QUADS},
                          headers={"Accept": "application/sparql-results+json"}, timeout=60)
    assert response.status_code == 200, response.text
    return sorted(tuple(f"{k}={v['value']}" for k, v in sorted(row.items()))
                  for row in response.json()["results"]["bindings"])


def _ask(deployment: Deployment, pattern: str) -> bool:
    response = httpx.post(f"{deployment.service.url}/sparql",
                          data={"query": f"ASK {{ {pattern} }}"},
                          headers={"Accept": "application/sparql-results+json"}, timeout=30)
    assert response.status_code == 200, response.text
    return bool(response.json()["boolean"])


def test_an_overrunning_remote_rehearsal_is_stopped_and_changes_nothing(
    deployment: Deployment,
) -> None:
    before = _backend_quads(deployment)
    started = time.monotonic()
    response = _update(deployment, CARTESIAN)
    elapsed = time.monotonic() - started
    assert response.status_code == 503, response.text
    assert response.json()["title"] == "Update timed out"
    assert REHEARSAL_TIMEOUT <= elapsed < REHEARSAL_TIMEOUT + 8, elapsed
    after = _backend_quads(deployment)
    assert len(after) == len(before) and after == before
    assert not _ask(deployment, "GRAPH ?g { <http://ex/n> ?p ?o }")


def test_the_next_write_succeeds_and_is_visible(deployment: Deployment) -> None:
    response = _update(deployment, CARTESIAN)
    assert response.status_code == 503, response.text
    before = len(_backend_quads(deployment))
    started = time.monotonic()
    response = _update(deployment, "INSERT DATA { GRAPH <http://ex/limits> { <http://ex/after> "
                                    "<http://www.w3.org/2000/01/rdf-schema#comment> 'ok' } }")
    assert response.status_code == 204, response.text
    assert time.monotonic() - started < 30  # a fresh rehearsal process, then the write
    assert _ask(deployment, "GRAPH <http://ex/limits> { <http://ex/after> ?p 'ok' }")
    assert _ask(deployment, "<http://ex/after> ?p 'ok'")  # the merged default graph too
    assert len(_backend_quads(deployment)) == before + 2


def test_a_writer_waits_at_most_write_wait(deployment: Deployment) -> None:
    """While the cartesian update holds the writer lock (its 2 s rehearsal), a second write
    gives up after KG_WRITE_WAIT (0.5 s): 503 Writes busy, Retry-After; nothing changed."""
    before = _backend_quads(deployment)
    first: list[httpx.Response] = []
    holder = threading.Thread(target=lambda: first.append(_update(deployment, CARTESIAN)))
    holder.start()
    try:
        time.sleep(0.8)  # the first write holds the lock from ~0 s to ≥ 2 s
        started = time.monotonic()
        response = _update(deployment, "INSERT DATA { GRAPH <http://ex/busy> { <http://ex/b> "
                                        "<http://ex/p> 1 } }")
        waited = time.monotonic() - started
    finally:
        holder.join(60)
    assert response.status_code == 503, response.text
    assert response.json()["title"] == "Writes busy"
    assert response.headers["Retry-After"] == str(RETRY_AFTER) and RETRY_AFTER > 0
    assert WRITE_WAIT <= waited < REHEARSAL_TIMEOUT, waited
    assert first and first[0].status_code == 503 and first[0].json()["title"] == \
        "Update timed out"
    assert _backend_quads(deployment) == before


def test_the_copy_rehearsal_keeps_blank_node_labels() -> None:
    """The rehearsal process returns the delta with the labels it was sent (the backend's), so
    removed quads match what the parent fetched; unchanged non-canonical literals are no
    change; graphs created and dropped are reported."""
    label = ox.BlankNode("b1")
    g = ox.NamedNode("http://ex/g")
    p = ox.NamedNode("http://ex/p")
    quads = [
        ox.Quad(label, p, ox.Literal("x"), g),
        ox.Quad(label, p, ox.Literal("01", datatype=ox.NamedNode(
            "http://www.w3.org/2001/XMLSchema#integer")), g),
        ox.Quad(ox.NamedNode("http://ex/s"), p, label, ox.DefaultGraph()),
    ]
    job = rehearsal.CopyJob(
        quads=rehearsal.nquads(quads), graphs=["http://ex/g", "http://ex/empty"],
        text="DELETE WHERE { GRAPH <http://ex/g> { ?s <http://ex/p> 'x' } } ; "
             "INSERT DATA { GRAPH <http://ex/h> { <http://ex/a> <http://ex/p> [ <http://ex/q> 1 ] "
             "} } ; DROP GRAPH <http://ex/empty>",
        base_iri=BASE_IRI)
    delta = REHEARSER.run_copy(job, 60, 60)
    assert set(rehearsal.parse_quads(delta.removed)) == {quads[0]}
    added = rehearsal.parse_quads(delta.added)
    assert len(added) == 2 and {q.graph_name for q in added} == {ox.NamedNode("http://ex/h")}
    assert delta.graphs == ["http://ex/g", "http://ex/h"]
