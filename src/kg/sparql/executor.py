"""Isolated, time-limited query execution on a pool of worker processes.

Why processes: pyoxigraph's `Store.query` has no timeout or cancellation, and a results iterator
must be consumed in the thread that created it. Each worker (multiprocessing 'forkserver', so a
replacement starts in milliseconds) opens `Store.read_only` on an immutable snapshot made with
`EmbeddedStore.snapshot()`; a query that overruns is stopped by killing its worker, which is then
replaced, so the next request is answered normally.

Decisions (also in the README's service section):
- **The status is decided before the first byte.** The worker executes and serializes into a
  spool (memory up to `INLINE_LIMIT`, then a file on disk, never the whole result in memory).
  A *complete* result is reported "ok" (or an error) at the end, so its 200 is never truncated.
  A SELECT in a streamable format (`worker.STREAM_FORMATS`, when `settings.stream_results`)
  that outgrows `INLINE_LIMIT` is reported "stream" at that point and returned as a
  `StreamedResult` that follows the growing file (kg.sparql.streaming); its 200 is decided on
  those first bytes, and a later failure cuts the response short (documented there).
- **Time limit** (`settings.query_timeout`) covers parsing, evaluation and serialization, plus
  the wait for a free worker. Overrun → the worker is killed → `QueryTimeout` (503, no
  Retry-After), or a cut stream. Sending the spooled file to the client needs no worker (the
  worker writes at its own pace), so a slow client cannot hold a worker hostage.
- **Row cap** (`settings.max_rows`): a complete SELECT with more solutions, or a
  CONSTRUCT/DESCRIBE with more triples, is answered 422 `TooManyRows` naming the cap — never a
  silent truncation. Streamed results are written by pyoxigraph's serializer and have no row
  cap; the byte cap (`settings.max_result_bytes`) bounds every spool.
- **IPC** is a socketpair read on the event loop (kg.sparql.channel): no thread hop per query;
  a worker's death is learnt from its process sentinel, not by polling it per query.
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
import socket
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, NoReturn

from kg.config import Settings
from kg.errors import BackendUnavailable, QuerySyntaxError, QueryTimeout, TooManyRows
from kg.namespaces import kg_prefixes
from kg.sparql import worker as worker_module
from kg.sparql.channel import Channel
from kg.sparql.negotiation import BY_KEY
from kg.sparql.streaming import StreamedResult
from kg.store.base import QueryJob, QueryResult
from kg.store.embedded import EmbeddedStore, remove_dirs

log = logging.getLogger("kg.sparql")

INLINE_LIMIT = 256 * 1024  # results up to this size travel over the pipe
MAX_RESULT_BYTES = 1 << 30  # the default of settings.max_result_bytes (remote results use it)
WORKER_MEMORY_LIMIT = 4 << 30  # RLIMIT_DATA of a worker: a runaway sort fails alone
START_TIMEOUT = 60.0

_POSITION = re.compile(r"at (\d+):(\d+)")


class _Worker:
    """One worker process and the parent's end of its pipe (read on the event loop)."""

    def __init__(
        self, ctx: Any, snapshot: Path, generation: int, config: worker_module.Config
    ) -> None:
        self.snapshot = snapshot
        self.generation = generation
        parent, child_sock = socket.socketpair()
        child = mp.connection.Connection(child_sock.detach())
        self.channel = Channel(parent)
        self.process = ctx.Process(
            target=worker_module.main,
            args=(child, str(snapshot), WORKER_MEMORY_LIMIT, config),
            daemon=True,
            name=f"kg-query-{generation}",
        )
        self.process.start()
        child.close()
        self.pid = self.process.pid
        self.exited = False  # set from the process sentinel (no poll per query)
        self._watched: int | None = None

    def watch(self) -> None:
        """Learn of the process's death from its sentinel, on the event loop."""
        loop = asyncio.get_running_loop()
        fd = self.process.sentinel

        def on_exit() -> None:
            self.exited = True
            self.unwatch()

        loop.add_reader(fd, on_exit)
        self._watched = fd

    def unwatch(self) -> None:
        if self._watched is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._watched)
            self._watched = None

    @property
    def alive(self) -> bool:
        return not self.exited  # Process.exitcode would poll (a select) on every query

    async def receive(self, timeout: float | None) -> Any:
        """The next message, or TimeoutError; EOFError if the process died."""
        async with asyncio.timeout(timeout):
            return await self.channel.recv()

    def kill(self) -> None:
        self.unwatch()
        with contextlib.suppress(Exception):
            self.process.kill()
        self.channel.close()

    async def stop(self) -> None:
        """Ask politely, then kill; never blocks the event loop."""
        with contextlib.suppress(Exception):
            self.channel.send_nowait(None)
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
        self._spool_prefix = f"{self._spool_dir}{os.sep}"
        self._config: worker_module.Config = {
            "base_iri": settings.base_iri,
            "union": settings.union_default_graph,
            "max_rows": settings.max_rows,
            "max_bytes": settings.max_result_bytes,
            "inline_limit": INLINE_LIMIT,
            "prefixes": kg_prefixes(settings.base_iri),
        }
        self._closed = False
        self._pinned: set[Path] = set()  # snapshots being opened by a refresh
        # store.version read just before each snapshot was taken: a result is labelled with
        # the version of the snapshot it ran on (caches must not file old data under a new one)
        self._versions: dict[Path, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.timeouts = 0

    @property
    def snapshot(self) -> Path | None:
        return self._snapshot

    async def start(self) -> None:
        """Snapshot the store and start the pool; returns when every worker is ready."""
        version = self.store.version
        self._snapshot = self.store.snapshot()
        self._versions[self._snapshot] = version
        workers = await asyncio.gather(
            *(self._spawn(self._snapshot, 0) for _ in range(self.settings.query_workers))
        )
        for w in workers:
            self._idle.put_nowait(w)
        self._prune()

    async def _spawn(self, snapshot: Path, generation: int) -> _Worker:
        worker = await asyncio.to_thread(_Worker, self._ctx, snapshot, generation, self._config)
        self._workers.add(worker)
        try:
            message = await worker.receive(START_TIMEOUT)
        except (TimeoutError, EOFError, OSError) as exc:
            self._workers.discard(worker)
            worker.kill()
            raise BackendUnavailable(f"a query worker failed to start: {exc!r}") from exc
        if message[0] != "ready":
            raise BackendUnavailable(f"unexpected message from a query worker: {message!r}")
        worker.watch()
        return worker

    def _replace(self, dead: _Worker) -> None:
        """Kill a worker and start its replacement in the background (once per worker)."""
        dead.kill()
        if dead not in self._workers:
            return
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
        stale = self.store.stale_snapshots(keep)
        self._versions = {k: v for k, v in self._versions.items() if k in keep}
        if stale:  # rmtree of a store directory blocked the event loop for tens of ms
            self._background(asyncio.to_thread(remove_dirs, stale))

    async def _acquire(self, deadline: float) -> _Worker:
        while True:
            remaining = deadline - time.monotonic()
            try:
                if self._idle.empty():
                    worker = await asyncio.wait_for(self._idle.get(), max(remaining, 0.001))
                else:
                    worker = self._idle.get_nowait()  # the common case: no timer, no task
            except TimeoutError:
                raise QueryTimeout(
                    f"no query worker became free within the {self.settings.query_timeout:g} s "
                    "time limit; the service is busy",
                    limit_seconds=self.settings.query_timeout,
                ) from None
            if worker.generation == self._generation and worker.alive:
                return worker
            if worker.alive:
                self._release(worker)  # an old generation: retire it
            else:
                self._replace(worker)

    async def execute(self, job: QueryJob) -> QueryResult:
        """Run a query in a worker; raises QueryTimeout, QuerySyntaxError, TooManyRows...

        A large SELECT in a streamable format comes back as a `StreamedResult` while the
        worker still writes it (kg.sparql.streaming); everything else is complete.
        """
        if self._closed:
            raise BackendUnavailable("the query executor is closed")
        started = time.monotonic()
        deadline = started + self.settings.query_timeout
        worker = await self._acquire(deadline)
        spool = f"{self._spool_prefix}{worker.pid}-{next(self._seq)}"
        request: worker_module.Job = {
            "query": job.query,
            "format": job.format,
            "default_graph": job.default_graph,
            "named_graphs": job.named_graphs,
            "spool": spool,
            "stream": self.settings.stream_results,
        }
        try:
            await worker.channel.send(request)
        except (EOFError, OSError) as exc:
            await self._died(worker, spool, exc)
        reply = await self._reply(worker, spool, started, deadline)
        if reply[0] == "stream":
            meta = reply[1]
            final = asyncio.get_running_loop().create_task(
                self._finish(worker, spool, started, deadline)
            )
            # cancelled (client gone, HEAD) even before it ran: the worker is mid-query
            final.add_done_callback(lambda task: task.cancelled() and self._replace(worker))
            return StreamedResult(
                format=BY_KEY[meta["format"]], rows=0, size=0, path=meta["path"],
                elapsed=time.monotonic() - started, final=final,
                version=self._versions.get(worker.snapshot),
            )
        self._release(worker)
        result = _result(reply, self._config, time.monotonic() - started)
        result.version = self._versions.get(worker.snapshot)
        return result

    async def _reply(
        self, worker: _Worker, spool: str, started: float, deadline: float
    ) -> tuple[Any, ...]:
        """The worker's next message; a timeout, death or cancellation replaces the worker."""
        try:
            return await worker.receive(max(deadline - time.monotonic(), 0.001))
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
        except (EOFError, OSError) as exc:
            await self._died(worker, spool, exc)
        except asyncio.CancelledError:
            # the client went away: the worker's state is unknown, so replace it
            self._replace(worker)
            _unlink(spool)
            raise

    async def _died(self, worker: _Worker, spool: str, exc: BaseException) -> NoReturn:
        await asyncio.to_thread(worker.process.join, 1)
        log.error(
            "query worker %s died (exit code %s): %r", worker.pid, worker.process.exitcode, exc
        )
        self._replace(worker)
        _unlink(spool)
        raise BackendUnavailable(
            "The query worker stopped while running this query (memory limit exceeded?)."
        ) from exc

    async def _finish(
        self, worker: _Worker, spool: str, started: float, deadline: float
    ) -> dict[str, Any]:
        """The end of a streamed result: the worker's final word, then the worker is free."""
        reply = await self._reply(worker, spool, started, deadline)
        self._release(worker)
        _result(reply, self._config, time.monotonic() - started)  # raises the typed error
        return reply[1]

    async def refresh(self) -> None:
        """After a committed write: new snapshot, new workers; old ones retire when idle."""
        async with self._refresh_lock:
            if self._closed:
                return
            version = self.store.version
            snapshot = await asyncio.to_thread(self.store.snapshot)
            self._versions[snapshot] = version
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


def _result(reply: tuple[Any, ...], config: worker_module.Config, elapsed: float) -> QueryResult:
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
    _, kind, message, *extra = reply
    max_rows = extra[0] if extra else config["max_rows"]
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
        raise TooManyRows(f"The result is too large: {message}.", max_bytes=config["max_bytes"])
    raise BackendUnavailable(f"The query could not be evaluated: {message}")
