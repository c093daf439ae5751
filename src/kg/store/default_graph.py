"""The stored default graph is the RDF merge (a set) of all named graphs.

Why not pyoxigraph's `use_default_graph_as_union`: in pyoxigraph 0.5 the union counts a triple
once per graph that holds it (oxigraph issue #1919, fixed only in 0.6-dev), so a statement
asserted by three documents came back three times and COUNT/SUM were inflated. The build
therefore materialises the merge into the default graph, queries use the real default graph,
and every write keeps the merge in step (see `sync_update`). Named graphs stay the record of
who asserts what; `GRAPH ?g` still tells.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from typing import TypeVar

import pyoxigraph as ox

T = TypeVar("T")


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


def _chunks(items: list[T], size: int | None) -> Iterator[list[T]]:
    step = size or max(len(items), 1)
    for start in range(0, len(items), step):
        yield items[start:start + step]


def _data(triples: Iterable[ox.Triple]) -> str:
    return " ".join(f"{t.subject} {t.predicate} {t.object} ." for t in triples)


def _values(quads: Iterable[ox.Quad]) -> str:
    return " ".join(f"({q.subject} {q.predicate} {q.object})" for q in quads)


def sync_update(added: Iterable[ox.Quad], removed: Iterable[ox.Quad],
                merge: ox.NamedNode | None = None, chunk: int | None = None,
                keep: Collection[ox.Triple] = frozenset(),
                still_held: Collection[ox.Triple] | None = None) -> str:
    """SPARQL Update operations that carry a named-graph delta into the merged default graph.

    Appended to the client's update and run in the same atomic request. Added triples join the
    merge; a removed triple leaves it only when no named graph still holds it. Blank-node
    triples cannot be written in VALUES: those of an affected graph are copied by pattern, and
    on removal the merge's blank-node triples of each predicate involved that no named graph
    holds any more are deleted by pattern (a blank node is one node in its graph and the merge,
    so the pattern finds exactly the statements gone). `merge`: the merge is this named graph
    (Virtuoso: there `GRAPH ?g` would see the merge itself, so it is excluded explicitly).
    `chunk`: at most this many statements per VALUES (Virtuoso's compiler fails on ~10,000).
    `keep`: removed statements the update itself wrote into the default graph (MOVE … TO
    DEFAULT; kg.store.rehearsal.written_to_default): they stay there. A blank-node one keeps
    every blank-node statement of its predicate (a pattern cannot single it out), so the merge
    may then hold a stale one rather than lose a written one.
    `still_held`: the removed statements without blank nodes that some named graph holds after
    the update, worked out by the caller; the others leave the merge by DELETE DATA, with no
    pattern to evaluate. Virtuoso needs it (kg.store.remote_writes): its FILTER NOT EXISTS over
    VALUES rows held for literals another graph holds when rows shared subject and predicate,
    and a join over such rows missed some, so the merge lost statements still asserted
    elsewhere (tests/test_update_merge.py, tests/test_update.py).
    """
    named_added = [q for q in added
                   if isinstance(q.graph_name, ox.NamedNode) and q.graph_name != merge]
    # a statement the update also added to a named graph (MOVE <g> TO <h>) stays in the merge
    # without asking (over Virtuoso the merge lost such literals, W3C update suite move03: the
    # cause was its NOT EXISTS over VALUES rows sharing subject and predicate, see `still_held`)
    held = {q.triple for q in named_added}
    named_removed = [q for q in removed
                     if isinstance(q.graph_name, ox.NamedNode) and q.graph_name != merge
                     and q.triple not in keep and q.triple not in held]
    kept_predicates = {str(t.predicate) for t in keep
                       if not _ground(ox.Quad(t.subject, t.predicate, t.object))}

    def into(pattern: str) -> str:
        return f"GRAPH {merge} {{ {pattern} }}" if merge is not None else pattern

    elsewhere = f"FILTER(?g != {merge})" if merge is not None else ""
    operations: list[str] = []
    for part in _chunks([q for q in named_added if _ground(q)], chunk):
        operations.append(f"INSERT {{ {into('?s ?p ?o')} }} WHERE {{ "
                          f"VALUES (?s ?p ?o) {{ {_values(part)} }} }}")
    for graph in sorted({q.graph_name.value for q in named_added if not _ground(q)}):
        operations.append(f"INSERT {{ {into('?s ?p ?o')} }} WHERE {{ GRAPH <{graph}> "
                          "{ ?s ?p ?o } FILTER(isBlank(?s) || isBlank(?o)) }")
    if still_held is not None:
        gone = {q.triple for q in named_removed if _ground(q) and q.triple not in still_held}
        operations += [f"DELETE DATA {{ {into(_data(part))} }}"
                       for part in _chunks(sorted(gone, key=str), chunk)]
    for part in ([] if still_held is not None else
                 _chunks([q for q in named_removed if _ground(q)], chunk)):
        operations.append(f"DELETE {{ {into('?s ?p ?o')} }} WHERE {{ "
                          f"VALUES (?s ?p ?o) {{ {_values(part)} }} "
                          f"FILTER NOT EXISTS {{ GRAPH ?g {{ ?s ?p ?o }} {elsewhere} }} }}")
    for predicate in sorted({str(q.predicate) for q in named_removed if not _ground(q)}
                            - kept_predicates):
        triple = f"?s {predicate} ?o"
        operations.append(f"DELETE {{ {into(triple)} }} WHERE {{ {into(triple)} "
                          "FILTER(isBlank(?s) || isBlank(?o)) "
                          f"FILTER NOT EXISTS {{ GRAPH ?g {{ {triple} }} {elsewhere} }} }}")
    return " ;\n".join(operations)
