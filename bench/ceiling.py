"""How fast can a Python front over pyoxigraph be on this machine? Bare servers, for the ceiling.

Why: the cold small-query target (0.5× `oxigraph serve-read-only`) was not met, and the open
question is whether our code or the architecture is what costs. These two raw ASGI apps do the
least a SPARQL GET can do: decode `?query=`, run it, serialize (SPARQL JSON, or Turtle for a
graph), answer; no guard, negotiation, cache, metrics, logs, time limit or error handling.

- `inline`: the query runs in the event loop's thread (no isolation at all);
- `workers`: the query runs in N forked worker processes over socketpairs, with up to `depth`
  jobs in a worker's pipe (1 = strict request/answer), as kg's executor does.

And one that is not bare: `kg-inline` is kg's own app (`kg.server.app.create_app`, every step of
a request: fast lane, guard, negotiation, cache, ETag, metrics, log) with the query run in the
event loop (`_InlineRunner`) instead of a killable worker: the other path of issue 5's "measure
both paths", with no time limit. Each front process opens its own copy of the store (RocksDB
admits one opener per directory), copied afresh under the work directory at every run. `kg` is
`kg serve` as deployed, for a comparison in the same run.

`--fronts N` runs N uvicorn processes on the port (each with its own workers). Results on the
bench's `real` store (run `python -m bench.run` once first) go to stdout as a table, with
Oxigraph's rate on the same queries. Not part of `bench.run`; bench/NOTES.md quotes a run.

    python -m bench.ceiling --variant workers --workers 2 --depth 2 --kinds point,join
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import fcntl
import io
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pyoxigraph as ox

_LENGTH = struct.Struct("!I")
_JSON = [(b"content-type", b"application/sparql-results+json")]
_TURTLE = [(b"content-type", b"text/turtle")]


def _answer(store: ox.Store, query: str) -> tuple[bool, bytes]:
    results = store.query(query)
    out = io.BytesIO()
    if isinstance(results, ox.QueryTriples):
        ox.serialize(results, out, ox.RdfFormat.TURTLE)
        return True, out.getvalue()
    results.serialize(out, ox.QueryResultsFormat.JSON)  # type: ignore[union-attr]
    return False, out.getvalue()


def _worker(sock: socket.socket, location: str) -> None:
    store = ox.Store.read_only(location)
    reader = sock.makefile("rb")
    while header := reader.read(4):
        (size,) = _LENGTH.unpack(header)
        graph, body = _answer(store, reader.read(size).decode())
        sock.sendall(_LENGTH.pack(len(body) + 1) + (b"g" if graph else b"s") + body)
    os._exit(0)


class _Pipe(asyncio.Protocol):
    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.buffer = bytearray()
        self.inflight: collections.deque[asyncio.Future[tuple[bool, bytes]]] = (
            collections.deque())
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 4:
            (size,) = _LENGTH.unpack_from(self.buffer, 0)
            if len(self.buffer) < 4 + size:
                break
            graph, body = self.buffer[4:5] == b"g", bytes(self.buffer[5:4 + size])
            del self.buffer[:4 + size]
            future = self.inflight.popleft()
            self.pool.feed(self)
            future.set_result((graph, body))


class _Pool:
    def __init__(self, location: str, workers: int, depth: int) -> None:
        self.location, self.size, self.depth = location, workers, depth
        self.pipes: list[_Pipe] = []
        self.queue: collections.deque[tuple[bytes, asyncio.Future[tuple[bool, bytes]]]] = (
            collections.deque())

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(self.size):
            parent, child = socket.socketpair()
            if os.fork() == 0:
                parent.close()
                _worker(child, self.location)
            child.close()
            _, pipe = await loop.create_unix_connection(lambda: _Pipe(self), sock=parent)
            self.pipes.append(pipe)

    def feed(self, pipe: _Pipe) -> None:
        while self.queue and len(pipe.inflight) < self.depth:
            query, future = self.queue.popleft()
            pipe.transport.write(_LENGTH.pack(len(query)) + query)
            pipe.inflight.append(future)

    def run(self, query: str) -> asyncio.Future[tuple[bool, bytes]]:
        future = asyncio.get_running_loop().create_future()
        self.queue.append((query.encode(), future))
        for pipe in sorted(self.pipes, key=lambda p: len(p.inflight)):
            self.feed(pipe)
        return future


class _InlineRunner:
    """kg's QueryRunner without isolation: `kg.sparql.worker.run_job` in the event loop."""

    timeouts = 0

    def __init__(self, settings: Any, store: Any) -> None:
        from kg.sparql.executor import INLINE_LIMIT

        self.settings, self.store, self.count = settings, store, 0
        self.config = {
            "base_iri": settings.base_iri, "union": settings.union_default_graph,
            "max_rows": settings.max_rows, "max_bytes": settings.max_result_bytes,
            "inline_limit": INLINE_LIMIT,
        }
        self.spool_prefix = f"{store.scratch_dir()}{os.sep}inline-{os.getpid()}-"

    async def start(self) -> None:
        pass

    async def refresh(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def execute(self, job: Any) -> Any:
        from kg.sparql.executor import _result
        from kg.sparql.worker import run_job

        self.count += 1
        started = time.monotonic()
        request = {
            "query": job.query, "format": job.format, "default_graph": job.default_graph,
            "named_graphs": job.named_graphs, "prefixes": job.prefixes,
            "spool": f"{self.spool_prefix}{self.count}",
            # a streamable SELECT is written by pyoxigraph's serializer, as the workers do
            "stream": self.settings.stream_results, "claim": 0,
        }
        result = _result(run_job(self.store.raw, request, self.config),  # type: ignore[arg-type]
                         self.config, time.monotonic() - started)  # type: ignore[arg-type]
        result.version = self.store.version
        return result


def _kg_inline_app() -> Any:
    """kg's app on the first store copy no other front process holds (an flock per copy)."""
    from kg.server.app import create_app
    from kg.store.embedded import EmbeddedStore

    for copy in sorted(Path(os.environ["CEILING_COPIES"]).glob("front-*")):
        holder = open(copy.with_suffix(".lock"), "w")  # noqa: SIM115 - held while we serve
        try:
            fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder.close()
            continue
        os.environ["KG_STORE_PATH"] = str(copy)
        EmbeddedStore.runner = lambda self, settings: _InlineRunner(settings, self)  # type: ignore[method-assign]
        app = create_app()
        app.state.ceiling_lock = holder
        return app
    raise SystemExit("every store copy is held: more fronts than copies")


def _app() -> Any:
    variant = os.environ.get("CEILING_VARIANT", "workers")
    if variant == "kg-inline":
        return _kg_inline_app()
    location = os.environ["CEILING_STORE"]
    store = ox.Store.read_only(location) if variant == "inline" else None
    pool = _Pool(location, int(os.environ.get("CEILING_WORKERS", "2")),
                 int(os.environ.get("CEILING_DEPTH", "1")))

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                if store is None:
                    await pool.start()
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        query = dict(parse_qsl(scope["query_string"].decode("latin-1")))["query"]
        graph, body = _answer(store, query) if store is not None else await pool.run(query)
        headers = [*(_TURTLE if graph else _JSON), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench import datagen, queries, servers, wrk

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=("inline", "workers", "kg-inline", "kg"),
                        default="workers")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--depth", type=int, default=1)
    parser.add_argument("--fronts", type=int, default=1)
    parser.add_argument("--kinds", default="point,join,construct")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--work", type=Path, default=servers.ROOT / "var" / "bench")
    opts = parser.parse_args(argv)
    stores = opts.work / "stores" / "real"
    entities, kinds = queries.of_run(opts.work)
    wanted = [kinds[name] for name in opts.kinds.split(",")]
    rates: dict[str, dict[str, float]] = {}
    oxigraph = servers.start_oxigraph(stores / "oxigraph", opts.work / "logs" / "ceiling")
    try:
        host, port = oxigraph.host_port
        rates["oxigraph"] = {k.name: wrk.run(host, port, oxigraph.path, k.cold, entities, True,
                                             opts.duration, 16, 2).rps for k in wanted}
    finally:
        oxigraph.stop()
    if opts.variant == "kg":  # kg as deployed (`kg serve`), for a comparison in the same run
        server = servers.start_kg(stores / "kg" / "store", opts.work / "logs" / "ceiling",
                                  datagen.BASE_IRI)
        try:
            host, port = server.host_port
            rates["ceiling"] = {k.name: wrk.run(host, port, server.path, k.cold, entities, True,
                                                opts.duration, 16, 2).rps for k in wanted}
        finally:
            server.stop()
        _print(opts, wanted, rates)
        return 0
    port = servers.free_port()
    env = {**os.environ, "CEILING_STORE": str(stores / "kg" / "store"),
           "CEILING_VARIANT": opts.variant, "CEILING_WORKERS": str(opts.workers),
           "CEILING_DEPTH": str(opts.depth)}
    http = []
    if opts.variant == "kg-inline":
        copies = opts.work / "ceiling-copies"
        shutil.rmtree(copies, ignore_errors=True)  # never a copy of an older store
        for number in range(opts.fronts):
            shutil.copytree(stores / "kg" / "store", copies / f"front-{number}")
        # as bench.servers.start_kg serves kg, and with kg serve's HTTP protocol
        env.update(CEILING_COPIES=str(copies), KG_BASE_IRI=datagen.BASE_IRI,
                   KG_MAX_ROWS="2000000", KG_LOG_LEVEL="warning")
        http = ["--http", "kg.server.http_protocol:JoinedWritesProtocol"]
    front = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "bench.ceiling:_app", "--port", str(port),
         "--workers", str(opts.fronts), "--no-access-log", "--log-level", "warning", *http],
        env=env, cwd=servers.ROOT)
    try:
        deadline = time.monotonic() + 60
        while not servers.answers(f"http://127.0.0.1:{port}/sparql"):
            if time.monotonic() > deadline:
                raise SystemExit("the ceiling server did not start")
            time.sleep(0.2)
        rates["ceiling"] = {k.name: wrk.run("127.0.0.1", port, "/sparql", k.cold, entities, True,
                                            opts.duration, 16, 2).rps for k in wanted}
    finally:
        front.terminate()
        front.wait()
    _print(opts, wanted, rates)
    return 0


def _print(opts: argparse.Namespace, wanted: list[Any], rates: dict[str, dict[str, float]]) -> None:
    label = "kg serve" if opts.variant == "kg" else f"{opts.variant}, {opts.fronts} front(s)" + (
        f", {opts.workers} workers, depth {opts.depth}" if opts.variant == "workers" else "")
    print(f"| kind | oxigraph req/s | {label} req/s | ratio |\n|---|---|---|---|")
    for kind in wanted:
        ox_rate, ceiling = rates["oxigraph"][kind.name], rates["ceiling"][kind.name]
        print(f"| {kind.name} | {ox_rate:,.0f} | {ceiling:,.0f} | {ceiling / ox_rate:.2f}× |")


if __name__ == "__main__":
    raise SystemExit(main())
