"""Start and stop each SPARQL server on a free loopback port, and wait until it answers."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[1]
SERVER_NAMES = ("kg", "oxigraph", "rdflib", "inprocess")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def process_rss(pid: int) -> dict[int, int]:
    """Resident bytes of a process and of each of its descendants (query workers included)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return {}
    sizes = {}
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            sizes[proc.pid] = proc.memory_info().rss
    return sizes


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (query workers included)."""
    return sum(process_rss(pid).values())


@dataclass
class Server:
    """A running server process; `endpoint` is its SPARQL query URL."""

    name: str
    endpoint: str
    process: subprocess.Popen[bytes]
    log_path: Path
    started_in: float = 0.0
    env: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def host_port(self) -> tuple[str, int]:
        parsed = urllib.parse.urlsplit(self.endpoint)
        return parsed.hostname or HOST, parsed.port or 80

    @property
    def path(self) -> str:
        return urllib.parse.urlsplit(self.endpoint).path

    def rss(self) -> int:
        return tree_rss(self.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class ServerError(RuntimeError):
    pass


_asks = itertools.count(1)


def answers(endpoint: str, timeout: float = 2.0) -> bool:
    """True when an `ASK` over GET gets a 2xx; each text is new, so no response cache answers."""
    query = f"ASK {{ FILTER({next(_asks)} > 0) }}"
    url = endpoint + "?" + urllib.parse.urlencode({"query": query})
    request = urllib.request.Request(url, headers={"Accept": "application/sparql-results+json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def drain(server: Server, limit: float = 600.0, quick: float = 1.0) -> float:
    """Wait until the server answers a new `ASK` within `quick` s (wrk's backlog is worked off)."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        t0 = time.monotonic()
        if answers(server.endpoint, timeout=limit) and time.monotonic() - t0 < quick:
            break
        if server.process.poll() is not None:
            break
        time.sleep(0.2)
    return time.monotonic() - start


def _wait(server: Server, timeout: float) -> Server:
    start = time.monotonic()
    deadline = start + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerError(f"{server.name} exited early:\n{server.log_tail()}")
        if answers(server.endpoint):
            server.started_in = time.monotonic() - start
            return server
        time.sleep(0.1)
    server.stop()
    raise ServerError(f"{server.name} did not answer within {timeout:.0f}s:\n{server.log_tail()}")


def _spawn(name: str, argv: list[str], endpoint_path: str, port: int, log_dir: Path,
           env: dict[str, str] | None = None) -> Server:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}-{port}.log"
    environment = {**os.environ, **(env or {})}
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, env=environment, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, cwd=ROOT)
    return Server(name, f"http://{HOST}:{port}{endpoint_path}", process, log_path, env=env or {})


def oxigraph_binary() -> str | None:
    here = Path(sys.executable).parent / "oxigraph"
    return str(here) if here.exists() else shutil.which("oxigraph")


def start_oxigraph(location: Path, log_dir: Path, timeout: float = 120) -> Server:
    binary = oxigraph_binary()
    if binary is None:
        raise ServerError("the oxigraph CLI is missing: bash bench/install.sh")
    port = free_port()
    # no --union-default-graph: the data's default graph already holds the merge (bench.datagen)
    argv = [binary, "serve-read-only", "--location", str(location), "--bind", f"{HOST}:{port}"]
    return _wait(_spawn("oxigraph", argv, "/query", port, log_dir), timeout)


def start_kg(store: Path, log_dir: Path, base_iri: str, timeout: float = 120,
             extra_env: dict[str, str] | None = None) -> Server:
    """Our service, as documented: `kg serve` (one uvicorn process and its query workers)."""
    port = free_port()
    env = {
        "KG_STORE_PATH": str(store),
        "KG_BASE_IRI": base_iri,
        "KG_MAX_ROWS": "2000000",  # the 1M-row streaming measurement needs more than the default
        "KG_LOG_LEVEL": "warning",
        **(extra_env or {}),
    }
    # the README's command (`kg serve`): the KG_ settings not set here apply as deployed
    argv = [str(Path(sys.executable).parent / "kg"), "serve", "--host", HOST, "--port", str(port)]
    return _wait(_spawn("kg", argv, "/sparql", port, log_dir, env), timeout)


def start_rdflib(data: Path, log_dir: Path, timeout: float = 1800) -> Server:
    """rdflib-endpoint parses the N-Quads into memory; queries see the stored default graph."""
    port = free_port()
    script = (
        "import sys, uvicorn; from rdflib import Dataset; "
        "from rdflib_endpoint import SparqlEndpoint; "
        "g = Dataset(default_union=False); g.parse(sys.argv[1], format='nquads'); "
        "uvicorn.run(SparqlEndpoint(graph=g, path='/sparql'), host=sys.argv[2], "
        "port=int(sys.argv[3]), access_log=False, log_level='warning')"
    )
    argv = [sys.executable, "-c", script, str(data), HOST, str(port)]
    return _wait(_spawn("rdflib", argv, "/sparql", port, log_dir), timeout)


def start_inprocess(store: Path, log_dir: Path, base_iri: str, timeout: float = 120) -> Server:
    """The isolation baseline (bench/inprocess_app.py): pyoxigraph called in the request thread."""
    port = free_port()
    env = {"BENCH_STORE_PATH": str(store), "BENCH_BASE_IRI": base_iri}
    argv = [sys.executable, "-m", "uvicorn", "--factory", "bench.inprocess_app:create_app",
            "--host", HOST, "--port", str(port), "--no-access-log", "--log-level", "warning"]
    return _wait(_spawn("inprocess", argv, "/sparql", port, log_dir, env), timeout)
