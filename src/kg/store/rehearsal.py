"""The rehearsal of a write: run it on a throwaway checkpoint of the store, work out what it
changes, and SHACL-check the nodes it touches (kg.store.writes runs this in a child process).

Why a checkpoint and a child process: the rehearsal used to copy the graphs an update can touch
into an in-memory store and diff them in Python, in the server process. For a write to the
default graph (the merge of everything, ~190k quads on the real corpus) that was seconds of
Python holding the GIL, which stalled the event loop: queued reads overran their time limit
and keep-alive connections were reset. Now the live store is checkpointed with `Store.backup`
(hard links, milliseconds), the child opens the checkpoint read-write (RocksDB never modifies a
file it has written, so the live store is unaffected) and runs the update there; only the
graphs the update can touch (kg.store.update_scope) are diffed. The server process only waits
on a pipe.

The checkpoint holds exactly the committed state (the writer lock is held from checkpoint to
commit), so the text returned — the client's update plus the default-graph sync — does on the
live store exactly what it did here, apart from fresh values (NOW, RAND, UUID, BNODE).

A remote store's write (kg.store.remote_writes) uses the same child with two more jobs, so it
has the same time limit and keeps the server process free: `CopyJob` runs the update on an
in-memory copy of the graphs it can touch (fetched from the backend by the parent, sent as
N-Quads) and returns the delta; `ShapesJob` runs pySHACL on the views before/after the write
the parent has fetched. Blank node labels cross the pipe unchanged (N-Quads parsed without
renaming; `Store.load` would rename them), so the delta names the backend's blank nodes.
"""

from __future__ import annotations

import hashlib
import os
import resource
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import pyoxigraph as ox
import rdflib

from kg.errors import KgError, ShapeViolation
from kg.sparql import guard
from kg.store import default_graph
from kg.store.update_scope import update_scope

MEMORY_LIMIT = 4 << 30  # RLIMIT_DATA of the child: a runaway rehearsal fails alone


@dataclass
class Plan:
    """What the rehearsal found: the text to commit and what it changes."""

    text: str = ""  # the client's update plus the default-graph sync; "" means no change
    added: int = 0
    removed: int = 0
    graphs: list[str] = field(default_factory=list)  # "" is the default graph


@dataclass
class Job:
    checkpoint: str
    text: str
    base_iri: str
    shapes_digest: str | None  # the child keeps parsed shapes by digest
    shapes_ntriples: str | None
    context_graphs: list[str]


@dataclass
class CopyJob:
    """A remote store's update, rehearsed on a copy of what it can touch."""

    quads: bytes  # N-Quads, blank node labels as the backend gave them
    graphs: list[str]  # the named graphs that exist among them (some may be empty)
    text: str
    base_iri: str


@dataclass
class Delta:
    """What a CopyJob's update changed on the copy (N-Quads, labels kept)."""

    added: bytes = b""
    removed: bytes = b""
    graphs: list[str] = field(default_factory=list)  # the copy's named graphs afterwards
    kept: bytes = b""  # removed statements it wrote into the default graph (written_to_default)


@dataclass
class ShapesJob:
    """A remote store's SHACL check: kg.store.writes.shacl_view's triples (N-Triples) after
    and before the write; refused (ShapeViolation) if the write introduces violations."""

    after: bytes
    before: bytes
    context: bytes  # ontology and vocabulary
    shapes_digest: str
    shapes_ntriples: str


def _diffed(store: ox.Store, graphs: list[Any] | None) -> set[ox.Quad]:
    if graphs is None:
        return set(store.quads_for_pattern(None, None, None, None))
    return {q for g in graphs for q in store.quads_for_pattern(None, None, None, g)}


