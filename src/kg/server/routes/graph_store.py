"""SPARQL 1.1 Graph Store HTTP Protocol: /rdf-graphs?graph=<iri> | ?default (indirect), and direct
identification of graph IRIs under the base: /rdf-graphs/<path> is <base>rdf-graphs/<path> and
/graph/<path> is <base>graph/<path> (the project's own graphs: graph/doc/..., graph/ontology).

GET and HEAD are for everyone; PUT, POST and DELETE need the write credential (server/auth.py)
and run as SHACL-checked transactions (kg.store.writes). Status codes: PUT and POST answer 201
when the graph is new and 204 otherwise; POST to /rdf-graphs without a graph creates
<base>rdf-graphs/<uuid> (201 with Location); DELETE answers 204, or 404 when the graph does
not exist; GET/HEAD of an unknown graph 404. Bodies: Turtle, N-Triples, N-Quads and TriG (default
graph only), RDF/XML, JSON-LD, N3, and multipart/form-data of those; RDF/XML with a DOCTYPE or
ENTITY declaration is refused (entity expansion); unparsable RDF is 400 with the parser's
message; a missing or unknown Content-Type is 415. The default graph is the store's real
default graph (not the union queries see).
"""

from __future__ import annotations

import re
import uuid
from urllib.parse import parse_qsl

import pyoxigraph as ox
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.responses import Response

from kg.errors import (
    BadParameter,
    NotFound,
    RdfSyntaxError,
    UnsupportedMediaType,
)
from kg.namespaces import kg_prefixes
from kg.server.auth import check_write_access
from kg.server.routes.update import counted_write
from kg.server.state import AppState, StateDep
from kg.sparql.negotiation import FORMAT_PARAMS, negotiate
from kg.sparql.results import RDF_FORMATS
from kg.store import writes

router = APIRouter()

METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE"]

INPUT_FORMATS: dict[str, ox.RdfFormat] = {
    "text/turtle": ox.RdfFormat.TURTLE,
    "application/n-triples": ox.RdfFormat.N_TRIPLES,
    "application/rdf+xml": ox.RdfFormat.RDF_XML,
    "application/ld+json": ox.RdfFormat.JSON_LD,
    "application/n-quads": ox.RdfFormat.N_QUADS,
    "application/trig": ox.RdfFormat.TRIG,
    "application/x-turtle": ox.RdfFormat.TURTLE,
    "text/n3": ox.RdfFormat.N3,
    "text/rdf+n3": ox.RdfFormat.N3,
    "application/xml": ox.RdfFormat.RDF_XML,
}
XML_DECLARATIONS = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


# --- graph identification -------------------------------------------------------------------


def _indirect_graph(request: Request) -> ox.NamedNode | ox.DefaultGraph | None:
    """?graph=<iri> or ?default; None when neither is given. Percent-decoding happens once."""
    params = parse_qsl(request.url.query, keep_blank_values=True)
    graphs = [v for k, v in params if k == "graph"]
    default = any(k == "default" for k, _ in params)
    if (graphs and default) or len(graphs) > 1:
        raise BadParameter("Give exactly one of `graph=<iri>` or `default`.")
    if default:
        return ox.DefaultGraph()
    if graphs:
        try:
            return ox.NamedNode(graphs[0])
        except ValueError as exc:
            raise BadParameter(f"`graph` is not an absolute IRI: {exc}") from exc
    return None


