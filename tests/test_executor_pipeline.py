"""Pipelined query workers (kg.sparql.executor): a job is written into a busy worker's pipe
behind the one it runs, so the worker starts it without a round trip through the event loop;
real worker processes throughout.

- many concurrent queries on one worker: each answer is right, jobs were queued, nothing is
  left in the spool directory, no process was started;
- no head-of-line blocking: a job queued behind a long query moves to a worker that frees up;
  its copy in the first pipe is drained, not answered twice;
- the query ahead times out (its worker is killed): the queued job, which never started, runs
  on the replacement;
- a caller that gives up while its job is queued leaves nothing behind: the copy is drained
  and the worker stays;
- a job its worker has already started is not moved to another (the claim), even when the
  event loop learns of the start late;
- with pipelining off (KG_QUERY_PIPELINING=false) nothing is queued in a pipe;
- a reserve worker (KG_QUERY_RESERVE_WORKERS) gets no job while the other keeps up, takes the
  ones a long query would hold up, serves those in line before a newcomer, every idle reserve
  is woken for a line, and a worker keeps its role when it is replaced.
"""

from __future__ import annotations

import asyncio
import io
import json
import select
import shutil
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pyoxigraph as ox
import pytest

from kg.config import Settings
from kg.errors import QueryTimeout
from kg.sparql import executor as executor_module
from kg.sparql.executor import QueryExecutor
from kg.store.base import QueryJob
from kg.store.embedded import EmbeddedStore
from tests.server_process import BASE_IRI

pytestmark = pytest.mark.serial(
    "worker processes race queries of ~1-4 s against time limits of a few seconds; a second "
    "test process on the same cores makes them miss"
)

SHORT_SLOW = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f FILTER(?c != ?f) }"  # ~1 s
LONGER = ("SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f "
          "FILTER(?c != ?f && ?a != ?d) }")  # about twice SHORT_SLOW
ENDLESS = ("SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i "
           "FILTER(?c != ?f) }")  # ~40 s: only a time limit ends it


def small(n: int) -> str:
    return f"SELECT ?s ?p ?o WHERE {{ ?s ?p ?o }} ORDER BY ?s ?p ?o LIMIT {n}"


def bindings(body: bytes) -> list[dict[str, object]]:
    return json.loads(body)["results"]["bindings"]


_EXPECTED: dict[str, list[dict[str, object]]] = {}


def expected(store_path: Path, text: str) -> list[dict[str, object]]:
    """The answer of the store read directly. Remembered by text: every test runs on a copy of
    the same sample store and none writes, and a read-only open costs ~50-100 ms (some tests
    check 120 answers)."""
    if text not in _EXPECTED:
        store = ox.Store.read_only(str(store_path))
        out = io.BytesIO()
        store.query(text).serialize(out, ox.QueryResultsFormat.JSON)  # type: ignore[union-attr]
        _EXPECTED[text] = bindings(out.getvalue())
    return _EXPECTED[text]


Body = Callable[[QueryExecutor, Path], Awaitable[None]]


def with_executor(sample_store: Path, tmp_path: Path, body: Body, *, workers: int,
                  timeout: float = 60.0, pipelining: bool = True, reserves: int = 1) -> None:
    async def main() -> None:
        shutil.copytree(sample_store, tmp_path / "store")
        settings = Settings(store_path=tmp_path / "store", base_iri=BASE_IRI,
                            query_workers=workers, query_timeout=timeout,
                            query_reserve_workers=reserves)
        store = EmbeddedStore(tmp_path / "store")
        executor = QueryExecutor(settings, store)
        executor.pipelining = pipelining  # on by default (KG_QUERY_PIPELINING)
        await executor.start()
        try:
            await body(executor, tmp_path / "store")
        finally:
            await executor.close()
            store.close()

    asyncio.run(main())


async def running(executor: QueryExecutor, count: int) -> None:
    """Until `count` workers run a job."""
    deadline = time.monotonic() + 10
    while sum(w.running_since is not None for w in executor._workers) < count:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)


