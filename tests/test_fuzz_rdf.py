"""Hostile RDF payloads for the Graph Store protocol (issue 7): broken Turtle, N-Triples, RDF/XML
and JSON-LD (mutated from valid documents), entity expansion, remote JSON-LD contexts, RDF 1.2
terms. With the credential: a 2xx or a 4xx, never a 500, and a refused upload changes nothing;
without it: always refused, nothing changed.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyoxigraph as ox
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability_support import fingerprint, is_problem, loopback_canary
from tests.server_process import BASE_IRI, ServerProcess, start_server

TOKEN = "fuzz-rdf-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SCRATCH = f"{BASE_IRI}rdf-graphs/fuzz"
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the checkout
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

VALID = {
    "text/turtle": (
        b'@prefix ex: <http://example.org/> .\n'
        b'ex:a ex:p "caf\xc3\xa9"@fr , 42 , ( 1 2 ) ; ex:q [ ex:r ex:b ] .\n'
        b'ex:b ex:s """long\nstring"""^^<http://www.w3.org/2001/XMLSchema#string> .\n'
    ),
    "application/n-triples": (
        b'<http://example.org/a> <http://example.org/p> "x\\u00e9\\n" .\n'
        b'_:b1 <http://example.org/p> <http://example.org/b> .\n'
    ),
    "application/rdf+xml": (
        b'<?xml version="1.0"?>\n<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
        b' xmlns:ex="http://example.org/"><rdf:Description rdf:about="http://example.org/a">'
        b'<ex:p xml:lang="en">x</ex:p><ex:q rdf:resource="http://example.org/b"/>'
        b'</rdf:Description></rdf:RDF>'
    ),
    "application/ld+json": (
        b'{"@context": {"@vocab": "http://example.org/"}, "@id": "http://example.org/a",'
        b' "p": [{"@value": "x", "@language": "en"}, 1], "q": {"@id": "http://example.org/b"}}'
    ),
}
CONTENT_TYPES = [*VALID, "text/n3", "application/n-quads", "application/trig", "application/xml",
                 "text/turtle; charset=latin-1", "text/plain", "", "multipart/form-data",
                 "application/x-www-form-urlencoded", "text/turtle; charset=\x7f"]


def billion_laughs(levels: int, doctype: str = "<!DOCTYPE") -> bytes:
    entities = ['<!ENTITY l0 "' + "ha" * 20 + '">'] + [
        f'<!ENTITY l{i} "' + f"&l{i - 1};" * 10 + '">' for i in range(1, levels)
    ]
    return (
        f'<?xml version="1.0"?>\n{doctype} rdf:RDF [\n' + "\n".join(entities) + "\n]>\n"
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns:ex="http://example.org/"><rdf:Description rdf:about="http://example.org/s">'
        f"<ex:p>&l{levels - 1};</ex:p></rdf:Description></rdf:RDF>"
    ).encode()


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid document of some format, then truncated, spliced with junk, or byte-flipped."""
    media = draw(st.sampled_from(sorted(VALID)))
    body = bytearray(VALID[media])
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(body)))
        action = draw(st.sampled_from(["cut", "insert", "flip", "delete"]))
        if action == "cut":
            del body[at:]
        elif action == "insert":
            body[at:at] = draw(st.binary(max_size=12) | st.sampled_from(
                [b"<", b">", b'"', b"\\u", b"{", b"@prefix", b"&", b"]]>", b"\x00", b"\xff"]))
        elif action == "flip" and at < len(body):
            body[at] ^= draw(st.integers(1, 255))
        elif action == "delete":
            del body[at:at + draw(st.integers(1, 8))]
    media = draw(st.sampled_from([media, media, *CONTENT_TYPES]))
    return media, bytes(body)


