"""IRIs and literals of the build, all minted under the configured base IRI."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import pyoxigraph as ox

from kg.namespaces import STANDARD_PREFIXES, graph_iri

XSD = STANDARD_PREFIXES["xsd"]
RDF = STANDARD_PREFIXES["rdf"]
RDFS = STANDARD_PREFIXES["rdfs"]
SKOS = STANDARD_PREFIXES["skos"]
DCT = STANDARD_PREFIXES["dct"]
OA = STANDARD_PREFIXES["oa"]
PROV = STANDARD_PREFIXES["prov"]

RDF_TYPE = ox.NamedNode(RDF + "type")
RDFS_LABEL = ox.NamedNode(RDFS + "label")
SKOS_ALT = ox.NamedNode(SKOS + "altLabel")

_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


def xsd(name: str) -> ox.NamedNode:
    return ox.NamedNode(XSD + name)


def date_literal(value: object) -> ox.Literal | None:
    """YYYY-MM-DD, YYYY-MM or YYYY (string, int or date) as xsd:date/gYearMonth/gYear."""
    if isinstance(value, dt.datetime):
        return None
    if isinstance(value, dt.date):
        return ox.Literal(value.isoformat(), datatype=xsd("date"))
    if isinstance(value, bool):
        return None
    m = _DATE.fullmatch(str(value).strip())
    if not m:
        return None
    year, month, day = m.groups()
    try:
        if day:
            dt.date(int(year), int(month), int(day))
            return ox.Literal(m.group(0), datatype=xsd("date"))
        if month:
            dt.date(int(year), int(month), 1)
            return ox.Literal(m.group(0), datatype=xsd("gYearMonth"))
    except ValueError:
        return None
    return ox.Literal(year, datatype=xsd("gYear"))


def plain_literal(value: object, lang: str | None = None) -> ox.Literal:
    """Integers as xsd:integer, dates typed, other values as (language-tagged) strings."""
    if isinstance(value, bool):
        return ox.Literal("true" if value else "false", datatype=xsd("boolean"))
    if isinstance(value, int):
        return ox.Literal(str(value), datatype=xsd("integer"))
    if isinstance(value, float):
        return ox.Literal(repr(value), datatype=xsd("decimal"))
    if isinstance(value, dt.date):
        return date_literal(value)  # type: ignore[return-value]
    if lang:
        return ox.Literal(str(value), language=lang)
    return ox.Literal(str(value))


def integer(value: int) -> ox.Literal:
    return ox.Literal(str(value), datatype=xsd("integer"))


class Iris:
    """Every IRI the build mints, from one base (configuration, not code)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.kg = base + "ontology#"

    def term(self, local: str) -> ox.NamedNode:
        return ox.NamedNode(self.kg + local)

    def entity(self, entity_id: str) -> ox.NamedNode:
        return ox.NamedNode(f"{self.base}id/{entity_id}")

    def doc(self, stem: str) -> ox.NamedNode:
        return ox.NamedNode(f"{self.base}id/doc/{stem}")

    def passage(self, stem: str, key: str) -> ox.NamedNode:
        return ox.NamedNode(f"{self.base}id/doc/{stem}/{key}")

    def graph(self, name: str) -> ox.NamedNode:
        return ox.NamedNode(graph_iri(self.base, name))

    def doc_graph(self, stem: str) -> ox.NamedNode:
        return self.graph(f"doc/{stem}")

    def mention(self, stem: str, start: int, end: int) -> ox.NamedNode:
        return ox.NamedNode(f"{self.base}id/mention/{stem}/{start}-{end}")

    def claim(
        self, stem: str, s: ox.NamedNode, p: ox.NamedNode, o: object, quote: str, start: int
    ) -> ox.NamedNode:
        """Opaque but deterministic: the same evidence gives the same claim IRI on every build."""
        key = "\x1f".join([stem, s.value, p.value, str(o), quote, str(start)])
        return ox.NamedNode(f"{self.base}id/claim/{hashlib.sha1(key.encode()).hexdigest()[:12]}")
