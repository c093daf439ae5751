"""The competency queries (queries/*.rq) through the service over each remote backend.

The real build is published (`kg publish`, which must verify) into `oxigraph serve` and into
Virtuoso, a service process is started in front of each, and every query's answer is compared
with queries/expected/ as tests/test_competency_queries.py does. Over Oxigraph server the
answers are identical. Over Virtuoso 7.2 SELECT rows are compared as a multiset with its
documented SPARQL differences normalised (README, Backends): the order of the values
GROUP_CONCAT joins and its language tag, GROUP_CONCAT over no values giving "" where Oxigraph
leaves the variable unbound, and a row per branch of a path alternative `a|b` (queries with one
are compared as sets). A query whose remaining difference lies only in rows that bind a
literal `kg publish` reported as merged by Virtuoso (value-equal literals of one subject and
predicate stored as one triple; kg.store.literal_values) is xfail with those rows: that data is
not on the backend. Any other difference fails.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyoxigraph as ox
import pytest

from kg.sparql import guard
from kg.store.publish import Merge, predict
from tests import test_competency_queries as competency
from tests.remote_servers import OXIGRAPH, VIRTUOSO, start_oxigraph, start_virtuoso
from tests.server_process import ServerProcess, start_server
from tests.test_remote_backends import _publish

GROUP_CONCAT = re.compile(r"GROUP_CONCAT\(.*?\)\s+AS\s+[?$](\w+)", re.IGNORECASE | re.DOTALL)
SEPARATORS = re.compile(r" \| |, ")
Row = frozenset[tuple[str, Any]]


@dataclass
class Deployed:
    backend: str
    server: ServerProcess
    merged: set[tuple[tuple[str, str], ...]]  # literals the backend stores as one, as JSON terms


def _term(literal: ox.Literal) -> tuple[tuple[str, str], ...]:
    """A literal as the sorted items of its SPARQL JSON term (the form _loose compares)."""
    term = {"type": "literal", "value": literal.value}
    if literal.language:
        term["xml:lang"] = literal.language
    elif literal.datatype.value != "http://www.w3.org/2001/XMLSchema#string":
        term["datatype"] = literal.datatype.value
    return tuple(sorted(term.items()))


def _predicted(store: Path, dialect: str) -> list[Merge]:
    """The merges `kg publish` predicts (and verifies) for the backend, over every graph."""
    source = ox.Store.read_only(str(store))
    try:
        return [merge for graph in [*source.named_graphs(), ox.DefaultGraph()]
                for merge in predict(graph.value if isinstance(graph, ox.NamedNode) else "",
                                     source.quads_for_pattern(None, None, None, graph),
                                     dialect)[0]]
    finally:
        del source


@pytest.fixture(scope="module", params=["oxigraph", "virtuoso"])
def service(request: pytest.FixtureRequest, real_store: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    if request.param == "virtuoso" and not VIRTUOSO:
        pytest.skip("virtuoso-t not installed (scripts/install_virtuoso.sh) or KG_SKIP_VIRTUOSO=1")
    if request.param == "oxigraph" and not OXIGRAPH:
        pytest.skip("the oxigraph CLI (PyPI oxigraph) is not installed")
    work = tmp_path_factory.mktemp(f"competency-{request.param}")
    # Virtuoso: a limit the service's own (60 s below) ends first; with the default 10 s, `kg
    # publish`'s `ADD` of the 59K-triple graph/inferred timed out (SR171) beside other tests
    backend = (start_oxigraph(work / "db") if request.param == "oxigraph"
               else start_virtuoso(work / "db", max_seconds=90))
    try:
        published = _publish(backend.env, real_store)
        assert published.returncode == 0, published.stderr + published.stdout
        assert "counts verified" in published.stdout, published.stdout
        merges = _predicted(real_store, request.param)
        for merge in merges:  # each one reported by name
            assert f"{merge.subject} {merge.predicate} kept " in published.stderr, merge
        logs = work / "logs"
        logs.mkdir()
        server = start_server(real_store, logs, **backend.env, KG_QUERY_TIMEOUT="60")
        yield Deployed(request.param, server,
                       {_term(lit) for merge in merges for lit in merge.literals})
        server.stop()
    finally:
        backend.stop()


def _concatenated(query: Path) -> set[str]:
    """The variables a query binds with GROUP_CONCAT."""
    return set(GROUP_CONCAT.findall(query.read_text(encoding="utf-8")))


def _has_alternative(query: Path) -> bool:
    """Whether the query has a property path alternative `a|b`."""
    return any(t.kind == "punct" and t.text == "|" for t in guard.tokenize(query.read_text()))


def _loose(results: dict[str, Any], joined: set[str]) -> Counter[Row]:
    """The rows as a multiset, GROUP_CONCAT values order- and language-free, "" as unbound."""
    rows: Counter[Row] = Counter()
    for row in results["results"]["bindings"]:
        kept = {}
        for var, term in row.items():
            if var in joined:
                if term["value"] == "":
                    continue
                parts = sorted(SEPARATORS.split(term["value"]))
                term = {"type": "literal", "value": " | ".join(parts)}
            kept[var] = tuple(sorted(term.items()))
        rows[frozenset(kept.items())] += 1
    return rows


@pytest.mark.parametrize("query", competency.QUERIES, ids=lambda p: p.stem)
def test_competency_query_over_remote(query: Path, service: Deployed) -> None:
    kind = competency._kind(query.read_text())
    accept = ("application/n-triples" if kind in ("CONSTRUCT", "DESCRIBE")
              else "application/sparql-results+json")
    response = httpx.post(service.server.url + "/sparql", content=query.read_bytes(), timeout=60,
                          headers={"Content-Type": "application/sparql-query", "Accept": accept})
    assert response.status_code == 200, response.text
    if service.backend == "oxigraph" or kind != "SELECT":
        competency._compare(query, response.content)
        return
    expected = json.loads(competency._expected_path(query).read_bytes())
    got_json = json.loads(response.content)
    assert got_json["head"]["vars"] == expected["head"]["vars"]
    joined = _concatenated(query)
    want, got = _loose(expected, joined), _loose(got_json, joined)
    if _has_alternative(query):  # Virtuoso gives a row per matching branch
        want, got = Counter(set(want)), Counter(set(got))
    missing, extra = list((want - got).elements()), list((got - want).elements())
    if not missing and not extra:
        return
    unexplained = [dict(r) for r in missing + extra
                   if not any(term in service.merged for _, term in r)]
    assert not unexplained, (f"{query.name}: rows differ; missing {[dict(r) for r in missing]}, "
                             f"extra {[dict(r) for r in extra]}")
    pytest.xfail(f"Virtuoso stores value-equal literals of one subject and predicate as one "
                 f"triple (kg publish lists them): missing {[dict(r) for r in missing]}, "
                 f"extra {[dict(r) for r in extra]}")
