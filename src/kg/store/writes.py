"""Writes as transactions: rehearse, validate with SHACL, then commit, so a refused write changes
nothing.

How a write (a SPARQL Update, or the update text a Graph Store request is turned into) runs,
all under `EmbeddedStore.write_lock` (one writer; pyoxigraph does not detect every write-write
conflict):

1. LOAD and SERVICE are refused unless allow-listed (S1's kg.sparql.guard, then
   kg.store.update_text as a second layer), before anything executes: the rehearsal would
   fetch the URL. A query sent as an update is a 400 there too.
2. Rehearsal: the graphs the update can read or write (kg.store.update_scope, read off its
   text) are copied into an in-memory pyoxigraph store (blank node ids kept) and the update
   runs there; an update that touches the default graph (the merge of everything) or a
   variable graph is rehearsed on a copy of the whole dataset. A syntax error is a 400
   with pyoxigraph's message and position; an evaluation error (e.g. CREATE of an existing
   graph) a 400 too.
3. The difference before/after gives the affected graphs and the nodes the write touches
   (subjects of added or removed quads). pySHACL checks those nodes as they stand in the
   merged default graph after the write (so a statement added in a graph of its own is
   judged with the entity's label and types asserted elsewhere), with the types of the nodes
   they point to and the ontology and vocabulary graphs (so `sh:targetClass` sees
   subclasses). Shapes are every `*.ttl` in `settings.shapes_dir`, parsed with the base IRI;
   no shapes means no check. A constraint that spans nodes the write did not touch is not
   re-checked.
4. Only violations the write introduces block it (result severity sh:Violation, counted by
   focus node, path, value, shape and constraint, after versus before): a graph that already
   violated a shape stays editable, and a write cannot make it worse. A blocked write raises
   ShapeViolation (422) with the results.
5. Commit: the same update text runs on the on-disk store; `Store.update` is atomic. Then
   `store.bump_version()` and `await executor.refresh()` give readers a new snapshot (retried;
   a refresh failure after the commit is logged, never reported to the writer as a failure).

Limits: the rehearsal copies the dataset into memory and diffs it in Python, which is fine for
this knowledge graph (thousands to a few hundred thousand quads) but not for a store of many
millions; there the rehearsal should copy only the graphs the update can touch. Functions with
fresh values (NOW, RAND, UUID, STRUUID, BNODE, blank nodes in templates) are evaluated twice,
in the rehearsal and at commit, so committed values can differ from the validated ones (shapes
rarely constrain them). The stored default graph is the merge of the named graphs (see
kg.store.default_graph): a write to a named graph is carried into it by operations appended to
the same atomic update; a write to the default graph itself stays there only.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyoxigraph as ox
import rdflib
from rdflib.namespace import RDF, SH
from starlette.concurrency import run_in_threadpool

from kg.config import Settings
from kg.errors import ClientError, NotFound, ShapeViolation, UpdateSyntaxError
from kg.store import default_graph, update_text
from kg.store.embedded import EmbeddedStore
from kg.store.update_scope import update_scope

log = logging.getLogger("kg.writes")

RDF_TYPE = ox.NamedNode(str(RDF.type))
MAX_REPORTED = 50

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


def _rehearsal_scope(raw: ox.Store, text: str, base_iri: str) -> list[ox.NamedNode] | None:
    """The named graphs an update can read or write, when it touches neither the default
    graph nor a variable graph; None means rehearse on everything. Copying only these keeps
    a write to one graph cheap on a large store (copying ~400k quads took ~20 s)."""
    scope = update_scope(text, base_iri)
    if scope.default or scope.all_named:
        return None
    return [ox.NamedNode(iri) for iri in sorted(scope.graphs)]


def _default_delta(
    raw: ox.Store, added: set[ox.Quad], removed: set[ox.Quad], scoped: set[GraphName]
) -> tuple[set[ox.Quad], set[ox.Quad]]:
    """What the merged-default-graph sync will change, computed against the real store when
    the rehearsal held only the scoped graphs (mirrors default_graph.sync_update)."""
    default = ox.DefaultGraph()
    plus = {
        ox.Quad(q.subject, q.predicate, q.object, default)
        for q in added
        if not any(raw.quads_for_pattern(q.subject, q.predicate, q.object, default))
    }
    still_held = {ox.Triple(q.subject, q.predicate, q.object) for q in added}
    minus = set()
    for q in removed:
        triple = ox.Triple(q.subject, q.predicate, q.object)
        if triple in still_held:
            continue
        others = (
            other
            for other in raw.quads_for_pattern(q.subject, q.predicate, q.object, None)
            if isinstance(other.graph_name, ox.NamedNode) and other.graph_name not in scoped
        )
        in_default = any(raw.quads_for_pattern(q.subject, q.predicate, q.object, default))
        if in_default and next(others, None) is None:
            minus.add(ox.Quad(q.subject, q.predicate, q.object, default))
    return plus, minus


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
    """Rehearse `text` in memory, validate the affected graphs, then commit it (see module doc).

    `probe` names a graph whose prior existence is reported (Graph Store 201 vs 204);
    with `must_exist`, a missing probe graph is a 404 and nothing runs.
    """
    with store.write_lock:
        raw = store.raw
        existed = True
        if isinstance(probe, ox.NamedNode):
            existed = raw.contains_named_graph(probe)
            if must_exist and not existed:
                raise NotFound(f"No graph <{probe.value}> in the store.")
        scope = _rehearsal_scope(raw, text, base_iri)
        all_graphs = set(raw.named_graphs())
        if scope is None:
            before_quads = list(raw.quads_for_pattern(None, None, None, None))
            before_graphs = all_graphs
        else:
            before_quads = [q for g in scope for q in raw.quads_for_pattern(None, None, None, g)]
            before_graphs = {g for g in scope if g in all_graphs}
        rehearsal = ox.Store()
        rehearsal.extend(before_quads)
        for graph in before_graphs:
            rehearsal.add_graph(graph)
        _run(rehearsal, text, base_iri)

        before_set = set(before_quads)
        after_quads = set(rehearsal.quads_for_pattern(None, None, None, None))
        named_added, named_removed = after_quads - before_set, before_set - after_quads
        sync = default_graph.sync_update(named_added, named_removed)
        if sync and scope is None:  # the rehearsal holds everything: apply the sync there too
            _run(rehearsal, sync, base_iri)
            after_quads = set(rehearsal.quads_for_pattern(None, None, None, None))
        if sync:  # keep the merged default graph in step, in the same atomic update
            text = f"{text}\n;\n{sync}"
        added, removed = after_quads - before_set, before_set - after_quads
        if sync and scope is not None:
            plus, minus = _default_delta(raw, named_added, named_removed, set(scope))
            added, removed = added | plus, removed | minus
        after_graphs = set(rehearsal.named_graphs())
        affected: set[GraphName] = {q.graph_name for q in added | removed}
        affected |= before_graphs ^ after_graphs
        if not affected:
            return WriteOutcome(existed=existed)

        if shapes is not None and (added or removed):
            default = ox.DefaultGraph()
            plus = {q for q in added if q.graph_name == default}
            minus = {q for q in removed if q.graph_name == default}
            nodes = {q.subject for q in added | removed}
            context = list(context_graphs)
            after = _violations(_described(raw, nodes, plus, minus, context), shapes)
            if after:
                before = _violations(_described(raw, nodes, set(), set(), context), shapes)
                new = Counter(map(_key, after)) - Counter(map(_key, before))
                if new:
                    blocking = [r for r in after if _key(r) in new][:MAX_REPORTED]
                    raise ShapeViolation(
                        _summary(blocking), violations=blocking, violation_count=sum(new.values())
                    )
        _run(raw, text, base_iri)
        raw.flush()
        return WriteOutcome(
            added=len(added),
            removed=len(removed),
            graphs=sorted(_graph_label(g) for g in affected),
            existed=existed,
        )


# --- entry points for the routes ------------------------------------------------------------


def check_update_text(text: str, settings: Settings) -> None:
    """Refuse LOAD/SERVICE that is not allow-listed, before any execution (the rehearsal would
    run them): S1's guard (kg.sparql.guard.check_update), and our own scan as a second layer."""
    from kg.sparql import guard  # lazily: kg.sparql imports nothing from here, keep it so

    guard.check_update(text, settings.allow_service, settings.allow_load, settings.base_iri)
    update_text.check_remote_access(
        text,
        base_iri=settings.base_iri,
        allow_load=settings.allow_load,
        allow_service=settings.allow_service,
    )


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
