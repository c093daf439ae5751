"""`kg backup` and `kg restore` (issue 7): a restore reproduces the dataset exactly, quad for
quad (blank node ids included), whether the backup was taken while the service ran (from its
snapshot) or with the store at rest; a damaged backup is refused and changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from kg.build import writer
from kg.store import backup as backups
from tests.reliability_support import fingerprint, store_quads
from tests.server_process import BASE_IRI, make_sample_store, start_server

pytestmark = pytest.mark.embedded_only(
    "kg backup/restore copy the on-disk store; a remote backend is backed up by its own tools")

TOKEN = "backup-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def kg(*args: str, store_path: Path) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in its own process (settings are read once per process)."""
    env = {**os.environ, "KG_STORE_PATH": str(store_path), "KG_BASE_IRI": BASE_IRI}
    return subprocess.run(
        [sys.executable, "-c", "from kg.cli import app; app()", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )


def _writes(url: str, tag: str) -> None:
    """Some writes through the service: inserts with blank nodes, a delete, a Graph Store PUT."""
    client = httpx.Client(base_url=url, timeout=60, headers=AUTH)
    graph = f"{BASE_IRI}graph/backup-{tag}"
    for i in range(3):
        update = (
            f"INSERT DATA {{ GRAPH <{graph}> {{ <{BASE_IRI}id/test/{tag}-{i}> "
            f'<http://example.org/p> "v{i}" , [ <http://example.org/q> {i} ] }} }}'
        )
        assert client.post("/sparql", data={"update": update}).status_code == 204
    delete = (
        f"DELETE DATA {{ GRAPH <{graph}> {{ <{BASE_IRI}id/test/{tag}-0> "
        '<http://example.org/p> "v0" } }'
    )
    assert client.post("/sparql", data={"update": delete}).status_code == 204
    put = client.put(
        "/rdf-graphs", params={"graph": f"{BASE_IRI}rdf-graphs/{tag}"},
        content=b'_:x <http://example.org/p> "put" .', headers={"Content-Type": "text/turtle"},
    )
    assert put.status_code in (201, 204), put.text


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    """A build-like layout: var/store → var/stores/<stamp> holding the sample dataset."""
    store_path = tmp_path / "var" / "store"
    target = writer._new_store_dir(store_path)
    make_sample_store(target)
    writer.swap(store_path, target)
    return store_path


def test_backup_and_restore_reproduce_the_dataset(layout: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    server = start_server(layout, logs, KG_WRITE_TOKEN=TOKEN)
    try:
        _writes(server.url, "one")
    finally:
        server.stop()
    at_backup = store_quads(layout)

    server = start_server(layout, logs, KG_WRITE_TOKEN=TOKEN)
    try:
        online = kg("backup", str(tmp_path / "online"), store_path=layout)
        assert online.returncode == 0, online.stdout + online.stderr
        served_at_backup = fingerprint(server.url)
        _writes(server.url, "two")  # the dataset moves on after the backup
    finally:
        server.stop()
    manifest = backups.verify(tmp_path / "online")
    assert manifest["source"].startswith("snapshot ")
    assert manifest["quads"] == len(at_backup)
    later = store_quads(layout)
    assert later != at_backup

    offline = kg("backup", str(tmp_path / "offline"), store_path=layout)
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert backups.verify(tmp_path / "offline")["source"].startswith("store ")

    before = layout.resolve()
    restored = kg("restore", str(tmp_path / "online"), store_path=layout)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert layout.resolve() != before and before.exists()  # swapped; previous store kept
    assert store_quads(layout) == at_backup  # quad for quad, blank node ids included

    restored = kg("restore", str(tmp_path / "offline"), store_path=layout)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert store_quads(layout) == later

    server = start_server(layout, logs)  # the restored store opens and serves cleanly
    try:
        served = fingerprint(server.url)
        assert served.quads == len(later)
        assert served.digest != served_at_backup.digest
    finally:
        server.stop()


def test_damaged_backup_is_refused(layout: Path, tmp_path: Path) -> None:
    result = kg("backup", str(tmp_path / "b"), store_path=layout)
    assert result.returncode == 0, result.stderr
    victim = max((tmp_path / "b" / "store").glob("*.sst"), key=lambda p: p.stat().st_size)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.unlink()  # break the hard link: never damage the live store's file
    victim.write_bytes(bytes(data))
    before = layout.resolve()
    result = kg("restore", str(tmp_path / "b"), store_path=layout)
    assert result.returncode == 1
    assert "do not match" in result.stderr
    assert layout.resolve() == before


def test_backup_needs_a_new_directory(layout: Path, tmp_path: Path) -> None:
    (tmp_path / "exists").mkdir()
    result = kg("backup", str(tmp_path / "exists"), store_path=layout)
    assert result.returncode == 1
    assert "new directory" in result.stderr
