"""One entity's description: the quads an RDF client gets, and the page a researcher reads.

The RDF document is queries/describe_entity.rq. The HTML page reads the same quads plus two
page-only queries (entity_claims_in.rq: the claims behind links pointing at the entity;
entity_neighbours.rq: dates, stages and offices of its neighbours, inverse properties), and
arranges them: what the thing is, its relations grouped by kind (entity_groups.GROUPS), each
statement with its supporting quotes in context (evidence.py), incoming links, mentions.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pyoxigraph as ox

from kg.server.entity_groups import (
    GROUPS,
    HEAD_PREDICATES,
    INCOMING_LABELS,
    NOTE_PREDICATES,
    SUMMARY_DATES,
    SUMMARY_PREDICATES,
)
from kg.server.evidence import Evidence, EvidenceIndex
from kg.server.page_terms import (
    LABELS,
    RDF_TYPE,
    SKOS,
    Reader,
    Value,
    capitalised,
    page_href,
)
from kg.server.queries import select
from kg.store.base import Store

__all__ = ["LABELS", "RDF_TYPE", "Value", "build_view", "fetch_description", "fetch_page_quads"]


def _quads(rows: list[dict]) -> list[ox.Quad]:
    return [ox.Quad(r["s"], r["p"], r["o"], r.get("g", ox.DefaultGraph())) for r in rows]


def fetch_description(
    store: ox.Store | Store, base_iri: str, iri: str
) -> list[ox.Quad]:
    """The entity's quads (empty when the store knows nothing of it). Run in one thread."""
    return _quads(select(store, "describe_entity", base_iri, entity=ox.NamedNode(iri)))


def fetch_page_quads(store: ox.Store | Store, base_iri: str, iri: str) -> list[ox.Quad]:
    """The description plus what only the page shows (claims behind incoming links,
    neighbours' dates and stages, inverse properties). Run in one thread."""
    entity = ox.NamedNode(iri)
    quads = fetch_description(store, base_iri, iri)
    for name in ("entity_claims_in", "entity_neighbours"):
        quads += _quads(select(store, name, base_iri, entity=entity))
    return quads


@dataclass
class Item:
    value: Value
    note: str | None = None
    sources: list[Value] = field(default_factory=list)
    inferred: bool = False
    evidence: list[Evidence] = field(default_factory=list)


@dataclass
class Row:
    label: str
    predicate: Value
    incoming: bool
    items: list[Item]


@dataclass
class Group:
    title: str
    rows: list[Row]
    slug: str = ""


@dataclass
class MentionPlace:
    text: str
    href: str | None


@dataclass
class DocumentMentions:
    document: Value
    count: int = 0
    places: list[MentionPlace] = field(default_factory=list)


@dataclass
class EntityView:
    iri: str
    label: str
    alt_labels: list[str]
    types: list[Value]
    inferred_types: list[Value]
    summary: str | None
    groups: list[Group]
    inferred: list[Row]
    mentions: list[DocumentMentions]
    graphs: list[Value]
    claim_count: int = 0
    other_quotes: list[tuple[str, Evidence]] = field(default_factory=list)


