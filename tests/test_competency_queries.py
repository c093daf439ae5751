"""The competency queries in queries/ keep answering what they answered when last reviewed.

Each query is run on the real build, directly and through a live server, and compared with
its expected result in queries/expected/ (SELECT rows unordered, ASK by value, CONSTRUCT by
graph isomorphism). After a deliberate change to data or queries, review the difference and
rewrite the files with `pytest tests/test_competency_queries.py --regenerate-expected`.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pyoxigraph as ox
import pytest
from rdflib import Graph
from rdflib.compare import isomorphic

from kg import paths
from tests.server_process import BASE_IRI, ServerProcess

QUERIES = sorted(paths.QUERIES_DIR.glob("*.rq"))
EXPECTED = paths.QUERIES_DIR / "expected"


def _kind(text: str) -> str:
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    for keyword in ("CONSTRUCT", "DESCRIBE", "ASK", "SELECT"):
        if keyword in body.upper().split():
            return keyword
    raise AssertionError("not a query form this test knows")


def _expected_path(query: Path) -> Path:
    suffix = ".nt" if _kind(query.read_text()) in ("CONSTRUCT", "DESCRIBE") else ".srj"
    return EXPECTED / (query.stem + suffix)


def _rows(results: dict[str, Any]) -> Counter[frozenset[tuple[str, tuple[tuple[str, str], ...]]]]:
    """Solutions as a multiset of {variable: term} with terms compared by type, value, tags."""
    return Counter(
        frozenset((var, tuple(sorted(term.items()))) for var, term in row.items())
        for row in results["results"]["bindings"]
    )


def _run_direct(store: ox.Store, text: str) -> bytes:
    result = store.query(text, base_iri=BASE_IRI)
    if isinstance(result, ox.QueryTriples):
        return ox.serialize(result, format=ox.RdfFormat.N_TRIPLES) or b""
    return result.serialize(format=ox.QueryResultsFormat.JSON) or b""


def _compare(query: Path, produced: bytes) -> None:
    expected_file = _expected_path(query)
    assert expected_file.exists(), "no expected result: run with --regenerate-expected"
    kind = _kind(query.read_text())
    if kind in ("CONSTRUCT", "DESCRIBE"):
        want = Graph().parse(data=expected_file.read_bytes(), format="nt")
        got = Graph().parse(data=produced, format="nt")
        assert isomorphic(want, got), f"{query.name}: graph differs from {expected_file.name}"
        return
    want_json = json.loads(expected_file.read_bytes())
    got_json = json.loads(produced)
    if kind == "ASK":
        assert got_json["boolean"] == want_json["boolean"]
        return
    assert got_json["head"]["vars"] == want_json["head"]["vars"]
    assert _rows(got_json) == _rows(want_json), f"{query.name}: rows differ from expected"


@pytest.fixture(scope="module")
def store(real_store: Path) -> ox.Store:
    return ox.Store.read_only(str(real_store))


def test_the_library_is_large_enough_and_documented() -> None:
    assert len(QUERIES) >= 30
    for query in QUERIES:
        first = query.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# Question: ") and first.rstrip().endswith("?"), query.name


@pytest.mark.parametrize("query", QUERIES, ids=lambda p: p.stem)
def test_query_matches_expected(
    query: Path, store: ox.Store, request: pytest.FixtureRequest
) -> None:
    produced = _run_direct(store, query.read_text(encoding="utf-8"))
    if request.config.getoption("--regenerate-expected"):
        EXPECTED.mkdir(exist_ok=True)
        _expected_path(query).write_bytes(produced)
        return
    kind = _kind(query.read_text())
    if kind == "SELECT":
        assert json.loads(produced)["results"]["bindings"], f"{query.name} answers nothing"
    elif kind == "ASK":
        assert json.loads(produced)["boolean"] is True, f"{query.name} is false"
    else:
        assert produced.strip(), f"{query.name} constructs nothing"
    _compare(query, produced)


@pytest.mark.parametrize("query", QUERIES, ids=lambda p: p.stem)
def test_query_through_the_service(query: Path, real_server: ServerProcess) -> None:
    """The same files sent to /sparql: relative IRIs resolve against the server's base IRI."""
    kind = _kind(query.read_text())
    accept = "application/n-triples" if kind in ("CONSTRUCT", "DESCRIBE") else (
        "application/sparql-results+json"
    )
    response = httpx.post(
        real_server.url + "/sparql",
        content=query.read_bytes(),
        headers={"Content-Type": "application/sparql-query", "Accept": accept},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    _compare(query, response.content)
