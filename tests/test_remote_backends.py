"""The service over real remote SPARQL servers (issue 6): `oxigraph serve` and Virtuoso.

Per backend (module-scoped, started here on free ports with a temporary database): `kg publish`
of the sample store, then two service processes with KG_STORE_URL pointing at it. Representative
checks of every feature, not the whole service suite. Virtuoso is skipped when virtuoso-t is not
installed (scripts/install_virtuoso.sh). The competency queries over the real build are in
tests/test_remote_competency.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import WRITE_TOKEN
from tests.reliability_support import loopback_canary
from tests.remote_servers import OXIGRAPH, VIRTUOSO, Backend, start_oxigraph, start_virtuoso
from tests.server_process import BASE_IRI, ServerProcess, free_port, start_server

AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}"}
KG = "PREFIX kg: <http://localhost:8000/ontology#>\n"
KG_CLI = str(Path(sys.executable).parent / "kg")
COUNT = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"


@dataclass
class Deployment:
    backend: Backend
    a: ServerProcess  # two service processes in front of one backend
    b: ServerProcess
    env: dict[str, str]


def _publish(env: dict[str, str], store: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KG_CLI, "publish"], capture_output=True, text=True,
        env={**os.environ, **env, "KG_STORE_PATH": str(store), "KG_BASE_IRI": BASE_IRI},
        timeout=120,
    )


@pytest.fixture(scope="module", params=["oxigraph", "virtuoso"])
def deployment(request: pytest.FixtureRequest, sample_store: Path,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    if request.param == "virtuoso" and not VIRTUOSO:
        pytest.skip("virtuoso-t not installed (scripts/install_virtuoso.sh) or KG_SKIP_VIRTUOSO=1")
    if request.param == "oxigraph" and not OXIGRAPH:
        pytest.skip("the oxigraph CLI (PyPI oxigraph) is not installed")
    work = tmp_path_factory.mktemp(request.param)
    backend = (start_oxigraph if request.param == "oxigraph" else start_virtuoso)(work / "db")
    published = _publish(backend.env, sample_store)
    assert published.returncode == 0, published.stderr + published.stdout
    env = {**backend.env, "KG_WRITE_TOKEN": WRITE_TOKEN, "KG_STORE_VERSION_INTERVAL": "0.2"}
    logs = work / "logs"
    logs.mkdir()
    a = start_server(sample_store, logs, **env)
    b = start_server(sample_store, logs, **env, KG_QUERY_TIMEOUT="1")
    yield Deployment(backend, a, b, env)
    a.stop()
    b.stop()
    backend.stop()


def _select(url: str, query: str, **headers: str) -> httpx.Response:
    return httpx.post(f"{url}/sparql", data={"query": query},
                      headers={"Accept": "application/sparql-results+json", **headers},
                      timeout=30)


def _count(url: str) -> int:
    response = _select(url, f"{COUNT}\n# {uuid.uuid4()}")  # never from the response cache
    assert response.status_code == 200, response.text
    return int(response.json()["results"]["bindings"][0]["n"]["value"])


def _eventually(check, seconds: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.1)


def test_health_names_the_backend(deployment: Deployment) -> None:
    body = httpx.get(f"{deployment.a.url}/healthz").json()
    assert body["status"] == "ok" and body["backend"] == "remote" and not body["empty"]


def test_merged_default_graph_has_set_semantics(deployment: Deployment,
                                                sample_store: Path) -> None:
    """The default graph counts each triple once, as the embedded store does."""
    import pyoxigraph as ox

    local = ox.Store.read_only(str(sample_store))
    expected = len(list(local.quads_for_pattern(None, None, None, ox.DefaultGraph())))
    assert _count(deployment.a.url) == expected


@pytest.mark.parametrize(("accept", "media"), [
    ("application/sparql-results+json", "application/sparql-results+json"),
    ("application/sparql-results+xml", "application/sparql-results+xml"),
    ("text/csv", "text/csv"),
    ("text/tab-separated-values", "text/tab-separated-values"),
])
def test_select_formats(deployment: Deployment, accept: str, media: str) -> None:
    response = _select(deployment.a.url, KG + "SELECT ?a WHERE { ?a a kg:Agreement } LIMIT 3",
                       Accept=accept)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(media)
    assert "agreement" in response.text


def test_construct_and_ask(deployment: Deployment) -> None:
    graph = httpx.post(f"{deployment.a.url}/sparql",
                       data={"query": KG + "CONSTRUCT WHERE { ?a a kg:Agreement }"},
                       headers={"Accept": "text/turtle"})
    assert graph.status_code == 200 and "kg:Agreement" in graph.text
    ask = _select(deployment.a.url, "ASK { ?s ?p ?o }")
    assert ask.json()["boolean"] is True


def test_query_with_its_own_base(deployment: Deployment) -> None:
    """The service's BASE is not added before the client's (Virtuoso refuses two)."""
    response = _select(deployment.a.url, "BASE <http://localhost:8000/> PREFIX kg: <ontology#> "
                       "SELECT ?a WHERE { ?a a kg:Agreement } LIMIT 1")
    assert response.status_code == 200, response.text
    assert "agreement" in response.text


def test_blank_nodes_in_select_results(deployment: Deployment) -> None:
    """Virtuoso names blank nodes `nodeID://…` in JSON results: they arrive as blank nodes."""
    response = _select(deployment.a.url, "SELECT ?s WHERE { GRAPH "
                       "<http://localhost:8000/graph/ontology> { ?s ?p ?o FILTER(isBlank(?s)) } } "
                       "LIMIT 3")
    assert response.status_code == 200, response.text
    rows = response.json()["results"]["bindings"]
    assert rows and all(r["s"]["type"] == "bnode" and "/" not in r["s"]["value"] for r in rows)


def test_syntax_error_is_400(deployment: Deployment) -> None:
    assert _select(deployment.a.url, "SELECT WHERE {").status_code == 400


def test_service_refused_before_sending(deployment: Deployment) -> None:
    """Refused by kg's guard: neither kg nor the backend behind it connects to the URL."""
    with loopback_canary() as canary:
        response = _select(deployment.a.url, "SELECT * WHERE { SERVICE "
                           f"<http://127.0.0.1:{canary.port}/x> {{ ?s ?p ?o }} }}")
        time.sleep(0.5)  # a connection the backend made would be recorded by now
    assert response.status_code == 403, response.text
    assert canary.hits == []


