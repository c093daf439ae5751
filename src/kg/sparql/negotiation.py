"""Content negotiation for SPARQL responses, as data: one table of formats, one chooser.

Why a table: every client sends something slightly different (rdflib an exact Accept list,
SPARQLWrapper `format`/`output`/`results` parameters with short names or MIME types, browsers
`*/*`), and the rules are easiest to audit and unit-test as rows. The response Content-Type is
always the registered media type of the chosen format (rdflib rejects anything else).

Rules, in order:
1. `format`/`output`/`results` parameters (any number, in request order): the first value that
   names a format usable for the query form wins; unknown values are ignored.
2. Otherwise `Accept` with q-values: each usable format gets the q of the most specific range
   matching its media type or one of its aliases; the highest q > 0 wins, ties going to the more
   specific match, then to the server's order (JSON before XML; Turtle first for graphs).
   No Accept header means `*/*`.
3. A CONSTRUCT/DESCRIBE asked for with only results types (or a results short name) falls back to
   Turtle, as SPARQLWrapper expects; anything else that matches nothing is 406.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from kg.errors import NotAcceptable


class Kind(Enum):
    """What a query form returns: solutions/booleans or a graph."""

    RESULTS = "results"
    GRAPH = "graph"


@dataclass(frozen=True)
class Format:
    """One response format: registered media type, aliases a client may ask with, short names."""

    key: str
    kind: Kind
    media_type: str
    aliases: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    text: bool = False  # text/* types get `; charset=utf-8`

    @property
    def content_type(self) -> str:
        return f"{self.media_type}; charset=utf-8" if self.text else self.media_type

    def matches(self) -> tuple[str, ...]:
        return (self.media_type, *self.aliases)


# Server preference order within each kind is the order of this table.
FORMATS: tuple[Format, ...] = (
    Format("json", Kind.RESULTS, "application/sparql-results+json",
           ("application/json", "text/javascript", "application/javascript"), ("json",)),
    Format("xml", Kind.RESULTS, "application/sparql-results+xml",
           ("application/xml", "text/xml"), ("xml",)),
    Format("csv", Kind.RESULTS, "text/csv", (), ("csv",), text=True),
    Format("tsv", Kind.RESULTS, "text/tab-separated-values", (), ("tsv",), text=True),
    Format("turtle", Kind.GRAPH, "text/turtle", ("application/x-turtle", "application/turtle"),
           ("turtle", "ttl", "n3"), text=True),
    Format("ntriples", Kind.GRAPH, "application/n-triples", (),
           ("nt", "ntriples", "n-triples")),
    Format("nquads", Kind.GRAPH, "application/n-quads", (), ("nq", "nquads", "n-quads")),
    Format("trig", Kind.GRAPH, "application/trig", (), ("trig",)),
    Format("rdfxml", Kind.GRAPH, "application/rdf+xml", ("application/xml", "text/xml"),
           ("rdfxml", "rdf+xml", "rdf", "xml")),
    Format("jsonld", Kind.GRAPH, "application/ld+json",
           ("application/x-json+ld", "application/json"), ("jsonld", "json-ld")),
)

BY_KEY: dict[str, Format] = {f.key: f for f in FORMATS}
FORMAT_PARAMS: tuple[str, ...] = ("format", "output", "results")
DEFAULT: dict[Kind, Format] = {Kind.RESULTS: BY_KEY["json"], Kind.GRAPH: BY_KEY["turtle"]}


def kind_of(form: str) -> Kind:
    """SELECT/ASK return results; CONSTRUCT/DESCRIBE return graphs."""
    return Kind.GRAPH if form.upper() in {"CONSTRUCT", "DESCRIBE"} else Kind.RESULTS


@dataclass(frozen=True)
class MediaRange:
    type: str
    subtype: str
    q: float
    position: int

    def specificity(self, media_type: str) -> int:
        """-1: no match; 0: */*; 1: type/*; 2: exact."""
        mtype, _, msub = media_type.partition("/")
        if self.type == "*" and self.subtype == "*":
            return 0
        if self.type == mtype and self.subtype == "*":
            return 1
        if self.type == mtype and self.subtype == msub:
            return 2
        return -1


def parse_accept(header: str | None) -> list[MediaRange]:
    """Parse an Accept header leniently: malformed pieces are skipped, bad q counts as 1."""
    if header is None or not header.strip():
        return [MediaRange("*", "*", 1.0, 0)]
    ranges: list[MediaRange] = []
    for position, piece in enumerate(header.split(",")):
        parts = [p.strip() for p in piece.split(";")]
        media = parts[0].lower()
        if "/" not in media:
            if media == "*":
                media = "*/*"
            else:
                continue
        mtype, _, msub = media.partition("/")
        q = 1.0
        for param in parts[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    q = 1.0
        ranges.append(MediaRange(mtype.strip(), msub.strip(), q, position))
    return ranges


def format_from_param(value: str, kind: Kind) -> Format | None:
    """A short name or a MIME type from `format`/`output`/`results`, if usable for `kind`."""
    value = value.split(";")[0].strip().lower()
    if not value:
        return None
    for fmt in FORMATS:
        if fmt.kind is kind and (value in fmt.names or value in fmt.matches()):
            return fmt
    return None


def _names_other_kind(value: str, kind: Kind) -> bool:
    other = Kind.GRAPH if kind is Kind.RESULTS else Kind.RESULTS
    return format_from_param(value, other) is not None


def _score(fmt: Format, ranges: Sequence[MediaRange]) -> tuple[float, int]:
    """The q of the most specific range matching the format (or an alias), and that specificity."""
    best_spec, best_q = -1, 0.0
    for media in fmt.matches():
        exact = media == fmt.media_type
        for r in ranges:
            spec = r.specificity(media)
            if spec < 0:
                continue
            # an alias matched exactly ranks below the registered type matched exactly
            rank = spec * 2 + (1 if exact else 0) if spec > 0 else 0
            if rank > best_spec or (rank == best_spec and r.q > best_q):
                best_spec, best_q = rank, r.q
    return best_q, best_spec


def negotiate(
    form: str, accept: str | None, format_values: Iterable[str] = ()
) -> Format:
    """Pick the response format for a query form; raises NotAcceptable (406)."""
    kind = kind_of(form)
    values = [v for v in format_values if v]
    for value in values:
        fmt = format_from_param(value, kind)
        if fmt is not None:
            return fmt
    ranges = parse_accept(accept)
    candidates = [fmt for fmt in FORMATS if fmt.kind is kind]
    best: Format | None = None
    best_key = (0.0, -2, 0)
    for order, fmt in enumerate(candidates):
        q, spec = _score(fmt, ranges)
        key = (q, spec, -order)
        if q > 0 and key > best_key:
            best, best_key = fmt, key
    if best is not None:
        return best
    if kind is Kind.GRAPH:
        asked_results = any(
            _score(fmt, ranges)[0] > 0 for fmt in FORMATS if fmt.kind is Kind.RESULTS
        ) or any(_names_other_kind(v, kind) for v in values)
        if asked_results:
            return DEFAULT[Kind.GRAPH]
    offered = ", ".join(fmt.media_type for fmt in candidates)
    raise NotAcceptable(
        f"No acceptable format for a {form.upper()} result (Accept: {accept!r}); "
        f"available: {offered}",
        available=[fmt.media_type for fmt in candidates],
    )
