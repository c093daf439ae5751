"""The stored default graph is the RDF merge (a set) of all named graphs.

Why not pyoxigraph's `use_default_graph_as_union`: in pyoxigraph 0.5 the union counts a triple
once per graph that holds it (oxigraph issue #1919, fixed only in 0.6-dev), so a statement
asserted by three documents came back three times and COUNT/SUM were inflated. The build
therefore materialises the merge into the default graph, queries use the real default graph,
and every write keeps the merge in step (see `sync_update`). Named graphs stay the record of
who asserts what; `GRAPH ?g` still tells.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pyoxigraph as ox


def merged(quads: Iterable[ox.Quad]) -> Iterator[ox.Quad]:
    """Default-graph quads for the distinct triples of the named-graph quads given."""
    seen: set[ox.Triple] = set()
    for quad in quads:
        if isinstance(quad.graph_name, ox.DefaultGraph):
            continue
        triple = ox.Triple(quad.subject, quad.predicate, quad.object)
        if triple not in seen:
            seen.add(triple)
            yield ox.Quad(quad.subject, quad.predicate, quad.object, ox.DefaultGraph())


def _ground(quad: ox.Quad) -> bool:
    return not any(isinstance(t, (ox.BlankNode, ox.Triple)) for t in (quad.subject, quad.object))


def _values(quads: Iterable[ox.Quad]) -> str:
    return " ".join(f"({q.subject} {q.predicate} {q.object})" for q in quads)


def sync_update(added: Iterable[ox.Quad], removed: Iterable[ox.Quad]) -> str:
    """SPARQL Update operations that carry a named-graph delta into the merged default graph.

    Appended to the client's update and run in the same atomic `Store.update` call. Added
    triples join the default graph; a removed triple leaves it only when no named graph still
    holds it. Blank-node triples cannot be written in VALUES: those of an affected graph are
    copied by pattern instead (removal of blank-node triples from the merge is not tracked).
    """
    named_added = [q for q in added if isinstance(q.graph_name, ox.NamedNode)]
    named_removed = [q for q in removed if isinstance(q.graph_name, ox.NamedNode)]
    operations: list[str] = []
    ground_added = [q for q in named_added if _ground(q)]
    if ground_added:
        operations.append(
            "INSERT { ?s ?p ?o } WHERE { VALUES (?s ?p ?o) { " + _values(ground_added) + " } }"
        )
    for graph in sorted({q.graph_name.value for q in named_added if not _ground(q)}):
        operations.append(
            f"INSERT {{ ?s ?p ?o }} WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} "
            "FILTER(isBlank(?s) || isBlank(?o)) }"
        )
    ground_removed = [q for q in named_removed if _ground(q)]
    if ground_removed:
        operations.append(
            "DELETE { ?s ?p ?o } WHERE { VALUES (?s ?p ?o) { "
            + _values(ground_removed)
            + " } FILTER NOT EXISTS { GRAPH ?g { ?s ?p ?o } } }"
        )
    return " ;\n".join(operations)
