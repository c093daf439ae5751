"""What the service needs from a store, whichever holds the graph (README, Backends).

Two implementations: `kg.store.embedded.EmbeddedStore` (pyoxigraph on disk, the default; queries
run in killable worker processes, kg.sparql.executor) and `kg.store.remote.RemoteStore` (any
SPARQL 1.1 Query/Update/Graph Store server at KG_STORE_URL). Routes depend on this interface
only; a store is chosen once, in the app's lifespan (`open_store`).

Conventions both keep:
- the default graph queries see is the deduplicated merge of all named graphs
  (kg.store.default_graph), kept in step by every write;
- `version` changes with every committed write (caches and ETags key on it); for a remote store
  it is a value the backend holds, so every service process in front of it agrees;
- every call is synchronous except the query runner's: routes call the store in a worker thread
  (`run_in_threadpool`), because pyoxigraph iterators are bound to the thread that made them and
  a remote call blocks.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pyoxigraph as ox

from kg.sparql.negotiation import Format

if TYPE_CHECKING:
    import rdflib

    from kg.config import Settings
    from kg.store.writes import WriteOutcome

Term = ox.NamedNode | ox.BlankNode | ox.Literal
GraphName = ox.NamedNode | ox.DefaultGraph
Row = dict[str, Term]

CHUNK_SIZE = 64 * 1024


@dataclass
class QueryJob:
    """One query with its dataset and the negotiated format key."""

    query: str
    format: str
    default_graph: list[str] | None = None
    named_graphs: list[str] | None = None
    # the query's own prefixes for a Turtle/TriG answer, when the server read them already
    # (kg.sparql.prologue.prologue_prefixes: a memoised dict, shared, never to be changed);
    # None: whoever writes the answer reads them
    prefixes: dict[str, str] | None = None


@dataclass
class QueryResult:
    """A complete, successful result: inline bytes or a spool file to stream, then delete."""

    format: Format
    rows: int
    size: int
    inline: bytes | None = None
    path: str | None = None
    elapsed: float = 0.0
    version: int | None = None  # the store version the result was computed on, when known
    _consumed: bool = field(default=False, repr=False)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body in chunks; the spool file is unlinked as soon as it is open."""
        self._consumed = True
        if self.inline is not None:
            if self.inline:
                yield self.inline
            return
        assert self.path is not None
        with open(self.path, "rb") as handle:
            os.unlink(self.path)
            while chunk := handle.read(CHUNK_SIZE):
                yield chunk

    def discard(self) -> None:
        """Remove the spool file of a result that will not be sent (e.g. HEAD)."""
        if self.path and not self._consumed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


class QueryRunner(Protocol):
    """Executes protocol queries in the time limit, row cap and format of the settings; the
    status is known before the first byte (a complete result, or a typed error)."""

    timeouts: int

    async def start(self) -> None: ...

    async def execute(self, job: QueryJob) -> QueryResult: ...

    async def refresh(self) -> None:
        """Called after every committed write of this process."""

    async def close(self) -> None: ...


@runtime_checkable
class Store(Protocol):
    """The graph the service serves. `kind` is "embedded" or "remote"."""

    kind: str

    @property
    def version(self) -> int:
        """Changes with every committed write (of any process, for a remote store)."""
        ...

    def bump_version(self) -> int:
        """After a committed write of this process: the new version, known at once."""
        ...

    def runner(self, settings: Settings) -> QueryRunner:
        """The query runner for the protocol endpoint (/sparql)."""
        ...

    def select(
        self, text: str, *, base_iri: str, union: bool = False,
        bindings: Mapping[str, Term] | None = None,
    ) -> list[Row]:
        """A SELECT's rows; `bindings` pre-bind variables (which must be projected)."""
        ...

    def graph_quads(self, graph: GraphName) -> list[ox.Quad]:
        """Every quad of one graph (Graph Store GET); the stored default graph for DefaultGraph."""
        ...

    def contains_graph(self, graph: ox.NamedNode) -> bool: ...

    def named_graphs(self) -> list[str]: ...

    def graph_counts(self) -> dict[str, int]:
        """Triples per named graph, and "" for the stored default graph."""
        ...

    def transact(
        self, text: str, *, base_iri: str, shapes: rdflib.Graph | None,
        context_graphs: Iterable[GraphName] = (), probe: GraphName | None = None,
        must_exist: bool = False,
    ) -> WriteOutcome:
        """Rehearse, SHACL-check and commit one update (kg.store.writes describes the rules)."""
        ...

    def health(self) -> bool:
        """Whether the store holds data; raises BackendUnavailable when it does not answer."""
        ...

    def modified(self) -> datetime:
        """When the data last changed (dataset metadata)."""
        ...

    def scratch_dir(self) -> Path:
        """A directory for caches of derived files (on-demand dumps)."""
        ...

    def dump(self, path: Path, fmt: ox.RdfFormat) -> None:
        """Every quad, in a dataset format, written to `path`."""
        ...

    def close(self) -> None: ...


def open_store(settings: Settings) -> Any:
    """The store the settings name: remote when KG_STORE_URL is set, else embedded."""
    if settings.store_url:
        from kg.store.remote import RemoteStore

        return RemoteStore(settings)
    from kg.store.embedded import EmbeddedStore

    return EmbeddedStore(settings.store_path, write_wait=settings.write_wait,
                         rehearsal_timeout=settings.rehearsal_timeout)


def rows_of(solutions: ox.QuerySolutions) -> list[Row]:
    """Materialise solutions as plain dicts (in the thread that made the iterator)."""
    names = [v.value for v in solutions.variables]
    return [{n: row[n] for n in names if row[n] is not None} for row in solutions]
