"""A store held by an external SPARQL 1.1 server (Query, Update and Graph Store protocols).

Set KG_STORE_URL (query endpoint) to use it; KG_STORE_UPDATE_URL and KG_STORE_GSP_URL default
from it (…/query → …/update and …/store, as Oxigraph server and Fuseki name them; …/sparql →
…/sparql and …/sparql-graph-crud, as Virtuoso does). Credentials: KG_STORE_USER and
KG_STORE_PASSWORD (HTTP Basic, or Digest with KG_STORE_AUTH=digest).

How the service's guarantees carry over (README, Backends):
- **Merged default graph.** Oxigraph server keeps a real default graph, so the build's merge is
  stored there as in the embedded store. Virtuoso has no stored default graph (its default is
  the union of every graph, system graphs included, with one row per graph that holds a
  triple), so the merge lives in the named graph <base>graph/default, and every query without
  its own dataset is sent with `default-graph-uri` = that graph and `named-graph-uri` = the
  project's graphs (so `GRAPH ?g` sees neither the merge nor Virtuoso's system graphs).
- **Version.** Every write this service sends ends with operations that replace the triple
  `<base>graph/meta <base>ontology#version N` (in graph <base>graph/meta), in the same
  request. A background thread reads it every KG_STORE_VERSION_INTERVAL seconds, so every
  service process in front of one backend sees a write within that interval and its caches
  (keyed on `store.version`) miss. `version` itself never blocks.
- **SHACL-checked writes.** The update's reach is read off its text (kg.store.update_scope);
  the graphs it can touch are fetched over the Graph Store protocol and sent to the rehearsal
  child process (kg.store.rehearsal), which runs the update on an in-memory copy and then
  pySHACL on the touched nodes (views built here from the backend: their statements, the
  ontology, the vocabulary and the types of what they point to), all within
  KG_REHEARSAL_TIMEOUT (the child is killed past it: 503, nothing sent); only then is the
  update sent, with the default-graph sync and the version bump in the same request (see
  kg.store.remote_writes). Writes of one process are serialised (a writer waits at most
  KG_WRITE_WAIT); writes of several processes are not (SPARQL Update has no conditional
  commit): see README.
- **Time limit.** An HTTP timeout of what is left of KG_QUERY_TIMEOUT → QueryTimeout (503). The
  backend may go on computing: set its own limit too (Oxigraph `--timeout-s`, Virtuoso
  `MaxQueryExecutionTime`). SERVICE and LOAD are refused by the guard before anything is sent.
- **Same bytes.** Results are fetched as SPARQL JSON (or N-Triples/Turtle for graphs), parsed
  with pyoxigraph and re-serialised by kg.sparql.results, so formats, the row cap and the
  byte cap are those of the embedded store.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pyoxigraph as ox

from kg.errors import (
    BackendError,
    BackendUnanswered,
    BackendUnavailable,
    KgError,
    QueryTimeout,
)
from kg.sparql.negotiation import BY_KEY
from kg.sparql.results import STREAM_FORMATS
from kg.sparql.streaming import StreamedResult
from kg.store import remote_results, remote_union, sparql_text
from kg.store.base import GraphName, QueryJob, QueryResult, Row, Term, rows_of
from kg.store.update_scope import update_scope

if TYPE_CHECKING:
    import rdflib

    from kg.config import Settings
    from kg.store.writes import WriteOutcome

log = logging.getLogger("kg.store.remote")

RESULTS_JSON = "application/sparql-results+json"
GRAPH_ACCEPT = "application/n-triples, text/turtle;q=0.9"
HEALTH_TIMEOUT = 5.0
QUERY_THREADS = 16  # protocol queries one service process runs on the backend at once
SYSTEM_GRAPHS = (  # Virtuoso's own graphs, never part of the dataset
    "http://www.openlinksw.com/", "http://www.w3.org/ns/ldp#", "http://localuriqaserver/",
    "virtrdf", "http://localhost:8890/",
)
RDF_PARSERS = {
    "application/n-triples": ox.RdfFormat.N_TRIPLES,
    "text/plain": ox.RdfFormat.N_TRIPLES,
    "text/turtle": ox.RdfFormat.TURTLE,
    "application/rdf+xml": ox.RdfFormat.RDF_XML,
    "application/n-quads": ox.RdfFormat.N_QUADS,
}
RESULT_PARSERS = {
    RESULTS_JSON: ox.QueryResultsFormat.JSON,
    "application/sparql-results+xml": ox.QueryResultsFormat.XML,
}


@dataclass(frozen=True)
class Endpoints:
    query: str
    update: str
    gsp: str


def endpoints(settings: Settings) -> Endpoints:
    """The three URLs, the update and Graph Store ones derived when not given."""
    query = settings.store_url or ""
    stem, _, last = query.rstrip("/").rpartition("/")
    if last == "query":
        update, gsp = f"{stem}/update", f"{stem}/store"
    elif last == "sparql":
        update, gsp = query, f"{stem}/sparql-graph-crud"
    else:
        update, gsp = query, query
    return Endpoints(query, settings.store_update_url or update, settings.store_gsp_url or gsp)


def _media(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip().lower()


def form_data(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Repeated form fields (httpx takes a mapping of lists)."""
    form: dict[str, list[str]] = {}
    for key, value in pairs:
        form.setdefault(key, []).append(value)
    return form


