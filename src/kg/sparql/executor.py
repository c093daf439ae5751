"""Isolated, time-limited query execution on a pool of worker processes.

Why processes: pyoxigraph's `Store.query` has no timeout or cancellation, and a results iterator
must be consumed in the thread that created it. Each worker (multiprocessing 'forkserver', so a
replacement starts in milliseconds) opens `Store.read_only` on an immutable snapshot made with
`EmbeddedStore.snapshot()`; a query that overruns is stopped by killing its worker, which is then
replaced, so the next request is answered normally.

Decisions (also in the README's SPARQL section):
- **The status is decided before the first byte, on the complete result.** The worker executes
  and serializes the whole result into a spool (memory up to `INLINE_LIMIT`, then a file on disk,
  never the whole result in memory), then reports "ok" or an error. So a 200 is never truncated.
- **Time limit** (`settings.query_timeout`) covers parsing, evaluation and serialization, plus
  the wait for a free worker. Overrun → the worker is killed → `QueryTimeout` (503, no
  Retry-After). Streaming the spooled file to the client needs no worker, so a slow client cannot
  hold a worker hostage and needs no separate streaming bound.
- **Row cap** (`settings.max_rows`): a SELECT with more solutions, or a CONSTRUCT/DESCRIBE with
  more triples, is answered 422 `TooManyRows` naming the cap — honest, never a silent
  truncation. Clients wanting a page add LIMIT. A byte cap (`MAX_RESULT_BYTES`) bounds the spool.
- **Syntax errors** come from the worker: pyoxigraph exposes no parse-only call, and
  `Store.query` evaluates ORDER BY and aggregates eagerly even on an empty in-memory store
  (17 s measured for a VALUES cross product), so parsing in the request process is not cheap.
  The worker answers a syntax error before evaluating anything; it costs one IPC round trip.
- `refresh()` (after each committed write) snapshots the store, starts workers on the new
  snapshot and retires old ones as they become idle; in-flight queries finish on the old
  snapshot, which is pruned once no worker uses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing as mp
import os
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kg.config import Settings
from kg.errors import BackendUnavailable, QuerySyntaxError, QueryTimeout, TooManyRows
from kg.namespaces import kg_prefixes
from kg.sparql import worker as worker_module
from kg.sparql.negotiation import BY_KEY, Format
from kg.store.embedded import EmbeddedStore

log = logging.getLogger("kg.sparql")

INLINE_LIMIT = 256 * 1024  # results up to this size travel over the pipe
CHUNK_SIZE = 64 * 1024
MAX_RESULT_BYTES = 1 << 30
WORKER_MEMORY_LIMIT = 4 << 30  # RLIMIT_DATA of a worker: a runaway sort fails alone
START_TIMEOUT = 60.0

_POSITION = re.compile(r"at (\d+):(\d+)")


@dataclass
class QueryJob:
    """One query with its dataset and the negotiated format key."""

    query: str
    format: str
    default_graph: list[str] | None = None
    named_graphs: list[str] | None = None


@dataclass
class QueryResult:
    """A complete, successful result: inline bytes or a spool file to stream, then delete."""

    format: Format
    rows: int
    size: int
    inline: bytes | None = None
    path: str | None = None
    elapsed: float = 0.0
    _consumed: bool = field(default=False, repr=False)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body in chunks; the spool file is unlinked as soon as it is open."""
        self._consumed = True
        if self.inline is not None:
            if self.inline:
                yield self.inline
            return
        assert self.path is not None
        with open(self.path, "rb") as handle:
            os.unlink(self.path)
            while chunk := handle.read(CHUNK_SIZE):
                yield chunk

    def discard(self) -> None:
        """Remove the spool file of a result that will not be sent (e.g. HEAD)."""
        if self.path and not self._consumed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


