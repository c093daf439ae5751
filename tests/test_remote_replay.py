"""kg.store.remote_writes.replay_ops: the change a rehearsal made, written as DELETE DATA /
INSERT DATA for Virtuoso (which evaluates some client updates otherwise than the standard).

Each update is rehearsed as in production (kg.store.rehearsal.run_copy on N-Quads, the stored
blank node labelled `_:b10001` as Virtuoso's Graph Store GET labels its `nodeID://b10001`). Its
replay is then run on a pyoxigraph copy of the data as Virtuoso holds it (the default graph in
the merge graph, the stored blank node as the IRI `<nodeID://b10001>` by which Virtuoso's SPARQL
names it), which must end equal to the rehearsed copy in that form. A change the replay cannot
write must give None, so the client's text goes."""

from __future__ import annotations

import pyoxigraph as ox
import pytest

from kg.store import rehearsal, remote_writes

MERGE = ox.NamedNode("http://example.org/base/graph/default")
BASE = "http://example.org/base/"
STORED = ox.BlankNode("b10001")
DATA = """
<http://ex/s> <http://ex/p> "one" <http://ex/g1> .
<http://ex/s> <http://ex/p> "two"@en <http://ex/g1> .
<http://ex/s> <http://ex/q> "3"^^<http://www.w3.org/2001/XMLSchema#integer> <http://ex/g2> .
_:b10001 <http://ex/p> "blank" <http://ex/g2> .
_:b10001 <http://ex/q> <http://ex/s> <http://ex/g2> .
<http://ex/s> <http://ex/p> "one" .
"""


def _delta(text: str) -> tuple[set[ox.Quad], set[ox.Quad], set[ox.BlankNode]]:
    quads = rehearsal.parse_quads(DATA.encode())
    delta = rehearsal.run_copy(rehearsal.CopyJob(
        quads=rehearsal.nquads(quads), graphs=["http://ex/g1", "http://ex/g2"], text=text,
        base_iri=BASE))
    return (set(rehearsal.parse_quads(delta.added)), set(rehearsal.parse_quads(delta.removed)),
            remote_writes.blank_nodes(quads))


def _on_virtuoso(quads: set[ox.Quad]) -> set[ox.Quad]:
    """The quads as Virtuoso holds them: the default graph is the merge graph, and the stored
    blank node is what `<nodeID://b10001>` names."""
    def term(t: object) -> object:
        return ox.NamedNode(f"nodeID://{t.value}") if t == STORED else t  # type: ignore[attr-defined]
    return {ox.Quad(term(q.subject), q.predicate, term(q.object),  # type: ignore[arg-type]
                    MERGE if isinstance(q.graph_name, ox.DefaultGraph) else q.graph_name)
            for q in quads}


def _canonical(quads: set[ox.Quad]) -> set[tuple[str, ...]]:
    """Fresh blank nodes unnamed: the replay's get labels of their own."""
    def term(t: object) -> str:
        return "_:" if isinstance(t, ox.BlankNode) else str(t)
    return {tuple(term(t) for t in (q.subject, q.predicate, q.object, q.graph_name))
            for q in quads}


@pytest.mark.parametrize("text", [
    'DELETE DATA { GRAPH <http://ex/g1> { <http://ex/s> <http://ex/p> "two"@en } }',
    'INSERT { GRAPH <http://ex/g2> { ?s <http://ex/r> ?o } } WHERE { GRAPH <http://ex/g1> '
    '{ ?s ?p ?o } }',
    'WITH <http://ex/g1> DELETE { GRAPH <http://ex/g2> { ?s ?p ?o } } WHERE { ?s <http://ex/p> '
    '"one" . GRAPH <http://ex/g2> { ?s ?p ?o } }',
    'INSERT { ?s <http://ex/r> "d" } USING <http://ex/g1> WHERE { ?s ?p "one" }',
    'DELETE WHERE { ?s ?p ?o } ; INSERT DATA { <http://ex/t> <http://ex/p> "new" }',
    'INSERT DATA { GRAPH <http://ex/g1> { _:n <http://ex/p> "a" } '
    'GRAPH <http://ex/g2> { _:n <http://ex/p> "b" } }',
    'INSERT { GRAPH <http://ex/g1> { ?x <http://ex/p> "fresh" } } WHERE { BIND(BNODE() AS ?x) }',
    'MOVE <http://ex/g1> TO <http://ex/g3>',
    'DELETE WHERE { GRAPH <http://ex/g2> { ?b <http://ex/p> "blank" } }',
    'INSERT { GRAPH <http://ex/g1> { ?b <http://ex/r> "more" . _:n <http://ex/of> ?b } } WHERE '
    '{ GRAPH <http://ex/g2> { ?b <http://ex/p> "blank" } }',
    'COPY <http://ex/g2> TO <http://ex/g4>',
], ids=["delete-data", "insert-where", "with-graph-template", "using-default-template",
        "default-graph", "shared-fresh-bnode", "bnode-function", "move",
        "removes-from-a-stored-bnode", "adds-to-a-stored-bnode", "copies-a-stored-bnode"])
