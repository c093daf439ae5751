"""SHACL-checked writes to a remote store: rehearse on a local copy of what the update can
touch, validate, then send the update with the default-graph sync and the version bump.

The rules are kg.store.writes' (only violations the write introduces block it; a refused write
changes nothing); what differs is where the data comes from:
1. the update's scope (kg.store.update_scope) names the graphs it can read or write; those
   that exist are fetched over the Graph Store protocol (all named graphs when the update
   uses a graph variable; the merged default graph when it touches the default graph) into an
   in-memory pyoxigraph store, where the update is rehearsed;
2. the nodes the write touches are validated as kg.store.writes.shacl_view describes: their
   statements in every named graph (one query per 200 IRIs) after the write's delta, the
   `rdf:type` of what they point to, the ontology and vocabulary graphs;
3. one update request carries the client's operations, the operations that keep the merged
   default graph in step (written for the backend: on Virtuoso it is <base>graph/default) and
   the new dataset version, so all commit together or not at all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

import pyoxigraph as ox
import rdflib

from kg.errors import NotFound, ShapeViolation
from kg.store.update_scope import Scope
from kg.store.writes import (
    MAX_REPORTED,
    GraphName,
    WriteOutcome,
    _graph_label,
    _key,
    _run,
    _summary,
    _violations,
    shacl_view,
)

if TYPE_CHECKING:
    from kg.store.remote import RemoteStore


def _fetch(store: RemoteStore, scope: Scope) -> tuple[list[ox.Quad], set[ox.NamedNode]]:
    """The quads the update can touch and the named graphs among them that exist."""
    existing = {ox.NamedNode(g) for g in store.named_graphs()}
    wanted = existing if scope.all_named else {
        ox.NamedNode(g) for g in scope.graphs} & existing
    quads: list[ox.Quad] = []
    for graph in sorted(wanted, key=lambda g: g.value):
        quads += store.graph_quads(graph)
    if scope.default:
        quads += store.graph_quads(ox.DefaultGraph())
    return quads, wanted


def _ground(quad: ox.Quad) -> bool:
    return not any(isinstance(t, (ox.BlankNode, ox.Triple)) for t in (quad.subject, quad.object))


def sync_ops(added: Iterable[ox.Quad], removed: Iterable[ox.Quad],
             merge: ox.NamedNode | None) -> str:
    """kg.store.default_graph.sync_update, with the merge in `merge` when it is a named graph
    (Virtuoso): there `GRAPH ?g` would see the merge itself, so it is excluded explicitly."""
    named_added = [q for q in added
                   if isinstance(q.graph_name, ox.NamedNode) and q.graph_name != merge]
    named_removed = [q for q in removed
                     if isinstance(q.graph_name, ox.NamedNode) and q.graph_name != merge]
    into = (f"GRAPH {merge} {{ ?s ?p ?o }}" if merge is not None else "?s ?p ?o")
    not_merge = f"FILTER(?g != {merge})" if merge is not None else ""
    ops: list[str] = []
    ground = [q for q in named_added if _ground(q)]
    if ground:
        values = " ".join(f"({q.subject} {q.predicate} {q.object})" for q in ground)
        ops.append(f"INSERT {{ {into} }} WHERE {{ VALUES (?s ?p ?o) {{ {values} }} }}")
    for graph in sorted({q.graph_name.value for q in named_added if not _ground(q)}):
        ops.append(f"INSERT {{ {into} }} WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} "
                   "FILTER(isBlank(?s) || isBlank(?o)) }")
    ground = [q for q in named_removed if _ground(q)]
    if ground:
        values = " ".join(f"({q.subject} {q.predicate} {q.object})" for q in ground)
        ops.append(f"DELETE {{ {into} }} WHERE {{ VALUES (?s ?p ?o) {{ {values} }} "
                   f"FILTER NOT EXISTS {{ GRAPH ?g {{ ?s ?p ?o }} {not_merge} }} }}")
    return " ;\n".join(ops)


def _view(store: RemoteStore, described: list[ox.Quad], added: set[ox.Quad],
          removed: set[ox.Quad], nodes: set[ox.NamedNode],
          context_quads: list[ox.Quad]) -> rdflib.Graph:
    """kg.store.writes.shacl_view from the backend's named graphs about `nodes`, after the
    write's named-graph delta (the merge is the union of the named graphs)."""
    quads = (set(described) - removed) | {q for q in added if q.subject in nodes}
    statements = {(q.subject, q.predicate, q.object) for q in quads
                  if isinstance(q.graph_name, ox.NamedNode)}
    pointed = {o for _, _, o in statements if isinstance(o, ox.NamedNode)} - nodes
    types = {(q.subject, q.predicate, q.object) for q in store.types_of(pointed, set())}
    context = {(q.subject, q.predicate, q.object) for q in context_quads}
    return shacl_view(statements, types, context)


def transact(
    store: RemoteStore, text: str, *, base_iri: str, shapes: rdflib.Graph | None,
    context_graphs: list[GraphName], probe: GraphName | None, must_exist: bool, scope: Scope,
) -> WriteOutcome:
    existed = True
    if isinstance(probe, ox.NamedNode):
        existed = store.contains_graph(probe)
        if must_exist and not existed:
            raise NotFound(f"No graph <{probe.value}> in the store.")
    before_quads, before_graphs = _fetch(store, scope)
    rehearsal = ox.Store()
    rehearsal.extend(before_quads)
    for graph in before_graphs:
        rehearsal.add_graph(graph)
    _run(rehearsal, text, base_iri)
    before_set = set(before_quads)
    after_quads = set(rehearsal.quads_for_pattern(None, None, None, None))
    added, removed = after_quads - before_set, before_set - after_quads
    after_graphs = {g for g in rehearsal.named_graphs() if isinstance(g, ox.NamedNode)}
    affected: set[GraphName] = {q.graph_name for q in added | removed}
    affected |= before_graphs ^ after_graphs
    if not affected:
        return WriteOutcome(existed=existed)

    if shapes is not None and (added or removed):
        context_quads = store.context_quads(list(context_graphs))
        nodes = {q.subject for q in added | removed if isinstance(q.subject, ox.NamedNode)}
        described = store.describe(nodes)
        after = _violations(_view(store, described, added, removed, nodes, context_quads), shapes)
        if after:
            before = _violations(_view(store, described, set(), set(), nodes, context_quads),
                                 shapes)
            new = Counter(map(_key, after)) - Counter(map(_key, before))
            if new:
                blocking = [r for r in after if _key(r) in new][:MAX_REPORTED]
                raise ShapeViolation(
                    _summary(blocking), violations=blocking, violation_count=sum(new.values()))

    version = store.next_version()
    parts = [text, sync_ops(added, removed, store.merge_graph), store.version_ops(version)]
    if store.merge_graph is not None and scope.default:
        # Virtuoso: a write to the (merge) default graph needs default-graph-uri, under which
        # GRAPH templates misbehave: two requests, so not atomic (README, Backends)
        store.update(text, default_graph=True)
        parts = parts[1:]
    store.update("\n;\n".join(p for p in parts if p.strip()))
    store._version = version
    return WriteOutcome(
        added=len(added), removed=len(removed),
        graphs=sorted(_graph_label(g) for g in affected), existed=existed)
