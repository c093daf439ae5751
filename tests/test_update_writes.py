"""Unit tests of the write transaction (kg.store.writes) and the update-text helpers, on an
on-disk copy of the sample store (or, with `pytest --backend=…`, a remote store holding a copy of
it: kg.store.remote_writes): rehearsal, SHACL check, commit, and nothing changed on refusal."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pyoxigraph as ox
import pytest

from kg.config import Settings
from kg.errors import (
    BadParameter,
    ClientError,
    ForbiddenOperation,
    NotFound,
    ShapeViolation,
    UpdateSyntaxError,
)
from kg.server.state import AppState
from kg.sparql import guard
from kg.store import update_text, writes
from tests.remote_servers import every_quad, opened_store
from tests.server_process import BASE_IRI

KG = f"{BASE_IRI}ontology#"
RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
SPA = f"{BASE_IRI}id/agreement/spa"

# Every agreement (kg:Agreement and its subclasses, via the ontology graph) needs a label.
SHAPE = """
@prefix sh: <http://www.w3.org/ns/shacl#> .
@prefix kg: <ontology#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
<shapes/test#AgreementShape> a sh:NodeShape ;
    sh:targetClass kg:Agreement ;
    sh:property [ sh:path rdfs:label ; sh:minCount 1 ; sh:message "an agreement needs a label" ] .
"""


class FakeExecutor:
    """Stands in for S1's QueryExecutor: counts refreshes."""

    def __init__(self) -> None:
        self.refreshes = 0

    async def refresh(self) -> None:
        self.refreshes += 1


@pytest.fixture
def state(sample_store: Path, tmp_path: Path) -> Iterator[AppState]:
    shutil.copytree(sample_store, tmp_path / "store")
    shapes = tmp_path / "shapes"
    shapes.mkdir()
    (shapes / "test.ttl").write_text(SHAPE)
    settings = Settings(store_path=tmp_path / "store", base_iri=BASE_IRI, shapes_dir=shapes)
    with opened_store(settings, tmp_path / "backend") as store:
        yield AppState(settings=settings, store=store, executor=FakeExecutor())


def quads(state: AppState) -> set[ox.Quad]:
    return every_quad(state.store)


def run(state: AppState, text: str, **kwargs: object) -> writes.WriteOutcome:
    return asyncio.run(writes.run_update(state, text, **kwargs))


def test_insert_commits_bumps_version_and_refreshes(state: AppState) -> None:
    version = state.store.version
    outcome = run(state, 'INSERT DATA { GRAPH <http://ex/g> { <http://ex/s> <http://ex/p> "o" } }')
    # one quad in the named graph, and the same triple in the merged default graph
    if state.store.kind == "embedded":
        assert outcome.added == 2 and outcome.graphs == ["", "http://ex/g"]
    else:  # the merge is synced by the backend in the commit request: the outcome (a log
        # line) counts the client's own delta; the merge is checked below all the same
        assert outcome.added == 1 and outcome.graphs == ["http://ex/g"]
    assert state.store.contains_graph(ox.NamedNode("http://ex/g"))
    triple = (ox.NamedNode("http://ex/s"), ox.NamedNode("http://ex/p"), ox.Literal("o"))
    assert ox.Quad(*triple, ox.DefaultGraph()) in quads(state)
    assert state.store.version > version and state.executor.refreshes == 1


def test_no_change_publishes_nothing(state: AppState) -> None:
    outcome = run(state, "CLEAR SILENT GRAPH <http://ex/nothing-here>")
    assert not outcome.changed and state.executor.refreshes == 0


def test_syntax_error_is_400_with_position_and_changes_nothing(state: AppState) -> None:
    before = quads(state)
    with pytest.raises(UpdateSyntaxError) as err:
        run(state, "CLEAR XYZ")
    assert err.value.status == 400
    assert err.value.extra["position"] == {"line": 1, "column": 10}
    assert quads(state) == before


def test_evaluation_error_is_a_client_error(state: AppState) -> None:
    with pytest.raises(ClientError) as err:
        run(state, "DROP GRAPH <http://ex/absent>")
    assert err.value.status == 400


def test_shape_violation_is_422_and_nothing_changes(state: AppState) -> None:
    before = quads(state)
    with pytest.raises(ShapeViolation) as err:
        run(state, f"""
            INSERT DATA {{ GRAPH <http://ex/g> {{ <http://ex/a> a <{KG}BindingAgreement> }} }} ;
            INSERT DATA {{ GRAPH <http://ex/g2> {{ <http://ex/s> <http://ex/p> 1 }} }}""")
    assert err.value.status == 422
    [violation] = err.value.extra["violations"]
    assert violation["focusNode"] == "<http://ex/a>"
    assert violation["message"] == "an agreement needs a label"
    assert quads(state) == before and state.executor.refreshes == 0


def test_deleting_a_required_value_is_refused(state: AppState) -> None:
    before = quads(state)
    with pytest.raises(ShapeViolation):
        run(state, f"DELETE WHERE {{ GRAPH ?g {{ <{SPA}> <{RDFS_LABEL}> ?label }} }}")
    assert quads(state) == before


def test_conforming_write_to_a_shaped_class_commits(state: AppState) -> None:
    run(state, f"""INSERT DATA {{ GRAPH <http://ex/g> {{
        <http://ex/a> a <{KG}BindingAgreement> ; <{RDFS_LABEL}> "A" }} }}""")
    triple = ox.Triple(ox.NamedNode("http://ex/a"), ox.NamedNode(RDFS_LABEL), ox.Literal("A"))
    assert triple in {q.triple for q in quads(state)}