class _Worker:
    """One worker process and the parent's end of its pipe."""

    def __init__(self, ctx: Any, snapshot: Path, generation: int) -> None:
        self.snapshot = snapshot
        self.generation = generation
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(
            target=worker_module.main,
            args=(child, str(snapshot), WORKER_MEMORY_LIMIT),
            daemon=True,
            name=f"kg-query-{generation}",
        )
        self.process.start()
        child.close()
        self.pid = self.process.pid

    async def receive(self, timeout: float | None) -> Any:
        """The next message, or TimeoutError; EOFError if the process died."""
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        fd = self.conn.fileno()

        def on_readable() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(fd, on_readable)
        try:
            await asyncio.wait_for(ready, timeout)
        finally:
            loop.remove_reader(fd)
            # uvloop leaves the fd non-blocking; Connection.recv needs a blocking fd
            os.set_blocking(fd, True)
        # the first bytes are here; the rest of a large message may still be in flight
        return await asyncio.to_thread(self.conn.recv)

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.process.kill()
        with contextlib.suppress(Exception):
            self.conn.close()

    async def stop(self) -> None:
        """Ask politely, then kill; never blocks the event loop."""
        with contextlib.suppress(Exception):
            self.conn.send(None)
        for _ in range(50):
            if not self.process.is_alive():
                break
            await asyncio.sleep(0.02)
        self.kill()
        await asyncio.to_thread(self.process.join, 1)


def _context() -> Any:
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(method)
    if method == "forkserver":
        # "__main__" too: otherwise every new worker re-imports the main module
        ctx.set_forkserver_preload(["__main__", "kg.sparql.worker"])
    return ctx


