"""Helpers for the reliability and security tests (issue 7): dataset fingerprints, a loopback
listener that records any connection (SSRF canary), and process-tree handling of servers."""

from __future__ import annotations

import hashlib
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pyoxigraph as ox

ALL_QUADS = (
    "SELECT ?g ?s ?p ?o WHERE { { ?s ?p ?o } UNION { GRAPH ?g { ?s ?p ?o } } }"
)


@dataclass(frozen=True)
class Fingerprint:
    """What a reader sees of the whole dataset (default graph and every named graph)."""

    version: int
    quads: int
    digest: str


def fingerprint(url: str) -> Fingerprint:
    """The store's write version (bumped by every commit) and a hash of all its quads, read
    through the service: TSV rows sorted, so row order does not matter."""
    client = httpx.Client(base_url=url, timeout=60)
    version = client.get("/healthz").json()["version"]
    response = client.get(  # a text of its own: never answered from the response cache
        "/sparql", params={"query": f"{ALL_QUADS}\n# {uuid.uuid4()}"},
        headers={"Accept": "text/tab-separated-values"},
    )
    response.raise_for_status()
    rows = sorted(response.content.splitlines()[1:])
    return Fingerprint(version, len(rows), hashlib.sha256(b"\n".join(rows)).hexdigest())


def store_quads(path: Path) -> set[ox.Quad]:
    """Every quad of an on-disk store (not open elsewhere), read directly."""
    store = ox.Store.read_only(str(Path(path).resolve()))
    try:
        return set(store)
    finally:
        del store


@dataclass
class Canary:
    """A TCP listener on loopback that records every connection made to it."""

    port: int
    hits: list[bytes] = field(default_factory=list)


@contextmanager
def loopback_canary(host: str = "127.0.0.1") -> Iterator[Canary]:
    """Listen on `host`:<free port>; a SERVICE/LOAD that escaped the guard would connect here."""
    sock = socket.socket()
    sock.bind((host, 0))
    sock.listen(16)
    sock.settimeout(0.2)
    canary = Canary(sock.getsockname()[1])
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(1)
                try:
                    canary.hits.append(conn.recv(4096) or b"<connected>")
                except OSError:
                    canary.hits.append(b"<connected>")
                conn.sendall(b"HTTP/1.1 500 canary\r\ncontent-length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield canary
    finally:
        stop.set()
        thread.join(2)
        sock.close()


def descendants(pid: int) -> list[psutil.Process]:
    """The process tree under `pid` (forkserver and query workers of a server)."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def reap(processes: list[psutil.Process]) -> None:
    """Kill the given processes (ours: children of a server we started) if still alive."""
    for proc in processes:
        with suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(processes, timeout=5)


def is_problem(response: httpx.Response) -> bool:
    """A response that is an RFC 9457 problem document (or its text rendering)."""
    media = response.headers.get("content-type", "")
    return media.startswith("application/problem+json") or media.startswith("text/plain")
