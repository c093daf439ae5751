"""The row-capped results writers produce the same bytes as pyoxigraph's own serializers."""

from __future__ import annotations

import csv
import io

import pyoxigraph as ox
import pytest

from kg.sparql.results import RowCapExceeded, write_boolean, write_solutions, write_triples

XSD = "http://www.w3.org/2001/XMLSchema#"
EX = "http://example.org/"


@pytest.fixture(scope="module")
def store() -> ox.Store:
    s = ox.Store()
    s1, p = ox.NamedNode(EX + "s"), ox.NamedNode(EX + "p")
    objects = [
        ox.Literal("tab\there, \"quoted\"\nnew line <tag> & amp", language="en"),
        ox.Literal("12", datatype=ox.NamedNode(XSD + "integer")),
        ox.Literal("0.5", datatype=ox.NamedNode(XSD + "decimal")),
        ox.Literal("1.5E3", datatype=ox.NamedNode(XSD + "double")),
        ox.Literal("true", datatype=ox.NamedNode(XSD + "boolean")),
        ox.Literal("2024-11-01", datatype=ox.NamedNode(XSD + "date")),
        ox.Literal("plain ünïcödé"),
        ox.NamedNode(EX + "o?x=1&y=2"),
        ox.BlankNode("b0"),
    ]
    for o in objects:
        s.add(ox.Quad(s1, p, o))
    s.add(ox.Quad(ox.BlankNode("b1"), p, s1))
    return s


QUERIES = [
    "SELECT ?s ?o ?unbound WHERE { ?s ?p ?o }",
    "SELECT * WHERE { FILTER(false) }",
    "SELECT ?s (<<( ?s ?p ?o )>> AS ?t) WHERE { ?s ?p ?o }",
]


# CSV of a triple term is not compared: pyoxigraph splits such a field
# (test_csv_triple_term_is_one_field)
@pytest.mark.parametrize(("query", "fmt"), [
    (query, fmt) for query in QUERIES for fmt in ["json", "xml", "csv", "tsv"]
    if not (fmt == "csv" and "<<(" in query)])
def test_solutions_match_pyoxigraph(store: ox.Store, query: str, fmt: str) -> None:
    expected = store.query(query).serialize(format=getattr(ox.QueryResultsFormat, fmt.upper()))
    out = io.BytesIO()
    write_solutions(store.query(query), fmt, out, max_rows=1000)
    assert out.getvalue() == expected


@pytest.mark.parametrize("fmt", ["json", "xml", "csv", "tsv"])
@pytest.mark.parametrize("value", [True, False])
def test_boolean_matches_pyoxigraph(store: ox.Store, fmt: str, value: bool) -> None:
    query = "ASK { ?s ?p ?o }" if value else "ASK { FILTER(false) }"
    expected = store.query(query).serialize(format=getattr(ox.QueryResultsFormat, fmt.upper()))
    out = io.BytesIO()
    write_boolean(bool(store.query(query)), fmt, out)
    assert out.getvalue() == expected


def test_row_cap_on_solutions(store: ox.Store) -> None:
    with pytest.raises(RowCapExceeded):
        write_solutions(store.query("SELECT * { ?s ?p ?o }"), "json", io.BytesIO(), max_rows=3)
    out = io.BytesIO()
    assert write_solutions(store.query("SELECT * { ?s ?p ?o }"), "csv", out, max_rows=10) == 10


@pytest.mark.parametrize("fmt", ["turtle", "ntriples", "nquads", "trig", "rdfxml", "jsonld"])
def test_triples_round_trip(store: ox.Store, fmt: str) -> None:
    out = io.BytesIO()
    count = write_triples(store.query("CONSTRUCT WHERE { ?s ?p ?o }"), fmt, out, 100,
                          prefixes={"ex": EX})
    assert count == 10
    rdf_format = {"turtle": ox.RdfFormat.TURTLE, "ntriples": ox.RdfFormat.N_TRIPLES,
                  "nquads": ox.RdfFormat.N_QUADS, "trig": ox.RdfFormat.TRIG,
                  "rdfxml": ox.RdfFormat.RDF_XML, "jsonld": ox.RdfFormat.JSON_LD}[fmt]
    assert len(list(ox.parse(out.getvalue(), rdf_format))) == 10


def test_row_cap_on_triples(store: ox.Store) -> None:
    with pytest.raises(RowCapExceeded):
        write_triples(store.query("CONSTRUCT WHERE { ?s ?p ?o }"), "turtle", io.BytesIO(), 5)


@pytest.mark.parametrize("fmt", ["turtle", "nquads"])
def test_a_graph_of_exactly_the_cap_is_written_one_more_is_refused(store: ox.Store,
                                                                   fmt: str) -> None:
    out = io.BytesIO()
    assert write_triples(store.query("CONSTRUCT WHERE { ?s ?p ?o }"), fmt, out, 10) == 10
    assert out.getvalue()
    with pytest.raises(RowCapExceeded):
        write_triples(store.query("CONSTRUCT WHERE { ?s ?p ?o }"), fmt, io.BytesIO(), 9)


def test_csv_triple_term_is_one_field(store: ox.Store) -> None:
    """A triple term whose literal holds a comma, quotes and a line break stays one CSV field
    (RFC 4180): its parts joined by spaces, the whole quoted once."""
    query = "SELECT ?s (<<( ?s ?p ?o )>> AS ?t) WHERE { ?s ?p ?o }"
    out = io.BytesIO()
    write_solutions(store.query(query), "csv", out, max_rows=1000)
    rows = list(csv.reader(io.StringIO(out.getvalue().decode("utf-8"), newline="")))

    def plain(term: ox.NamedNode | ox.BlankNode | ox.Literal) -> str:
        return f"_:{term.value}" if isinstance(term, ox.BlankNode) else term.value

    expected = [["s", "t"]] + [
        [plain(q.subject), f"{plain(q.subject)} {plain(q.predicate)} {plain(q.object)}"]
        for q in store.quads_for_pattern(None, None, None)]
    assert sorted(rows[1:]) == sorted(expected[1:]) and rows[0] == expected[0]
    assert any("," in row[1] and '"' in row[1] for row in rows[1:])  # the hard case is there
