"""Start a real uvicorn server on a free loopback port, in its own process, for real clients.

The backend the service runs over is chosen by KG_TEST_BACKEND (or `pytest --backend`, which
sets it): `embedded` (default) serves the on-disk store directly; `oxigraph` or `virtuoso`
starts a fresh backend server for every service (tests/remote_servers.py), publishes the store
into it (kg.store.publish, what `kg publish` runs) and points the service at it with
KG_STORE_URL, so writes never leak from one service to another. A service started with its own
KG_STORE_URL (tests/test_remote_*.py) is left as it is.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pyoxigraph as ox

from kg import paths
from kg.store import default_graph

if TYPE_CHECKING:
    from tests.remote_servers import Backend

BACKENDS = ("embedded", "oxigraph", "virtuoso")
BASE_IRI = "http://localhost:8000/"
SAMPLE = Path(__file__).parent / "fixtures" / "sample.trig"
HTTP_PROTOCOL = "kg.server.http_protocol:JoinedWritesProtocol"  # what `kg serve` runs


def backend_name() -> str:
    """The backend services run over in this test session (KG_TEST_BACKEND)."""
    name = os.environ.get("KG_TEST_BACKEND") or "embedded"
    if name not in BACKENDS:
        raise ValueError(f"KG_TEST_BACKEND={name!r}: expected one of {', '.join(BACKENDS)}")
    return name


def remote() -> bool:
    return backend_name() != "embedded"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_sample_store(
    target: Path, base_iri: str = BASE_IRI, extra: Sequence[Path] = ()
) -> Path:
    """An on-disk store: ontology, vocabularies, the sample dataset and any `extra` TriG files,
    with the merged default graph the build writes (kg.store.default_graph)."""
    store = ox.Store(str(target))
    for trig in (SAMPLE, *extra):
        store.bulk_load(path=str(trig), format=ox.RdfFormat.TRIG, base_iri=base_iri)
    for name, file in (("ontology", "kg.ttl"), ("vocabulary", "vocabularies.ttl")):
        store.bulk_load(
            path=str(paths.ONTOLOGY_DIR / file),
            format=ox.RdfFormat.TURTLE,
            base_iri=base_iri,
            to_graph=ox.NamedNode(f"{base_iri}graph/{name}"),
        )
    store.bulk_extend(list(default_graph.merged(store.quads_for_pattern(None, None, None, None))))
    store.flush()
    del store
    return target


@dataclass
class ServerProcess:
    """A running `uvicorn --factory kg.server.app:create_app`; stop() ends it."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    backend: Backend | None = None  # the remote server started for this service, if any

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.backend is not None:
            self.backend.stop()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_size(self) -> int:
        """Where the log ends now: what a test writes after it is read from here."""
        return self.log_path.stat().st_size

    def access_entries(self, path: str, count: int, since: int,
                       timeout: float = 10.0) -> list[dict[str, Any]]:
        """The JSON access-log entries for `path` written after byte `since`, once there are
        `count` of them (the log is written after the response: a test that checked it at
        once could look before its own requests are in, and find nothing to object to)."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_path.read_bytes()[since:].decode(errors="replace")
            entries = [json.loads(line) for line in text.splitlines()
                       if line.startswith("{") and '"path"' in line]
            entries = [e for e in entries if e.get("path") == path]
            if len(entries) >= count:
                return entries
            assert time.monotonic() < deadline, (
                f"{len(entries)} of {count} requests to {path} logged in {timeout:g} s")
            time.sleep(0.05)


def start_server(store_path: Path, log_dir: Path, **env: str) -> ServerProcess:
    """Start the service on `store_path` (over a fresh remote backend holding a copy of it when
    KG_TEST_BACKEND names one); waits until /healthz answers (no blind sleep)."""
    backend = None
    if remote() and "KG_STORE_URL" not in env:
        from tests.remote_servers import start_published

        log_dir.mkdir(parents=True, exist_ok=True)
        backend = start_published(backend_name(), store_path, env.get("KG_BASE_IRI", BASE_IRI),
                                  Path(tempfile.mkdtemp(prefix=f"{backend_name()}-", dir=log_dir)))
        env = {**backend.env, **env}
    try:
        return _start(store_path, log_dir, backend, env)
    except BaseException:
        if backend is not None:
            backend.stop()
        raise


def _start(store_path: Path, log_dir: Path, backend: Backend | None,
           env: dict[str, str]) -> ServerProcess:
    port = free_port()
    environment = {
        **os.environ,
        "KG_STORE_PATH": str(store_path),
        "KG_BASE_IRI": BASE_IRI,
        "KG_QUERY_WORKERS": "2",
        # isolated from the checkout's var/ so a local `kg build` never leaks into tests
        "KG_DUMPS_DIR": str(log_dir / "dumps"),
        **env,
    }
    log_path = log_dir / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "kg.server.app:create_app",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "info",
             "--http", HTTP_PROTOCOL],
            env=environment, stdout=log, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log_path.read_text()}")
        try:
            health = httpx.get(f"{url}/healthz", timeout=1)
        except httpx.HTTPError:
            health = None
        if health is not None and health.status_code == 200:
            kind = health.json().get("backend")
            # the service runs over the backend the session asked for, not beside it
            if kind != ("remote" if "KG_STORE_URL" in env else "embedded"):
                process.kill()
                raise RuntimeError(f"the service runs over a {kind} store")
            return ServerProcess(url, process, log_path, backend)
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not start:\n{log_path.read_text()}")
