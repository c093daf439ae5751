"""Repeated GET /sparql requests answered from the response cache before any framework layer.

Why: a notebook or a workbench page repeats the same queries, and the cost of a cached answer
was almost all framework (FastAPI's middleware stack, routing, request parsing, negotiation,
the guard): measured at ~60 µs of the ~75 µs a cache hit took. This lane keys on the raw
request — path, query string bytes and Accept header — and replays the exact status, headers
and body the full path sent for it, as long as the response cache still holds that entry for
the store's current version. So it never answers anything the full path would not: the entry,
its ETag and its invalidation (every write changes the version) are the cache's own
(kg.server.cache), and a request the lane has not seen, or any request with an Origin,
If-None-Match or a body, goes down the normal stack. Requests are still counted and logged
(kg.server.access.record) and counted as cache hits.

A request is remembered when the full path answered it from the cache, not when it first
computed it: most cold answers are never asked for again, and remembering each cost time and
three objects the garbage collector kept rescanning (`python -m bench.handling`,
bench/NOTES.md). So the lane replays from the third identical request on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from starlette.types import Receive, Scope, Send

from kg.server import access, metrics
from kg.server.cache import BODY, ETAG, CachedResponse, Key, ResponseCache

PATHS = frozenset({"/sparql", "/sparql/"})
# headers that can change the answer beyond what the cache key holds: full path
_NOT_REPLAYED = frozenset({b"origin", b"if-none-match", b"content-length", b"transfer-encoding"})
# Replays remembered, by number and by the bytes of their keys and headers; past either bound
# the map is cleared (cheap and rare; replays come back on the next full answer). A replay
# holds the cache key, not the entry, so a body the cache evicted is freed at once. Why both:
# holding entries, 8,192 replays could keep 2 GB of 256 KB bodies alive past the cache's bound,
# and a query string may be ~64 KB (uvicorn's request line limit), its query text as much
# again: ~1 GB of keys.
MAX_ENTRIES = 8192
MAX_BYTES = 8 * 1024 * 1024
REPLAY_OVERHEAD = 512  # bytes counted per replay besides its key and header bytes
_HIT = metrics.CACHE_LOOKUPS.labels(result="hit")

RawKey = tuple[str, bytes, bytes | None]


@dataclass(frozen=True, slots=True)
class _Replay:
    key: Key
    version: int
    etag: str  # the entry's, and its body's length: the headers below hold for it
    length: int
    headers: list[tuple[bytes, bytes]]
    route: Any  # the route object, for the access log's route label
    cost: int  # bytes counted against MAX_BYTES


class HitLane:
    """Maps raw GET requests to response-cache entries and replays them."""

    def __init__(self) -> None:
        self._replays: dict[RawKey, _Replay] = {}
        self.size = 0  # the replays' costs

    @staticmethod
    def raw_key(scope: Scope) -> RawKey | None:
        """The request's raw key, or None when the request must take the full path."""
        if (scope["type"] != "http" or scope["method"] != "GET"
                or scope["path"] not in PATHS):
            return None
        accept = None
        for name, value in scope["headers"]:
            if name in _NOT_REPLAYED:
                return None
            if name == b"accept":
                accept = value if accept is None else accept + b"," + value
        return scope["path"], scope["query_string"], accept

    def remember(self, scope: Scope, key: Key, entry: CachedResponse, version: int,
                 headers: list[tuple[bytes, bytes]]) -> None:
        """After the full path answered `scope` from the cache with `entry` (200, complete):
        replay it next."""
        raw = self.raw_key(scope)
        if raw is None:
            return
        cost = (REPLAY_OVERHEAD + len(raw[1]) + len(raw[2] or b"") + len(key[0])
                + sum(len(name) + len(value) for name, value in headers))
        previous = self._replays.pop(raw, None)
        if previous is not None:
            self.size -= previous.cost
        if len(self._replays) >= MAX_ENTRIES or self.size + cost > MAX_BYTES:
            self._replays.clear()
            self.size = 0
        if cost > MAX_BYTES:
            return
        self._replays[raw] = _Replay(key, version, entry[ETAG], len(entry[BODY]), list(headers),
                                     scope.get("route"), cost)
        self.size += cost

    def __len__(self) -> int:
        return len(self._replays)

    def lookup(self, scope: Scope, cache: ResponseCache | None,
               version: int) -> tuple[_Replay, bytes] | None:
        """The replay and its body for `scope` (counted as a cache hit), or None when the
        request must take the full path. Synchronous: kg.server.protocol_lane calls it too."""
        if cache is None or not self._replays:
            return None
        raw = self.raw_key(scope)
        if raw is None:
            return None
        replay = self._replays.get(raw)
        if replay is None:
            return None
        body = cache.replay(replay.key, version, replay.etag, replay.length) if (
            replay.version == version) else None
        if body is None:
            self.size -= self._replays.pop(raw).cost
            return None
        _HIT.inc()
        scope["route"] = replay.route
        return replay, body

    async def serve(self, scope: Scope, cache: ResponseCache | None, version: int,
                    send: Send) -> bool:
        """Answer from a replay; False when the request must take the full path."""
        start = time.perf_counter()
        found = self.lookup(scope, cache, version)
        if found is None:
            return False
        replay, body = found
        await send({"type": "http.response.start", "status": 200, "headers": replay.headers})
        await send({"type": "http.response.body", "body": body})
        access.record(scope, 200, len(body), time.perf_counter() - start)
        return True


async def dispatch(lane: HitLane, state: Any, scope: Scope, receive: Receive,
                   send: Send) -> bool:
    """The app's first step for every request (kg.server.app.KgApp)."""
    if state is None:
        return False
    return await lane.serve(scope, state.extras.get("sparql_cache"), state.store.version, send)