@pytest.fixture(scope="module")
def hostile(
    sample_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    store = tmp_path_factory.mktemp("fuzz-rdf") / "store"
    shutil.copytree(sample_store, store)
    proc = start_server(store, tmp_path_factory.mktemp("fuzz-rdf-logs"), KG_WRITE_TOKEN=TOKEN)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def client(hostile: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hostile.url, timeout=60) as c:
        yield c


def _upload(client: httpx.Client, method: str, media: str, body: bytes,
            headers: dict[str, str] | None = None) -> httpx.Response:
    sent = {"Content-Type": media} if media else {}
    return client.request(method, "/rdf-graphs", params={"graph": SCRATCH}, content=body,
                          headers={**sent, **(headers or {})})


def assert_sane(response: httpx.Response) -> None:
    assert response.status_code < 500, f"{response.status_code}: {response.text[:300]}"
    if response.status_code >= 400:
        assert is_problem(response), response.headers


@SETTINGS
@given(case=mutated(), method=st.sampled_from(["PUT", "POST"]))
def test_mutated_uploads(client: httpx.Client, case: tuple[str, bytes], method: str) -> None:
    media, body = case
    before = fingerprint(str(client.base_url))
    response = _upload(client, method, media, body, AUTH)
    assert_sane(response)
    if response.status_code >= 400:
        assert fingerprint(str(client.base_url)) == before


@settings(SETTINGS, max_examples=30)
@given(case=mutated(), method=st.sampled_from(["PUT", "POST", "DELETE"]))
def test_uploads_without_credential_change_nothing(
    client: httpx.Client, case: tuple[str, bytes], method: str
) -> None:
    media, body = case
    before = client.get("/healthz").json()["version"]
    for headers in ({}, {"Authorization": "Bearer nope"}):
        response = _upload(client, method, media, body, headers)
        # 401 from the service; a header h11 finds malformed is a 400 before the app sees it
        assert response.status_code in (400, 401), response.text[:200]
    assert client.get("/healthz").json()["version"] == before


@pytest.mark.parametrize("body", [
    billion_laughs(9),
    billion_laughs(9, "<!doctype"),
    billion_laughs(9, "<! DOCTYPE"),
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:ex="http://e/">'
    b'<rdf:Description rdf:about="http://e/s"><ex:p>&x;</ex:p></rdf:Description></rdf:RDF>',
    billion_laughs(9).decode().replace('version="1.0"?', 'version="1.0" encoding="UTF-16"?')
    .encode("utf-16"),
], ids=["laughs", "lowercase", "spaced", "external-entity", "utf16"])
def test_entity_expansion_refused(client: httpx.Client, body: bytes) -> None:
    before = fingerprint(str(client.base_url))
    for media in ("application/rdf+xml", "application/xml"):
        response = _upload(client, "PUT", media, body, AUTH)
        assert 400 <= response.status_code < 500, response.text[:300]
    assert fingerprint(str(client.base_url)) == before


def test_entity_expansion_in_multipart_refused(client: httpx.Client) -> None:
    before = fingerprint(str(client.base_url))
    response = client.post(
        "/rdf-graphs", params={"graph": SCRATCH}, headers=AUTH,
        files={"a": ("a.rdf", billion_laughs(9), "application/rdf+xml")},
    )
    assert response.status_code == 400, response.text[:300]
    assert fingerprint(str(client.base_url)) == before


def test_remote_json_ld_context_is_not_fetched(client: httpx.Client) -> None:
    with loopback_canary() as canary:
        context = f"http://127.0.0.1:{canary.port}/ctx.jsonld"
        body = ('{"@context": "' + context + '", "@id": "http://e/a", "p": 1}').encode()
        response = _upload(client, "PUT", "application/ld+json", body, AUTH)
        assert 400 <= response.status_code < 500, response.text[:300]
        assert canary.hits == []


@pytest.mark.parametrize(("media", "body"), [
    ("application/n-triples", b'<http://e/a> <http://e/b> "x"@en--ltr .'),
    ("application/n-triples",
     b"<http://e/a> <http://e/b> <<( <http://e/a> <http://e/b> <http://e/c> )>> ."),
    ("text/n3", b"@prefix : <http://e/> . { ?x :p ?y } => { ?x :q ?y } ."),
    ("text/turtle", b"@base <javascript:alert(1)> . <x> <y> <z> ."),
    ("application/n-quads", b'<http://e/a> <http://e/b> "x" <http://e/g> .'),
    ("text/turtle", b"@prefix : <http://e/> . :a :b " + b"(" * 5000 + b")" * 5000 + b" ."),
    ("text/turtle", b"@prefix : <http://e/> . :a :b " + b"[ :c " * 5000 + b"]" * 5000 + b" ."),
    ("text/turtle", b'<http://e/a> <http://e/b> "' + b"x" * 900_000 + b'" .'),
])
def test_edge_payloads(client: httpx.Client, media: str, body: bytes) -> None:
    """RDF 1.2 terms, N3 rules, odd bases, named graphs, deep collections, huge literals: a
    4xx or a correct write, never a 500."""
    before = fingerprint(str(client.base_url))
    response = _upload(client, "PUT", media, body, AUTH)
    assert_sane(response)
    if response.status_code >= 400:
        assert fingerprint(str(client.base_url)) == before
    else:  # the graph now holds what the payload says (blank nodes counted, not matched)
        sent = {q.triple for q in ox.parse(body, format=ox.RdfFormat.from_media_type(media),
                                             base_iri=SCRATCH)}
        back = client.get("/rdf-graphs", params={"graph": SCRATCH},
                          headers={"Accept": "application/n-triples"})
        assert back.status_code == 200, back.text[:300]
        held = {q.triple for q in ox.parse(back.content, format=ox.RdfFormat.N_TRIPLES)}
        assert len(held) == len(sent)
        assert _without_blank_nodes(held) == _without_blank_nodes(sent)
    assert client.get("/healthz").status_code == 200


def _without_blank_nodes(triples: set[ox.Triple]) -> set[ox.Triple]:
    return {t for t in triples
            if not isinstance(t.subject, ox.BlankNode) and not isinstance(t.object, ox.BlankNode)}


def test_directional_language_tag_in_an_update(client: httpx.Client) -> None:
    """RDF 1.2 `"x"@en--ltr` goes through the SHACL check (rdflib has no directions): a
    correct write or a 4xx, never a 500."""
    before = fingerprint(str(client.base_url))
    response = client.post(
        "/sparql", headers={**AUTH, "Content-Type": "application/sparql-update"},
        content=b'INSERT DATA { GRAPH <http://e/g> { <http://e/a> <http://e/b> "x"@en--ltr } }',
    )
    assert_sane(response)
    if response.status_code >= 400:
        assert fingerprint(str(client.base_url)) == before
