"""The SPARQL 1.1 Protocol endpoint: GET and POST /sparql (and /sparql/, never a redirect).

Queries are guarded (kg.sparql.guard), negotiated (kg.sparql.negotiation) and run in an
isolated worker (kg.sparql.executor); the status is known before the first body byte. Updates
are guarded here and handed to kg.server.routes.update.handle_update.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import pyoxigraph as ox
from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

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
from kg.server.state import StateDep
from kg.sparql import guard
from kg.sparql.executor import QueryJob
from kg.sparql.negotiation import FORMAT_PARAMS, negotiate

router = APIRouter()

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


async def answer_query(request: Request, state: StateDep, proto: ProtocolRequest) -> Response:
    """Guard, negotiate, execute in a worker, then stream the spooled result."""
    settings = state.settings
    text = proto.query or ""
    try:
        analysis = guard.check_query(
            text, settings.allow_service, settings.allow_load, settings.base_iri
        )
        fmt = negotiate(analysis.form or "SELECT", request.headers.get("accept"), proto.formats)
        default_graph = _graph_iris(proto.default_graph, "default-graph-uri")
        named_graph = _graph_iris(proto.named_graph, "named-graph-uri")
        dataset_given = bool(default_graph or named_graph)
        job = QueryJob(
            query=text,
            format=fmt.key,
            default_graph=default_graph if dataset_given else None,
            named_graphs=named_graph if dataset_given else None,
        )
        result = await state.executor.execute(job)
    except QueryTimeout:
        _count_timeout()
        raise
    except KgError as exc:
        if exc.status < 500:
            _count_rejected(_reason(exc))
        raise
    headers = {
        "Content-Type": result.format.content_type,
        "Content-Length": str(result.size),
        "Vary": "Accept",
        "Cache-Control": "no-cache",
    }
    if request.method == "HEAD":
        result.discard()
        return Response(status_code=200, headers=headers)
    return StreamingResponse(result.chunks(), headers=headers)


async def answer_update(request: Request, state: StateDep, proto: ProtocolRequest) -> Response:
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


async def _service_description(request: Request, state: StateDep) -> Response:
    try:
        from kg.server.service_description import render
    except ImportError:
        raise BadParameter("Missing `query` parameter.") from None
    return await render(request, state)


async def sparql_get(request: Request, state: StateDep) -> Response:
    """GET/HEAD: `?query=`; nothing at all → the service description."""
    proto = collect(request.query_params.multi_items())
    if proto.update is not None:
        _count_rejected("protocol")
        raise BadParameter("SPARQL Update must be sent with POST, not GET.")
    if proto.query is None:
        return await _service_description(request, state)
    return await answer_query(request, state, proto)


async def sparql_post(request: Request, state: StateDep) -> Response:
    """POST: a form (`query=`/`update=`) or a direct application/sparql-query|update body."""
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


for _path in ("/sparql", "/sparql/"):
    router.add_api_route(_path, sparql_get, methods=["GET", "HEAD"], include_in_schema=False)
    router.add_api_route(_path, sparql_post, methods=["POST"], include_in_schema=False)
