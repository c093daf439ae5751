"""Which graphs a SPARQL Update can read or write, read off its text (for remote rehearsals).

A remote store rehearses an update on an in-memory copy of what it can touch, not of the whole
backend. The scope is found with the guard's tokenizer and is conservative: graph IRIs named
after GRAPH, WITH, USING [NAMED], INTO, ADD/MOVE/COPY and TO; the default graph when a pattern
or a triple stands outside every GRAPH block (FILTER/BIND expressions and VALUES data aside)
or DEFAULT is named; every named graph when a graph is a variable or ALL/NAMED is cleared or
dropped; everything when the text names a graph it cannot resolve. A BASE of the text's own
is followed (resolving the IRIs after it); taking it for "everything" made the default graph
look read, which over Virtuoso sent the update with `default-graph-uri` and broke its GRAPH
templates (W3C update suite, delete-02: nothing deleted).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urljoin

from kg.sparql import guard

GRAPH_KEYWORDS = {"GRAPH", "WITH", "INTO", "TO"}
OPERAND_KEYWORDS = {"ADD", "MOVE", "COPY"}
STRUCTURE = {"OPTIONAL", "MINUS", "UNION", ".", ";", "SERVICE", "SILENT"}


@dataclass
class Scope:
    graphs: set[str] = field(default_factory=set)
    default: bool = False
    all_named: bool = False


def update_scope(text: str, base_iri: str) -> Scope:
    tokens = list(guard.tokenize(guard.decode_escapes(text)))
    scope = Scope()
    prefixes: dict[str, str] = {}

    def resolve(token: guard.Token) -> str | None:
        if token.kind == "iri":
            return urljoin(base_iri, token.text[1:-1])
        if token.kind == "pname":
            prefix, _, local = token.text.partition(":")
            if prefix in prefixes:
                return urljoin(base_iri, prefixes[prefix] + local)
        return None

    def everything() -> Scope:
        return Scope(default=True, all_named=True)

    stack: list[str] = []  # "graph" or "group" per open brace
    pending_graph = False
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        word = tok.text.upper() if tok.kind == "word" else ""
        if word == "BASE":  # later relative IRIs (and PREFIX IRIs) resolve against it
            if i + 1 >= len(tokens) or tokens[i + 1].kind != "iri":
                return everything()
            base_iri = urljoin(base_iri, tokens[i + 1].text[1:-1])
            i += 2
            continue
        if word == "PREFIX" and i + 2 < len(tokens) and tokens[i + 2].kind == "iri":
            prefixes[tokens[i + 1].text.rstrip(":")] = urljoin(base_iri, tokens[i + 2].text[1:-1])
            i += 3
            continue
        if tok.kind == "punct" and tok.text == "{":
            stack.append("graph" if pending_graph else "group")
            pending_graph = False
            i += 1
            continue
        if tok.kind == "punct" and tok.text == "}":
            if stack:
                stack.pop()
            i += 1
            continue
        in_graph = "graph" in stack
        previous = tokens[i - 1].text.upper() if i else ""
        if word in GRAPH_KEYWORDS | {"USING"} or (word == "NAMED" and previous == "USING"):
            following = tokens[i + 1] if i + 1 < len(tokens) else None
            if following is None:
                break
            if following.kind == "word" and following.text.upper() in ("NAMED", "DEFAULT"):
                i += 1
                continue
            if following.kind == "var":
                scope.all_named = True
            else:
                iri = resolve(following)
                if iri is None:
                    return everything()
                scope.graphs.add(iri)
            pending_graph = word == "GRAPH" and bool(stack)
            i += 2
            continue
        if word in OPERAND_KEYWORDS | {"SILENT"} and i + 1 < len(tokens):
            following = tokens[i + 1]
            iri = resolve(following)
            if iri is not None:
                scope.graphs.add(iri)
                i += 2
                continue
        if word == "DEFAULT" and not stack:
            scope.default = True
        elif word in ("ALL", "NAMED") and not stack:
            scope.all_named = True
            scope.default = scope.default or word == "ALL"
        elif stack and not in_graph:
            if word in ("FILTER", "BIND") and i + 1 < len(tokens) and tokens[i + 1].text == "(":
                i = _skip_parens(tokens, i + 1)
                continue
            if word == "VALUES":
                i = _skip_values(tokens, i + 1)
                continue
            if word not in STRUCTURE and tok.text not in STRUCTURE:
                scope.default = True
        i += 1
    return scope


def _skip_parens(tokens: list[guard.Token], start: int) -> int:
    """Index after the parenthesised expression opening at `start`."""
    depth = 0
    for j in range(start, len(tokens)):
        if tokens[j].text == "(":
            depth += 1
        elif tokens[j].text == ")":
            depth -= 1
            if depth == 0:
                return j + 1
        elif tokens[j].text in ("{", "}"):  # EXISTS inside: be conservative
            return j
    return len(tokens)


def _skip_values(tokens: list[guard.Token], start: int) -> int:
    """Index after a VALUES block's data braces."""
    depth = 0
    for j in range(start, len(tokens)):
        if tokens[j].text == "{":
            depth += 1
        elif tokens[j].text == "}":
            depth -= 1
            if depth == 0:
                return j + 1
    return len(tokens)
