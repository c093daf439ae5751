"""Backups of the on-disk store (`kg backup DEST`) and their restoration (`kg restore SRC`).

A backup is a directory: `store/` (a pyoxigraph checkpoint: `Store.backup`, hard links where
the filesystem allows) and `manifest.json` (quad and graph counts, the SHA-256 of the sorted
N-Quads of the whole dataset, and a SHA-256 of every file).

Where the data comes from:
- No process holds the store (the service is stopped): the store itself, opened read-write so
  that nobody can write while it is copied.
- The service holds it (pyoxigraph allows one read-write opener): the newest snapshot of the
  query executor (`<store dir>/../snapshots/`). Snapshots are immutable checkpoints taken
  after every committed write, before the write is acknowledged, so the backup holds every
  acknowledged write up to the moment it starts. A checkpoint is written aside and renamed
  when complete, so a snapshot directory that exists is whole.

Restoring checks the manifest's digest against the backup, writes the data into a new
directory beside the builds (var/stores/<stamp>), checks the digest again there, then swaps
the store symlink exactly as `kg build` does: the previous store stays on disk for rollback.
A running service keeps serving the store it opened until it is restarted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from kg.build import writer
from kg.errors import KgError

MANIFEST = "manifest.json"
DATA = "store"
FORMAT = 1


class BackupError(KgError):
    title = "Backup failed"


@dataclass(frozen=True)
class Digest:
    """What a dataset holds, independent of how RocksDB lays it out on disk."""

    quads: int
    graphs: int
    sha256: str


def digest(store: ox.Store) -> Digest:
    """Count and hash the dataset: sorted N-Quads lines (blank node ids are kept by
    checkpoints, so a faithful copy hashes the same)."""
    lines = sorted(ox.serialize(store, format=ox.RdfFormat.N_QUADS).splitlines())
    graphs = sum(1 for _ in store.named_graphs())
    return Digest(len(lines), graphs, hashlib.sha256(b"\n".join(lines)).hexdigest())


def _file_sums(root: Path) -> dict[str, str]:
    sums = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                h.update(chunk)
        sums[str(path.relative_to(root))] = h.hexdigest()
    return sums


def _is_lock_error(exc: OSError) -> bool:
    text = str(exc).lower()
    return "lock" in text or "resource temporarily unavailable" in text


def _snapshots(live: Path) -> list[Path]:
    """The executor's snapshots (kg.store.embedded: `<store dir>/../snapshots`), newest first."""
    directory = live.parent / "snapshots"
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if p.is_dir() and not p.name.endswith(".tmp")]
    return sorted(found, key=lambda p: p.name, reverse=True)


def _checkpoint(source: ox.Store, target: Path) -> tuple[Digest, Digest]:
    """Checkpoint `source` into `target`; the digests of both, which must agree."""
    source.backup(str(target))
    expected = digest(source)
    copy = ox.Store.read_only(str(target))
    try:
        return expected, digest(copy)
    finally:
        del copy


def backup(store_path: Path, dest: Path) -> dict[str, Any]:
    """Write a verified backup of the store at `store_path` into the new directory `dest`."""
    store_path = Path(store_path)
    if not store_path.exists():
        raise BackupError(f"no store at {store_path}: nothing to back up")
    dest = Path(dest)
    if dest.exists():
        raise BackupError(f"{dest} exists: a backup goes into a new directory")
    live = store_path.resolve()
    dest.mkdir(parents=True)
    try:
        try:
            store = ox.Store(str(live))
            source = f"store {live}"
        except OSError as exc:
            if not _is_lock_error(exc):
                raise
            store, source = None, ""
        if store is not None:
            try:
                expected, got = _checkpoint(store, dest / DATA)
            finally:
                del store
        else:
            expected = got = None
            for snapshot in _snapshots(live):
                try:
                    snap = ox.Store.read_only(str(snapshot))
                except OSError:
                    continue  # pruned meanwhile: the next one
                try:
                    expected, got = _checkpoint(snap, dest / DATA)
                finally:
                    del snap
                source = f"snapshot {snapshot}"
                break
            if expected is None:
                raise BackupError(
                    f"{live} is held by another process (the service?) and it has no "
                    "snapshot to copy; stop the service and run the backup again"
                )
        if expected != got:
            raise BackupError(f"the copy does not match its source ({expected} vs {got})")
        manifest = {
            "format": FORMAT,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "source": source,
            "pyoxigraph": ox.__version__,
            "quads": got.quads,
            "named_graphs": got.graphs,
            "sha256": got.sha256,
            "files": _file_sums(dest / DATA),
        }
        (dest / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        return manifest
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def verify(src: Path) -> dict[str, Any]:
    """Check a backup against its manifest (files, then the dataset digest); the manifest."""
    src = Path(src)
    try:
        manifest = json.loads((src / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{src} is not a kg backup (no readable {MANIFEST}): {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unknown backup format {manifest.get('format')!r}")
    if _file_sums(src / DATA) != manifest["files"]:
        raise BackupError(f"the files of {src} do not match its manifest (changed or damaged)")
    store = ox.Store.read_only(str(src / DATA))
    try:
        found = digest(store)
    finally:
        del store
    if (found.quads, found.sha256) != (manifest["quads"], manifest["sha256"]):
        raise BackupError(f"the data of {src} does not match its manifest")
    return manifest


def restore(src: Path, store_path: Path) -> Path:
    """Restore a verified backup beside the builds and swap it in; the new store directory."""
    manifest = verify(src)
    target = writer._new_store_dir(Path(store_path))
    try:
        backup_store = ox.Store.read_only(str(Path(src) / DATA))
        try:
            backup_store.backup(str(target))
        finally:
            del backup_store
        restored = ox.Store.read_only(str(target))
        try:
            found = digest(restored)
        finally:
            del restored
        if found.sha256 != manifest["sha256"]:
            raise BackupError("the restored store does not match the backup")
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    writer.swap(Path(store_path), target)
    return target


def held_by_another_process(store_path: Path) -> bool:
    """Whether a process (the service) holds the store open for writing."""
    try:
        store = ox.Store(str(Path(store_path).resolve()))
    except OSError as exc:
        return _is_lock_error(exc)
    del store
    return False
