"""The SPARQL 1.1 Protocol endpoint: GET and POST /sparql (and /sparql/, never a redirect).

Queries are guarded (kg.sparql.guard), negotiated (kg.sparql.negotiation) and run in an
isolated worker (kg.sparql.executor); the status is known before the first body byte. Updates
are guarded here and handed to kg.server.routes.update.handle_update.

Lean on purpose (README, Performance): these are plain Starlette routes (no FastAPI dependency
solving, which ran the state dependency in a thread per request), a complete result is sent as
one `Response`, and complete small results are kept in the response cache (kg.server.cache):
GET/HEAD answers carry a strong `ETag` and `Cache-Control`, and `If-None-Match` gets a 304
without running the query. A large SELECT may be streamed (kg.sparql.streaming): no
Content-Length, and a failure after the first byte cuts the response short.
"""

from __future__ import annotations

import asyncio
import codecs
import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import pyoxigraph as ox
from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from kg.config import Settings
from kg.errors import (
    BadParameter,
    ForbiddenOperation,
    KgError,
    QuerySyntaxError,
    QueryTimeout,
    TooManyRows,
    UnsupportedMediaType,
    WritesDisabled,
)
from kg.server import access, metrics, query_string
from kg.server.cache import ETAG, ResponseCache
from kg.server.state import AppState
from kg.sparql import guard
from kg.sparql.negotiation import FORMAT_PARAMS, negotiate
from kg.sparql.prologue import MEMO_PROLOGUE_CHARS, prologue_prefixes
from kg.sparql.results import PREFIXED_FORMATS
from kg.sparql.streaming import StreamAborted
from kg.store.base import QueryJob, QueryResult

router = APIRouter()
log = logging.getLogger("kg.sparql")

FORM = "application/x-www-form-urlencoded"
SPARQL_QUERY = "application/sparql-query"
SPARQL_UPDATE = "application/sparql-update"
ACCEPTED_POST_TYPES = (FORM, SPARQL_QUERY, SPARQL_UPDATE)


@dataclass
class ProtocolRequest:
    """The protocol parameters of one request, from the URL and (for forms) the body."""

    query: str | None = None
    update: str | None = None
    default_graph: list[str] = field(default_factory=list)
    named_graph: list[str] = field(default_factory=list)
    using_graph: list[str] = field(default_factory=list)
    using_named_graph: list[str] = field(default_factory=list)
    formats: list[str] = field(default_factory=list)


def collect(params: Sequence[tuple[str, str]]) -> ProtocolRequest:
    """Read protocol parameters; several `query` (or `update`) values are a 400."""
    proto = ProtocolRequest()
    lists = {
        "default-graph-uri": proto.default_graph,
        "named-graph-uri": proto.named_graph,
        "using-graph-uri": proto.using_graph,
        "using-named-graph-uri": proto.using_named_graph,
    }
    for name, value in params:
        if name in ("query", "update"):
            if getattr(proto, name) is not None:
                raise BadParameter(f"Several `{name}` parameters: send exactly one.")
            setattr(proto, name, value)
        elif name in lists:
            lists[name].append(value)
        elif name in FORMAT_PARAMS:
            proto.formats.append(value)
    if proto.query is not None and proto.update is not None:
        raise BadParameter("A request carries either `query` or `update`, not both.")
    return proto


def _count_rejected(reason: str) -> None:
    try:
        from kg.server.metrics import REJECTED_QUERIES
    except ImportError:
        return
    REJECTED_QUERIES.labels(reason=reason).inc()


def _count_timeout() -> None:
    try:
        from kg.server.metrics import QUERY_TIMEOUTS
    except ImportError:
        return
    QUERY_TIMEOUTS.inc()


def _reason(exc: KgError) -> str:
    if isinstance(exc, ForbiddenOperation):
        return str(exc.extra.get("operation", "forbidden")).lower()
    if isinstance(exc, QuerySyntaxError):
        return "syntax"
    if isinstance(exc, TooManyRows):
        return "rows"
    return {406: "not_acceptable", 413: "size", 415: "media_type"}.get(exc.status, "protocol")


def _graph_iris(values: Sequence[str], parameter: str) -> list[str]:
    for value in values:
        try:
            ox.NamedNode(value)
        except ValueError:
            raise BadParameter(f"`{parameter}` is not an absolute IRI: {value!r}") from None
    return list(values)


