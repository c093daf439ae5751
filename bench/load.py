"""A bounded load test on loopback: concurrent readers, one writer and one slow query (issue 7).

    python -m bench.load                      # 3 minutes on a copy of var/store (or the sample)
    python -m bench.load --duration 30 --readers 4 --out var/bench/load.json
    python -m bench.load --url http://127.0.0.1:8000 --pid 1234 --token T   # a running server

What runs, for `--duration` seconds, with asyncio + httpx (no wrk/locust needed):
- `--readers` tasks loop over fast reads: small SELECTs, an ASK, a COUNT over one graph, and a
  linked-data lookup (/id/... → 303);
- one writer: INSERT DATA of a new statement every `--write-interval` s, and DELETE DATA of the
  one ten writes back, so the dataset stays the same size (every write is a SHACL-checked
  commit followed by a snapshot refresh of the query workers). `--write-target named` (the
  default, what a client adding statements does) writes to the named graph
  <base>graph/load-test; `--write-target default` writes to the default graph, which the
  server rehearses on everything that graph holds (the merge of all named graphs);
- one slow client: a cartesian-product COUNT that runs until the server's time limit
  (KG_QUERY_TIMEOUT, 5 s when this script starts the server) stops it, over and over.

Recorded: every request's class, status and latency; errors (a transport error, or a 5xx other
than the slow query's documented 503 time-out); p50/p95/p99/max per class; the RSS of the whole
server process tree once a second (first-minute vs last-minute medians: "flat"), and of the
server process alone (its workers are replaced when a query times out); and how many
fast answers arrived while a slow query was running, with the longest gap between two of them;
and the longest gap between two fast answers over the whole run (an event-loop stall shows
there, whatever its cause).
Loopback only; the loops stop by themselves at the deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
SLOW_QUERY = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"
FAST_QUERIES = [
    "SELECT ?s ?p ?o WHERE { ?s ?p ?o } LIMIT 10",
    "ASK { ?s a ?c }",
    "SELECT ?c (COUNT(?s) AS ?n) WHERE { ?s a ?c } GROUP BY ?c ORDER BY DESC(?n) LIMIT 5",
    "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }",
]
RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"


@dataclass
class Sample:
    kind: str  # read | write | slow
    start: float
    latency: float
    status: int  # 0: transport error
    error: str | None = None


@dataclass
class Report:
    duration_s: float
    readers: int
    requests: dict[str, int]
    errors: int
    error_examples: list[str]
    statuses: dict[str, dict[str, int]]
    latency_ms: dict[str, dict[str, float]]
    slow_queries: int
    slow_timeouts: int
    fast_answers_during_slow: int
    max_fast_gap_during_slow_s: float
    slow_runs_without_fast_answers: int  # a slow query that stalled the others would show here
    max_fast_gap_s: float = 0.0  # over the whole run: an event-loop stall shows here
    write_target: str = "named"
    rss_mb: list[tuple[float, float]] = field(default_factory=list)
    rss_first_minute_mb: float = 0.0
    rss_last_minute_mb: float = 0.0
    rss_growth_pct: float = 0.0
    # the server process alone (without its query workers, replaced when a query times out,
    # and the rehearsal process, which make the tree's figure noisy)
    server_rss_first_minute_mb: float = 0.0
    server_rss_last_minute_mb: float = 0.0

    def summary(self) -> str:
        lat = self.latency_ms
        lines = [
            f"{self.duration_s:.0f} s, {self.readers} readers + 1 writer ({self.write_target} "
            f"graph) + 1 slow client: "
            f"{sum(self.requests.values())} requests {self.requests}",
            f"errors: {self.errors}  statuses: {self.statuses}",
        ]
        for kind, stats in lat.items():
            shown = "  ".join(f"{k} {v:.1f} ms" for k, v in stats.items() if k != "n")
            lines.append(f"{kind:5s} n {stats.get('n', 0):.0f}  {shown}")
        lines.append(
            f"slow queries: {self.slow_queries} ({self.slow_timeouts} stopped by the time "
            f"limit); fast answers while one ran: {self.fast_answers_during_slow}, longest gap "
            f"{self.max_fast_gap_during_slow_s:.2f} s; slow runs with no fast answer: "
            f"{self.slow_runs_without_fast_answers}; longest gap between fast answers over "
            f"the run: {self.max_fast_gap_s:.2f} s"
        )
        lines.append(
            f"RSS of the server tree: first minute {self.rss_first_minute_mb:.0f} MB, last "
            f"minute {self.rss_last_minute_mb:.0f} MB ({self.rss_growth_pct:+.1f} %); the "
            f"server process alone {self.server_rss_first_minute_mb:.0f} → "
            f"{self.server_rss_last_minute_mb:.0f} MB"
        )
        return "\n".join(lines)


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(v * 1000 for v in values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99), "max": ordered[-1],
            "n": float(len(ordered))}


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and its descendants (the query workers)."""
    return tree_and_own_rss(pid)[0]


