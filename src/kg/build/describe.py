"""The source documents and their passages as RDF, in each document's own named graph."""

from __future__ import annotations

from collections.abc import Iterator

import pyoxigraph as ox

from kg.build.sources import Document, date_text
from kg.build.terms import DCT, RDF_TYPE, RDFS_LABEL, Iris, date_literal, integer

_KINDS = {"para": "Paragraph", "section": "Section", "front": "Section", "note": "Footnote"}


def document_quads(doc: Document, iris: Iris) -> Iterator[ox.Quad]:
    g = iris.doc_graph(doc.stem)
    d = iris.doc(doc.stem)
    kg = iris.term
    meta = doc.meta

    def dct(name: str) -> ox.NamedNode:
        return ox.NamedNode(DCT + name)

    yield ox.Quad(d, RDF_TYPE, kg("SourceDocument"), g)
    yield ox.Quad(d, dct("title"), ox.Literal(doc.title), g)
    yield ox.Quad(d, RDFS_LABEL, ox.Literal(str(meta.get("short") or doc.title), language="en"), g)
    yield ox.Quad(d, kg("fileName"), ox.Literal(doc.file), g)
    yield ox.Quad(d, kg("sha256"), ox.Literal(doc.sha256), g)
    if meta.get("publisher"):
        yield ox.Quad(d, dct("publisher"), ox.Literal(str(meta["publisher"])), g)
    date = date_literal(date_text(meta.get("date"))) if meta.get("date") else None
    if date is not None:
        yield ox.Quad(d, dct("date"), date, g)
    if meta.get("language"):
        yield ox.Quad(d, dct("language"), ox.Literal(str(meta["language"])), g)
    if meta.get("kind"):
        yield ox.Quad(d, dct("type"), ox.Literal(str(meta["kind"])), g)
    for p in doc.passages:
        node = iris.passage(doc.stem, p.key)
        yield ox.Quad(node, RDF_TYPE, kg(_KINDS[p.kind]), g)
        yield ox.Quad(node, kg("inDocument"), d, g)
        yield ox.Quad(node, kg("startOffset"), integer(p.start), g)
        yield ox.Quad(node, kg("endOffset"), integer(p.end), g)
        yield ox.Quad(node, kg("locator"), ox.Literal(p.locator), g)
        if p.kind == "para" and p.number is not None:
            yield ox.Quad(node, kg("paragraphNumber"), integer(p.number), g)
        if p.heading:
            yield ox.Quad(node, kg("heading"), ox.Literal(p.heading), g)
        if p.section is not None:
            yield ox.Quad(node, kg("withinSection"), iris.passage(doc.stem, p.section.key), g)
