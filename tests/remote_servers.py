"""Real SPARQL servers for tests/test_remote_*.py and for the service tests' remote runs
(`pytest --backend=oxigraph|virtuoso`, tests/server_process.py): `oxigraph serve` and Virtuoso,
on free ports.

Each server gets a temporary database and is stopped by the test that started it. Start-up waits
for the server to answer a query (no blind sleep). Virtuoso comes from Debian's
`virtuoso-opensource` (scripts/install_virtuoso.sh); its SPARQL user is granted SPARQL_UPDATE
through isql so the unauthenticated /sparql endpoint accepts updates and Graph Store writes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from tests.server_process import free_port

if TYPE_CHECKING:
    from kg.config import Settings

# KG_SKIP_VIRTUOSO=1 (README): the Virtuoso tests skip even where it is installed
VIRTUOSO = None if os.environ.get("KG_SKIP_VIRTUOSO") == "1" else shutil.which("virtuoso-t")
ISQL = shutil.which("isql-vt") or shutil.which("isql")
OXIGRAPH = shutil.which("oxigraph") or (
    str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "oxigraph")
    if (Path(__file__).resolve().parents[1] / ".venv" / "bin" / "oxigraph").exists() else None
)


@dataclass
class Backend:
    """A running SPARQL server and the environment that points kg at it."""

    name: str
    query_url: str
    update_url: str
    gsp_url: str
    process: subprocess.Popen[bytes]
    workdir: Path
    restart_args: list[str] = field(default_factory=list)
    env_extra: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {
            "KG_STORE_URL": self.query_url,
            "KG_STORE_UPDATE_URL": self.update_url,
            "KG_STORE_GSP_URL": self.gsp_url,
            **self.env_extra,
        }

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def start_again(self) -> None:
        """Restart on the same database and ports (after stop())."""
        log = (self.workdir / "server.log").open("ab")
        self.process = subprocess.Popen(self.restart_args, cwd=self.workdir, stdout=log,
                                        stderr=subprocess.STDOUT)
        wait_for(self, 90)


def wait_for(backend: Backend, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if backend.process.poll() is not None:
            log = (backend.workdir / "server.log").read_text(errors="replace")
            raise RuntimeError(f"{backend.name} exited early:\n{log[-3000:]}")
        try:
            response = httpx.get(backend.query_url, params={"query": "ASK {}"},
                                 headers={"Accept": "application/sparql-results+json"},
                                 timeout=2)
            if response.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    backend.stop()
    raise RuntimeError(f"{backend.name} did not answer within {seconds} s")


def start_oxigraph(workdir: Path) -> Backend:
    assert OXIGRAPH, "the `oxigraph` CLI (PyPI package oxigraph) is not installed"
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    # --timeout-s: the server stops a query the service has given up on (timeout test)
    args = [OXIGRAPH, "serve", "--location", str(workdir / "db"), "--bind", f"127.0.0.1:{port}",
            "--timeout-s", "10"]
    log = (workdir / "server.log").open("ab")
    process = subprocess.Popen(args, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    backend = Backend("oxigraph", f"{url}/query", f"{url}/update", f"{url}/store", process,
                      workdir, args)
    wait_for(backend, 30)
    return backend


VIRTUOSO_INI = """\
[Database]
DatabaseFile = {db}/virtuoso.db
ErrorLogFile = {db}/virtuoso.log
LockFile = {db}/virtuoso.lck
TransactionFile = {db}/virtuoso.trx
xa_persistent_file = {db}/virtuoso.pxa
ErrorLogLevel = 7
FileExtend = 200
Striping = 0
TempStorage = TempDatabase

[TempDatabase]
DatabaseFile = {db}/virtuoso-temp.db
TransactionFile = {db}/virtuoso-temp.trx

[Parameters]
ServerPort = {sql_port}
DisableUnixSocket = 1
CheckpointInterval = 0
NumberOfBuffers = 10000
MaxDirtyBuffers = 6000
MaxQueryMem = 500M
DirsAllowed = ., {db}
ThreadsPerQuery = 2
MaxSortedTopRows = 1000000

[HTTPServer]
ServerPort = {http_port}
ServerRoot = {db}
ServerThreads = 10
MaxClientConnections = 10
Charset = UTF-8