def test_shacl_rejection_changes_nothing(deployment: Deployment) -> None:
    before = _count(deployment.a.url)
    response = httpx.post(
        f"{deployment.a.url}/sparql", headers={**AUTH, "Content-Type": "application/sparql-update"},
        content=KG + "INSERT DATA { GRAPH <http://localhost:8000/graph/doc/bad> { "
        "<http://localhost:8000/id/org/nameless> a kg:Agreement } }")
    assert response.status_code == 422, response.text
    assert _count(deployment.a.url) == before


def test_graph_store_round_trip(deployment: Deployment) -> None:
    url = f"{deployment.a.url}/rdf-graphs?graph=http://example.org/remote-test"
    body = '<http://example.org/s> <http://www.w3.org/2000/01/rdf-schema#comment> "x" .\n'
    put = httpx.put(url, content=body, headers={**AUTH, "Content-Type": "text/turtle"})
    assert put.status_code in (201, 204), put.text
    got = httpx.get(url, headers={"Accept": "application/n-triples"})
    assert got.status_code == 200 and "example.org/s" in got.text
    assert httpx.delete(url, headers=AUTH).status_code == 204
    assert httpx.get(url).status_code == 404


def test_linked_data_page(deployment: Deployment) -> None:
    see_other = httpx.get(f"{deployment.a.url}/id/agreement/spa",
                          headers={"Accept": "text/html"})
    assert see_other.status_code == 303
    page = httpx.get(f"{deployment.a.url}{see_other.headers['location']}")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    data = httpx.get(f"{deployment.a.url}/data/id/agreement/spa.ttl")
    assert data.status_code == 200 and "agreement/spa" in data.text


