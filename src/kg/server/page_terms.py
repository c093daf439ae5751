"""Terms ready for page templates: labels looked up within a set of quads, IRIs as links.

Every page (entity, document, ontology) reads the quads it was given through a `Reader`, so
a label shown is always one the store holds, preferring rdfs:label, then skos:prefLabel,
then dct:title, English first.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import pyoxigraph as ox

from kg.namespaces import STANDARD_PREFIXES, kg_prefixes
from kg.server.html import local_href

RDF = STANDARD_PREFIXES["rdf"]
RDFS = STANDARD_PREFIXES["rdfs"]
SKOS = STANDARD_PREFIXES["skos"]
DCT = STANDARD_PREFIXES["dct"]
XSD = STANDARD_PREFIXES["xsd"]
LABELS = (RDFS + "label", SKOS + "prefLabel", DCT + "title")
RDF_TYPE = RDF + "type"


@dataclass
class Value:
    """A term ready for a template: text to show, and a link for IRIs."""

    text: str
    href: str | None = None
    iri: str | None = None
    lang: str | None = None
    datatype: str | None = None


def page_href(iri: str, base_iri: str, root: str) -> str | None:
    """The HTML page of a resource under the base (no 303 hop), None outside it."""
    if iri.startswith(base_iri):
        return f"{root}/page/{iri[len(base_iri):]}"
    return None


def capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


class Reader:
    """Looks up labels and statements, and renders terms, within one set of quads."""

    def __init__(self, quads: list[ox.Quad], base_iri: str, root: str) -> None:
        self.quads = quads
        self.base_iri = base_iri
        self.root = root
        self.prefixes = kg_prefixes(base_iri)
        self.labels: dict[str, str] = {}
        self._by_subject: dict[object, list[ox.Quad]] = defaultdict(list)
        ranked: dict[str, int] = {}
        for q in quads:
            self._by_subject[q.subject].append(q)
            if q.predicate.value in LABELS and isinstance(q.object, ox.Literal):
                lang = q.object.language
                rank = LABELS.index(q.predicate.value) * 3 + (
                    0 if lang == "en" else 1 if not lang else 2)
                key = str(q.subject)
                if key not in ranked or rank < ranked[key]:
                    ranked[key], self.labels[key] = rank, q.object.value

    def curie(self, iri: str) -> str:
        for prefix, ns in self.prefixes.items():
            if iri.startswith(ns) and len(iri) > len(ns):
                return f"{prefix}:{iri[len(ns):]}"
        return iri

    def expand(self, curie: str) -> str:
        prefix, _, local = curie.partition(":")
        return self.prefixes[prefix] + local

    def label_of(self, term: object) -> str:
        if isinstance(term, ox.NamedNode):
            return self.labels.get(str(term)) or self.curie(term.value)
        return term.value if isinstance(term, ox.Literal | ox.BlankNode) else str(term)

    def value(self, term: object) -> Value:
        if isinstance(term, ox.NamedNode):
            return Value(self.label_of(term), local_href(term.value, self.base_iri, self.root),
                         term.value)
        if isinstance(term, ox.Literal):
            datatype = term.datatype.value
            shown = None if datatype in (XSD + "string", RDF + "langString", XSD + "date",
                                         XSD + "integer") else self.curie(datatype)
            return Value(term.value, lang=term.language, datatype=shown)
        if isinstance(term, ox.BlankNode):
            return Value(f"_:{term.value}")
        return Value(str(term))

    def graph(self, quad: ox.Quad) -> Value | None:
        g = quad.graph_name
        return None if isinstance(g, ox.DefaultGraph) else self.value(g)

    def about(self, subject: object) -> list[ox.Quad]:
        return self._by_subject.get(subject, [])

    def objects(self, subject: object, predicate: str) -> list[object]:
        seen: dict[str, object] = {}
        for q in self._by_subject.get(subject, []):
            if q.predicate.value == predicate:
                seen.setdefault(str(q.object), q.object)
        return list(seen.values())

    def first(self, subject: object, predicate: str) -> object | None:
        found = self.objects(subject, predicate)
        return found[0] if found else None

    def text(self, subject: object, predicate: str) -> str | None:
        """A literal value (English or untagged first)."""
        values = [o for o in self.objects(subject, predicate) if isinstance(o, ox.Literal)]
        english = [o for o in values if o.language in ("en", None, "")]
        chosen = english or values
        return chosen[0].value if chosen else None

    def integer(self, subject: object, predicate: str) -> int | None:
        found = self.text(subject, predicate)
        try:
            return int(found) if found is not None else None
        except ValueError:
            return None
