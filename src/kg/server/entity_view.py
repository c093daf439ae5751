"""One entity's description: the quads an RDF client gets, and the view an HTML page shows.

Both come from one query (queries/describe_entity.rq), so the page and the data never
disagree: the HTML is a reading of exactly the quads served as RDF.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import pyoxigraph as ox

from kg.namespaces import STANDARD_PREFIXES, kg_prefixes
from kg.server.html import local_href
from kg.server.queries import select

RDF = STANDARD_PREFIXES["rdf"]
RDFS = STANDARD_PREFIXES["rdfs"]
SKOS = STANDARD_PREFIXES["skos"]
DCT = STANDARD_PREFIXES["dct"]
LABELS = (RDFS + "label", SKOS + "prefLabel", DCT + "title")
RDF_TYPE = RDF + "type"


def fetch_description(store: ox.Store, base_iri: str, iri: str) -> list[ox.Quad]:
    """The entity's quads (empty when the store knows nothing of it). Run in one thread."""
    rows = select(store, "describe_entity", base_iri, entity=ox.NamedNode(iri))
    return [
        ox.Quad(r["s"], r["p"], r["o"], r.get("g", ox.DefaultGraph()))  # type: ignore[arg-type]
        for r in rows
    ]


@dataclass
class Value:
    """A term ready for a template: text to show, and a link for IRIs."""

    text: str
    href: str | None = None
    iri: str | None = None
    lang: str | None = None
    datatype: str | None = None


@dataclass
class Claim:
    iri: Value
    predicate: Value | None = None
    value: Value | None = None
    quote: str | None = None
    locator: str | None = None
    document: Value | None = None
    passage: Value | None = None
    offsets: str | None = None
    graph: Value | None = None


@dataclass
class DocumentMentions:
    document: Value
    count: int = 0
    places: list[str] = field(default_factory=list)


@dataclass
class EntityView:
    iri: str
    label: str
    alt_labels: list[str]
    types: list[Value]
    properties: list[tuple[Value, list[tuple[Value, list[Value]]]]]
    incoming: list[tuple[Value, Value, Value | None]]
    claims: list[Claim]
    mentions: list[DocumentMentions]
    graphs: list[Value]


class _Reader:
    """Looks up labels and renders terms, within one description's quads."""

    def __init__(self, quads: list[ox.Quad], base_iri: str, root: str) -> None:
        self.quads = quads
        self.base_iri = base_iri
        self.root = root
        self.prefixes = kg_prefixes(base_iri)
        self.labels: dict[str, str] = {}
        ranked: dict[str, int] = {}
        for q in quads:
            if q.predicate.value in LABELS and isinstance(q.object, ox.Literal):
                lang = q.object.language
                rank = LABELS.index(q.predicate.value) * 3 + (0 if lang == "en" else 1 if not lang
                                                                else 2)
                key = str(q.subject)
                if key not in ranked or rank < ranked[key]:
                    ranked[key], self.labels[key] = rank, q.object.value

    def curie(self, iri: str) -> str:
        for prefix, ns in self.prefixes.items():
            if iri.startswith(ns) and len(iri) > len(ns):
                return f"{prefix}:{iri[len(ns):]}"
        return iri

    def label_of(self, term: ox.NamedNode | ox.BlankNode) -> str:
        return self.labels.get(str(term)) or self.curie(term.value)

    def value(self, term: object) -> Value:
        if isinstance(term, ox.NamedNode):
            return Value(self.label_of(term), local_href(term.value, self.base_iri, self.root),
                         term.value)
        if isinstance(term, ox.Literal):
            datatype = term.datatype.value
            shown = None if datatype in (STANDARD_PREFIXES["xsd"] + "string",
                                         RDF + "langString") else self.curie(datatype)
            return Value(term.value, lang=term.language, datatype=shown)
        if isinstance(term, ox.BlankNode):
            return Value(f"_:{term.value}")
        return Value(str(term))

    def graph(self, quad: ox.Quad) -> Value | None:
        g = quad.graph_name
        return None if isinstance(g, ox.DefaultGraph) else self.value(g)

    def objects(self, subject: object, predicate: str) -> list[object]:
        return [q.object for q in self.quads if q.subject == subject
                and q.predicate.value == predicate]

    def first(self, subject: object, predicate: str) -> object | None:
        found = self.objects(subject, predicate)
        return found[0] if found else None


