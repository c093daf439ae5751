"""Dataset statistics for the service description and VoID, computed once per store version.

Counting scans the whole store, so the result is cached in AppState.extras keyed by
store.version (bumped by every committed write) and computed by one request at a time.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

import pyoxigraph as ox
from starlette.concurrency import run_in_threadpool

from kg.server.queries import select
from kg.server.state import AppState

_CACHE = "s3.stats"
_LOCK = "s3.stats.lock"


@dataclass(frozen=True)
class DatasetStats:
    version: int
    graphs: dict[str, int]  # named graph IRI → triples
    triples: int  # distinct triples of the union of all graphs
    subjects: int
    properties: int
    entities: int  # distinct subjects under <base>id/
    classes: dict[str, int]  # class → distinct instances
    property_triples: dict[str, int]  # property → distinct triples
    examples: list[str]
    title: str | None
    license: str | None
    modified: datetime


def _int(term: object) -> int:
    return int(term.value) if isinstance(term, ox.Literal) else 0


def _compute(state: AppState, version: int) -> DatasetStats:
    """All the counting queries, in one thread (pyoxigraph iterators are thread-bound)."""
    store, base = state.store, state.settings.base_iri
    listed = set(store.named_graphs())  # a remote store's own graphs (graph/meta) are not
    graphs = {r["g"].value: _int(r["triples"]) for r in select(store, "graph_sizes", base)
              if r["g"].value in listed}
    totals = select(store, "dataset_totals", base, uriSpace=ox.Literal(base + "id/"))
    total = totals[0] if totals else {}
    meta = select(store, "dataset_metadata", base, ontology=ox.NamedNode(base + "ontology"))
    return DatasetStats(
        version=version,
        graphs=graphs,
        triples=_int(total.get("triples")),
        subjects=_int(total.get("subjects")),
        properties=_int(total.get("properties")),
        entities=_int(total.get("entities")),
        classes={r["class"].value: _int(r["entities"])
                 for r in select(store, "class_partitions", base)
                 if isinstance(r.get("class"), ox.NamedNode)},
        property_triples={r["property"].value: _int(r["triples"])
                          for r in select(store, "property_partitions", base)},
        examples=[r["resource"].value for r in select(store, "example_resources", base)],
        title=meta[0]["title"].value if meta and "title" in meta[0] else None,
        license=meta[0]["license"].value if meta and "license" in meta[0] else None,
        modified=_modified(state),
    )


def _modified(state: AppState) -> datetime:
    """When the store last changed (kg.store.base.Store.modified)."""
    return state.store.modified()


async def dataset_stats(state: AppState) -> DatasetStats:
    """The statistics of the current store version (cached)."""
    version = state.store.version
    cached = state.extras.get(_CACHE)
    if isinstance(cached, DatasetStats) and cached.version == version:
        return cached
    lock = state.extras.setdefault(_LOCK, asyncio.Lock())
    async with lock:
        cached = state.extras.get(_CACHE)
        if isinstance(cached, DatasetStats) and cached.version == version:
            return cached
        stats = await run_in_threadpool(_compute, state, version)
        state.extras[_CACHE] = stats
        return stats
