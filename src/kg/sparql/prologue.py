"""The prefixes a query declares, for the prefixes of its Turtle or TriG answer.

Why: a CONSTRUCT or DESCRIBE answer in Turtle reads best with the prefixes its author chose,
which is what Fuseki writes. Declaring all of kg's 22 prefixes instead cost the worker ~0.6 µs
per declared prefix per answer and made the benchmark's small CONSTRUCT answers (which declare
two) 18 % larger: a median of 1,945 bytes against 1,648 (bench/NOTES.md).

Only the prologue is read (BASE, PREFIX and VERSION declarations, whitespace and comments, from
the start of the text), the way the parser reads it: later text cannot declare a prefix. What
this returns only chooses how the answer is abbreviated: Turtle's own `@prefix` lines say what
each prefix means, so a mapping this skips (an IRI with an escape, one that does not resolve)
costs readability, never correctness. `\\u` escapes in an IRI are decoded, as pyoxigraph
decodes them.
"""

from __future__ import annotations

import functools
import re

import pyoxigraph as ox

from kg.sparql.guard import PN_PREFIX, decode_escapes

# whitespace and comments, wherever the grammar allows either; possessive, so that a line of
# many '#' is not split into comments in every possible way when no declaration follows
_GAPS = r"(?:\s|\#[^\n\r]*+)*+"
# runs of plain characters taken whole (possessive: the class excludes `\\` and `>`, so
# nothing after a run could use a part of it): per character, the alternation cost ~1 µs per IRI
_IRI = r"<((?:[^<>\"{}|^`\\\x00-\x20]++|\\u[0-9A-Fa-f]{4}|\\U[0-9A-Fa-f]{8})*+)>"
_DECLARATION = re.compile(
    rf"""{_GAPS}
    (?: (?P<base>BASE){_GAPS}{_IRI}
      | PREFIX(?=[\s\#]){_GAPS}(?P<prefix>{PN_PREFIX})?:{_GAPS}{_IRI}
      | VERSION{_GAPS}(?:"[^"\\\n\r]*"|'[^'\\\n\r]*'))""",
    re.IGNORECASE | re.VERBOSE,
)


def declared_prefixes(query: str, base_iri: str | None = None) -> dict[str, str]:
    """Prefix name -> namespace IRI, as the query's prologue declares them (the last one of a
    name wins, relative IRIs resolved against BASE, else `base_iri`)."""
    prefixes: dict[str, str] = {}
    base = base_iri
    position = 0
    while (match := _DECLARATION.match(query, position)) is not None:
        position = match.end()
        if match["base"] is not None:
            base = _absolute(match[2], base)
        elif match[4] is not None:
            namespace = _absolute(match[4], base)
            if namespace is not None:
                prefixes[match["prefix"] or ""] = namespace
    return prefixes


# what the request process reads and keeps; beyond either, the query worker reads the prefixes
MEMO_PROLOGUE_CHARS = 4096  # of prologue text
MEMO_NAMESPACE_CHARS = 8192  # of names and namespaces (relative ones can grow: `<>` is the base)


@functools.lru_cache(maxsize=256)
def _memo(prologue: str, base_iri: str | None) -> dict[str, str] | None:
    prefixes = declared_prefixes(prologue, base_iri)
    if sum(len(name) + len(iri) for name, iri in prefixes.items()) > MEMO_NAMESPACE_CHARS:
        return None
    return prefixes


def prologue_prefixes(prologue: str, base_iri: str | None = None) -> dict[str, str] | None:
    """`declared_prefixes` of a query's prologue alone (the text before its query form, which
    kg.sparql.guard found), remembered: a client sends the same prologue query after query.
    Why: read in the query worker, it cost ~4 µs of a small CONSTRUCT there, and small
    CONSTRUCTs are bound by that one busy worker. None for a prologue over
    MEMO_PROLOGUE_CHARS or namespaces over MEMO_NAMESPACE_CHARS: the worker reads those, under
    the time and memory limits (a long prologue of relative prefixes against a long BASE grows
    quadratically, and must not block the event loop or fill this memo). The dict returned
    is shared: do not change it."""
    if len(prologue) > MEMO_PROLOGUE_CHARS:
        return None
    return _memo(prologue, base_iri)


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_NOT_IN_IRIS = re.compile(r'[<>"{}|^`\\\x00-\x20]')


def _absolute(iri: str, base: str | None) -> str | None:
    """`iri` resolved as the engine resolves it, or None when it cannot be."""
    if "\\" in iri:
        iri = decode_escapes(iri)
    if _NOT_IN_IRIS.search(iri):
        return None
    if _SCHEME.match(iri):
        try:
            ox.NamedNode(iri)
        except ValueError:
            return None
        return iri
    if base is None:
        return None
    # resolved by pyoxigraph's own parser (RFC 3986, as its query parser does; ~2.5 µs):
    # urllib's urljoin drops empty fragments, lowercases schemes, and raises on some hosts
    try:
        (quad,) = ox.parse(f"<{iri}> <x:p> <x:o> .".encode(), format=ox.RdfFormat.TURTLE,
                           base_iri=base)
    except (SyntaxError, ValueError):
        return None
    return quad.subject.value  # type: ignore[union-attr]
