"""Overhead of the isolated executor vs direct in-process pyoxigraph, on the sample store.

Run: python bench/executor_overhead.py [--repeat N]
Direct = Store.query + QuerySolutions.serialize (JSON) in this process.
Executor = QueryExecutor.execute (worker process, spool, pipe) + reading every chunk.
No assertions: it prints medians so the cost of isolation is a known number.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyoxigraph as ox

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.server_process import make_sample_store

from kg.config import Settings
from kg.sparql.executor import QueryExecutor, QueryJob
from kg.store.embedded import EmbeddedStore

QUERIES = {
    "ask": "ASK { ?s ?p ?o }",
    "count": "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }",
    "100 rows": "SELECT * WHERE { ?s ?p ?o } LIMIT 100",
    "10k rows": "SELECT * WHERE { ?a ?b ?c . ?d ?e ?f } LIMIT 10000",
    "50k rows": "SELECT * WHERE { ?a ?b ?c . ?d ?e ?f } LIMIT 50000",
}


def direct(store: ox.Store, query: str) -> int:
    result = store.query(query, use_default_graph_as_union=True)
    if isinstance(result, ox.QueryBoolean):
        return len(result.serialize(format=ox.QueryResultsFormat.JSON))
    return len(result.serialize(format=ox.QueryResultsFormat.JSON))


async def via_executor(executor: QueryExecutor, query: str) -> int:
    result = await executor.execute(QueryJob(query, "json"))
    size = 0
    async for chunk in result.chunks():
        size += len(chunk)
    return size


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


async def main(repeat: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="kg-bench-"))
    make_sample_store(workdir / "store")
    settings = Settings(store_path=workdir / "store", query_workers=2, max_rows=1_000_000)
    store = EmbeddedStore(settings.store_path)
    executor = QueryExecutor(settings, store)
    started = time.perf_counter()
    await executor.start()
    print(f"pool start ({settings.query_workers} workers): "
          f"{(time.perf_counter() - started) * 1000:.1f} ms")
    snapshot = ox.Store.read_only(str(executor.snapshot))
    print(f"{'query':<10} {'bytes':>10} {'direct ms':>10} {'executor ms':>12} {'overhead ms':>12}")
    for name, query in QUERIES.items():
        d_times, e_times = [], []
        n = repeat if "k rows" not in name else max(3, repeat // 10)
        for _ in range(n):
            t = time.perf_counter()
            size_d = direct(snapshot, query)
            d_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            size_e = await via_executor(executor, query)
            e_times.append(time.perf_counter() - t)
        d, e = median_ms(d_times), median_ms(e_times)
        note = "" if size_d == size_e else f"  (sizes differ: {size_d} vs {size_e})"
        print(f"{name:<10} {size_e:>10} {d:>10.2f} {e:>12.2f} {e - d:>12.2f}{note}")
    started = time.perf_counter()
    await executor.refresh()
    print(f"refresh (snapshot, reopened by {settings.query_workers} workers): "
          f"{(time.perf_counter() - started) * 1000:.1f} ms")
    await executor.close()
    store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=200)
    asyncio.run(main(parser.parse_args().repeat))
