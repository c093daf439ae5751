"""Write a build: a fresh on-disk store swapped in atomically, plus dumps and a manifest.

The store is built in var/stores/<timestamp> and only then does the store_path symlink move
(os.replace of a temporary symlink is atomic), so a failed build leaves the previous store
serving. The two previous stores are kept for rollback; older ones are removed.

Quads reach the stores as N-Quads text wherever they can: oxigraph then parses and indexes
without holding the GIL, so the build runs SHACL validation (Python) meanwhile. Quads with
blank nodes are the exception (`Store.load` would relabel blank nodes, and the dumps keep
the ontology's stable labels); they go in as objects.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from kg.errors import BuildError
from kg.namespaces import kg_prefixes

KEEP_OLD = 2
_STAMP = re.compile(r"\d{8}T\d{12}Z(-\d+)?")
DUMP_FILES = {"nq": "kg.nq", "trig": "kg.trig", "ttl": "kg.ttl"}


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


# Terms that may hold a blank node, which loading text would relabel.
_AS_OBJECTS = (ox.BlankNode, ox.Triple)


def _default(quads: Iterable[ox.Quad]) -> Iterable[ox.Quad]:
    return (ox.Quad(q.subject, q.predicate, q.object) for q in quads)


class Batches:
    """The quads in their order, cut into runs with and without blank nodes.

    Each ground run is serialized once (as N-Quads, and its triples as N-Triples) for all the
    stores to load. Loading the runs in order inserts the quads in their original order, which
    is what keeps memory-store output (TriG and Turtle dumps, inferred quads) the same across
    builds. `lenient` loading is safe: the text is oxigraph's own serialization of its terms.
    """

    def __init__(self, quads: Iterable[ox.Quad]) -> None:
        self.runs: list[tuple[bool, list[ox.Quad]]] = []
        for q in quads:
            blank = (
                isinstance(q.subject, _AS_OBJECTS)
                or isinstance(q.object, _AS_OBJECTS)
                or isinstance(q.graph_name, ox.BlankNode)
            )
            if self.runs and self.runs[-1][0] == blank:
                self.runs[-1][1].append(q)
            else:
                self.runs.append((blank, [q]))

    @cached_property
    def quads_text(self) -> list[bytes]:
        """N-Quads of each ground run (empty for blank-node runs)."""
        nq = ox.RdfFormat.N_QUADS
        return [b"" if blank else ox.serialize(run, format=nq) for blank, run in self.runs]

    @cached_property
    def triples_text(self) -> list[bytes]:
        """N-Triples of the triples of each ground run (empty for blank-node runs)."""
        nt = ox.RdfFormat.N_TRIPLES
        return [
            b"" if blank else ox.serialize((q.triple for q in run), format=nt)
            for blank, run in self.runs
        ]

    def serialized(self) -> Batches:
        """Both texts computed now: before threads share the batches, not in each of them."""
        _ = self.quads_text, self.triples_text
        return self

    def blank(self) -> list[ox.Quad]:
        return [q for blank, run in self.runs if blank for q in run]

    def into_disk_store(self, store: ox.Store) -> None:
        """All quads plus their triples in the default graph, the ground ones in bulk."""
        nq, nt = ox.RdfFormat.N_QUADS, ox.RdfFormat.N_TRIPLES
        store.bulk_load(input=b"".join(self.quads_text), format=nq, lenient=True)
        store.bulk_load(input=b"".join(self.triples_text), format=nt, lenient=True)
        blank = self.blank()
        store.bulk_extend(blank)
        store.bulk_extend(_default(blank))

    def into_memory_store(self, store: ox.Store, union: bool = False) -> None:
        """All quads (union: only their triples, in the default graph), in their order."""
        texts = self.triples_text if union else self.quads_text
        fmt = ox.RdfFormat.N_TRIPLES if union else ox.RdfFormat.N_QUADS
        for (blank, run), text in zip(self.runs, texts, strict=True):
            if blank:
                store.bulk_extend(_default(run) if union else run)
            else:
                store.load(input=text, format=fmt, lenient=True)

    def nquads(self) -> bytes:
        """What `nquads` gives for these quads, reusing the serialized runs."""
        lines: list[bytes] = []
        for (blank, run), text in zip(self.runs, self.quads_text, strict=True):
            if blank:
                text = ox.serialize(run, format=ox.RdfFormat.N_QUADS)
            lines.extend(text.splitlines(keepends=True))
        return b"".join(sorted(set(lines)))


def write_store(quads: Iterable[ox.Quad] | Batches, store_path: Path) -> Path:
    """Load the quads, and their merge in the default graph, into a new store directory.

    Returns the directory (not yet swapped in). The merge needs no deduplication here: the
    store is a set, so a triple that several graphs hold is in the default graph once.
    """
    batches = quads if isinstance(quads, Batches) else Batches(quads)
    target = _new_store_dir(store_path)
    try:
        store = ox.Store(str(target))
        batches.into_disk_store(store)
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


def render_dumps(quads: Iterable[ox.Quad] | Batches, base: str) -> dict[str, bytes]:
    """kg.nq and kg.trig (all graphs) and kg.ttl (the union), in memory, not yet written."""
    batches = quads if isinstance(quads, Batches) else Batches(quads)
    prefixes = kg_prefixes(base)
    dataset = ox.Store()
    batches.into_memory_store(dataset)
    union = ox.Store()
    batches.into_memory_store(union, union=True)
    return {
        "nq": batches.nquads(),
        "trig": dataset.dump(format=ox.RdfFormat.TRIG, prefixes=prefixes),
        "ttl": union.dump(
            format=ox.RdfFormat.TURTLE, prefixes=prefixes, from_graph=ox.DefaultGraph()
        ),
    }


def save_dumps(
    rendered: dict[str, bytes], dumps_dir: Path, manifest: dict[str, Any]
) -> dict[str, Path]:
    """The rendered dumps and manifest.json, each replaced atomically."""
    out = {name: dumps_dir / DUMP_FILES[name] for name in rendered}
    for name, data in rendered.items():
        _atomic_write(out[name], data)
    out["manifest"] = dumps_dir / "manifest.json"
    _atomic_write(out["manifest"], json.dumps(manifest, indent=2, sort_keys=True).encode())
    return out
