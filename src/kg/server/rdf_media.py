"""RDF media types of the describing routes, and Accept negotiation over them (as data).

The SPARQL endpoint's own negotiation (results formats, `format=` parameters) lives in
kg.sparql.negotiation, whose Accept parser this module shares (one reading of a malformed
q: the broken parameter is ignored); this table serves the service description, VoID, entity
and ontology documents, where the choice is among RDF serialisations and HTML.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyoxigraph as ox

from kg.errors import NotAcceptable
from kg.sparql.negotiation import MediaRange, parse_accept

HTML = "text/html"


@dataclass(frozen=True)
class RdfMedia:
    """One RDF serialisation: its registered type, aliases, extension and W3C format IRI."""

    media_type: str
    format: ox.RdfFormat
    extension: str
    w3c_format: str
    aliases: tuple[str, ...] = ()

    @property
    def is_dataset(self) -> bool:
        return self.format in (ox.RdfFormat.TRIG, ox.RdfFormat.N_QUADS)


_FORMATS = "http://www.w3.org/ns/formats/"

# Order matters: the first is the default for */* and the winner of ties.
RDF_MEDIA: tuple[RdfMedia, ...] = (
    RdfMedia("text/turtle", ox.RdfFormat.TURTLE, "ttl", _FORMATS + "Turtle",
             ("application/x-turtle",)),
    RdfMedia("application/ld+json", ox.RdfFormat.JSON_LD, "jsonld", _FORMATS + "JSON-LD"),
    RdfMedia("application/rdf+xml", ox.RdfFormat.RDF_XML, "rdf", _FORMATS + "RDF_XML",
             ("application/xml", "text/xml")),
    RdfMedia("application/n-triples", ox.RdfFormat.N_TRIPLES, "nt", _FORMATS + "N-Triples",
             ("text/plain",)),
    RdfMedia("application/trig", ox.RdfFormat.TRIG, "trig", _FORMATS + "TriG",
             ("application/x-trig",)),
    RdfMedia("application/n-quads", ox.RdfFormat.N_QUADS, "nq", _FORMATS + "N-Quads",
             ("text/x-nquads",)),
)
BY_EXTENSION: dict[str, RdfMedia] = {m.extension: m for m in RDF_MEDIA}
_BY_TYPE: dict[str, RdfMedia] = {
    t: m for m in RDF_MEDIA for t in (m.media_type, *m.aliases)
}


def _quality(offer: str, accepted: list[MediaRange]) -> tuple[float, int]:
    """q of the most specific matching range (exact > type/* > */*), then its specificity."""
    best: tuple[int, float] | None = None
    for media_range in accepted:
        specificity = media_range.specificity(offer) + 1  # 1: */*, 2: type/*, 3: exact
        if specificity > 0 and (best is None or specificity > best[0]):
            best = (specificity, media_range.q)
    return (0.0, 0) if best is None else (best[1], best[0])


def negotiate(accept: str | None, html: bool = True) -> RdfMedia | None:
    """The RDF format to send, or None for HTML; NotAcceptable (406) when nothing fits.

    An explicit type beats a wildcard at equal q, so `text/html,*/*;q=0.8` (browsers) gives
    HTML and `*/*` gives Turtle; aliases (application/xml, text/plain) count as their format.
    """
    accepted = parse_accept(accept)
    offers: list[tuple[str, RdfMedia | None]] = [(HTML, None)] if html else []
    offers += [(t, m) for t, m in _BY_TYPE.items()]
    best: tuple[float, int, int] | None = None
    chosen: RdfMedia | None = None
    found = False
    for rank, (offer, media) in enumerate(offers):
        q, specificity = _quality(offer, accepted)
        if q <= 0:
            continue
        # wildcards prefer Turtle over HTML: machines send */*, browsers name text/html
        penalty = 1 if (media is None and specificity < 3) else 0
        key = (q, specificity - penalty, -rank if specificity == 3 else -_rank_default(media))
        if best is None or key > best:
            best, chosen, found = key, media, True
    if not found:
        raise NotAcceptable(
            "none of the offered types is acceptable: "
            + ", ".join([HTML] * html + [m.media_type for m in RDF_MEDIA])
        )
    return chosen


def _rank_default(media: RdfMedia | None) -> int:
    return len(RDF_MEDIA) if media is None else RDF_MEDIA.index(media)


def _used_prefixes(quads: list[ox.Quad], prefixes: dict[str, str]) -> dict[str, str]:
    """Only the prefixes the data uses, and none whose local names would need escaping
    (id:agreement\\/spa is valid Turtle but unreadable: full IRIs read better)."""
    iris = {t.value for q in quads for t in (q.subject, q.predicate, q.object, q.graph_name)
            if isinstance(t, ox.NamedNode)}
    iris |= {q.object.datatype.value for q in quads if isinstance(q.object, ox.Literal)}
    used: dict[str, str] = {}
    for prefix, ns in prefixes.items():
        locals_ = [iri[len(ns):] for iri in iris if iri.startswith(ns)]
        if locals_ and not any("/" in name for name in locals_):
            used[prefix] = ns
    return used


def serialize(
    quads: list[ox.Quad], media: RdfMedia, prefixes: dict[str, str], *, sort: bool = True
) -> bytes:
    """Quads as the chosen format; triple formats drop the graph (duplicates merged).

    `sort=False` keeps the caller's order of subjects (first appearance) so a hand-built
    description (service description, VoID) reads top-down; each subject's statements are
    grouped either way, which the Turtle and TriG writers need to nest them.
    """
    used = _used_prefixes(quads, prefixes)
    if sort:
        ordered = sorted(quads, key=lambda q: (str(q.graph_name), str(q.subject),
                                               str(q.predicate)))
    else:
        groups: dict[tuple[str, str], list[ox.Quad]] = {}
        for q in quads:
            groups.setdefault((str(q.graph_name), str(q.subject)), []).append(q)
        ordered = [q for group in groups.values() for q in group]
    if media.is_dataset:
        return ox.serialize(ordered, format=media.format, prefixes=used)
    if sort:
        ordered.sort(key=lambda q: (str(q.subject), str(q.predicate)))
    else:
        by_subject: dict[str, list[ox.Quad]] = {}
        for q in ordered:
            by_subject.setdefault(str(q.subject), []).append(q)
        ordered = [q for group in by_subject.values() for q in group]
    triples = list(dict.fromkeys(q.triple for q in ordered))
    return ox.serialize(triples, format=media.format, prefixes=used)
