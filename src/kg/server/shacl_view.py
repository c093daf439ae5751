"""SHACL shapes read for the ontology documentation: which constraints apply to which class.

Read from the shapes graph (graph/shapes, loaded by the build from shapes/kg.ttl); each node
shape becomes its targets and its property constraints in words ("at least 1", "class
Actor", "one of: xsd:date | xsd:gYearMonth | xsd:gYear") with the shape's own message.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyoxigraph as ox

from kg.server.page_terms import RDF, RDF_TYPE, Reader, Value

SH = "http://www.w3.org/ns/shacl#"
RDFS_COMMENT = "http://www.w3.org/2000/01/rdf-schema#comment"


@dataclass
class PropertyConstraint:
    path: str
    path_value: Value | None
    constraints: list[str]
    message: str | None


@dataclass
class ShapeDoc:
    iri: str
    anchor: str
    name: str
    comment: str | None
    target_classes: list[Value] = field(default_factory=list)
    target_subjects_of: list[Value] = field(default_factory=list)
    target_objects_of: list[Value] = field(default_factory=list)
    properties: list[PropertyConstraint] = field(default_factory=list)
    node_constraints: list[str] = field(default_factory=list)
    message: str | None = None


def rdf_list(r: Reader, head: object) -> list[object]:
    items, seen = [], set()
    while isinstance(head, ox.BlankNode | ox.NamedNode) and head.value != RDF + "nil":
        if str(head) in seen:
            break
        seen.add(str(head))
        first = r.first(head, RDF + "first")
        if first is not None:
            items.append(first)
        head = r.first(head, RDF + "rest")
    return items


def _path(r: Reader, path: object) -> str:
    if isinstance(path, ox.NamedNode):
        return r.curie(path.value)
    if isinstance(path, ox.BlankNode):
        if (inv := r.first(path, SH + "inversePath")) is not None:
            return f"^{_path(r, inv)}"
        if (alt := r.first(path, SH + "alternativePath")) is not None:
            return "(" + " | ".join(_path(r, p) for p in rdf_list(r, alt)) + ")"
        for key, mark in (("zeroOrMorePath", "*"), ("oneOrMorePath", "+"),
                          ("zeroOrOnePath", "?")):
            if (inner := r.first(path, SH + key)) is not None:
                return f"{_path(r, inner)}{mark}"
        seq = rdf_list(r, path)
        if seq:
            return " / ".join(_path(r, p) for p in seq)
    return str(path)


def constraints_of(r: Reader, node: object) -> list[str]:
    """The constraints of one shape node in words (recursing into sh:or / sh:and / sh:not)."""
    out: list[str] = []
    lo, hi = r.integer(node, SH + "minCount"), r.integer(node, SH + "maxCount")
    if lo is not None and hi is not None:
        out.append(f"exactly {lo}" if lo == hi else f"{lo} to {hi} values")
    elif lo is not None:
        out.append(f"at least {lo}")
    elif hi is not None:
        out.append(f"at most {hi}")
    for key, word in (("datatype", "datatype"), ("class", "class"), ("nodeKind", "node kind"),
                      ("node", "conforms to"), ("hasValue", "has value")):
        for v in r.objects(node, SH + key):
            out.append(f"{word} {r.label_of(v) if key == 'class' else r.curie(v.value)}"
                       if isinstance(v, ox.NamedNode) else f"{word} {v}")
    for key, word in (("minLength", "length ≥"), ("maxLength", "length ≤"),
                      ("pattern", "matches"), ("minInclusive", "≥"), ("maxInclusive", "≤"),
                      ("minExclusive", ">"), ("maxExclusive", "<")):
        if (text := r.text(node, SH + key)) is not None:
            out.append(f"{word} {text}")
    if (values := r.first(node, SH + "in")) is not None:
        out.append("one of: " + ", ".join(r.label_of(v) for v in rdf_list(r, values)))
    for key, word in (("or", "one of"), ("and", "all of"), ("xone", "exactly one of")):
        for head in r.objects(node, SH + key):
            parts = [" and ".join(constraints_of(r, m)) or "(shape)" for m in rdf_list(r, head)]
            out.append(f"{word}: " + " | ".join(parts))
    for inner in r.objects(node, SH + "not"):
        out.append("not: " + " and ".join(constraints_of(r, inner)))
    if r.first(node, SH + "sparql") is not None:
        out.append("a SPARQL constraint")
    return out


def read_shapes(quads: list[ox.Quad], base_iri: str, root: str,
                labels: dict[str, str]) -> list[ShapeDoc]:
    """Every node shape, with targets and property constraints."""
    r = Reader(quads, base_iri, root)
    r.labels = {**labels, **r.labels}
    node_shape = ox.NamedNode(SH + "NodeShape")
    shapes = sorted({q.subject for q in quads if q.predicate.value == RDF_TYPE
                     and q.object == node_shape} | {q.subject for q in quads if
                                                    q.predicate.value == SH + "targetClass"},
                    key=str)
    docs = []
    for node in shapes:
        name = node.value.rsplit("#", 1)[-1] if isinstance(node, ox.NamedNode) else node.value
        doc = ShapeDoc(
            iri=node.value, anchor=f"shape-{name}", name=name,
            comment=r.text(node, RDFS_COMMENT), message=r.text(node, SH + "message"),
            target_classes=[r.value(v) for v in r.objects(node, SH + "targetClass")],
            target_subjects_of=[r.value(v) for v in r.objects(node, SH + "targetSubjectsOf")],
            target_objects_of=[r.value(v) for v in r.objects(node, SH + "targetObjectsOf")],
            node_constraints=constraints_of(r, node),
        )
        for prop in r.objects(node, SH + "property"):
            path = r.first(prop, SH + "path")
            doc.properties.append(PropertyConstraint(
                path=_path(r, path) if path is not None else "?",
                path_value=r.value(path) if isinstance(path, ox.NamedNode) else None,
                constraints=constraints_of(r, prop),
                message=r.text(prop, SH + "message"),
            ))
        doc.properties.sort(key=lambda p: p.path)
        docs.append(doc)
    return docs
