"""Dataset dumps: the build's files in settings.dumps_dir, else N-Quads/TriG made on demand.

Decision (README, Dumps): files the build wrote (kg.trig, kg.nq, kg.ttl, optionally .gz) are
served as they are, sized and dated. When the build wrote no kg.nq or kg.trig (a store made
some other way, the tests' sample store), those two are exported from the live store on first
request with pyoxigraph's native `Store.dump` into a cache directory beside the store, keyed by
store version, and then served as files (Content-Length, ETag, ranges). Only names found by
listing the directory are ever opened: no path from the request reaches the filesystem.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyoxigraph as ox
from starlette.concurrency import run_in_threadpool

from kg.server.state import AppState

MEDIA_TYPES: dict[str, str] = {
    ".trig": "application/trig",
    ".nq": "application/n-quads",
    ".ttl": "text/turtle",
    ".nt": "application/n-triples",
    ".jsonld": "application/ld+json",
    ".rdf": "application/rdf+xml",
    ".gz": "application/gzip",
    ".zst": "application/zstd",
}
ON_DEMAND: dict[str, ox.RdfFormat] = {"kg.nq": ox.RdfFormat.N_QUADS, "kg.trig": ox.RdfFormat.TRIG}


@dataclass(frozen=True)
class Dump:
    name: str
    media_type: str
    path: Path | None  # None: on demand, not yet materialised for this store version
    size: int | None
    modified: datetime | None
    built: bool  # written by the build (False: exported from the live store)


def _media_type(name: str) -> str | None:
    return MEDIA_TYPES.get(Path(name).suffix.lower())


def _from_dir(directory: Path, built: bool) -> dict[str, Dump]:
    found: dict[str, Dump] = {}
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return found
    for entry in entries:
        media = _media_type(entry.name)
        if media is None or entry.name.startswith(".") or not entry.is_file():
            continue
        stat = entry.stat()
        found[entry.name] = Dump(entry.name, media, Path(entry.path), stat.st_size,
                                 datetime.fromtimestamp(int(stat.st_mtime), tz=UTC), built)
    return found


def _cache_dir(state: AppState) -> Path:
    return state.store.scratch_dir() / "dumps-cache" / str(state.store.version)


def list_dumps(state: AppState) -> list[Dump]:
    """Every dump a client can download now, built ones first."""
    dumps = _from_dir(state.settings.dumps_dir, built=True)
    cached = _from_dir(_cache_dir(state), built=False)
    for name in ON_DEMAND:
        if name not in dumps:
            dumps[name] = cached.get(name) or Dump(name, MEDIA_TYPES[Path(name).suffix], None,
                                                   None, None, False)
    return sorted(dumps.values(), key=lambda d: (not d.built, d.name))


def _export(state: AppState, name: str) -> Path:
    """Write one on-demand dump atomically (temp file, then rename); prune old versions."""
    target_dir = _cache_dir(state)
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / name
    if not target.exists():
        partial = target_dir / f".{name}.partial"
        state.store.dump(partial, ON_DEMAND[name])
        partial.replace(target)
    for old in target_dir.parent.iterdir():
        if old != target_dir:
            shutil.rmtree(old, ignore_errors=True)
    return target


async def find_dump(state: AppState, name: str) -> Dump | None:
    """The dump called `name`, materialising an on-demand export if needed; None if unknown."""
    dumps = {d.name: d for d in list_dumps(state)}
    dump = dumps.get(name)
    if dump is None or dump.path is not None:
        return dump
    locks: dict[str, asyncio.Lock] = state.extras.setdefault("s3.dump_locks", {})
    async with locks.setdefault(name, asyncio.Lock()):
        path = await run_in_threadpool(_export, state, name)
    stat = path.stat()
    return Dump(name, dump.media_type, path, stat.st_size,
                datetime.fromtimestamp(int(stat.st_mtime), tz=UTC), False)