def build_view(quads: list[ox.Quad], iri: str, base_iri: str, root: str) -> EntityView:
    """Arrange the description for the HTML page."""
    r = _Reader(quads, base_iri, root)
    kg = base_iri + "ontology#"
    entity = ox.NamedNode(iri)
    claim_nodes = {q.subject for q in quads
                   if q.object == entity and q.predicate.value == kg + "about"}
    mention_nodes = {q.subject for q in quads
                     if q.object == entity and q.predicate.value == kg + "mentionOf"}

    types: dict[str, Value] = {}
    by_predicate: dict[str, dict[str, tuple[Value, list[Value]]]] = defaultdict(dict)
    for q in quads:
        if q.subject != entity:
            continue
        if q.predicate.value == RDF_TYPE:
            types.setdefault(str(q.object), r.value(q.object))
            continue
        values = by_predicate[q.predicate.value]
        _shown, graphs = values.setdefault(str(q.object), (r.value(q.object), []))
        if (g := r.graph(q)) is not None:
            graphs.append(g)
    properties = sorted(
        ((r.value(ox.NamedNode(p)), list(values.values())) for p, values in by_predicate.items()),
        key=lambda item: item[0].text.lower(),
    )

    incoming = [
        (r.value(q.subject), r.value(q.predicate), r.graph(q))
        for q in quads
        if q.object == entity and q.subject not in claim_nodes | mention_nodes
        and q.subject != entity
    ]
    incoming.sort(key=lambda item: (item[1].text.lower(), item[0].text.lower()))

    claims = [_claim(r, c, kg) for c in sorted(claim_nodes, key=str)]
    mentions = _mentions(r, mention_nodes, kg)
    alt = sorted({o.value for o in r.objects(entity, SKOS + "altLabel")
                  if isinstance(o, ox.Literal)})
    graphs = {str(q.graph_name): r.value(q.graph_name) for q in quads
              if not isinstance(q.graph_name, ox.DefaultGraph)}
    return EntityView(
        iri=iri,
        label=r.labels.get(str(entity)) or iri.rstrip("/").rsplit("/", 1)[-1],
        alt_labels=alt,
        types=sorted(types.values(), key=lambda v: v.text.lower()),
        properties=properties,
        incoming=incoming,
        claims=claims,
        mentions=mentions,
        graphs=[graphs[k] for k in sorted(graphs)],
    )


def _text(term: object | None) -> str | None:
    return term.value if isinstance(term, ox.Literal) else None


def _claim(r: _Reader, node: object, kg: str) -> Claim:
    passage = r.first(node, kg + "passage")
    document = r.first(node, kg + "inDocument")
    start, end = _text(r.first(node, kg + "startOffset")), _text(r.first(node, kg + "endOffset"))
    predicate = r.first(node, RDF + "predicate")
    value = r.first(node, RDF + "object")
    graphs = [r.graph(q) for q in r.quads if q.subject == node]
    return Claim(
        iri=r.value(node),
        predicate=r.value(predicate) if predicate is not None else None,
        value=r.value(value) if value is not None else None,
        quote=_text(r.first(node, kg + "quote")),
        locator=_text(r.first(node, kg + "locator"))
        or (_text(r.first(passage, kg + "locator")) if passage is not None else None),
        document=r.value(document) if document is not None else None,
        passage=r.value(passage) if passage is not None else None,
        offsets=f"{start}–{end}" if start and end else None,
        graph=next((g for g in graphs if g is not None), None),
    )


def _mentions(r: _Reader, nodes: set[object], kg: str) -> list[DocumentMentions]:
    per_document: dict[str, DocumentMentions] = {}
    for node in sorted(nodes, key=str):
        document = r.first(node, kg + "inDocument")
        key = str(document)
        entry = per_document.get(key)
        if entry is None:
            shown = r.value(document) if document is not None else Value("(unknown document)")
            entry = per_document[key] = DocumentMentions(shown)
        entry.count += 1
        passage = r.first(node, kg + "passage")
        locator = _text(r.first(passage, kg + "locator")) if passage is not None else None
        start = _text(r.first(node, kg + "startOffset"))
        end = _text(r.first(node, kg + "endOffset"))
        text = _text(r.first(node, kg + "matchedText"))
        place = locator or (f"characters {start}–{end}" if start and end else None)
        if place:
            entry.places.append(f"{place} ({text!s})" if text else place)
    return sorted(per_document.values(), key=lambda d: (-d.count, d.document.text.lower()))
