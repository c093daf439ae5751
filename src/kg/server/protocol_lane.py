"""Plain GET /sparql answered inside uvicorn's HTTP protocol, without an ASGI cycle.

Why: on small uncached queries the request process is the bottleneck (bench/NOTES.md), and
for each request uvicorn builds a `RequestResponseCycle` (with an `asyncio.Event`), starts a
task, runs its proxy-headers middleware, and turns two ASGI messages back into bytes. In
process that came to ~16 µs of the ~27 µs a cold GET /sparql cost the request process outside
the query and the system calls. Here the request is answered from the HTTP parser's callback
(`on_headers_complete`): the cache, or one task that awaits the query worker, then one write.

It takes only what it can answer exactly as the full path does (kg.server.routes.sparql's
`SparqlFastLane`, byte for byte: uvicorn's default headers, then the same headers in the same
order): GET, HTTP/1.1 keep-alive, the path `/sparql` or `/sparql/` in origin form, a `query`
parameter, no Origin, body, Expect or Upgrade, and no request already in progress on the
connection (pipelined requests keep uvicorn's queue and order). A request it does not take, or
whose query the guard or the parameters refuse, goes to uvicorn as if the lane did not exist
(the full path then counts and renders the refusal). Once it has taken a request, any other
outcome (a 304, a failure, a spooled or streamed result) is rendered as the routes render it
and sent through a real uvicorn cycle started for it. Off with KG_HTTP_LANE=false, and off by
itself on a uvicorn whose internals it does not fit (`FITS_UVICORN`).

Differences a client cannot see, by design: uvicorn's proxy-headers middleware does not run
(nothing in these answers or in kg's access log reads the client address or scheme); a
refused query is parsed and guarded twice (here, then on the full path that answers it). A bug
once the lane has taken a request closes the connection (logged), where the full path would
send a 500; one before that leaves the request to the full path.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from kg import errors
from kg.server import access, query_string
from kg.server.routes import sparql

if TYPE_CHECKING:
    from kg.server.app import KgApp
    from kg.server.http_protocol import JoinedWritesProtocol

# request headers that send a request down uvicorn's own path
_DECLINED = frozenset({b"origin", b"content-length", b"transfer-encoding", b"expect",
                       b"upgrade"})
_OK = STATUS_LINE[200]
log = logging.getLogger("kg.sparql")


# what the hand-over passes to uvicorn's cycle: the lane leans on these internals of uvicorn's
# httptools protocol (0.30 to 0.54 were read), and stays off where they differ
_CYCLE_ARGUMENTS = frozenset({
    "scope", "transport", "flow", "logger", "access_logger", "access_log", "default_headers",
    "message_event", "expect_100_continue", "keep_alive", "on_response"})


def _fits_uvicorn() -> bool:
    parameters = inspect.signature(RequestResponseCycle).parameters
    required = {name for name, p in parameters.items() if p.default is inspect.Parameter.empty}
    return (callable(getattr(HttpToolsProtocol, "_start_asgi_task", None))
            and required <= _CYCLE_ARGUMENTS <= set(parameters))


FITS_UVICORN = _fits_uvicorn()


class _Event:
    """uvicorn sets its cycle's message event on a body or a disconnect: nothing waits here."""

    __slots__ = ()

    def set(self) -> None:
        pass


class LaneCycle:
    """Stands in for uvicorn's `RequestResponseCycle` while the lane answers: the attributes
    the protocol reads and writes (parser callbacks, disconnects, shutdown, pipelining)."""

    def __init__(self) -> None:
        self.response_complete = False
        self.disconnected = False
        self.keep_alive = True  # the server's shutdown sets it to False: close after answering
        self.more_body = True
        self.body = bytearray()
        self.message_event = _Event()


def find_app(app: Any) -> KgApp | None:
    """kg's app under uvicorn's wrappers (proxy headers, message logger), if it is there and
    the installed uvicorn is one the lane was written for (else: no lane)."""
    from kg.server.app import KgApp

    if not FITS_UVICORN:
        return None
    for _ in range(8):
        if isinstance(app, KgApp):
            return app
        app = getattr(app, "app", None)
    return None


def take(protocol: JoinedWritesProtocol, app: KgApp) -> bool:
    """Called by the protocol when a request's headers are complete: True when the lane has
    taken the request (uvicorn must then do nothing for it), False to leave it to uvicorn."""
    current = protocol.cycle
    if ((current is not None and not current.response_complete) or protocol.pipeline
            or protocol.flow.write_paused):
        # in order behind a request in progress; or a client that does not read its answers,
        # which uvicorn's cycle waits for (the lane's writes do not wait)
        return False
    state = app.kg_state
    if state is None or not state.settings.http_lane:
        return False
    parser = protocol.parser
    if (parser.get_method() != b"GET" or parser.get_http_version() != "1.1"
            or not parser.should_keep_alive()):
        return False
    url: bytes = protocol.url
    if url.startswith(b"/sparql?"):
        path, raw_query = "/sparql", url[8:]
    elif url.startswith(b"/sparql/?"):
        path, raw_query = "/sparql/", url[9:]
    else:
        return False
    if b"#" in raw_query:
        return False
    accept = if_none_match = None
    for name, value in protocol.headers:
        if name in _DECLINED:
            return False
        if name == b"accept":
            accept = value.decode("latin-1") if accept is None else (
                f"{accept},{value.decode('latin-1')}")
        elif name == b"if-none-match":
            if_none_match = value.decode("latin-1")
    scope = protocol.scope
    scope["method"] = "GET"
    scope["path"] = path
    scope["raw_path"] = path.encode("ascii")
    scope["query_string"] = raw_query
    start = time.perf_counter()
    cycle = LaneCycle()
    try:
        found = app.sparql_hits.lookup(scope, state.extras.get("sparql_cache"),
                                       state.store.version)
        if found is None:
            proto = sparql.collect(query_string.parse(raw_query))
            if proto.query is None or proto.update is not None:
                return False  # the service description, or a refusal: the routes answer
            step = sparql.prepare(state, proto, "GET", accept, if_none_match)
    except errors.KgError:
        return False  # refused: the full path counts it and renders the problem
    except Exception:  # a bug, before anything was sent: the full path gives its 500
        log.exception("the protocol lane failed on a request; the full path takes it")
        return False
    protocol.cycle = cycle
    if found is not None:
        replay, body = found
        try:
            _write(protocol, cycle, scope, replay.headers, body, start)
        except Exception:  # a bug: as uvicorn does once a response may have started
            _broken(protocol)
        return True
    scope["app"] = app  # as Starlette sets it: the exception handlers and the hit lane read it
    scope["route"] = sparql.LANE_ROUTES[path]
    if isinstance(step, sparql.Answer):
        try:
            _answer(protocol, app, cycle, scope, step, start)
        except Exception:  # a bug: as uvicorn does once a response may have started
            _broken(protocol)
        return True
    task = protocol.loop.create_task(_run(protocol, app, cycle, scope, step, start))
    protocol.tasks.add(task)
    task.add_done_callback(protocol.tasks.discard)
    return True