def _decode(body: bytes, charset: str | None) -> str:
    """The protocol requires UTF-8 bodies; another declared charset is a 415, not a guess."""
    name = (charset or "utf-8").strip().strip('"')
    try:
        is_utf8 = codecs.lookup(name).name == "utf-8"
    except LookupError:
        raise UnsupportedMediaType(f"Unknown charset {name!r}; send UTF-8.") from None
    if not is_utf8:
        raise UnsupportedMediaType(f"SPARQL request bodies must be UTF-8, not {name!r}.")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadParameter(f"The body is not valid UTF-8: {exc}") from None


def _media_type(header: str | None) -> tuple[str, dict[str, str]]:
    if not header:
        return "", {}
    media, *params = header.split(";")
    parsed = {}
    for param in params:
        key, _, value = param.partition("=")
        parsed[key.strip().lower()] = value.strip()
    return media.strip().lower(), parsed


_negotiate = functools.lru_cache(maxsize=1024)(negotiate)  # pure; Accept values repeat
_TRIPLE_FORMS = frozenset({"CONSTRUCT", "DESCRIBE"})
CACHED = "kg.cached"  # scope key: (cache key, entry, version) of a cached GET answer
_CACHE_HIT = metrics.CACHE_LOOKUPS.labels(result="hit")  # bound once: labels() costs per call
_CACHE_MISS = metrics.CACHE_LOOKUPS.labels(result="miss")
_NOT_MODIFIED = metrics.CACHE_LOOKUPS.labels(result="not_modified")


def _state(request: Request) -> AppState:
    return request.app.state.kg


def _cache(state: AppState) -> ResponseCache:
    """The process's response cache, made on first use from the settings."""
    cache = state.extras.get("sparql_cache")
    if cache is None:
        s = state.settings
        fingerprint = repr((s.base_iri, s.union_default_graph, s.max_rows, s.stream_results,
                            s.max_result_bytes))
        cache = state.extras["sparql_cache"] = ResponseCache(
            s.cache_bytes, s.cache_entry_bytes, fingerprint)
    return cache


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    return any(tag.strip() in (etag, "*", "W/" + etag) for tag in header.split(","))


@dataclass(slots=True)
class Answer:
    """What a query request comes to, before it is rendered as a response: a 304, a complete
    body (cached or fresh), or a worker's result to send from its spool or as it grows.

    Rendered by `answer_query` (a Starlette Response, for the routes) and by `SparqlFastLane`
    (raw ASGI messages: the cold path's framework cost was measured at a third of a small
    query's time in the request process).
    """

    status: int
    etag: str | None
    body: bytes | None = None
    content_type: str = ""
    result: QueryResult | None = None
    cached: tuple[Any, ...] | None = None  # (cache key, entry, version) of a hit: the hit lane's


@dataclass(slots=True)
class Pending:
    """A query `prepare` found in no cache: the worker's job, and what labels its answer."""

    job: QueryJob
    key: Any  # the response cache's key
    version: int  # the store's version when the cache was asked
    conditional: bool  # GET/HEAD: ETag and Cache-Control


def prepare(state: AppState, proto: ProtocolRequest, method: str, accept: str | None,
            if_none_match: str | None) -> Answer | Pending:
    """Guard, negotiate, then the cache: an Answer (a hit or a 304), or the job to run.

    Synchronous, so that kg.server.protocol_lane can call it inside the HTTP parser's callback.
    A KgError is raised before anything is counted; cache lookups are counted here.
    """
    settings = state.settings
    text = proto.query or ""
    conditional = method != "POST"  # ETag, 304 and Cache-Control for GET and HEAD
    cache = _cache(state)
    analysis = guard.check_query(text, settings.allow_service, settings.allow_load,
                                 settings.base_iri)
    fmt = _negotiate(analysis.form or "SELECT", accept, tuple(proto.formats))
    if proto.default_graph or proto.named_graph:
        default_graph: list[str] | None = _graph_iris(proto.default_graph, "default-graph-uri")
        named_graph: list[str] | None = _graph_iris(proto.named_graph, "named-graph-uri")
    else:
        default_graph = named_graph = None
    key = cache.key(text, default_graph, named_graph, fmt.key)
    version = state.store.version
    hit = cache.get(key, version)
    if conditional and if_none_match:
        etag = hit[ETAG] if hit is not None else cache.etag(key, version)
        if _etag_matches(if_none_match, etag):
            _NOT_MODIFIED.inc()
            return Answer(304, etag)
    if hit is not None:
        _CACHE_HIT.inc()
        body, content_type, etag, _ = hit
        return Answer(200, etag if conditional else None, body, content_type,
                      cached=(key, hit, version) if conditional else None)
    _CACHE_MISS.inc()
    prefixes = None
    end = analysis.prologue_end
    if (end is not None and end <= MEMO_PROLOGUE_CHARS and fmt.key in PREFIXED_FORMATS
            and analysis.form in _TRIPLE_FORMS):
        # read here, remembered per prologue, not in the busy worker (kg.sparql.prologue);
        # None for a long prologue or namespaces: the worker reads those, as before
        prefixes = prologue_prefixes(text[:end], settings.base_iri)
    return Pending(QueryJob(query=text, format=fmt.key, default_graph=default_graph,
                            named_graphs=named_graph, prefixes=prefixes),
                   key, version, conditional)


