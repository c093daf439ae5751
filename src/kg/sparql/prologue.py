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

import re
from urllib.parse import urljoin

import pyoxigraph as ox

from kg.sparql.guard import PN_PREFIX, decode_escapes

# whitespace and comments, wherever the grammar allows either; possessive, so that a line of
# many '#' is not split into comments in every possible way when no declaration follows
_GAPS = r"(?:\s|\#[^\n\r]*+)*+"
_IRI = r"<((?:[^<>\"{}|^`\\\x00-\x20]|\\u[0-9A-Fa-f]{4}|\\U[0-9A-Fa-f]{8})*)>"
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


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")


def _absolute(iri: str, base: str | None) -> str | None:
    if "\\" in iri:
        iri = decode_escapes(iri)
    if _SCHEME.match(iri):
        return iri if _valid(iri) else None
    # urljoin (~4 µs, hence absolute IRIs first) drops an empty fragment ("ontology#" ->
    # ".../ontology"): the fragment is put back
    reference, hash_, fragment = iri.partition("#")
    resolved = urljoin(base, reference) if base else reference
    if hash_:
        resolved = f"{resolved.partition('#')[0]}#{fragment}"
    return resolved if _valid(resolved) else None


def _valid(iri: str) -> bool:
    try:
        ox.NamedNode(iri)
    except ValueError:  # still relative, or not an IRI pyoxigraph accepts
        return False
    return True