[SPARQL]
ResultSetMaxRows = 1000000
MaxQueryCostEstimationTime = 0
MaxQueryExecutionTime = {max_seconds}
MaxConstructTriples = 1000000
"""


def isql(sql_port: int, statements: str) -> str:
    assert ISQL, "isql-vt is not installed"
    result = subprocess.run(
        [ISQL, str(sql_port), "dba", "dba", "VERBOSE=OFF", "BANNER=OFF", "PROMPT=OFF",
         "ERRORS=STDOUT", f"EXEC={statements}"],
        capture_output=True, text=True, timeout=60,
    )
    if "Error" in result.stdout or result.returncode:
        raise RuntimeError(f"isql failed: {result.stdout}{result.stderr}")
    return result.stdout


def start_virtuoso(workdir: Path, max_seconds: int = 10) -> Backend:
    """`max_seconds`: MaxQueryExecutionTime, which also times out an update's transaction."""
    assert VIRTUOSO, "virtuoso-t not installed (scripts/install_virtuoso.sh) or KG_SKIP_VIRTUOSO=1"
    db = workdir / "db"
    db.mkdir(parents=True, exist_ok=True)
    sql_port, http_port = free_port(), free_port()
    ini = workdir / "virtuoso.ini"
    ini.write_text(VIRTUOSO_INI.format(db=db, sql_port=sql_port, http_port=http_port,
                                       max_seconds=max_seconds))
    args = [VIRTUOSO, "+foreground", "+configfile", str(ini)]
    log = (workdir / "server.log").open("ab")
    process = subprocess.Popen(args, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{http_port}"
    backend = Backend("virtuoso", f"{url}/sparql", f"{url}/sparql",
                      f"{url}/sparql-graph-crud", process, workdir, args,
                      {"KG_STORE_DIALECT": "virtuoso"})
    wait_for(backend, 120)
    isql(sql_port, "GRANT SPARQL_UPDATE TO \"SPARQL\"; "
         "GRANT EXECUTE ON DB.DBA.SPARQL_INSERT_DICT_CONTENT TO \"SPARQL\"; "
         "GRANT EXECUTE ON DB.DBA.SPARQL_DELETE_DICT_CONTENT TO \"SPARQL\"; "
         "DB.DBA.RDF_DEFAULT_USER_PERMS_SET ('nobody', 7);")
    return backend


def start_backend(name: str, workdir: Path) -> Backend:
    """A fresh, empty backend server of kind `name` ("oxigraph" or "virtuoso")."""
    if name == "oxigraph":
        return start_oxigraph(workdir)
    if name == "virtuoso":
        return start_virtuoso(workdir)
    raise ValueError(f"no remote backend named {name!r}")


def publish(backend: Backend, store: Path, base_iri: str) -> None:
    """Copy the on-disk `store` into `backend` with kg.store.publish (what `kg publish` runs) and
    require its verification to pass."""
    import pyoxigraph as ox

    from kg.config import Settings
    from kg.store.publish import publish as run_publish
    from kg.store.remote import RemoteStore

    env = backend.env
    settings = Settings(
        store_path=store, base_iri=base_iri, store_url=env["KG_STORE_URL"],
        store_update_url=env["KG_STORE_UPDATE_URL"], store_gsp_url=env["KG_STORE_GSP_URL"],
        store_dialect=env.get("KG_STORE_DIALECT", "auto"))
    remote = RemoteStore(settings)
    source = ox.Store.read_only(str(store))
    try:
        report = run_publish(source, remote)
    finally:
        remote.close()
        del source
    # as `kg publish` exits 0: every count as predicted (Virtuoso merges value-equal
    # literals, README, Backends) and nothing else found
    if not report.ok:
        raise RuntimeError(f"publish to {backend.name} not verified: unexplained "
                           f"{report.unexplained}, problems {report.problems}")


def start_published(name: str, store: Path, base_iri: str, workdir: Path) -> Backend:
    """A fresh backend holding a copy of `store` (the service tests' remote mode)."""
    backend = start_backend(name, workdir)
    try:
        publish(backend, store, base_iri)
    except BaseException:
        backend.stop()
        raise
    return backend


@contextlib.contextmanager
def opened_store(settings: Settings, workdir: Path) -> Iterator[Any]:
    """The kg.store.base.Store the session's backend gives for `settings.store_path`: the
    embedded store on it, or a RemoteStore over a fresh backend holding a copy of it (for
    tests that drive the store without a service, e.g. tests/test_update_writes.py)."""
    from tests.server_process import backend_name

    name = backend_name()
    if name == "embedded":
        from kg.store.embedded import EmbeddedStore

        store: Any = EmbeddedStore(settings.store_path)
        try:
            yield store
        finally:
            store.close()
        return
    from kg.store.remote import RemoteStore

    backend = start_published(name, settings.store_path, settings.base_iri, workdir)
    env = backend.env
    store = RemoteStore(settings.model_copy(update={
        "store_url": env["KG_STORE_URL"], "store_update_url": env["KG_STORE_UPDATE_URL"],
        "store_gsp_url": env["KG_STORE_GSP_URL"],
        "store_dialect": env.get("KG_STORE_DIALECT", "auto")}))
    store.poll_version()
    try:
        yield store
    finally:
        store.close()
        backend.stop()


def every_quad(store: Any) -> set[Any]:
    """All quads of a kg store, embedded or remote (the service's graphs only)."""
    import pyoxigraph as ox

    if store.kind == "embedded":
        return set(store.raw.quads_for_pattern(None, None, None, None))
    quads = set(store.graph_quads(ox.DefaultGraph()))
    for name in store.named_graphs():
        quads |= set(store.graph_quads(ox.NamedNode(name)))
    return quads
