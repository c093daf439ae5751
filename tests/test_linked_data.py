"""Linked data against a real server: 303 to page/data documents, HTML pages, RDF
descriptions with provenance, 404s (HTML with a search box, or a problem), traversal attempts,
escaping, the ontology, and a deployment whose base IRI is its own domain."""

from __future__ import annotations

import html
import http.client
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pyoxigraph as ox
import pytest
from rdflib import Dataset, Graph, Literal, Namespace, URIRef
from rdflib.namespace import OWL, RDF

from tests.server_process import BASE_IRI, ServerProcess, make_sample_store, start_server

KG = Namespace(BASE_IRI + "ontology#")
ID = Namespace(BASE_IRI + "id/")
SPA = ID["agreement/spa"]
CLAIM = ID["claim/0123456789ab"]
QUOTE = "Strategic Partnership Agreement of'17 July 2018"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def raw_get(server: ServerProcess, path: str, accept: str = "*/*") -> tuple[int, bytes]:
    """GET a path byte for byte (httpx and browsers would normalise ../ away)."""
    url = urlsplit(server.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.putheader("Accept", accept)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_entity_iri_answers_303_by_accept(server: ServerProcess) -> None:
    for accept, location in [
        (BROWSER, "/page/id/agreement/spa"),
        ("text/turtle", "/data/id/agreement/spa.ttl"),
        ("application/ld+json", "/data/id/agreement/spa.jsonld"),
        ("application/n-quads", "/data/id/agreement/spa.nq"),
        ("*/*", "/data/id/agreement/spa.ttl"),
    ]:
        r = httpx.get(f"{server.url}/id/agreement/spa", headers={"Accept": accept})
        assert r.status_code == 303, accept
        assert r.headers["location"] == location
        assert "Accept" in r.headers["vary"]
        assert 'rel="alternate"' in r.headers["link"]
        assert '</page/id/agreement/spa>; rel="alternate"; type="text/html"' in r.headers["link"]


def test_entity_page_shows_label_parties_quote_locator(server: ServerProcess) -> None:
    r = httpx.get(f"{server.url}/id/agreement/spa", headers={"Accept": BROWSER},
                  follow_redirects=True)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    page = html.unescape(r.text)
    for expected in ("EU–Japan Strategic Partnership Agreement", "Japan", "European Union",
                     QUOTE, "para. 12", "Sample partnership text", "signed on",
                     "binding agreement", "parties and signatories"):
        assert expected.lower() in page.lower(), expected
    # site-relative links for IRIs under the base, even though the server runs elsewhere
    assert 'href="/id/state/japan"' in r.text
    assert 'href="/ontology#party"' in r.text
    # mentions: a count per document with where
    assert "characters 130–133" in page
    assert 'rel="alternate" type="text/turtle" href="/data/id/agreement/spa.ttl"' in r.text


@pytest.mark.parametrize(
    ("accept", "rdflib_format", "dataset"),
    [
        ("text/turtle", "turtle", False),
        ("application/ld+json", "json-ld", False),
        ("application/rdf+xml", "xml", False),
        ("application/n-triples", "nt", False),
        ("application/n-quads", "nquads", True),
        ("application/trig", "trig", True),
    ],
)
def test_rdf_descriptions_parse_and_hold_the_claims(
    server: ServerProcess, accept: str, rdflib_format: str, dataset: bool
) -> None:
    r = httpx.get(f"{server.url}/id/agreement/spa", headers={"Accept": accept},
                  follow_redirects=True)
    assert r.status_code == 200
    assert r.headers["content-type"].split(";")[0] == accept
    graph: Graph | Dataset = Dataset(default_union=True) if dataset else Graph()
    graph.parse(data=r.content, format=rdflib_format)
    assert (SPA, KG.party, ID["state/japan"]) in graph
    assert (CLAIM, KG.quote, Literal(QUOTE)) in graph
    assert (CLAIM, KG.passage, ID["doc/000_sample/para/12"]) in graph
    assert (ID["mention/000_sample/130-133"], KG.mentionOf, SPA) in graph  # mentions
    assert (ID["state/japan"], KG.partyTo, SPA) in graph  # incoming links
    assert (ID["doc/000_sample"], URIRef("http://purl.org/dc/terms/title"),
            Literal("Sample partnership text")) in graph  # labels of linked resources
    if dataset:  # named graphs carry the provenance
        assert isinstance(graph, Dataset)
        doc_graph = graph.graph(URIRef(BASE_IRI + "graph/doc/000_sample"))
        assert (CLAIM, KG.quote, Literal(QUOTE)) in doc_graph
        later = graph.graph(URIRef(BASE_IRI + "graph/doc/001_sample"))
        assert (SPA, KG.enteredIntoForceOn, None) in later


def test_data_document_without_extension_negotiates_with_content_location(
    server: ServerProcess,
) -> None:
    r = httpx.get(f"{server.url}/data/id/agreement/spa",
                  headers={"Accept": "application/ld+json"})
    assert r.status_code == 200
    assert r.headers["content-location"] == "/data/id/agreement/spa.jsonld"
    assert "Accept" in r.headers["vary"]
    assert "rel=\"alternate\"" in r.headers["link"]
    etag = r.headers["etag"]
    again = httpx.get(f"{server.url}/data/id/agreement/spa",
                      headers={"Accept": "application/ld+json", "If-None-Match": etag})
    assert again.status_code == 304


def test_unknown_entity_is_404_html_with_search_box(server: ServerProcess) -> None:
    r = httpx.get(f"{server.url}/id/agreement/no-such-thing", headers={"Accept": BROWSER})
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert '<form class="search"' in r.text and 'name="q"' in r.text
    problem = httpx.get(f"{server.url}/id/agreement/no-such-thing",
                        headers={"Accept": "text/turtle"})
    assert problem.status_code == 404
    assert problem.headers["content-type"] == "application/problem+json"
    assert problem.json()["status"] == 404
    assert httpx.get(f"{server.url}/data/id/agreement/no-such-thing.ttl").status_code == 404


def test_search_finds_entities_by_label(server: ServerProcess) -> None:
    r = httpx.get(f"{server.url}/search", params={"q": "strategic partnership"})
    assert r.status_code == 200
    assert 'href="/id/agreement/spa"' in r.text
    assert httpx.get(f"{server.url}/search", params={"q": "x" * 500}).status_code == 400


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/id/../etc/passwd", 404),
        ("/id/../../../../etc/passwd", 404),
        ("/id/agreement/../../etc/passwd", 404),
        ("/id/%2e%2e/%2e%2e/etc/passwd", 404),
        ("/id/agreement/%2E%2E/spa", 404),
        ("/id/agreement%2fspa", 404),
        ("/id/agreement/sp%61", 404),
        ("/id/agreement//spa", 404),
        ("/page/id/%2e%2e/%2e%2e/etc/passwd", 404),
        ("/data/id/../../pyproject.toml", 404),
        ("/data/id/%2e%2e/%2e%2e/etc/passwd.ttl", 404),
        ("/id/a%00b", 400),
        ("/id/%c0%ae%c0%ae/etc/passwd", 400),  # overlong UTF-8 for '.'
        ("/id/%ff", 400),
        ("/id/a%0d%0aSet-Cookie:%20x", 404),  # the router matches no line breaks
        ("/id/" + "a" * 5000, 400),
        ("/dumps/..%2f..%2fetc%2fpasswd", 404),
        ("/dumps/%2e%2e", 404),
        ("/id/%E2%82%AC", 404),
        ("/id/agreement/spa%20x", 404),
    ],
)
def test_odd_paths_are_client_errors_never_files(
    server: ServerProcess, path: str, expected: int
) -> None:
    status, body = raw_get(server, path)
    assert status == expected, body[:300]
    assert b"root:" not in body and b"[project]" not in body
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_script_label_is_escaped(server: ServerProcess) -> None:
    r = httpx.get(f"{server.url}/page/id/event/tricky")
    assert r.status_code == 200
    assert "<script>alert" not in r.text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co" in r.text


