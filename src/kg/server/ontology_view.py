"""The ontology's HTML documentation, read from its graph: classes and properties with
labels, comments, super-terms, domains and ranges (a richer pyLODE-style page comes later)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyoxigraph as ox

from kg.namespaces import STANDARD_PREFIXES
from kg.server.entity_view import LABELS, RDF_TYPE, Value, _Reader

OWL = STANDARD_PREFIXES["owl"]
RDFS = STANDARD_PREFIXES["rdfs"]
SKOS = STANDARD_PREFIXES["skos"]

SECTIONS = (
    ("Classes", (OWL + "Class", RDFS + "Class")),
    ("Object properties", (OWL + "ObjectProperty",)),
    ("Datatype properties", (OWL + "DatatypeProperty",)),
    ("Annotation properties", (OWL + "AnnotationProperty",)),
)
ROWS = (
    ("Sub-class of", RDFS + "subClassOf"),
    ("Sub-property of", RDFS + "subPropertyOf"),
    ("Domain", RDFS + "domain"),
    ("Range", RDFS + "range"),
    ("Inverse of", OWL + "inverseOf"),
    ("Equivalent to", OWL + "equivalentClass"),
    ("Disjoint with", OWL + "disjointWith"),
    ("Close match", SKOS + "closeMatch"),
)


@dataclass
class Term:
    iri: str
    fragment: str
    curie: str
    label: str
    comment: str | None
    rows: list[tuple[str, list[Value]]]


@dataclass
class Section:
    title: str
    terms: list[Term] = field(default_factory=list)


@dataclass
class OntologyView:
    iri: str
    title: str
    version: str | None
    comment: str | None
    sections: list[Section]


def _literal(r: _Reader, subject: object, predicate: str) -> str | None:
    values = [o for o in r.objects(subject, predicate) if isinstance(o, ox.Literal)]
    english = [o for o in values if o.language in ("en", None)]
    chosen = (english or values)
    return chosen[0].value if chosen else None


def build_ontology_view(quads: list[ox.Quad], iri: str, base_iri: str, root: str) -> OntologyView:
    r = _Reader(quads, base_iri, root)
    onto = ox.NamedNode(iri)
    sections: list[Section] = []
    placed: set[str] = set()
    for title, kinds in SECTIONS:
        section = Section(title)
        subjects = sorted({q.subject.value for q in quads if q.predicate.value == RDF_TYPE
                           and q.object.value in kinds and isinstance(q.subject, ox.NamedNode)}
                          - placed)
        for term_iri in subjects:
            placed.add(term_iri)
            node = ox.NamedNode(term_iri)
            rows = [(name, [r.value(o) for o in r.objects(node, p)
                            if not isinstance(o, ox.BlankNode)]) for name, p in ROWS]
            section.terms.append(Term(
                iri=term_iri,
                fragment=term_iri.rsplit("#", 1)[-1] if "#" in term_iri else term_iri,
                curie=r.curie(term_iri),
                label=r.label_of(node),
                comment=_literal(r, node, RDFS + "comment"),
                rows=rows,
            ))
        section.terms.sort(key=lambda t: t.label.lower())
        if section.terms:
            sections.append(section)
    title = next((v for p in LABELS[::-1] if (v := _literal(r, onto, p))), None) or iri
    return OntologyView(
        iri=iri,
        title=title,
        version=_literal(r, onto, OWL + "versionInfo"),
        comment=_literal(r, onto, RDFS + "comment"),
        sections=sections,
    )
