"""SHACL validation of the built data with pySHACL, reported focus node by focus node.

Validation runs on the asserted data plus the materialised rdf:type closure (graph/inferred),
so class targets and sh:class see subclass instances without pySHACL's own (slow) inference.
pySHACL gets rdflib Graph objects only: given a string it would fetch URLs.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyoxigraph as ox
import rdflib
from pyshacl import validate as shacl_validate
from rdflib.namespace import SH

from kg.errors import BuildError

MAX_REPORTED = 50
RDF_TYPE_IRI = str(rdflib.RDF.type)


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


def to_graph(quads: Iterable[ox.Quad]) -> rdflib.Graph:
    conv = _Converter()
    graph = rdflib.Graph()
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
    found = violations(to_graph(data_quads), to_graph(shape_quads))
    if found:
        shown = found[:MAX_REPORTED]
        more = f"\n... and {len(found) - len(shown)} more" if len(found) > len(shown) else ""
        raise BuildError(
            f"{len(found)} SHACL violation(s):\n" + "\n".join(shown) + more, errors=found
        )
