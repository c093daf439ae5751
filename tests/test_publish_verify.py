"""`kg publish` verifies what the backend holds (kg.store.publish, kg.store.literal_values).

Against a real Virtuoso (skipped when virtuoso-t is not installed): the literal model agrees
with what this Virtuoso does to pairs of literals; a store whose literals it merges publishes
with exit 0 and each merge named; a difference the model does not explain, or a literal it
would rewrite, fails the publish.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyoxigraph as ox
import pytest

from kg.config import Settings
from kg.store import default_graph, literal_values
from kg.store.publish import predict, publish
from kg.store.remote import RemoteStore
from tests.remote_servers import VIRTUOSO, Backend, start_virtuoso
from tests.server_process import BASE_IRI
from tests.test_remote_backends import KG_CLI

XSD = "http://www.w3.org/2001/XMLSchema#"
S, P = ox.NamedNode("http://example.org/s"), ox.NamedNode("http://example.org/p")
GRAPH = ox.NamedNode(f"{BASE_IRI}graph/doc/publish-test")


def lit(value: str, datatype: str) -> ox.Literal:
    return ox.Literal(value, datatype=ox.NamedNode(XSD + datatype))


# pairs of one subject and predicate; whether Virtuoso keeps both is asked of the server
PAIRS = [
    (lit("2019-02-01", "date"), lit("2019-02", "gYearMonth")),
    (lit("2019", "gYear"), lit("2019-01-01", "date")),
    (lit("2019", "gYear"), lit("2019-01", "gYearMonth")),
    (lit("2021-05-27", "date"), lit("2021-05", "gYearMonth")),
    (lit("2019-02-01", "date"), lit("2019-02-01T00:00:00", "dateTime")),
    (lit("2019-02-01", "date"), lit("2019-02-01Z", "date")),
    (lit("2019-02-01Z", "date"), lit("2019-02-01+00:00", "date")),
    (lit("2019-02-01T01:00:00+01:00", "dateTime"), lit("2019-02-01T00:00:00Z", "dateTime")),
    (lit("2", "integer"), lit("2", "decimal")),
    (lit("2", "integer"), lit("2", "double")),
    (lit("0.1", "decimal"), lit("0.1", "double")),
    (lit("0.1", "float"), lit("0.1", "double")),
    (lit("0", "integer"), lit("false", "boolean")),
    (lit("1", "integer"), lit("1", "long")),
    (lit("--02", "gMonth"), lit("2019-02", "gYearMonth")),
    (lit("2019-02-01", "date"), ox.Literal("2019-02-01")),
]


@pytest.fixture(scope="module")
def virtuoso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    if not VIRTUOSO:
        pytest.skip("virtuoso-t not installed (scripts/install_virtuoso.sh)")
    backend = start_virtuoso(tmp_path_factory.mktemp("publish-virtuoso") / "db")
    yield backend
    backend.stop()


def _remote(backend: Backend, store: Path) -> RemoteStore:
    env = backend.env
    return RemoteStore(Settings(
        store_path=store, base_iri=BASE_IRI, store_url=env["KG_STORE_URL"],
        store_update_url=env["KG_STORE_UPDATE_URL"], store_gsp_url=env["KG_STORE_GSP_URL"],
        store_dialect=env["KG_STORE_DIALECT"]))


def _store(path: Path, objects: list[ox.Literal]) -> Path:
    """A built-like store: one named graph with S P each object, and its merge as default."""
    store = ox.Store(str(path))
    quads = [ox.Quad(S, P, o, GRAPH) for o in objects]
    store.extend(quads)
    store.extend(list(default_graph.merged(quads)))
    store.flush()
    del store
    return path


def _cli(backend: Backend, store: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([KG_CLI, "publish"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **backend.env, "KG_STORE_PATH": str(store),
                               "KG_BASE_IRI": BASE_IRI})


@pytest.mark.parametrize("index", range(len(PAIRS)), ids=lambda i: f"{PAIRS[i][0]}+{PAIRS[i][1]}")
def test_merge_key_matches_virtuoso(virtuoso: Backend, index: int) -> None:
    a, b = PAIRS[index]
    graph = f"http://example.org/pair/{index}"
    body = ox.serialize([ox.Triple(S, P, a), ox.Triple(S, P, b)], format=ox.RdfFormat.N_TRIPLES)
    put = httpx.put(virtuoso.gsp_url, params={"graph": graph}, content=body,
                    headers={"Content-Type": "application/n-triples"})
    assert put.status_code < 300, put.text
    back = httpx.get(virtuoso.gsp_url, params={"graph": graph},
                     headers={"Accept": "application/n-triples"})
    assert back.status_code == 200, back.text
    held = list(ox.parse(back.content, format=ox.RdfFormat.N_TRIPLES))
    assert 1 <= len(held) <= 2, held
    key = literal_values.merge_key(a)
    assert (len(held) == 1) == (key is not None and key == literal_values.merge_key(b)), held


def test_predict_only_for_virtuoso() -> None:
    quads = [ox.Quad(S, P, o, GRAPH) for o in PAIRS[0]]
    merges, rewrites = predict(GRAPH.value, quads, "virtuoso")
    assert [m.literals for m in merges] == [tuple(sorted(PAIRS[0], key=str))] and not rewrites
    assert predict(GRAPH.value, quads, "oxigraph") == ([], [])


def test_merges_are_explained_and_named(virtuoso: Backend, tmp_path: Path) -> None:
    store = _store(tmp_path / "store", [*PAIRS[0], lit("2021-05", "gYearMonth")])
    run = _cli(virtuoso, store)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "counts verified; 2 triples fewer" in run.stdout  # one in the graph, one in the merge
    assert run.stderr.count(f"{S} {P} kept ") == 2, run.stderr


def test_unexplained_difference_fails(virtuoso: Backend, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store(tmp_path / "store", [lit("2021-05", "gYearMonth"), lit("3", "integer")])
    remote = _remote(virtuoso, store)
    put_graph = remote.put_graph

    def lossy(graph: ox.NamedNode | ox.DefaultGraph, quads: list[ox.Quad]) -> None:
        put_graph(graph, list(quads)[1:] if graph == GRAPH else quads)

    monkeypatch.setattr(remote, "put_graph", lossy)
    source = ox.Store.read_only(str(store))
    try:
        report = publish(source, remote)
    finally:
        remote.close()
        del source
    # the merge is rebuilt from the named graphs on the backend (ADD), so it lacks the triple
    assert not report.ok and report.unexplained == {GRAPH.value: (2, 1), "": (2, 1)}


def test_rewritten_literal_fails(virtuoso: Backend, tmp_path: Path) -> None:
    """pyoxigraph keeps numbers in canonical form already ("2"^^xsd:double); Virtuoso writes
    that one back as "2.0": same count, another term."""
    double = lit("2", "double")
    run = _cli(virtuoso, _store(tmp_path / "store", [double]))
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"rewrites the lexical form of {GRAPH.value}: {S} {P} {double}" in run.stderr
    back = httpx.get(virtuoso.gsp_url, params={"graph": GRAPH.value},
                     headers={"Accept": "application/n-triples"})
    held = [t.object for t in ox.parse(back.content, format=ox.RdfFormat.N_TRIPLES)]
    assert len(held) == 1 and held[0] != double


def test_a_blank_node_is_one_node_in_its_graph_and_the_merge(virtuoso: Backend,
                                                             tmp_path: Path) -> None:
    """The merge is rebuilt on the backend from the named graphs (ADD): a Graph Store PUT of it
    made each blank node a second one, and VoID counted their triples twice."""
    path = tmp_path / "store"
    store = ox.Store(str(path))
    quads = [ox.Quad(ox.BlankNode("shape"), P, ox.Literal("x"), GRAPH)]
    store.extend(quads + list(default_graph.merged(quads)))
    store.flush()
    del store
    remote = _remote(virtuoso, path)
    source = ox.Store.read_only(str(path))
    try:
        assert publish(source, remote).ok
        rows = remote.select(f'SELECT ?b WHERE {{ GRAPH {GRAPH} {{ ?b {P} "x" }} ?b {P} "x" }}',
                             base_iri=BASE_IRI)
    finally:
        remote.close()
        del source
    assert len(rows) == 1 and isinstance(rows[0]["b"], ox.BlankNode)


def test_a_default_graph_that_is_not_the_merge_is_sent_as_stored(virtuoso: Backend,
                                                                tmp_path: Path) -> None:
    path = _store(tmp_path / "store", [lit("3", "integer")])
    store = ox.Store(str(path))
    store.add(ox.Quad(S, P, ox.Literal("only in the default graph"), ox.DefaultGraph()))
    store.flush()
    del store
    remote = _remote(virtuoso, path)
    source = ox.Store.read_only(str(path))
    told: list[str] = []
    try:
        report = publish(source, remote, progress=told.append)
    finally:
        remote.close()
        del source
    assert report.ok and report.remote[""] == 2 and report.remote[GRAPH.value] == 1
    assert any("not the merge" in line for line in told)
