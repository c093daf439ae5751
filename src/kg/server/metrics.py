"""Prometheus metrics shared by every route (S1/S2 import and increment these).

One process-wide registry of our own, so tests that build several apps in one
process never hit "Duplicated timeseries" and /metrics shows only kg series
plus the standard process/platform collectors.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

REQUESTS = Counter(
    "kg_http_requests",
    "HTTP requests handled, by method, route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "kg_http_request_duration_seconds",
    "Time to the end of the response body, by route template.",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)
QUERY_TIMEOUTS = Counter(
    "kg_query_timeouts",
    "SPARQL queries stopped because they exceeded the time limit.",
    registry=REGISTRY,
)
REJECTED_QUERIES = Counter(
    "kg_rejected_queries",
    "SPARQL requests refused before execution, by reason (syntax, service, load, size, ...).",
    ["reason"],
    registry=REGISTRY,
)
UPDATES = Counter(
    "kg_updates",
    "SPARQL updates and Graph Store writes, by outcome (committed, invalid, forbidden, ...).",
    ["outcome"],
    registry=REGISTRY,
)
CACHE_LOOKUPS = Counter(
    "kg_sparql_cache_lookups",
    "/sparql response cache lookups, by result (hit, miss, not_modified).",
    ["result"],
    registry=REGISTRY,
)
STREAM_ABORTS = Counter(
    "kg_stream_aborts",
    "Streamed SPARQL results cut short after the first byte (time limit, row cap, crash).",
    registry=REGISTRY,
)
