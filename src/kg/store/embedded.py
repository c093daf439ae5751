"""The embedded on-disk pyoxigraph store: one writer (this process), snapshots for readers."""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyoxigraph as ox

from kg.errors import BackendUnavailable
from kg.store.base import GraphName, Row, Term, rows_of

if TYPE_CHECKING:
    import rdflib

    from kg.config import Settings
    from kg.sparql.executor import QueryExecutor
    from kg.store.writes import WriteOutcome


def remove_dirs(paths: Iterable[Path]) -> None:
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


class EmbeddedStore:
    """Owns the writable store. Query workers never open it: they open snapshots.

    pyoxigraph allows one read-write opener per directory (RocksDB lock), and a read-only
    open of a directory another process writes is undefined; `Store.backup` gives cheap,
    immutable hard-link checkpoints, so readers get a snapshot taken after each write.
    """

    kind = "embedded"

    def __init__(self, path: Path, snapshots_dir: Path | None = None, *,
                 write_wait: float = 60.0, rehearsal_timeout: float = 120.0) -> None:
        self.path = Path(path).resolve()
        if not self.path.exists():
            raise BackendUnavailable(f"no store at {path}: run `kg build` first")
        self.raw = ox.Store(str(self.path))
        self.snapshots_dir = snapshots_dir or self.path.parent / "snapshots"
        self.snapshots_dir.mkdir(parents=True, exist_ok=True)
        self.write_lock = threading.Lock()
        self.write_wait = write_wait  # KG_WRITE_WAIT, KG_REHEARSAL_TIMEOUT (kg.store.writes)
        self.rehearsal_timeout = rehearsal_timeout
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

    def stale_snapshots(self, keep: set[Path]) -> list[Path]:
        """Snapshots no reader uses any more (listed now; removed by the caller, off the
        event loop: removing a store directory of many files takes a while)."""
        kept = {k.resolve() for k in keep}
        return [child for child in self.snapshots_dir.iterdir() if child.resolve() not in kept]

    def prune_snapshots(self, keep: set[Path]) -> None:
        """Remove snapshots no reader uses any more."""
        remove_dirs(self.stale_snapshots(keep))

    def named_graphs(self) -> list[str]:
        return sorted(g.value for g in self.raw.named_graphs() if isinstance(g, ox.NamedNode))

    # --- the kg.store.base.Store interface ------------------------------------------------

    def runner(self, settings: Settings) -> QueryExecutor:
        """Worker processes on snapshots of this store (isolated, killable)."""
        from kg.sparql.executor import QueryExecutor

        return QueryExecutor(settings, self)

    def select(
        self, text: str, *, base_iri: str, union: bool = False,
        bindings: Mapping[str, Term] | None = None,
    ) -> list[Row]:
        solutions = self.raw.query(
            text,
            base_iri=base_iri,
            use_default_graph_as_union=union,
            substitutions={ox.Variable(k): v for k, v in (bindings or {}).items()},
        )
        assert isinstance(solutions, ox.QuerySolutions)
        return rows_of(solutions)

    def graph_quads(self, graph: GraphName) -> list[ox.Quad]:
        return list(self.raw.quads_for_pattern(None, None, None, graph))

    def contains_graph(self, graph: ox.NamedNode) -> bool:
        return self.raw.contains_named_graph(graph)

    def graph_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for quad in self.raw.quads_for_pattern(None, None, None, None):
            name = quad.graph_name.value if isinstance(quad.graph_name, ox.NamedNode) else ""
            counts[name] = counts.get(name, 0) + 1
        return counts

    def transact(
        self, text: str, *, base_iri: str, shapes: rdflib.Graph | None,
        context_graphs: Iterable[GraphName] = (), probe: GraphName | None = None,
        must_exist: bool = False,
    ) -> WriteOutcome:
        from kg.store import writes

        return writes.transact(self, text, base_iri=base_iri, shapes=shapes,
                               context_graphs=context_graphs, probe=probe,
                               must_exist=must_exist)

    def health(self) -> bool:
        """A trivial read, made and consumed in one thread (iterators are thread-bound)."""
        try:
            return bool(self.raw.query("ASK { ?s ?p ?o }", use_default_graph_as_union=True))
        except (OSError, RuntimeError, ValueError, AttributeError) as exc:
            raise BackendUnavailable(f"the store does not answer: {exc!r}") from exc

    def modified(self) -> datetime:
        """The newest file in the store directory (RocksDB appends on every write), so a rebuilt
        or updated store reports its own time, not the server's."""
        path = self.path
        times = [p.stat().st_mtime for p in path.iterdir() if p.is_file()] or [
            path.stat().st_mtime]
        return datetime.fromtimestamp(max(times), tz=UTC).replace(microsecond=0)

    def scratch_dir(self) -> Path:
        return self.path.parent

    def dump(self, path: Path, fmt: ox.RdfFormat) -> None:
        self.raw.dump(str(path), format=fmt)

    def close(self) -> None:
        self.raw.flush()
        del self.raw
