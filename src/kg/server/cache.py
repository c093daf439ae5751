"""The /sparql response cache: complete small results, keyed on what determines their bytes.

Why: notebooks and workbench pages repeat the same queries; a repeated query should cost a dict
lookup, not a worker round trip. What determines a response, and so the key: the exact query
text, the protocol dataset (default-graph-uri, named-graph-uri), the negotiated format, and the
store's version (`store.version`, changed by every committed write, also for a remote store).

- **Invalidation** is by version: an entry is only ever served for the version it was computed
  on, and the first lookup that sees a new version drops every entry (they can never match).
- **Memory** is bounded: entries are evicted once the bodies (plus keys and a fixed overhead)
  exceed `max_bytes` (KG_CACHE_BYTES, default 64 MB); a body larger than `entry_bytes`
  (KG_CACHE_ENTRY_BYTES, default 256 KB) is never stored. Spooled, streamed and failed results
  are never stored (only results that came back inline, ≤ 256 KB).
- **Eviction** is a segmented LRU (the scheme of memcached's LRU and Caffeine's main space): a
  new entry is on probation; a hit moves it to the protected segment (at most
  `PROTECTED_SHARE` of `max_bytes`; its least recently used entries go back on probation when
  it overflows); room is made by evicting probation's least recently used entries, never the
  protected ones: a new answer that would need that is not kept. Why: a plain LRU let a flood
  of one-off queries (a crawler, a notebook's loop) push out the answers a workbench repeats;
  here one-off answers only displace each other (measured in the benchmark: cold rows had
  emptied the warm rows' answers, bench/NOTES.md). An entry larger than the protected share
  stays on probation.
- **ETag** is strong and derived from the key, the version and a fingerprint of the settings
  that shape results, so `If-None-Match` is answered 304 without running (or even caching) the
  query; a 200 for the same key and version would carry the same result. (SPARQL leaves the
  order of unordered solutions open; one worker snapshot evaluates a query deterministically.)
- **Entries are plain tuples** (`CachedResponse`: body, content type, ETag, cost), not objects.
  Why: the cyclic garbage collector stops tracking a tuple of bytes and strings after its first
  pass, while every object stays tracked; with one object per cold answer, the growing cache
  made Python's full collections frequent and long. With this and the hit lane's change (it
  remembers answers asked for again, not every answer), kg's own handling of a cold GET went
  from 19.0–25.0 to 13.2–15.6 µs (`python -m bench.handling`, two sets of interleaved runs;
  bench/NOTES.md).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence

Key = tuple[str, tuple[str, ...] | None, tuple[str, ...] | None, str]
ENTRY_OVERHEAD = 256  # bytes counted per entry besides body and key strings
PROTECTED_SHARE = 0.8  # of max_bytes, at most, for entries hit since they were stored


CachedResponse = tuple[bytes, str, str, int]  # body, content type, ETag, cost (bytes counted)
BODY, CONTENT_TYPE, ETAG, COST = range(4)


class ResponseCache:
    """A segmented LRU of complete responses for one store version at a time."""

    def __init__(self, max_bytes: int, entry_bytes: int, fingerprint: str = "") -> None:
        self.max_bytes = max_bytes
        self.entry_bytes = min(entry_bytes, max_bytes)
        self.protected_bytes = int(max_bytes * PROTECTED_SHARE)
        self.fingerprint = fingerprint
        self._hasher = hashlib.blake2b(fingerprint.encode("utf-8", "surrogatepass") + b"\0",
                                       digest_size=16)
        self.size = 0  # both segments
        self.protected_size = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self._version: int | None = None
        self._probation: OrderedDict[Key, CachedResponse] = OrderedDict()
        self._protected: OrderedDict[Key, CachedResponse] = OrderedDict()

    @staticmethod
    def key(
        query: str, default_graph: Sequence[str] | None, named_graphs: Sequence[str] | None,
        fmt: str,
    ) -> Key:
        return (
            query,
            tuple(default_graph) if default_graph is not None else None,
            tuple(named_graphs) if named_graphs is not None else None,
            fmt,
        )

    def etag(self, key: Key, version: int) -> str:
        # the fingerprint is hashed once (a copy of that state per ETag), and the query text
        # is encoded, not repr()'d: 1.9 -> 0.6 µs per cold answer. Injective: NUL never
        # occurs in a repr or a format key, and the query comes last.
        hasher = self._hasher.copy()
        hasher.update(f"{version}\0{key[1]!r}\0{key[2]!r}\0{key[3]}\0".encode())
        hasher.update(key[0].encode("utf-8", "surrogatepass"))
        return f'"{hasher.hexdigest()}"'

    def __len__(self) -> int:
        return len(self._probation) + len(self._protected)

    def __contains__(self, key: Key) -> bool:
        return key in self._protected or key in self._probation

    def _sync(self, version: int) -> None:
        """A new store version makes every entry unreachable: drop them all at once."""
        if version != self._version:
            self._probation.clear()
            self._protected.clear()
            self.size = self.protected_size = 0
            self._version = version

    def _lookup(self, key: Key) -> CachedResponse | None:
        """The entry for `key`, now the most recently used; a probation entry is promoted."""
        entry = self._protected.get(key)
        if entry is not None:
            self._protected.move_to_end(key)
            return entry
        entry = self._probation.get(key)
        if entry is None:
            return None
        if entry[COST] > self.protected_bytes:  # it would demote every other entry
            self._probation.move_to_end(key)
            return entry
        del self._probation[key]
        self._protected[key] = entry
        self.protected_size += entry[COST]
        self._demote_overflow()
        return entry

    def _demote_overflow(self) -> None:
        """The protected segment's least recently used entries go back on probation (as its
        most recent) until the segment fits its share."""
        while self.protected_size > self.protected_bytes:
            demoted_key, demoted = self._protected.popitem(last=False)
            self.protected_size -= demoted[COST]
            self._probation[demoted_key] = demoted

    def get(self, key: Key, version: int) -> CachedResponse | None:
        self._sync(version)
        entry = self._lookup(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        return entry

    def replay(self, key: Key, version: int, etag: str, length: int) -> bytes | None:
        """The body stored for `key` at `version` if it still has this ETag and length (so the
        headers sent with it before still hold), as a hit; else None (kg.server.hit_lane)."""
        if version != self._version:
            return None
        entry = self._protected.get(key) or self._probation.get(key)
        if entry is None or entry[ETAG] != etag or len(entry[BODY]) != length:
            return None
        self._lookup(key)
        self.hits += 1
        return entry[BODY]

    def put(
        self, key: Key, version: int, body: bytes, content_type: str, etag: str | None = None
    ) -> CachedResponse | None:
        """Store a complete response computed on `version`, as the most recent entry of the
        segment it replaces an entry in (else on probation); None when it is not kept."""
        if len(body) > self.entry_bytes:
            return None
        self._sync(version)
        cost = len(body) + len(key[0]) + ENTRY_OVERHEAD
        if key[1] or key[2]:
            cost += sum(len(g) for part in key[1:3] if part for g in part)
        if cost > self.max_bytes:
            return None
        entry = (body, content_type, etag or self.etag(key, version), cost)
        previous = self._protected.pop(key, None)
        was_protected = previous is not None
        if previous is not None:
            self.protected_size -= previous[COST]
        else:
            previous = self._probation.pop(key, None)
        if previous is not None:
            self.size -= previous[COST]
        protected = was_protected and cost <= self.protected_bytes
        if protected:
            self._protected[key] = entry
            self.protected_size += cost
        else:
            self._probation[key] = entry
        self.size += cost
        while self.size > self.max_bytes:
            if len(self._probation) > 1 or (protected and self._probation):
                _, evicted = self._probation.popitem(last=False)  # never the new entry
            elif protected:
                _, evicted = self._protected.popitem(last=False)  # the new one is the newest
                self.protected_size -= evicted[COST]
            else:  # only room by evicting answers asked for again: this one is not kept
                del self._probation[key]
                self.size -= cost
                return None
            self.size -= evicted[COST]
            self.evictions += 1
        self._demote_overflow()
        return entry
