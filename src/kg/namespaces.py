"""Prefixes, bound in one place. kg's own namespaces depend on the configured base IRI."""

from __future__ import annotations

STANDARD_PREFIXES: dict[str, str] = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "dct": "http://purl.org/dc/terms/",
    "org": "http://www.w3.org/ns/org#",
    "prov": "http://www.w3.org/ns/prov#",
    "oa": "http://www.w3.org/ns/oa#",
    "schema": "http://schema.org/",
    "sem": "http://semanticweb.cs.vu.nl/2009/11/sem/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "eli": "http://data.europa.eu/eli/ontology#",
    "time": "http://www.w3.org/2006/time#",
    "sh": "http://www.w3.org/ns/shacl#",
    "void": "http://rdfs.org/ns/void#",
    "dcat": "http://www.w3.org/ns/dcat#",
    "sd": "http://www.w3.org/ns/sparql-service-description#",
    "wd": "http://www.wikidata.org/entity/",
}


def kg_prefixes(base_iri: str) -> dict[str, str]:
    """The project's own prefixes under a base IRI, then the standard ones."""
    return {
        "kg": f"{base_iri}ontology#",
        "id": f"{base_iri}id/",
        "graph": f"{base_iri}graph/",
        **STANDARD_PREFIXES,
    }


def graph_iri(base_iri: str, name: str) -> str:
    """Named graphs: graph/doc/<stem>, graph/ontology, graph/vocabulary, graph/mentions..."""
    return f"{base_iri}graph/{name}"
