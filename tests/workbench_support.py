"""A server for the workbench, view, browser and notebook tests: the sample store plus
tests/fixtures/workbench.trig (commitments for the matrix, one more dated event)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server_process import ServerProcess, make_sample_store, start_server

EXTRA = Path(__file__).parent / "fixtures" / "workbench.trig"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def make_workbench_store(target: Path) -> Path:
    return make_sample_store(target, extra=[EXTRA])


def serve_workbench(factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Start a read-only server on a fresh workbench store; stop it afterwards."""
    store = make_workbench_store(factory.mktemp("workbench") / "store")
    proc = start_server(store, factory.mktemp("workbench-logs"))
    try:
        yield proc
    finally:
        proc.stop()
