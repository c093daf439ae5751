"""The ontology, vocabularies and shapes, parsed against the base IRI (their IRIs are relative)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pyoxigraph as ox

from kg.build.terms import RDF_TYPE, Iris
from kg.errors import BuildError
from kg.namespaces import STANDARD_PREFIXES

OWL = STANDARD_PREFIXES["owl"]
RDFS = STANDARD_PREFIXES["rdfs"]
_CLASS_TYPES = {OWL + "Class", RDFS + "Class"}
_PROPERTY_TYPES = {
    OWL + "ObjectProperty",
    OWL + "DatatypeProperty",
    OWL + "AnnotationProperty",
    STANDARD_PREFIXES["rdf"] + "Property",
}

# Closed external vocabularies whose terms we can check; other standard prefixes are open.
KNOWN_EXTERNAL: dict[str, set[str]] = {
    "skos": {
        "broader",
        "narrower",
        "related",
        "inScheme",
        "topConceptOf",
        "hasTopConcept",
        "exactMatch",
        "closeMatch",
        "broadMatch",
        "narrowMatch",
        "relatedMatch",
        "altLabel",
        "prefLabel",
        "hiddenLabel",
        "definition",
        "notation",
        "scopeNote",
        "note",
        "Concept",
        "ConceptScheme",
        "Collection",
        "member",
    },
    "owl": {"sameAs", "differentFrom"},
    "rdfs": {"seeAlso", "comment", "label", "isDefinedBy"},
    "rdf": {"type", "value"},
}
DATE_PROPERTIES = {
    "date",
    "startDate",
    "endDate",
    "proposedOn",
    "adoptedOn",
    "signedOn",
    "provisionallyAppliedFrom",
    "enteredIntoForceOn",
}
EXTERNAL_DATE_PROPERTIES = {
    "dct:date",
    "dct:issued",
    "dct:created",
    "dct:modified",
    "schema:startDate",
    "schema:endDate",
}


def parse_turtle(path: Path, base: str, graph: ox.NamedNode) -> list[ox.Quad]:
    """Quads of a Turtle file; blank nodes get stable labels so builds are byte-identical.

    A label names the graph and the file as well as the node: the file's stem alone made
    `ontology/kg.ttl` and `shapes/kg.ttl` both write `_:kg0`…, so one store node was an OWL
    union class in the ontology graph and a SHACL property shape in the shapes graph.
    """
    labels: dict[str, ox.BlankNode] = {}
    prefix = "-".join(re.sub(r"[^A-Za-z0-9]+", "-", part).strip("-")
                      for part in (graph.value.removeprefix(base), path.stem))

    def stable(term: ox.Term) -> ox.Term:
        if isinstance(term, ox.BlankNode):
            node = labels.get(term.value)
            if node is None:
                node = labels[term.value] = ox.BlankNode(f"{prefix}-{len(labels)}")
            return node
        return term

    try:
        triples = ox.parse(path=str(path), format=ox.RdfFormat.TURTLE, base_iri=base)
        return [ox.Quad(stable(t.subject), t.predicate, stable(t.object), graph) for t in triples]
    except (SyntaxError, OSError) as exc:
        raise BuildError(f"{path}: {exc}") from exc


@dataclass
class Ontology:
    """Terms the extraction may use, and the quads of the ontology/vocabulary/shapes graphs."""

    iris: Iris
    ontology: list[ox.Quad]
    vocabulary: list[ox.Quad]
    shapes: list[ox.Quad] = field(default_factory=list)
    classes: set[str] = field(default_factory=set)
    properties: set[str] = field(default_factory=set)
    concepts: set[str] = field(default_factory=set)
    datatype_properties: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, iris: Iris, ontology_dir: Path, shapes_dir: Path | None = None) -> Ontology:
        onto = parse_turtle(ontology_dir / "kg.ttl", iris.base, iris.graph("ontology"))
        vocab = parse_turtle(ontology_dir / "vocabularies.ttl", iris.base, iris.graph("vocabulary"))
        shapes: list[ox.Quad] = []
        if shapes_dir and shapes_dir.is_dir():
            for path in sorted(shapes_dir.glob("*.ttl")):
                shapes += parse_turtle(path, iris.base, iris.graph("shapes"))
        self = cls(iris, onto, vocab, shapes)
        for q in onto:
            if q.predicate == RDF_TYPE and q.object.value in _CLASS_TYPES:
                self.classes.add(q.subject.value)
            if q.predicate == RDF_TYPE and q.object.value in _PROPERTY_TYPES:
                self.properties.add(q.subject.value)
                if q.object.value == OWL + "DatatypeProperty":
                    self.datatype_properties.add(q.subject.value)
        self.concepts = {q.subject.value for q in vocab if isinstance(q.subject, ox.NamedNode)}
        return self

    def expand(self, name: str) -> str | None:
        """kg local name or CURIE -> IRI (None when the prefix is unknown)."""
        if ":" not in name:
            return self.iris.kg + name
        prefix, local = name.split(":", 1)
        if prefix == "kg":
            return self.iris.kg + local
        ns = STANDARD_PREFIXES.get(prefix)
        return ns + local if ns else None

    def _known(self, name: str, kg_terms: set[str]) -> str | None:
        iri = self.expand(name)
        if iri is None:
            return None
        if iri.startswith(self.iris.kg):
            return iri if iri in kg_terms else None
        prefix, local = name.split(":", 1)
        closed = KNOWN_EXTERNAL.get(prefix)
        return iri if closed is None or local in closed else None

    def class_iri(self, name: str) -> str | None:
        return self._known(name, self.classes)

    def property_iri(self, name: str) -> str | None:
        return self._known(name, self.properties)

    def is_date_property(self, name: str) -> bool:
        local = name[3:] if name.startswith("kg:") else name
        return local in DATE_PROPERTIES or name in EXTERNAL_DATE_PROPERTIES