def spool_files(executor: QueryExecutor) -> list[Path]:
    return list(executor._spool_dir.iterdir())


def test_many_queries_on_one_worker_are_queued_and_answered_right(sample_store: Path,
                                                                  tmp_path: Path) -> None:
    async def body(executor: QueryExecutor, store_path: Path) -> None:
        executor.queue_behind_younger_than = 60.0  # every job may queue behind another
        texts = [small(n) for n in range(1, 41)]
        results = await asyncio.gather(*(executor.execute(QueryJob(t, "json")) for t in texts))
        for text, result in zip(texts, results, strict=True):
            assert result.inline is not None
            assert bindings(result.inline) == expected(store_path, text)
        assert executor.queued_jobs > 0
        assert executor.spawned == 1 and executor.stolen_jobs == 0
        assert spool_files(executor) == []

    with_executor(sample_store, tmp_path, body, workers=1)


def test_without_pipelining_queries_wait_in_the_server_and_are_answered_right(
        sample_store: Path, tmp_path: Path) -> None:
    async def body(executor: QueryExecutor, store_path: Path) -> None:
        executor.queue_behind_younger_than = 60.0
        texts = [small(n) for n in range(1, 21)]
        results = await asyncio.gather(*(executor.execute(QueryJob(t, "json")) for t in texts))
        for text, result in zip(texts, results, strict=True):
            assert result.inline is not None
            assert bindings(result.inline) == expected(store_path, text)
        assert executor.queued_jobs == 0 and executor.spawned == 2
        assert spool_files(executor) == []

    with_executor(sample_store, tmp_path, body, workers=2, pipelining=False)


def test_a_job_queued_behind_a_long_query_moves_to_a_worker_that_frees_up(
        sample_store: Path, tmp_path: Path) -> None:
    async def body(executor: QueryExecutor, store_path: Path) -> None:
        executor.queue_behind_younger_than = 60.0
        executor.steal_after = 0.05
        short = asyncio.create_task(executor.execute(QueryJob(SHORT_SLOW, "json")))
        await running(executor, 1)
        endless = asyncio.create_task(executor.execute(QueryJob(ENDLESS, "json")))
        await running(executor, 2)
        quick = await executor.execute(QueryJob(small(5), "json"))  # queued behind ENDLESS
        assert quick.inline is not None
        assert bindings(quick.inline) == expected(store_path, small(5))
        assert executor.queued_jobs == 1 and executor.stolen_jobs == 1
        # answered before ENDLESS's time limit: it was taken by SHORT_SLOW's worker once free
        assert not endless.done(), "the quick query waited for the endless one"
        assert (await short).inline is not None
        with pytest.raises(QueryTimeout):
            await endless  # its worker is killed; the copy queued behind it goes with it
        again = await executor.execute(QueryJob(small(3), "json"))
        assert again.inline is not None and bindings(again.inline) == expected(store_path,
                                                                               small(3))
        assert spool_files(executor) == []

    with_executor(sample_store, tmp_path, body, workers=2, timeout=8.0)


def test_a_queued_job_runs_after_the_query_ahead_times_out(sample_store: Path,
                                                           tmp_path: Path) -> None:
    async def body(executor: QueryExecutor, store_path: Path) -> None:
        executor.queue_behind_younger_than = 60.0
        executor.steal_after = 60.0  # no other worker anyway
        endless = asyncio.create_task(executor.execute(QueryJob(ENDLESS, "json")))
        await running(executor, 1)
        await asyncio.sleep(1.5)  # its own time limit (waiting included) ends well after
        quick = asyncio.create_task(executor.execute(QueryJob(small(4), "json")))
        with pytest.raises(QueryTimeout):
            await endless
        result = await quick  # back in line when its worker was killed, run on the new one
        assert result.inline is not None
        assert bindings(result.inline) == expected(store_path, small(4))
        assert executor.queued_jobs == 1 and executor.spawned == 2
        assert spool_files(executor) == []

    with_executor(sample_store, tmp_path, body, workers=1, timeout=3.0)