def data_quads(text: str, base_iri: str) -> set[ox.Quad] | None:
    """Every quad an update made only of INSERT DATA / DELETE DATA operations names — the only
    quads it can add or remove — or None for any other update (and for blank nodes, whose
    labels are fresh at each run, or escapes, which the token check below does not read).

    Found by running the update with every DELETE turned into INSERT (same length, so no
    position moves) on an empty in-memory store. A write of a few statements to the default
    graph is then diffed over those statements, not over the ~190k quads of that graph."""
    if "\\u" in text or "\\U" in text:
        return None
    tokens = list(guard.tokenize(text))
    depth, deletes = 0, []
    for i, tok in enumerate(tokens):
        if tok.text == "{":
            depth += 1
        elif tok.text == "}":
            depth -= 1
        elif depth == 0:
            word = tok.text.upper() if tok.kind == "word" else ""
            if word in ("INSERT", "DELETE"):
                following = tokens[i + 1] if i + 1 < len(tokens) else None
                if following is None or following.text.upper() != "DATA":
                    return None
                if word == "DELETE":
                    deletes.append(tok.pos)
            elif not (word in ("DATA", "PREFIX", "BASE") or tok.kind in ("iri", "pname")
                      or tok.text == ";"):
                return None
    inserted = list(text)
    for pos in deletes:
        inserted[pos:pos + 6] = "INSERT"
    scratch = ox.Store()
    try:
        scratch.update("".join(inserted), base_iri=base_iri)
    except (SyntaxError, RuntimeError, ValueError, OSError):
        return None  # the real run reports the error
    quads = set(scratch)
    if any(isinstance(t, ox.BlankNode | ox.Triple) for q in quads for t in (q.subject, q.object)):
        return None
    return quads


def written_to_default(before: Iterable[ox.Quad], graphs: Iterable[Any], text: str,
                       base_iri: str, removed: Iterable[ox.Quad],
                       in_default_after: Callable[[ox.Triple], bool]) -> set[ox.Triple]:
    """The statements the update took out of named graphs and itself wrote into the default
    graph (MOVE/ADD/COPY … TO DEFAULT, an INSERT there): the default-graph sync must keep them,
    or `MOVE <g> TO DEFAULT` ends with them in no graph at all.

    Told from what is in the default graph only as the merge of the graph they left by running
    the update again, on an in-memory copy of the state before (`before`: every quad the
    update can read or change; `graphs`: the named graphs then) with those statements taken
    out of the default graph: what is back there afterwards, the update wrote."""
    if not _may_write(text):  # only deletes: it wrote nothing anywhere (no copy to make)
        return set()
    default = ox.DefaultGraph()
    candidates = {q.triple for q in removed
                  if isinstance(q.graph_name, ox.NamedNode) and in_default_after(q.triple)}
    if not candidates:
        return set()
    from kg.store import writes

    scratch = ox.Store()
    scratch.extend(q for q in before
                   if not (isinstance(q.graph_name, ox.DefaultGraph) and q.triple in candidates))
    for graph in graphs:
        if isinstance(graph, ox.NamedNode):
            scratch.add_graph(graph)
    writes._run(scratch, text, base_iri)
    return {t for t in candidates
            if ox.Quad(t.subject, t.predicate, t.object, default) in scratch}


WRITING = {"INSERT", "ADD", "MOVE", "COPY", "LOAD"}


def _may_write(text: str) -> bool:
    """Whether an update has an operation that adds statements (a DELETE WHERE over every
    graph then skips written_to_default's copy of the whole store)."""
    return any(tok.kind == "word" and tok.text.upper() in WRITING
               for tok in guard.tokenize(guard.decode_escapes(text)))


def _in_default(store: ox.Store, triple: ox.Triple) -> bool:
    return any(store.quads_for_pattern(triple.subject, triple.predicate, triple.object,
                                       ox.DefaultGraph()))


