"""schemathesis against the service (issue 7): cases generated from the hand-written OpenAPI
description tests/fixtures/openapi.yaml (the SPARQL, Graph Store, linked-data, search and
VoID routes are hidden from /openapi.json), plus the app's own /openapi.json. Every response
is below 500, and nothing is written (the server has a token; cases carry none)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability_support import fingerprint
from tests.server_process import ServerProcess, start_server

pytestmark = pytest.mark.serial(
    "schemathesis gives its generated cases one node id, which pytest-xdist runs once"
)

# SPARQL and RDF bodies are text: send them as text/plain's serializer does (as UTF-8 bytes)
schemathesis.serializer.alias(
    ["application/sparql-query", "application/sparql-update", "application/n-triples"],
    "text/plain",
)
SCHEMA = schemathesis.openapi.from_path(Path(__file__).parent / "fixtures" / "openapi.yaml")


@pytest.fixture(scope="module")
def target(
    sample_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    store = tmp_path_factory.mktemp("schema") / "store"
    shutil.copytree(sample_store, store)
    proc = start_server(store, tmp_path_factory.mktemp("schema-logs"),
                        KG_WRITE_TOKEN="schema-token", KG_QUERY_TIMEOUT="3")
    before = fingerprint(proc.url)
    yield proc
    assert fingerprint(proc.url) == before, "a generated request changed the store"
    proc.stop()


@SCHEMA.parametrize()
@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_generated_requests(case: schemathesis.Case, target: ServerProcess) -> None:
    response = case.call(base_url=target.url, timeout=30)
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} → {response.status_code}: {response.text[:300]}"
    )


@pytest.fixture(scope="module")
def served_operations(target: ServerProcess) -> list[object]:
    """The operations of the app's own /openapi.json (the routes it does describe)."""
    schema = schemathesis.openapi.from_url(f"{target.url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


@settings(max_examples=100, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_generated_requests_from_served_schema(
    served_operations: list[object], target: ServerProcess, data: st.DataObject
) -> None:
    operation = data.draw(st.sampled_from(served_operations))
    case = data.draw(operation.as_strategy())  # type: ignore[attr-defined]
    response = case.call(base_url=target.url, timeout=30)
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} → {response.status_code}: {response.text[:300]}"
    )
