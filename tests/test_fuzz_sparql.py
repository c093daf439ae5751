"""Hostile SPARQL against a live server (issue 7): generated token soups and the known endpoint
attacks. Every request gets a 4xx or a correct answer (a 503 only for the documented time
limit), never a 500, a hang or a crash, and a refused request leaves the store unchanged.

Examples are bounded (see SETTINGS) so the module runs in well under a minute.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability_support import fingerprint, is_problem, loopback_canary
from tests.server_process import ServerProcess, start_server

TOKEN = "fuzz-secret-token"
QUERY_TIMEOUT = 2
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the checkout
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

KEYWORDS = """SELECT CONSTRUCT DESCRIBE ASK WHERE FROM NAMED GRAPH OPTIONAL UNION MINUS FILTER
BIND VALUES SERVICE SILENT LOAD INTO CLEAR DROP CREATE ADD MOVE COPY INSERT DELETE DATA WITH
USING DEFAULT ALL PREFIX BASE DISTINCT REDUCED ORDER BY ASC DESC LIMIT OFFSET GROUP HAVING AS
COUNT SUM MIN MAX AVG SAMPLE GROUP_CONCAT SEPARATOR EXISTS NOT IN STR LANG REGEX CONCAT
SUBSTR STRLEN REPLACE IRI URI BNODE RAND NOW UUID SHA256 IF COALESCE isIRI a true false""".split()  # noqa: SIM905
PUNCT = [*"{}()[].;,*/|^+-!?=<>", "&&", "||", "^^", "<<", ">>", "{|", "|}", "!=", "<="]
IRIS = [
    "<http://127.0.0.1:1/>", "<http://localhost/>", "<http://[::1]/>", "<http://10.0.0.1/>",
    "<http://169.254.169.254/latest/meta-data/>", "<file:///etc/passwd>", "<id/x>",
    "<http://localhost:8000/id/org/eu>", "<>", "<\\u0068ttp://127.0.0.1/>",
]
ATOMS = st.one_of(
    st.sampled_from(KEYWORDS),
    st.sampled_from(KEYWORDS).map(str.lower),
    st.sampled_from(PUNCT),
    st.sampled_from(IRIS),
    st.from_regex(r"[?$][a-z]{1,3}", fullmatch=True),
    st.from_regex(r"[a-z]{0,3}:[a-z]{0,3}", fullmatch=True),
    st.integers(-10**30, 10**30).map(str),
    st.text(max_size=12).map(lambda s: '"' + s.replace('"', '\\"') + '"'),
    st.sampled_from(['"\\u0000"', '"\\uD800"', "\\u0053ERVICE", '"""x', "'", "#", "@en", "_:b"]),
)
SOUPS = st.lists(ATOMS, max_size=40).map(" ".join)

