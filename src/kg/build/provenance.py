"""Statements to quads: the triple itself plus a kg:Claim carrying its verified evidence.

Each statement lands in the named graph of the document that says it, so a quad's graph is
its provenance; the claim adds the passage, quote and W3C Web Annotation selectors.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyoxigraph as ox

from kg.build.extraction import Statement
from kg.build.quotes import context
from kg.build.terms import OA, PROV, RDF, RDF_TYPE, Iris, integer


def claim_quads(st: Statement, iris: Iris) -> Iterator[ox.Quad]:
    ev = st.evidence
    doc = ev.doc
    g = iris.doc_graph(doc.stem)
    doc_iri = iris.doc(doc.stem)
    passage = ev.passage
    exact = ev.text
    claim = iris.claim(doc.stem, st.subject, st.predicate, st.object, exact, ev.start)
    target = ox.NamedNode(claim.value + "#target")
    quote_sel = ox.NamedNode(claim.value + "#quote")
    position = ox.NamedNode(claim.value + "#position")
    prefix, suffix = context(doc.text, ev.start, ev.end)
    kg = iris.term

    def oa(name: str) -> ox.NamedNode:
        return ox.NamedNode(OA + name)

    yield ox.Quad(st.subject, st.predicate, st.object, g)
    for p, o in (
        (RDF_TYPE, kg("Claim")),
        (ox.NamedNode(RDF + "subject"), st.subject),
        (ox.NamedNode(RDF + "predicate"), st.predicate),
        (ox.NamedNode(RDF + "object"), st.object),
        (kg("about"), st.subject),
        (kg("inDocument"), doc_iri),
        (kg("passage"), iris.passage(doc.stem, passage.key)),
        (kg("quote"), ox.Literal(exact)),
        (kg("startOffset"), integer(ev.start)),
        (kg("endOffset"), integer(ev.end)),
        (kg("locator"), ox.Literal(passage.locator)),
        (ox.NamedNode(PROV + "wasDerivedFrom"), doc_iri),
        (oa("hasTarget"), target),
    ):
        yield ox.Quad(claim, p, o, g)
    for s, p, o in (
        (target, RDF_TYPE, oa("SpecificResource")),
        (target, oa("hasSource"), doc_iri),
        (target, oa("hasSelector"), quote_sel),
        (target, oa("hasSelector"), position),
        (quote_sel, RDF_TYPE, oa("TextQuoteSelector")),
        (quote_sel, oa("exact"), ox.Literal(exact)),
        (quote_sel, oa("prefix"), ox.Literal(prefix)),
        (quote_sel, oa("suffix"), ox.Literal(suffix)),
        (position, RDF_TYPE, oa("TextPositionSelector")),
        (position, oa("start"), integer(ev.start)),
        (position, oa("end"), integer(ev.end)),
    ):
        yield ox.Quad(s, p, o, g)


def statement_quads(statements: list[Statement], iris: Iris) -> Iterator[ox.Quad]:
    for st in statements:
        yield from claim_quads(st, iris)
