"""SPARQL used by the service's own pages, kept as .rq files and run with bound values.

Relative IRIs in the files (``PREFIX kg: <ontology#>``) resolve against the configured base
IRI, so one file serves every deployment; values come in as pyoxigraph substitutions, never
as text pasted into a query.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pyoxigraph as ox

from kg.store.base import Store

Term = ox.NamedNode | ox.BlankNode | ox.Literal

_DIR = Path(__file__).parent


@cache
def load(name: str) -> str:
    """The text of queries/<name>.rq (read once)."""
    return (_DIR / f"{name}.rq").read_text(encoding="utf-8")


@cache
def variant(name: str, dialect: str | None) -> str:
    """`<name>.<dialect>` when a remote backend needs its own text (e.g.
    describe_entity.virtuoso.rq: README, Backends), else `name`."""
    if dialect and (_DIR / f"{name}.{dialect}.rq").exists():
        return f"{name}.{dialect}"
    return name


def select(
    store: ox.Store | Store,
    name: str,
    base_iri: str,
    *,
    union: bool = False,
    **bindings: Term,
) -> list[dict[str, Term]]:
    """Run a SELECT and materialise its rows in the calling thread.

    pyoxigraph result iterators are bound to the thread that made them, so callers run this
    whole function in one worker thread (``run_in_threadpool``) and get plain dicts back.
    A substituted variable must appear in the query's projection (pyoxigraph's rule).
    """
    if not isinstance(store, ox.Store):  # a kg.store.base.Store, embedded or remote
        text = load(variant(name, getattr(store, "dialect", None)))
        return store.select(text, base_iri=base_iri, union=union, bindings=bindings)
    solutions = store.query(
        load(name),
        base_iri=base_iri,
        use_default_graph_as_union=union,
        substitutions={ox.Variable(k): v for k, v in bindings.items()},
    )
    assert isinstance(solutions, ox.QuerySolutions)
    names = [v.value for v in solutions.variables]
    return [{n: row[n] for n in names if row[n] is not None} for row in solutions]
