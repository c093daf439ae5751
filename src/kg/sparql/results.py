"""Serialize query results row by row into a binary writer, counting rows against a cap.

Why not `QuerySolutions.serialize`: it cannot stop after N rows, and the row cap must be
enforced while writing (a cartesian product can yield billions). The writers below produce the
same bytes as pyoxigraph's serializers for SELECT and ASK (tests compare them), but for a
triple term in CSV, which pyoxigraph splits (_csv_term); graphs go through
`pyoxigraph.serialize` fed by a counting generator.

Everything here runs inside a query worker, in the one thread that created the results iterator.
"""

from __future__ import annotations

import itertools
import json
import operator
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol
from xml.sax.saxutils import escape, quoteattr

import pyoxigraph as ox

XSD = "http://www.w3.org/2001/XMLSchema#"
XSD_STRING = XSD + "string"
RDF_LANG_STRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"
RDF_DIR_LANG_STRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#dirLangString"
_PLAIN_TYPES = {XSD_STRING, RDF_LANG_STRING, RDF_DIR_LANG_STRING}
_TSV_BARE = {
    XSD + "integer": re.compile(r"[+-]?[0-9]+\Z"),
    XSD + "decimal": re.compile(r"[+-]?[0-9]*\.[0-9]+\Z"),
    XSD + "double": re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][+-]?[0-9]+\Z"),
    XSD + "boolean": re.compile(r"(?:true|false)\Z"),
}

RDF_FORMATS: dict[str, ox.RdfFormat] = {
    "turtle": ox.RdfFormat.TURTLE,
    "ntriples": ox.RdfFormat.N_TRIPLES,
    "nquads": ox.RdfFormat.N_QUADS,
    "trig": ox.RdfFormat.TRIG,
    "rdfxml": ox.RdfFormat.RDF_XML,
    "jsonld": ox.RdfFormat.JSON_LD,
}
PREFIXED_FORMATS = frozenset({"turtle", "trig"})  # the formats that declare prefixes
# SELECT results in these formats are streamable (stream_solutions), without a row cap
STREAM_FORMATS = ("json", "csv", "tsv")
# ... and these written by pyoxigraph's own serializer (about a third cheaper than the writers
# below for small results); not CSV, where it splits a triple term's field (_csv_term)
_PYOXIGRAPH_STREAMS = {"json": ox.QueryResultsFormat.JSON, "tsv": ox.QueryResultsFormat.TSV}


class Writer(Protocol):
    def write(self, data: bytes) -> object: ...


class RowCapExceeded(Exception):
    """More than `max_rows` solutions or triples; nothing has been sent yet."""

    def __init__(self, cap: int) -> None:
        super().__init__(f"the result has more than {cap} rows")
        self.cap = cap


Term = ox.NamedNode | ox.BlankNode | ox.Literal | ox.Triple


def _json_term(term: Term) -> dict[str, object]:
    if isinstance(term, ox.NamedNode):
        return {"type": "uri", "value": term.value}
    if isinstance(term, ox.BlankNode):
        return {"type": "bnode", "value": term.value}
    if isinstance(term, ox.Literal):
        out: dict[str, object] = {"type": "literal", "value": term.value}
        if term.language:
            out["xml:lang"] = term.language
            if term.direction is not None:
                out["its:dir"] = str(term.direction).rsplit(".", 1)[-1].lower()
        elif term.datatype.value != XSD_STRING:
            out["datatype"] = term.datatype.value
        return out
    return {
        "type": "triple",
        "value": {
            "subject": _json_term(term.subject),
            "predicate": _json_term(term.predicate),
            "object": _json_term(term.object),
        },
    }


