"""A server for the workbench, view, browser and notebook tests: the sample store plus
tests/fixtures/workbench.trig (commitments for the matrix, one more dated event)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyoxigraph as ox
import pytest

from tests.server_process import BASE_IRI, ServerProcess, make_sample_store, start_server

EXTRA = Path(__file__).parent / "fixtures" / "workbench.trig"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def make_workbench_store(target: Path) -> Path:
    make_sample_store(target)
    store = ox.Store(str(target))
    store.bulk_load(path=str(EXTRA), format=ox.RdfFormat.TRIG, base_iri=BASE_IRI)
    store.flush()
    del store
    return target


def serve_workbench(factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Start a read-only server on a fresh workbench store; stop it afterwards."""
    store = make_workbench_store(factory.mktemp("workbench") / "store")
    proc = start_server(store, factory.mktemp("workbench-logs"))
    try:
        yield proc
    finally:
        proc.stop()
