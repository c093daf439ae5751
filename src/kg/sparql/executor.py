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
  A SELECT in a streamable format (`kg.sparql.results.STREAM_FORMATS`, when
  `settings.stream_results`) that outgrows `INLINE_LIMIT` is reported "stream" at that point
  and returned as a `StreamedResult` that follows the growing file (kg.sparql.streaming); its
  200 is decided on those first bytes, and a later failure cuts the response short (documented
  there).
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
- **A write reopens, it does not respawn.** `refresh()` (after each committed write) takes one
  snapshot and the workers reopen it in place (("reopen", path) → ("ready", pid), see
  kg.sparql.worker): the idle ones at once, a busy one when its query ends, before its next
  job. Processes start only with the pool and to replace a killed or dead worker. Starting a
  pool per write cost ~0.2-0.5 s and ~215 ms of CPU per write; reopening costs ~10 ms per
  worker and ~21 ms of CPU per write, and a worker's RSS stays flat over 1,000 reopens (50 →
  53 MB within the first 100, then no growth) (bench/refresh.py, docs/reliability.md).
- When `refresh()` returns, every query that starts sees the write (kg.store.writes relies on
  it, and so do `kg backup`'s newest snapshot and read-your-writes): the new snapshot is
  current and a worker is only handed out on it. An in-flight query finishes on the snapshot it
  started on, and its result is labelled with that snapshot's version (`_versions`), never a
  newer one (the response cache files it under that version). Refreshes that wait while
  another takes its snapshot are coalesced: they committed before the next snapshot starts, so
  it serves them all.
- A snapshot directory is pruned only when no worker has it open, is reopening on it or is
  starting on it, and never while a snapshot is being written (RocksDB writes it as `*.tmp`
  first; pruning it mid-way made refreshes fail).
- Requests waiting for a worker are served first come, first served (a released worker is
  handed to the oldest waiter), so a busy caller cannot starve the others.
- **Pipelined** (`settings.query_pipelining`, on by default). When no worker is free, a
  job is written into the pipe of a worker whose
  current job started within `QUEUE_BEHIND_YOUNGER_THAN` (the least queued, then the one whose
  job started last; at most `PIPE_DEPTH` jobs behind the running one), and a worker that takes
  a job queued behind its own refills its pipe from the line: the worker reads its next job
  the moment it answers, without waiting for this event loop to notice the answer and hand
  the worker on (that round trip left each worker idle ~60 % of the time under load;
  pipelining raised small uncached queries from ~9.7K to ~11.4K req/s, bench/NOTES.md). What
  keeps it safe: a job that has sat in a pipe for `STEAL_AFTER` (behind one that turns out
  long) is taken by the next worker that takes or queues a job, ahead of the callers in line
  that arrived after it, and its copy in the first pipe is withdrawn, so a heavy query does
  not run twice: a queued job is claimed by exactly one side, the worker that starts it or the
  parent that moves it (`worker.Claims`, under a lock the two share), and a job its worker
  has already started stays there (a claim left undecided, the lock busy, is asked again
  later). A checked marker was a race: a worker could start the job just before the parent
  marked it, and a long query then held both workers
  until the time limit, so the reads behind it waited that out (a 503 in CI). A job queued
  behind one that is killed (time limit, death, client gone) goes back to the head of the line
  under a new spool path; a caller that gives up while its job is queued
  withdraws it; a job queued before a write runs on the snapshot its worker had, and its
  result is labelled with that snapshot's version.
- **A reserve worker** (`settings.query_reserve_workers`, 1 by default, at most all workers but
  one): it takes a job only when the job has waited `RESERVE_AFTER` (in line, or in a pipe:
  the stealing above), or when no other worker is free or busy with a job that started within
  `RESERVE_AFTER` (all held by longer queries, dead or reopening); callers already in line
  get a reserve before a newcomer does. So a long query still
  holds up nobody for more than a few milliseconds, while a steady load of small queries runs
  on the other workers alone. Why: on 2 cores, the request process, two busy workers and the
  client contend for the CPUs; each worker then slept and woke up at every job and ran a small
  CONSTRUCT in ~170 µs of CPU against ~135 µs when one worker kept busy and never slept
  (`python -m bench.process_cpu`, bench/NOTES.md): small uncached CONSTRUCTs +30-41 % req/s,
  joins +21-24 %, point lookups -7 to +8 % (two interleaved pairs, every text distinct). A
  replacement keeps the role of the worker it replaces.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import math
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
from kg.sparql import worker as worker_module
from kg.sparql.channel import Channel, Deadline, Expired
from kg.sparql.negotiation import BY_KEY
from kg.sparql.streaming import StreamedResult
from kg.store.base import QueryJob, QueryResult
from kg.store.embedded import EmbeddedStore, remove_dirs

log = logging.getLogger("kg.sparql")

INLINE_LIMIT = 256 * 1024  # results up to this size travel over the pipe
MAX_RESULT_BYTES = 1 << 30  # the default of settings.max_result_bytes (remote results use it)
WORKER_MEMORY_LIMIT = 4 << 30  # RLIMIT_DATA of a worker: a runaway sort fails alone
START_TIMEOUT = 60.0
CLOSE_WAIT = 10.0  # close() waits this long for background work (a replacement starting)
# pipelining (see the module docstring): a job may queue in the pipe of a worker whose current
# job started less than this ago; one queued there longer than STEAL_AFTER moves to a free worker
QUEUE_BEHIND_YOUNGER_THAN = 0.002
STEAL_AFTER = 0.005
# a reserve worker (see the module docstring) takes a job that has waited this long, or any job
# while no other worker is free or busy with a job started within it
RESERVE_AFTER = 0.005
PIPE_DEPTH = 2  # jobs queued in a worker's pipe behind the one it runs
# claim numbers in flight on one worker (its queue, moved copies included) must fit the ring
assert PIPE_DEPTH + 2 < worker_module.CLAIM_SLOTS

_POSITION = re.compile(r"at (\d+):(\d+)")


class _Ticket:
    """One query waiting for a worker: in line (`QueryExecutor._waiters`, nothing sent yet) or
    queued in a busy worker's pipe behind its current job (`queued_on`), until it runs on a
    worker (`future`'s result). An abandoned one (its caller gave up, or it was stolen) is a job
    still in some pipe whose result nobody wants: it is drained when its turn comes."""

    __slots__ = ("abandoned", "arrived", "future", "queued_at", "queued_on", "request",
                 "started")

    def __init__(self, request: worker_module.Job,
                 future: asyncio.Future[_Worker] | None) -> None:
        self.request = request
        self.future = future
        self.arrived = time.monotonic()
        self.queued_on: _Worker | None = None
        self.queued_at = 0.0
        self.abandoned = future is None
        self.started = False  # its worker claimed it first: it cannot be moved

    @property
    def wanted(self) -> bool:
        return not self.abandoned and self.future is not None and not self.future.done()


class _Worker:
    """One worker process and the parent's end of its pipe (read on the event loop)."""

    def __init__(self, ctx: Any, snapshot: Path, name: str, config: worker_module.Config,
                 reserve: bool = False) -> None:
        self.snapshot = snapshot  # the snapshot it has open; changed only on "ready"
        self.reserve = reserve  # held back for jobs the others keep waiting (module docstring)
        self.opening: Path | None = None  # the snapshot it is reopening on, meanwhile
        self.running_since: float | None = None  # when its current job started (None: none)
        # the jobs written behind the current one, in the order the worker will run them
        self.queued: collections.deque[_Ticket] = collections.deque()
        self.claims = worker_module.Claims(ctx)
        self.posted = 0  # jobs queued in its pipe so far: their `claim` numbers
        self.jobs = 0  # jobs written to it in all (tests, benchmarks: who ran what)
        parent, child_sock = socket.socketpair()
        child = mp.connection.Connection(child_sock.detach())
        self.channel = Channel(parent)
        self.process = ctx.Process(
            target=worker_module.main,
            args=(child, str(snapshot), WORKER_MEMORY_LIMIT, config, self.claims),
            daemon=True,
            name=name,
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

    async def receive(self, timeout: float | None, deadline: Deadline | None = None) -> Any:
        """The next message, or TimeoutError; EOFError if the process died."""
        return await self.channel.recv(timeout, deadline)

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
    """A pool of `settings.query_workers` processes on the store's current snapshot.

    A worker is at any time idle (in `_idle`, on the current snapshot), running one query,
    reopening (owned by a `_freshen` task) or starting; only its owner talks to it.
    """

    def __init__(self, settings: Settings, store: EmbeddedStore) -> None:
        self.settings = settings
        self.store = store
        self._ctx = _context()
        self._idle: collections.deque[_Worker] = collections.deque()
        # requests waiting for a worker, served first come first served: a task that has just
        # released a worker must not take it back ahead of them
        self._waiters: collections.deque[_Ticket] = collections.deque()
        self._workers: set[_Worker] = set()
        self._snapshot: Path | None = None
        self._refresh_lock = asyncio.Lock()
        self._requested = 0  # refresh() calls so far
        self._covered = 0  # calls whose write the current snapshot is known to hold
        self._taking = 0  # snapshots being written: no pruning meanwhile (a *.tmp directory)
        self._seq = itertools.count()
        self._names = itertools.count()
        self._spool_dir = Path(tempfile.mkdtemp(prefix="kg-spool-"))
        self._spool_prefix = f"{self._spool_dir}{os.sep}"
        self._config: worker_module.Config = {
            "base_iri": settings.base_iri,
            "union": settings.union_default_graph,
            "max_rows": settings.max_rows,
            "max_bytes": settings.max_result_bytes,
            "inline_limit": INLINE_LIMIT,
        }
        self._closed = False
        self._pinned: collections.Counter[Path] = collections.Counter()  # workers starting on
        # store.version read just before each snapshot was taken: a result is labelled with
        # the version of the snapshot it ran on (caches must not file old data under a new one)
        self._versions: dict[Path, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.timeouts = 0
        # counters for tests and benchmarks (in-process): a write should spawn nothing
        self.spawned = 0
        self.reopened = 0
        self.snapshots_taken = 0
        self.queued_jobs = 0  # jobs written behind a running one (pipelined)
        self.stolen_jobs = 0  # queued jobs moved to a free worker
        self.skipped_jobs = 0  # withdrawn jobs their worker did not run
        self.pipelining = settings.query_pipelining
        self.queue_behind_younger_than = QUEUE_BEHIND_YOUNGER_THAN
        self.steal_after = STEAL_AFTER
        self.pipe_depth = PIPE_DEPTH
        self.reserve_after = RESERVE_AFTER
        # the last workers of the pool are reserves; always at least one that is not
        self.reserves = min(settings.query_reserve_workers, settings.query_workers - 1)
        self._reserve_timer: asyncio.TimerHandle | None = None
        # one timer for every queued job's STEAL_AFTER, not one per job (a timer made and
        # later fired per small query showed in the request process's profile)
        self._steal_timer: asyncio.TimerHandle | None = None
        self._steal_due = math.inf

    @property
    def snapshot(self) -> Path | None:
        return self._snapshot

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (tests: a write must not replace them)."""
        return sorted(w.pid for w in self._workers if w.alive)

    async def start(self) -> None:
        """Snapshot the store and start the pool; returns when every worker is ready."""
        version = self.store.version
        self._snapshot = self.store.snapshot()
        self.snapshots_taken += 1
        self._versions[self._snapshot] = version
        count = self.settings.query_workers
        workers = await asyncio.gather(
            *(self._spawn(self._snapshot, reserve=i >= count - self.reserves)
              for i in range(count))
        )
        for w in workers:
            self._put_idle(w)
        self._prune()

    async def _spawn(self, snapshot: Path, reserve: bool = False) -> _Worker:
        name = f"kg-query-{next(self._names)}"
        self._pinned[snapshot] += 1  # not pruned before the new process has it open
        try:
            try:
                worker = await asyncio.to_thread(
                    _Worker, self._ctx, snapshot, name, self._config, reserve)
            except OSError as exc:  # no process (limits, memory): the caller may retry
                raise BackendUnavailable(f"a query worker could not start: {exc!r}") from exc
            if self._closed:  # closed while it started: it must not outlive the executor
                await self._discard(worker)
            self._workers.add(worker)
            self.spawned += 1
            try:
                message = await worker.receive(START_TIMEOUT)
            except (TimeoutError, EOFError, OSError) as exc:
                self._workers.discard(worker)
                worker.kill()
                raise BackendUnavailable(f"a query worker failed to start: {exc!r}") from exc
        finally:
            self._pinned[snapshot] -= 1
            if self._pinned[snapshot] <= 0:
                del self._pinned[snapshot]
        if message[0] != "ready":
            self._workers.discard(worker)
            worker.kill()
            raise BackendUnavailable(f"unexpected message from a query worker: {message!r}")
        if self._closed:
            await self._discard(worker)
        worker.watch()
        return worker

    async def _discard(self, worker: _Worker) -> NoReturn:
        """Stop a worker that started after close() (a replacement under way then)."""
        self._workers.discard(worker)
        worker.kill()
        await asyncio.to_thread(worker.process.join, 1)
        raise BackendUnavailable("the query executor is closed")

    def _replace(self, dead: _Worker) -> None:
        """Kill a worker and start its replacement in the background (once per worker). A job
        queued behind its current one never started: it goes back to the head of the line."""
        dead.kill()
        dead.running_since = None
        queued = list(dead.queued)
        dead.queued.clear()
        for ticket in reversed(queued):  # back to the head of the line, in their order
            ticket.queued_on = None
            _unlink(ticket.request["spool"])  # the dead worker may have started writing it
            if ticket.wanted:
                ticket.started = False
                ticket.request = {**ticket.request, "spool": self._spool_path(), "claim": 0}
                self._waiters.appendleft(ticket)
        idle = list(self._idle)  # each takes a job from the line, or goes back to idle
        self._idle.clear()
        for worker in idle:
            self._put_idle(worker)
        if dead not in self._workers:
            return
        self._workers.discard(dead)
        asyncio.get_running_loop().run_in_executor(None, dead.process.join, 1)
        if self._closed or self._snapshot is None:
            return

        async def respawn() -> None:
            for attempt in range(3):  # a failed start must not shrink the pool for good
                if self._closed or self._snapshot is None:
                    return
                try:
                    fresh = await self._spawn(self._snapshot, reserve=dead.reserve)
                except BackendUnavailable:
                    if self._closed:
                        return
                    log.exception("could not replace a query worker (attempt %d/3)", attempt + 1)
                    await asyncio.sleep(1.0)
                    continue
                self._release(fresh)
                return

        self._background(respawn())

    def _background(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Keep a reference to fire-and-forget tasks so they are not garbage-collected."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _on_current(self, worker: _Worker) -> bool:
        """Whether `worker` has the current snapshot open. The same Path object, as a rule:
        identity first (PurePath.__eq__ compares parsed parts, in Python, per query)."""
        snapshot = worker.snapshot
        return snapshot is self._snapshot or snapshot == self._snapshot

    def _release(self, worker: _Worker) -> None:
        """A worker's owner is done with it. The job queued behind (if any) is running now: its
        caller owns the worker (or, abandoned, it is drained). Otherwise the worker reopens the
        current snapshot if a write made a newer one (before it takes another job), then serves
        the next waiter or goes idle."""
        if self._closed:
            self._workers.discard(worker)
            self._background(self._retire(worker))
            return
        if not worker.alive:
            self._replace(worker)  # a queued job goes back in line
            return
        if worker.queued:
            queued = worker.queued.popleft()
            queued.queued_on = None
            worker.running_since = time.monotonic()
            if queued.wanted:
                assert queued.future is not None
                queued.future.set_result(worker)
                self._queue_next(worker)
            else:
                self._background(self._drain(worker, queued.request["spool"]))
            return
        worker.running_since = None
        if not self._on_current(worker):
            self._background(self._freshen(worker))
        else:
            self._put_idle(worker)

    def _put_idle(self, worker: _Worker) -> None:
        """A free worker on the current snapshot: the oldest caller in line runs on it (and the
        next one queues behind); else it takes over a job queued too long behind another
        worker's; else it idles."""
        worker.running_since = None
        ticket = self._take_next(worker)
        if ticket is None:
            self._idle.append(worker)
        elif self._run_on(worker, ticket):
            self._queue_next(worker)
        if self.reserves:
            self._arm_reserve()  # a reserve idle while callers wait: look again in time

    def _take_next(self, worker: _Worker) -> _Ticket | None:
        """The next job for `worker`, oldest first: a job stuck in another worker's pipe for
        over `steal_after` (taken from there, its copy withdrawn), or the head of the line."""
        while self._waiters and not self._waiters[0].wanted:
            self._waiters.popleft()
        head = self._waiters[0] if self._waiters else None
        queued_before = time.monotonic() - self.steal_after
        tried: tuple[_Ticket, ...] = ()
        while (stuck := self._stealable(queued_before, worker, tried)) is not None:
            if head is not None and stuck.arrived > head.arrived:
                break
            if self._detach(stuck):
                return stuck
            tried += (stuck,)
        if head is None or (worker.reserve and not self._reserve_may_take(head)):
            return None
        return self._waiters.popleft()

    def _run_on(self, worker: _Worker, ticket: _Ticket) -> bool:
        """Start `ticket`'s job on a free `worker`; a dead one is replaced and the ticket goes
        back to the head of the line."""
        try:
            if not worker.alive:
                raise EOFError("the worker exited")
            worker.channel.post(ticket.request)
        except (EOFError, OSError):
            self._waiters.appendleft(ticket)
            self._replace(worker)
            return False
        worker.jobs += 1
        worker.running_since = time.monotonic()
        assert ticket.future is not None
        ticket.future.set_result(worker)
        return True

    def _queue_next(self, worker: _Worker) -> None:
        """Write the oldest waiting job into `worker`'s pipe behind the one it is running, so it
        starts without a round trip through this event loop."""
        if not self.pipelining or not self._on_current(worker):
            return  # a worker on an older snapshot finishes its pipe, then reopens
        while len(worker.queued) < self.pipe_depth:
            ticket = self._take_next(worker)
            if ticket is None:
                return
            if not self._queue_on(worker, ticket):
                self._waiters.appendleft(ticket)  # the running job's caller learns why
                return

    def _queue_on(self, worker: _Worker, ticket: _Ticket) -> bool:
        worker.posted += 1
        ticket.request["claim"] = worker.posted  # it may be withdrawn while it waits there
        try:
            worker.channel.post(ticket.request)
        except (EOFError, OSError):
            ticket.request["claim"] = 0  # a number of this worker's means nothing elsewhere
            return False
        worker.jobs += 1
        worker.queued.append(ticket)
        ticket.queued_on = worker
        ticket.queued_at = time.monotonic()
        self.queued_jobs += 1
        self._arm_steal(ticket.queued_at + self.steal_after)
        return True

    def _arm_steal(self, due: float) -> None:
        """Have `_sweep_stuck` run at `due` (monotonic) or earlier."""
        if self._steal_timer is not None:
            if due >= self._steal_due:
                return
            self._steal_timer.cancel()
        self._steal_due = due
        self._steal_timer = asyncio.get_running_loop().call_later(
            max(due - time.monotonic(), 0.0), self._sweep_stuck)

    def _sweep_stuck(self) -> None:
        """Every job queued for `steal_after` or more, oldest first, goes to a free worker
        (`_steal_if_stuck`); then the sweep is armed for the next job to come due."""
        self._steal_timer = None
        self._steal_due = math.inf
        if self._closed:
            return
        now = time.monotonic()
        due_before = now - self.steal_after
        queued = [t for w in self._workers for t in w.queued
                  if t.queued_on is not None and t.wanted and not t.started]
        again = False
        for ticket in sorted((t for t in queued if t.queued_at <= due_before),
                             key=lambda t: t.queued_at):
            again |= self._steal_if_stuck(ticket)
        later = [t.queued_at + self.steal_after for t in queued if t.queued_at > due_before]
        if again:
            later.append(now + self.steal_after)
        if later:
            self._arm_steal(min(later))

    def _queue_target(self) -> _Worker | None:
        """Among workers whose current job started only just now and whose pipe has room, the
        one with the fewest jobs queued, then the one whose job started last (a job that has
        run a while is the likelier to run on)."""
        if not self.pipelining:
            return None
        best: _Worker | None = None
        best_rank: tuple[int, float] = (self.pipe_depth, -math.inf)  # full pipes: none
        young = time.monotonic() - self.queue_behind_younger_than
        reserves = self.reserves > 0 and not self._others_available()
        for worker in self._workers:
            since = worker.running_since
            if (since is not None and since >= young and worker.opening is None
                    and self._on_current(worker) and worker.alive
                    and (reserves or not worker.reserve)):
                rank = (len(worker.queued), -since)
                if rank < best_rank:
                    best, best_rank = worker, rank
        return best

    def _stealable(self, queued_before: float, taker: _Worker | None = None,
                   tried: tuple[_Ticket, ...] = ()) -> _Ticket | None:
        """The oldest wanted job queued in another worker's pipe since before `queued_before`
        (not one of `tried`)."""
        oldest = None
        for worker in self._workers:
            if worker is taker:
                continue
            for ticket in worker.queued:
                if (ticket.wanted and not ticket.started and ticket.queued_at <= queued_before
                        and (oldest is None or ticket.queued_at < oldest.queued_at)
                        and ticket not in tried):
                    oldest = ticket
        return oldest

    def _detach(self, ticket: _Ticket) -> bool:
        """Take a job out of the pipe it waits in, to run elsewhere, if its worker has not
        claimed it (started it) yet: the copy there is withdrawn (the worker skips it; the
        skip is drained) and the job gets a spool path of its own. False: it stays."""
        victim = ticket.queued_on
        assert victim is not None
        withdrawn = victim.claims.withdraw(ticket.request["claim"])
        if not withdrawn:
            # False: running there now (its answer just not read yet); None: undecided
            ticket.started = withdrawn is False
            return False
        victim.queued[victim.queued.index(ticket)] = _Ticket(ticket.request, None)
        ticket.queued_on = None
        ticket.request = {**ticket.request, "spool": self._spool_path(), "claim": 0}
        self.stolen_jobs += 1
        return True

    def _steal_if_stuck(self, ticket: _Ticket) -> bool:
        """A job still queued `steal_after` after it was: a free worker takes it. True when
        its claim was undecided (the lock busy): the sweep looks again later."""
        if (ticket.queued_on is not None and ticket.wanted and not ticket.started
                and self._idle):
            worker = self._idle.popleft()
            if not (worker.alive and self._on_current(worker)):
                self._release(worker)
            elif not self._detach(ticket):
                self._idle.appendleft(worker)
                return not ticket.started
            elif self._run_on(worker, ticket):
                self._queue_next(worker)
        return False

    async def _drain(self, worker: _Worker, spool: str) -> None:
        """Read and drop the result of a job nobody waits for any more, then free the worker
        (killed if it overruns the time limit like any query)."""
        try:
            reply = await worker.receive(self.settings.query_timeout)
            if reply[0] == "stream":
                reply = await worker.receive(self.settings.query_timeout)
        except (TimeoutError, EOFError, OSError, asyncio.CancelledError):
            _unlink(spool)
            self._replace(worker)
            return
        if reply[0] == "skipped":
            self.skipped_jobs += 1
        _unlink(spool)
        self._release(worker)

    def _spool_path(self) -> str:
        return f"{self._spool_prefix}{next(self._seq)}"

    async def _freshen(self, worker: _Worker) -> None:
        """Reopen the current snapshot in `worker` (no new process), then release it; a worker
        that fails to reopen is replaced."""
        if self._closed or self._snapshot is None:
            self._release(worker)
            return
        if await self._reopen(worker, self._snapshot):
            self._prune()  # its previous snapshot may be unused now
            self._release(worker)  # reopens again if another write landed meanwhile
        else:
            self._replace(worker)

    async def _reopen(self, worker: _Worker, snapshot: Path) -> bool:
        worker.opening = snapshot  # kept from pruning until the worker has it open
        try:
            await worker.channel.send(("reopen", str(snapshot)))
            message = await worker.receive(START_TIMEOUT)
        except (TimeoutError, EOFError, OSError) as exc:
            if not self._closed:
                log.error("query worker %s did not reopen %s: %r", worker.pid, snapshot, exc)
            return False
        finally:
            worker.opening = None
        if message[0] != "ready":
            log.error("query worker %s did not reopen %s: %r", worker.pid, snapshot, message)
            return False
        worker.snapshot = snapshot
        self.reopened += 1
        return True

    async def _retire(self, worker: _Worker) -> None:
        await worker.stop()
        self._prune()

    def _prune(self) -> None:
        if self._taking:  # a snapshot being written is a directory no one uses yet: keep it
            return
        keep = {w.snapshot for w in self._workers} | set(self._pinned)
        keep |= {w.opening for w in self._workers if w.opening is not None}
        if self._snapshot is not None:
            keep.add(self._snapshot)
        stale = self.store.stale_snapshots(keep)
        self._versions = {k: v for k, v in self._versions.items() if k in keep}
        if stale:  # rmtree of a store directory blocked the event loop for tens of ms
            self._background(asyncio.to_thread(remove_dirs, stale))

    async def _obtain(
        self, request: worker_module.Job, deadline: Deadline
    ) -> tuple[_Worker, worker_module.Job]:
        """A worker running `request`, as it was sent (its spool path may have changed on the
        way): a free worker at once, else a
        place in the pipe of a worker whose job has just started, else the line (first come,
        first served), within the query's time limit."""
        while (worker := self._take_idle()) is not None:  # no timer, no future: low load
            if not worker.alive:
                self._replace(worker)
                continue
            if not self._on_current(worker):
                self._release(worker)  # not expected (refresh takes the idle ones): reopen it
                continue
            try:
                worker.channel.post(request)
            except (EOFError, OSError):
                self._replace(worker)
                continue
            worker.jobs += 1
            worker.running_since = time.monotonic()
            return worker, request
        loop = asyncio.get_running_loop()
        ticket = _Ticket(request, loop.create_future())
        target = None if self._waiters else self._queue_target()
        if target is None or not self._queue_on(target, ticket):
            self._waiters.append(ticket)
            self._arm_reserve()
        # the job's one timer, not asyncio.timeout (its bookkeeping showed in profiles)
        assert ticket.future is not None
        deadline.watch(ticket.future)
        try:
            worker = await ticket.future
        except BaseException as exc:
            self._abandon(ticket)
            if isinstance(exc, Expired):
                raise QueryTimeout(
                    f"no query worker became free within the {self.settings.query_timeout:g} s "
                    "time limit; the service is busy",
                    limit_seconds=self.settings.query_timeout,
                ) from None
            raise
        return worker, ticket.request

    def _take_idle(self) -> _Worker | None:
        """An idle worker for a new job, taken out of `_idle`: one that is not a reserve, else
        a reserve if no other worker is available, once the callers already in line have
        had theirs (a newcomer must not take the reserve ahead of them)."""
        for worker in self._idle:
            if not worker.reserve:
                self._idle.remove(worker)
                return worker
        if self._idle and not self._others_available():
            if self._waiters:
                self._serve_line_with_reserves()
            if self._idle and not self._waiters:
                return self._idle.popleft()
        return None

    def _others_available(self) -> bool:
        """Whether a worker that is not a reserve is idle or busy with a job that started
        within `reserve_after` (likely to be free soon)."""
        young = time.monotonic() - self.reserve_after
        return any(
            not w.reserve and w.alive and w.opening is None
            and (w.running_since is None or w.running_since >= young)
            for w in self._workers
        )

    def _reserve_may_take(self, ticket: _Ticket) -> bool:
        return (ticket.arrived <= time.monotonic() - self.reserve_after
                or not self._others_available())

    def _arm_reserve(self) -> None:
        """With callers in line and a reserve idle: look again when the head has waited
        `reserve_after` (one timer at a time, however long the line)."""
        if self._reserve_timer is not None or not self._waiters or self._closed:
            return
        if not any(w.reserve for w in self._idle):
            return
        delay = self._waiters[0].arrived + self.reserve_after - time.monotonic()
        self._reserve_timer = asyncio.get_running_loop().call_later(
            max(delay, 0.0), self._engage_reserve)

    def _engage_reserve(self) -> None:
        self._reserve_timer = None
        self._serve_line_with_reserves()
        self._arm_reserve()

    def _serve_line_with_reserves(self) -> None:
        """Each idle reserve takes the head of the line while the head may have it."""
        for reserve in [w for w in self._idle if w.reserve]:
            if not self._waiters:
                return
            self._idle.remove(reserve)
            self._put_idle(reserve)  # runs the head if it may; else back to idle (and re-arms)
            if reserve in self._idle:
                return  # the head may not have a reserve yet: neither may the next one

    def _abandon(self, ticket: _Ticket) -> None:
        """The caller gave up (time limit, client gone): its job must not run for nobody, or
        if it already runs or sits in a pipe, its result is drained."""
        future = ticket.future
        assert future is not None
        if future.done() and not future.cancelled() and future.exception() is None:
            # handed a worker just as the caller gave up: the job runs there, nobody reads it
            self._background(self._drain(future.result(), ticket.request["spool"]))
            return
        ticket.abandoned = True
        if ticket.queued_on is None:
            with contextlib.suppress(ValueError):
                self._waiters.remove(ticket)
        else:  # the worker skips it, or it has started it: drained when its turn comes
            ticket.queued_on.claims.withdraw(ticket.request["claim"])

    async def execute(self, job: QueryJob) -> QueryResult:
        """Run a query in a worker; raises QueryTimeout, QuerySyntaxError, TooManyRows...

        A large SELECT in a streamable format comes back as a `StreamedResult` while the
        worker still writes it (kg.sparql.streaming); everything else is complete.
        """
        if self._closed:
            raise BackendUnavailable("the query executor is closed")
        started = time.monotonic()
        deadline = started + self.settings.query_timeout
        # one timer for the wait for a worker and for its answer (kg.sparql.channel.Deadline)
        timer = Deadline(asyncio.get_running_loop(), self.settings.query_timeout)
        request: worker_module.Job = {
            "query": job.query,
            "format": job.format,
            "default_graph": job.default_graph,
            "named_graphs": job.named_graphs,
            "prefixes": job.prefixes,
            "spool": self._spool_path(),
            "stream": self.settings.stream_results,
            "claim": 0,
        }
        try:
            worker, request = await self._obtain(request, timer)
            spool = request["spool"]
            # the snapshot this query runs on, and so the version its result is labelled with
            version = self._versions.get(worker.snapshot)
            reply = await self._reply(worker, spool, started, deadline, timer)
        finally:
            timer.cancel()
        if reply[0] == "stream":
            meta = reply[1]
            final = asyncio.get_running_loop().create_task(
                self._finish(worker, spool, started, deadline)
            )
            # cancelled (client gone, HEAD) even before it ran: the worker is mid-query
            final.add_done_callback(lambda task: task.cancelled() and self._replace(worker))
            return StreamedResult(
                format=BY_KEY[meta["format"]], rows=0, size=0, path=meta["path"],
                elapsed=time.monotonic() - started, final=final, version=version,
            )
        self._release(worker)
        result = _result(reply, self._config, time.monotonic() - started)
        result.version = version
        return result

    async def _reply(
        self, worker: _Worker, spool: str, started: float, deadline: float,
        timer: Deadline | None = None,
    ) -> tuple[Any, ...]:
        """The worker's next message by `deadline` (`timer`'s when given); a timeout, death or
        cancellation replaces the worker."""
        try:
            if timer is not None:
                return await worker.receive(None, timer)
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
        """After a committed write: a new snapshot, which the workers reopen in place.

        When this returns, every query that starts reads the write: the new snapshot is
        current, the idle workers have reopened it and a busy one reopens it before its next
        job. Calls that wait while another takes its snapshot are coalesced: the next snapshot
        started after all of them committed, so one snapshot serves them all.
        """
        self._requested += 1
        ticket = self._requested
        async with self._refresh_lock:
            if self._closed or self._covered >= ticket:
                return
            covers = self._requested  # these calls' writes committed before this snapshot
            version = self.store.version
            self._taking += 1
            taking = asyncio.ensure_future(asyncio.to_thread(self.store.snapshot))
            taking.add_done_callback(self._failed)  # even if this caller is cancelled meanwhile
            try:
                snapshot = await asyncio.shield(taking)
            except asyncio.CancelledError:
                taking.add_done_callback(self._orphaned)
                raise
            self.snapshots_taken += 1
            self._versions[snapshot] = version
            self._snapshot = snapshot
            self._covered = covers
            # pruning may list the directory again only now that it is current: between the
            # end of the write and here, a prune run by another callback (a worker's "ready")
            # took the new snapshot for a stale one and removed it before the workers reopened
            # it (CI of 2864487: test_concurrent_refreshes_share_a_snapshot)
            self._taking -= 1
            idle = list(self._idle)
            self._idle.clear()
            # tasks of their own: cancelling the writer's request must not strand a worker
            reopening = [self._background(self._freshen(w)) for w in idle]
        if reopening:
            await asyncio.wait(reopening)
        self._prune()

    def _failed(self, taking: asyncio.Future[Path]) -> None:
        """A snapshot that failed (or was cancelled) is no one's: pruning may list again. A
        written one is released by refresh() once current, or by _orphaned."""
        if taking.cancelled() or taking.exception() is not None:  # retrieved: refresh() raises
            self._taking -= 1

    def _orphaned(self, taking: asyncio.Future[Path]) -> None:
        """A snapshot written for a refresh() that was cancelled meanwhile is no one's, and
        goes with the next prune."""
        if not taking.cancelled() and taking.exception() is None:
            self._taking -= 1

    async def close(self) -> None:
        self._closed = True
        for timer in (self._reserve_timer, self._steal_timer):
            if timer is not None:
                timer.cancel()
        self._reserve_timer = self._steal_timer = None
        closed = BackendUnavailable("the query executor is closed")
        tickets = [*self._waiters, *(t for w in self._workers for t in w.queued)]
        self._waiters.clear()
        for ticket in tickets:
            if ticket.wanted:
                assert ticket.future is not None
                ticket.future.set_exception(closed)
        self._idle.clear()
        workers = list(self._workers)
        self._workers.clear()
        await asyncio.gather(*(w.stop() for w in workers), return_exceptions=True)
        # what runs in the background ends now its workers are gone; a replacement under way
        # stops its new process itself (_spawn). Cancelled, that one would leak: the thread
        # starting it runs on, and the process could outlive the lock it was given.
        pending = [task for task in self._tasks if not task.done()]
        if pending:
            _done, late = await asyncio.wait(pending, timeout=CLOSE_WAIT)
            for task in late:
                task.cancel()
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
