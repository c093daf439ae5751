"""A committed write refreshes readers in place: the query workers reopen the new snapshot, no
process is started (kg.sparql.executor `refresh`). Real worker processes throughout.

- the worker pids stay the same across writes (the executor's own list and the OS's), and a
  query after `refresh()` sees the write, labelled with the version it ran on;
- a query running during a write finishes on the snapshot it started on (old data, old
  version); its worker reopens afterwards, and the old snapshot is pruned once unused;
- concurrent refreshes share one snapshot; a worker that died while idle is replaced;
- through HTTP: updates on a live server leave its worker processes in place.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest

from kg.config import Settings
from kg.sparql.executor import QueryExecutor
from kg.store.base import QueryJob
from kg.store.embedded import EmbeddedStore
from tests.server_process import BASE_IRI, start_server

pytestmark = pytest.mark.serial("a query must still be running in a worker 0.1 s after it is sent")

TOKEN = "refresh-token"
GRAPH = f"{BASE_IRI}graph/refresh-test"
# a cartesian product over the sample's default graph (~1.2M solutions): seconds of work, then
# whether the marker is in the snapshot the worker has open
SLOW_MARKER_QUERY = (
    "SELECT ?n ?seen WHERE {{ {{ SELECT (COUNT(*) AS ?n) WHERE {{ "
    "{{ ?a ?b ?c . ?d ?e ?f FILTER(?c != ?f) }} UNION {{ ?a ?b ?c . ?d ?e ?f FILTER(?a != ?d) }} "
    "}} }} BIND (EXISTS {{ GRAPH <{graph}> {{ <{marker}> ?p ?o }} }} AS ?seen) }}"
)


def marker(i: int) -> str:
    return f"{BASE_IRI}id/refresh-marker-{i}"


def insert(i: int) -> str:
    return (f"INSERT DATA {{ GRAPH <{GRAPH}> {{ <{marker(i)}> "
            f"<http://www.w3.org/2000/01/rdf-schema#label> \"marker {i}\" }} }}")


def ask(i: int) -> str:
    return f"ASK {{ GRAPH <{GRAPH}> {{ <{marker(i)}> ?p ?o }} }}"


def os_workers() -> set[int]:
    """Processes forked by our forkserver (grandchildren of this one): our query workers, and
    whatever else earlier tests in this process started there (a rehearsal process)."""
    return {p.pid for child in psutil.Process().children() for p in child.children()}


def server_workers(pid: int) -> set[int]:
    """The forkserver's children in a server: its query workers and, once a write came, the
    rehearsal process."""
    return {p.pid for child in psutil.Process(pid).children() for p in child.children()}


async def eventually(check: Callable[[], bool], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


class Pool:
    """An executor (2 real workers) on a copy of the sample store, and a writer for it."""

    def __init__(self, executor: QueryExecutor, store: EmbeddedStore) -> None:
        self.executor = executor
        self.store = store

    async def write(self, i: int, refresh: bool = True) -> int:
        """Commit like kg.store.writes does: update, bump the version, refresh readers."""
        await asyncio.to_thread(self.store.raw.update, insert(i))
        version = self.store.bump_version()
        if refresh:
            await self.executor.refresh()
        return version

    async def sees(self, i: int) -> tuple[bool, int | None]:
        result = await self.executor.execute(QueryJob(ask(i), "json"))
        assert result.inline is not None
        return b"true" in result.inline, result.version


def run(coro_fn: Callable[..., object]) -> Callable[..., None]:
    """Run an async test body in a fresh event loop (no pytest-asyncio here)."""

    def wrapper(sample_store: Path, tmp_path: Path) -> None:
        async def main() -> None:
            shutil.copytree(sample_store, tmp_path / "store")
            settings = Settings(store_path=tmp_path / "store", base_iri=BASE_IRI,
                                query_workers=2, query_timeout=60)
            store = EmbeddedStore(tmp_path / "store")
            executor = QueryExecutor(settings, store)
            await executor.start()
            try:
                await coro_fn(Pool(executor, store))  # type: ignore[misc]
            finally:
                await executor.close()
                store.close()

        asyncio.run(main())

    wrapper.__name__ = coro_fn.__name__
    wrapper.__doc__ = coro_fn.__doc__
    return wrapper


@run
async def test_writes_reopen_the_workers_in_place(pool: Pool) -> None:
    """Five writes: no new process, each visible to the next query, labelled with its version;
    the superseded snapshots are closed by the workers and pruned."""
    executor = pool.executor
    pids = executor.worker_pids
    forked = os_workers()
    assert len(pids) == 2 and set(pids) <= forked
    spawned = executor.spawned
    for i in range(5):
        version = await pool.write(i)
        seen, computed_on = await pool.sees(i)
        assert seen, f"write {i} not visible after refresh()"
        assert computed_on == version
    assert executor.worker_pids == pids
    assert executor.spawned == spawned
    assert os_workers() == forked  # nothing started, nothing replaced
    assert executor.reopened >= 10  # both workers, five times

    current = executor.snapshot
    assert current is not None
    snapshots_dir = pool.store.snapshots_dir
    await eventually(lambda: [p.name for p in snapshots_dir.iterdir()] == [current.name])
    for pid in pids:  # each worker holds files of the current snapshot, and of no other
        held = {Path(f.path).parent for f in psutil.Process(pid).open_files()
                if f.path.startswith(f"{snapshots_dir}{os.sep}")}
        assert held == {current}, (pid, held)


@run
async def test_a_query_running_during_a_write_finishes_on_its_snapshot(pool: Pool) -> None:
    """The write lands while a slow query runs: the query answers from the snapshot it started
    on (marker absent, old version), a query after the refresh sees the marker on the other
    worker, and the busy worker reopens once it is done, in the same process."""
    executor = pool.executor
    pids, forked = executor.worker_pids, os_workers()
    old_snapshot, old_version = executor.snapshot, pool.store.version
    assert old_snapshot is not None
    slow = asyncio.create_task(executor.execute(QueryJob(
        SLOW_MARKER_QUERY.format(graph=GRAPH, marker=marker(0)), "json")))
    await asyncio.sleep(0.1)  # the slow query is in a worker now
    assert not slow.done()
    new_version = await pool.write(0)
    assert not slow.done(), "the slow query ended before the write: make it slower"
    seen, computed_on = await pool.sees(0)  # the idle worker has reopened the new snapshot
    assert seen and computed_on == new_version
    assert old_snapshot.exists(), "a snapshot in use was pruned"

    result = await slow
    assert result.inline is not None
    (row,) = json.loads(result.inline)["results"]["bindings"]
    assert row["seen"]["value"] == "false", row  # the write is not in its snapshot
    assert result.version == old_version < new_version

    await eventually(lambda: executor.reopened >= 2)  # the busy worker, after its job
    assert executor.worker_pids == pids and os_workers() == forked
    await eventually(lambda: not old_snapshot.exists())
    for _ in range(4):  # whichever worker answers, it reads the write now
        assert await pool.sees(0) == (True, new_version)


@run
async def test_concurrent_refreshes_share_a_snapshot(pool: Pool) -> None:
    """Writes that commit while a refresh is under way are published by one more snapshot,
    not one each; when every refresh() has returned, every write is visible."""
    executor = pool.executor
    taken = executor.snapshots_taken
    versions = [await pool.write(i, refresh=False) for i in range(6)]
    await asyncio.gather(*(executor.refresh() for _ in range(6)))
    assert executor.snapshots_taken - taken <= 2
    for i in range(6):
        assert await pool.sees(i) == (True, versions[-1])


@run
async def test_an_idle_worker_that_died_is_replaced_at_the_refresh(pool: Pool) -> None:
    executor = pool.executor
    victim, survivor = executor.worker_pids
    os.kill(victim, signal.SIGKILL)
    await eventually(lambda: victim not in executor.worker_pids)  # learnt from its sentinel
    version = await pool.write(0)
    for _ in range(4):
        assert await pool.sees(0) == (True, version)
    await eventually(lambda: len(executor.worker_pids) == 2)
    assert victim not in executor.worker_pids and survivor in executor.worker_pids


@pytest.mark.embedded_only("the remote store has no query workers")
def test_updates_over_http_keep_the_worker_processes(sample_store: Path, tmp_path: Path) -> None:
    shutil.copytree(sample_store, tmp_path / "store")
    (tmp_path / "logs").mkdir()
    server = start_server(tmp_path / "store", tmp_path / "logs", KG_WRITE_TOKEN=TOKEN)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            workers = server_workers(server.process.pid)
            assert len(workers) == 2
            after_first: set[int] = set()
            for i in range(5):
                response = client.post("/sparql", data={"update": insert(i)},
                                       headers={"Authorization": f"Bearer {TOKEN}"})
                assert response.status_code == 204, response.text
                answer = client.get("/sparql", params={"query": ask(i)},
                                    headers={"Accept": "application/sparql-results+json"})
                assert answer.status_code == 200 and answer.json()["boolean"] is True, i
                now = server_workers(server.process.pid)
                assert workers <= now  # the query workers survive every write
                # the first write starts the long-lived rehearsal process
                # (kg.store.rehearsal_process); after it, no write starts anything
                after_first = after_first or now
                assert now == after_first and len(now) <= 3, (i, workers, now)
    finally:
        server.stop()
