"""kg.server.protocol_lane: plain GET /sparql answered inside the HTTP protocol.

In process: kg's app (lifespan, real query workers on the sample store) behind the protocol
`kg serve` runs, fed raw request bytes through a recording transport, so each test can see
whether the lane or uvicorn took a request and what the connection did. Over sockets: a server
with the lane and one without it (KG_HTTP_LANE=false) give the same answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from uvicorn.lifespan.on import LifespanOn
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle
from uvicorn.server import ServerState

from kg.config import Settings
from kg.server import hit_lane, metrics, protocol_lane
from kg.server.app import create_app
from kg.server.http_protocol import JoinedWritesProtocol
from kg.server.protocol_lane import LaneCycle
from kg.server.routes import sparql
from tests.server_process import BASE_IRI, ServerProcess, remote, start_server

JSON = "application/sparql-results+json"
LABELS = "SELECT ?s ?l WHERE { ?s <http://www.w3.org/2000/01/rdf-schema#label> ?l } LIMIT 3"
# a cross product far beyond any time limit on the sample store
ENDLESS = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }"


def get(query: str, *headers: str, path: str = "/sparql", version: str = "1.1") -> bytes:
    lines = [f"GET {path}?query={quote(query, safe='')} HTTP/{version}", "Host: kg.test",
             f"Accept: {JSON}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Transport:
    """What the protocol writes, whether it closed, and its reading switch."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.late = bytearray()  # written after close: a bug
        self.closed = False
        self.reading = True

    def write(self, data: bytes) -> None:
        if self.closed:
            self.late += data
        else:
            self.data += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default)

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


def parse_responses(data: bytes) -> list[tuple[int, dict[str, str], bytes, list[str]]]:
    """Complete Content-Length responses in `data`: status, headers, body, header names."""
    out = []
    while b"\r\n\r\n" in data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        names = [line.split(":", 1)[0] for line in lines[1:]]
        headers = {name.lower(): line.split(":", 1)[1].strip()
                   for name, line in zip(names, lines[1:], strict=True)}
        length = int(headers.get("content-length", "0"))
        if len(rest) < length:
            break
        out.append((int(lines[0].split()[1]), headers, rest[:length], names))
        data = rest[length:]
    return out


async def responses(transport: Transport, count: int,
                    timeout: float = 20.0) -> list[tuple[int, dict[str, str], bytes, list[str]]]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = parse_responses(bytes(transport.data))
        if len(found) >= count:
            return found
        assert asyncio.get_running_loop().time() < deadline, f"{len(found)} of {count} answers"
        await asyncio.sleep(0.005)


Connect = Callable[[], tuple[JoinedWritesProtocol, Transport]]


@contextlib.asynccontextmanager
async def lane_app(store: Path, **settings: Any) -> AsyncIterator[Connect]:
    """kg's app started as `kg serve` starts it; `connect()` opens a connection to it."""
    app = create_app(Settings(store_path=store, base_iri=BASE_IRI, log_level="warning",
                              **settings))
    config = uvicorn.Config(app, http=JoinedWritesProtocol, lifespan="on", log_level="warning")
    config.load()
    lifespan = LifespanOn(config)
    await lifespan.startup()
    assert not lifespan.should_exit, "the app did not start"
    state = ServerState()
    # what uvicorn's server loop keeps there (refreshed every second)
    state.default_headers = [(b"date", b"Sun, 22 Nov 2026 12:00:00 GMT"), (b"server", b"uvicorn")]

    def connect() -> tuple[JoinedWritesProtocol, Transport]:
        protocol = JoinedWritesProtocol(config, state, lifespan.state)
        transport = Transport()
        protocol.connection_made(transport)  # type: ignore[arg-type]
        return protocol, transport

    try:
        yield connect
    finally:
        await lifespan.shutdown()