async def run(state: AppState, pending: Pending) -> Answer:
    """The worker's answer to a `prepare`d job, stored in the cache when complete and small."""
    cache = _cache(state)
    result = await state.executor.execute(pending.job)
    # label the response with the version the result was computed on (a write may have landed)
    computed_on = result.version
    if computed_on is None and state.store.version == pending.version:
        computed_on = pending.version
    etag = (cache.etag(pending.key, computed_on)
            if pending.conditional and computed_on is not None else None)
    content_type = result.format.content_type
    if result.inline is None or getattr(result, "streamed", False):
        return Answer(200, etag, content_type=content_type, result=result)
    if computed_on is not None and computed_on == state.store.version:
        # not handed to the hit lane yet: it remembers answers asked for again (a cache hit)
        cache.put(pending.key, computed_on, result.inline, content_type, etag)
    return Answer(200, etag, result.inline, content_type)


def count_failure(exc: KgError) -> None:
    """A refused or failed query, in the metrics (every path that answers one calls this)."""
    if isinstance(exc, QueryTimeout):
        _count_timeout()
    elif exc.status < 500:
        _count_rejected(_reason(exc))


async def evaluate(state: AppState, proto: ProtocolRequest, method: str, accept: str | None,
                   if_none_match: str | None) -> Answer:
    """Guard, negotiate; then the cache, or a worker (complete result or a stream)."""
    try:
        step = prepare(state, proto, method, accept, if_none_match)
        return step if isinstance(step, Answer) else await run(state, step)
    except KgError as exc:
        count_failure(exc)
        raise


async def answer_query(request: Request, state: AppState, proto: ProtocolRequest) -> Response:
    """`evaluate`, as a Starlette Response."""
    headers = request.headers
    answer = await evaluate(state, proto, request.method, headers.get("accept"),
                            headers.get("if-none-match"))
    return render(request, state.settings, answer)


def render(request: Request, settings: Settings, answer: Answer) -> Response:
    if answer.cached is not None:
        request.scope[CACHED] = answer.cached
    if answer.status == 304:
        return Response(status_code=304, headers=_headers(settings, answer.etag))
    result = answer.result
    if result is None:
        assert answer.body is not None
        return _complete(request, answer.body, answer.content_type,
                         _headers(settings, answer.etag))
    if getattr(result, "streamed", False):
        if request.method == "HEAD":
            result.discard()
            return Response(status_code=200, headers={
                "Content-Type": answer.content_type, **_headers(settings, answer.etag)})
        return StreamedResponse(result, {
            "Content-Type": answer.content_type, **_headers(settings, answer.etag)})
    return _spooled(request, result, _headers(settings, answer.etag))


def _headers(settings: Settings, etag: str | None) -> dict[str, str]:
    if etag is None:
        return {"Vary": "Accept", "Cache-Control": "no-cache"}
    return {"Vary": "Accept", "ETag": etag,
            "Cache-Control": f"public, max-age={settings.cache_max_age}, must-revalidate"}


def _complete(request: Request, body: bytes, content_type: str,
              headers: dict[str, str]) -> Response:
    headers["Content-Type"] = content_type
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(body))
        return Response(status_code=200, headers=headers)
    return Response(body, headers=headers)


def _spooled(request: Request, result: QueryResult, headers: dict[str, str]) -> Response:
    headers["Content-Type"] = result.format.content_type
    headers["Content-Length"] = str(result.size)
    if request.method == "HEAD":
        result.discard()
        return Response(status_code=200, headers=headers)
    return StreamingResponse(result.chunks(), headers=headers)