@pytest.mark.parametrize("path", ["agreement/spa", "state/japan", "mission/eunavfor-atalanta"])
def test_data_document_equals_the_embedded_one(deployment: Deployment, sample_store: Path,
                                               path: str) -> None:
    """The description quads (with their graphs) are those the embedded store gives; on
    Virtuoso they come from one query per UNION branch (kg.store.remote_union)."""
    import pyoxigraph as ox

    from kg.server.entity_view import fetch_description

    iri = f"{BASE_IRI}id/{path}"
    local = ox.Store.read_only(str(sample_store))
    want = {str(q) for q in fetch_description(local, BASE_IRI, iri) if _ground(q)}
    response = httpx.get(f"{deployment.a.url}/data/id/{path}.nq", timeout=30)
    assert response.status_code == 200, response.text
    got = {str(q) for q in ox.parse(response.content, format=ox.RdfFormat.N_QUADS)
           if _ground(q)}
    assert want and got == want


def _ground(quad: object) -> bool:
    import pyoxigraph as ox

    assert isinstance(quad, ox.Quad)
    return not isinstance(quad.subject, ox.BlankNode) and not isinstance(quad.object,
                                                                         ox.BlankNode)


def test_workbench_terms(deployment: Deployment) -> None:
    terms = httpx.get(f"{deployment.a.url}/workbench/terms.json").json()
    assert any(c.endswith("#Agreement") for c in terms["classes"])


def test_write_through_one_process_is_seen_by_the_other(deployment: Deployment) -> None:
    a, b = deployment.a.url, deployment.b.url
    version_b = httpx.get(f"{b}/healthz", timeout=30).json()["version"]
    before = _count(b)
    response = httpx.post(
        f"{a}/sparql", headers={**AUTH, "Content-Type": "application/sparql-update"},
        content="INSERT DATA { GRAPH <http://localhost:8000/graph/doc/extra> { "
        "<http://localhost:8000/id/x> <http://www.w3.org/2000/01/rdf-schema#comment> "
        '"seen" } }', timeout=60)
    assert response.status_code == 204, response.text
    # b may answer from its response cache until it reads the new version (bounded staleness:
    # KG_STORE_VERSION_INTERVAL); then the write is there, merged default graph included
    _eventually(lambda: httpx.get(f"{b}/healthz", timeout=30).json()["version"] != version_b,
                60)
    _eventually(lambda: _count(b) == before + 1, 30)


def test_timeout_is_503(deployment: Deployment) -> None:
    """Service b has KG_QUERY_TIMEOUT=1; the backend stops the query itself after 10 s."""
    slow = ("SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }")
    response = _select(deployment.b.url, slow)
    assert response.status_code == 503, response.text


def test_backend_down_then_back(deployment: Deployment, sample_store: Path,
                                tmp_path: Path) -> None:
    """Down at start-up: 503 from /healthz and /sparql; recovers by itself when it returns."""
    deployment.backend.stop()
    port = free_port()
    log = (tmp_path / "late.log").open("wb")
    env = {**os.environ, **deployment.env, "KG_STORE_PATH": str(sample_store),
           "KG_BASE_IRI": BASE_IRI}
    late = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "kg.server.app:create_app",
         "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=log,
        stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        def answers() -> bool:
            try:
                return httpx.get(f"{url}/healthz", timeout=10).status_code == 503
            except httpx.HTTPError:
                return False

        _eventually(answers, 60)
        assert _select(url, "ASK {}").status_code in (502, 503)
        assert _select(deployment.a.url, "ASK {}").status_code in (502, 503)
        deployment.backend.start_again()
        _eventually(lambda: httpx.get(f"{url}/healthz", timeout=10).status_code == 200, 60)
        assert _select(url, "ASK { ?s ?p ?o }").json()["boolean"] is True
        assert _select(deployment.a.url, "ASK { ?s ?p ?o }").json()["boolean"] is True
    finally:
        late.send_signal(signal.SIGTERM)
        late.wait(timeout=20)


def test_interrupted_publish_reruns_consistent(deployment: Deployment, sample_store: Path) -> None:
    env = {**os.environ, **deployment.backend.env, "KG_STORE_PATH": str(sample_store),
           "KG_BASE_IRI": BASE_IRI}
    run = subprocess.Popen([KG_CLI, "publish"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert run.stderr is not None
    run.stderr.readline()  # the first graph is replaced: kill it halfway
    run.kill()
    run.wait()
    again = _publish(deployment.backend.env, sample_store)
    assert again.returncode == 0, again.stderr + again.stdout
    assert "counts verified" in again.stdout
