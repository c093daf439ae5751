"""Every SHACL shape has a fixture that conforms and one that violates exactly that shape."""

from __future__ import annotations

from pathlib import Path

import pyoxigraph as ox
import pytest
import rdflib
from pyshacl import validate as shacl_validate
from rdflib.namespace import SH

from kg import paths
from kg.build.infer import infer
from kg.build.ontology import Ontology, parse_turtle
from kg.build.terms import Iris
from kg.build.validate import relevant, to_graph

BASE = "http://example.org/kg/"
FIXTURES = Path(__file__).parent / "fixtures" / "shapes"
IRIS = Iris(BASE)
ONTO = Ontology.load(IRIS, paths.project_root() / "ontology", paths.project_root() / "shapes")
SHAPES = to_graph(ONTO.shapes)
NODE_SHAPES = sorted(
    str(s).rsplit("#", 1)[1] for s in SHAPES.subjects(rdflib.RDF.type, SH.NodeShape)
)


def _report(name: str) -> tuple[bool, set[str]]:
    """Validate a fixture as the build does (with inferred types); the shapes it violates."""
    data = parse_turtle(FIXTURES / name, BASE, IRIS.graph("doc/test"))
    types = infer(data + ONTO.ontology, IRIS)
    graph = to_graph(relevant(data + types))
    conforms, report, _ = shacl_validate(graph, shacl_graph=SHAPES, inference="none")
    violated = set()
    for result in report.subjects(rdflib.RDF.type, SH.ValidationResult):
        source = report.value(result, SH.sourceShape)
        owners = set(SHAPES.subjects(SH.property, source)) | {source}
        violated |= {str(o).rsplit("#", 1)[-1] for o in owners if isinstance(o, rdflib.URIRef)}
    return conforms, violated


def test_there_are_shapes_for_the_main_classes():
    assert {
        "ClaimShape",
        "MentionShape",
        "CommitmentShape",
        "AgreementShape",
        "LabelledShape",
        "DateShape",
    } <= set(NODE_SHAPES)


@pytest.mark.parametrize("shape", NODE_SHAPES)
def test_passing_fixture_conforms(shape: str):
    conforms, violated = _report(f"{shape}.pass.ttl")
    assert conforms, violated


@pytest.mark.parametrize("shape", NODE_SHAPES)
def test_failing_fixture_violates_its_shape(shape: str):
    conforms, violated = _report(f"{shape}.fail.ttl")
    assert not conforms
    assert violated == {shape}


def test_shapes_use_relative_iris_resolved_against_the_base():
    assert ONTO.shapes
    assert all(
        isinstance(q.subject, ox.BlankNode) or q.subject.value.startswith(BASE + "shapes#")
        for q in ONTO.shapes
        if q.predicate.value.endswith("targetClass")
    )
