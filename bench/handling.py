"""kg's own request handling of a cold GET /sparql, in-process: everything but HTTP and the query.

Why: in `kg serve` the request process is the bottleneck on small uncached queries (bench/NOTES.md),
and its cost is HTTP (uvicorn), our handling (fast lane, query string, guard, negotiation, cache
key, ETag, cache store, hit lane, metrics, access log) and the hand-off to a worker. This isolates
the second: kg's app (`kg.server.app.create_app`, on the sample store) is called as uvicorn calls
it, with a scope per request, and the executor is replaced by one that answers at once with a
fixed small JSON result. Every query text is distinct (the cold case), so the response cache fills
up as it does under a cold wrk row, and the garbage collector's work on it is counted.

    python -m bench.handling [--requests 60000] [--rounds 3]

Prints µs per request, and the collector's objects left after the run. No assertions: a number
to compare before and after a change (bench/NOTES.md quotes it).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.server_process import BASE_IRI, make_sample_store

from bench.ceiling import _InlineRunner
from kg.config import Settings
from kg.server.app import create_app
from kg.sparql.executor import _result
from kg.store.base import QueryJob, QueryResult
from kg.store.embedded import EmbeddedStore

BODY = (b'{"head":{"vars":["p","o"]},"results":{"bindings":[{"p":{"type":"uri","value":'
        b'"http://www.w3.org/2000/01/rdf-schema#label"},"o":{"type":"literal","value":"x"}}]}}')


class _InstantRunner(_InlineRunner):
    """The executor's interface (start, refresh and close do nothing, as in bench.ceiling's
    runner without isolation), answering every job at once with BODY."""

    def __init__(self, store: EmbeddedStore) -> None:
        self.store = store

    async def execute(self, job: QueryJob) -> QueryResult:
        result = _result(("ok", {"format": job.format, "rows": 1, "inline": BODY, "path": None,
                                 "size": len(BODY)}), {}, 0.0)  # type: ignore[arg-type]
        result.version = self.store.version
        return result


async def _measure(store: Path, requests: int, offset: int) -> tuple[float, list[Any]]:
    EmbeddedStore.runner = lambda self, settings: _InstantRunner(self)  # type: ignore[method-assign]
    app = create_app(Settings(store_path=store, base_iri=BASE_IRI, log_level="warning"))
    started = asyncio.Event()
    lifespan: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    await lifespan.put({"type": "lifespan.startup"})

    async def lifespan_send(message: Any) -> None:
        started.set()

    runner = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"},
                                      "state": {}}, lifespan.get, lifespan_send))
    await started.wait()
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    strings = [("query=" + quote(f"SELECT ?p ?o WHERE {{ <{BASE_IRI}id/e{offset + i}> ?p ?o }}",
                                 safe="")).encode() for i in range(requests)]
    headers = [(b"host", b"127.0.0.1:8000"), (b"accept", b"application/sparql-results+json")]
    begin = time.perf_counter()
    for query_string in strings:
        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
                 "http_version": "1.1", "server": ("127.0.0.1", 8000),
                 "client": ("127.0.0.1", 50000), "scheme": "http", "root_path": "",
                 "headers": list(headers), "state": {}, "method": "GET", "path": "/sparql",
                 "raw_path": b"/sparql", "query_string": query_string}
        await app(scope, receive, send)
    elapsed = time.perf_counter() - begin
    if set(statuses) != {200}:
        raise SystemExit(f"not every request answered 200: {collections.Counter(statuses)}")
    gc.collect()
    left = collections.Counter(type(o).__name__ for o in gc.get_objects()).most_common(3)
    await lifespan.put({"type": "lifespan.shutdown"})
    await runner
    return elapsed / requests * 1e6, left


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=60000)
    parser.add_argument("--rounds", type=int, default=3)
    opts = parser.parse_args(argv)
    os.environ.pop("KG_STORE_URL", None)
    with tempfile.TemporaryDirectory() as tmp:
        store = make_sample_store(Path(tmp) / "store")
        for number in range(opts.rounds):
            # uvloop, as kg serve runs (uvicorn's loop="auto")
            micros, left = uvloop.run(_measure(store, opts.requests, number * opts.requests))
            print(f"round {number + 1}: {micros:.1f} µs per cold GET /sparql "
                  f"({opts.requests} distinct queries); most common tracked objects left: {left}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
