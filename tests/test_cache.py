"""The /sparql response cache: ETag/304, Cache-Control, invalidation by writes, memory bound."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kg.server.cache import BODY, COST, ENTRY_OVERHEAD, ETAG, ResponseCache
from tests.conftest import WRITE_TOKEN
from tests.server_process import BASE_IRI, ServerProcess, start_server

COUNT = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
JSON = "application/sparql-results+json"
XML = "application/sparql-results+xml"


def sparql(server: ServerProcess) -> str:
    return server.url + "/sparql"


def get(server: ServerProcess, query: str = COUNT, **headers: str) -> httpx.Response:
    return httpx.get(sparql(server), params={"query": query},
                     headers={"Accept": JSON, **headers}, timeout=30)


def lookups(server: ServerProcess, result: str) -> float:
    text = httpx.get(server.url + "/metrics").text
    match = re.search(rf'kg_sparql_cache_lookups_total{{result="{result}"}} (\S+)', text)
    return float(match.group(1)) if match else 0.0


# -- the cache as a unit -----------------------------------------------------------------------

def test_lru_by_bytes_and_entry_cap() -> None:
    cache = ResponseCache(max_bytes=3 * (100 + ENTRY_OVERHEAD + 2), entry_bytes=150)
    keys = [cache.key(f"q{i}", None, None, "json") for i in range(5)]
    for key in keys[:3]:
        assert cache.put(key, 1, b"x" * 100, "application/json") is not None
    assert len(cache) == 3 and cache.size <= cache.max_bytes
    assert cache.get(keys[0], 1) is not None  # now the most recently used
    cache.put(keys[3], 1, b"y" * 100, "application/json")
    assert cache.size <= cache.max_bytes and cache.evictions == 1
    assert cache.get(keys[1], 1) is None  # probation's least recently used went first
    assert cache.get(keys[0], 1) is not None and cache.get(keys[3], 1) is not None
    assert cache.put(keys[4], 1, b"z" * 151, "application/json") is None  # over the entry cap
    assert cache.get(keys[4], 1) is None


def _entry_cost(query: str, body: bytes) -> int:
    return len(body) + len(query) + ENTRY_OVERHEAD


def test_one_off_answers_do_not_push_out_a_repeated_one() -> None:
    """The cold-traffic flood the benchmark showed: a plain LRU lost the repeated answer."""
    cost = _entry_cost("q000", b"x" * 100)
    cache = ResponseCache(max_bytes=10 * cost, entry_bytes=1 << 10)
    repeated = cache.key("q000", None, None, "json")
    cache.put(repeated, 1, b"x" * 100, "application/json")
    assert cache.get(repeated, 1) is not None  # a hit: protected from now on
    one_offs = [cache.key(f"q{i:03}", None, None, "json") for i in range(1, 200)]
    for key in one_offs:
        assert cache.put(key, 1, b"y" * 100, "application/json") is not None
    assert cache.get(repeated, 1) is not None
    assert cache.get(one_offs[0], 1) is None  # one-off answers displaced each other
    assert cache.get(one_offs[-1], 1) is not None  # the newest is kept
    assert cache.size <= cache.max_bytes and len(cache) == 10


def test_an_answer_never_hit_is_evicted_first_and_the_protected_share_is_bounded() -> None:
    cost = _entry_cost("q00", b"x" * 100)
    cache = ResponseCache(max_bytes=10 * cost, entry_bytes=1 << 10)
    keys = [cache.key(f"q{i:02}", None, None, "json") for i in range(12)]
    for key in keys[:10]:
        cache.put(key, 1, b"x" * 100, "application/json")
    for key in keys[:9]:  # nine hits: more than the protected segment's 8
        assert cache.get(key, 1) is not None
    # the protected segment's oldest (keys[0]) went back on probation, as its most recent
    assert list(cache._probation) == [keys[9], keys[0]]
    assert list(cache._protected) == keys[1:9]
    assert cache.protected_size == 8 * cost == cache.protected_bytes
    cache.put(keys[10], 1, b"z" * 100, "application/json")
    assert list(cache._probation) == [keys[0], keys[10]]  # the never-hit keys[9] went first
    cache.put(keys[11], 1, b"z" * 100, "application/json")
    assert list(cache._probation) == [keys[10], keys[11]]
    assert list(cache._protected) == keys[1:9] and cache.evictions == 2


def test_a_new_answer_that_needs_protected_room_is_not_kept() -> None:
    cache = ResponseCache(max_bytes=2000, entry_bytes=2000)  # protected share: 1600 bytes
    repeated = cache.key("r", None, None, "json")
    cache.put(repeated, 1, b"r" * 1000, "application/json")
    assert cache.get(repeated, 1) is not None and repeated in cache._protected
    one_off = cache.key("o", None, None, "json")
    assert cache.put(one_off, 1, b"o" * 900, "application/json") is None  # 1257 + 1257 > 2000
    assert one_off not in cache and cache.size == cache.protected_size == 1257
    fits = cache.key("f", None, None, "json")
    assert cache.put(fits, 1, b"f" * 400, "application/json") is not None  # 657: it fits
    assert list(cache._probation) == [fits] and cache.size == 1257 + 657


def test_a_replaced_answer_stays_in_its_segment() -> None:
    cache = ResponseCache(max_bytes=4000, entry_bytes=4000)  # protected share: 3200 bytes
    key = cache.key("k", None, None, "json")
    cache.put(key, 1, b"a" * 1000, "application/json")
    cache.get(key, 1)
    assert key in cache._protected
    again = cache.put(key, 1, b"b" * 1200, "application/json")  # two misses raced: the second
    assert again is not None and cache._protected.get(key) is again
    assert cache.size == cache.protected_size == again[COST] and len(cache) == 1
    bigger = cache.put(key, 1, b"c" * 3500, "application/json")  # over the protected share
    assert bigger is not None and cache._probation.get(key) is bigger
    assert cache.protected_size == 0 and cache.size == bigger[COST]


def test_an_answer_larger_than_the_protected_share_stays_on_probation() -> None:
    cache = ResponseCache(max_bytes=2000, entry_bytes=2000)  # protected share: 1600 bytes
    small, big = cache.key("s", None, None, "json"), cache.key("b", None, None, "json")
    cache.put(small, 1, b"s" * 50, "application/json")  # cost 307: both fit
    cache.get(small, 1)
    entry = cache.put(big, 1, b"b" * 1400, "application/json")  # cost 1657
    assert entry is not None and cache.get(big, 1) is entry
    assert big in cache._probation and list(cache._protected) == [small]  # no demotion


_OPERATIONS = st.lists(st.tuples(
    st.sampled_from(["put", "put", "get", "replay", "write"]), st.integers(0, 15),
    st.integers(0, 1300)), max_size=150)


@settings(max_examples=300, deadline=None)
@given(_OPERATIONS)
def test_the_segments_keep_their_bounds_and_a_stored_answer_is_held(
        operations: list[tuple[str, int, int]]) -> None:
    """After every call: the sizes are the sum of the costs and within their bounds, no key in
    both segments, an answer `put` returned is held (looked at without promoting it), and a
    `get` gives the body last stored for its key."""
    cache = ResponseCache(max_bytes=3000, entry_bytes=1000)
    version = 1
    remembered: dict[str, tuple[bytes, str, str, int]] = {}
    for operation, number, size in operations:
        key = cache.key(f"q{number}", None, None, "json")
        if operation == "write":
            version += 1
        elif operation == "get":
            entry = cache.get(key, version)
            assert entry is None or entry[BODY] == bytes([number]) * len(entry[BODY])
        elif operation == "replay":
            held = remembered.get(key[0])
            if held is not None:  # a replay of the headers sent with `held`
                current = cache._protected.get(key) or cache._probation.get(key)
                still = (current is not None and cache._version == version
                         and current[ETAG] == held[ETAG] and len(current[BODY]) == len(held[BODY]))
                body = cache.replay(key, version, held[ETAG], len(held[BODY]))
                assert body == (current[BODY] if still and current else None)
                if still:  # counted as a hit: now protected (or kept on probation if too big)
                    assert key in cache._protected or (
                        held[COST] > cache.protected_bytes and key in cache._probation)
        else:
            entry = cache.put(key, version, bytes([number]) * size, "application/json")
            if size > cache.entry_bytes:
                assert entry is None
            elif entry is not None:
                assert cache._probation.get(key) is entry or cache._protected.get(key) is entry
                remembered[key[0]] = entry
        held = [*cache._probation.values(), *cache._protected.values()]
        assert cache.size == sum(e[COST] for e in held) <= cache.max_bytes
        assert cache.protected_size == sum(e[COST] for e in cache._protected.values())
        assert cache.protected_size <= cache.protected_bytes
        assert not set(cache._probation) & set(cache._protected)


def test_a_new_version_drops_everything_and_changes_the_etag() -> None:
    cache = ResponseCache(max_bytes=1 << 20, entry_bytes=1 << 16)
    key = cache.key("q", ["http://g"], None, "json")
    entry = cache.put(key, 1, b"body", "application/json")
    assert entry is not None and entry[ETAG] == cache.etag(key, 1)
    assert entry[ETAG].startswith('"') and not entry[ETAG].startswith("W/")
    assert cache.etag(key, 1) == cache.etag(key, 1) != cache.etag(key, 2)
    assert cache.etag(key, 1) != cache.etag(cache.key("q", ["http://g"], None, "xml"), 1)
    assert cache.etag(key, 1) != cache.etag(cache.key("q", None, ["http://g"], "json"), 1)
    assert cache.etag(key, 1) != cache.etag(cache.key("q ", ["http://g"], None, "json"), 1)
    other = ResponseCache(max_bytes=1 << 20, entry_bytes=1 << 16, fingerprint="max_rows=5")
    assert other.etag(key, 1) != cache.etag(key, 1) and other.etag(key, 1) == other.etag(key, 1)
    assert cache.get(key, 2) is None and len(cache) == 0 and cache.size == 0


def test_disabled_cache_keeps_nothing() -> None:
    cache = ResponseCache(max_bytes=0, entry_bytes=1 << 20)
    key = cache.key("q", None, None, "json")
    assert cache.put(key, 1, b"body", "application/json") is None
    assert cache.get(key, 1) is None


# -- over HTTP ---------------------------------------------------------------------------------

def test_etag_is_stable_and_304_on_if_none_match(writable_server: ServerProcess) -> None:
    first, second = get(writable_server), get(writable_server)
    assert first.status_code == second.status_code == 200
    etag = first.headers["etag"]
    assert etag == second.headers["etag"] and not etag.startswith("W/")
    assert first.content == second.content
    assert "must-revalidate" in first.headers["cache-control"]
    assert "public" in first.headers["cache-control"]
    assert "Accept" in first.headers["vary"]
    not_modified = get(writable_server, **{"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified.headers["etag"] == etag
    listed = get(writable_server, **{"If-None-Match": f'"other", {etag}'})
    assert listed.status_code == 304
    assert get(writable_server, **{"If-None-Match": '"stale"'}).status_code == 200


def test_head_has_the_same_etag_and_304(writable_server: ServerProcess) -> None:
    body = get(writable_server)
    head = httpx.head(sparql(writable_server), params={"query": COUNT}, headers={"Accept": JSON})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["etag"] == body.headers["etag"]
    assert int(head.headers["content-length"]) == len(body.content)
    conditional = httpx.head(sparql(writable_server), params={"query": COUNT},
                             headers={"Accept": JSON, "If-None-Match": body.headers["etag"]})
    assert conditional.status_code == 304


def test_each_format_is_its_own_entry(writable_server: ServerProcess) -> None:
    as_json, as_xml = get(writable_server), get(writable_server, Accept=XML)
    assert as_json.headers["content-type"].startswith(JSON)
    assert as_xml.headers["content-type"].startswith(XML)
    assert as_json.headers["etag"] != as_xml.headers["etag"]
    again = get(writable_server, Accept=XML)
    assert again.headers["etag"] == as_xml.headers["etag"] and again.content == as_xml.content
    # the JSON ETag does not validate the XML representation
    assert get(writable_server, Accept=XML,
               **{"If-None-Match": as_json.headers["etag"]}).status_code == 200


def test_repeats_are_served_from_the_cache(writable_server: ServerProcess) -> None:
    query = "ASK { ?s ?p ?o } # repeated"
    get(writable_server, query)
    hits = lookups(writable_server, "hit")
    for _ in range(3):
        assert get(writable_server, query).json()["boolean"] is True
    assert lookups(writable_server, "hit") >= hits + 3


def test_post_queries_carry_no_etag(writable_server: ServerProcess) -> None:
    r = httpx.post(sparql(writable_server), data={"query": COUNT}, headers={"Accept": JSON})
    assert r.status_code == 200 and "etag" not in r.headers
    assert r.headers["cache-control"] == "no-cache"
    assert r.content == get(writable_server).content


def test_a_write_invalidates(writable_server: ServerProcess) -> None:
    before = get(writable_server)
    n = int(before.json()["results"]["bindings"][0]["n"]["value"])
    update = (f"INSERT DATA {{ GRAPH <{BASE_IRI}graph/cache-test> "
              f"{{ <{BASE_IRI}id/cache-test> <{BASE_IRI}ontology#note> \"x\" }} }}")
    r = httpx.post(sparql(writable_server), data={"update": update},
                   headers={"Authorization": f"Bearer {WRITE_TOKEN}"}, timeout=30)
    assert r.status_code == 204, r.text
    after = get(writable_server, **{"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200  # the old ETag no longer validates
    assert after.headers["etag"] != before.headers["etag"]
    assert int(after.json()["results"]["bindings"][0]["n"]["value"]) > n
    assert get(writable_server).headers["etag"] == after.headers["etag"]


@pytest.fixture(scope="module")
def tiny_cache_server(
    sample_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    import shutil

    store = tmp_path_factory.mktemp("tiny-cache") / "store"
    shutil.copytree(sample_store, store)
    proc = start_server(store, tmp_path_factory.mktemp("logs"), KG_CACHE_BYTES="4096")
    yield proc
    proc.stop()


def test_memory_bound_evicts_one_off_answers_and_keeps_a_repeated_one(
        tiny_cache_server: ServerProcess) -> None:
    repeated = "SELECT ?s WHERE { ?s ?p ?o } LIMIT 1 # repeated"
    get(tiny_cache_server, repeated)
    hits = lookups(tiny_cache_server, "hit")
    get(tiny_cache_server, repeated)
    assert lookups(tiny_cache_server, "hit") == hits + 1  # kept while it fits
    one_off = "SELECT ?s WHERE {{ ?s ?p ?o }} LIMIT 1 # {}"
    for i in range(40):  # ~40 entries of several hundred bytes each: far over 4 KB
        get(tiny_cache_server, one_off.format(i))
    hits, misses = lookups(tiny_cache_server, "hit"), lookups(tiny_cache_server, "miss")
    response = get(tiny_cache_server, one_off.format(0))
    assert response.status_code == 200
    assert lookups(tiny_cache_server, "miss") == misses + 1  # evicted, so run again
    assert get(tiny_cache_server, repeated).status_code == 200
    assert lookups(tiny_cache_server, "hit") == hits + 1  # the repeated answer stayed
    # the ETag does not depend on the cache holding the entry
    assert get(tiny_cache_server, one_off.format(0),
               **{"If-None-Match": response.headers["etag"]}).status_code == 304


# -- repeated GETs replayed before the framework (kg.server.hit_lane) ---------------------------

def test_a_replay_does_not_keep_an_evicted_body_alive() -> None:
    """The lane remembers up to 8,192 raw requests; holding their entries would keep bodies the
    cache evicted (up to 256 KB each) past KG_CACHE_BYTES."""
    import asyncio

    from kg.server.hit_lane import HitLane

    cache, lane = ResponseCache(max_bytes=4000, entry_bytes=1000), HitLane()
    scope = {"type": "http", "method": "GET", "path": "/sparql", "query_string": b"query=q",
             "headers": [(b"accept", b"application/json")]}
    key = cache.key("q", None, None, "json")
    body = bytes(range(256)) * 3  # a fresh object: its references are countable
    unreferenced = sys.getrefcount(body)
    entry = cache.put(key, 1, body, "application/json")
    assert entry is not None
    lane.remember(scope, key, entry, 1, [(b"content-type", b"application/json")])
    del entry
    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    assert asyncio.run(lane.serve(dict(scope), cache, 1, send)) is True  # replayed
    assert sent[-1]["body"] == body
    sent.clear()
    for i in range(10):  # one-off answers do not evict it (a replay is a hit: protected)
        cache.put(cache.key(f"other {i}", None, None, "json"), 1, b"o" * 900, "application/json")
    assert key in cache and sys.getrefcount(body) == unreferenced + 1  # the cache's
    assert cache.get(key, 2) is None and len(cache) == 0  # a write: every entry dropped
    assert sys.getrefcount(body) == unreferenced  # nothing else kept the dropped body
    assert asyncio.run(lane.serve(dict(scope), cache, 2, send)) is False  # the full path


def test_cached_answers_leave_the_garbage_collector_nothing_to_rescan() -> None:
    """One tracked object per cold answer made Python's full collections frequent and long as
    the cache grew (with the hit lane's change, about a third of kg's own handling of a cold
    GET: `python -m bench.handling`): an entry is a plain tuple of bytes and strings, which
    the collector stops tracking."""
    import gc

    cache = ResponseCache(max_bytes=1 << 26, entry_bytes=1 << 16)
    gc.collect()
    before = len(gc.get_objects())
    entries = [cache.put(cache.key(f"SELECT * {{ <x{i}> ?p ?o }}", None, None, "json"), 1,
                         b'{"results": %d}' % i, "application/sparql-results+json")
               for i in range(5000)]
    gc.collect()
    assert all(e is not None and not gc.is_tracked(e) for e in entries)
    assert len(gc.get_objects()) - before < 50  # the list above, not one per answer


def test_the_replays_keys_are_bounded_in_bytes() -> None:
    """Each replay keeps its raw query string and the query text (up to ~64 KB each: uvicorn's
    request-line limit); counted, so 8,192 long queries cannot hold ~1 GB of keys."""
    from kg.server import hit_lane

    cache, lane = ResponseCache(max_bytes=1 << 30, entry_bytes=1 << 10), hit_lane.HitLane()
    kept = []
    for i in range(400):  # 400 × ~64 KB × 2 = ~50 MB of keys, over the 8 MB bound
        text = f"SELECT * WHERE {{ ?s ?p ?o }} LIMIT 1 # {i} " + "x" * 32_000
        key = cache.key(text, None, None, "json")
        entry = cache.put(key, 1, b"{}", "application/json")
        assert entry is not None
        kept.append(entry)
        scope = {"type": "http", "method": "GET", "path": "/sparql", "headers": [],
                 "query_string": ("query=" + text.replace(" ", "+")).encode()}
        lane.remember(scope, key, entry, 1, [(b"content-type", b"application/json")])
        assert lane.size <= hit_lane.MAX_BYTES
    assert 0 < len(lane) < 400  # cleared on the way, and still replaying the recent ones
    counted = sum(r.cost for r in lane._replays.values())
    assert counted == lane.size


def _requests_counted(server: ServerProcess) -> float:
    text = httpx.get(server.url + "/metrics").text
    return sum(float(v) for v in re.findall(
        r'kg_http_requests_total{method="GET",route="/sparql",status="200"} (\S+)', text))


def test_replayed_answers_equal_the_full_answer(writable_server: ServerProcess) -> None:
    query = "SELECT ?s WHERE { ?s ?p ?o } ORDER BY ?s LIMIT 3 # replay"
    first = get(writable_server, query)
    hits, counted = lookups(writable_server, "hit"), _requests_counted(writable_server)
    replays = [get(writable_server, query) for _ in range(3)]
    for r in replays:
        assert r.status_code == 200 and r.content == first.content
        assert {k: v for k, v in r.headers.items() if k != "date"} == {
            k: v for k, v in first.headers.items() if k != "date"}
    assert lookups(writable_server, "hit") == hits + 3  # still counted as cache hits
    assert _requests_counted(writable_server) >= counted + 3  # and as requests
    # an Origin takes the full path: the CORS header is there, the body the same
    cors = get(writable_server, query, Origin="https://example.org")
    assert cors.headers.get("access-control-allow-origin") and cors.content == first.content
    # another Accept is another answer, never the replayed one
    assert get(writable_server, query, Accept=XML).headers["content-type"].startswith(XML)


def test_no_replay_after_a_write(writable_server: ServerProcess) -> None:
    query = f"SELECT ?o WHERE {{ <{BASE_IRI}id/replay-test> ?p ?o }}"
    for _ in range(2):  # the second answer is replayable
        assert get(writable_server, query).json()["results"]["bindings"] == []
    update = (f"INSERT DATA {{ GRAPH <{BASE_IRI}graph/replay-test> "
              f"{{ <{BASE_IRI}id/replay-test> <{BASE_IRI}ontology#note> \"y\" }} }}")
    r = httpx.post(sparql(writable_server), data={"update": update},
                   headers={"Authorization": f"Bearer {WRITE_TOKEN}"}, timeout=30)
    assert r.status_code == 204, r.text
    rows = get(writable_server, query).json()["results"]["bindings"]
    assert [row["o"]["value"] for row in rows] == ["y"]


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_the_lane_remembers_an_answer_asked_for_again_not_a_one_off(
        sample_store: Path, tmp_path: Path) -> None:
    """Most cold answers are never asked for again: remembering each cost time and objects.
    The lane takes a request once the full path has answered it from the cache."""
    import shutil

    from starlette.testclient import TestClient

    from kg.config import Settings
    from kg.server.app import create_app

    shutil.copytree(sample_store, tmp_path / "store")
    app = create_app(Settings(store_path=tmp_path / "store", base_iri=BASE_IRI))
    query = {"query": "SELECT ?s WHERE { ?s ?p ?o } ORDER BY ?s LIMIT 2 # lane"}
    with TestClient(app) as client:
        lane = app.sparql_hits  # type: ignore[attr-defined]
        first = client.get("/sparql", params=query, headers={"Accept": JSON})
        assert first.status_code == 200 and len(lane) == 0  # computed, cached, not remembered
        client.get("/sparql", params={"query": "ASK { ?s ?p ?o } # one-off"})
        assert len(lane) == 0
        second = client.get("/sparql", params=query, headers={"Accept": JSON})
        assert len(lane) == 1  # a cache hit on the full path: remembered
        third = client.get("/sparql", params=query, headers={"Accept": JSON})
        assert len(lane) == 1 and lane.size > 0  # replayed
        assert first.content == second.content == third.content
        assert first.headers["etag"] == second.headers["etag"] == third.headers["etag"]