def rehearse(store: ox.Store, text: str, base_iri: str, shapes: rdflib.Graph | None,
             context_graphs: list[str]) -> Plan:
    """Run `text` (then its default-graph sync) on `store`, a throwaway checkpoint; raise the
    client's error (syntax, evaluation, ShapeViolation) or return the plan to commit."""
    from kg.store import writes  # the SHACL helpers are shared with the remote store

    candidates = data_quads(text, base_iri)
    if candidates is not None:  # INSERT/DELETE DATA only: just these quads can change
        default = ox.DefaultGraph()
        candidates |= {ox.Quad(q.subject, q.predicate, q.object, default) for q in candidates}
        covers_default = True

        def state() -> set[ox.Quad]:
            return {q for q in candidates if q in store}
    else:
        scope = update_scope(text, base_iri)
        diffed: list[Any] | None = None  # None: every graph
        if not scope.all_named:
            diffed = [ox.NamedNode(iri) for iri in sorted(scope.graphs)]
            if scope.default:
                diffed.append(ox.DefaultGraph())
        covers_default = diffed is None or scope.default

        def state() -> set[ox.Quad]:
            return _diffed(store, diffed)

    graphs_before = set(store.named_graphs())
    before = state()
    writes._run(store, text, base_iri)
    after = state()
    named_added = {q for q in after - before if isinstance(q.graph_name, ox.NamedNode)}
    named_removed = {q for q in before - after if isinstance(q.graph_name, ox.NamedNode)}
    kept: set[ox.Triple] = set()
    if named_removed and covers_default:  # it may have written them into the default graph
        kept = written_to_default(before, graphs_before, text, base_iri, named_removed,
                                  lambda t: _in_default(store, t))
    sync = default_graph.sync_update(named_added, named_removed, keep=kept)
    plus: set[ox.Quad] = set()
    minus: set[ox.Quad] = set()
    if sync:
        if not covers_default:
            # the default graph is not diffed: compare the delta's triples there, before/after
            triples = {q.triple for q in named_added | named_removed}
            held = {t for t in triples if _in_default(store, t)}
            writes._run(store, sync, base_iri)
            now = {t for t in triples if _in_default(store, t)}
            default = ox.DefaultGraph()
            plus = {ox.Quad(t.subject, t.predicate, t.object, default) for t in now - held}
            minus = {ox.Quad(t.subject, t.predicate, t.object, default) for t in held - now}
        else:
            writes._run(store, sync, base_iri)
            after = state()
        text = f"{text}\n;\n{sync}"
    added, removed = (after - before) | plus, (before - after) | minus
    affected: set[Any] = {q.graph_name for q in added | removed}
    affected |= graphs_before ^ set(store.named_graphs())
    if not affected:
        return Plan()
    if shapes is not None and (added or removed):
        _validate(store, added, removed, shapes, context_graphs)
    return Plan(text=text, added=len(added), removed=len(removed),
                graphs=sorted(writes._graph_label(g) for g in affected))


def _validate(store: ox.Store, added: set[ox.Quad], removed: set[ox.Quad],
              shapes: rdflib.Graph, context_graphs: list[str]) -> None:
    """Refuse the write if it introduces violations at the nodes it touches (judged in the
    merged default graph; the store holds the state *after* the write)."""
    from kg.store import writes

    default = ox.DefaultGraph()
    plus = {q for q in added if q.graph_name == default}
    minus = {q for q in removed if q.graph_name == default}
    nodes = {q.subject for q in added | removed}
    context = [ox.NamedNode(iri) for iri in context_graphs]
    after = writes._violations(writes._described(store, nodes, set(), set(), context), shapes)
    if not after:
        return
    # the state before: what the write added taken away, what it removed put back
    before = writes._violations(writes._described(store, nodes, minus, plus, context), shapes)
    _refuse_new(after, before)


def _refuse_new(after: list[dict[str, str]], before: list[dict[str, str]]) -> None:
    """ShapeViolation if `after` holds violations `before` did not (counted, not just seen)."""
    from kg.store import writes

    new = Counter(map(writes._key, after)) - Counter(map(writes._key, before))
    if new:
        blocking = [r for r in after if writes._key(r) in new][: writes.MAX_REPORTED]
        raise ShapeViolation(writes._summary(blocking), violations=blocking,
                             violation_count=sum(new.values()))


def shapes_payload(shapes: rdflib.Graph | None) -> tuple[str | None, str | None]:
    """(digest, N-Triples) of the shapes, to send to the child (which parses them once)."""
    if shapes is None:
        return None, None
    text = shapes.serialize(format="nt")
    return hashlib.sha256(text.encode()).hexdigest(), text


# --- the child process ----------------------------------------------------------------------