def parse_graph(body: bytes, media: str, graph: GraphName) -> list[ox.Quad]:
    fmt = RDF_PARSERS.get(media, ox.RdfFormat.TURTLE)
    return [ox.Quad(q.subject, q.predicate, q.object, graph) for q in ox.parse(body, format=fmt)]


class RemoteStore:
    """kg.store.base.Store over HTTP; see the module docstring."""

    kind = "remote"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.base = settings.base_iri
        self.urls = endpoints(settings)
        self.auth: httpx.Auth | None = None
        if settings.store_user:
            cls = httpx.DigestAuth if settings.store_auth == "digest" else httpx.BasicAuth
            self.auth = cls(settings.store_user, settings.store_password or "")
        self.client = httpx.Client(auth=self.auth, timeout=settings.query_timeout)
        self.dialect = settings.store_dialect
        self.meta_graph = ox.NamedNode(f"{self.base}graph/meta")
        self.version_property = ox.NamedNode(f"{settings.kg_ns}version")
        self.write_lock = threading.Lock()
        self._version = 0
        self._graphs_cache: tuple[int, list[str]] | None = None
        self._context_cache: tuple[int, list[ox.Quad]] | None = None
        self._scratch = Path(tempfile.mkdtemp(prefix="kg-remote-"))
        self._stop = threading.Event()
        self.available = False
        self.last_error: str | None = None
        self._poller: threading.Thread | None = None

    # --- lifecycle and version --------------------------------------------------------------

    def start(self) -> None:
        """Read the version once (never fails: a down backend is reported by /healthz) and keep
        reading it in the background."""
        self.poll_version()
        if self._poller is None:
            self._poller = threading.Thread(target=self._poll, name="kg-version", daemon=True)
            self._poller.start()

    def _poll(self) -> None:
        while not self._stop.wait(self.settings.store_version_interval):
            self.poll_version()

    def poll_version(self) -> int:
        try:
            self._version = max(self._read_version(), 0) or self._version
            if self.dialect == "auto":
                self._detect_dialect()
            self.available, self.last_error = True, None
        except KgError as exc:
            self.available, self.last_error = False, exc.detail
        return self._version

    def _read_version(self) -> int:
        rows = self._select(
            f"SELECT ?v WHERE {{ GRAPH {self.meta_graph} {{ {self.meta_graph} "
            f"{self.version_property} ?v }} }}", dataset=False, timeout=HEALTH_TIMEOUT)
        values = [int(r["v"].value) for r in rows if "v" in r and r["v"].value.isdigit()]
        return max(values, default=0)

    def _detect_dialect(self) -> None:
        response = self._request("GET", self.urls.query, params={"query": "ASK {}"},
                                 headers={"Accept": RESULTS_JSON}, timeout=HEALTH_TIMEOUT)
        server = response.headers.get("server", "").lower()
        self.dialect = ("virtuoso" if "virtuoso" in server
                        else "oxigraph" if "oxigraph" in server else "generic")

    @property
    def version(self) -> int:
        return self._version

    def bump_version(self) -> int:
        return self._version

    def next_version(self) -> int:
        return max(self._version + 1, int(time.time() * 1000))

    def version_ops(self, version: int) -> str:
        g, p = self.meta_graph, self.version_property
        value = ox.Literal(str(version), datatype=XSD_INTEGER)
        # DELETE … WHERE, not DELETE WHERE: Virtuoso 7.2 ignores the latter inside GRAPH
        return (f"DELETE {{ GRAPH {g} {{ {g} {p} ?old }} }} "
                f"WHERE {{ GRAPH {g} {{ {g} {p} ?old }} }} ;\n"
                f"INSERT DATA {{ GRAPH {g} {{ {g} {p} {value} }} }}")

    @property
    def merge_graph(self) -> ox.NamedNode | None:
        """Where the merged default graph lives when the backend has no stored default graph."""
        return ox.NamedNode(f"{self.base}graph/default") if self.dialect == "virtuoso" else None

    def runner(self, settings: Settings) -> RemoteRunner:
        return RemoteRunner(self, settings)

    def close(self) -> None:
        self._stop.set()
        self.client.close()
        shutil.rmtree(self._scratch, ignore_errors=True)

    # --- HTTP -------------------------------------------------------------------------------

    def _request(self, method: str, url: str, *, timeout: float | None = None,
                 **kwargs: Any) -> httpx.Response:
        try:
            response = self.client.request(
                method, url, timeout=timeout or self.settings.query_timeout, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise BackendUnavailable(f"the SPARQL backend is unreachable: {exc!r}") from exc
        except httpx.TimeoutException as exc:
            raise BackendUnanswered(f"the SPARQL backend did not answer in time: {exc!r}") \
                from exc
        except httpx.HTTPError as exc:
            raise BackendUnanswered(f"the SPARQL backend broke off: {exc!r}") from exc
        if response.status_code >= 500 or response.status_code in (401, 403):
            raise BackendError(
                f"the SPARQL backend answered {response.status_code}: {response.text[:500]}")
        return response

    def dataset_params(self, default_graph: list[str] | None = None,
                       named_graphs: list[str] | None = None,
                       query: str | None = None) -> list[tuple[str, str]]:
        """Protocol dataset parameters: the client's, or the project's default on Virtuoso.

        The project's named graphs there also list every graph `query` names after GRAPH:
        under a dataset, Virtuoso 7.2 takes `GRAPH <g> { … }` for a graph outside it as a
        match when nothing bound inside is projected (`ASK { GRAPH <g> { ?s ?p "x" } }` is
        true), whereas for a graph in the dataset that holds no match it answers rightly
        (nothing). Naming a graph that does not exist adds no data."""
        if default_graph is not None or named_graphs is not None:
            return ([("default-graph-uri", g) for g in default_graph or []]
                    + [("named-graph-uri", g) for g in named_graphs or []])
        merge = self.merge_graph
        if merge is None:
            return []
        graphs = set(self.named_graphs())
        if query is not None and "graph" in query.lower():
            graphs |= {g for g in update_scope(query, self.base).graphs
                       if g != merge.value and g != self.meta_graph.value
                       and not g.startswith(SYSTEM_GRAPHS)}
        # no graph at all: a graph that does not exist, as Virtuoso takes a dataset without
        # named graphs to mean every graph (its system graphs and the merge too)
        return [("default-graph-uri", merge.value)] + [
            ("named-graph-uri", g) for g in sorted(graphs) or [sparql_text.NO_GRAPH.value]]

    def _select(self, text: str, *, dataset: bool = True, union: bool = False,
                timeout: float | None = None) -> list[Row]:
        data: list[tuple[str, str]] = [("query", sparql_text.with_base(text, self.base))]
        if dataset:
            data += self.dataset_params(query=text)
        if union and self.dialect == "oxigraph":
            data.append(("union-default-graph", ""))
        response = self._request("POST", self.urls.query, data=form_data(data),
                                 headers={"Accept": RESULTS_JSON}, timeout=timeout)
        if response.status_code >= 400:  # the service's own query: the backend's limitation
            raise BackendError(f"the backend refused a query: {response.text[:500]}")
        body = response.content
        if self.dialect == "virtuoso":
            body = remote_results.virtuoso_bnodes(body)
        parsed = ox.parse_query_results(body, format=ox.QueryResultsFormat.JSON)
        if isinstance(parsed, ox.QueryBoolean):
            return [{"ask": ox.Literal(str(bool(parsed)).lower())}]
        return rows_of(parsed)

    def _ask(self, pattern: str, *, dataset: bool = True, timeout: float | None = None) -> bool:
        rows = self._select(f"SELECT * WHERE {{ {pattern} }} LIMIT 1", dataset=dataset,
                            timeout=timeout)
        return bool(rows)

    def update(self, text: str, *, default_graph: bool = False,
               graphs: Iterable[str] | None = None) -> None:
        """Send one update request; its operations commit together on both backends.

        `default_graph`: the text writes the default graph, which on Virtuoso is the merge
        graph, named with `default-graph-uri` (which also breaks DELETE templates with GRAPH
        there, so only such requests carry it). `graphs`: the named graphs `DROP ALL` and the
        like reach (default: those the backend holds now), spelt out for Virtuoso."""
        merge = self.merge_graph
        if merge is not None:  # Virtuoso (see the sparql_text functions)
            listed = sorted(graphs) if graphs is not None else self.named_graphs()
            text = sparql_text.bnode_insert_data(sparql_text.explicit_graphs(
                sparql_text.silenced(text), listed, merge.value))
        data = [("update", sparql_text.with_base(text, self.base))]
        if merge is not None and default_graph:
            data.append(("default-graph-uri", merge.value))
        response = self._request("POST", self.urls.update, data=form_data(data))
        if response.status_code >= 400:
            raise BackendError(
                f"the SPARQL backend refused the update ({response.status_code}): "
                f"{response.text[:500]}")

    # --- reads ------------------------------------------------------------------------------

    def select(self, text: str, *, base_iri: str, union: bool = False,
               bindings: Mapping[str, Term] | None = None) -> list[Row]:
        parts = remote_union.branches(text) if self.dialect == "virtuoso" else None
        if parts is None:
            return self._select(sparql_text.bind(text, bindings or {}), union=union)
        # Virtuoso 7.2 fails on (or loses rows of) the larger UNION page queries: one request
        # per branch (kg.store.remote_union)
        rows = [row for part in parts
                for row in self._select(sparql_text.bind(part, bindings or {}), union=union)]
        return remote_union.distinct(rows) if remote_union.is_distinct(text) else rows

    def _gsp_params(self, graph: GraphName) -> dict[str, str]:
        if isinstance(graph, ox.NamedNode):
            return {"graph": graph.value}
        merge = self.merge_graph
        return {"graph": merge.value} if merge is not None else {"default": ""}

    def graph_quads(self, graph: GraphName) -> list[ox.Quad]:
        response = self._request("GET", self.urls.gsp, params=self._gsp_params(graph),
                                 headers={"Accept": GRAPH_ACCEPT})
        if response.status_code == 404:
            return []
        if response.status_code >= 400:
            raise BackendError(f"Graph Store GET answered {response.status_code}")
        return parse_graph(response.content, _media(response), graph)

    def put_graph(self, graph: GraphName, quads: Iterable[ox.Quad]) -> None:
        """Replace one graph (Graph Store PUT: atomic per graph on both backends)."""
        body = ox.serialize([q.triple for q in quads], format=ox.RdfFormat.N_TRIPLES)
        response = self._request("PUT", self.urls.gsp, params=self._gsp_params(graph),
                                 content=body or b"",
                                 headers={"Content-Type": "application/n-triples"})
        if response.status_code >= 400:
            raise BackendError(f"Graph Store PUT answered {response.status_code}: "
                               f"{response.text[:300]}")

    def delete_graph(self, graph: ox.NamedNode) -> None:
        self.update(f"DROP SILENT GRAPH {graph}")

    def merge_into_default(self, graphs: list[ox.NamedNode]) -> None:
        """Make the stored default graph the merge of `graphs`, copied on the backend (`ADD`):
        its blank nodes are then the named graphs' own, as in the embedded store, where a
        Graph Store PUT of the merge made each of them a second node.

        One request per graph, not one for all: Virtuoso's `MaxQueryExecutionTime` is also
        an update's transaction timeout, and one `ADD` of the whole real build (186K triples)
        under CPU load was stopped by it (SR171 "Transaction timed out"; CI, and here with a
        1 s limit), where a graph at a time went through. Publishing already replaces one
        graph per request, so readers see no state they could not see before."""
        merge = self.merge_graph
        target = str(merge) if merge is not None else "DEFAULT"
        listed = [g.value for g in graphs]
        self.update(f"DROP SILENT {'GRAPH ' + target if merge is not None else target}",
                    graphs=listed)
        for graph in graphs:
            self.update(f"ADD SILENT {graph} TO {target}", graphs=listed)

    def contains_graph(self, graph: ox.NamedNode) -> bool:
        if self.dialect == "oxigraph":  # empty graphs exist there
            return self._ask(f"GRAPH {graph} {{}}", dataset=False)
        return self._ask(f"GRAPH {graph} {{ ?s ?p ?o }}", dataset=False)

    def named_graphs(self) -> list[str]:
        """The project's named graphs: not Virtuoso's system graphs, the merge graph nor the
        service's own version graph (graph/meta), as the embedded store has none of them."""
        cached = self._graphs_cache
        if cached and cached[0] == self._version:
            return cached[1]
        # GROUP BY, not DISTINCT: Virtuoso 7.2 scans every quad for `DISTINCT ?g` (10 s on
        # the real build) but answers the grouping from its graph index at once
        pattern = "GRAPH ?g {}" if self.dialect == "oxigraph" else "GRAPH ?g { ?s ?p ?o }"
        rows = self._select(f"SELECT ?g WHERE {{ {pattern} }} GROUP BY ?g", dataset=False)
        merge = self.merge_graph
        graphs = sorted(
            r["g"].value for r in rows
            if isinstance(r.get("g"), ox.NamedNode) and not r["g"].value.startswith(SYSTEM_GRAPHS)
            and (merge is None or r["g"].value != merge.value)
            and r["g"].value != self.meta_graph.value)
        self._graphs_cache = (self._version, graphs)
        return graphs

    def graph_counts(self) -> dict[str, int]:
        rows = self._select("SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } "
                            "GROUP BY ?g", dataset=False)
        merge = self.merge_graph
        ours = set(self.named_graphs())
        counts = {}
        for row in rows:
            name = row["g"].value
            if merge is not None and name == merge.value:
                counts[""] = int(row["n"].value)
            elif name in ours:
                counts[name] = int(row["n"].value)
        if merge is None:
            total = self._select("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", dataset=False)
            counts[""] = int(total[0]["n"].value) if total else 0
        counts.setdefault("", 0)
        return counts

    def health(self) -> bool:
        has_data = self._ask("?s ?p ?o", timeout=HEALTH_TIMEOUT)
        self.available, self.last_error = True, None
        return has_data

    def modified(self) -> datetime:
        stamp = self._version / 1000 if self._version > 10**12 else time.time()
        return datetime.fromtimestamp(stamp, tz=UTC).replace(microsecond=0)

    def scratch_dir(self) -> Path:
        return self._scratch

    def dump(self, path: Path, fmt: ox.RdfFormat) -> None:
        quads = self.graph_quads(ox.DefaultGraph())
        for name in self.named_graphs():
            quads += self.graph_quads(ox.NamedNode(name))
        with open(path, "wb") as out:
            ox.serialize(quads, out, format=fmt)

    def context_quads(self, graphs: Iterable[GraphName]) -> list[ox.Quad]:
        """The ontology and vocabulary graphs, cached per version (they rarely change)."""
        cached = self._context_cache
        if cached and cached[0] == self._version:
            return cached[1]
        quads = [q for g in graphs for q in self.graph_quads(g)]
        self._context_cache = (self._version, quads)
        return quads

    def describe(self, nodes: Iterable[ox.NamedNode]) -> list[ox.Quad]:
        """Every statement about `nodes` in the dataset's named graphs (not the merge, not the
        backend's system graphs), with its graph."""
        found: list[ox.Quad] = []
        nodes = sorted(nodes, key=lambda n: n.value)
        merge = self.merge_graph.value if self.merge_graph is not None else None
        for start in range(0, len(nodes), 200):
            values = " ".join(str(n) for n in nodes[start:start + 200])
            rows = self._select(
                f"SELECT ?s ?p ?o ?g WHERE {{ VALUES ?s {{ {values} }} GRAPH ?g {{ ?s ?p ?o }} }}",
                dataset=False)
            for r in rows:
                graph = r["g"].value
                if graph != merge and not graph.startswith(SYSTEM_GRAPHS):
                    found.append(ox.Quad(r["s"], r["p"], r["o"], r["g"]))
        return found

    def types_of(self, nodes: Iterable[ox.NamedNode], skip: set[str]) -> list[ox.Quad]:
        """`rdf:type` statements about `nodes` from named graphs not in `skip`."""
        found: list[ox.Quad] = []
        nodes = sorted(nodes, key=lambda n: n.value)
        for start in range(0, len(nodes), 200):
            values = " ".join(str(n) for n in nodes[start:start + 200])
            rows = self._select(
                f"SELECT ?s ?t ?g WHERE {{ VALUES ?s {{ {values} }} GRAPH ?g {{ ?s a ?t }} }}",
                dataset=False)
            for r in rows:
                if r["g"].value not in skip and not r["g"].value.startswith(SYSTEM_GRAPHS):
                    found.append(ox.Quad(r["s"], RDF_TYPE, r["t"], TYPES_GRAPH))
        return found

    # --- writes -----------------------------------------------------------------------------

    def transact(
        self, text: str, *, base_iri: str, shapes: rdflib.Graph | None,
        context_graphs: Iterable[GraphName] = (), probe: GraphName | None = None,
        must_exist: bool = False,
    ) -> WriteOutcome:
        from kg.store import remote_writes

        with remote_writes.writer(self):  # waits at most KG_WRITE_WAIT, then WritesBusy (503)
            return remote_writes.transact(
                self, text, base_iri=base_iri, shapes=shapes,
                context_graphs=list(context_graphs), probe=probe, must_exist=must_exist,
                scope=update_scope(text, base_iri))


XSD_INTEGER = ox.NamedNode("http://www.w3.org/2001/XMLSchema#integer")
RDF_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
TYPES_GRAPH = ox.NamedNode("urn:kg:remote-types")


class RemoteRunner:
    """Protocol queries over HTTP, within the time limit; each answer is parsed as it arrives and
    re-serialised locally (kg.store.remote_results), in a thread of its own, so a large SELECT
    streams and the caps hold as over the embedded store."""

    def __init__(self, store: RemoteStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.timeouts = 0
        self.client: httpx.Client | None = None
        self._threads = ThreadPoolExecutor(max_workers=QUERY_THREADS,
                                           thread_name_prefix="kg-remote-query")
        self._spool_dir = Path(tempfile.mkdtemp(prefix="kg-remote-spool-"))
        self._seq = itertools.count()
        self._running: set[threading.Event] = set()  # the cancel flags of running queries

    async def start(self) -> None:
        self.client = httpx.Client(auth=self.store.auth, limits=httpx.Limits(
            max_connections=QUERY_THREADS, max_keepalive_connections=QUERY_THREADS))
        await asyncio.to_thread(self.store.start)

    async def refresh(self) -> None:
        """Nothing to do: the backend has the write already."""

    async def close(self) -> None:
        for cancel in list(self._running):  # running queries stop at their next read
            cancel.set()
        self._threads.shutdown(wait=False, cancel_futures=True)
        if self.client is not None:
            self.client.close()
        shutil.rmtree(self._spool_dir, ignore_errors=True)

    async def execute(self, job: QueryJob) -> QueryResult:
        """A complete result, or (a large SELECT in JSON, CSV or TSV, when KG_STREAM_RESULTS) a
        StreamedResult followed while the backend's answer is still being converted."""
        started = time.monotonic()
        deadline = started + self.settings.query_timeout
        assert self.client is not None
        form = sparql_text.query_form(job.query)
        dataset = await asyncio.to_thread(
            self.store.dataset_params, job.default_graph, job.named_graphs, job.query)
        sent = sparql_text.with_base(job.query, self.settings.base_iri)
        data = [("query", sent), *dataset]
        if (self.settings.union_default_graph and self.store.dialect == "oxigraph"
                and job.default_graph is None and job.named_graphs is None):
            data.append(("union-default-graph", ""))
        accept = RESULTS_JSON if form in ("SELECT", "ASK") else GRAPH_ACCEPT
        stream = (self.settings.stream_results and form == "SELECT"
                  and job.format in STREAM_FORMATS)
        path = str(self._spool_dir / f"q{next(self._seq)}")
        loop = asyncio.get_running_loop()
        spilled: asyncio.Future[None] = loop.create_future()
        cancel = threading.Event()
        self._running.add(cancel)

        def notify() -> None:  # in the query's thread
            loop.call_soon_threadsafe(lambda: spilled.done() or spilled.set_result(None))

        work = loop.run_in_executor(self._threads, functools.partial(
            remote_results.produce, self.client, self.store.urls.query, job.query,
            form_data(data), accept, form, job.format, self.settings, path, deadline, cancel,
            notify if stream else None, self.store.dialect == "virtuoso" and
            accept == RESULTS_JSON, len(sent) - len(job.query)))

        def done(future: asyncio.Future[Any]) -> None:
            self._running.discard(cancel)
            if not future.cancelled():
                future.exception()  # seen here when no one awaits it any more (client gone)

        work.add_done_callback(done)
        try:
            await asyncio.wait((work, spilled), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the client left before the status was known
            cancel.set()
            raise
        if not work.done():  # the first bytes are in the file: stream it while it grows
            final = loop.create_task(self._follow(work, cancel))
            # cancelled (client gone, HEAD) even before it ran: stop reading the backend
            final.add_done_callback(lambda task: task.cancelled() and cancel.set())
            return StreamedResult(
                format=BY_KEY[job.format], rows=0, size=0, path=path,
                elapsed=time.monotonic() - started, final=final)
        spilled.cancel()
        try:
            fmt, rows, meta = work.result()
        except QueryTimeout:
            self.timeouts += 1
            raise
        return QueryResult(format=BY_KEY[fmt], rows=rows, size=meta["size"],
                           inline=meta["inline"], path=meta["path"],
                           elapsed=time.monotonic() - started)

    async def _follow(self, work: asyncio.Future[tuple[str, int, dict[str, Any]]],
                      cancel: threading.Event) -> dict[str, Any]:
        """The end of a streamed result: its final size, or the typed error that cut it."""
        try:
            _, rows, meta = await work
        except asyncio.CancelledError:  # the client left, or HEAD: stop reading the backend
            cancel.set()
            raise
        except QueryTimeout:
            self.timeouts += 1
            raise
        return {"rows": rows, "size": meta["size"]}
