"""Graph Store HTTP Protocol against a live uvicorn server: every method, both ways of naming a
graph, status codes, bodies, and refusals that change nothing."""

from __future__ import annotations

import base64
import uuid

import httpx
import pyoxigraph as ox
import pytest

from tests.conftest import WRITE_TOKEN
from tests.server_process import BASE_IRI, ServerProcess

AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}"}
TURTLE = "text/turtle; charset=utf-8"
DOC_GRAPH = f"{BASE_IRI}graph/doc/000_sample"


def new_graph() -> str:
    return f"http://example.org/gsp/{uuid.uuid4().hex}"


def triples(response: httpx.Response, fmt: ox.RdfFormat = ox.RdfFormat.TURTLE) -> set[ox.Triple]:
    return {q.triple for q in ox.parse(response.content, format=fmt, base_iri=BASE_IRI)}


def put(url: str, graph: str, body: str, content_type: str = TURTLE, **headers: str):
    return httpx.put(f"{url}/rdf-graphs", params={"graph": graph}, content=body.encode(),
                     headers={"Content-Type": content_type, **AUTH, **headers})


def get(url: str, graph: str, accept: str = "text/turtle") -> httpx.Response:
    return httpx.get(f"{url}/rdf-graphs", params={"graph": graph}, headers={"Accept": accept})


def test_get_existing_graph_as_turtle(server: ServerProcess) -> None:
    response = get(server.url, DOC_GRAPH)
    assert response.status_code == 200
    assert response.headers["content-type"] == TURTLE
    assert "Vary" in response.headers or "vary" in response.headers
    spa = ox.NamedNode(f"{BASE_IRI}id/agreement/spa")
    assert any(t.subject == spa for t in triples(response))


@pytest.mark.parametrize(
    ("accept", "media", "fmt"),
    [
        ("application/n-triples", "application/n-triples", ox.RdfFormat.N_TRIPLES),
        ("application/rdf+xml", "application/rdf+xml", ox.RdfFormat.RDF_XML),
        ("application/ld+json", "application/ld+json", ox.RdfFormat.JSON_LD),
        ("text/html;q=0.9, application/n-triples;q=0.5", "application/n-triples",
         ox.RdfFormat.N_TRIPLES),
        ("*/*", "text/turtle", ox.RdfFormat.TURTLE),
    ],
)
def test_get_negotiates_rdf_formats(server: ServerProcess, accept: str, media: str,
                                    fmt: ox.RdfFormat) -> None:
    response = get(server.url, DOC_GRAPH, accept)
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media
    assert triples(response, fmt) == triples(get(server.url, DOC_GRAPH))


def test_direct_identification_under_graph(server: ServerProcess) -> None:
    response = httpx.get(f"{server.url}/graph/doc/000_sample", headers={"Accept": "text/turtle"})
    assert response.status_code == 200
    assert triples(response) == triples(get(server.url, DOC_GRAPH))


def test_unknown_graph_is_404_for_get_and_head(server: ServerProcess) -> None:
    assert get(server.url, new_graph()).status_code == 404
    assert httpx.head(f"{server.url}/rdf-graphs", params={"graph": new_graph()}).status_code == 404
    assert httpx.get(f"{server.url}/graph/doc/no-such-doc").status_code == 404


def test_head_existing_graph(server: ServerProcess) -> None:
    response = httpx.head(f"{server.url}/rdf-graphs", params={"graph": DOC_GRAPH},
                          headers={"Accept": "text/turtle"})
    assert response.status_code == 200
    assert response.headers["content-type"] == TURTLE and response.content == b""


def test_bad_graph_parameters_are_400(server: ServerProcess) -> None:
    assert httpx.get(f"{server.url}/rdf-graphs").status_code == 400
    assert get(server.url, "not an iri").status_code == 400
    both = httpx.get(f"{server.url}/rdf-graphs?default&graph=http%3A%2F%2Fex%2Fg")
    assert both.status_code == 400


def test_unsupported_accept_is_406(server: ServerProcess) -> None:
    assert get(server.url, DOC_GRAPH, "image/png").status_code == 406