def _xml_term(term: Term) -> str:
    if isinstance(term, ox.NamedNode):
        return f"<uri>{escape(term.value)}</uri>"
    if isinstance(term, ox.BlankNode):
        return f"<bnode>{escape(term.value)}</bnode>"
    if isinstance(term, ox.Literal):
        value = escape(term.value, {'"': "&quot;"})
        if term.language:
            return f"<literal xml:lang={quoteattr(term.language)}>{value}</literal>"
        if term.datatype.value != XSD_STRING:
            return f"<literal datatype={quoteattr(term.datatype.value)}>{value}</literal>"
        return f"<literal>{value}</literal>"
    return (
        f"<triple><subject>{_xml_term(term.subject)}</subject>"
        f"<predicate>{_xml_term(term.predicate)}</predicate>"
        f"<object>{_xml_term(term.object)}</object></triple>"
    )


def _csv_value(term: Term) -> str:
    """A term's CSV text before quoting; a triple term's is its three parts' joined by spaces
    (as pyoxigraph writes them)."""
    if isinstance(term, ox.BlankNode):
        return f"_:{term.value}"
    if isinstance(term, ox.NamedNode | ox.Literal):
        return term.value
    return " ".join(_csv_value(t) for t in (term.subject, term.predicate, term.object))


def _csv_term(term: Term | None) -> str:
    """One CSV field, quoted as a whole when needed (RFC 4180): pyoxigraph 0.5 quotes a triple
    term's parts one by one, so a literal with a comma in it split the field."""
    if term is None:
        return ""
    value = _csv_value(term)
    if any(c in value for c in '",\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def _tsv_term(term: Term | None) -> str:
    if term is None:
        return ""
    if isinstance(term, ox.Literal):
        bare = _TSV_BARE.get(term.datatype.value)
        if bare is not None and bare.match(term.value):
            return term.value
    if isinstance(term, ox.Triple):
        inner = " ".join(_tsv_term(t) for t in (term.subject, term.predicate, term.object))
        return f"<<( {inner} )>>"
    return str(term)


def _capped(items: Iterable[object], cap: int) -> Iterator[object]:
    for count, item in enumerate(items, 1):
        if count > cap:
            raise RowCapExceeded(cap)
        yield item


def write_solutions(
    solutions: ox.QuerySolutions, fmt: str, out: Writer, max_rows: int
) -> int:
    """Write SELECT results in `fmt` (json, xml, csv, tsv); returns the row count."""
    names = [v.value for v in solutions.variables]
    rows = 0
    encode: Callable[[ox.QuerySolution], str]
    if fmt == "json":
        out.write(b'{"head":{"vars":' + _dumps(names).encode() + b'},"results":{"bindings":[')
        sep = ""

        keys = [_dumps(n) + ":" for n in names]
        term_json = _memo(_json_term_text)

        def encode(solution: ox.QuerySolution) -> str:
            nonlocal sep
            inner = ",".join(
                k + term_json(t) for k, t in zip(keys, solution, strict=True) if t is not None
            )
            text, sep = sep + "{" + inner + "}", ","
            return text

        tail = "]}}"
    elif fmt == "xml":
        head = "".join(f"<variable name={quoteattr(n)}/>" for n in names)
        out.write(
            b'<?xml version="1.0"?><sparql xmlns="http://www.w3.org/2005/sparql-results#">'
            + f"<head>{head}</head><results>".encode()
        )

        opens = [f"<binding name={quoteattr(n)}>" for n in names]
        term_xml = _memo(_xml_term)

        def encode(solution: ox.QuerySolution) -> str:
            inner = "".join(
                o + term_xml(t) + "</binding>"
                for o, t in zip(opens, solution, strict=True)
                if t is not None
            )
            return f"<result>{inner}</result>"

        tail = "</results></sparql>"
    elif fmt == "csv":
        out.write((",".join(names) + "\r\n").encode())

        term_csv = _memo(_csv_term)

        def encode(solution: ox.QuerySolution) -> str:
            return ",".join(term_csv(t) if t is not None else "" for t in solution) + "\r\n"

        tail = ""
    elif fmt == "tsv":
        out.write(("\t".join("?" + n for n in names) + "\n").encode())

        term_tsv = _memo(_tsv_term)

        def encode(solution: ox.QuerySolution) -> str:
            return "\t".join(term_tsv(t) if t is not None else "" for t in solution) + "\n"

        tail = ""
    else:
        raise ValueError(f"not a results format: {fmt}")
    batch: list[str] = []
    for solution in _capped(solutions, max_rows):
        batch.append(encode(solution))  # type: ignore[arg-type]
        rows += 1
        if len(batch) >= 256:
            out.write("".join(batch).encode())
            batch.clear()
    out.write(("".join(batch) + tail).encode())
    return rows


def stream_solutions(solutions: ox.QuerySolutions, fmt: str, out: Writer) -> None:
    """Every solution in `fmt` (one of STREAM_FORMATS), with no row cap: the byte cap and the
    time limit bound a stream."""
    serializer = _PYOXIGRAPH_STREAMS.get(fmt)
    if serializer is not None:
        solutions.serialize(out, serializer)
    else:
        write_solutions(solutions, fmt, out, sys.maxsize)


def write_boolean(value: bool, fmt: str, out: Writer) -> None:
    """ASK results, byte-compatible with pyoxigraph."""
    word = "true" if value else "false"
    if fmt == "json":
        out.write(f'{{"head":{{}},"boolean":{word}}}'.encode())
    elif fmt == "xml":
        out.write(
            b'<?xml version="1.0"?><sparql xmlns="http://www.w3.org/2005/sparql-results#">'
            + f"<head></head><boolean>{word}</boolean></sparql>".encode()
        )
    elif fmt in ("csv", "tsv"):
        out.write(word.encode())
    else:
        raise ValueError(f"not a results format: {fmt}")


def write_triples(
    triples: Iterable[ox.Triple],
    fmt: str,
    out: Writer,
    max_rows: int,
    prefixes: dict[str, str] | None = None,
) -> int:
    """Write CONSTRUCT/DESCRIBE triples in an RDF format; returns the triple count."""
    rdf_format = RDF_FORMATS[fmt]
    chosen = prefixes if fmt in PREFIXED_FORMATS and prefixes else None
    if not rdf_format.supports_datasets:
        # C iterators only (islice, zip, count): a Python generator per triple cost ~10 % of
        # a small CONSTRUCT's time in the worker
        source = iter(triples)
        counter = itertools.count()
        numbered = zip(itertools.islice(source, max_rows), counter, strict=False)
        capped = map(operator.itemgetter(0), numbered)
        ox.serialize(capped, out, rdf_format, prefixes=chosen)
        if next(source, None) is not None:
            raise RowCapExceeded(max_rows)
        return next(counter)
    count = 0

    def feed() -> Iterator[ox.Triple | ox.Quad]:
        nonlocal count
        for triple in _capped(triples, max_rows):
            count += 1
            if rdf_format.supports_datasets:
                yield ox.Quad(triple.subject, triple.predicate, triple.object)  # type: ignore[attr-defined]
            else:
                yield triple  # type: ignore[misc]

    ox.serialize(feed(), out, rdf_format, prefixes=chosen)
    return count


def _memo(encode: Callable[[Term], str], size: int = 65536) -> Callable[[Term], str]:
    """Cache term encodings: result rows repeat the same terms over and over."""
    cache: dict[Term, str] = {}

    def cached(term: Term) -> str:
        text = cache.get(term)
        if text is None:
            if len(cache) >= size:
                cache.clear()
            text = cache[term] = encode(term)
        return text

    return cached


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_json_str: Callable[[str], str] = json.encoder.encode_basestring  # type: ignore[attr-defined]


def _dumps(value: object) -> str:
    return _JSON.encode(value)


def _json_term_text(term: Term) -> str:
    """`_dumps(_json_term(term))` without building a dict (the hot path of small results)."""
    if isinstance(term, ox.NamedNode):
        return '{"type":"uri","value":' + _json_str(term.value) + "}"
    if isinstance(term, ox.Literal) and not term.language:
        datatype = term.datatype.value
        if datatype == XSD_STRING:
            return '{"type":"literal","value":' + _json_str(term.value) + "}"
        return ('{"type":"literal","value":' + _json_str(term.value) + ',"datatype":'
                + _json_str(datatype) + "}")
    return _dumps(_json_term(term))