# A SELECT over the whole sample dataset that must always answer: the server's own liveness.
LIVE = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
PATHOLOGICAL = {
    "deep groups": "SELECT * WHERE { " + "{ " * 5000 + "?s ?p ?o" + " }" * 5000 + " }",
    "deep sub-selects": "SELECT * WHERE { " + "{ SELECT * WHERE " * 3000 + "{ ?s ?p ?o }"
    + " }" * 3000 + " }",
    "deep expressions": "SELECT * WHERE { FILTER(" + "(" * 60000 + "1" + ")" * 60000 + ") }",
    "deep path": "ASK { ?s " + "(" * 5000 + "<p:y>" + ")*" * 5000 + " ?o }",
    "path closure": "SELECT (COUNT(*) AS ?n) WHERE { ?s (!<p:none>|^!<p:none>)* ?o }",
    "path closure sorted": "SELECT * WHERE { ?s (<p:a>|!<p:b>)+ ?o } ORDER BY DESC(STR(?o))",
    "cartesian count": "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }",
    "cartesian rows": "SELECT * WHERE { ?a ?b ?c . ?d ?e ?f }",
    "order by millions": "SELECT ?x ?y ?z WHERE { VALUES ?x { " + " ".join(map(str, range(300)))
    + " } VALUES ?y { " + " ".join(map(str, range(300))) + " } VALUES ?z { 1 2 3 4 5 6 7 8 9 10"
    " 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 } } ORDER BY DESC(?x * ?y)",
    "enormous literal": 'SELECT * WHERE { BIND("' + "x" * 900_000 + '" AS ?x) }',
    "literal blow-up": 'SELECT (STRLEN(CONCAT(' + ",".join(['"' + "y" * 1000 + '"'] * 800)
    + ")) AS ?n) {}",
    "regex catastrophe": 'SELECT (REGEX(CONCAT("' + "a" * 40 + '", "!"), "(a+)+$") AS ?r) {}',
    "unicode escapes": 'SELECT * WHERE { ?s ?p "\\u0000\\uFFFF\\U0010FFFF\\U00110000" }',
    "lone surrogate escape": 'SELECT * WHERE { ?s ?p "\\uD800" }',
    "nul byte": "SELECT * WHERE { ?s ?p ?o }\x00",
    "bnode flood": "CONSTRUCT { [] <p:x> [ <p:y> [ <p:z> ?o ] ] } WHERE { ?s ?p ?o . ?a ?b ?c }",
}
LOOPBACK_TARGETS = [
    "http://127.0.0.1:{port}/", "http://localhost:{port}/", "http://127.1:{port}/",
    "http://0x7f000001:{port}/", "http://2130706433:{port}/", "http://[::ffff:127.0.0.1]:{port}/",
    "http://127.0.0.1:{port}/?x=#frag", "http://user@127.0.0.1:{port}/",
]
SSRF_FORMS = [
    "SELECT * WHERE {{ SERVICE <{t}> {{ ?s ?p ?o }} }}",
    "SELECT * WHERE {{ SERVICE SILENT <{t}> {{ ?s ?p ?o }} }}",
    "PREFIX x: <{t}> SELECT * WHERE {{ SERVICE x: {{ ?s ?p ?o }} }}",
    "BASE <{t}> SELECT * WHERE {{ SERVICE <> {{ ?s ?p ?o }} }}",
    "SELECT * WHERE {{ SERV\\u0049CE <{t}> {{ ?s ?p ?o }} }}",
    "SELECT * WHERE {{ service <{e}> {{ ?s ?p ?o }} }}",
    "SELECT * WHERE {{ VALUES ?u {{ <{t}> }} SERVICE ?u {{ ?s ?p ?o }} }}",
]
SSRF_UPDATES = [
    "LOAD <{t}>", "LOAD SILENT <{t}> INTO GRAPH <g:x>", "load <{e}>",
    "PREFIX x: <{t}> LOAD x:data",
    "INSERT {{ <s:a> <p:b> ?o }} WHERE {{ SERVICE <{t}> {{ ?s ?p ?o }} }}",
]


