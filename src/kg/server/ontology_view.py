"""The ontology's HTML documentation, generated from its graph (and the shapes graph):
a class hierarchy, then every class (label, comment, super/subclasses, the properties whose
domain or range it is, the SHACL constraints that apply to its instances) and every property
(domain, range, super/sub-properties, inverse). Anchors are the terms' fragments, so
<base>ontology#Agreement lands on its entry.

Why not pyLODE: it documents OWL well but does not show SHACL constraints per class, and it
would add a dependency tree to render what a hundred lines of our own code render from the
graph the service already holds.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import pyoxigraph as ox

from kg.namespaces import STANDARD_PREFIXES
from kg.server.page_terms import LABELS, RDF_TYPE, Reader, Value, capitalised
from kg.server.shacl_view import ShapeDoc, read_shapes

OWL = STANDARD_PREFIXES["owl"]
RDFS = STANDARD_PREFIXES["rdfs"]
SKOS = STANDARD_PREFIXES["skos"]
DCT = STANDARD_PREFIXES["dct"]

PROPERTY_KINDS = (
    ("Object properties", "Object property", OWL + "ObjectProperty"),
    ("Datatype properties", "Datatype property", OWL + "DatatypeProperty"),
    ("Annotation properties", "Annotation property", OWL + "AnnotationProperty"),
)
CLASS_ROWS = (
    ("Equivalent to", OWL + "equivalentClass"),
    ("Disjoint with", OWL + "disjointWith"),
    ("Close match", SKOS + "closeMatch"),
    ("Exact match", SKOS + "exactMatch"),
    ("See also", RDFS + "seeAlso"),
)
PROPERTY_ROWS = (
    ("Domain", RDFS + "domain"),
    ("Range", RDFS + "range"),
    ("Sub-property of", RDFS + "subPropertyOf"),
    ("Inverse of", OWL + "inverseOf"),
    ("Equivalent to", OWL + "equivalentProperty"),
    ("Close match", SKOS + "closeMatch"),
)
META_ROWS = (("Version", OWL + "versionInfo"), ("Licence", DCT + "license"),
             ("Creator", DCT + "creator"), ("Modified", DCT + "modified"),
             ("Created", DCT + "created"), ("Publisher", DCT + "publisher"))


@dataclass
class AppliedShape:
    shape: ShapeDoc
    via: Value | None  # the superclass (or property) the shape targets, None: this class


@dataclass
class Term:
    iri: str
    fragment: str
    curie: str
    label: str
    comment: str | None
    kind: str
    rows: list[tuple[str, list[Value]]]
    supers: list[Value] = field(default_factory=list)
    subs: list[Value] = field(default_factory=list)
    domain_of: list[Value] = field(default_factory=list)
    range_of: list[Value] = field(default_factory=list)
    shapes: list[AppliedShape] = field(default_factory=list)


@dataclass
class Section:
    title: str
    anchor: str
    terms: list[Term] = field(default_factory=list)


@dataclass
class TreeNode:
    term: Value
    children: list[TreeNode]


@dataclass
class OntologyView:
    iri: str
    title: str
    version: str | None
    version_iri: str | None
    comment: str | None
    meta: list[tuple[str, list[Value]]]
    tree: list[TreeNode]
    sections: list[Section]
    shapes: list[ShapeDoc]


def _fragment(iri: str) -> str:
    return iri.rsplit("#", 1)[-1] if "#" in iri else iri.rstrip("/").rsplit("/", 1)[-1]


def build_ontology_view(quads: list[ox.Quad], iri: str, base_iri: str, root: str,
                        shape_quads: list[ox.Quad] | None = None) -> OntologyView:
    r = Reader(quads, base_iri, root)
    onto = ox.NamedNode(iri)
    kg = base_iri + "ontology#"

    def typed(*kinds: str) -> list[str]:
        return sorted({q.subject.value for q in quads if q.predicate.value == RDF_TYPE
                       and q.object.value in kinds and isinstance(q.subject, ox.NamedNode)})

    def values(node: ox.NamedNode, p: str) -> list[Value]:
        return sorted((r.value(o) for o in r.objects(node, p) if isinstance(o, ox.NamedNode)),
                      key=lambda v: v.text.lower())

    classes = typed(OWL + "Class", RDFS + "Class")
    supers: dict[str, list[str]] = defaultdict(list)
    subs: dict[str, list[str]] = defaultdict(list)
    for c in classes:
        for o in r.objects(ox.NamedNode(c), RDFS + "subClassOf"):
            if isinstance(o, ox.NamedNode):
                supers[c].append(o.value)
                subs[o.value].append(c)
    domain_of, range_of = defaultdict(list), defaultdict(list)
    for q in quads:
        if q.predicate.value in (RDFS + "domain", RDFS + "range") and isinstance(
                q.object, ox.NamedNode):
            target = domain_of if q.predicate.value == RDFS + "domain" else range_of
            target[q.object.value].append(q.subject)

    shapes = read_shapes(shape_quads or [], base_iri, root, r.labels)
    by_class: dict[str, list[ShapeDoc]] = defaultdict(list)
    by_property: dict[str, list[ShapeDoc]] = defaultdict(list)
    for shape in shapes:
        for t in shape.target_classes:
            by_class[t.iri or ""].append(shape)
        for t in shape.target_subjects_of + shape.target_objects_of:
            by_property[t.iri or ""].append(shape)

    def ancestors(c: str) -> list[str]:
        out, todo = [], list(supers.get(c, []))
        while todo:
            s = todo.pop(0)
            if s not in out and s != c:
                out.append(s)
                todo += supers.get(s, [])
        return out

    def term(t: str, kind: str, rows: tuple[tuple[str, str], ...]) -> Term:
        node = ox.NamedNode(t)
        return Term(
            iri=t, fragment=_fragment(t), curie=r.curie(t), label=capitalised(r.label_of(node)),
            comment=r.text(node, RDFS + "comment") or r.text(node, SKOS + "definition"),
            kind=kind, rows=[(name, values(node, p)) for name, p in rows])

    class_section = Section("Classes", "classes")
    for c in classes:
        t = term(c, "Class", CLASS_ROWS)
        node = ox.NamedNode(c)
        t.supers = values(node, RDFS + "subClassOf")
        t.subs = sorted((r.value(ox.NamedNode(s)) for s in subs.get(c, [])),
                        key=lambda v: v.text.lower())
        t.domain_of = sorted((r.value(p) for p in domain_of.get(c, [])),
                             key=lambda v: v.text.lower())
        t.range_of = sorted((r.value(p) for p in range_of.get(c, [])),
                            key=lambda v: v.text.lower())
        t.shapes = [AppliedShape(s, None) for s in by_class.get(c, [])]
        for a in ancestors(c):
            t.shapes += [AppliedShape(s, r.value(ox.NamedNode(a))) for s in by_class.get(a, [])]
        class_section.terms.append(t)
    class_section.terms.sort(key=lambda t: t.label.lower())
    sections = [class_section]
    placed = set(classes)
    for title, kind_name, kind in PROPERTY_KINDS:
        section = Section(title, title.lower().replace(" ", "-"))
        for p in typed(kind):
            if p in placed:
                continue
            placed.add(p)
            t = term(p, kind_name, PROPERTY_ROWS)
            t.subs = sorted((r.value(q.subject) for q in quads
                             if q.predicate.value == RDFS + "subPropertyOf"
                             and q.object.value == p), key=lambda v: v.text.lower())
            t.shapes = [AppliedShape(s, None) for s in by_property.get(p, [])]
            section.terms.append(t)
        section.terms.sort(key=lambda t: t.label.lower())
        if section.terms:
            sections.append(section)

    def tree(c: str, seen: frozenset[str]) -> TreeNode:
        kids = sorted((k for k in subs.get(c, []) if k not in seen),
                      key=lambda k: r.label_of(ox.NamedNode(k)).lower())
        shown = r.value(ox.NamedNode(c))
        shown.text = capitalised(shown.text)
        shown.href = f"#{_fragment(c)}"
        return TreeNode(shown, [tree(k, seen | {k}) for k in kids])

    roots = [c for c in classes if c.startswith(kg)
             and not any(s in classes and s.startswith(kg) for s in supers.get(c, []))]
    roots.sort(key=lambda c: r.label_of(ox.NamedNode(c)).lower())
    title = next((v for p in LABELS[::-1] if (v := r.text(onto, p))), None) or iri
    version_iri = r.first(onto, OWL + "versionIRI")
    return OntologyView(
        iri=iri,
        title=title,
        version=r.text(onto, OWL + "versionInfo"),
        version_iri=version_iri.value if isinstance(version_iri, ox.NamedNode) else None,
        comment=r.text(onto, RDFS + "comment") or r.text(onto, DCT + "description"),
        meta=[(name, [r.value(o) for o in r.objects(onto, p)]) for name, p in META_ROWS
              if r.objects(onto, p)],
        tree=[tree(c, frozenset({c})) for c in roots],
        sections=sections,
        shapes=shapes,
    )
