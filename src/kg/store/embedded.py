"""The embedded on-disk pyoxigraph store: one writer (this process), snapshots for readers."""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from pathlib import Path

import pyoxigraph as ox

from kg.errors import BackendUnavailable


class EmbeddedStore:
    """Owns the writable store. Query workers never open it: they open snapshots.

    pyoxigraph allows one read-write opener per directory (RocksDB lock), and a read-only
    open of a directory another process writes is undefined; `Store.backup` gives cheap,
    immutable hard-link checkpoints, so readers get a snapshot taken after each write.
    """

    def __init__(self, path: Path, snapshots_dir: Path | None = None) -> None:
        self.path = Path(path).resolve()
        if not self.path.exists():
            raise BackendUnavailable(f"no store at {path}: run `kg build` first")
        self.raw = ox.Store(str(self.path))
        self.snapshots_dir = snapshots_dir or self.path.parent / "snapshots"
        self.snapshots_dir.mkdir(parents=True, exist_ok=True)
        self.write_lock = threading.Lock()
        self.version = int(time.time() * 1000)

    def snapshot(self) -> Path:
        """A fresh immutable checkpoint of the current state, for reader processes."""
        target = self.snapshots_dir / f"{int(time.time() * 1000)}-{uuid.uuid4().hex[:8]}"
        self.raw.flush()
        self.raw.backup(str(target))
        return target

    def bump_version(self) -> int:
        """Called after every committed write; caches key on it."""
        self.version = max(self.version + 1, int(time.time() * 1000))
        return self.version

    def prune_snapshots(self, keep: set[Path]) -> None:
        """Remove snapshots no reader uses any more."""
        for child in self.snapshots_dir.iterdir():
            if child.resolve() not in {k.resolve() for k in keep}:
                shutil.rmtree(child, ignore_errors=True)

    def named_graphs(self) -> list[str]:
        return sorted(g.value for g in self.raw.named_graphs() if isinstance(g, ox.NamedNode))

    def close(self) -> None:
        self.raw.flush()
        del self.raw