def test_closing_while_a_replacement_starts_leaves_no_worker_behind(
        sample_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """close() right after a time-out, while the killed worker's replacement is starting: the
    new process is stopped too (found when a test run ended with a forkserver child failing
    to rebuild the lock of an executor already gone: the replacement outlived close())."""
    started: list[executor_module._Worker] = []
    replacing, proceed = threading.Event(), threading.Event()

    class Recorded(executor_module._Worker):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            if started:  # the replacement: held until close() has begun
                replacing.set()
                assert proceed.wait(10)
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(executor_module, "_Worker", Recorded)

    async def main() -> None:
        shutil.copytree(sample_store, tmp_path / "store")
        settings = Settings(store_path=tmp_path / "store", base_iri=BASE_IRI, query_workers=1,
                            query_timeout=1.0, query_reserve_workers=0)
        store = EmbeddedStore(tmp_path / "store")
        executor = QueryExecutor(settings, store)
        await executor.start()
        try:
            with pytest.raises(QueryTimeout):
                await executor.execute(QueryJob(ENDLESS, "json"))
            assert await asyncio.to_thread(replacing.wait, 10)
        finally:
            closing = asyncio.create_task(executor.close())
            await asyncio.sleep(0.2)
            proceed.set()
            await closing
            store.close()

    asyncio.run(main())
    assert len(started) == 2  # the first worker and its replacement
    for worker in started:  # both stopped by the executor: asked to (0) or killed
        worker.process.join(5)
        assert worker.process.exitcode in (0, -signal.SIGKILL), worker.process


def test_a_caller_that_gives_up_while_queued_leaves_nothing_behind(sample_store: Path,
                                                                   tmp_path: Path) -> None:
    async def body(executor: QueryExecutor, store_path: Path) -> None:
        executor.queue_behind_younger_than = 60.0
        slow = asyncio.create_task(executor.execute(QueryJob(SHORT_SLOW, "json")))
        await running(executor, 1)
        pids = executor.worker_pids
        gone = asyncio.create_task(executor.execute(QueryJob(small(6), "json")))
        await asyncio.sleep(0.05)
        assert executor.queued_jobs == 1
        gone.cancel()  # the client went away while its job sat in the pipe
        with pytest.raises(asyncio.CancelledError):
            await gone
        assert (await slow).inline is not None
        after = await executor.execute(QueryJob(small(2), "json"))  # after the drained copy
        assert after.inline is not None
        assert bindings(after.inline) == expected(store_path, small(2))
        assert executor.worker_pids == pids and executor.spawned == 1  # nobody was killed
        assert executor.skipped_jobs == 1  # withdrawn: the worker did not run it
        assert spool_files(executor) == []

    with_executor(sample_store, tmp_path, body, workers=1)


def test_a_job_moved_to_another_worker_is_not_run_twice(sample_store: Path,
                                                         tmp_path: Path) -> None:
    async def body(executor: QueryExecutor, store_path: Path) -> None:
        executor.queue_behind_younger_than = 60.0
        executor.steal_after = 0.05
        short = asyncio.create_task(executor.execute(QueryJob(SHORT_SLOW, "json")))
        await running(executor, 1)
        longer = asyncio.create_task(executor.execute(QueryJob(LONGER, "json")))
        await running(executor, 2)
        quick = await executor.execute(QueryJob(small(7), "json"))  # queued behind LONGER
        assert quick.inline is not None
        assert bindings(quick.inline) == expected(store_path, small(7))
        assert executor.stolen_jobs == 1 and not longer.done()
        assert (await short).inline is not None and (await longer).inline is not None
        after = await executor.execute(QueryJob(small(1), "json"))  # LONGER's worker is free
        assert after.inline is not None
        assert executor.skipped_jobs == 1  # LONGER's worker skipped the withdrawn copy
        assert executor.spawned == 2 and spool_files(executor) == []

    with_executor(sample_store, tmp_path, body, workers=2)


def test_a_job_stuck_behind_a_long_query_is_taken_even_while_others_wait(
        sample_store: Path, tmp_path: Path) -> None:
    """The other worker never idles (a steady stream of small queries keeps a line waiting),
    yet a job queued behind the long query is taken by it first: it arrived before the line."""
    async def body(executor: QueryExecutor, store_path: Path) -> None:
        executor.queue_behind_younger_than = 60.0
        executor.steal_after = 0.05
        endless = asyncio.create_task(executor.execute(QueryJob(ENDLESS, "json")))
        await running(executor, 1)
        short = asyncio.create_task(executor.execute(QueryJob(SHORT_SLOW, "json")))
        await running(executor, 2)
        started = time.monotonic()
        queued = [asyncio.create_task(executor.execute(QueryJob(small(n), "json")))
                  for n in (11, 12, 13, 14)]  # two in each pipe (depth 2)
        await asyncio.sleep(0.01)
        assert all(len(w.queued) == 2 for w in executor._workers)
        stop = time.monotonic() + 6.0  # before the time limit (8 s) frees the held worker

        async def stream(k: int) -> None:  # the line never empties before `stop`
            n = 100 + k
            while time.monotonic() < stop:
                await executor.execute(QueryJob(small(n), "json"))

        flood = [asyncio.create_task(stream(k)) for k in range(6)]
        done_at = {}
        for n, task in zip((11, 12, 13, 14), queued, strict=True):
            result = await task
            done_at[n] = time.monotonic() - started
            assert result.inline is not None
            assert bindings(result.inline) == expected(store_path, small(n))
        # answered while the line still had work (not after the stream, nor the time limit);
        # judged by the stream's state, not by a time, which a slow machine stretches
        assert not all(t.done() for t in flood), done_at
        assert not endless.done() and executor.stolen_jobs >= 2
        await asyncio.gather(*flood)
        assert (await short).inline is not None
        with pytest.raises(QueryTimeout):
            await endless

    with_executor(sample_store, tmp_path, body, workers=2, timeout=8.0)


def test_a_job_its_worker_has_started_is_not_taken_by_another(sample_store: Path,
                                                              tmp_path: Path) -> None:
    """The race behind a read that waited out its time limit (CI of 4b1ab50): the worker ahead
    finishes and starts the queued job before this event loop reads its answer, and meanwhile
    another worker, freed, takes the job as "stuck". Withdrawing it then came too late and the
    long query ran on both workers, leaving none for anyone else. A job is now claimed by
    exactly one of them (the worker that starts it, or the parent that moves it)."""
    async def body(executor: QueryExecutor, store_path: Path) -> None:
        executor.queue_behind_younger_than = 60.0
        executor.steal_after = 0.05
        first = asyncio.create_task(executor.execute(QueryJob(SHORT_SLOW, "json")))
        await running(executor, 1)
        second = asyncio.create_task(executor.execute(QueryJob(LONGER, "json")))
        await running(executor, 2)
        endless = asyncio.create_task(executor.execute(QueryJob(ENDLESS, "json")))
        await asyncio.sleep(0.01)
        assert sorted(len(w.queued) for w in executor._workers) == [0, 1]
        behind = next(w for w in executor._workers if w.queued)
        other = next(w for w in executor._workers if w is not behind)
        number = behind.queued[0].request["claim"]
        # this loop stalls (no await) until both workers have finished, SHORT_SLOW's first and
        # LONGER's, whose worker has gone straight on to ENDLESS; once the loop runs again,
        # SHORT_SLOW's worker is freed first and finds ENDLESS "stuck" in the other pipe
        deadline = time.monotonic() + 60
        sock = other.channel._transport.get_extra_info("socket")  # type: ignore[union-attr]
        while not (behind.claims.cells[0] >= number and select.select([sock], [], [], 0)[0]):
            assert time.monotonic() < deadline, "the workers did not get there in 60 s"
            time.sleep(0.01)
        assert (await first).inline is not None and (await second).inline is not None
        started = time.monotonic()
        quick = await executor.execute(QueryJob(small(3), "json"))
        assert time.monotonic() - started < 2.0, "the quick query waited for a free worker"
        assert quick.inline is not None and bindings(quick.inline) == expected(store_path,
                                                                               small(3))
        assert executor.stolen_jobs == 0 and not endless.done()
        with pytest.raises(QueryTimeout):
            await endless
        assert spool_files(executor) == []

    with_executor(sample_store, tmp_path, body, workers=2, timeout=8.0)


def test_a_queued_job_is_had_by_exactly_one_side() -> None:
    """kg.sparql.worker.Claims: the worker starting a job and the parent withdrawing it."""
    import multiprocessing

    from kg.sparql.worker import CLAIM_SLOTS, Claims

    claims = Claims(multiprocessing.get_context("forkserver"))
    assert claims.start(1)  # the worker started job 1 ...
    assert not claims.withdraw(1)  # ... so it cannot be moved
    assert claims.withdraw(2) and claims.withdraw(3)  # 2 and 3 still wait: moved
    assert not claims.start(2) and not claims.start(3)  # the worker skips both
    assert claims.start(4) and not claims.withdraw(4)
    assert claims.start(2 + CLAIM_SLOTS)  # job 2's slot again: its old marker does not count
    with claims.lock:  # the worker holds the lock (preempted, or killed inside it)
        assert claims.withdraw(30) is None  # undecided, after a short wait: not "started"
    assert claims.withdraw(30) is True


def reserve_of(executor: QueryExecutor) -> tuple[object, object]:
    """The pool's (reserve, other) workers, for a pool of two."""
    reserve = [w for w in executor._workers if w.reserve]
    other = [w for w in executor._workers if not w.reserve]
    assert len(reserve) == 1 and len(other) == 1
    return reserve[0], other[0]


def test_a_reserve_worker_gets_no_job_while_the_other_keeps_up(sample_store: Path,
                                                               tmp_path: Path) -> None:
    """Concurrent small queries all run on one worker (queued in its pipe or waiting in line),
    never on the reserve: under a steady load of small queries, fewer busy processes than cores
    leaves the request process a core of its own (bench/NOTES.md)."""
    async def body(executor: QueryExecutor, store_path: Path) -> None:
        executor.reserve_after = 60.0  # no wait is long enough: the other worker keeps up
        executor.steal_after = 60.0  # (nor is any wait in its pipe)
        reserve, other = reserve_of(executor)
        texts = [small(n) for n in range(1, 41)]
        for _ in range(3):
            results = await asyncio.gather(*(executor.execute(QueryJob(t, "json"))
                                             for t in texts))
            for text, result in zip(texts, results, strict=True):
                assert result.inline is not None
                assert bindings(result.inline) == expected(store_path, text)
        assert reserve.jobs == 0 and other.jobs == 120  # type: ignore[attr-defined]
        assert spool_files(executor) == []

    with_executor(sample_store, tmp_path, body, workers=2)


def test_a_reserve_worker_takes_the_queries_a_long_one_would_hold_up(
        sample_store: Path, tmp_path: Path) -> None:
    async def body(executor: QueryExecutor, store_path: Path) -> None:
        executor.reserve_after = 0.05
        reserve, other = reserve_of(executor)
        endless = asyncio.create_task(executor.execute(QueryJob(ENDLESS, "json")))
        await running(executor, 1)
        assert other.running_since is not None and reserve.running_since is None  # type: ignore[attr-defined]
        first = await executor.execute(QueryJob(small(3), "json"))  # waits reserve_after at most
        texts = [small(n) for n in range(4, 14)]  # the other worker is held: no wait now
        rest = await asyncio.gather(*(executor.execute(QueryJob(t, "json")) for t in texts))
        for text, result in zip([small(3), *texts], [first, *rest], strict=True):
            assert result.inline is not None
            assert bindings(result.inline) == expected(store_path, text)
        # all answered before ENDLESS's time limit, so none waited for its worker
        assert not endless.done(), "the small queries waited for the endless one"
        assert reserve.jobs == 11 and other.jobs == 1  # type: ignore[attr-defined]
        with pytest.raises(QueryTimeout):
            await endless
        assert spool_files(executor) == []

    with_executor(sample_store, tmp_path, body, workers=2, timeout=6.0)


def test_a_replaced_worker_keeps_its_role(sample_store: Path, tmp_path: Path) -> None:
    async def body(executor: QueryExecutor, store_path: Path) -> None:
        assert executor.reserves == 1
        for role in (True, False):
            dead = next(w for w in executor._workers if w.reserve is role)
            dead.process.kill()
            deadline = time.monotonic() + 30
            while dead in executor._workers or len(executor.worker_pids) < 2:
                if dead in executor._workers and dead.alive:
                    await asyncio.sleep(0.05)
                    continue
                if dead in executor._workers:
                    executor._replace(dead)  # a death is learnt when its job fails, or here
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            assert sorted(w.reserve for w in executor._workers) == [False, True]
            result = await executor.execute(QueryJob(small(2), "json"))
            assert result.inline is not None
            assert bindings(result.inline) == expected(store_path, small(2))

    with_executor(sample_store, tmp_path, body, workers=2)


def test_a_pool_of_one_has_no_reserve(sample_store: Path, tmp_path: Path) -> None:
    async def body(executor: QueryExecutor, store_path: Path) -> None:
        assert executor.reserves == 0 and [w.reserve for w in executor._workers] == [False]
        result = await executor.execute(QueryJob(small(2), "json"))
        assert result.inline is not None

    with_executor(sample_store, tmp_path, body, workers=1)


def test_a_reserve_that_frees_up_leaves_the_line_to_the_other_worker(
        sample_store: Path, tmp_path: Path) -> None:
    """The reserve ran a query while the other worker was held; once that one is free again,
    the reserve, freed in turn, goes idle instead of serving a line the other keeps up with."""
    async def body(executor: QueryExecutor, store_path: Path) -> None:
        executor.reserve_after = 0.05
        executor.steal_after = 60.0
        reserve, other = reserve_of(executor)
        first = asyncio.create_task(executor.execute(QueryJob(SHORT_SLOW, "json")))
        await running(executor, 1)
        await asyncio.sleep(0.2)  # the other worker is held by now
        second = asyncio.create_task(executor.execute(QueryJob(LONGER, "json")))
        await running(executor, 2)
        assert reserve.jobs == 1  # type: ignore[attr-defined]
        assert (await first).inline is not None
        executor.reserve_after = 60.0  # from now on the other worker keeps up

        async def stream(k: int) -> None:  # a line, until well after `second` ends
            n = 1 + k
            while not second.done():
                result = await executor.execute(QueryJob(small(n), "json"))
                assert result.inline is not None
            for _ in range(20):
                await executor.execute(QueryJob(small(n), "json"))

        await asyncio.gather(*(stream(k) for k in range(12)))
        assert (await second).inline is not None
        assert reserve.jobs == 1 and other.jobs > 100  # type: ignore[attr-defined]

    with_executor(sample_store, tmp_path, body, workers=2)


def test_every_idle_reserve_is_woken_for_the_line(sample_store: Path, tmp_path: Path) -> None:
    """Two reserves, pipelining off, the other worker held: the timer must wake both for the
    two callers in line, not only the first (found in review: the second waited out the time
    limit while a reserve idled)."""
    async def body(executor: QueryExecutor, store_path: Path) -> None:
        executor.reserve_after = 0.05
        endless = asyncio.create_task(executor.execute(QueryJob(ENDLESS, "json")))
        await running(executor, 1)
        held = asyncio.create_task(executor.execute(QueryJob(ENDLESS, "json")))  # the head
        await asyncio.sleep(0)
        quick = await executor.execute(QueryJob(small(2), "json"))  # second in line
        assert quick.inline is not None
        assert bindings(quick.inline) == expected(store_path, small(2))
        assert not endless.done() and not held.done()  # answered while both still run
        assert sorted(w.jobs for w in executor._workers if w.reserve) == [1, 1]
        for task in (endless, held):
            with pytest.raises(QueryTimeout):
                await task

    with_executor(sample_store, tmp_path, body, workers=3, reserves=2, timeout=6.0,
                  pipelining=False)


def test_a_newcomer_does_not_take_the_reserve_ahead_of_the_line(sample_store: Path,
                                                                 tmp_path: Path) -> None:
    """A caller waits in line for the reserve (the other worker's query was then too young to
    give up on); a newcomer arriving once that query is old must not take the idle reserve
    first (found in review: the first caller then waited for the newcomer's long query)."""
    async def body(executor: QueryExecutor, store_path: Path) -> None:
        executor.reserve_after = 0.3  # a window wide enough to arrive in, on any machine
        reserve, other = reserve_of(executor)
        endless = asyncio.create_task(executor.execute(QueryJob(ENDLESS, "json")))
        await running(executor, 1)
        started = other.running_since  # type: ignore[attr-defined]
        await asyncio.sleep(max(started + 0.1 - time.monotonic(), 0))
        first = asyncio.create_task(executor.execute(QueryJob(small(3), "json")))
        await asyncio.sleep(0)
        assert len(executor._waiters) == 1 and reserve in executor._idle
        await asyncio.sleep(max(started + 0.35 - time.monotonic(), 0))
        assert not first.done() and len(executor._waiters) == 1, "no window to arrive in"
        newcomer = asyncio.create_task(executor.execute(QueryJob(LONGER, "json")))
        done, _ = await asyncio.wait({first, newcomer}, return_when=asyncio.FIRST_COMPLETED)
        assert first in done and newcomer not in done
        result = first.result()
        assert result.inline is not None
        assert bindings(result.inline) == expected(store_path, small(3))
        assert (await newcomer).inline is not None
        with pytest.raises(QueryTimeout):
            await endless

    with_executor(sample_store, tmp_path, body, workers=2, timeout=8.0)


@pytest.mark.parametrize("pipelining", [True, False])
def test_one_time_limit_covers_the_wait_for_a_worker_and_the_run(
        sample_store: Path, tmp_path: Path, pipelining: bool) -> None:
    """A query that waits (in line, or in the pipe of a worker held by a longer one) and then
    runs is stopped when its one time limit, counted from its arrival, runs out while it runs:
    the limit is not restarted for the run (kg.sparql.channel.Deadline serves both waits)."""
    async def body(executor: QueryExecutor, store_path: Path) -> None:
        executor.queue_behind_younger_than = 60.0
        executor.steal_after = 60.0  # one worker: nowhere else to go
        endless = asyncio.create_task(executor.execute(QueryJob(ENDLESS, "json")))
        await running(executor, 1)
        await asyncio.sleep(1.0)
        arrived = time.monotonic()
        second = asyncio.create_task(executor.execute(QueryJob(ENDLESS, "json")))
        with pytest.raises(QueryTimeout):
            await endless
        with pytest.raises(QueryTimeout) as stopped:
            await second
        assert "exceeded" in str(stopped.value)  # it got the replacement and ran, then stopped
        # its limit ran out 3 s after it arrived; a limit restarted for the run would end ~2 s
        # later (the ENDLESS query itself runs ~40 s)
        assert time.monotonic() - arrived < 4.5

    with_executor(sample_store, tmp_path, body, workers=1, timeout=3.0, pipelining=pipelining)