class _Builder:
    def __init__(self, quads: list[ox.Quad], iri: str, base_iri: str, root: str,
                 sources_dir: Path | None) -> None:
        self.r = Reader(quads, base_iri, root)
        self.kg = base_iri + "ontology#"
        self.inferred_graph = base_iri + "graph/inferred"
        self.entity = ox.NamedNode(iri)
        self.evidence = EvidenceIndex(self.r, sources_dir)
        # statements about the entity (out) and pointing at it (in), with their graphs
        self.out: dict[str, dict[str, tuple[object, list[ox.Quad]]]] = defaultdict(dict)
        self.inc: dict[str, dict[str, tuple[object, list[ox.Quad]]]] = defaultdict(dict)
        skip = {self.kg + "about", self.kg + "mentionOf", self.r.expand("rdf:subject"),
                self.r.expand("rdf:object")}
        for q in quads:
            if q.subject == self.entity:
                self.out[q.predicate.value].setdefault(str(q.object), (q.object, []))[1].append(q)
            elif q.object == self.entity and q.predicate.value not in skip:
                self.inc[q.predicate.value].setdefault(str(q.subject), (q.subject, []))[1].append(q)

    # -- rows ---------------------------------------------------------------------------

    def _only_inferred(self, quads: list[ox.Quad]) -> bool:
        return all(not isinstance(q.graph_name, ox.DefaultGraph)
                   and q.graph_name.value == self.inferred_graph for q in quads)

    def _sources(self, quads: list[ox.Quad]) -> list[Value]:
        """The documents whose graphs state it (graph/doc/<stem> → the page of id/doc/<stem>)."""
        base, seen = self.r.base_iri, {}
        for q in quads:
            g = q.graph_name
            if isinstance(g, ox.NamedNode) and g.value.startswith(base + "graph/doc/"):
                doc = base + "id/doc/" + g.value[len(base + "graph/doc/"):]
                seen.setdefault(doc, Value(self.r.labels.get(f"<{doc}>") or doc.rsplit("/", 1)[-1],
                                           page_href(doc, base, self.r.root), doc))
        return list(seen.values())

    def _note(self, term: object) -> str | None:
        """A neighbour's date, stage or office, shown beside it."""
        if not isinstance(term, ox.NamedNode):
            return None
        parts = []
        for curie in NOTE_PREDICATES:
            values = self.r.objects(term, self.r.expand(curie))
            if values:
                shown = ", ".join(sorted({self.r.label_of(v) for v in values}))
                parts.append(shown if "date" in curie.lower() or "On" in curie
                             else f"{curie.split(':')[1]}: {shown}")
        return " · ".join(parts) or None

    def _row(self, predicate: str, values: dict[str, tuple[object, list[ox.Quad]]],
             incoming: bool, curie: str) -> Row:
        items = []
        for term, quads in values.values():
            s, o = (term, self.entity) if incoming else (self.entity, term)
            items.append(Item(
                value=self.r.value(term),
                note=self._note(term),
                sources=self._sources(quads),
                inferred=self._only_inferred(quads),
                evidence=self.evidence.for_statement(s, predicate, o),
            ))
        items.sort(key=lambda i: (i.note or "", i.value.text.lower()))
        label = self.r.label_of(ox.NamedNode(predicate))
        if incoming:
            label = INCOMING_LABELS.get(curie, f"is {label} of")
        return Row(capitalised(label), self.r.value(ox.NamedNode(predicate)), incoming, items)

    def _is_inverse_of_outgoing(self, predicate: str, subject: str) -> bool:
        inverse = self.evidence.inverse.get(predicate)
        return inverse is not None and subject in self.out.get(inverse, {})

    def groups(self) -> tuple[list[Group], list[Row]]:
        used_out: set[str] = {self.r.expand(c) for c in HEAD_PREDICATES}
        used_in: set[str] = set()
        groups: list[Group] = []
        for spec in GROUPS:
            rows = []
            for curie in spec.out:
                p = self.r.expand(curie)
                used_out.add(p)
                if self.out.get(p):
                    rows.append(self._row(p, self.out[p], False, curie))
            for curie in spec.inc:
                p = self.r.expand(curie)
                used_in.add(p)
                values = {k: v for k, v in self.inc.get(p, {}).items()
                          if not self._is_inverse_of_outgoing(p, k)}
                if values:
                    rows.append(self._row(p, values, True, curie))
            if rows:
                groups.append(Group(spec.title, rows))
        other, inferred = [], []
        for p in sorted(set(self.out) - used_out, key=lambda p: self.r.label_of(ox.NamedNode(p))):
            row = self._row(p, self.out[p], False, self.r.curie(p))
            if not p.startswith(self.kg) and all(i.inferred for i in row.items):
                inferred.append(row)
            else:
                other.append(row)
        if other:
            groups.append(Group("Other properties", other))
        incoming = []
        for p in sorted(set(self.inc) - used_in, key=lambda p: self.r.label_of(ox.NamedNode(p))):
            values = {k: v for k, v in self.inc[p].items()
                      if not self._is_inverse_of_outgoing(p, k)}
            if not values:
                continue
            row = self._row(p, values, True, self.r.curie(p))
            (inferred if all(i.inferred for i in row.items) else incoming).append(row)
        if incoming:
            groups.append(Group("Referenced by", incoming))
        for g in groups:
            g.slug = g.title.lower().replace(" ", "-")
        return groups, inferred

    # -- head ---------------------------------------------------------------------------

    def types(self) -> tuple[list[Value], list[Value]]:
        asserted, inferred = {}, {}
        for term, quads in self.out.get(RDF_TYPE, {}).values():
            shown = self.r.value(term)
            shown.text = capitalised(shown.text)
            (inferred if self._only_inferred(quads) else asserted)[str(term)] = shown
        order = sorted(asserted.values(), key=lambda v: (not (v.iri or "").startswith(self.kg),
                                                         v.text.lower()))
        return order, sorted((v for k, v in inferred.items() if k not in asserted),
                             key=lambda v: v.text.lower())

    def summary(self, types: list[Value]) -> str | None:
        for curie in SUMMARY_PREDICATES:
            if text := self.r.text(self.entity, self.r.expand(curie)):
                return text
        if not types:
            return None
        kind = next((t.text for t in types if t.iri and t.iri.startswith(self.kg)), types[0].text)
        parts = [kind]
        for curie, verb in (("kg:party", "between"), ("kg:participant", "with")):
            names = sorted(self.r.label_of(t) for t, _ in
                           self.out.get(self.r.expand(curie), {}).values())
            if names:
                more = f" and {len(names) - 4} more" if len(names) > 4 else ""
                parts.append(f"{verb} {', '.join(names[:4])}{more}")
                break
        for curie, verb in SUMMARY_DATES:
            dates = sorted(v for v in self.r.objects(self.entity, self.r.expand(curie))
                           if isinstance(v, ox.Literal))
            if dates:
                parts.append(f"{verb} {dates[0].value}")
                break
        return " ".join(parts) + "." if len(parts) > 1 else None

    def other_quotes(self) -> list[tuple[str, Evidence]]:
        """Claims about the entity that no row showed (its names, its types), by predicate."""
        about = ox.NamedNode(self.kg + "about")
        shown = []
        for node in sorted(self.evidence.claim_nodes, key=str):
            if str(node) in self.evidence.built or self.entity not in self.r.objects(
                    node, about.value):
                continue
            predicate = self.r.first(node, self.r.expand("rdf:predicate"))
            value = self.r.first(node, self.r.expand("rdf:object"))
            what = capitalised(self.r.label_of(predicate)) if predicate is not None else "Claim"
            if value is not None:
                what += f": {self.r.label_of(value)}"
            shown.append((what, self.evidence.evidence(node)))
        return sorted(shown, key=lambda item: item[0].lower())

    def mentions(self) -> list[DocumentMentions]:
        kg, r = self.kg, self.r
        nodes = {q.subject for q in r.quads
                 if q.object == self.entity and q.predicate.value == kg + "mentionOf"}
        per_document: dict[str, DocumentMentions] = {}
        for node in sorted(nodes, key=lambda n: (str(r.first(n, kg + "inDocument")),
                                                 r.integer(n, kg + "startOffset") or 0)):
            document = r.first(node, kg + "inDocument")
            entry = per_document.get(str(document))
            if entry is None:
                shown = r.value(document) if document is not None else Value("(unknown document)")
                entry = per_document[str(document)] = DocumentMentions(shown)
            entry.count += 1
            passage = r.first(node, kg + "passage")
            locator = r.text(passage, kg + "locator") if passage is not None else None
            start, end = r.integer(node, kg + "startOffset"), r.integer(node, kg + "endOffset")
            text = r.text(node, kg + "matchedText")
            where = locator or (f"characters {start}–{end}" if start is not None else "mention")
            href = None
            if isinstance(document, ox.NamedNode) and start is not None and end is not None:
                doc_page = page_href(document.value, r.base_iri, r.root)
                href = f"{doc_page}#m-{start}-{end}" if doc_page else None
            entry.places.append(MentionPlace(f"{where} ({text})" if text else where, href))
        return sorted(per_document.values(), key=lambda d: (-d.count, d.document.text.lower()))


def build_view(quads: list[ox.Quad], iri: str, base_iri: str, root: str,
               sources_dir: Path | None = None) -> EntityView:
    """Arrange the page quads for the HTML page."""
    b = _Builder(quads, iri, base_iri, root, sources_dir)
    r = b.r
    types, inferred_types = b.types()
    groups, inferred = b.groups()
    others = b.other_quotes()  # after the groups: the claims they did not show
    alt = sorted({o.value for o in r.objects(b.entity, SKOS + "altLabel")
                  if isinstance(o, ox.Literal)})
    graphs = {str(q.graph_name): r.value(q.graph_name) for q in quads
              if q.subject == b.entity and not isinstance(q.graph_name, ox.DefaultGraph)}
    return EntityView(
        iri=iri,
        label=r.labels.get(str(b.entity)) or iri.rstrip("/").rsplit("/", 1)[-1],
        alt_labels=alt,
        types=types,
        inferred_types=inferred_types,
        summary=b.summary(types),
        groups=groups,
        inferred=inferred,
        mentions=b.mentions(),
        graphs=[graphs[k] for k in sorted(graphs)],
        claim_count=len(b.evidence.built),
        other_quotes=others,
    )
