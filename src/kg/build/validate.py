"""SHACL validation of the built data with pySHACL, reported focus node by focus node.

Validation runs on the asserted data plus the materialised rdf:type closure (graph/inferred),
so class targets and sh:class see subclass instances without pySHACL's own (slow) inference.
pySHACL gets rdflib Graph objects only: given a string it would fetch URLs. The shapes it
gets are `targeted`: the same constraints, laid out so pySHACL checks each property shape
once for all its focus nodes instead of once per focus node (4x faster, same results).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import pyoxigraph as ox
import rdflib
from pyshacl import validate as shacl_validate
from rdflib.namespace import SH

from kg.errors import BuildError

MAX_REPORTED = 50
RDF_TYPE_IRI = str(rdflib.RDF.type)
_SH = str(SH)
_TARGETS = {_SH + t for t in ("targetClass", "targetNode", "targetSubjectsOf", "targetObjectsOf")}
# What a node shape may say besides its targets and property shapes for `targeted` to move
# them: documentation and the plain node-shape type. Anything else (sh:closed reads the
# sh:property paths, sh:deactivated switches them off, rdfs:Class is an implicit target,
# sh:target is a SPARQL target) leaves the shape as written.
_NODE_SHAPE_KEEPS = {
    RDF_TYPE_IRI,
    str(rdflib.RDFS.comment),
    str(rdflib.RDFS.label),
    _SH + "name",
    _SH + "description",
    _SH + "property",
    *_TARGETS,
}
_NODE_SHAPE_TYPES = {_SH + "NodeShape", _SH + "Shape"}
_PROPERTY_SHAPE_TYPES = {_SH + "PropertyShape", _SH + "Shape"}


class _Converter:
    """pyoxigraph terms to rdflib terms, with IRIs interned (they repeat a lot)."""

    def __init__(self) -> None:
        self.iris: dict[str, rdflib.URIRef] = {}

    def __call__(self, term: object) -> rdflib.term.Node:
        if isinstance(term, ox.NamedNode):
            node = self.iris.get(term.value)
            if node is None:
                node = self.iris[term.value] = rdflib.URIRef(term.value)
            return node
        if isinstance(term, ox.BlankNode):
            return rdflib.BNode(term.value)
        if isinstance(term, ox.Literal):
            if term.language:
                return rdflib.Literal(term.value, lang=term.language)
            dt = term.datatype.value
            if dt == "http://www.w3.org/2001/XMLSchema#string":
                return rdflib.Literal(term.value)
            return rdflib.Literal(term.value, datatype=self(term.datatype))
        raise TypeError(f"unsupported term {term!r}")


def relevant(quads: Iterable[ox.Quad]) -> list[ox.Quad]:
    """What the shapes look at: asserted data and inferred types, minus the selector nodes.

    Web Annotation targets and selectors (<claim#...>) are generated, never targeted by a
    shape, and a third of the data: leaving them out halves validation time.
    """
    inferred_suffix = "graph/inferred"
    return [
        q
        for q in quads
        if "#" not in q.subject.value
        and (not q.graph_name.value.endswith(inferred_suffix) or q.predicate.value == RDF_TYPE_IRI)
    ]


def targeted(shapes: list[ox.Quad]) -> list[ox.Quad]:
    """The shapes with each plain node shape's targets moved onto its property shapes.

    SHACL gives a node shape's sh:property results as the property shape's own results for
    each focus node, so a property shape carrying the node shape's targets reports exactly
    the same violations (focus node, path, value, message, source shape). pySHACL, though,
    re-validates a nested property shape once per focus node, building its constraints
    anew each time (~60,000 times here): that was three quarters of the validation time.
    Only node shapes made of targets, property shapes and documentation, referenced by no
    other shape, are rewritten, and only their property shapes that have no targets of
    their own and are nobody else's property shape; everything else is kept as written.
    """
    by_subject: dict[ox.Term, list[ox.Quad]] = {}
    as_object: Counter[ox.Term] = Counter()
    for q in shapes:
        by_subject.setdefault(q.subject, []).append(q)
        as_object[q.object] += 1
    property_iri = _SH + "property"

    def movable_node_shape(node: ox.Term, quads: list[ox.Quad]) -> bool:
        return (
            as_object[node] == 0
            and any(q.predicate.value in _TARGETS for q in quads)
            and all(q.predicate.value in _NODE_SHAPE_KEEPS for q in quads)
            and all(
                q.object.value in _NODE_SHAPE_TYPES
                for q in quads
                if q.predicate.value == RDF_TYPE_IRI
            )
        )

    def movable_property_shape(prop: ox.Term) -> bool:
        if not isinstance(prop, ox.NamedNode | ox.BlankNode):  # malformed: pySHACL says so
            return False
        return as_object[prop] == 1 and not any(
            q.predicate.value in _TARGETS
            or q.predicate.value == _SH + "target"
            or (q.predicate.value == RDF_TYPE_IRI and q.object.value not in _PROPERTY_SHAPE_TYPES)
            for q in by_subject.get(prop, [])
        )

    dropped: set[ox.Quad] = set()
    added: list[ox.Quad] = []
    for node, quads in by_subject.items():
        if not movable_node_shape(node, quads):
            continue
        targets = [q for q in quads if q.predicate.value in _TARGETS]
        for q in quads:
            if q.predicate.value == property_iri and movable_property_shape(q.object):
                dropped.add(q)
                added.extend(
                    ox.Quad(q.object, t.predicate, t.object, q.graph_name) for t in targets
                )
    return [q for q in shapes if q not in dropped] + added


def to_graph(quads: Iterable[ox.Quad], graph: rdflib.Graph | None = None) -> rdflib.Graph:
    """The triples as an rdflib Graph (added to `graph` when given)."""
    conv = _Converter()
    graph = rdflib.Graph() if graph is None else graph
    add = graph.add
    for q in quads:
        add((conv(q.subject), conv(q.predicate), conv(q.object)))
    return graph


def violations(data: rdflib.Graph, shapes: rdflib.Graph) -> list[str]:
    """Readable lines, one per violation (empty when the data conforms); data is consumed."""
    conforms, report, _ = shacl_validate(
        data, shacl_graph=shapes, inference="none", inplace=True, allow_warnings=True
    )
    if conforms:
        return []
    lines = []
    for result in report.subjects(rdflib.RDF.type, SH.ValidationResult):
        if report.value(result, SH.resultSeverity) != SH.Violation:
            continue
        focus = report.value(result, SH.focusNode)
        path = report.value(result, SH.resultPath)
        message = report.value(result, SH.resultMessage)
        value = report.value(result, SH.value)
        shape = report.value(result, SH.sourceShape)
        parts = [f"{focus.n3() if focus is not None else '?'}"]
        if path is not None:
            parts.append(f"path {path.n3() if hasattr(path, 'n3') else path}")
        if value is not None:
            parts.append(f"value {value.n3()}")
        parts.append(str(message or ""))
        if isinstance(shape, rdflib.URIRef):
            parts.append(f"(shape {shape})")
        lines.append(" | ".join(parts))
    return sorted(lines)


def check(data_quads: Iterable[ox.Quad], shape_quads: Iterable[ox.Quad]) -> None:
    """BuildError listing the violations, if any."""
    check_graph(to_graph(data_quads), shape_quads)


def check_graph(data: rdflib.Graph, shape_quads: Iterable[ox.Quad]) -> None:
    """`check` for data already converted by `to_graph` (which this consumes)."""
    found = violations(data, to_graph(targeted(list(shape_quads))))
    if found:
        shown = found[:MAX_REPORTED]
        more = f"\n... and {len(found) - len(shown)} more" if len(found) > len(shown) else ""
        raise BuildError(
            f"{len(found)} SHACL violation(s):\n" + "\n".join(shown) + more, errors=found
        )
