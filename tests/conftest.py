"""Shared fixtures: a sample on-disk store and real uvicorn servers over it.

`pytest --backend=oxigraph|virtuoso` (or KG_TEST_BACKEND) runs every service over that remote
backend instead of the embedded store (tests/server_process.py starts and fills one backend
server per service). In such a run:
- tests that drive no service (they use none of the server fixtures and their module uses
  neither start_server nor remote_servers.opened_store) are deselected: the backend cannot
  change them, the default run has them;
  so are tests/test_remote_*.py, which start the remote backends they test themselves;
- `@pytest.mark.embedded_only("reason")` tests are skipped with their reason (reported by -ra);
- `@pytest.mark.backend_xfail("virtuoso", reason="…")` tests are strict xfails on the named
  backends: a documented backend difference (README, Backends) that must keep showing.

`pytestmark = pytest.mark.serial("why")` marks a module that must not share the cores with
another test process: scripts/test.sh runs the rest with pytest-xdist (`-m "not serial"`, one
process per core; tests/xdist_scheduling.py keeps a module in one process and the modules
that load the machine in one after another), then these alone (`-m serial`).
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server_process import (
    BACKENDS,
    ServerProcess,
    backend_name,
    make_sample_store,
    start_server,
)

WRITE_TOKEN = "test-secret-token"
SERVICE_FIXTURES = {"server", "writable_server", "real_server", "wb"}  # wb: workbench_support
OWN_BACKENDS = "test_remote_"  # tests/test_remote_*.py start the remote servers they test


@pytest.fixture(scope="session")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pristine store (ontology + tests/fixtures/sample.trig); copy it before writing."""
    return make_sample_store(tmp_path_factory.mktemp("sample") / "store")


@pytest.fixture(scope="session")
def server(sample_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A read-only server (no write token) on the sample store, shared by the session."""
    store = tmp_path_factory.mktemp("ro") / "store"
    shutil.copytree(sample_store, store)
    proc = start_server(store, tmp_path_factory.mktemp("logs"))
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def writable_server(
    sample_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server with writes enabled (token WRITE_TOKEN) on a fresh copy, one per test module."""
    store = tmp_path_factory.mktemp("rw") / "store"
    shutil.copytree(sample_store, store)
    proc = start_server(store, tmp_path_factory.mktemp("logs"), KG_WRITE_TOKEN=WRITE_TOKEN)
    yield proc
    proc.stop()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--regenerate-expected",
        action="store_true",
        help="rewrite queries/expected/* from the current build instead of comparing",
    )
    parser.addoption(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="the store the service tests run over (default: $KG_TEST_BACKEND or embedded)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "embedded_only(reason): the test is about the embedded store; skipped with "
        "the reason when the services run over a remote backend (--backend)")
    config.addinivalue_line(
        "markers", "backend_xfail(*backends, reason): a documented difference of these remote "
        "backends (README, Backends): strict xfail there")
    config.addinivalue_line(
        "markers", "serial(reason): the module's outcome depends on having the cores to itself "
        "(timing against limits of seconds, measured waits); scripts/test.sh runs these "
        "modules alone, after the others have run in parallel (pytest-xdist)")
    if config.pluginmanager.hasplugin("xdist"):  # -p no:xdist leaves its hooks unknown
        from tests.xdist_scheduling import SchedulingPlugin

        config.pluginmanager.register(SchedulingPlugin(), "kg-scheduling")
    chosen = config.getoption("--backend")
    if chosen:
        os.environ["KG_TEST_BACKEND"] = chosen  # read by start_server, here and in subprocesses
    name = backend_name()
    if name != "embedded":
        from tests.remote_servers import OXIGRAPH, VIRTUOSO

        if not (OXIGRAPH if name == "oxigraph" else VIRTUOSO):
            raise pytest.UsageError(f"--backend={name}: its server is not installed "
                                    "(oxigraph: the test extra; virtuoso: "
                                    "scripts/install_virtuoso.sh)")


def pytest_report_header(config: pytest.Config) -> str:
    return f"kg service backend: {backend_name()}"


def _drives_service(item: pytest.Item) -> bool:
    """Whether the test runs a service or a store (so the backend can change its outcome)."""
    if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    from tests.remote_servers import opened_store

    module = getattr(item, "module", None)
    return module is not None and (getattr(module, "start_server", None) is start_server
                                   or getattr(module, "opened_store", None) is opened_store)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    name = backend_name()
    if name == "embedded":
        return
    kept, dropped = [], []
    for item in items:
        if item.path.name.startswith(OWN_BACKENDS) or not _drives_service(item):
            dropped.append(item)
            continue
        kept.append(item)
        only = item.get_closest_marker("embedded_only")
        if only is not None:
            reason = only.args[0] if only.args else only.kwargs.get("reason", "")
            item.add_marker(pytest.mark.skip(reason=f"embedded store only: {reason}"))
        for differs in item.iter_markers("backend_xfail"):
            if name in differs.args:
                item.add_marker(pytest.mark.xfail(
                    reason=f"{name}: {differs.kwargs['reason']}", strict=True))
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session")
def real_store(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """The real corpus built once per test run (base http://localhost:8000/), in a tmp layout;
    open it read-only or copy it. The xdist processes of a run share one build (~10 s of CPU
    on a slow day): the first to take the lock builds, the others wait for it."""
    from kg import paths
    from kg.build import Layout, build
    from kg.config import Settings

    base = tmp_path_factory.getbasetemp()
    root = (base if worker_id == "master" else base.parent) / "realbuild"
    settings = Settings(
        base_iri="http://localhost:8000/",
        store_path=root / "var" / "store",
        dumps_dir=root / "var" / "dumps",
    )
    with open(f"{root}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        done = root / "built"
        if not done.exists():
            shutil.rmtree(root, ignore_errors=True)  # a build that failed half-way
            build(settings, Layout(paths.project_root()))
            done.touch()
    return settings.store_path.resolve()


@pytest.fixture(scope="session")
def real_server(
    real_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A read-only server over a copy of the real build."""
    store = tmp_path_factory.mktemp("real-ro") / "store"
    shutil.copytree(real_store, store)
    proc = start_server(store, tmp_path_factory.mktemp("logs"))
    yield proc
    proc.stop()
