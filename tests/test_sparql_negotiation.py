"""Content negotiation for /sparql as a table: (form, Accept, format params) → format or 406."""

from __future__ import annotations

import pytest

from kg.errors import NotAcceptable
from kg.sparql.negotiation import BY_KEY, FORMATS, Kind, negotiate, parse_accept

CASES: list[tuple[str, str | None, list[str], str | None]] = [
    # form, Accept, format/output/results values, expected format key (None: 406)
    ("SELECT", None, [], "json"),
    ("SELECT", "", [], "json"),
    ("SELECT", "*/*", [], "json"),
    ("ASK", "*/*", [], "json"),
    ("CONSTRUCT", "*/*", [], "turtle"),
    ("DESCRIBE", None, [], "turtle"),
    ("SELECT", "application/sparql-results+json", [], "json"),
    ("SELECT", "application/json", [], "json"),
    ("SELECT", "application/sparql-results+xml", [], "xml"),
    ("SELECT", "text/csv", [], "csv"),
    ("SELECT", "text/tab-separated-values", [], "tsv"),
    ("SELECT", "text/csv; charset=utf-8", [], "csv"),
    # rdflib SPARQLStore's default Accept, for both forms
    ("SELECT", "application/sparql-results+xml, application/rdf+xml", [], "xml"),
    ("CONSTRUCT", "application/sparql-results+xml, application/rdf+xml", [], "rdfxml"),
    # q-values
    ("SELECT", "application/sparql-results+xml;q=0.5, text/csv", [], "csv"),
    ("SELECT", "text/csv;q=0.2, text/tab-separated-values;q=0.9", [], "tsv"),
    ("SELECT", "application/json;q=0.1, */*", [], "xml"),  # most specific range decides
    ("SELECT", "text/*", [], "csv"),
    ("SELECT", "*/*;q=0", [], None),
    ("SELECT", "application/sparql-results+json;q=0, */*", [], "xml"),
    ("SELECT", "application/sparql-results+json;q=bogus", [], "json"),
    ("CONSTRUCT", "application/n-triples;q=0.8, application/ld+json", [], "jsonld"),
    ("CONSTRUCT", "text/turtle;q=0.5, application/trig", [], "trig"),
    ("CONSTRUCT", "application/n-quads", [], "nquads"),
    ("CONSTRUCT", "application/rdf+xml", [], "rdfxml"),
    ("CONSTRUCT", "application/ld+json", [], "jsonld"),
    ("CONSTRUCT", "application/n-triples", [], "ntriples"),
    # browsers
    ("SELECT", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", [], "xml"),
    ("CONSTRUCT", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", [], "rdfxml"),
    # CONSTRUCT asked with only results types falls back to Turtle
    ("CONSTRUCT", "application/sparql-results+json", [], "turtle"),
    ("DESCRIBE", "text/csv", [], "turtle"),
    # unsupported
    ("SELECT", "text/turtle", [], None),
    ("SELECT", "image/png", [], None),
    ("CONSTRUCT", "image/png", [], None),
    ("SELECT", "garbage", [], None),
    # format parameters: short names and MIME types, duplicated, unknown ones ignored
    ("SELECT", "application/sparql-results+xml", ["json"], "json"),
    ("SELECT", None, ["json", "json", "json"], "json"),
    ("SELECT", None, ["tsv", "text/tab-separated-values"], "tsv"),
    ("SELECT", None, ["xml"], "xml"),
    ("SELECT", None, ["csv"], "csv"),
    ("SELECT", "text/csv", ["nonsense", "json"], "json"),
    ("SELECT", "text/csv", ["nonsense"], "csv"),
    ("SELECT", None, ["application/sparql-results+json"], "json"),
    ("CONSTRUCT", None, ["turtle"], "turtle"),
    ("CONSTRUCT", None, ["ttl"], "turtle"),
    ("CONSTRUCT", None, ["nt"], "ntriples"),
    ("CONSTRUCT", None, ["nq"], "nquads"),
    ("CONSTRUCT", None, ["trig"], "trig"),
    ("CONSTRUCT", None, ["rdfxml"], "rdfxml"),
    ("CONSTRUCT", None, ["rdf+xml", "application/rdf+xml"], "rdfxml"),
    ("CONSTRUCT", None, ["xml"], "rdfxml"),
    ("CONSTRUCT", None, ["jsonld"], "jsonld"),
    ("CONSTRUCT", None, ["json-ld", "application/ld+json"], "jsonld"),
    ("CONSTRUCT", None, ["n3"], "turtle"),
    # SPARQLWrapper: CONSTRUCT with JSON or CSV sends */* and format=json|csv → Turtle
    ("CONSTRUCT", "*/*", ["json", "json", "json"], "turtle"),
    ("CONSTRUCT", None, ["csv"], "turtle"),
    ("CONSTRUCT", "image/png", ["json"], "turtle"),
    # a graph format asked for a SELECT is not usable: Accept decides
    ("SELECT", "application/sparql-results+xml", ["turtle"], "xml"),
]


@pytest.mark.parametrize(("form", "accept", "params", "expected"), CASES)
def test_negotiation_table(
    form: str, accept: str | None, params: list[str], expected: str | None
) -> None:
    if expected is None:
        with pytest.raises(NotAcceptable):
            negotiate(form, accept, params)
    else:
        assert negotiate(form, accept, params).key == expected


def test_406_lists_what_is_available() -> None:
    with pytest.raises(NotAcceptable) as info:
        negotiate("SELECT", "text/turtle")
    assert "application/sparql-results+json" in info.value.detail


CONTENT_TYPES = [
    ("json", "application/sparql-results+json"),
    ("xml", "application/sparql-results+xml"),
    ("csv", "text/csv; charset=utf-8"),
    ("tsv", "text/tab-separated-values; charset=utf-8"),
    ("turtle", "text/turtle; charset=utf-8"),
    ("ntriples", "application/n-triples"),
    ("nquads", "application/n-quads"),
    ("trig", "application/trig"),
    ("rdfxml", "application/rdf+xml"),
    ("jsonld", "application/ld+json"),
]


@pytest.mark.parametrize(("key", "content_type"), CONTENT_TYPES)
def test_content_type_is_the_registered_type(key: str, content_type: str) -> None:
    assert BY_KEY[key].content_type == content_type


def test_every_format_is_in_the_content_type_table() -> None:
    assert {f.key for f in FORMATS} == {k for k, _ in CONTENT_TYPES}
    assert {f.kind for f in FORMATS} == {Kind.RESULTS, Kind.GRAPH}


def test_parse_accept_is_lenient() -> None:
    ranges = parse_accept("text/csv;q=0.5, nonsense, *;q=0.1, application/json;q=2")
    assert [(r.type, r.subtype, r.q) for r in ranges] == [
        ("text", "csv", 0.5), ("*", "*", 0.1), ("application", "json", 1.0)
    ]
