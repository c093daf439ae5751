"""A query whose group is a plain UNION, run as one query per branch (for Virtuoso 7.2).

Virtuoso 7.2's SPARQL optimiser mishandles the service's larger page queries: on
describe_entity.rq it stops with "SP031 Internal error: sparp_gp_deprecate", and on
entity_neighbours.rq it silently loses the rows of some branches (its equivalence classes
carry a FILTER on ?p from one branch into another). Each branch alone is simple and correct
there, so `RemoteStore.select` sends such a query branch by branch and concatenates the rows,
keeping the first occurrence of each when the query is SELECT DISTINCT. The answer is the
same multiset the whole query has: a UNION's solutions are those of its branches, in order.

Only queries of the form `prologue SELECT [DISTINCT] … WHERE { {A} UNION {B} … }` with
nothing after the group are split; any other query goes as it is. (A branch Virtuoso still
gets wrong needs a `<name>.virtuoso.rq` variant: kg.server.queries.variant.) Not used for the
embedded store or Oxigraph server: there the whole query gives the same rows at least as fast.
"""

from __future__ import annotations

import itertools

from kg.sparql import guard
from kg.store.base import Row


def branches(text: str) -> list[str] | None:
    """One query per top-level UNION branch, or None when `text` is not of the split form."""
    tokens = list(guard.tokenize(text))
    start = next((i for i, t in enumerate(tokens) if t.kind == "punct" and t.text == "{"), None)
    if start is None or not any(t.kind == "word" and t.text.upper() == "SELECT"
                                for t in tokens[:start]):
        return None
    groups: list[tuple[int, int]] = []  # text positions of each branch's braces
    depth, opened, expect_group = 0, 0, True
    end = None
    for index in range(start, len(tokens)):
        token = tokens[index]
        if token.kind == "punct" and token.text == "{":
            depth += 1
            if depth == 2:
                if not expect_group:
                    return None
                opened, expect_group = token.pos, False
        elif token.kind == "punct" and token.text == "}":
            depth -= 1
            if depth == 1:
                groups.append((opened, token.pos))
            elif depth == 0:
                end = index
                break
        elif depth == 1:  # between the branches: only UNION
            if expect_group or token.kind != "word" or token.text.upper() != "UNION":
                return None
            expect_group = True
    if end is None or end != len(tokens) - 1 or expect_group or len(groups) < 2:
        return None
    head, tail = text[:tokens[start].pos + 1], text[tokens[end].pos:]
    return [f"{head}\n{text[a + 1:b]}\n{tail}" for a, b in groups]


def is_distinct(text: str) -> bool:
    """Whether the query's first SELECT is SELECT DISTINCT (or REDUCED)."""
    tokens = [t for t in guard.tokenize(text) if t.kind == "word"]
    for first, second in itertools.pairwise(tokens):
        if first.text.upper() == "SELECT":
            return second.text.upper() in ("DISTINCT", "REDUCED")
    return False


def distinct(rows: list[Row]) -> list[Row]:
    """The rows without repeats, first occurrence kept (terms compared as pyoxigraph terms)."""
    seen: set[frozenset[tuple[str, object]]] = set()
    kept = []
    for row in rows:
        key = frozenset(row.items())
        if key not in seen:
            seen.add(key)
            kept.append(row)
    return kept
