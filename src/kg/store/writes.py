"""Writes as transactions: rehearse, validate with SHACL, then commit, so a refused write changes
nothing.

How a write (a SPARQL Update, or the update text a Graph Store request is turned into) runs:

0. Admission (`commit`, on the event loop): at most KG_WRITE_QUEUE (default 8) writes run or
   wait at once; one more is refused at once with WritesBusy (503, Retry-After), and a write
   that waits more than KG_WRITE_WAIT (60 s) for the writer lock likewise — never a client
   time-out.
   Then everything below runs in a thread under `EmbeddedStore.write_lock` (one writer;
   pyoxigraph does not detect every write-write conflict).
1. LOAD and SERVICE are refused unless allow-listed (kg.sparql.guard's tokenizer, also used
   by the query route), before anything executes: the rehearsal would fetch the URL. A query
   sent as an update is a 400 there too.
2. Rehearsal (kg.store.rehearsal, in a child process, kg.store.rehearsal_process): the live
   store is checkpointed with `Store.backup` (hard links, milliseconds) and the child runs the
   update on the checkpoint, diffing only the graphs it can read or write
   (kg.store.update_scope; the default graph when it touches it; everything for a variable
   graph). Nothing of it runs in the server process, so the event loop never waits for the
   GIL, and a rehearsal that overruns KG_REHEARSAL_TIMEOUT (120 s) is stopped by killing the
   child (UpdateTimeout, 503). A syntax error is a 400 with pyoxigraph's message and position; an
   evaluation error (e.g. CREATE of an existing graph) a 400 too.
3. The difference before/after gives the affected graphs and the nodes the write touches
   (subjects of added or removed quads), the default-graph sync included. pySHACL checks those
   nodes as they stand in the merged default graph after the write (so a statement added in a
   graph of its own is judged with the entity's label and types asserted elsewhere), with the
   types of the nodes they point to and the ontology and vocabulary graphs (so
   `sh:targetClass` sees subclasses). Shapes are every `*.ttl` in `settings.shapes_dir`,
   parsed with the base IRI; no shapes means no check. A constraint that spans nodes the write
   did not touch is not re-checked.
4. Only violations the write introduces block it (result severity sh:Violation, counted by
   focus node, path, value, shape and constraint, after versus before): a graph that already
   violated a shape stays editable, and a write cannot make it worse. A blocked write raises
   ShapeViolation (422) with the results.
5. Commit: the rehearsed text (the client's update plus the sync) runs on the on-disk store;
   `Store.update` is atomic and releases the GIL. Then `store.bump_version()` and
   `await executor.refresh()` give readers a new snapshot (retried; a refresh failure after
   the commit is logged, never reported to the writer as a failure).

Limits: a write that touches the default graph (or a variable graph) is diffed over that whole
graph in the child (~190k quads on the real corpus: seconds of the child's CPU, none of the
server's). Functions with fresh values (NOW, RAND, UUID, STRUUID, BNODE, blank nodes in
templates) are evaluated twice, in the rehearsal and at commit, so committed values can differ
from the validated ones (shapes rarely constrain them). The stored default graph is the merge
of the named graphs (see kg.store.default_graph): a write to a named graph is carried into it
by operations appended to the same atomic update; a write to the default graph itself stays
there only, and stays also when its statements left a named graph in the same update
(kg.store.rehearsal.written_to_default: MOVE <g> TO DEFAULT lost them before).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyoxigraph as ox
import rdflib
from rdflib.namespace import RDF, SH
from starlette.concurrency import run_in_threadpool

from kg.config import Settings
from kg.errors import ClientError, NotFound, UpdateSyntaxError, WritesBusy
from kg.store import rehearsal, rehearsal_process, update_text
from kg.store.embedded import EmbeddedStore

log = logging.getLogger("kg.writes")

RDF_TYPE = ox.NamedNode(str(RDF.type))
MAX_REPORTED = 50
RETRY_AFTER = 2  # seconds, suggested to a refused writer

GraphName = ox.NamedNode | ox.DefaultGraph


@dataclass
class WriteOutcome:
    """What a committed (or empty) write did."""

    added: int = 0
    removed: int = 0
    graphs: list[str] = field(default_factory=list)  # affected graphs; "" is the default graph
    existed: bool = True  # whether the graph a Graph Store request names existed before

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.graphs)


# --- shapes ---------------------------------------------------------------------------------

_shapes_cache: dict[tuple[str, str], tuple[tuple[Any, ...], rdflib.Graph | None]] = {}


def load_shapes(shapes_dir: Path, base_iri: str) -> rdflib.Graph | None:
    """Every *.ttl in shapes_dir as one rdflib Graph (None when there are none); cached until a
    file changes."""
    files = sorted(Path(shapes_dir).glob("*.ttl")) if Path(shapes_dir).is_dir() else []
    signature = tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    key = (str(shapes_dir), base_iri)
    cached = _shapes_cache.get(key)
    if cached and cached[0] == signature:
        return cached[1]
    graph: rdflib.Graph | None = None
    if files:
        graph = rdflib.Graph()
        for file in files:
            graph.parse(file, format="turtle", publicID=base_iri)
    _shapes_cache[key] = (signature, graph)
    return graph


# --- conversion and validation --------------------------------------------------------------


def _term(term: Any) -> rdflib.term.Node:
    if isinstance(term, ox.NamedNode):
        return rdflib.URIRef(term.value)
    if isinstance(term, ox.BlankNode):
        return rdflib.BNode(term.value)
    if isinstance(term, ox.Literal):
        if term.language:
            return rdflib.Literal(term.value, lang=term.language)
        return rdflib.Literal(term.value, datatype=rdflib.URIRef(term.datatype.value))
    raise ClientError(f"unsupported RDF term in a write: {term}")


def shacl_view(
    statements: Iterable[tuple[Any, Any, Any]],
    pointed_types: Iterable[tuple[Any, Any, Any]],
    context: Iterable[tuple[Any, Any, Any]],
) -> rdflib.Graph:
    """What SHACL sees of a write: every statement about the touched nodes in the merged view
    after the write, the types of what they point to, and the ontology/vocabulary (so
    `sh:targetClass` sees subclasses). Judging the touched nodes against the merge — not one
    named graph alone — means a note added in a graph of its own is checked together with the
    entity's label and types from the documents. Shared by the embedded and remote stores."""
    data = rdflib.Graph()
    for subject, predicate, obj in (*statements, *pointed_types, *context):
        data.add((_term(subject), _term(predicate), _term(obj)))
    return data


