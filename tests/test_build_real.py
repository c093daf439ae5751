"""The real corpus, built once per session into a tmp layout, plus one new document.

A document dropped into data/sources gets registered, segmented and searched for mentions
with no code change. Counts grow with the extraction, so only lower bounds are asserted.
"""

from __future__ import annotations

import pyoxigraph as ox
import pytest

from kg import paths
from kg.build import BuildReport, build
from tests.build_fixtures import BASE, make_layout, make_settings

KG = BASE + "ontology#"
NEW_DOC = "zzz_new_document.txt"


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> tuple[BuildReport, ox.Store]:
    root = tmp_path_factory.mktemp("real") / "home"
    layout = make_layout(root, corpus=paths.project_root())
    (layout.sources_dir / NEW_DOC).write_text(
        "A new note on maritime cooperation\n\nThe EU's CRIMARIO project supports information "
        "sharing in the Indo-Pacific.\n",
        encoding="utf-8",
    )
    settings = make_settings(root)
    report = build(settings, layout)
    return report, ox.Store.read_only(str(settings.store_path.resolve()))


def _rows(store: ox.Store, query: str) -> list:
    return list(store.query(query))


def test_real_build_counts(real):
    report, _ = real
    assert report.documents == 6
    assert report.entities > 100
    assert report.claims > 500
    assert report.mentions > 500
    for name in (
        "ontology",
        "vocabulary",
        "shapes",
        "mentions",
        "inferred",
        "doc/000_2626184bf365f106",
        "doc/004_b295389f0d5c8d00",
    ):
        assert report.graphs[BASE + "graph/" + name] > 0, name
    assert report.classes.get("Commitment", 0) >= 1


def test_real_build_passages(real):
    _, store = real
    rows = _rows(
        store,
        f"""SELECT ?loc WHERE {{
        <{BASE}id/doc/000_2626184bf365f106/para/12> a <{KG}Paragraph> ; <{KG}locator> ?loc ;
          <{KG}withinSection> ?s .
        ?s <{KG}heading> "Maritime Security, including operations and exercises" }}""",
    )
    assert [r["loc"].value for r in rows] == ["para. 12"]


def test_new_document_is_registered_and_mentions_found(real):
    _, store = real
    stem = NEW_DOC.removesuffix(".txt")
    rows = _rows(
        store,
        f"""SELECT ?text ?start WHERE {{
        GRAPH <{BASE}graph/mentions> {{ ?m <{KG}mentionOf> <{BASE}id/programme/crimario> ;
            <{KG}inDocument> <{BASE}id/doc/{stem}> ; <{KG}matchedText> ?text ;
            <{KG}startOffset> ?start }} }}""",
    )
    assert [r["text"].value for r in rows] == ["CRIMARIO"]
    title = _rows(
        store,
        f"""SELECT ?t WHERE {{ <{BASE}id/doc/{stem}> <http://purl.org/dc/terms/title> ?t }}""",
    )
    assert title[0]["t"].value == "A new note on maritime cooperation"


def test_every_claim_is_evidenced(real):
    _, store = real
    missing = _rows(
        store,
        f"""SELECT ?c WHERE {{ ?c a <{KG}Claim> .
        FILTER NOT EXISTS {{ ?c <{KG}quote> ?q ; <{KG}passage> ?p ; <{KG}startOffset> ?s }}
        }} LIMIT 5""",
    )
    assert missing == []


def test_no_blank_node_is_in_two_named_graphs(real):
    # ontology/kg.ttl and shapes/kg.ttl once both labelled their nodes _:kg0, _:kg1…: an OWL
    # union class of the ontology graph and a SHACL property shape were one store node
    _, store = real
    graphs_of: dict[str, set[str]] = {}
    for quad in store.quads_for_pattern(None, None, None):
        if isinstance(quad.graph_name, ox.NamedNode):
            for term in (quad.subject, quad.object):
                if isinstance(term, ox.BlankNode):
                    graphs_of.setdefault(term.value, set()).add(quad.graph_name.value)
    assert graphs_of, "the build has blank nodes (OWL unions, SHACL property shapes)"
    shared = {node: sorted(graphs) for node, graphs in graphs_of.items() if len(graphs) > 1}
    assert not shared
    unions = _rows(store, """
        PREFIX owl: <http://www.w3.org/2002/07/owl#>
        PREFIX sh: <http://www.w3.org/ns/shacl#>
        SELECT ?node WHERE { ?node owl:unionOf ?members ; sh:path ?path }""")
    assert unions == []
