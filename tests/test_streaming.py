"""Streamed SELECT results: complete and well-formed when they succeed, visibly cut when not."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server_process import ServerProcess, start_server

PAIRS = "SELECT ?a ?d WHERE { ?a ?b ?c . ?d ?e ?f }"  # 791² rows on the sample store
PRODUCT = "SELECT * WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"
COUNT = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
BYTE_CAP = 1_000_000  # KG_MAX_RESULT_BYTES of `capped_server`; the first chunk is 256 KB
# PRODUCT has 495M rows: the embedded store and Oxigraph server send its first rows at once
WHOLE_RESULT_FIRST = pytest.mark.backend_xfail(
    "virtuoso", reason="Virtuoso computes a result before its first byte: PRODUCT runs into the "
    "time limit (503) before anything can be streamed")


def sparql(server: ServerProcess) -> str:
    return server.url + "/sparql"


def fetch(server: ServerProcess, query: str, accept: str) -> httpx.Response:
    return httpx.get(sparql(server), params={"query": query}, headers={"Accept": accept},
                     timeout=120)


def aborts(server: ServerProcess) -> float:
    text = httpx.get(server.url + "/metrics").text
    match = re.search(r"^kg_stream_aborts_total (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def answers(server: ServerProcess) -> bool:
    r = httpx.get(sparql(server), params={"query": COUNT}, timeout=60)
    return r.status_code == 200 and int(r.json()["results"]["bindings"][0]["n"]["value"]) > 0


def _server(sample_store: Path, factory: pytest.TempPathFactory, name: str,
            **env: str) -> ServerProcess:
    store = factory.mktemp(name) / "store"
    shutil.copytree(sample_store, store)
    return start_server(store, factory.mktemp("logs"), **env)


@pytest.fixture(scope="module")
def capped_server(
    sample_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    proc = _server(sample_store, tmp_path_factory, "capped", KG_MAX_RESULT_BYTES=str(BYTE_CAP))
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def spooling_server(
    sample_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    proc = _server(sample_store, tmp_path_factory, "spooling", KG_STREAM_RESULTS="false")
    yield proc
    proc.stop()


def test_large_json_select_streams_complete(server: ServerProcess) -> None:
    # more rows than the row cap of complete results (100,000): streamed results have none
    r = fetch(server, PAIRS + " LIMIT 150000", "application/sparql-results+json")
    assert r.status_code == 200
    assert "content-length" not in r.headers
    assert r.headers["transfer-encoding"] == "chunked"
    document = json.loads(r.content)
    assert document["head"]["vars"] == ["a", "d"]
    bindings = document["results"]["bindings"]
    assert len(bindings) == 150_000
    assert all(set(b) == {"a", "d"} for b in bindings[:: 997])


def test_large_csv_select_streams_complete(server: ServerProcess) -> None:
    with httpx.stream("GET", sparql(server), params={"query": PAIRS + " LIMIT 120000"},
                      headers={"Accept": "text/csv"}, timeout=120) as r:
        assert r.status_code == 200
        body = b"".join(r.iter_bytes())
    rows = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
    assert rows[0] == ["a", "d"] and len(rows) == 120_001
    assert all(len(row) == 2 for row in rows)


@pytest.mark.parametrize("limit", [10, 20_000])  # a complete result, and a streamed one
def test_csv_triple_term_with_a_comma_is_one_field(server: ServerProcess, limit: int) -> None:
    """RFC 4180: the field is quoted as a whole (pyoxigraph's own CSV writer split it)."""
    query = ('SELECT ?a (<<( ?a <http://example.org/p> "x, \\"y\\"" )>> AS ?t) '
             f"WHERE {{ ?a ?b ?c . ?d ?e ?f }} LIMIT {limit}")
    r = fetch(server, query, "text/csv")
    assert r.status_code == 200, r.text
    assert ("content-length" in r.headers) == (limit == 10)
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8"), newline="")))
    assert rows[0] == ["a", "t"] and len(rows) == limit + 1
    assert all(row[1] == f'{row[0]} http://example.org/p x, "y"' for row in rows[1:])


def test_small_results_are_not_streamed(server: ServerProcess) -> None:
    r = fetch(server, PAIRS + " LIMIT 10", "text/csv")
    assert r.status_code == 200 and int(r.headers["content-length"]) == len(r.content)


@WHOLE_RESULT_FIRST
def test_head_of_a_large_result_frees_its_worker(server: ServerProcess) -> None:
    for _ in range(3):  # more than the two workers: a leaked worker would starve the pool
        r = httpx.head(sparql(server), params={"query": PRODUCT},
                       headers={"Accept": "text/tab-separated-values"}, timeout=60)
        assert r.status_code == 200 and r.content == b""
    assert answers(server)


@WHOLE_RESULT_FIRST
def test_a_client_leaving_mid_stream_frees_its_worker(server: ServerProcess) -> None:
    for _ in range(3):
        with httpx.stream("GET", sparql(server), params={"query": PRODUCT},
                          headers={"Accept": "text/tab-separated-values"}, timeout=60) as r:
            assert r.status_code == 200
            first = next(r.iter_bytes())
            assert first.startswith(b"?a\t?b\t?c")
    assert answers(server)


@WHOLE_RESULT_FIRST
def test_byte_cap_cuts_a_streamed_response(capped_server: ServerProcess) -> None:
    before = aborts(capped_server)
    received = io.BytesIO()
    with pytest.raises(httpx.RemoteProtocolError), httpx.stream(
        "GET", sparql(capped_server), params={"query": PRODUCT},
        headers={"Accept": "text/tab-separated-values"}, timeout=60,
    ) as r:
        assert r.status_code == 200  # decided on the first chunk
        for chunk in r.iter_bytes():
            received.write(chunk)
    assert 256 * 1024 < received.tell() <= BYTE_CAP  # the first chunk, then at most the cap
    assert aborts(capped_server) == before + 1
    assert answers(capped_server)


@WHOLE_RESULT_FIRST
def test_cut_json_is_malformed(capped_server: ServerProcess) -> None:
    received = io.BytesIO()
    with pytest.raises(httpx.RemoteProtocolError), httpx.stream(
        "GET", sparql(capped_server), params={"query": PRODUCT},
        headers={"Accept": "application/sparql-results+json"}, timeout=60,
    ) as r:
        for chunk in r.iter_bytes():
            received.write(chunk)
    with pytest.raises(json.JSONDecodeError):
        json.loads(received.getvalue())


def test_complete_results_keep_their_caps(capped_server: ServerProcess) -> None:
    # XML is not streamed: the byte cap (here hit before the row cap) is a 422, as before
    r = fetch(capped_server, PAIRS, "application/sparql-results+xml")
    assert r.status_code == 422 and r.json()["max_bytes"] == BYTE_CAP
    rows = fetch(capped_server, PAIRS + " LIMIT 100001", "application/sparql-results+xml")
    assert rows.status_code == 422  # over one of the two caps, never a truncated 200


def test_without_streaming_results_are_complete_and_capped(
    spooling_server: ServerProcess,
) -> None:
    r = fetch(spooling_server, PAIRS + " LIMIT 60000", "text/tab-separated-values")
    assert r.status_code == 200 and int(r.headers["content-length"]) == len(r.content)
    assert r.content.count(b"\n") == 60_001
    capped = fetch(spooling_server, PAIRS, "application/sparql-results+json")
    assert capped.status_code == 422 and capped.json()["max_rows"] == 100_000
