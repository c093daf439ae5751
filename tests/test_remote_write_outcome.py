"""A remote write whose commit request gets no answer in time is a 503 that says the outcome is
unknown: the update had been sent, and the backend may still apply it (it does here).

Between the service and a real `oxigraph serve` stands a small HTTP relay that forwards every
request, and for an update naming `urn:test:slow` waits past the service's KG_QUERY_TIMEOUT
before it passes the backend's answer back. Like tests/test_remote_*.py this module starts its
own backend.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests import server_process
from tests.conftest import WRITE_TOKEN
from tests.remote_servers import OXIGRAPH, Backend, publish, start_oxigraph
from tests.server_process import BASE_IRI, ServerProcess

pytestmark = pytest.mark.serial(
    "a write must commit within a 3 s limit while a relay delays others past it"
)

AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}", "Content-Type": "application/sparql-update"}
QUERY_TIMEOUT = 3.0
SLOW = b"urn:test:slow"


def _relay(backend: Backend) -> ThreadingHTTPServer:
    origin = urlsplit(backend.query_url)
    target = f"{origin.scheme}://{origin.netloc}"
    update_path = urlsplit(backend.update_url).path  # not the reads a write makes first

    class Relay(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in ("host", "content-length", "connection")}
            answer = httpx.request(self.command, target + self.path, content=body,
                                   headers=headers, timeout=60)
            slow = SLOW in body or SLOW in body.replace(b"%3A", b":")
            if slow and self.path.startswith(update_path):
                time.sleep(QUERY_TIMEOUT + 2)  # applied by the backend, answered too late
            self.send_response(answer.status_code)
            for key, value in answer.headers.items():
                if key.lower() not in ("content-length", "transfer-encoding", "connection",
                                       "content-encoding"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Relay)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def service(sample_store: Path, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[ServerProcess]:
    if not OXIGRAPH:
        pytest.skip("the oxigraph CLI (PyPI oxigraph) is not installed")
    work = tmp_path_factory.mktemp("write-outcome")
    backend = start_oxigraph(work / "db")
    relay = _relay(backend)
    (work / "logs").mkdir()
    try:
        publish(backend, sample_store, BASE_IRI)
        port = relay.server_address[1]
        env = {key: value.replace(urlsplit(backend.query_url).netloc, f"127.0.0.1:{port}")
               for key, value in backend.env.items()}
        proc = server_process.start_server(
            sample_store, work / "logs", **env, KG_WRITE_TOKEN=WRITE_TOKEN,
            KG_QUERY_TIMEOUT=str(QUERY_TIMEOUT))
    except BaseException:
        relay.shutdown()
        backend.stop()
        raise
    try:
        yield proc
    finally:
        proc.stop()
        relay.shutdown()
        backend.stop()


def _ask(service: ServerProcess, pattern: str) -> bool:
    response = httpx.post(f"{service.url}/sparql", data={"query": f"ASK {{ {pattern} }}"},
                          headers={"Accept": "application/sparql-results+json"}, timeout=30)
    assert response.status_code == 200, response.text
    return bool(response.json()["boolean"])


def test_an_unanswered_commit_says_the_outcome_is_unknown(service: ServerProcess) -> None:
    statement = '<urn:test:slow> <http://ex/p> "late"'
    response = httpx.post(f"{service.url}/sparql", headers=AUTH, timeout=60,
                          content=f"INSERT DATA {{ GRAPH <http://ex/late> {{ {statement} }} }}")
    assert response.status_code == 503, response.text
    detail = response.json()["detail"]
    assert "did not answer in time" in detail and "may still apply it" in detail, detail
    deadline = time.monotonic() + 10
    while not _ask(service, f"GRAPH <http://ex/late> {{ {statement} }}"):
        assert time.monotonic() < deadline, "the backend never applied the update"
        time.sleep(0.2)


def test_an_answered_write_is_not_affected(service: ServerProcess) -> None:
    response = httpx.post(f"{service.url}/sparql", headers=AUTH, timeout=60,
                          content='INSERT DATA { GRAPH <http://ex/quick> { <http://ex/s> '
                                  '<http://ex/p> "quick" } }')
    assert response.status_code == 204, response.text
    assert _ask(service, 'GRAPH <http://ex/quick> { <http://ex/s> <http://ex/p> "quick" }')