def tree_and_own_rss(pid: int) -> tuple[int, int]:
    """Resident bytes of a process with its descendants, and of the process alone."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
        own = root.memory_info().rss
    except psutil.NoSuchProcess:
        return 0, 0
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += proc.memory_info().rss
    return total, own


class Load:
    """The clients of one run and what they recorded."""

    def __init__(self, url: str, token: str | None, base_iri: str, deadline: float,
                 write_target: str = "named") -> None:
        self.url = url
        self.token = token
        self.base_iri = base_iri
        self.deadline = deadline
        self.write_target = write_target
        self.samples: list[Sample] = []
        self.slow_windows: list[tuple[float, float]] = []
        self.entities: list[str] = []

    def done(self) -> bool:
        return time.monotonic() >= self.deadline

    async def _timed(self, kind: str, client: httpx.AsyncClient, method: str, path: str,
                     **kwargs: object) -> httpx.Response | None:
        start = time.monotonic()
        try:
            response = await client.request(method, path, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            self.samples.append(Sample(kind, start, time.monotonic() - start, 0, repr(exc)))
            return None
        latency = time.monotonic() - start
        error = None
        if response.status_code >= 500 and not _is_time_limit(kind, response):
            error = f"{method} {path} → {response.status_code}: {response.text[:200]}"
        elif kind == "write" and response.status_code != 204:
            error = f"write → {response.status_code}: {response.text[:200]}"
        elif kind == "read" and response.status_code not in (200, 303):
            error = f"{method} {path} → {response.status_code}: {response.text[:200]}"
        self.samples.append(Sample(kind, start, latency, response.status_code, error))
        return response

    async def reader(self, seed: int) -> None:
        rng = random.Random(seed)
        async with httpx.AsyncClient(base_url=self.url, timeout=120) as client:
            while not self.done():
                if self.entities and rng.random() < 0.2:
                    entity = rng.choice(self.entities)
                    await self._timed("read", client, "GET", "/id/" + entity[
                        len(self.base_iri) + 3:], headers={"Accept": "text/turtle"})
                else:
                    await self._timed("read", client, "GET", "/sparql",
                                      params={"query": rng.choice(FAST_QUERIES)})

    async def writer(self, interval: float) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        graph = f"{self.base_iri}graph/load-test"

        def data(triple: str) -> str:
            if self.write_target == "default":
                return f"{{ {triple} }}"
            return f"{{ GRAPH <{graph}> {{ {triple} }} }}"

        async with httpx.AsyncClient(base_url=self.url, timeout=120, headers=headers) as client:
            i = 0
            while not self.done():
                triple = f'<{self.base_iri}id/load/{i}> <{RDFS_LABEL}> "load {i}"'
                await self._timed("write", client, "POST", "/sparql", data={
                    "update": f"INSERT DATA {data(triple)}"})
                if i >= 10:
                    old = f'<{self.base_iri}id/load/{i - 10}> <{RDFS_LABEL}> "load {i - 10}"'
                    await self._timed("write", client, "POST", "/sparql", data={
                        "update": f"DELETE DATA {data(old)}"})
                i += 1
                await asyncio.sleep(interval)

    async def slow(self, pause: float) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=300) as client:
            while not self.done():
                start = time.monotonic()
                await self._timed("slow", client, "POST", "/sparql", data={"query": SLOW_QUERY})
                self.slow_windows.append((start, time.monotonic()))
                await asyncio.sleep(pause)

    async def discover(self) -> None:
        query = (f'SELECT DISTINCT ?s WHERE {{ ?s a ?c FILTER(STRSTARTS(STR(?s), '
                 f'"{self.base_iri}id/")) }} LIMIT 50')
        async with httpx.AsyncClient(base_url=self.url, timeout=60) as client:
            response = await client.get("/sparql", params={"query": query},
                                        headers={"Accept": "application/sparql-results+json"})
            response.raise_for_status()
            self.entities = [b["s"]["value"] for b in response.json()["results"]["bindings"]]


def _is_time_limit(kind: str, response: httpx.Response) -> bool:
    if kind != "slow" or response.status_code != 503:
        return False
    try:
        return response.json().get("title") == "Query timed out"
    except ValueError:
        return False


async def _sample_rss(pid: int | None, finished: asyncio.Event,
                      out: list[tuple[float, float]], own: list[tuple[float, float]],
                      started: float) -> None:
    while pid is not None and not finished.is_set():
        tree, alone = tree_and_own_rss(pid)
        at = round(time.monotonic() - started, 1)
        out.append((at, tree / 2**20))
        own.append((at, alone / 2**20))
        await asyncio.sleep(1.0)


async def run_load(url: str, *, duration: float, readers: int = 8, token: str | None = None,
                   base_iri: str = "http://localhost:8000/", pid: int | None = None,
                   write_interval: float = 0.25, slow_pause: float = 0.5,
                   write_target: str = "named") -> Report:
    """Drive the server at `url` for `duration` seconds and report (see the module doc)."""
    started = time.monotonic()
    load = Load(url, token, base_iri, started + duration, write_target)
    await load.discover()
    rss: list[tuple[float, float]] = []
    own: list[tuple[float, float]] = []
    finished = asyncio.Event()
    sampler = asyncio.create_task(_sample_rss(pid, finished, rss, own, started))
    clients = [load.reader(seed) for seed in range(readers)]
    if token:
        clients.append(load.writer(write_interval))
    clients.append(load.slow(slow_pause))
    await asyncio.gather(*clients)
    finished.set()
    await sampler
    return _report(load, readers, time.monotonic() - started, rss, own)


def _medians(series: list[tuple[float, float]], window: float,
             elapsed: float) -> tuple[float, float]:
    """Medians of the first and of the last `window` seconds."""
    end = series[-1][0] if series else elapsed
    first = [m for t, m in series if t <= window]
    last = [m for t, m in series if t >= end - window]
    return (statistics.median(first) if first else 0.0,
            statistics.median(last) if last else 0.0)


def _report(load: Load, readers: int, elapsed: float, rss: list[tuple[float, float]],
            own: list[tuple[float, float]]) -> Report:
    by_kind: dict[str, list[Sample]] = {}
    for s in load.samples:
        by_kind.setdefault(s.kind, []).append(s)
    errors = [s for s in load.samples if s.error]
    fast_done = sorted(s.start + s.latency for s in by_kind.get("read", []))
    during, max_gap, starved = 0, 0.0, 0
    last_fast = fast_done[-1] if fast_done else 0.0
    for start, end in load.slow_windows:
        # the last slow run outlasts the readers (they stop at the deadline): clip it there
        end = min(end, last_fast)
        if end <= start:
            continue
        inside = [t for t in fast_done if start <= t <= end]
        during += len(inside)
        starved += not inside
        points = [start, *inside, end]
        max_gap = max(max_gap, *(b - a for a, b in itertools.pairwise(points)))
    overall_gap = max((b - a for a, b in itertools.pairwise(fast_done)), default=0.0)
    window = min(60.0, elapsed / 3)
    first_mb, last_mb = _medians(rss, window, elapsed)
    own_first, own_last = _medians(own, window, elapsed)
    slow = by_kind.get("slow", [])
    return Report(
        duration_s=elapsed,
        readers=readers,
        requests={k: len(v) for k, v in by_kind.items()},
        errors=len(errors),
        error_examples=[s.error or "" for s in errors[:5]],
        statuses={k: _count(str(s.status) for s in v) for k, v in by_kind.items()},
        latency_ms={k: _percentiles([s.latency for s in v if not s.error])
                    for k, v in by_kind.items()},
        slow_queries=len(slow),
        slow_timeouts=sum(1 for s in slow if s.status == 503),
        fast_answers_during_slow=during,
        max_fast_gap_during_slow_s=max_gap,
        slow_runs_without_fast_answers=starved,
        max_fast_gap_s=overall_gap,
        write_target=load.write_target,
        rss_mb=rss,
        rss_first_minute_mb=first_mb,
        rss_last_minute_mb=last_mb,
        rss_growth_pct=(last_mb / first_mb - 1) * 100 if first_mb else 0.0,
        server_rss_first_minute_mb=own_first,
        server_rss_last_minute_mb=own_last,
    )


def _count(values: Iterator[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return counts


# --- a server of our own, when no --url is given ----------------------------------------------


@contextlib.contextmanager
def own_server(store: Path | None, token: str, query_timeout: float,
               workers: int) -> Iterator[tuple[str, int, str]]:
    """uvicorn on a free loopback port over a *copy* of `store` (or of the test sample)."""
    scratch = Path(tempfile.mkdtemp(prefix="kg-load-"))
    base_iri = "http://localhost:8000/"
    copy = scratch / "store"
    if store is not None and store.exists():
        shutil.copytree(store.resolve(), copy)
    else:
        sys.path.insert(0, str(ROOT))
        from tests.server_process import make_sample_store

        make_sample_store(copy, base_iri)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "KG_STORE_PATH": str(copy), "KG_BASE_IRI": base_iri,
           "KG_WRITE_TOKEN": token, "KG_QUERY_TIMEOUT": str(query_timeout),
           "KG_QUERY_WORKERS": str(workers), "KG_DUMPS_DIR": str(scratch / "dumps"),
           "KG_LOG_LEVEL": "warning"}
    log = (scratch / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "kg.server.app:create_app",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((scratch / "server.log").read_text())
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url, proc.pid, base_iri
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=180.0, help="seconds (default 180)")
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--write-interval", type=float, default=0.25)
    parser.add_argument("--write-target", choices=("named", "default"), default="named",
                        help="the graph the writer writes to (default: a named graph)")
    parser.add_argument("--url", help="a running server (default: start one on a copy)")
    parser.add_argument("--pid", type=int, help="its process id, for RSS")
    parser.add_argument("--token", default=os.environ.get("KG_WRITE_TOKEN"))
    parser.add_argument("--base-iri", default="http://localhost:8000/")
    parser.add_argument("--store", type=Path, default=ROOT / "var" / "store",
                        help="store to copy for our own server (default var/store, else sample)")
    parser.add_argument("--query-timeout", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, help="write the report as JSON here")
    args = parser.parse_args()

    def go(url: str, pid: int | None, token: str | None, base: str) -> Report:
        return asyncio.run(run_load(url, duration=args.duration, readers=args.readers,
                                    token=token, base_iri=base, pid=pid,
                                    write_interval=args.write_interval,
                                    write_target=args.write_target))

    if args.url:
        report = go(args.url, args.pid, args.token, args.base_iri)
    else:
        token = args.token or "load-test-token"
        with own_server(args.store, token, args.query_timeout, args.workers) as (url, pid, base):
            report = go(url, pid, token, base)
    print(report.summary())
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(asdict(report), indent=1))
    sys.exit(1 if report.errors else 0)


if __name__ == "__main__":
    main()
