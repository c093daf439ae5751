"""Self-description: the SPARQL Service Description, VoID/DCAT, and dump downloads."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyoxigraph as ox
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from rdflib import Dataset, Graph, Literal, Namespace, URIRef
from rdflib.namespace import RDF, XSD
from starlette.responses import Response

from kg.config import Settings
from kg.server import problems
from kg.server.service_description import render
from kg.server.state import AppState
from kg.store.embedded import EmbeddedStore
from tests.server_process import BASE_IRI, ServerProcess, start_server

SD = Namespace("http://www.w3.org/ns/sparql-service-description#")
VOID = Namespace("http://rdfs.org/ns/void#")
DCAT = Namespace("http://www.w3.org/ns/dcat#")
FORMATS = Namespace("http://www.w3.org/ns/formats/")
GRAPHS = {BASE_IRI + f"graph/{g}" for g in
          ("doc/000_sample", "doc/001_sample", "mentions", "inferred", "ontology", "vocabulary")}
RDF_TYPES = {"text/turtle": "turtle", "application/ld+json": "json-ld",
             "application/rdf+xml": "xml", "application/n-triples": "nt",
             "application/trig": "trig", "application/n-quads": "nquads"}


def _parse(body: bytes, media: str) -> Graph:
    fmt = RDF_TYPES[media]
    graph = Dataset(default_union=True) if fmt in ("trig", "nquads") else Graph()
    return graph.parse(data=body, format=fmt)


# --- the service description, in process (any configuration) ------------------------------


def sd_client(store_dir: Path, **settings: object) -> tuple[TestClient, AppState]:
    """A minimal app routing GET /sparql to render(), as S1's endpoint does."""
    config = Settings(store_path=store_dir, base_iri=BASE_IRI, **settings)  # type: ignore[arg-type]
    state = AppState(settings=config, store=EmbeddedStore(store_dir), executor=None)
    app = FastAPI()
    problems.install(app)

    @app.get("/sparql")
    async def sparql(request: Request) -> Response:
        return await render(request, state)

    return TestClient(app), state