class StreamedResponse(Response):
    """Sends a `StreamedResult` as it grows (chunked); a failure after the first byte returns
    without completing the response, so the server closes the connection mid-body."""

    def __init__(self, result: QueryResult, headers: dict[str, str]) -> None:
        self.result = result
        self.status_code = 200
        self.background = None
        self.body = b""
        self.init_headers(headers)
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        watcher = asyncio.get_running_loop().create_task(disconnected())
        chunks = self.result.chunks()
        try:
            await send({"type": "http.response.start", "status": 200,
                        "headers": self.raw_headers})
            async for chunk in chunks:
                if watcher.done():
                    return  # the client left; closing `chunks` stops the worker
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except StreamAborted as exc:
            metrics.STREAM_ABORTS.inc()
            log.warning("streamed result cut short after the first byte: %s", exc)
            return
        finally:
            watcher.cancel()
            await chunks.aclose()  # type: ignore[attr-defined]
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def answer_update(request: Request, state: AppState, proto: ProtocolRequest) -> Response:
    """Guard the update (LOAD/SERVICE, query-as-update), then hand it to the writes route."""
    settings = state.settings
    text = proto.update or ""
    try:
        guard.check_update(text, settings.allow_service, settings.allow_load, settings.base_iri)
    except KgError as exc:
        _count_rejected(_reason(exc))
        raise
    try:
        from kg.server.routes.update import handle_update
    except ImportError:  # the writes route is not installed
        raise WritesDisabled("SPARQL Update is not available on this server.") from None
    return await handle_update(
        request, state, text, proto.using_graph, proto.using_named_graph
    )


async def _service_description(request: Request, state: AppState) -> Response:
    try:
        from kg.server.service_description import render
    except ImportError:
        raise BadParameter("Missing `query` parameter.") from None
    return await render(request, state)


async def sparql_get(request: Request) -> Response:
    """GET/HEAD: `?query=`; nothing at all → the service description."""
    state = _state(request)
    # what request.query_params does, without building the multidict
    proto = collect(query_string.parse(request.scope["query_string"]))
    if proto.update is not None:
        _count_rejected("protocol")
        raise BadParameter("SPARQL Update must be sent with POST, not GET.")
    if proto.query is None:
        return await _service_description(request, state)
    return await answer_query(request, state, proto)


async def sparql_post(request: Request) -> Response:
    """POST: a form (`query=`/`update=`) or a direct application/sparql-query|update body."""
    state = _state(request)
    media, params = _media_type(request.headers.get("content-type"))
    if media not in ACCEPTED_POST_TYPES:
        _count_rejected("media_type")
        shown = f"Content-Type {media!r}" if media else "no Content-Type"
        raise UnsupportedMediaType(
            f"POST /sparql with {shown}: use {FORM} (query= or update=), {SPARQL_QUERY} "
            f"or {SPARQL_UPDATE}.",
            accepted=list(ACCEPTED_POST_TYPES),
        )
    url_params = request.query_params.multi_items()
    if any(name in ("query", "update") for name, _ in url_params):
        _count_rejected("protocol")
        raise BadParameter(
            "With POST, the query or update goes in the body, not also in the URL."
        )
    body = await request.body()
    if not body.strip():
        _count_rejected("protocol")
        raise BadParameter("The request body is empty.")
    if media == FORM:
        try:
            form = parse_qsl(
                body.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="strict"
            )
        except UnicodeDecodeError as exc:
            raise BadParameter(f"The form is not valid UTF-8: {exc}") from None
        proto = collect([*url_params, *form])
        if proto.query is None and proto.update is None:
            _count_rejected("protocol")
            raise BadParameter("The form has neither `query=` nor `update=`.")
    else:
        proto = collect(url_params)
        text = _decode(body, params.get("charset"))
        if media == SPARQL_QUERY:
            proto.query = text
        else:
            proto.update = text
    if proto.update is not None:
        return await answer_update(request, state, proto)
    return await answer_query(request, state, proto)