def test_ontology_html_and_rdf(server: ServerProcess) -> None:
    r = httpx.get(f"{server.url}/ontology", headers={"Accept": BROWSER})
    assert r.status_code == 200 and r.headers["content-location"] == "/page/ontology"
    assert "Accept" in r.headers["vary"]
    page = httpx.get(f"{server.url}/page/ontology")
    assert page.status_code == 200
    for expected in ('id="Agreement"', 'id="party"', "Domain", "Range", "Sub-class of",
                     "binding agreement"):
        assert expected in page.text, expected
    ttl = httpx.get(f"{server.url}/ontology", headers={"Accept": "text/turtle"},
                    follow_redirects=True)
    assert ttl.headers["content-type"].startswith("text/turtle")
    graph = Graph().parse(data=ttl.text, format="turtle")
    assert (URIRef(BASE_IRI + "ontology"), RDF.type, OWL.Ontology) in graph
    assert (KG.Agreement, RDF.type, OWL.Class) in graph


# --- a deployment on its own domain ---------------------------------------------------------

DEPLOYED = "https://kg.example.org/"


@pytest.fixture(scope="module")
def deployed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A store built with another base IRI, served with KG_BASE_IRI set to it."""
    store = make_sample_store(tmp_path_factory.mktemp("deployed") / "store", base_iri=DEPLOYED)
    extra = ox.Store(str(store))  # an IRI with a non-ASCII character, as IRIs allow
    extra.add(ox.Quad(ox.NamedNode(DEPLOYED + "id/person/josé"),
                      ox.NamedNode("http://www.w3.org/2000/01/rdf-schema#label"),
                      ox.Literal("José <b>"), ox.NamedNode(DEPLOYED + "graph/doc/000_sample")))
    extra.flush()
    del extra
    proc = start_server(store, tmp_path_factory.mktemp("deployed-logs"), KG_BASE_IRI=DEPLOYED)
    yield proc
    proc.stop()
    shutil.rmtree(Path(store).parent, ignore_errors=True)


def test_base_iri_maps_paths_on_another_domain(deployed_server: ServerProcess) -> None:
    r = httpx.get(f"{deployed_server.url}/id/agreement/spa", headers={"Accept": "text/turtle"},
                  follow_redirects=True)
    assert r.status_code == 200
    graph = Graph().parse(data=r.text, format="turtle")
    spa = URIRef(DEPLOYED + "id/agreement/spa")
    assert (spa, URIRef(DEPLOYED + "ontology#party"), URIRef(DEPLOYED + "id/state/japan")) \
        in graph
    page = httpx.get(f"{deployed_server.url}/page/id/agreement/spa")
    assert 'href="/id/state/japan"' in page.text


def test_non_ascii_iri_dereferences_from_its_escaped_path(deployed_server: ServerProcess) -> None:
    r = httpx.get(f"{deployed_server.url}/id/person/jos%C3%A9", headers={"Accept": BROWSER})
    assert r.status_code == 303
    assert r.headers["location"] == "/page/id/person/jos%C3%A9"
    page = httpx.get(f"{deployed_server.url}{r.headers['location']}")
    assert page.status_code == 200
    assert "José &lt;b&gt;" in page.text
    data = httpx.get(f"{deployed_server.url}/data/id/person/jos%C3%A9.nt")
    assert "<https://kg.example.org/id/person/jos\u00E9>" in data.text \
        or "<https://kg.example.org/id/person/josé>" in data.text
