"""Faults survived (issue 7): the server SIGKILLed during a stream of updates, a query worker
killed mid-query, the disk full during a build."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.build_fixtures import BASE as MINI_BASE
from tests.build_fixtures import make_layout
from tests.reliability_support import descendants, fingerprint, reap
from tests.server_process import BASE_IRI, start_server

TOKEN = "faults-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GRAPH = f"{BASE_IRI}graph/faults"
SLOW_QUERY = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }"


def _pair(i: int) -> str:
    """Two statements written by one update: both or neither may be in the store."""
    s = f"<{BASE_IRI}id/fault/{i}>"
    return f'{s} <http://example.org/a> "a{i}" . {s} <http://example.org/b> "b{i}" .'


def _present(url: str) -> dict[int, set[str]]:
    """Which statements of the pairs each graph holds: {i: {"a@named", "b@default", ...}}."""
    query = (
        "SELECT ?s ?p ?g WHERE { { GRAPH ?g { ?s ?p ?o } } UNION { ?s ?p ?o } "
        f'FILTER(STRSTARTS(STR(?s), "{BASE_IRI}id/fault/")) }}'
    )
    response = httpx.get(f"{url}/sparql", params={"query": query},
                         headers={"Accept": "application/sparql-results+json"}, timeout=60)
    response.raise_for_status()
    found: dict[int, set[str]] = {}
    for row in response.json()["results"]["bindings"]:
        i = int(row["s"]["value"].rsplit("/", 1)[1])
        where = "named" if "g" in row else "default"
        found.setdefault(i, set()).add(f"{row['p']['value'][-1]}@{where}")
    return found


def test_sigkill_during_updates_loses_no_acknowledged_write(
    sample_store: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    shutil.copytree(sample_store, store)
    (tmp_path / "logs").mkdir()
    server = start_server(store, tmp_path / "logs", KG_WRITE_TOKEN=TOKEN)
    acknowledged: list[int] = []
    attempted: list[int] = []
    stop = threading.Event()

    def stream() -> None:
        with httpx.Client(base_url=server.url, timeout=30, headers=AUTH) as client:
            i = 0
            while not stop.is_set():
                attempted.append(i)
                try:
                    response = client.post("/sparql", data={
                        "update": f"INSERT DATA {{ GRAPH <{GRAPH}> {{ {_pair(i)} }} }}"})
                except httpx.HTTPError:
                    return  # the server died under this request: not acknowledged
                if response.status_code == 204:
                    acknowledged.append(i)
                i += 1

    writer = threading.Thread(target=stream)
    tree = descendants(server.process.pid)
    writer.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 15 and time.monotonic() < deadline:
        time.sleep(0.05)
    tree += descendants(server.process.pid)
    os.kill(server.process.pid, signal.SIGKILL)  # mid-stream: a write is (very likely) in flight
    server.process.wait(10)
    stop.set()
    writer.join(30)
    reap(tree)  # the forkserver and query workers it left behind
    assert len(acknowledged) >= 15

    # opens cleanly (start waits for health); over a remote backend, the same backend again
    restarted = start_server(store, tmp_path / "logs",
                             **(server.backend.env if server.backend else {}))
    try:
        found = _present(restarted.url)
        for i in acknowledged:
            assert found.get(i) == {"a@named", "b@named", "a@default", "b@default"}, i
        for i in set(attempted) - set(acknowledged):
            assert found.get(i, set()) in (set(), {"a@named", "b@named", "a@default",
                                                   "b@default"}), (i, found.get(i))
        assert set(found) <= set(attempted)
    finally:
        restarted.stop()
        server.stop()  # the killed service's backend, if any


def _workers(server_pid: int) -> list[psutil.Process]:
    """Query workers: forked by the forkserver, so grandchildren of the server."""
    found = []
    for child in psutil.Process(server_pid).children():
        found += child.children()
    return found


def _busiest(processes: list[psutil.Process], within: float = 20.0) -> psutil.Process:
    """The worker whose CPU time grows: the one running our query."""
    start = {p.pid: sum(p.cpu_times()[:2]) for p in processes}
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        time.sleep(0.3)
        for p in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                if sum(p.cpu_times()[:2]) - start[p.pid] > 0.2:
                    return p
    raise AssertionError("no worker started running the query")


@pytest.mark.embedded_only("kills a query worker process: over a remote store queries run "
                           "on the backend (its down-and-back test: test_remote_backends.py)")
def test_worker_killed_mid_query(sample_store: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(sample_store, store)
    (tmp_path / "logs").mkdir()
    server = start_server(store, tmp_path / "logs", KG_QUERY_TIMEOUT="60")
    try:
        result: dict[str, httpx.Response] = {}
        workers = _workers(server.process.pid)
        assert workers
        query = threading.Thread(target=lambda: result.setdefault("r", httpx.post(
            f"{server.url}/sparql", data={"query": SLOW_QUERY}, timeout=50)))
        query.start()
        victim = _busiest(workers)
        started = time.monotonic()
        victim.kill()
        query.join(50)
        assert not query.is_alive(), "the request hung after its worker died"
        response = result["r"]
        assert response.status_code == 503, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert time.monotonic() - started < 30
        after = httpx.get(f"{server.url}/sparql", params={"query": "ASK { ?s ?p ?o }"},
                          timeout=30)
        assert after.status_code == 200
        assert server.process.poll() is None
    finally:
        server.stop()


# --- disk full during a build ------------------------------------------------------------------


@contextlib.contextmanager
def small_disk(path: Path, size: str = "64m") -> Iterator[Callable[[], None] | None]:
    """A tmpfs mounted at `path`, and a function that fills it; None when mounting is not
    possible here (then the build is limited with RLIMIT_FSIZE instead)."""
    path.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True).returncode == 0

    def fill() -> None:
        fd = os.open(path / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            for size in (1 << 20, 4096, 512):
                with contextlib.suppress(OSError):
                    while True:
                        os.write(fd, b"\0" * size)
        finally:
            os.close(fd)

    try:
        yield fill if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes fail with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))


def _build(home: Path, var: Path, preexec: Callable[[], None] | None = None
           ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KG_HOME": str(home), "KG_BASE_IRI": MINI_BASE,
           "KG_STORE_PATH": str(var / "store"), "KG_DUMPS_DIR": str(var / "dumps")}
    return subprocess.run([sys.executable, "-c", "from kg.cli import app; app()", "build"],
                          env=env, capture_output=True, text=True, timeout=300,
                          preexec_fn=preexec)


@pytest.mark.embedded_only("kg build writes the on-disk store; no service runs")
def test_disk_full_during_build_keeps_the_previous_store(tmp_path: Path) -> None:
    home = make_layout(tmp_path / "home").root
    with small_disk(tmp_path / "disk") as fill:
        var = tmp_path / "disk" / "var"
        first = _build(home, var)
        assert first.returncode == 0, first.stderr
        live = (var / "store").resolve()
        stores_before = set((var / "stores").iterdir())
        (tmp_path / "logs").mkdir()
        server = start_server(var / "store", tmp_path / "logs", KG_BASE_IRI=MINI_BASE)
        try:
            before = fingerprint(server.url)
            if fill is not None:
                fill()
                failed = _build(home, var)
            else:
                failed = _build(home, var, _limit_file_size)
            assert failed.returncode == 1
            assert "Could not write the new store" in failed.stderr, failed.stderr
            assert "Traceback" not in failed.stderr
            assert (var / "store").resolve() == live  # not swapped
            left = {p for p in (var / "stores").iterdir() if p.name != "snapshots"}
            assert left <= stores_before  # the half-written store was removed
            assert fingerprint(server.url) == before  # the previous store keeps serving
            assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
        finally:
            server.stop()
            with contextlib.suppress(FileNotFoundError):
                (tmp_path / "disk" / "filler").unlink()
