"""Shared fixtures: a sample on-disk store and real uvicorn servers over it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server_process import ServerProcess, make_sample_store, start_server

WRITE_TOKEN = "test-secret-token"


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


@pytest.fixture(scope="session")
def real_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real corpus built once per session (base http://localhost:8000/), in a tmp layout."""
    from kg import paths
    from kg.build import Layout, build
    from kg.config import Settings

    root = tmp_path_factory.mktemp("realbuild")
    settings = Settings(
        base_iri="http://localhost:8000/",
        store_path=root / "var" / "store",
        dumps_dir=root / "var" / "dumps",
    )
    build(settings, Layout(paths.project_root()))
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
