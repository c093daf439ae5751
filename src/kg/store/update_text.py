"""The protocol's `using-graph-uri`/`using-named-graph-uri` parameters, applied to an update's
text (pyoxigraph's `Store.update` has no dataset arguments).

Tokens come from kg.sparql.guard's tokenizer (the one that refuses SERVICE/LOAD), so keywords
inside strings, IRIs and comments never count, and brace depth decides whether a WHERE belongs
to an operation or to a subquery.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyoxigraph as ox

from kg.errors import BadParameter
from kg.sparql import guard


def _top_level(text: str) -> list[guard.Token]:
    """Tokens outside every brace, with their offsets in `text`."""
    top: list[guard.Token] = []
    depth = 0
    for token in guard.tokenize(text):
        if token.kind == "punct" and token.text == "{":
            depth += 1
        elif token.kind == "punct" and token.text == "}":
            depth = max(0, depth - 1)
        elif depth == 0:
            top.append(token)
    return top


def apply_protocol_dataset(
    text: str, using_graph_uris: Iterable[str], using_named_graph_uris: Iterable[str]
) -> str:
    """Insert USING / USING NAMED clauses for the protocol parameters into every DELETE/INSERT
    ... WHERE operation, as SPARQL 1.1 Protocol section 2.2.3 specifies.

    A request that has both the parameters and a USING, USING NAMED or WITH clause is an error
    (400), per the same section. DELETE WHERE and the DATA forms take no dataset, so they are
    left as they are.
    """
    default = [_iri(u) for u in using_graph_uris]
    named = [_iri(u) for u in using_named_graph_uris]
    if not default and not named:
        return text
    top = _top_level(text)
    for tok in top:
        if tok.kind == "word" and tok.text.upper() in ("USING", "WITH"):
            raise BadParameter(
                "using-graph-uri/using-named-graph-uri cannot be combined with a USING or WITH "
                "clause in the update (SPARQL 1.1 Protocol, section 2.2.3)."
            )
    clause = " ".join([f"USING {g}" for g in default] + [f"USING NAMED {g}" for g in named])
    inserts: list[int] = []
    for previous, tok in zip([None, *top], top, strict=False):
        if tok.kind == "word" and tok.text.upper() == "WHERE":
            if previous is not None and previous.text.upper() == "DELETE":
                continue
            inserts.append(tok.pos)
    for position in reversed(inserts):
        text = f"{text[:position]}{clause} {text[position:]}"
    return text


def _iri(value: str) -> str:
    """An IRI parameter as SPARQL syntax; pyoxigraph validates it, so nothing can be injected."""
    try:
        return str(ox.NamedNode(value))
    except ValueError as exc:
        raise BadParameter(f"not an absolute IRI: {value!r}") from exc
