"""Write a build: a fresh on-disk store swapped in atomically, plus dumps and a manifest.

The store is built in var/stores/<timestamp> and only then does the store_path symlink move
(os.replace of a temporary symlink is atomic), so a failed build leaves the previous store
serving. The two previous stores are kept for rollback; older ones are removed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from kg.errors import BuildError
from kg.namespaces import kg_prefixes
from kg.store import default_graph

KEEP_OLD = 2
_STAMP = re.compile(r"\d{8}T\d{12}Z(-\d+)?")


def stores_dir(store_path: Path) -> Path:
    return store_path.parent / "stores"


def _new_store_dir(store_path: Path) -> Path:
    parent = stores_dir(store_path)
    parent.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    candidate, n = parent / stamp, 1
    while candidate.exists():
        candidate, n = parent / f"{stamp}-{n}", n + 1
    return candidate


def write_store(quads: Iterable[ox.Quad], store_path: Path) -> Path:
    """Load the quads into a new store directory and return it (not yet swapped in)."""
    target = _new_store_dir(store_path)
    try:
        quads = list(quads)
        store = ox.Store(str(target))
        store.bulk_extend(quads)
        store.bulk_extend(default_graph.merged(quads))
        store.flush()
        del store
    except OSError as exc:  # disk full, quota, permissions: a clean failure, old store kept
        shutil.rmtree(target, ignore_errors=True)
        raise BuildError(
            f"Could not write the new store in {target.parent} ({exc}); the previous store "
            "is unchanged and still in use."
        ) from exc
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return target


def swap(store_path: Path, target: Path) -> None:
    """Point store_path at target atomically; a plain directory there is moved aside first."""
    store_path.parent.mkdir(parents=True, exist_ok=True)
    if store_path.exists() and not store_path.is_symlink():
        store_path.rename(stores_dir(store_path) / f"legacy-{target.name}")
    tmp = store_path.parent / f".{store_path.name}.{os.getpid()}.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(os.path.relpath(target, store_path.parent), tmp)
    os.replace(tmp, store_path)


def current_store(store_path: Path) -> Path | None:
    return store_path.resolve() if store_path.exists() else None


def prune(store_path: Path, keep: int = KEEP_OLD) -> list[Path]:
    """Remove all but the `keep` newest old stores (only our timestamped directories)."""
    live = current_store(store_path)
    old = sorted(
        p
        for p in stores_dir(store_path).iterdir()
        if _STAMP.fullmatch(p.name) and p.resolve() != live
    )
    removed = old[: max(0, len(old) - keep)]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def nquads(quads: Iterable[ox.Quad]) -> bytes:
    """Sorted N-Quads: byte-identical for identical builds."""
    lines = ox.serialize(quads, format=ox.RdfFormat.N_QUADS).splitlines(keepends=True)
    return b"".join(sorted(set(lines)))


def write_dumps(
    quads: list[ox.Quad], dumps_dir: Path, base: str, manifest: dict[str, Any]
) -> dict[str, Path]:
    """kg.nq and kg.trig (all graphs), kg.ttl (the union), manifest.json."""
    prefixes = kg_prefixes(base)
    mem = ox.Store()
    mem.bulk_extend(quads)
    out = {
        "nq": dumps_dir / "kg.nq",
        "trig": dumps_dir / "kg.trig",
        "ttl": dumps_dir / "kg.ttl",
        "manifest": dumps_dir / "manifest.json",
    }
    _atomic_write(out["nq"], nquads(quads))
    _atomic_write(out["trig"], mem.dump(format=ox.RdfFormat.TRIG, prefixes=prefixes))
    union = ox.Store()
    union.bulk_extend(ox.Quad(q.subject, q.predicate, q.object) for q in quads)
    _atomic_write(
        out["ttl"],
        union.dump(format=ox.RdfFormat.TURTLE, prefixes=prefixes, from_graph=ox.DefaultGraph()),
    )
    _atomic_write(out["manifest"], json.dumps(manifest, indent=2, sort_keys=True).encode())
    return out
