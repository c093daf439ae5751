"""Single requests measured from Python: validity probes, per-query latency, and streaming.

wrk measures throughput; these measure what wrk cannot: that each query kind really answers
(status and size, before its numbers count), each competency query's own latency, and the time
to first byte and the server's memory growth while a 1M-row SELECT streams.
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import pyoxigraph as ox

from bench.servers import Server, process_rss


@dataclass
class Answer:
    status: int
    seconds: float
    ttfb: float
    bytes: int
    content_type: str
    error: str = ""
    body: bytes = b""


def get(server: Server, query: str, accept: str, timeout: float = 60.0,
        read_limit: int | None = None, keep_body: bool = False) -> Answer:
    host, port = server.host_port
    path = server.path + "?" + urllib.parse.urlencode({"query": query})
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    start = time.perf_counter()
    try:
        conn.request("GET", path, headers={"Accept": accept})
        response = conn.getresponse()
        first = response.read(1)
        ttfb = time.perf_counter() - start
        size = len(first)
        kept = [first] if keep_body else []
        while chunk := response.read(1 << 16):
            size += len(chunk)
            if keep_body:
                kept.append(chunk)
            if read_limit is not None and size >= read_limit:
                break
        return Answer(response.status, time.perf_counter() - start, ttfb, size,
                      response.getheader("Content-Type", ""), body=b"".join(kept))
    except (OSError, http.client.HTTPException) as exc:
        elapsed = time.perf_counter() - start
        return Answer(0, elapsed, elapsed, 0, "", f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()


def count_results(answer: Answer) -> int | None:
    """Solutions (JSON results) or triples (an RDF body); None when the body cannot be read."""
    media = answer.content_type.split(";")[0].strip().lower()
    try:
        if media.endswith("json"):
            data = json.loads(answer.body)
            if "boolean" in data:
                return int(bool(data["boolean"]))
            return len(data["results"]["bindings"])
        fmt = ox.RdfFormat.from_media_type(media)
        if fmt is None:
            return None
        return sum(1 for _ in ox.parse(answer.body, format=fmt))
    except (ValueError, KeyError, TypeError, SyntaxError):
        return None


def latency(server: Server, make_query: Callable[[int], str], accept: str, runs: int = 3,
            timeout: float = 30.0) -> dict[str, object]:
    """Median wall time of `runs` sequential requests, each a distinct text (after a first one).

    `make_query(i)` gives the i-th text, so no response cache serves a repeat.
    """
    first = get(server, make_query(0), accept, timeout)
    if first.status != 200:
        return {"status": first.status, "median_ms": None, "bytes": first.bytes,
                "error": first.error or f"HTTP {first.status}"}
    if first.seconds > timeout / 4:
        runs = 0  # too slow to repeat: report the one measurement
    times = [get(server, make_query(i), accept, timeout).seconds for i in range(1, runs + 1)]
    return {"status": 200, "median_ms": round(statistics.median(times or [first.seconds]) * 1e3, 2),
            "bytes": first.bytes, "error": ""}


class RssSampler:
    """Samples a server's resident memory (with its children) in the background: the tree's
    total, and each process's own baseline and peak (which process grew)."""

    def __init__(self, pid: int | Callable[[], int], interval: float = 0.05) -> None:
        self.pid = pid if callable(pid) else (lambda: pid)  # a callable follows restarts
        self.interval = interval
        self.processes: dict[int, list[int]] = {}  # pid -> [baseline, peak]
        self.baseline = self._sample()
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        sizes = process_rss(self.pid())
        for pid, size in sizes.items():
            seen = self.processes.setdefault(pid, [size, size])
            seen[1] = max(seen[1], size)
        return sum(sizes.values())

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())

    def growth_by_process(self) -> dict[str, float]:
        """MB each process grew by (its peak over its first sample), largest first, 1 MB or
        more; the server's own process is named `server`, its children `child <pid>`."""
        root = self.pid()
        grown = {("server" if pid == root else f"child {pid}"): round((peak - base) / 2**20, 1)
                 for pid, (base, peak) in self.processes.items()}
        return dict(sorted(((k, v) for k, v in grown.items() if v >= 1.0),
                           key=lambda item: -item[1]))


@dataclass
class StreamResult:
    rows_requested: int
    status: int
    ttfb_ms: float
    total_s: float
    bytes: int
    rss_before_mb: float
    rss_peak_mb: float
    rss_growth_mb: float
    error: str = ""
    rss_growth_by_process_mb: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def stream_rows(server: Server, rows: int, accept: str = "application/sparql-results+json",
                timeout: float = 300.0) -> StreamResult:
    """A SELECT of `rows` rows: time to first byte, total time, server RSS growth while it runs."""
    query = f"SELECT ?s ?p ?o WHERE {{ ?s ?p ?o }} LIMIT {rows}"
    with RssSampler(server.pid) as sampler:
        answer = get(server, query, accept, timeout)
    mb = 1024 * 1024
    return StreamResult(
        rows_requested=rows,
        status=answer.status,
        ttfb_ms=round(answer.ttfb * 1000, 1),
        total_s=round(answer.seconds, 2),
        bytes=answer.bytes,
        rss_before_mb=round(sampler.baseline / mb, 1),
        rss_peak_mb=round(sampler.peak / mb, 1),
        rss_growth_mb=round((sampler.peak - sampler.baseline) / mb, 1),
        error=answer.error,
        rss_growth_by_process_mb=sampler.growth_by_process(),
    )


def conditional(server: Server, query: str, accept: str,
                timeout: float = 30.0) -> dict[str, object]:
    """Does a repeated GET carry an ETag and Cache-Control, and does If-None-Match give 304?"""
    host, port = server.host_port
    path = server.path + "?" + urllib.parse.urlencode({"query": query})

    def once(headers: dict[str, str]) -> tuple[int, dict[str, str]]:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.request("GET", path, headers={"Accept": accept, **headers})
            response = conn.getresponse()
            response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()}
        finally:
            conn.close()

    try:
        status, headers = once({})
        etag = headers.get("etag")
        revalidated = once({"If-None-Match": etag})[0] if etag else None
    except (OSError, http.client.HTTPException) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"status": status, "etag": etag, "cache_control": headers.get("cache-control"),
            "if_none_match_status": revalidated}