@pytest.fixture(scope="module")
def hostile(
    sample_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A writable server with a short query time limit, for hostile requests."""
    store = tmp_path_factory.mktemp("fuzz-sparql") / "store"
    shutil.copytree(sample_store, store)
    proc = start_server(
        store, tmp_path_factory.mktemp("fuzz-logs"),
        KG_WRITE_TOKEN=TOKEN, KG_QUERY_TIMEOUT=str(QUERY_TIMEOUT),
    )
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def client(hostile: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hostile.url, timeout=QUERY_TIMEOUT * 6) as c:
        yield c


def _escaped(iri: str) -> str:
    """The IRI with its scheme escaped as \\u sequences (pyoxigraph decodes them in IRIs)."""
    return "".join(f"\\u{ord(c):04X}" if c in "htp" else c for c in iri)


def assert_sane(response: httpx.Response, *, timeout_ok: bool = False) -> None:
    """A 2xx/4xx, or (for expensive queries) the documented 503 of the time limit; never a
    500 or a worker crash; errors are problem documents."""
    status = response.status_code
    if timeout_ok and status == 503:
        assert response.json()["title"] == "Query timed out", response.text[:300]
        return
    assert status < 500, f"{status}: {response.text[:300]}"
    if status >= 400:
        assert is_problem(response), response.headers


def assert_alive(client: httpx.Client) -> None:
    response = client.get("/sparql", params={"query": LIVE})
    assert response.status_code == 200, response.text[:300]


@SETTINGS
@given(text=SOUPS)
def test_token_soup_queries(client: httpx.Client, text: str) -> None:
    before = client.get("/healthz").json()["version"]
    assert_sane(client.get("/sparql", params={"query": text}), timeout_ok=True)
    assert_sane(client.post("/sparql", data={"query": text}), timeout_ok=True)
    assert_sane(
        client.post("/sparql", content=text.encode(),
                    headers={"Content-Type": "application/sparql-query"}),
        timeout_ok=True,
    )
    assert client.get("/healthz").json()["version"] == before


@SETTINGS
@given(text=SOUPS)
def test_token_soup_updates_without_credential(client: httpx.Client, text: str) -> None:
    before = client.get("/healthz").json()["version"]
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = client.post(
            "/sparql", content=text.encode(),
            headers={"Content-Type": "application/sparql-update", **headers},
        )
        assert_sane(response)
        assert response.status_code >= 400
    assert client.get("/healthz").json()["version"] == before


@settings(SETTINGS, max_examples=30)
@given(text=SOUPS)
def test_token_soup_updates_with_credential(client: httpx.Client, text: str) -> None:
    """The rehearsal parses in the server process: junk must be a 4xx, and a refused update
    must change nothing (a valid one may commit: that is a correct answer)."""
    before = fingerprint(str(client.base_url))
    response = client.post(
        "/sparql", content=text.encode(),
        headers={"Content-Type": "application/sparql-update", "Authorization": f"Bearer {TOKEN}"},
    )
    assert_sane(response)
    if response.status_code >= 400:
        assert fingerprint(str(client.base_url)) == before


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_pathological_queries(client: httpx.Client, name: str) -> None:
    text = PATHOLOGICAL[name]
    before = fingerprint(str(client.base_url))
    with client.stream(
        "POST", "/sparql", content=text.encode(),
        headers={"Content-Type": "application/sparql-query"},
    ) as response:
        try:
            response.read()
        except httpx.RemoteProtocolError:
            # a large SELECT is streamed (kg.sparql.streaming, no Content-Length) and cut short
            # when it overruns a limit: documented, and visible to the client as an incomplete
            # chunked body; a complete (Content-Length) answer is never cut
            assert response.status_code == 200
            assert "content-length" not in response.headers
        else:
            assert_sane(response, timeout_ok=True)
    assert_alive(client)
    assert fingerprint(str(client.base_url)) == before


def test_deep_nesting_is_a_400_not_a_crash(client: httpx.Client) -> None:
    """Thousands of nested groups overflowed pyoxigraph's native stack: in the update rehearsal
    that killed the whole server (fixed by kg.sparql.guard.MAX_NESTING)."""
    deep = "INSERT { <s:a> <p:b> 1 } WHERE { FILTER(" + "(" * 60000 + "1" + ")" * 60000 + ") }"
    response = client.post(
        "/sparql", content=deep.encode(),
        headers={"Content-Type": "application/sparql-update", "Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 400, response.text[:300]
    assert "nest" in response.json()["detail"]
    assert_alive(client)


@pytest.mark.parametrize("name", ["deep groups", "deep sub-selects", "deep path"])
def test_pathological_updates(client: httpx.Client, name: str) -> None:
    text = PATHOLOGICAL[name].replace("SELECT *", "DELETE { ?s ?p ?o }", 1)
    text = text.replace("ASK", "DELETE { ?s <p:y> ?o } WHERE", 1)
    before = fingerprint(str(client.base_url))
    response = client.post(
        "/sparql", content=text.encode(),
        headers={"Content-Type": "application/sparql-update", "Authorization": f"Bearer {TOKEN}"},
    )
    assert 400 <= response.status_code < 500, response.text[:300]
    assert_alive(client)
    assert fingerprint(str(client.base_url)) == before


def test_service_and_load_never_reach_loopback(client: httpx.Client) -> None:
    """SERVICE and LOAD to loopback, in plain, escaped, prefixed, relative and numeric forms:
    each refused (403 or 400) and the listener never contacted."""
    with loopback_canary() as canary:
        before = fingerprint(str(client.base_url))
        for target in LOOPBACK_TARGETS:
            t = target.format(port=canary.port)
            for form in SSRF_FORMS:
                text = form.format(t=t, e=_escaped(t))
                response = client.post(
                    "/sparql", content=text.encode(),
                    headers={"Content-Type": "application/sparql-query"},
                )
                assert response.status_code in (400, 403), (text, response.text[:200])
            for form in SSRF_UPDATES:
                text = form.format(t=t, e=_escaped(t))
                response = client.post(
                    "/sparql", content=text.encode(),
                    headers={"Content-Type": "application/sparql-update",
                             "Authorization": f"Bearer {TOKEN}"},
                )
                assert response.status_code in (400, 403), (text, response.text[:200])
        assert canary.hits == []
        assert fingerprint(str(client.base_url)) == before


@pytest.mark.parametrize("target", [
    "http://10.0.0.1/", "http://192.168.1.1/", "http://172.16.0.1/",
    "http://169.254.169.254/latest/meta-data/", "http://[fd00::1]/", "file:///etc/passwd",
])
def test_service_and_load_to_private_addresses_refused(client: httpx.Client, target: str) -> None:
    """Refused by the guard before any connection is attempted (nothing is listening there;
    the status proves the guard, not a network failure, answered)."""
    text = f"SELECT * {{ SERVICE <{target}> {{ ?s ?p ?o }} }}"
    query = client.post("/sparql", data={"query": text})
    assert query.status_code == 403
    update = client.post(
        "/sparql", data={"update": f"LOAD <{target}>"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert update.status_code == 403