def _triples(quads: Iterable[ox.Quad]) -> set[tuple[Any, Any, Any]]:
    return {(q.subject, q.predicate, q.object) for q in quads}


def _described(
    raw: ox.Store,
    nodes: set[Any],
    plus: set[ox.Quad],
    minus: set[ox.Quad],
    context_graphs: Iterable[GraphName],
) -> rdflib.Graph:
    """shacl_view from the embedded store's merged default graph, after `plus`/`minus`."""
    default = ox.DefaultGraph()
    statements = _triples(q for n in nodes for q in raw.quads_for_pattern(n, None, None, default))
    statements = (statements - _triples(minus)) | _triples(q for q in plus if q.subject in nodes)
    pointed = {o for _, _, o in statements if isinstance(o, ox.NamedNode | ox.BlankNode)} - nodes
    types = _triples(q for n in pointed for q in raw.quads_for_pattern(n, RDF_TYPE, None, default))
    context = _triples(
        q for g in context_graphs for q in raw.quads_for_pattern(None, None, None, g)
    )
    return shacl_view(statements, types, context)


def _violations(data: rdflib.Graph, shapes: rdflib.Graph) -> list[dict[str, str]]:
    """pySHACL's results of severity sh:Violation, as plain dicts. Graph objects only: given a
    string, pySHACL would fetch it as a URL."""
    import pyshacl  # imported lazily: slow to import, needed only when shapes exist

    _conforms, report, _text = pyshacl.validate(
        data, shacl_graph=shapes, inference="none", advanced=True, allow_warnings=True
    )
    results = []
    for result in report.subjects(RDF.type, SH.ValidationResult):
        if report.value(result, SH.resultSeverity) != SH.Violation:
            continue
        entry = {}
        for key, prop in (
            ("focusNode", SH.focusNode),
            ("resultPath", SH.resultPath),
            ("value", SH.value),
            ("sourceShape", SH.sourceShape),
            ("sourceConstraintComponent", SH.sourceConstraintComponent),
            ("message", SH.resultMessage),
        ):
            value = report.value(result, prop)
            if value is not None:
                entry[key] = str(value) if key == "message" else value.n3()
        results.append(entry)
    return results


