"""SHACL-checked writes to a remote store: rehearse on a local copy of what the update can
touch, validate, then send the update with the default-graph sync and the version bump.

The rules are kg.store.writes' (only violations the write introduces block it; a refused write
changes nothing; one writer per process, and a writer that waits more than KG_WRITE_WAIT for
the one before it gets WritesBusy, 503); what differs is where the data comes from:
1. the update's scope (kg.store.update_scope) names the graphs it can read or write; those
   that exist are fetched over the Graph Store protocol (all named graphs when the update
   uses a graph variable; the merged default graph when it touches the default graph) and
   sent as N-Quads to the rehearsal process (kg.store.rehearsal_process), which runs the
   update on an in-memory copy and returns the delta;
2. the nodes the write touches are validated as kg.store.writes.shacl_view describes: their
   statements in every named graph (one query per 200 IRIs) after the write's delta, the
   `rdf:type` of what they point to, the ontology and vocabulary graphs — fetched here,
   checked by pySHACL in the rehearsal process;
3. one update request carries the client's operations, the operations that keep the merged
   default graph in step (written for the backend: on Virtuoso it is <base>graph/default) and
   the new dataset version, so all commit together or not at all.

On Virtuoso, step 3 sends the change the rehearsal made (`replay_ops`: DELETE DATA / INSERT DATA
of its exact quads) instead of the client's operations whenever that change can be written so:
Virtuoso evaluates some updates otherwise than the standard (a USING or WITH under the
default-graph-uri a default-graph write needs, a blank node in two GRAPH blocks of one INSERT
DATA, `WITH <g> DELETE { GRAPH <h> … }`: W3C update suite). The replay is also exactly what was
validated, fresh values (NOW, RAND, UUID, BNODE) included, and it needs no default-graph-uri,
so it is one request. A blank node the backend already holds, which SPARQL has no syntax for,
is named as Virtuoso names it, `<nodeID://b123>`. Only a change with a triple term, or with
more than CHUNK statements on fresh blank nodes, goes as the client's text (always so on
Oxigraph server, where the text is evaluated as the standard says).

Why the rehearsal process: run in the server process, an update such as a cartesian COUNT ran
forever in a thread (a thread cannot be stopped), held the write lock (every later write
blocked) and the GIL. Now KG_REHEARSAL_TIMEOUT bounds steps 1–2 from the copy's arrival in
the child to the end of the SHACL check (the backend queries between them included; fetching
the copy is bounded by the HTTP time limit): past it the child is killed, UpdateTimeout (503),
nothing was sent to the backend.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import pyoxigraph as ox
import rdflib

from kg.errors import BackendUnanswered, NotFound, WritesBusy
from kg.sparql import guard
from kg.store import default_graph, literal_values, rehearsal
from kg.store.rehearsal_process import REHEARSER
from kg.store.update_scope import Scope
from kg.store.writes import (
    RETRY_AFTER,
    GraphName,
    WriteOutcome,
    _graph_label,
    _shapes_payload,
)

if TYPE_CHECKING:
    from kg.store.remote import RemoteStore

Triple = tuple[Any, Any, Any]


@contextlib.contextmanager
def writer(store: RemoteStore) -> Iterator[None]:
    """The store's write lock, waited for at most KG_WRITE_WAIT (then WritesBusy, 503 with
    Retry-After, as kg.store.writes.transact): a writer never waits forever."""
    wait = store.settings.write_wait
    if not store.write_lock.acquire(timeout=wait):
        raise WritesBusy(
            f"Another write held the store for more than {wait:g} s. Nothing was changed; "
            "retry later.", retry_after=RETRY_AFTER)
    try:
        yield
    finally:
        store.write_lock.release()


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


# statements per DATA operation or VALUES block: Virtuoso 7.2's SPARQL compiler fails on
# larger ones (an INSERT DATA of ~5,500 triples: "SP030 … memory exhausted"; a VALUES of
# 10,000 rows: "SP031 … generated SQL text has exceeded 10000 lines")
CHUNK = 1_000


def _chunks(items: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


# how Virtuoso's Graph Store GET labels a blank node it holds as nodeID://b123: `_:b123`
_STORED_LABEL = re.compile(r"b[0-9]+")


def replay_ops(added: Iterable[ox.Quad], removed: Iterable[ox.Quad], stored: set[Any],
               merge: ox.NamedNode) -> str | None:
    """The change as `DELETE DATA` then `INSERT DATA` operations of at most CHUNK quads (the
    default graph written as `merge`), for Virtuoso, or None when it cannot be written so.

    A blank node the backend holds (in `stored`, the copy's, labelled `_:b123` as Virtuoso's
    Graph Store GET writes its `nodeID://b123`) is written `<nodeID://b123>`, Virtuoso's name
    for that very node; a fresh one keeps its label, and every added statement with a fresh
    node goes in one INSERT DATA, so the node is one node across graphs. None for a triple
    term, a stored blank node labelled otherwise, or more than CHUNK statements with fresh
    blank nodes."""
    added, removed = list(added), list(removed)

    def term(t: Any) -> str | None:
        if isinstance(t, ox.Triple):
            return None
        if isinstance(t, ox.BlankNode) and t in stored:
            return f"<nodeID://{t.value}>" if _STORED_LABEL.fullmatch(t.value) else None
        return str(t)

    def fresh(q: ox.Quad) -> bool:
        return any(isinstance(t, ox.BlankNode) and t not in stored
                   for t in (q.subject, q.object))

    lines: dict[ox.Quad, str] = {}
    for q in added + removed:
        s, o = term(q.subject), term(q.object)
        if s is None or o is None:
            return None
        lines[q] = f"{s} {q.predicate} {o} ."
    blank = [q for q in added if fresh(q)]
    if len(blank) > CHUNK:
        return None

    def block(quads: list[ox.Quad]) -> str:
        graphs: dict[str, list[str]] = {}
        for q in quads:
            graph = merge if isinstance(q.graph_name, ox.DefaultGraph) else q.graph_name
            graphs.setdefault(str(graph), []).append(lines[q])
        return " ".join(f"GRAPH {g} {{ {' '.join(ts)} }}" for g, ts in sorted(graphs.items()))

    def key(q: ox.Quad) -> tuple[str, str]:
        return (str(q.graph_name), lines[q])

    # one DELETE DATA per graph: in one with several GRAPH blocks Virtuoso 7.2 deleted no
    # language-tagged literal (`DELETE DATA { GRAPH <a> { :s :p "x" } GRAPH <b> { :s :p
    # "y"@en } }` left "y"@en in <b>)
    by_graph: dict[str, list[ox.Quad]] = {}
    for q in sorted(removed, key=key):
        by_graph.setdefault(key(q)[0], []).append(q)
    ops = [f"DELETE DATA {{ {block(part)} }}"
           for _, quads in sorted(by_graph.items()) for part in _chunks(quads)]
    ops += [f"INSERT DATA {{ {block(part)} }}"
            for part in _chunks(sorted((q for q in added if not fresh(q)), key=key))]
    if blank:
        ops.append(f"INSERT DATA {{ {block(sorted(blank, key=key))} }}")
    return " ;\n".join(ops)


def blank_nodes(quads: Iterable[ox.Quad]) -> set[ox.BlankNode]:
    return {t for q in quads for t in (q.subject, q.object) if isinstance(t, ox.BlankNode)}


def _ntriples(triples: Iterable[Triple]) -> bytes:
    return ox.serialize([ox.Triple(*t) for t in triples], format=ox.RdfFormat.N_TRIPLES) or b""


def _statements(described: list[ox.Quad], added: set[ox.Quad], removed: set[ox.Quad],
                nodes: set[ox.NamedNode]) -> set[Triple]:
    """The statements about `nodes` in the backend's named graphs after the write's delta
    (the merge is the union of the named graphs)."""
    quads = (set(described) - removed) | {q for q in added if q.subject in nodes}
    return {(q.subject, q.predicate, q.object) for q in quads
            if isinstance(q.graph_name, ox.NamedNode)}


def _pointed(statements: set[Triple], nodes: set[ox.NamedNode]) -> set[ox.NamedNode]:
    return {o for _, _, o in statements if isinstance(o, ox.NamedNode)} - nodes


def _check_shapes(store: RemoteStore, shapes: rdflib.Graph, added: set[ox.Quad],
                  removed: set[ox.Quad], context_graphs: list[GraphName], deadline: float,
                  limit: float) -> None:
    """kg.store.writes.shacl_view of the touched nodes after and before the write, fetched
    from the backend here and judged by pySHACL in the rehearsal process by `deadline`."""
    context = {(q.subject, q.predicate, q.object) for q in store.context_quads(context_graphs)}
    nodes = {q.subject for q in added | removed if isinstance(q.subject, ox.NamedNode)}
    described = store.describe(nodes)
    after = _statements(described, added, removed, nodes)
    before = _statements(described, set(), set(), nodes)
    pointed_after, pointed_before = _pointed(after, nodes), _pointed(before, nodes)
    types = [(q.subject, q.predicate, q.object)
             for q in store.types_of(pointed_after | pointed_before, set())]
    after |= {t for t in types if t[0] in pointed_after}
    before |= {t for t in types if t[0] in pointed_before}
    digest, shapes_text = _shapes_payload(shapes)
    assert digest is not None and shapes_text is not None
    job = rehearsal.ShapesJob(after=_ntriples(after), before=_ntriples(before),
                              context=_ntriples(context), shapes_digest=digest,
                              shapes_ntriples=shapes_text)
    REHEARSER.check_shapes(job, deadline - time.monotonic(), limit)


def _still_held(store: RemoteStore, added: set[ox.Quad],
                removed: set[ox.Quad]) -> set[ox.Triple]:
    """Of the statements leaving named graphs, those some named graph holds after the update:
    the backend's statements about their subjects in every named graph (fetched by subject
    IRI, the only VALUES Virtuoso evaluates reliably here), minus what the update removes,
    plus what it adds (default_graph.sync_update's `still_held`)."""
    subjects = {q.subject for q in removed
                if isinstance(q.graph_name, ox.NamedNode) and isinstance(q.subject, ox.NamedNode)}
    if not subjects:
        return set()
    after = (set(store.describe(subjects)) - removed) | {
        q for q in added if isinstance(q.graph_name, ox.NamedNode)}
    held = {q.triple for q in after if q.graph_name not in (store.merge_graph, store.meta_graph)}
    # Virtuoso keeps literals of equal value as one row (kg.store.literal_values): a statement
    # whose value another still-held statement shares must not be deleted from the merge, or
    # DELETE DATA would take that one too
    values = {(t.subject, t.predicate, key) for t in held if isinstance(t.object, ox.Literal)
              and (key := literal_values.merge_key(t.object)) is not None}
    return held | {q.triple for q in removed if isinstance(q.object, ox.Literal)
                   and (q.subject, q.predicate, literal_values.merge_key(q.object)) in values}


def _reads_or_writes_default(text: str, scope: Scope, delta: set[ox.Quad]) -> bool:
    """Whether the update needs the merge as its default graph on Virtuoso: it changed the
    default graph, or reads it without a USING or WITH clause of its own (Virtuoso's
    default-graph-uri overrides both: the WHERE would see the merge, not the USING or WITH
    graph; W3C update suite, insert-where-03)."""
    if any(isinstance(q.graph_name, ox.DefaultGraph) for q in delta):
        return True
    own_dataset = any(t.kind == "word" and t.text.upper() in ("USING", "WITH")
                      for t in guard.tokenize(guard.decode_escapes(text)))
    return scope.default and not own_dataset


def transact(
    store: RemoteStore, text: str, *, base_iri: str, shapes: rdflib.Graph | None,
    context_graphs: list[GraphName], probe: GraphName | None, must_exist: bool, scope: Scope,
) -> WriteOutcome:
    """Rehearse and validate `text` in the rehearsal process within KG_REHEARSAL_TIMEOUT, then
    send it (see the module doc); the caller holds `writer(store)`."""
    existed = True
    if isinstance(probe, ox.NamedNode):
        existed = store.contains_graph(probe)
        if must_exist and not existed:
            raise NotFound(f"No graph <{probe.value}> in the store.")
    before_quads, before_graphs = _fetch(store, scope)
    stored = blank_nodes(before_quads) if store.merge_graph is not None else set()
    job = rehearsal.CopyJob(quads=rehearsal.nquads(before_quads),
                            graphs=sorted(g.value for g in before_graphs), text=text,
                            base_iri=base_iri)
    del before_quads
    limit = store.settings.rehearsal_timeout
    REHEARSER.ready()  # the child's start-up is not the update's time
    deadline = time.monotonic() + limit
    delta = REHEARSER.run_copy(job, limit, limit)
    added = set(rehearsal.parse_quads(delta.added))
    removed = set(rehearsal.parse_quads(delta.removed))
    after_graphs = {ox.NamedNode(g) for g in delta.graphs}
    affected: set[GraphName] = {q.graph_name for q in added | removed}
    affected |= before_graphs ^ after_graphs
    if not affected:
        return WriteOutcome(existed=existed)

    if shapes is not None and (added or removed):
        _check_shapes(store, shapes, added, removed, context_graphs, deadline, limit)

    version = store.next_version()
    merge = store.merge_graph
    # no quad changed (a graph created or dropped empty): the client's text, made SILENT
    replay = (replay_ops(added, removed, stored, merge)
              if merge is not None and (added or removed) else None)
    kept = {q.triple for q in rehearsal.parse_quads(delta.kept)}
    held = _still_held(store, added, removed) if merge is not None else None
    parts = [replay if replay is not None else text,
             default_graph.sync_update(added, removed, merge, CHUNK, keep=kept,
                                       still_held=held),
             store.version_ops(version)]
    reached = {g.value for g in before_graphs | after_graphs}  # for DROP ALL on Virtuoso
    try:
        if replay is None and merge is not None and _reads_or_writes_default(
                text, scope, added | removed):
            # Virtuoso: a write to the (merge) default graph needs default-graph-uri, under
            # which GRAPH templates misbehave: two requests, so not atomic (README, Backends)
            store.update(text, default_graph=True, graphs=reached)
            parts = parts[1:]
        store.update("\n;\n".join(p for p in parts if p.strip()), graphs=reached)
    except BackendUnanswered as exc:
        raise BackendUnanswered(
            f"{exc.detail}. The update had been sent, so the backend may still apply it: read "
            "the data before sending it again.") from exc
    store._version = version
    return WriteOutcome(
        added=len(added), removed=len(removed),
        graphs=sorted(_graph_label(g) for g in affected), existed=existed)
