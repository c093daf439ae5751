"""kg.store.update_scope: which graphs an update reaches, read off its text."""

from __future__ import annotations

from kg.store.update_scope import Scope, update_scope

BASE = "http://localhost:8000/"


def test_a_graph_only_update_does_not_reach_the_default_graph() -> None:
    text = ("DELETE { GRAPH <http://ex/g1> { ?s ?p ?o } } "
            "WHERE { GRAPH <http://ex/g1> { ?s ?p ?o } }")
    assert update_scope(text, BASE) == Scope(graphs={"http://ex/g1"})


def test_the_texts_own_base_is_followed() -> None:
    """Taking a BASE for "everything" made the default graph look read: over Virtuoso the
    update then went with default-graph-uri, which broke its GRAPH template (W3C delete-02)."""
    text = ("BASE <http://ex/dir/>\nPREFIX : <sub/>\n"
            "DELETE { GRAPH <g1> { ?s ?p ?o } } WHERE { GRAPH :g2 { ?s ?p ?o } }")
    assert update_scope(text, BASE) == Scope(graphs={"http://ex/dir/g1", "http://ex/dir/sub/g2"})


def test_a_later_base_resolves_what_follows_it() -> None:
    text = ("INSERT DATA { GRAPH <a> { <x> <y> 1 } } ;\n"
            "BASE <http://ex/other/> INSERT DATA { GRAPH <b> { <x> <y> 2 } }")
    assert update_scope(text, BASE).graphs == {f"{BASE}a", "http://ex/other/b"}


def test_a_base_without_an_iri_reaches_everything() -> None:
    assert update_scope("BASE INSERT DATA { <x> <y> 1 }", BASE) == Scope(default=True,
                                                                       all_named=True)