@pytest.fixture(scope="module")
def store(sample_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if remote():
        pytest.skip("in process over the embedded store; the socket tests cover the backends")
    copy = tmp_path_factory.mktemp("lane") / "store"
    shutil.copytree(sample_store, copy)
    return copy


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_a_plain_get_is_answered_by_the_lane(store: Path) -> None:
    async def scenario() -> None:
        async with lane_app(store) as connect:
            protocol, transport = connect()
            protocol.data_received(get(LABELS))
            assert isinstance(protocol.cycle, LaneCycle)  # no uvicorn cycle was built
            [(status, headers, body, names)] = await responses(transport, 1)
            assert status == 200 and len(httpx.Response(200, content=body).json()[
                "results"]["bindings"]) == 3
            # uvicorn's default headers, then what the full path sends, in its order
            assert names == ["date", "server", "vary", "etag", "cache-control", "content-type",
                             "content-length"]
            assert headers["vary"] == "Accept, Origin" and headers["content-type"] == JSON
            assert protocol.cycle.response_complete and not transport.closed
            assert protocol.timeout_keep_alive_task is not None  # idle again: the timer runs

    run(scenario())


@pytest.mark.parametrize(("request_bytes", "status"), [
    (get("ASK {}").replace(b"GET", b"HEAD", 1), 200),
    (get("ASK {}", "Origin: https://elsewhere.example"), 200),
    (get("ASK {}", version="1.0"), 200),
    (get("ASK {}", "Connection: close"), 200),
    (get("ASK {}", path="http://kg.test/sparql"), 200),  # absolute form
    (get("ASK {}", path="/sparql/x"), 404),
    (b"GET /sparql HTTP/1.1\r\nHost: kg.test\r\nAccept: text/turtle\r\n\r\n", 200),  # description
    (b"GET /sparql?update=CLEAR%20ALL HTTP/1.1\r\nHost: kg.test\r\n\r\n", 400),
    (get("SELECT * WHERE { SERVICE <http://example.org/s> { ?s ?p ?o } }"), 403),
    (get("  "), 400),  # refused by the guard (empty), before any worker
    (b"POST /sparql HTTP/1.1\r\nHost: kg.test\r\nContent-Type: application/sparql-query\r\n"
     b"Content-Length: 6\r\n\r\nASK {}", 200),
], ids=["head", "origin", "http-1.0", "connection-close", "absolute-form", "other-path",
        "no-query", "update", "service", "empty-query", "post"])
def test_other_requests_take_uvicorns_path_unchanged(store: Path, request_bytes: bytes,
                                                     status: int) -> None:
    async def scenario() -> None:
        async with lane_app(store) as connect:
            protocol, transport = connect()
            protocol.data_received(request_bytes)
            assert isinstance(protocol.cycle, RequestResponseCycle)
            deadline = asyncio.get_running_loop().time() + 20
            while not transport.data.count(b"\r\n\r\n") and (
                    asyncio.get_running_loop().time() < deadline):
                await asyncio.sleep(0.005)
            assert transport.data.startswith(f"HTTP/1.1 {status} ".encode()), bytes(
                transport.data[:300])

    run(scenario())


def test_a_refusal_is_counted_once(store: Path) -> None:
    """The lane leaves a refused query to the full path before counting anything."""
    refused = metrics.REJECTED_QUERIES.labels(reason="service")

    async def scenario() -> None:
        async with lane_app(store) as connect:
            before = refused._value.get()
            protocol, transport = connect()
            protocol.data_received(get("SELECT * { SERVICE <http://example.org/> { ?s ?p ?o } }"))
            [(status, _, _, _)] = await responses(transport, 1)
            assert status == 403 and refused._value.get() == before + 1

    run(scenario())


def test_pipelined_requests_are_answered_in_order(store: Path) -> None:
    async def scenario() -> None:
        async with lane_app(store) as connect:
            protocol, transport = connect()
            protocol.data_received(get(LABELS) + get("SELECT * WHERE { ?s ?p }")
                                   + get("ASK {}", "Origin: https://o.example") + get("ASK {}"))
            answers = await responses(transport, 4)
            assert [a[0] for a in answers] == [200, 400, 200, 200]
            assert len(httpx.Response(200, content=answers[0][2]).json()[
                "results"]["bindings"]) == 3
            assert answers[2][1]["access-control-allow-origin"] == "*"
            assert answers[3][2] == b'{"head":{},"boolean":true}'
            assert not transport.closed and transport.reading and transport.late == b""

    run(scenario())


def test_a_query_behind_an_answer_replayed_at_once_is_not_cut_by_the_keep_alive_timer(
        store: Path) -> None:
    """A replayed answer completes inside the parser's callback and arms uvicorn's keep-alive
    timer; the next request in the same read must disarm it, or the timer closes the
    connection under a query that runs longer than the keep-alive timeout."""
    async def scenario() -> None:
        async with lane_app(store) as connect:
            protocol, transport = connect()
            for number in range(3):  # a miss, a cache hit, then the hit lane's replays
                protocol.data_received(get("ASK {}"))
                await responses(transport, number + 1)
            protocol.data_received(get("ASK {}") + get(LABELS))
            assert isinstance(protocol.cycle, LaneCycle) and not protocol.cycle.response_complete
            assert protocol.timeout_keep_alive_task is None
            answers = await responses(transport, 5)
            assert [a[0] for a in answers] == [200] * 5

    run(scenario())


def test_shutdown_while_a_query_runs_closes_after_its_answer(store: Path) -> None:
    async def scenario() -> None:
        async with lane_app(store) as connect:
            protocol, transport = connect()
            protocol.data_received(get(LABELS))
            protocol.shutdown()  # what uvicorn's server does to every connection
            assert not transport.closed
            [(status, headers, _, _)] = await responses(transport, 1)
            assert status == 200 and headers["connection"] == "close" and transport.closed

    run(scenario())


def test_nothing_is_written_for_a_client_gone_while_its_query_ran(store: Path) -> None:
    async def scenario() -> None:
        async with lane_app(store) as connect:
            protocol, transport = connect()
            protocol.data_received(get(LABELS))
            protocol.connection_lost(None)  # closes the transport
            while protocol.tasks:
                await asyncio.sleep(0.005)
            assert transport.closed and transport.data == b"" and transport.late == b""
            again, fresh = connect()
            again.data_received(get(LABELS))
            [(status, _, _, _)] = await responses(fresh, 1)
            assert status == 200

    run(scenario())


def test_a_query_that_times_out_is_a_503_problem_through_a_real_cycle(store: Path) -> None:
    async def scenario() -> None:
        async with lane_app(store, query_timeout=0.5) as connect:
            before = metrics.QUERY_TIMEOUTS._value.get()
            protocol, transport = connect()
            protocol.data_received(get(ENDLESS))
            assert isinstance(protocol.cycle, LaneCycle)
            [(status, headers, body, _)] = await responses(transport, 1)
            assert status == 503 and headers["content-type"] == "application/problem+json"
            assert b"timed out" in body.lower()
            assert isinstance(protocol.cycle, RequestResponseCycle)  # handed over
            assert metrics.QUERY_TIMEOUTS._value.get() == before + 1
            protocol.data_received(get("ASK {}"))  # the connection goes on
            assert (await responses(transport, 2))[1][0] == 200

    run(scenario())


def test_a_client_that_does_not_read_gets_uvicorns_waiting_path(store: Path) -> None:
    """Answers pile up in the transport when a client pipelines without reading: past the
    high-water mark (pause_writing) the lane stops taking requests, and uvicorn's cycle waits
    for the buffer to drain before it writes more."""
    async def scenario() -> None:
        async with lane_app(store) as connect:
            protocol, transport = connect()
            protocol.pause_writing()
            protocol.data_received(get(LABELS))
            assert isinstance(protocol.cycle, RequestResponseCycle)
            await asyncio.sleep(0.3)
            assert transport.data == b""  # waiting for the drain
            protocol.resume_writing()
            [(status, _, _, _)] = await responses(transport, 1)
            assert status == 200

    run(scenario())


def test_a_bug_while_answering_closes_the_connection(store: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(sparql, "raw_headers", broken)

    async def scenario() -> None:
        async with lane_app(store) as connect:
            protocol, transport = connect()
            protocol.data_received(get(LABELS))
            assert isinstance(protocol.cycle, LaneCycle)
            while protocol.tasks:
                await asyncio.sleep(0.005)
            assert transport.closed and transport.data == b""

    run(scenario())


def test_a_cancelled_query_closes_the_connection(store: Path) -> None:
    """uvicorn cancels what still runs when a shutdown stops waiting: no answer will come, so
    the connection must not be left open waiting for one."""
    async def scenario() -> None:
        async with lane_app(store) as connect:
            protocol, transport = connect()
            protocol.data_received(get(ENDLESS))
            await asyncio.sleep(0.2)
            for task in list(protocol.tasks):
                task.cancel()
            while protocol.tasks:
                await asyncio.sleep(0.005)
            assert transport.closed and transport.data == b""

    run(scenario())


def test_a_bug_before_anything_was_sent_is_a_500_not_the_clients_fault(
        store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Raised inside the parser's callback, it would become httptools' callback error, which
    uvicorn answers as a 400 for bad request bytes."""
    def broken(*args: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(hit_lane.HitLane, "lookup", broken)

    async def scenario() -> None:
        async with lane_app(store) as connect:
            protocol, transport = connect()
            protocol.data_received(get(LABELS))
            assert isinstance(protocol.cycle, RequestResponseCycle)
            [(status, _, _, _)] = await responses(transport, 1)
            assert status == 500

    run(scenario())


def test_the_lane_is_off_on_a_uvicorn_it_was_not_written_for(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert protocol_lane.FITS_UVICORN  # the installed one

    class OtherCycle:
        def __init__(self, scope: Any, transport: Any, flow: Any, logger: Any,
                     access_logger: Any, access_log: Any, default_headers: Any,
                     message_event: Any, expect_100_continue: Any, keep_alive: Any,
                     on_response: Any, loop: Any) -> None:  # one more, required
            pass

    monkeypatch.setattr(protocol_lane, "RequestResponseCycle", OtherCycle)
    assert not protocol_lane._fits_uvicorn()
    monkeypatch.setattr(protocol_lane, "FITS_UVICORN", False)
    assert protocol_lane.find_app(create_app(Settings(base_iri=BASE_IRI))) is None


def test_the_setting_turns_the_lane_off(store: Path) -> None:
    async def scenario() -> None:
        async with lane_app(store, http_lane=False) as connect:
            protocol, transport = connect()
            protocol.data_received(get(LABELS))
            assert isinstance(protocol.cycle, RequestResponseCycle)
            [(status, _, _, _)] = await responses(transport, 1)
            assert status == 200

    run(scenario())


# over sockets, on every backend: the lane changes nothing a client can see

@pytest.fixture(scope="module")
def without_lane(sample_store: Path,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    copy = tmp_path_factory.mktemp("nolane") / "store"
    shutil.copytree(sample_store, copy)
    proc = start_server(copy, tmp_path_factory.mktemp("logs"), KG_HTTP_LANE="false")
    yield proc
    proc.stop()


EXCHANGES: list[tuple[str, dict[str, str]]] = [
    (LABELS, {"Accept": JSON}),
    (LABELS, {"Accept": JSON}),  # a cache hit
    (LABELS, {"Accept": JSON}),  # the hit lane's replay
    # no blank nodes: over remote backends, each server's has its own labels
    ("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o FILTER(!isBlank(?s) && !isBlank(?o)) } "
     "ORDER BY ?s ?p ?o LIMIT 5", {"Accept": "text/turtle"}),
    ("ASK {}", {"Accept": "application/sparql-results+xml"}),
    ("SELECT * WHERE { ?s ?p }", {"Accept": JSON}),
    ("SELECT * WHERE { SERVICE <http://example.org/s> { ?s ?p ?o } }", {}),
    ("ASK {}", {"Accept": "image/png"}),
    # larger than a worker sends inline: spooled to a file, or streamed
    ("SELECT * WHERE { ?s ?p ?o FILTER(!isBlank(?s) && !isBlank(?o)) "
     "VALUES ?n { 1 2 3 } }", {"Accept": JSON}),
]


def _content(response: httpx.Response) -> str:
    """The body's digest; for JSON results, of its rows in order (the two servers run over
    two remote backends when the session has one, and unordered rows come in their order)."""
    content = response.content
    if response.headers.get("content-type") == JSON and response.status_code == 200:
        data = response.json()
        rows = data.get("results", {}).get("bindings")
        if rows is not None:
            content = json.dumps([data["head"], sorted(json.dumps(r, sort_keys=True)
                                                       for r in rows)]).encode()
    return hashlib.sha256(content).hexdigest()


def test_the_lane_answers_as_the_full_path_does(server: ServerProcess,
                                                without_lane: ServerProcess) -> None:
    seen = []
    for target in (server, without_lane):
        answers = []
        with httpx.Client(base_url=target.url, timeout=30) as client:
            for query, headers in EXCHANGES:
                response = client.get("/sparql", params={"query": query}, headers=headers)
                kept = {k: v for k, v in response.headers.items() if k not in ("date", "etag")}
                answers.append((response.status_code, kept, "etag" in response.headers,
                                _content(response)))
            assert len(response.content) > 256 * 1024  # the last: not inline from the worker
            etag = client.get("/sparql", params={"query": LABELS},
                              headers={"Accept": JSON}).headers["etag"]
            unchanged = client.get("/sparql", params={"query": LABELS},
                                   headers={"Accept": JSON, "If-None-Match": etag})
            answers.append((unchanged.status_code, dict(unchanged.headers) | {"date": ""},
                            unchanged.content, ""))
        seen.append(answers)
    with_lane, full = seen
    assert [a[0] for a in with_lane] == [200, 200, 200, 200, 200, 400, 403, 406, 200, 304]
    assert with_lane[-1][1]["etag"] and with_lane[-1][2] == b""
    for ours, theirs in zip(with_lane[:-1], full[:-1], strict=True):
        assert ours == theirs
