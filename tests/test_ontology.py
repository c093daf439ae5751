"""The ontology is tested like code: it parses, is versioned, and documents every term."""

from __future__ import annotations

import pytest
from rdflib import OWL, RDF, RDFS, Graph, URIRef

from kg import paths

BASE = "http://localhost:8000/"
KG = BASE + "ontology#"


@pytest.fixture(scope="module")
def ontology() -> Graph:
    graph = Graph()
    graph.parse(paths.ONTOLOGY_DIR / "kg.ttl", format="turtle", publicID=BASE)
    return graph


def _terms(graph: Graph) -> list[URIRef]:
    kinds = (OWL.Class, OWL.ObjectProperty, OWL.DatatypeProperty)
    return sorted(
        {s for kind in kinds for s in graph.subjects(RDF.type, kind) if str(s).startswith(KG)}
    )


def test_ontology_is_versioned(ontology: Graph) -> None:
    onto = URIRef(BASE + "ontology")
    assert (onto, RDF.type, OWL.Ontology) in ontology
    version = ontology.value(onto, OWL.versionIRI)
    assert version is not None and str(version).startswith(BASE + "ontology/")


def test_every_term_has_english_label_and_comment(ontology: Graph) -> None:
    terms = _terms(ontology)
    assert len(terms) > 60
    missing = [
        str(t)
        for t in terms
        if not any(getattr(v, "language", None) == "en" for v in ontology.objects(t, RDFS.label))
        or not any(getattr(v, "language", None) == "en" for v in ontology.objects(t, RDFS.comment))
    ]
    assert missing == []


def test_object_properties_have_domain_or_range(ontology: Graph) -> None:
    """Only deliberately generic relations (specialising dct:relation/references) are open."""
    generic = {
        URIRef("http://purl.org/dc/terms/relation"),
        URIRef("http://purl.org/dc/terms/references"),
    }
    lacking = [
        str(p)
        for p in ontology.subjects(RDF.type, OWL.ObjectProperty)
        if (p, RDFS.domain, None) not in ontology
        and (p, RDFS.range, None) not in ontology
        and not set(ontology.objects(p, RDFS.subPropertyOf)) & generic
    ]
    assert lacking == []


def test_own_terms_align_to_standard_vocabularies(ontology: Graph) -> None:
    """Actors, agreements, events and claims specialise ORG, PROV, SEM and Web Annotation."""
    expectations = {
        "Organisation": "http://www.w3.org/ns/org#Organization",
        "Actor": "http://www.w3.org/ns/prov#Agent",
        "Event": "http://semanticweb.cs.vu.nl/2009/11/sem/Event",
        "Claim": "http://www.w3.org/ns/oa#Annotation",
        "CooperationArea": "http://www.w3.org/2004/02/skos/core#Concept",
        "Tenure": "http://www.w3.org/ns/org#Membership",
    }
    for local, parent in expectations.items():
        assert (URIRef(KG + local), RDFS.subClassOf, URIRef(parent)) in ontology, local


def test_every_referenced_kg_term_is_declared(ontology: Graph) -> None:
    declared = set(_terms(ontology))
    used = {o for o in ontology.objects() if isinstance(o, URIRef) and str(o).startswith(KG)}
    assert used - declared == set()


def test_vocabularies_parse_and_type_their_concepts() -> None:
    graph = Graph()
    graph.parse(paths.ONTOLOGY_DIR / "vocabularies.ttl", format="turtle", publicID=BASE)
    statuses = set(graph.subjects(RDF.type, URIRef(KG + "AgreementStatus")))
    modalities = set(graph.subjects(RDF.type, URIRef(KG + "Modality")))
    assert URIRef(BASE + "id/status/in-force") in statuses
    assert URIRef(BASE + "id/modality/will-explore") in modalities