def test_read_only_server_refuses_writes(server: ServerProcess) -> None:
    response = put(server.url, new_graph(), "<http://a> <http://b> <http://c> .")
    assert response.status_code == 403
    assert "disabled" in response.json()["title"].lower()


def test_writes_need_the_credential(writable_server: ServerProcess) -> None:
    graph = new_graph()
    body = b"<http://a> <http://b> <http://c> ."
    url, params = f"{writable_server.url}/rdf-graphs", {"graph": graph}
    headers = {"Content-Type": TURTLE}
    missing = httpx.put(url, params=params, content=body, headers=headers)
    assert missing.status_code == 401 and "Bearer" in missing.headers["www-authenticate"]
    wrong = httpx.put(url, params=params, content=body,
                      headers={**headers, "Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    in_query = httpx.put(url, params={**params, "access_token": WRITE_TOKEN}, content=body,
                         headers=headers)
    assert in_query.status_code == 401
    assert httpx.delete(url, params={"graph": DOC_GRAPH}).status_code == 401
    assert get(writable_server.url, graph).status_code == 404
    basic = base64.b64encode(f"anyone:{WRITE_TOKEN}".encode()).decode()
    ok = httpx.put(url, params=params, content=body,
                   headers={**headers, "Authorization": f"Basic {basic}"})
    assert ok.status_code == 201


def test_put_get_post_delete_cycle(writable_server: ServerProcess) -> None:
    url, graph = writable_server.url, new_graph()
    first = put(url, graph, "<http://ex/s> <http://ex/p> 'one' .")
    assert first.status_code == 201
    again = put(url, graph, "<http://ex/s> <http://ex/p> 'two' .")
    assert again.status_code == 204
    assert {t.object.value for t in triples(get(url, graph))} == {"two"}
    merged = httpx.post(f"{url}/rdf-graphs", params={"graph": graph},
                        content=b'<http://ex/s> <http://ex/p> "three" .',
                        headers={"Content-Type": "application/n-triples", **AUTH})
    assert merged.status_code == 204
    assert {t.object.value for t in triples(get(url, graph))} == {"two", "three"}
    assert httpx.delete(f"{url}/rdf-graphs", params={"graph": graph},
                        headers=AUTH).status_code == 204
    assert get(url, graph).status_code == 404
    assert httpx.delete(f"{url}/rdf-graphs", params={"graph": graph},
                        headers=AUTH).status_code == 404


def test_post_to_a_new_graph_is_201(writable_server: ServerProcess) -> None:
    graph = new_graph()
    response = httpx.post(f"{writable_server.url}/rdf-graphs", params={"graph": graph},
                          content=b"<http://ex/s> <http://ex/p> 1 .",
                          headers={"Content-Type": TURTLE, **AUTH})
    assert response.status_code == 201
    back = get(writable_server.url, graph)
    assert back.status_code == 200
    assert triples(back) == {ox.Triple(ox.NamedNode("http://ex/s"), ox.NamedNode("http://ex/p"),
                                       ox.Literal("1", datatype=ox.NamedNode(
                                           "http://www.w3.org/2001/XMLSchema#integer")))}


def test_post_to_the_collection_creates_a_graph(writable_server: ServerProcess) -> None:
    response = httpx.post(f"{writable_server.url}/rdf-graphs",
                          content=b"<http://ex/s> <http://ex/p> 1 .",
                          headers={"Content-Type": TURTLE, **AUTH})
    assert response.status_code == 201
    location = response.headers["location"]
    assert location.startswith(f"{BASE_IRI}rdf-graphs/")
    assert len(triples(get(writable_server.url, location))) == 1
    direct = location.removeprefix(BASE_IRI)
    assert httpx.get(f"{writable_server.url}/{direct}").status_code == 200


def test_json_ld_and_rdf_xml_bodies(writable_server: ServerProcess) -> None:
    graph = new_graph()
    jsonld = '{"@id": "http://ex/s", "http://ex/p": "v"}'
    assert put(writable_server.url, graph, jsonld, "application/ld+json").status_code == 201
    rdfxml = ('<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
              'xmlns:ex="http://ex/"><rdf:Description rdf:about="http://ex/s">'
              "<ex:q>w</ex:q></rdf:Description></rdf:RDF>")
    assert httpx.post(f"{writable_server.url}/rdf-graphs", params={"graph": graph},
                      content=rdfxml.encode(),
                      headers={"Content-Type": "application/rdf+xml", **AUTH}).status_code == 204
    assert {t.object.value for t in triples(get(writable_server.url, graph))} == {"v", "w"}


def test_invalid_rdf_is_400_and_graph_unchanged(writable_server: ServerProcess) -> None:
    before = triples(get(writable_server.url, DOC_GRAPH))
    response = httpx.put(f"{writable_server.url}/graph/doc/000_sample",
                         content=b"<http://ex/s> <http://ex/p> .",
                         headers={"Content-Type": TURTLE, **AUTH})
    assert response.status_code == 400
    assert "line 1" in response.json()["detail"]
    assert triples(get(writable_server.url, DOC_GRAPH)) == before


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE rdf:RDF [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:ex="http://ex/">
  <rdf:Description rdf:about="http://ex/s"><ex:p>&lol3;</ex:p></rdf:Description>
</rdf:RDF>"""


def test_billion_laughs_is_400(writable_server: ServerProcess) -> None:
    graph = new_graph()
    response = put(writable_server.url, graph, BILLION_LAUGHS, "application/rdf+xml")
    assert response.status_code == 400
    assert "DOCTYPE" in response.json()["detail"]
    assert get(writable_server.url, graph).status_code == 404


@pytest.mark.parametrize("content_type", [None, "application/json", "text/turtle; charset=latin-1"])
def test_unsupported_content_type_is_415(writable_server: ServerProcess,
                                         content_type: str | None) -> None:
    headers = dict(AUTH)
    if content_type:
        headers["Content-Type"] = content_type
    response = httpx.put(f"{writable_server.url}/rdf-graphs", params={"graph": new_graph()},
                         content=b"<http://ex/s> <http://ex/p> 1 .", headers=headers)
    assert response.status_code == 415


def test_named_graphs_in_a_trig_body_are_refused(writable_server: ServerProcess) -> None:
    response = put(writable_server.url, new_graph(),
                   "<http://ex/g> { <http://ex/s> <http://ex/p> 1 }", "application/trig")
    assert response.status_code == 400


def test_default_graph_put_and_get(writable_server: ServerProcess) -> None:
    url = f"{writable_server.url}/rdf-graphs?default"
    body = b"[] <http://ex/name> 'Alice' ."
    assert httpx.put(url, content=body, headers={"Content-Type": TURTLE, **AUTH}).status_code == 204
    got = httpx.get(url, headers={"Accept": "text/turtle"})
    assert {t.object.value for t in triples(got)} == {"Alice"}
    assert httpx.delete(url, headers=AUTH).status_code == 204
    assert triples(httpx.get(url)) == set()


def test_tricky_literals_round_trip(writable_server: ServerProcess) -> None:
    graph = new_graph()
    values = ['quote " and \\ backslash', "\\u0041 stays escaped", "line\nbreak\ttab",
              "<script>alert(1)</script>", "日本 🇯🇵", "} ; DROP ALL ; INSERT DATA {"]
    body = "\n".join(
        f"<http://ex/s> <http://ex/p{i}> {ox.Literal(v)} ." for i, v in enumerate(values)
    )
    assert put(writable_server.url, graph, body, "application/n-triples").status_code == 201
    assert {t.object.value for t in triples(get(writable_server.url, graph))} == set(values)


def test_multipart_post_merges_every_part(writable_server: ServerProcess) -> None:
    graph = new_graph()
    files = [
        ("a", ("a.ttl", b"<http://ex/s> <http://ex/p> 'a' .", "text/turtle")),
        ("b", ("b.nt", b"<http://ex/s> <http://ex/p> \"b\" .", "application/n-triples")),
    ]
    response = httpx.post(f"{writable_server.url}/rdf-graphs", params={"graph": graph},
                          files=files, headers=AUTH)
    assert response.status_code == 201
    assert {t.object.value for t in triples(get(writable_server.url, graph))} == {"a", "b"}