def _key(result: dict[str, str]) -> tuple[str, ...]:
    return tuple(result.get(k, "") for k in ("focusNode", "resultPath", "value", "sourceShape",
                                              "sourceConstraintComponent"))


def _summary(results: list[dict[str, str]]) -> str:
    shown = "; ".join(
        f"{r.get('focusNode', '?')} {r.get('resultPath', '')}: {r.get('message', 'violation')}"
        for r in results[:3]
    )
    more = f" (and {len(results) - 3} more)" if len(results) > 3 else ""
    return f"The write would violate {len(results)} SHACL constraint(s): {shown}{more}. Nothing " \
        "was changed."


# --- the transaction ------------------------------------------------------------------------


def _graph_label(graph: GraphName) -> str:
    return graph.value if isinstance(graph, ox.NamedNode) else ""


def _run(store: ox.Store, text: str, base_iri: str) -> None:
    try:
        store.update(text, base_iri=base_iri)
    except SyntaxError as exc:
        message = str(exc)
        raise UpdateSyntaxError(message, position=_position(message)) from exc
    except (RuntimeError, ValueError, OSError) as exc:
        raise ClientError(f"The update failed: {exc}") from exc


def _position(message: str) -> dict[str, int] | None:
    """'error at 1:10: ...' → {'line': 1, 'column': 10}."""
    match = re.search(r"at (\d+):(\d+)", message)
    return {"line": int(match[1]), "column": int(match[2])} if match else None


def transact(
    store: EmbeddedStore,
    text: str,
    *,
    base_iri: str,
    shapes: rdflib.Graph | None,
    context_graphs: Iterable[GraphName] = (),
    probe: GraphName | None = None,
    must_exist: bool = False,
) -> WriteOutcome:
    """Rehearse `text` on a checkpoint in the rehearsal process, validate the nodes it
    touches, then commit it with the default-graph sync (see the module doc).

    `probe` names a graph whose prior existence is reported (Graph Store 201 vs 204);
    with `must_exist`, a missing probe graph is a 404 and nothing runs. A writer that waits
    longer than `store.write_wait` for the one before it gets WritesBusy (503, Retry-After).
    """
    if not store.write_lock.acquire(timeout=store.write_wait):
        raise WritesBusy(
            f"Another write held the store for more than {store.write_wait:g} s. Nothing was "
            "changed; retry later.", retry_after=RETRY_AFTER)
    try:
        raw = store.raw
        existed = True
        if isinstance(probe, ox.NamedNode):
            existed = raw.contains_named_graph(probe)
            if must_exist and not existed:
                raise NotFound(f"No graph <{probe.value}> in the store.")
        digest, shapes_text = _shapes_payload(shapes)
        with tempfile.TemporaryDirectory(prefix=f"{os.getpid()}-", dir=_rehearsals(store)) as tmp:
            checkpoint = Path(tmp) / "store"
            raw.flush()
            raw.backup(str(checkpoint))  # hard links: milliseconds, GIL released
            plan = rehearsal_process.REHEARSER.run(
                rehearsal.Job(
                    checkpoint=str(checkpoint), text=text, base_iri=base_iri,
                    shapes_digest=digest, shapes_ntriples=shapes_text,
                    context_graphs=[g.value for g in context_graphs
                                    if isinstance(g, ox.NamedNode)],
                ),
                store.rehearsal_timeout,
            )
        if not plan.text:
            return WriteOutcome(existed=existed)
        _run(raw, plan.text, base_iri)  # pyoxigraph releases the GIL while it runs
        raw.flush()
        return WriteOutcome(added=plan.added, removed=plan.removed, graphs=plan.graphs,
                            existed=existed)
    finally:
        store.write_lock.release()


_swept: set[Path] = set()