class QueryExecutor:
    """A pool of `settings.query_workers` processes on the store's current snapshot."""

    def __init__(self, settings: Settings, store: EmbeddedStore) -> None:
        self.settings = settings
        self.store = store
        self._ctx = _context()
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._workers: set[_Worker] = set()
        self._generation = 0
        self._snapshot: Path | None = None
        self._refresh_lock = asyncio.Lock()
        self._seq = itertools.count()
        self._spool_dir = Path(tempfile.mkdtemp(prefix="kg-spool-"))
        self._prefixes = kg_prefixes(settings.base_iri)
        self._closed = False
        self._pinned: set[Path] = set()  # snapshots being opened by a refresh
        self._tasks: set[asyncio.Task[None]] = set()
        self.timeouts = 0

    @property
    def snapshot(self) -> Path | None:
        return self._snapshot

    async def start(self) -> None:
        """Snapshot the store and start the pool; returns when every worker is ready."""
        self._snapshot = self.store.snapshot()
        workers = await asyncio.gather(
            *(self._spawn(self._snapshot, 0) for _ in range(self.settings.query_workers))
        )
        for w in workers:
            self._idle.put_nowait(w)
        self._prune()

    async def _spawn(self, snapshot: Path, generation: int) -> _Worker:
        worker = await asyncio.to_thread(_Worker, self._ctx, snapshot, generation)
        self._workers.add(worker)
        try:
            message = await worker.receive(START_TIMEOUT)
        except (TimeoutError, EOFError, OSError) as exc:
            self._workers.discard(worker)
            worker.kill()
            raise BackendUnavailable(f"a query worker failed to start: {exc!r}") from exc
        if message[0] != "ready":
            raise BackendUnavailable(f"unexpected message from a query worker: {message!r}")
        return worker

    def _replace(self, dead: _Worker) -> None:
        """Kill a worker and start its replacement in the background."""
        dead.kill()
        self._workers.discard(dead)
        asyncio.get_running_loop().run_in_executor(None, dead.process.join, 1)
        if self._closed or self._snapshot is None:
            return

        async def respawn() -> None:
            try:
                assert self._snapshot is not None
                fresh = await self._spawn(self._snapshot, self._generation)
            except BackendUnavailable:
                log.exception("could not replace a query worker")
                return
            self._release(fresh)

        self._background(respawn())

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        """Keep a reference to fire-and-forget tasks so they are not garbage-collected."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _release(self, worker: _Worker) -> None:
        if worker.generation == self._generation and not self._closed:
            self._idle.put_nowait(worker)
        else:
            self._workers.discard(worker)
            self._background(self._retire(worker))

    async def _retire(self, worker: _Worker) -> None:
        await worker.stop()
        self._prune()

    def _prune(self) -> None:
        keep = {w.snapshot for w in self._workers} | self._pinned
        if self._snapshot is not None:
            keep.add(self._snapshot)
        self.store.prune_snapshots(keep)

    async def _acquire(self, deadline: float) -> _Worker:
        while True:
            remaining = deadline - time.monotonic()
            try:
                worker = await asyncio.wait_for(self._idle.get(), max(remaining, 0.001))
            except TimeoutError:
                raise QueryTimeout(
                    f"no query worker became free within the {self.settings.query_timeout:g} s "
                    "time limit; the service is busy",
                    limit_seconds=self.settings.query_timeout,
                ) from None
            if worker.generation == self._generation and worker.process.is_alive():
                return worker
            if worker.process.is_alive():
                self._release(worker)  # an old generation: retire it
            else:
                self._replace(worker)

    async def execute(self, job: QueryJob) -> QueryResult:
        """Run a query in a worker; raises QueryTimeout, QuerySyntaxError, TooManyRows..."""
        if self._closed:
            raise BackendUnavailable("the query executor is closed")
        started = time.monotonic()
        deadline = started + self.settings.query_timeout
        worker = await self._acquire(deadline)
        spool = str(self._spool_dir / f"{worker.pid}-{next(self._seq)}")
        request: worker_module.Job = {
            "query": job.query,
            "format": job.format,
            "base_iri": self.settings.base_iri,
            "default_graph": job.default_graph,
            "named_graphs": job.named_graphs,
            "union": self.settings.union_default_graph,
            "max_rows": self.settings.max_rows,
            "max_bytes": MAX_RESULT_BYTES,
            "inline_limit": INLINE_LIMIT,
            "spool": spool,
            "prefixes": self._prefixes,
        }
        try:
            worker.conn.send(request)
            reply = await worker.receive(max(deadline - time.monotonic(), 0.001))
        except TimeoutError:
            self.timeouts += 1
            log.warning(
                "query timed out after %.1f s; worker %s killed",
                time.monotonic() - started, worker.pid,
            )
            self._replace(worker)
            _unlink(spool)
            raise QueryTimeout(
                f"The query exceeded the {self.settings.query_timeout:g} s time limit and was "
                "stopped. Narrow it (LIMIT, more specific patterns) or avoid sorting large "
                "results.",
                limit_seconds=self.settings.query_timeout,
            ) from None
        except (EOFError, OSError, BrokenPipeError) as exc:
            await asyncio.to_thread(worker.process.join, 1)
            log.error(
                "query worker %s died (exit code %s): %r", worker.pid, worker.process.exitcode, exc
            )
            self._replace(worker)
            _unlink(spool)
            raise BackendUnavailable(
                "The query worker stopped while running this query (memory limit exceeded?)."
            ) from exc
        except asyncio.CancelledError:
            # the client went away: the worker's state is unknown, so replace it
            self._replace(worker)
            _unlink(spool)
            raise
        self._release(worker)
        return _result(reply, self.settings.max_rows, time.monotonic() - started)

    async def refresh(self) -> None:
        """After a committed write: new snapshot, new workers; old ones retire when idle."""
        async with self._refresh_lock:
            if self._closed:
                return
            snapshot = await asyncio.to_thread(self.store.snapshot)
            self._pinned.add(snapshot)
            generation = self._generation + 1
            try:
                fresh = await asyncio.gather(
                    *(self._spawn(snapshot, generation) for _ in range(self.settings.query_workers))
                )
            finally:
                self._pinned.discard(snapshot)
            self._snapshot, self._generation = snapshot, generation
            old: list[_Worker] = []
            while not self._idle.empty():
                old.append(self._idle.get_nowait())
            for w in fresh:
                self._idle.put_nowait(w)
            for w in old:
                self._release(w)
            self._prune()

    async def close(self) -> None:
        self._closed = True
        workers = list(self._workers)
        self._workers.clear()
        await asyncio.gather(*(w.stop() for w in workers), return_exceptions=True)
        shutil.rmtree(self._spool_dir, ignore_errors=True)


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _result(reply: tuple[Any, ...], max_rows: int, elapsed: float) -> QueryResult:
    if reply[0] == "ok":
        meta = reply[1]
        return QueryResult(
            format=BY_KEY[meta["format"]],
            rows=meta["rows"],
            size=meta["size"],
            inline=meta["inline"],
            path=meta["path"],
            elapsed=elapsed,
        )
    _, kind, message = reply
    if kind == "syntax":
        position = _POSITION.search(message)
        line, column = (int(position[1]), int(position[2])) if position else (None, None)
        raise QuerySyntaxError(message, line=line, column=column)
    if kind == "too_many_rows":
        raise TooManyRows(
            f"The result has more than {max_rows} rows (the row cap); add LIMIT or narrow the "
            "query.",
            max_rows=max_rows,
        )
    if kind == "too_large":
        raise TooManyRows(f"The result is too large: {message}.", max_bytes=MAX_RESULT_BYTES)
    raise BackendUnavailable(f"The query could not be evaluated: {message}")
