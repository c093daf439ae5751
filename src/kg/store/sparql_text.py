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
    """SELECT, CONSTRUCT, DESCRIBE or ASK (SELECT when it cannot tell). Classification only:
    the route has guarded the text with the service's allow-lists already (guard.analyse with
    none would refuse an allow-listed SERVICE here)."""
    form = None
    for view in (text, guard.decode_escapes(text)):
        form = guard._classify(list(guard.tokenize(view))).form
        if form is not None:
            break
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


def bnode_insert_data(text: str) -> str:
    """`INSERT DATA { … }` blocks holding blank nodes written `INSERT { … } WHERE { SELECT *
    {} }`. For Virtuoso 7.2, which refuses blank nodes in INSERT DATA ("not allowed in a
    constant clause"); a template instantiated once makes the same fresh blank nodes (one per
    label). Not `WHERE {}`: with a blank node in two GRAPH blocks Virtuoso then writes the
    statements and answers 500 (SR002 "string_output_string"; W3C syntax-update-53)."""
    tokens = list(guard.tokenize(text))
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement), in text order
    for i, token in enumerate(tokens[:-2]):
        if not (token.kind == "word" and token.text.upper() == "INSERT"
                and tokens[i + 1].kind == "word" and tokens[i + 1].text.upper() == "DATA"
                and tokens[i + 2].text == "{"):
            continue
        close = _matching_close(tokens, i + 2)
        inside = [t for t in tokens[i + 3:] if t.pos < close]
        if any(t.kind == "bnode" or t.text == "[" for t in inside):
            data = tokens[i + 1]
            edits += [(data.pos, data.pos + len(data.text), ""),
                      (close + 1, close + 1, " WHERE { SELECT * {} }")]
    for start, end, replacement in reversed(edits):
        text = f"{text[:start]}{replacement}{text[end:]}"
    return text


_GRAPH_SETS = {"ALL", "NAMED", "DEFAULT"}


def explicit_graphs(text: str, graphs: list[str], default: str) -> str:
    """`DROP|CLEAR [SILENT] ALL|NAMED|DEFAULT` written as one operation per graph (`graphs` the
    named graphs, `default` the graph that holds the default graph). For Virtuoso 7.2, which
    answers these forms with success and changes nothing."""
    tokens = list(guard.tokenize(text))
    edits: list[tuple[int, int, str]] = []
    for i, token in enumerate(tokens):
        if not (token.kind == "word" and token.text.upper() in ("DROP", "CLEAR")
                and (i == 0 or tokens[i - 1].text == ";" or tokens[i - 1].kind == "iri")):
            continue
        j = i + 1
        if j < len(tokens) and tokens[j].text.upper() == "SILENT":
            j += 1
        if j >= len(tokens) or tokens[j].kind != "word" or tokens[j].text.upper() not in \
                _GRAPH_SETS:
            continue
        which = tokens[j].text.upper()
        targets = ([] if which == "DEFAULT" else list(graphs)) + (
            [default] if which in ("ALL", "DEFAULT") else [])
        verb = token.text.upper()
        ops = [f"{verb} SILENT GRAPH {ox.NamedNode(g)}" for g in targets] or [
            f"DROP SILENT GRAPH {NO_GRAPH}"]  # nothing to do: a no-op keeps the `;` grammar
        edits.append((token.pos, tokens[j].pos + len(tokens[j].text), " ;\n".join(ops)))
    for start, end, replacement in reversed(edits):
        text = f"{text[:start]}{replacement}{text[end:]}"
    return text


NO_GRAPH = ox.NamedNode("urn:kg:no-graph")