def _direct_graph(request: Request, state: AppState) -> ox.NamedNode:
    """The graph IRI a direct request names: the base IRI + the request path, as sent."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    path = raw.decode("latin-1").split("?", 1)[0].lstrip("/")
    try:
        return ox.NamedNode(state.settings.base_iri + path)
    except ValueError as exc:
        raise BadParameter(f"The path does not make a valid graph IRI: {exc}") from exc


async def _exists(state: AppState, graph: ox.NamedNode | ox.DefaultGraph) -> bool:
    return isinstance(graph, ox.DefaultGraph) or await run_in_threadpool(
        state.store.contains_graph, graph)


# --- content negotiation (S1's table: kg.sparql.negotiation) ----------------------------------



def choose_output(request: Request) -> tuple[str, ox.RdfFormat]:
    """Content-Type and format of a graph response: Accept with q-values, or `format=`."""
    values = [v for name in FORMAT_PARAMS for v in request.query_params.getlist(name)]
    fmt = negotiate("CONSTRUCT", request.headers.get("accept"), values)
    return fmt.content_type, RDF_FORMATS[fmt.key]


def _input_format(content_type: str | None) -> ox.RdfFormat:
    if not content_type:
        raise UnsupportedMediaType("A Content-Type naming an RDF format is required.")
    media, *params = [p.strip() for p in content_type.split(";")]
    for param in params:
        name, _, value = param.partition("=")
        if name.lower() == "charset" and value.strip('"').lower() not in ("utf-8", "utf8"):
            raise UnsupportedMediaType(f"Only UTF-8 bodies are accepted, not {value}.")
    fmt = INPUT_FORMATS.get(media.lower())
    if fmt is None:
        accepted = ", ".join(sorted(INPUT_FORMATS))
        raise UnsupportedMediaType(f"Unsupported Content-Type {media!r}; accepted: {accepted}.")
    return fmt


# --- bodies ---------------------------------------------------------------------------------


def parse_rdf(body: bytes, fmt: ox.RdfFormat, base_iri: str) -> list[ox.Triple]:
    """Triples of an upload; named graphs in a dataset format, or XML entities, are refused."""
    if fmt == ox.RdfFormat.RDF_XML and XML_DECLARATIONS.search(body):
        raise RdfSyntaxError("RDF/XML with a DOCTYPE or ENTITY declaration is not accepted.")
    try:
        quads = list(ox.parse(body, format=fmt, base_iri=base_iri))
    except (SyntaxError, ValueError) as exc:
        raise RdfSyntaxError(f"Invalid {fmt.name}: {exc}") from exc
    triples = []
    for quad in quads:
        if not isinstance(quad.graph_name, ox.DefaultGraph):
            raise BadParameter(
                "The body holds named graphs; a Graph Store request addresses one graph."
            )
        triples.append(quad.triple)
    return triples


async def _read_triples(request: Request, base_iri: str) -> list[ox.Triple]:
    content_type = request.headers.get("content-type")
    if content_type and content_type.split(";")[0].strip().lower() == "multipart/form-data":
        triples: list[ox.Triple] = []
        async with request.form() as form:
            for _name, part in form.multi_items():
                if not isinstance(part, UploadFile):
                    continue
                fmt = _input_format(part.headers.get("content-type"))
                triples += parse_rdf(await part.read(), fmt, base_iri)
        return triples
    fmt = _input_format(content_type)
    return parse_rdf(await request.body(), fmt, base_iri)


def _triples_text(triples: list[ox.Triple]) -> str:
    """Triples as N-Triples, which is valid inside SPARQL INSERT DATA: serialised by pyoxigraph,
    never assembled from request text."""
    return ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES).decode() if triples else ""


def _put_text(graph: ox.NamedNode | ox.DefaultGraph, triples: list[ox.Triple]) -> str:
    data = _triples_text(triples)
    if isinstance(graph, ox.DefaultGraph):
        return "CLEAR DEFAULT" + (f" ;\nINSERT DATA {{\n{data}}}" if data else "")
    text = f"CLEAR SILENT GRAPH {graph} ;\nCREATE SILENT GRAPH {graph}"
    return text + (f" ;\nINSERT DATA {{ GRAPH {graph} {{\n{data}}} }}" if data else "")


def _post_text(graph: ox.NamedNode | ox.DefaultGraph, triples: list[ox.Triple]) -> str:
    data = _triples_text(triples)
    if isinstance(graph, ox.DefaultGraph):
        return f"INSERT DATA {{\n{data}}}"
    return f"CREATE SILENT GRAPH {graph}" + (
        f" ;\nINSERT DATA {{ GRAPH {graph} {{\n{data}}} }}" if data else ""
    )


# --- handlers -------------------------------------------------------------------------------


async def _get(request: Request, state: AppState, graph: ox.NamedNode | ox.DefaultGraph):
    if not await _exists(state, graph):
        raise NotFound(f"No graph <{graph.value}> in the store.")
    content_type, fmt = choose_output(request)
    headers = {"Vary": "Accept"}
    if request.method == "HEAD":
        return Response(status_code=200, media_type=content_type, headers=headers)

    def serialize() -> bytes:
        quads = state.store.graph_quads(graph)
        items = quads if fmt.supports_datasets else (q.triple for q in quads)
        prefixes = kg_prefixes(state.settings.base_iri) if fmt in (
            ox.RdfFormat.TURTLE, ox.RdfFormat.TRIG, ox.RdfFormat.RDF_XML) else None
        return ox.serialize(items, format=fmt, prefixes=prefixes)

    body = await run_in_threadpool(serialize)
    return Response(body, status_code=200, media_type=content_type, headers=headers)


async def _write(request: Request, state: AppState, graph, *, create: bool = False) -> Response:
    with counted_write():
        check_write_access(request, state.settings)
        method = request.method
        if method == "DELETE":
            text = "CLEAR DEFAULT" if isinstance(graph, ox.DefaultGraph) else f"DROP GRAPH {graph}"
            await writes.commit(state, text, probe=graph, must_exist=True, generated=True)
            return Response(status_code=204)
        base = graph.value if isinstance(graph, ox.NamedNode) else state.settings.base_iri
        triples = await _read_triples(request, base)
        text = _put_text(graph, triples) if method == "PUT" else _post_text(graph, triples)
        outcome = await writes.commit(state, text, probe=graph, generated=True)
    if create:
        return Response(status_code=201, headers={"Location": graph.value})
    return Response(status_code=204 if outcome.existed else 201)


async def _dispatch(request: Request, state: AppState, graph) -> Response:
    if request.method in ("GET", "HEAD"):
        return await _get(request, state, graph)
    return await _write(request, state, graph)


@router.api_route("/rdf-graphs", methods=METHODS)
async def indirect(request: Request, state: StateDep) -> Response:
    """Indirect identification; POST without a graph creates a new one (201 + Location)."""
    graph = _indirect_graph(request)
    if graph is None:
        if request.method == "POST":
            new = ox.NamedNode(f"{state.settings.base_iri}rdf-graphs/{uuid.uuid4().hex}")
            return await _write(request, state, new, create=True)
        raise BadParameter("Name a graph with `graph=<iri>`, or `default` for the default graph.")
    return await _dispatch(request, state, graph)


@router.api_route("/rdf-graphs/{rest:path}", methods=METHODS)
async def direct_store(request: Request, state: StateDep, rest: str) -> Response:
    """Direct identification: /rdf-graphs/<path> is the graph <base>rdf-graphs/<path>."""
    if not rest:
        return await indirect(request, state)
    return await _dispatch(request, state, _direct_graph(request, state))


@router.api_route("/graph/{rest:path}", methods=METHODS)
async def direct_graph(request: Request, state: StateDep, rest: str) -> Response:
    """Direct identification of the project's graphs: /graph/doc/x is <base>graph/doc/x."""
    return await _dispatch(request, state, _direct_graph(request, state))
