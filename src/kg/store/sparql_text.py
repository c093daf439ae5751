"""Query text for a remote backend: the base IRI and pre-bound values, written into the text.

pyoxigraph takes a base IRI and substitutions as arguments; the SPARQL protocol has neither, so
a remote store gets them as text, made from pyoxigraph terms (never from request text):
- `with_base` puts `BASE <base>` before the query on the same line (a BASE of the query itself
  still wins, and one that opens the query is kept alone; line numbers in the backend's error
  messages stay right);
- `bind` replaces each bound variable by its term inside the outermost group and binds it once
  more with `VALUES` at the start of that group, so the projection, GROUP BY and ORDER BY still
  see the variable: the same answers as a substitution, and the backend's optimiser sees
  constants.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyoxigraph as ox

from kg.sparql import guard

Term = ox.NamedNode | ox.BlankNode | ox.Literal


def with_base(text: str, base_iri: str) -> str:
    """`BASE <base>` before the text, unless the text opens with its own BASE (which would win
    anyway, and Virtuoso refuses a second BASE: its prologue is SPARQL 1.0's)."""
    first = next(guard.tokenize(text), None)
    if first is not None and first.kind == "word" and first.text.upper() == "BASE":
        return text
    return f"BASE {ox.NamedNode(base_iri)} {text}"


def query_form(text: str) -> str:
    """SELECT, CONSTRUCT, DESCRIBE or ASK (SELECT when it cannot tell)."""
    form = guard.analyse(text).form if text.strip() else None
    return form if form in ("SELECT", "CONSTRUCT", "DESCRIBE", "ASK") else "SELECT"


def bind(text: str, bindings: Mapping[str, Term]) -> str:
    if not bindings:
        return text
    tokens = list(guard.tokenize(text))
    opening = next((t for t in tokens if t.kind == "punct" and t.text == "{"), None)
    if opening is None:
        raise ValueError("a query without a group pattern cannot take bindings")
    closing = _matching_close(tokens, tokens.index(opening))
    names = {f"{sigil}{name}": term for name, term in bindings.items() for sigil in "?$"}
    parts: list[str] = []
    last = 0
    projecting = False  # inside a sub-query's SELECT clause: keep the name, bind the value
    for token in tokens:
        if token.kind == "word" and token.text.upper() in ("SELECT", "WHERE"):
            projecting = token.text.upper() == "SELECT"
        elif token.kind == "punct" and token.text == "{":
            projecting = False
        if not opening.pos < token.pos < closing or token.kind != "var" or token.text not in names:
            continue
        value = str(names[token.text])
        parts += [text[last:token.pos], f"({value} AS {token.text})" if projecting else value]
        last = token.pos + len(token.text)
    body = "".join(parts) + text[last:]
    # the VALUES goes right after the opening brace (which precedes every replacement)
    values = " ".join(f"VALUES ?{name} {{ {term} }}" for name, term in bindings.items())
    cut = opening.pos + 1
    return f"{body[:cut]} {values} {body[cut:]}"


def _matching_close(tokens: list[guard.Token], index: int) -> int:
    """Text position of the brace closing the one at tokens[index]."""
    depth = 0
    for token in tokens[index:]:
        if token.kind == "punct" and token.text == "{":
            depth += 1
        elif token.kind == "punct" and token.text == "}":
            depth -= 1
            if depth == 0:
                return token.pos
    raise ValueError("unbalanced braces")


GRAPH_MANAGEMENT = {"DROP", "CLEAR", "CREATE", "ADD", "MOVE", "COPY"}


def silenced(text: str) -> str:
    """Graph management operations made SILENT. For Virtuoso, which refuses DROP/CLEAR of a
    graph it did not see created (it keeps no empty graphs); the rehearsal has already applied
    the standard's errors, so nothing the client should hear about is hidden."""
    tokens = list(guard.tokenize(text))
    cuts = [
        token.pos + len(token.text)
        for i, token in enumerate(tokens)
        if token.kind == "word" and token.text.upper() in GRAPH_MANAGEMENT
        and (i == 0 or tokens[i - 1].text in (";", ">") or tokens[i - 1].kind in ("iri",))
        and not (i + 1 < len(tokens) and tokens[i + 1].text.upper() == "SILENT")
    ]
    for cut in reversed(cuts):
        text = f"{text[:cut]} SILENT{text[cut:]}"
    return text
