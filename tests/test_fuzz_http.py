"""Hostile HTTP (issue 7): junk parameters and headers on every public route, raw malformed
requests, and injection through every parameter into the queries the service writes itself
(linked-data lookups, search) and into its HTML. Never a 500, the store unchanged, markup
escaped.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from tests.reliability_support import fingerprint
from tests.server_process import BASE_IRI, ServerProcess, start_server

TOKEN = "fuzz-http-token"
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the checkout
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
PATHS = [
    "/sparql", "/sparql/", "/rdf-graphs", "/rdf-graphs/x", "/graph/ontology", "/id/org/eu",
    "/id/{junk}", "/page/id/{junk}", "/data/id/{junk}", "/data/id/{junk}.ttl", "/ontology",
    "/page/ontology", "/data/ontology", "/data/ontology.{junk}", "/search", "/.well-known/void",
    "/dumps/{junk}", "/healthz", "/metrics", "/", "/workbench/prefixes.json",
    "/workbench/terms.json", "/workbench/queries.json", "/views/{junk}", "/views/timeline",
    "/static/{junk}", "/{junk}",
]
PARAMS = ["query", "update", "format", "output", "results", "default-graph-uri",
          "named-graph-uri", "using-graph-uri", "graph", "default", "q", "token", "callback"]
JUNK = st.one_of(
    st.text(max_size=30),
    st.sampled_from([
        "", "..", "../../etc/passwd", "%2e%2e%2f", "%00", "%ff%fe", "%c0%af", "\\", "*/*",
        "application/sparql-results+json;q=2", "text/html;q=nan", "json", "xml", "csv", "ttl",
        "<http://x/>", "http://127.0.0.1:1/", "javascript:alert(1)", "a" * 5000,
        "SELECT * { ?s ?p ?o }", "ASK {}", "' OR 1=1 --", '") } DROP ALL #', "\u202e\ufeff",
    ]),
)
HEADER_VALUES = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60
) | st.sampled_from([
    "*/*", "text/html", "application/sparql-results+xml;q=0.1, */*;q=0", "text/turtle;q=abc",
    "application/problem+json", "Bearer", "Basic !!!", "Basic " + "QQ==" * 200, "bytes=0-1",
])
HEADERS = st.dictionaries(
    st.sampled_from(["Accept", "Content-Type", "Authorization", "If-None-Match",
                     "Accept-Language", "Range", "Origin", "X-Forwarded-For", "Accept-Encoding"]),
    HEADER_VALUES, max_size=4,
)
INJECTIONS = [
    '") } ; DROP ALL ; SELECT * { ("', "\" . } DELETE WHERE { ?s ?p ?o } #", "> } CLEAR ALL #",
    "<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "{{7*7}}", "${7*7}",
    "%0d%0aX-Injected: 1", "\\u0022) } DROP ALL #", "?needle", "'''", "\x00",
]


@pytest.fixture(scope="module")
def hostile(
    sample_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    store = tmp_path_factory.mktemp("fuzz-http") / "store"
    shutil.copytree(sample_store, store)
    proc = start_server(store, tmp_path_factory.mktemp("fuzz-http-logs"),
                        KG_WRITE_TOKEN=TOKEN, KG_QUERY_TIMEOUT="3")
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def client(hostile: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hostile.url, timeout=30) as c:
        yield c


def _segment(junk: str) -> str:
    return quote(junk, safe="/%") or "x"


@SETTINGS
@given(
    path=st.sampled_from(PATHS),
    junk=JUNK,
    params=st.lists(st.tuples(st.sampled_from(PARAMS), JUNK), max_size=4),
    headers=HEADERS,
    method=st.sampled_from(["GET", "GET", "HEAD", "POST", "OPTIONS", "PUT", "DELETE", "PATCH"]),
)
def test_junk_requests(client: httpx.Client, path: str, junk: str,
                       params: list[tuple[str, str]], headers: dict[str, str],
                       method: str) -> None:
    """Anything on any route: never a 500, and without the credential nothing changes."""
    before = client.get("/healthz").json()["version"]
    url = path.format(junk=_segment(junk))
    try:
        response = client.request(method, url, params=params, headers=headers,
                                  content=junk.encode() if method in ("POST", "PUT") else None)
    except (httpx.InvalidURL, httpx.LocalProtocolError):
        reject()  # httpx refused to build it; nothing was sent (Hypothesis counts it as filtered)
    assert response.status_code < 500, f"{method} {url} {params} {headers}: {response.text[:300]}"
    assert client.get("/healthz").json()["version"] == before


def _raw(url: str, data: bytes) -> bytes:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


@pytest.mark.parametrize("data", [
    b"GET /sparql?query=ASK%7B%7D HTTP/1.1\r\nHost: x\r\nAccept: \x00\x01\r\n\r\n",
    b"GET /sparql HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"POST /sparql HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
    b"POST /sparql HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
    b"Content-Type: application/sparql-query\r\n\r\nzz\r\n",
    b"GET /id/../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET " + b"/id/" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Junk: y\r\n" * 2000 + b"Connection: close\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,
    b"GET /sparql HTTP/9.9\r\n\r\n",
])
def test_malformed_http_is_refused_and_server_survives(
    hostile: ServerProcess, client: httpx.Client, data: bytes
) -> None:
    reply = _raw(hostile.url, data)
    if reply:
        status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else 400
        assert status < 500, reply[:300]
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize("payload", INJECTIONS)
def test_injection_through_search_and_identifiers(client: httpx.Client, payload: str) -> None:
    """Values reach the service's own SPARQL as bound terms, never as text: the store is
    unchanged, no error, and every reflected value is escaped in HTML and headers."""
    before = fingerprint(str(client.base_url))
    responses = [
        client.get("/search", params={"q": payload}),
        client.get("/id/" + quote(payload, safe=""), headers={"Accept": "text/html"}),
        client.get("/page/id/" + quote(payload, safe="")),
        client.get("/data/id/" + quote(payload, safe="") + ".ttl"),
        client.get("/views/" + quote(payload, safe=""), headers={"Accept": "text/html"}),
        client.get("/rdf-graphs", params={"graph": payload}),
        client.get("/sparql", params={"query": "ASK {}", "default-graph-uri": payload}),
    ]
    for response in responses:
        assert response.status_code < 500, response.text[:300]
        assert "x-injected" not in response.headers
        if response.headers.get("content-type", "").startswith("text/html"):
            assert "<script>alert" not in response.text
            assert "<img src=x" not in response.text
    if payload in ("{{7*7}}", "${7*7}"):  # reflected as text by the search page, not evaluated
        assert payload in responses[0].text
    assert fingerprint(str(client.base_url)) == before


def test_stored_markup_is_escaped_in_pages(client: httpx.Client) -> None:
    """A label or IRI written through the service (by a credentialed writer) cannot script the
    pages that show it: labels are escaped, javascript: IRIs are not made links."""
    entity = f"{BASE_IRI}id/test/markup"
    update = (
        f'INSERT DATA {{ GRAPH <{BASE_IRI}graph/test-markup> {{ <{entity}> '
        '<http://www.w3.org/2000/01/rdf-schema#label> "<script>alert(1)</script> markup" ; '
        '<http://www.w3.org/2000/01/rdf-schema#seeAlso> <javascript:alert(2)> } }'
    )
    response = client.post("/sparql", data={"update": update},
                           headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 204, response.text[:300]
    for page in (client.get("/page/id/test/markup"), client.get("/search", params={"q": "markup"})):
        assert page.status_code == 200, page.text[:300]
        assert "<script>alert(1)" not in page.text
        assert "&lt;script&gt;alert(1)" in page.text
        assert 'href="javascript:' not in page.text.replace(" ", "").lower()