@pytest.fixture(scope="module")
def store_copy(sample_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("sd") / "store"
    shutil.copytree(sample_store, target)
    return target


def test_service_description_lists_graphs_and_formats(store_copy: Path) -> None:
    client, state = sd_client(store_copy)
    try:
        for media in RDF_TYPES:
            r = client.get("/sparql", headers={"Accept": media})
            assert r.status_code == 200, media
            assert r.headers["content-type"].split(";")[0] == media
            assert "Accept" in r.headers["vary"]
            graph = _parse(r.content, media)
            service = graph.value(None, RDF.type, SD.Service)
            assert service is not None
            assert graph.value(service, SD.endpoint) == URIRef("http://testserver/sparql")
            assert (service, SD.supportedLanguage, SD.SPARQL11Query) in graph
            assert (service, SD.supportedLanguage, SD.SPARQL11Update) not in graph  # no token
            assert (service, SD.feature, SD.UnionDefaultGraph) in graph
            assert (service, SD.feature, SD.BasicFederatedQuery) not in graph
            for fmt in ("SPARQL_Results_JSON", "SPARQL_Results_XML", "SPARQL_Results_CSV",
                        "SPARQL_Results_TSV", "Turtle", "JSON-LD", "N-Quads"):
                assert (service, SD.resultFormat, FORMATS[fmt]) in graph
            dataset = graph.value(service, SD.defaultDataset)
            names = {str(graph.value(ng, SD.name)) for ng in graph.objects(dataset, SD.namedGraph)}
            assert names == GRAPHS
            for ng in graph.objects(dataset, SD.namedGraph):
                assert int(graph.value(graph.value(ng, SD.graph), VOID.triples)) > 0
        assert client.get("/sparql").headers["content-type"].startswith("text/turtle")
        page = client.get("/sparql", headers={"Accept": "text/html,*/*;q=0.8"})
        assert page.headers["content-type"].startswith("text/html")
        assert "<form" in page.text and 'name="query"' in page.text
        assert client.get("/sparql", headers={"Accept": "image/png"}).status_code == 406
    finally:
        state.store.close()


def test_service_description_follows_configuration(store_copy: Path) -> None:
    client, state = sd_client(store_copy, write_token="t", allow_service=["https://query.wikidata.org/"],
                              union_default_graph=False)
    try:
        graph = _parse(client.get("/sparql").content, "text/turtle")
        service = graph.value(None, RDF.type, SD.Service)
        assert (service, SD.supportedLanguage, SD.SPARQL11Update) in graph
        assert (service, SD.feature, SD.BasicFederatedQuery) in graph
        # the stored default graph is the merge of the named graphs whichever way it is queried
        assert (service, SD.feature, SD.UnionDefaultGraph) in graph
        assert (service, SD.inputFormat, FORMATS.Turtle) in graph
    finally:
        state.store.close()


def test_service_description_over_http(server: ServerProcess) -> None:
    r = httpx.get(f"{server.url}/sparql", headers={"Accept": "text/turtle"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/turtle")
    graph = _parse(r.content, "text/turtle")
    service = graph.value(None, RDF.type, SD.Service)
    assert graph.value(service, SD.endpoint) == URIRef(f"{server.url}/sparql")


# --- VoID and dumps against the real server ------------------------------------------------


def _void(server: ServerProcess) -> Graph:
    r = httpx.get(f"{server.url}/.well-known/void")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/turtle")
    return Graph().parse(data=r.text, format="turtle")


def test_void_describes_the_dataset(server: ServerProcess) -> None:
    graph = _void(server)
    dataset = URIRef(BASE_IRI + ".well-known/void#dataset")
    assert (dataset, RDF.type, VOID.Dataset) in graph
    assert (dataset, RDF.type, DCAT.Dataset) in graph
    assert graph.value(dataset, VOID.sparqlEndpoint) == URIRef(f"{server.url}/sparql")
    triples = int(graph.value(dataset, VOID.triples))
    subsets = list(graph.objects(dataset, VOID.subset))
    assert {str(graph.value(s, SD.name)) for s in subsets} == GRAPHS
    assert triples > 0
    assert int(graph.value(dataset, VOID.entities)) > 0
    assert URIRef(BASE_IRI + "id/agreement/spa") in set(graph.objects(dataset,
                                                                       VOID.exampleResource))
    kg = Namespace(BASE_IRI + "ontology#")
    classes = {graph.value(p, VOID["class"]): int(graph.value(p, VOID.entities))
               for p in graph.objects(dataset, VOID.classPartition)}
    assert classes[kg.BindingAgreement] == 1
    properties = {graph.value(p, VOID.property): int(graph.value(p, VOID.triples))
                  for p in graph.objects(dataset, VOID.propertyPartition)}
    assert properties[kg.party] == 4
    assert graph.value(dataset, URIRef("http://purl.org/dc/terms/title")) is not None
    assert graph.value(dataset, URIRef("http://purl.org/dc/terms/license")) is not None
    assert graph.value(dataset, URIRef("http://purl.org/dc/terms/modified")).datatype \
        == XSD.dateTime
    dumps = {str(d) for d in graph.objects(dataset, VOID.dataDump)}
    assert f"{server.url}/dumps/kg.nq" in dumps
    assert httpx.get(f"{server.url}/.well-known/void",
                     headers={"Accept": "application/ld+json"}).status_code == 200


def test_void_distinct_triples_at_most_the_graph_sizes(server: ServerProcess) -> None:
    graph = _void(server)
    dataset = URIRef(BASE_IRI + ".well-known/void#dataset")
    subsets = list(graph.objects(dataset, VOID.subset))
    triples = int(graph.value(dataset, VOID.triples))
    assert triples <= sum(int(graph.value(s, VOID.triples)) for s in subsets)
    # the stored default graph is the merge of the named graphs, so it holds every distinct
    # triple: more would be a blank node made two by a publish, or a graph that is not data
    # (a remote store's graph/meta)
    answer = httpx.get(f"{server.url}/sparql", params={
        "query": "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"},
        headers={"Accept": "application/sparql-results+json"})
    assert answer.status_code == 200
    assert triples == int(answer.json()["results"]["bindings"][0]["n"]["value"])


def test_dump_on_demand_downloads_and_is_sized(server: ServerProcess) -> None:
    r = httpx.get(f"{server.url}/dumps/kg.nq")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/n-quads"
    assert int(r.headers["content-length"]) == len(r.content)
    quads = Dataset().parse(data=r.content, format="nquads")
    graphs = {str(g.identifier) for g in quads.graphs()} - {"urn:x-rdflib:default"}
    assert graphs == GRAPHS
    trig = httpx.get(f"{server.url}/dumps/kg.trig")
    assert trig.headers["content-type"] == "application/trig"
    graph = _void(server)
    sizes = {str(graph.value(d, DCAT.downloadURL)): graph.value(d, DCAT.byteSize)
             for d in graph.objects(None, DCAT.distribution)}
    assert int(sizes[f"{server.url}/dumps/kg.nq"]) == len(r.content)


@pytest.mark.parametrize("name", ["nope.nq", "kg.exe", ".hidden.nq", "kg.ttl", "kg.nq.partial"])
def test_unknown_dumps_are_404(server: ServerProcess, name: str) -> None:
    assert httpx.get(f"{server.url}/dumps/{name}").status_code == 404


@pytest.fixture(scope="module")
def dumps_server(sample_store: Path, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[tuple[ServerProcess, Path]]:
    """A server whose dumps directory holds files as the build writes them."""
    root = tmp_path_factory.mktemp("built")
    store = root / "store"
    shutil.copytree(sample_store, store)
    dumps = root / "dumps"
    dumps.mkdir()
    source = ox.Store.read_only(str(store))
    source.dump(str(dumps / "kg.nq"), format=ox.RdfFormat.N_QUADS)
    source.dump(str(dumps / "kg.trig"), format=ox.RdfFormat.TRIG)
    source.dump(str(dumps / "kg.ttl"), format=ox.RdfFormat.TURTLE,
                from_graph=ox.NamedNode(BASE_IRI + "graph/ontology"))
    del source
    (dumps / "notes.txt").write_text("not a dump")
    (dumps / ".hidden.nq").write_text("")
    proc = start_server(store, root, KG_DUMPS_DIR=str(dumps))
    yield proc, dumps
    proc.stop()


def test_built_dumps_are_served_as_written(dumps_server: tuple[ServerProcess, Path]) -> None:
    server, dumps = dumps_server
    for name, media in (("kg.ttl", "text/turtle"), ("kg.trig", "application/trig"),
                        ("kg.nq", "application/n-quads")):
        r = httpx.get(f"{server.url}/dumps/{name}")
        assert r.status_code == 200
        assert r.headers["content-type"].split(";")[0] == media
        assert r.content == (dumps / name).read_bytes()
    assert httpx.get(f"{server.url}/dumps/notes.txt").status_code == 404
    assert httpx.get(f"{server.url}/dumps/.hidden.nq").status_code == 404
    graph = _void(server)
    sizes = {str(graph.value(d, DCAT.downloadURL)): int(graph.value(d, DCAT.byteSize))
             for d in graph.objects(None, DCAT.distribution)}
    assert sizes == {f"{server.url}/dumps/{n}": (dumps / n).stat().st_size
                     for n in ("kg.nq", "kg.trig", "kg.ttl")}
    assert not list(graph.triples((None, URIRef("http://purl.org/dc/terms/description"),
                                   Literal("Exported from the live store on first request.",
                                           lang="en"))))