def test_existing_violation_does_not_block_an_unrelated_edit(state: AppState) -> None:
    # Put a violation in place behind the checker's back, then edit the same graph.
    bad = ox.Quad(ox.NamedNode("http://ex/old"), writes.RDF_TYPE,
                  ox.NamedNode(f"{KG}BindingAgreement"), ox.NamedNode("http://ex/g"))
    if state.store.kind == "embedded":
        state.store.raw.add(bad)
    else:
        state.store.update(f"INSERT DATA {{ GRAPH {bad.graph_name} {{ {bad.triple} }} }}")
    run(state, 'INSERT DATA { GRAPH <http://ex/g> { <http://ex/s> <http://ex/p> "new" } }')
    assert len([q for q in quads(state) if q.graph_name == ox.NamedNode("http://ex/g")]) == 2


def test_no_shapes_means_no_check(state: AppState, tmp_path: Path) -> None:
    empty = tmp_path / "none"
    empty.mkdir()
    state.settings = state.settings.model_copy(update={"shapes_dir": empty})
    run(state, f"INSERT DATA {{ GRAPH <http://ex/g> {{ <http://ex/a> a <{KG}Agreement> }} }}")
    assert state.store.contains_graph(ox.NamedNode("http://ex/g"))


@pytest.mark.parametrize(
    "text",
    [
        "LOAD <http://127.0.0.1:9/data.ttl>",
        "LOAD SILENT <http://localhost/x> INTO GRAPH <http://ex/g>",
        "PREFIX ex: <http://127.0.0.1:9/> LOAD ex:data",
        "\\u004COAD <http://127.0.0.1:9/x>",
        "LOAD <http://\\u0031\\u0032\\u0037.0.0.1:9/x>",
        "INSERT { ?s ?p ?o } WHERE { SERVICE <http://127.0.0.1:9/sparql> { ?s ?p ?o } }",
    ],
)
def test_load_and_service_are_refused_before_execution(state: AppState, text: str) -> None:
    before = quads(state)
    with pytest.raises(ForbiddenOperation):
        run(state, text)
    assert quads(state) == before


def test_allow_listed_load_prefix_passes_the_scan() -> None:
    guard.check_update(
        "LOAD <http://data.example/x.ttl>", allow_load=["http://data.example/"], base=BASE_IRI
    )
    with pytest.raises(ForbiddenOperation):
        guard.check_update(
            "LOAD <http://data.example.evil/x.ttl>", allow_load=["http://data.example/"],
            base=BASE_IRI,
        )


def test_protocol_dataset_adds_using_clauses() -> None:
    text = "INSERT { GRAPH <http://ex/out> { ?s a ?t } } WHERE { ?s a ?t }"
    rewritten = update_text.apply_protocol_dataset(text, ["http://ex/a"], ["http://ex/b"])
    assert "USING <http://ex/a> USING NAMED <http://ex/b> WHERE" in rewritten


def test_protocol_dataset_leaves_subqueries_and_delete_where_alone() -> None:
    text = ("DELETE WHERE { ?s ?p ?o } ; INSERT { ?s a 1 } "
            "WHERE { { SELECT ?s WHERE { ?s ?p ?o } } }")
    rewritten = update_text.apply_protocol_dataset(text, ["http://ex/a"], [])
    assert rewritten.count("USING") == 1
    assert "DELETE WHERE" in rewritten and "WHERE { ?s ?p ?o } }" in rewritten


@pytest.mark.parametrize("clause", ["WITH <http://ex/g>", "USING <http://ex/g>"])
def test_protocol_dataset_conflicts_with_with_or_using(clause: str) -> None:
    text = (f"{clause} DELETE {{ ?s ?p ?o }} WHERE {{ ?s ?p ?o }}" if clause.startswith("WITH")
            else f"DELETE {{ ?s ?p ?o }} {clause} WHERE {{ ?s ?p ?o }}")
    with pytest.raises(BadParameter):
        update_text.apply_protocol_dataset(text, [], ["http://ex/people"])


def test_protocol_dataset_rejects_a_non_iri() -> None:
    with pytest.raises(BadParameter):
        update_text.apply_protocol_dataset(
            "INSERT { <http://a> <http://b> 1 } WHERE {}", ["http://x> } ; DROP ALL ; <"], []
        )


def test_using_graph_uri_sets_the_where_dataset(state: AppState) -> None:
    run(state, """INSERT DATA { GRAPH <http://ex/d1> { <http://ex/x> a <http://ex/Doc> }
                               GRAPH <http://ex/d2> { <http://ex/y> a <http://ex/Doc> } }""")
    run(state, "INSERT { GRAPH <http://ex/out> { ?s a <http://ex/Seen> } } "
               "WHERE { ?s a <http://ex/Doc> }", using_graph_uris=["http://ex/d1"])
    seen = {q.subject.value for q in state.store.graph_quads(ox.NamedNode("http://ex/out"))}
    assert seen == {"http://ex/x"}


def test_graph_store_delete_of_a_missing_graph_is_404(state: AppState) -> None:
    with pytest.raises(NotFound):
        asyncio.run(writes.commit(state, "DROP GRAPH <http://ex/none>",
                                  probe=ox.NamedNode("http://ex/none"), must_exist=True,
                                  generated=True))
