"""Materialised entailments (RDFS subclass/subproperty, owl:inverseOf, SKOS) in graph/inferred.

Queries then find a State as an org:Organization or a kg:partyTo link without reasoning at
query time. The rules are SPARQL updates (rules/*.rq) run over all triples, merged into the
default graph of an in-memory store, until the store stops growing; each new triple is also
recorded in a marker graph, returned as graph/inferred, so asserted and derived knowledge
never mix.
"""

from __future__ import annotations

from importlib import resources

import pyoxigraph as ox

from kg.build.terms import Iris
from kg.build.writer import Batches

MAX_ROUNDS = 10
MARKER = ox.NamedNode("urn:kg:inferred")


def rules() -> dict[str, str]:
    folder = resources.files("kg.build") / "rules"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".rq")), key=lambda f: f.name)
    return {f.name: f.read_text(encoding="utf-8") for f in files}


def infer(quads: list[ox.Quad], iris: Iris) -> list[ox.Quad]:
    """The new quads (in graph/inferred) entailed by the given quads, to a fixpoint.

    The triples are loaded as text (see writer.Batches), so oxigraph parses them without the
    GIL while the build converts the data for SHACL.
    """
    store = ox.Store()
    Batches(quads).into_memory_store(store, union=True)
    updates = list(rules().values())
    size = len(store)  # len() counts every quad: once a round, not once an update
    for _ in range(MAX_ROUNDS):
        for update in updates:
            store.update(update)
        if len(store) == size:
            break
        size = len(store)
    graph = iris.graph("inferred")
    return [
        ox.Quad(q.subject, q.predicate, q.object, graph)
        for q in store.quads_for_pattern(None, None, None, MARKER)
    ]