class SparqlFastLane:
    """Plain GET/HEAD /sparql requests, answered without FastAPI's middleware stack, routing,
    exception and CORS layers, and a complete answer without Request/Response objects: its
    headers are written as bytes (same names, values and order as `render` gives).

    Called by kg.server.app.KgApp before the stack when `takes(scope)`: no Origin header (so
    CORS adds only `Vary: Origin`, added here too) and no request body. Requests are counted
    and logged here (kg.server.access.record), as the access middleware would. Errors, spooled
    and streamed results are rendered as the routes render them and mapped by the app's own
    handlers (KgError, and Exception for bugs, as the stack would). Everything else goes down
    the normal stack to the same `sparql_get`. Under `kg serve` most plain GETs are answered
    earlier still, inside the HTTP protocol (kg.server.protocol_lane, which shares `prepare`,
    `run` and `raw_headers` with this lane); this one takes what that one declines.
    """

    PATHS = frozenset({"/sparql", "/sparql/"})

    @classmethod
    def takes(cls, scope: Scope) -> bool:
        return (scope["type"] == "http" and scope["path"] in cls.PATHS
                and scope["method"] in ("GET", "HEAD")
                and not any(name in _NOT_PLAIN for name, _ in scope["headers"]))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        scope["route"] = LANE_ROUTES[scope["path"]]  # the access log's route label
        app = scope["app"]
        state: AppState = app.state.kg
        accept = if_none_match = None
        for name, value in scope["headers"]:
            if name == b"accept":
                accept = value.decode("latin-1") if accept is None else (
                    f"{accept},{value.decode('latin-1')}")
            elif name == b"if-none-match":
                if_none_match = value.decode("latin-1")
        answer: Answer | None = None
        response: Response | None = None
        try:
            proto = collect(query_string.parse(scope["query_string"]))
            if proto.update is not None or proto.query is None:
                response = await sparql_get(Request(scope, receive))
            else:
                answer = await evaluate(state, proto, scope["method"], accept, if_none_match)
                if answer.status != 200 or answer.body is None:
                    response = render(Request(scope, receive), state.settings, answer)
        except KgError as exc:
            response = await app.exception_handlers[KgError](Request(scope, receive), exc)
        except Exception as exc:  # a bug: the same 500 problem the stack would give
            response = await app.exception_handlers[Exception](Request(scope, receive), exc)
        if response is not None:
            await send_response(response, scope, receive, send, start)
            return
        assert answer is not None and answer.body is not None
        body = answer.body
        headers = raw_headers(state.settings, answer.etag, answer.content_type, len(body))
        if answer.cached is not None:
            lane = getattr(app, "sparql_hits", None)
            if lane is not None:
                lane.remember(scope, *answer.cached, headers)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if scope["method"] == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            access.record(scope, 200, 0, time.perf_counter() - start)
        else:
            await send({"type": "http.response.body", "body": body})
            access.record(scope, 200, len(body), time.perf_counter() - start)


async def send_response(response: Response, scope: Scope, receive: Receive, send: Send,
                         start: float) -> None:
    """A rendered response from the lane: `Vary: Origin` added, counted and logged."""
    vary = response.headers.get("vary")
    response.headers["Vary"] = f"{vary}, Origin" if vary else "Origin"
    cached = scope.get(CACHED)
    lane = getattr(scope["app"], "sparql_hits", None)
    if cached is not None and lane is not None and response.status_code == 200:
        lane.remember(scope, *cached, response.raw_headers)
    sent = {"status": 500, "bytes": 0}

    async def counting_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            sent["status"] = message["status"]
        elif message["type"] == "http.response.body":
            sent["bytes"] += len(message.get("body", b""))
        await send(message)

    try:
        await response(scope, receive, counting_send)
    finally:
        access.record(scope, sent["status"], sent["bytes"], time.perf_counter() - start)


@functools.lru_cache(maxsize=64)
def _constant_headers(max_age: int) -> tuple[tuple[bytes, bytes], tuple[bytes, bytes]]:
    return ((b"vary", b"Accept, Origin"),
            (b"cache-control", f"public, max-age={max_age}, must-revalidate".encode()))


def raw_headers(settings: Settings, etag: str | None, content_type: str,
                 length: int) -> list[tuple[bytes, bytes]]:
    """What `render` + the lane's `Vary: Origin` give a complete 200, as bytes."""
    vary, cache_control = _constant_headers(settings.cache_max_age)
    if etag is None:
        return [vary, (b"cache-control", b"no-cache"),
                (b"content-type", content_type.encode("latin-1")),
                (b"content-length", str(length).encode("latin-1"))]
    return [vary, (b"etag", etag.encode("latin-1")), cache_control,
            (b"content-type", content_type.encode("latin-1")),
            (b"content-length", str(length).encode("latin-1"))]


_NOT_PLAIN = frozenset({b"origin", b"content-length", b"transfer-encoding"})


for _path in ("/sparql", "/sparql/"):
    # plain Starlette routes: no dependency solving or validation on the hot path
    router.add_route(_path, sparql_get, methods=["GET", "HEAD"], include_in_schema=False)
    router.add_route(_path, sparql_post, methods=["POST"], include_in_schema=False)

LANE_ROUTES = {
    r.path: r for r in router.routes if getattr(r, "path", None) in SparqlFastLane.PATHS
}