def main(conn: Connection) -> None:
    """Serve jobs until the pipe closes; reply ('ok', Plan | Delta | None) | ('error', class
    name, detail, extra) | ('crash', repr)."""
    resource.setrlimit(resource.RLIMIT_DATA, (MEMORY_LIMIT, MEMORY_LIMIT))
    import pyshacl  # noqa: F401  (slow to import: once, before the first job)

    shapes_cache: dict[str, rdflib.Graph] = {}
    conn.send(("ready", os.getpid()))
    while True:
        try:
            job: Job | CopyJob | ShapesJob | None = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        reply = _reply(job, shapes_cache)
        # the checkpoint is closed now (nothing refers to it any more): the parent removes it
        conn.send(reply)


def _reply(job: Job | CopyJob | ShapesJob,
           shapes_cache: dict[str, rdflib.Graph]) -> tuple[Any, ...]:
    """The job's outcome as plain data; on return no frame or traceback holds the store."""
    try:
        if isinstance(job, CopyJob):
            return ("ok", run_copy(job))
        if isinstance(job, ShapesJob):
            check_shapes(job, shapes_cache)
            return ("ok", None)
        return ("ok", run_job(job, shapes_cache))
    except KgError as exc:
        return ("error", type(exc).__name__, exc.detail, exc.extra)
    except Exception as exc:  # a bug: reported to the parent, which answers 500
        return ("crash", repr(exc))


def _shapes(digest: str | None, ntriples: str | None,
            cache: dict[str, rdflib.Graph]) -> rdflib.Graph | None:
    """The shapes graph, parsed once per digest."""
    if digest is None:
        return None
    shapes = cache.get(digest)
    if shapes is None:
        shapes = rdflib.Graph().parse(data=ntriples, format="nt")
        cache.clear()
        cache[digest] = shapes
    return shapes


def run_job(job: Job, shapes_cache: dict[str, rdflib.Graph]) -> Plan:
    shapes = _shapes(job.shapes_digest, job.shapes_ntriples, shapes_cache)
    return rehearse(ox.Store(job.checkpoint), job.text, job.base_iri, shapes,
                    job.context_graphs)


def parse_quads(data: bytes) -> list[ox.Quad]:
    """N-Quads (or N-Triples) with their blank node labels kept."""
    return list(ox.parse(data, format=ox.RdfFormat.N_QUADS, rename_blank_nodes=False))


def nquads(quads: Iterable[ox.Quad]) -> bytes:
    return ox.serialize(quads, format=ox.RdfFormat.N_QUADS) or b""


def run_copy(job: CopyJob) -> Delta:
    """Run the update on an in-memory copy; the delta of the store's own before/after (so a
    literal the store canonicalises, e.g. "01"^^xsd:integer, is not seen as changed)."""
    from kg.store import writes

    store = ox.Store()
    store.extend(parse_quads(job.quads))  # not Store.load: it renames blank nodes
    for graph in job.graphs:
        store.add_graph(ox.NamedNode(graph))
    before = set(store)
    graphs_before = list(store.named_graphs())
    writes._run(store, job.text, job.base_iri)
    after = set(store)
    default = ox.DefaultGraph()
    kept = written_to_default(
        before, graphs_before, job.text, job.base_iri, before - after,
        lambda t: ox.Quad(t.subject, t.predicate, t.object, default) in after)
    return Delta(added=nquads(after - before), removed=nquads(before - after),
                 graphs=sorted(g.value for g in store.named_graphs()
                               if isinstance(g, ox.NamedNode)),
                 kept=nquads(ox.Quad(t.subject, t.predicate, t.object, default) for t in kept))


def check_shapes(job: ShapesJob, shapes_cache: dict[str, rdflib.Graph]) -> None:
    """kg.store.writes' rule on views the parent fetched: only new violations refuse."""
    from kg.store import writes

    shapes = _shapes(job.shapes_digest, job.shapes_ntriples, shapes_cache)
    if shapes is None:
        return

    def triples(data: bytes) -> list[tuple[Any, Any, Any]]:
        return [(q.subject, q.predicate, q.object) for q in parse_quads(data)]

    context = triples(job.context)
    after = writes._violations(writes.shacl_view(triples(job.after), (), context), shapes)
    if after:
        before = writes._violations(writes.shacl_view(triples(job.before), (), context), shapes)
        _refuse_new(after, before)
