"""The evidence of statements: each kg:Claim as a quote inside its passage of the source text.

A claim (rdf:subject, rdf:predicate, rdf:object) supports that statement and, through
owl:inverseOf, its inverse (a claim that the SPA has party Japan supports Japan partyTo SPA).
The quote is shown in the passage around it, read from the source file the offsets were
computed on (kg.server.source_text), with a link to that passage on the document page.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pyoxigraph as ox

from kg.server.page_terms import RDF, RDF_TYPE, Reader, Value, page_href
from kg.server.source_text import Context, load_text, quote_context

OWL_INVERSE = "http://www.w3.org/2002/07/owl#inverseOf"
DCT_DATE = "http://purl.org/dc/terms/date"


@dataclass
class Evidence:
    claim: Value
    document: Value | None
    document_date: str | None
    locator: str | None
    passage_href: str | None
    quote: str | None
    context: Context | None
    graph: Value | None


def passage_anchor(passage_iri: str, document_iri: str) -> str | None:
    """The fragment of a passage on its document's page: <doc>/para/12 → para-12."""
    if not passage_iri.startswith(document_iri + "/"):
        return None
    return passage_iri[len(document_iri) + 1:].replace("/", "-")


Key = tuple[str, str, str]


class EvidenceIndex:
    """The claims found in a set of quads, by the statement they support."""

    def __init__(self, r: Reader, sources_dir: Path | None) -> None:
        self.r = r
        self.kg = r.base_iri + "ontology#"
        self.sources_dir = sources_dir
        self._texts: dict[str, str | None] = {}
        self.inverse: dict[str, str] = {}
        for q in r.quads:
            if q.predicate.value == OWL_INVERSE and isinstance(q.object, ox.NamedNode):
                self.inverse[q.subject.value] = q.object.value
                self.inverse[q.object.value] = q.subject.value
        claim_type = ox.NamedNode(self.kg + "Claim")
        nodes = {q.subject for q in r.quads
                 if q.predicate.value == RDF_TYPE and q.object == claim_type}
        self.by_statement: dict[Key, list[object]] = defaultdict(list)
        for node in sorted(nodes, key=str):
            s, p, o = (r.first(node, RDF + n) for n in ("subject", "predicate", "object"))
            if s is not None and p is not None and o is not None:
                self.by_statement[(str(s), str(p), str(o))].append(node)
        self.built: dict[str, Evidence] = {}
        self.claim_nodes = nodes

    def nodes_for(self, s: object, p: str, o: object) -> list[object]:
        found = list(self.by_statement.get((str(s), f"<{p}>", str(o)), []))
        inverse = self.inverse.get(p)
        if inverse and isinstance(o, ox.NamedNode):
            found += self.by_statement.get((str(o), f"<{inverse}>", str(s)), [])
        return found

    def for_statement(self, s: object, p: str, o: object) -> list[Evidence]:
        """Evidence for a statement, newest document first, one per claim."""
        shown = [self.evidence(node) for node in self.nodes_for(s, p, o)]
        return sorted(shown, key=lambda e: (e.document_date or "", e.locator or ""),
                      reverse=True)

    def evidence(self, node: object) -> Evidence:
        key = str(node)
        if key not in self.built:
            self.built[key] = self._make(node)
        return self.built[key]

    def _make(self, node: object) -> Evidence:
        r, kg = self.r, self.kg
        document = r.first(node, kg + "inDocument")
        passage = r.first(node, kg + "passage")
        start, end = r.integer(node, kg + "startOffset"), r.integer(node, kg + "endOffset")
        quote = r.text(node, kg + "quote")
        locator = r.text(node, kg + "locator") or (
            r.text(passage, kg + "locator") if passage is not None else None)
        href = None
        context = None
        if isinstance(document, ox.NamedNode):
            doc_page = page_href(document.value, r.base_iri, r.root)
            anchor = (passage_anchor(passage.value, document.value)
                      if isinstance(passage, ox.NamedNode) else None)
            if doc_page:
                href = f"{doc_page}#{anchor}" if anchor else doc_page
            text = self.text_of(document)
            if text is not None and start is not None and end is not None:
                span = None
                if passage is not None:
                    ps, pe = r.integer(passage, kg + "startOffset"), r.integer(
                        passage, kg + "endOffset")
                    span = (ps, pe) if ps is not None and pe is not None else None
                context = quote_context(text, start, end, span, quote)
        graphs = [r.graph(q) for q in r.about(node)]
        return Evidence(
            claim=r.value(node),
            document=r.value(document) if document is not None else None,
            document_date=r.text(document, DCT_DATE) if document is not None else None,
            locator=locator,
            passage_href=href,
            quote=quote,
            context=context,
            graph=next((g for g in graphs if g is not None), None),
        )

    def text_of(self, document: ox.NamedNode) -> str | None:
        if self.sources_dir is None:
            return None
        key = document.value
        if key not in self._texts:
            self._texts[key] = load_text(self.sources_dir,
                                         self.r.text(document, self.kg + "fileName"),
                                         self.r.text(document, self.kg + "sha256"))
        return self._texts[key]