def test_the_replay_makes_the_rehearsed_change(text: str) -> None:
    added, removed, stored = _delta(text)
    assert added or removed
    ops = remote_writes.replay_ops(added, removed, stored, MERGE)
    assert ops is not None
    assert "_:b10001" not in ops  # a label would make a fresh node on Virtuoso
    before = _on_virtuoso(set(rehearsal.parse_quads(DATA.encode())))
    store = ox.Store()
    store.extend(before)
    store.update(ops)
    want = (before - _on_virtuoso(removed)) | _on_virtuoso(added)
    assert _canonical(set(store)) == _canonical(want)
    assert len(set(store)) == len(want)  # no blank node split in two, none merged


def test_a_fresh_blank_node_in_two_graphs_stays_one_node() -> None:
    added, removed, stored = _delta(
        'INSERT DATA { GRAPH <http://ex/g1> { _:n <http://ex/p> "a" } '
        'GRAPH <http://ex/g2> { _:n <http://ex/p> "b" } } ; '
        'INSERT { GRAPH <http://ex/g2> { ?s ?p ?o } } WHERE { GRAPH <http://ex/g1> '
        '{ ?s ?p ?o } }')
    ops = remote_writes.replay_ops(added, removed, stored, MERGE)
    assert ops is not None
    blank_ops = [op for op in ops.split(";") if "_:" in op]
    assert len(blank_ops) == 1  # every statement with the node in one INSERT DATA
    store = ox.Store()
    store.update(ops)
    blank = {q for q in store if isinstance(q.subject, ox.BlankNode)}
    assert len(blank) == 3 and len({q.subject for q in blank}) == 1  # one node, in g1 and g2


G, P = ox.NamedNode("http://ex/g"), ox.NamedNode("http://ex/p")


@pytest.mark.parametrize("added, removed, stored", [
    ([], [ox.Quad(ox.BlankNode("x1"), P, ox.Literal("o"), G)], {ox.BlankNode("x1")}),
    ([ox.Quad(ox.NamedNode("http://ex/s"), P, ox.BlankNode("x1"), G)], [],
     {ox.BlankNode("x1")}),
    ([ox.Quad(ox.NamedNode("http://ex/s"), P,
              ox.Triple(ox.NamedNode("http://ex/s"), P, ox.Literal("o")), G)], [], set()),
], ids=["stored-bnode-not-virtuosos", "links-to-stored-bnode-not-virtuosos", "triple-term"])
def test_what_the_replay_cannot_write_goes_as_text(
        added: list[ox.Quad], removed: list[ox.Quad], stored: set[ox.BlankNode]) -> None:
    """A stored blank node whose label is not Virtuoso's `bNNN` cannot be named; neither can
    a triple term be written for Virtuoso."""
    assert remote_writes.replay_ops(added, removed, stored, MERGE) is None


def test_a_large_change_is_cut_into_operations(monkeypatch: pytest.MonkeyPatch) -> None:
    """Virtuoso's compiler fails on a DATA block of ~5,500 triples: CHUNK quads per operation;
    fresh blank nodes stay in one operation (one node across graphs), or the text goes."""
    monkeypatch.setattr(remote_writes, "CHUNK", 1)
    added, removed, stored = _delta(
        'DELETE WHERE { GRAPH <http://ex/g1> { ?s ?p ?o } } ; '
        'INSERT DATA { GRAPH <http://ex/g3> { <http://ex/a> <http://ex/p> 1, 2 } }')
    ops = remote_writes.replay_ops(added, removed, stored, MERGE)
    assert ops is not None
    assert ops.count("DELETE DATA") == 2 and ops.count("INSERT DATA") == 2
    before = _on_virtuoso(set(rehearsal.parse_quads(DATA.encode())))
    store = ox.Store()
    store.extend(before)
    store.update(ops)
    assert set(store) == (before - removed) | added
    added, removed, stored = _delta(
        'INSERT DATA { GRAPH <http://ex/g3> { _:n <http://ex/p> 1, 2 } }')
    assert remote_writes.replay_ops(added, removed, stored, MERGE) is None