def _rehearsals(store: EmbeddedStore) -> Path:
    """Where checkpoints go: beside the store (same file system, so `backup` hard-links).
    Leftovers of a killed server (named by its pid) are removed on the first write."""
    root = store.scratch_dir() / "rehearsals"
    if root not in _swept:
        root.mkdir(exist_ok=True)
        for child in root.iterdir():
            pid = child.name.partition("-")[0]
            if not (pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid))):
                shutil.rmtree(child, ignore_errors=True)
        _swept.add(root)
    return root


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_payloads: dict[int, tuple[rdflib.Graph, str | None, str | None]] = {}


def _shapes_payload(shapes: rdflib.Graph | None) -> tuple[str | None, str | None]:
    """rehearsal.shapes_payload, serialised once per shapes graph (load_shapes caches it)."""
    if shapes is None:
        return None, None
    cached = _payloads.get(id(shapes))
    if cached is None or cached[0] is not shapes:
        _payloads.clear()
        cached = (shapes, *rehearsal.shapes_payload(shapes))
        _payloads[id(shapes)] = cached
    return cached[1], cached[2]


# --- entry points for the routes ------------------------------------------------------------


def check_update_text(text: str, settings: Settings) -> None:
    """Refuse LOAD/SERVICE that is not allow-listed, before any execution (the rehearsal would
    run them), with the same tokenizer-based guard the query route uses."""
    from kg.sparql import guard  # lazily: kg.sparql imports nothing from here, keep it so

    guard.check_update(text, settings.allow_service, settings.allow_load, settings.base_iri)


async def commit(
    state: Any,
    text: str,
    *,
    probe: GraphName | None = None,
    must_exist: bool = False,
    generated: bool = False,
) -> WriteOutcome:
    """Run one write transaction off the event loop, then publish it to readers.

    `generated` marks text this service wrote itself (Graph Store requests: N-Triples from
    pyoxigraph's serializer inside INSERT DATA), which needs no LOAD/SERVICE scan."""
    settings: Settings = state.settings
    if not generated:
        check_update_text(text, settings)
    pending = state.extras.get("pending_writes", 0)
    if pending >= settings.write_queue:
        raise WritesBusy(
            f"{pending} writes are already running or queued. Nothing was changed; retry "
            "later.", retry_after=RETRY_AFTER)
    state.extras["pending_writes"] = pending + 1
    try:
        return await _commit(state, text, settings, probe, must_exist)
    finally:
        state.extras["pending_writes"] -= 1


async def _commit(
    state: Any, text: str, settings: Settings, probe: GraphName | None, must_exist: bool
) -> WriteOutcome:
    shapes = load_shapes(settings.shapes_dir, settings.base_iri)
    context = [
        ox.NamedNode(f"{settings.base_iri}graph/ontology"),
        ox.NamedNode(f"{settings.base_iri}graph/vocabulary"),
    ]
    outcome = await run_in_threadpool(
        state.store.transact,  # kg.store.base.Store: embedded → transact() here; remote too
        text,
        base_iri=settings.base_iri,
        shapes=shapes,
        context_graphs=context,
        probe=probe,
        must_exist=must_exist,
    )
    if outcome.changed:
        state.store.bump_version()
        await _refresh_readers(state)
        log.info("write committed: +%d -%d in %d graph(s)", outcome.added, outcome.removed,
                 len(outcome.graphs))
    return outcome


async def _refresh_readers(state: Any, attempts: int = 3) -> None:
    """Give readers a snapshot with the write. The write is committed already, so a failure
    here must not turn into an error for the writer: retry, then log loudly."""
    for attempt in range(1, attempts + 1):
        try:
            await state.executor.refresh()
            return
        except Exception as exc:  # the executor's failure, not the client's
            log.warning("refresh after a write failed (attempt %d/%d): %r", attempt, attempts,
                        exc)
    log.error("readers were not refreshed after a committed write; they serve an older snapshot")


async def run_update(
    state: Any,
    text: str,
    using_graph_uris: Iterable[str] = (),
    using_named_graph_uris: Iterable[str] = (),
) -> WriteOutcome:
    """A SPARQL Update request: protocol dataset applied, then one transaction."""
    text = update_text.apply_protocol_dataset(text, using_graph_uris, using_named_graph_uris)
    return await commit(state, text)