async def _run(protocol: JoinedWritesProtocol, app: KgApp, cycle: LaneCycle, scope: Scope,
               pending: sparql.Pending, start: float) -> None:
    state = app.kg_state
    assert state is not None
    try:
        answer = await sparql.run(state, pending)
    except errors.KgError as exc:
        sparql.count_failure(exc)
        failed: Exception = exc
        handler = app.exception_handlers[errors.KgError]
    except Exception as exc:  # a bug: the same 500 problem the stack gives
        failed = exc
        handler = app.exception_handlers[Exception]
    except BaseException:  # cancelled (a shutdown that stopped waiting): no answer will come
        if not cycle.response_complete:
            _close(protocol)
        raise
    else:
        try:
            _answer(protocol, app, cycle, scope, answer, start)
        except Exception:  # a bug: as uvicorn does once a response may have started
            _broken(protocol)
        return

    async def problem(request: Request) -> Response:
        return await handler(request, failed)  # type: ignore[no-any-return]

    try:
        _hand_over(protocol, cycle, scope, problem, start)
    except Exception:
        _broken(protocol)


def _answer(protocol: JoinedWritesProtocol, app: KgApp, cycle: LaneCycle, scope: Scope,
            answer: sparql.Answer, start: float) -> None:
    """A complete 200 is written here; anything else goes through a real cycle."""
    state = app.kg_state
    assert state is not None  # the lane takes requests only once the app has started
    settings = state.settings
    if answer.status == 200 and answer.body is not None and answer.result is None:
        headers = sparql.raw_headers(settings, answer.etag, answer.content_type,
                                     len(answer.body))
        if answer.cached is not None:
            app.sparql_hits.remember(scope, *answer.cached, headers)
        _write(protocol, cycle, scope, headers, answer.body, start)
        return

    async def rendered(request: Request) -> Response:
        return sparql.render(request, settings, answer)

    _hand_over(protocol, cycle, scope, rendered, start)


def _broken(protocol: JoinedWritesProtocol) -> None:
    log.exception("the protocol lane failed to answer; closing the connection")
    _close(protocol)


def _close(protocol: JoinedWritesProtocol) -> None:
    if not protocol.transport.is_closing():
        protocol.transport.close()


def _write(protocol: JoinedWritesProtocol, cycle: LaneCycle, scope: Scope,
           headers: list[tuple[bytes, bytes]], body: bytes, start: float) -> None:
    """Status line, uvicorn's default headers (server, date), ours, the body: one write."""
    if not cycle.disconnected and not protocol.transport.is_closing():
        content = [_OK]
        for name, value in (*protocol.server_state.default_headers, *headers):
            content += (name, b": ", value, b"\r\n")
        if not cycle.keep_alive:
            content.append(b"connection: close\r\n")
        content += (b"\r\n", body)
        protocol.write_whole(b"".join(content))
    cycle.response_complete = True
    if not cycle.keep_alive:
        protocol.transport.close()
    access.record(scope, 200, len(body), time.perf_counter() - start)
    protocol.on_response_complete()


def _hand_over(protocol: JoinedWritesProtocol, cycle: LaneCycle, scope: Scope,
               respond: Callable[[Request], Awaitable[Response]], start: float) -> None:
    """Send what `respond` makes through a real uvicorn cycle, as the fast lane would
    (`Vary: Origin`, the hit lane, the access log): for everything but a complete 200."""
    real = RequestResponseCycle(
        scope=scope, transport=protocol.transport, flow=protocol.flow, logger=protocol.logger,
        access_logger=protocol.access_logger, access_log=protocol.access_log,
        default_headers=protocol.server_state.default_headers, message_event=asyncio.Event(),
        expect_100_continue=False, keep_alive=cycle.keep_alive,
        on_response=protocol.on_response_complete)
    real.more_body = cycle.more_body
    real.disconnected = cycle.disconnected
    if not real.more_body:
        real.message_event.set()  # the request (no body) was complete: receive() returns it
    if protocol.cycle is cycle:
        protocol.cycle = real  # later disconnects, body bytes and shutdown reach it

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        response = await respond(Request(scope, receive))
        await sparql.send_response(response, scope, receive, send, start)

    protocol._start_asgi_task(real, asgi)  # uvicorn's own way to run a cycle
