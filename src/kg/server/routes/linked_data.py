"""Linked data: every <base>id/... IRI and the ontology IRI dereference (W3C Cool URIs, 303).

Pattern (documented in README, Linked data): the IRI of a thing, `/id/{path}`, never answers
with a document; it answers **303 See Other** to a document about it, chosen by `Accept`:
`/page/id/{path}` (HTML) or `/data/id/{path}.{ext}` (ttl, jsonld, rdf, nt, trig, nq), with
`Vary: Accept` and a `Link` header listing every alternate. `/data/id/{path}` without an
extension negotiates too and answers 200 with `Content-Location` of the concrete document.
The request path maps to an IRI through settings.base_iri, so a local run on any port and a
deployment on its own domain resolve the same minted IRIs. `/graph/...` belongs to the Graph
Store protocol (routes/graph_store.py) and is not routed here.
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import unquote_to_bytes

import pyoxigraph as ox
from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from kg.errors import BadParameter, NotAcceptable, NotFound
from kg.namespaces import graph_iri, kg_prefixes
from kg.server import html
from kg.server.document_view import build_document_view, fetch_document
from kg.server.entity_view import build_view, fetch_description, fetch_page_quads
from kg.server.ontology_view import build_ontology_view
from kg.server.problems import problem_response
from kg.server.queries import select
from kg.server.rdf_media import BY_EXTENSION, HTML, RDF_MEDIA, RdfMedia, negotiate, serialize
from kg.server.search_view import PER_GROUP, group_hits
from kg.server.state import AppState, StateDep

router = APIRouter()

GET_HEAD = ["GET", "HEAD"]
MAX_PATH = 1024


def _root(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/")


def _raw_rest(request: Request, marker: str) -> str:
    """The undecoded path after `marker` (e.g. '/id/'): IRIs are matched in their sent form."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    text = raw.decode("latin-1").split("?", 1)[0]
    _, found, rest = text.partition(marker)
    if not found:
        raise NotFound("no such resource")
    return rest


def _candidate_iris(base: str, rest: str) -> list[str]:
    """The IRIs a request path may name, or an error: never a file, never a dot segment.

    Malformed escapes (overlong UTF-8, NUL, control characters) are 400; dot segments, empty
    segments and escaped ASCII (%2e%2e, %2f) can never be part of a minted IRI, so 404.
    """
    if len(rest) > MAX_PATH:
        raise BadParameter("path too long")
    try:
        decoded = unquote_to_bytes(rest).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadParameter("the path is not valid percent-encoded UTF-8") from exc
    if any(ord(c) < 0x20 or ord(c) == 0x7F or c == "\\" for c in decoded):
        raise BadParameter("the path holds control characters or backslashes")
    if any(seg in ("", ".", "..") for seg in decoded.split("/")) or any(
        seg in ("", ".", "..") for seg in rest.split("/")
    ):
        raise NotFound("no such resource (empty or dot path segment)")
    if "%" in rest and decoded.isascii():
        raise NotFound("no such resource (escaped ASCII in the path)")
    iris = [base + rest]
    if decoded != rest:
        iris.append(base + decoded)  # a browser escaping an IRI's non-ASCII characters
    valid = []
    for iri in iris:
        try:
            ox.NamedNode(iri)
        except ValueError:
            continue
        valid.append(iri)
    if not valid:
        raise NotFound("no such resource (not an IRI)")
    return valid


def _exists(state: AppState, iris: list[str]) -> str | None:
    """The first candidate IRI the store knows (one thread: iterators stay where made)."""
    for iri in iris:
        if select(state.store, "entity_exists", state.settings.base_iri,
                  entity=ox.NamedNode(iri)):
            return iri
    return None


async def _resolve(state: AppState, rest: str) -> str:
    """The known entity IRI for the request, or a 404 fit for the client (HTML or problem)."""
    base = state.settings.base_iri + "id/"
    try:
        iris = _candidate_iris(base, rest)
        found = await run_in_threadpool(_exists, state, iris)
    except NotFound:
        found, iris = None, [base + rest]
    if found is None:
        raise _NotFoundPage(iris[0])
    return found


class _NotFoundPage(NotFound):
    """A 404 that browsers see as a page with a search box (see `not_found_response`)."""

    def __init__(self, iri: str) -> None:
        super().__init__(f"nothing is known about <{iri}>")
        self.iri = iri


def not_found_response(request: Request, exc: _NotFoundPage) -> Response:
    try:
        wants_html = negotiate(request.headers.get("accept")) is None
    except NotAcceptable:
        wants_html = False
    if not wants_html:
        response = problem_response(request, 404, NotFound.title, exc.detail)
        response.headers["Vary"] = "Accept"
        return response
    return html.render(
        request, "not_found.html", status=404, headers={"Vary": "Accept"}, iri=exc.iri,
        q=exc.iri.rstrip("/").rsplit("/", 1)[-1].replace("-", " "),
        hint="The identifier may be misspelt, or the entity may not be in this dataset. "
        "Search the labels:",
    )


def _links(root: str, doc_path: str) -> str:
    """Link header: the HTML page and every RDF document of one resource."""
    links = [f'<{root}/page/{doc_path}>; rel="alternate"; type="{HTML}"']
    links += [f'<{root}/data/{doc_path}.{m.extension}>; rel="alternate"; type="{m.media_type}"'
              for m in RDF_MEDIA]
    return ", ".join(links)


def _etag(state: AppState, kind: str) -> str:
    return f'W/"{state.store.version}-{kind}"'


def _not_modified(request: Request, etag: str, headers: dict[str, str]) -> Response | None:
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers={**headers, "ETag": etag})
    return None


def _see_other(request: Request, doc_path: str) -> Response:
    """303 to the document for the client's Accept, with Vary and the alternates."""
    root = _root(request)
    media = negotiate(request.headers.get("accept"))
    target = f"{root}/page/{doc_path}" if media is None else (
        f"{root}/data/{doc_path}.{media.extension}")
    return Response(status_code=303, headers={
        "Location": target, "Vary": "Accept", "Link": _links(root, doc_path)})


def _rdf(request: Request, state: AppState, quads: list[ox.Quad], media: RdfMedia,
         doc_path: str, negotiated: bool) -> Response:
    root = _root(request)
    headers = {"Link": _links(root, doc_path), "Vary": "Accept"}
    if negotiated:
        headers["Content-Location"] = f"{root}/data/{doc_path}.{media.extension}"
    etag = _etag(state, media.extension)
    if (cached := _not_modified(request, etag, headers)) is not None:
        return cached
    body = serialize(quads, media, kg_prefixes(state.settings.base_iri))
    return Response(body, media_type=media.media_type, headers={**headers, "ETag": etag})


def _split_extension(rest: str) -> tuple[str, RdfMedia | None]:
    stem, dot, ext = rest.rpartition(".")
    if dot and ext in BY_EXTENSION and stem:
        return stem, BY_EXTENSION[ext]
    return rest, None


@router.api_route("/id/{rest:path}", methods=GET_HEAD, include_in_schema=False)
async def entity(rest: str, request: Request, state: StateDep) -> Response:
    """The thing itself: 303 to its page or data document (never 200: a thing is no document)."""
    raw = _raw_rest(request, "/id/")
    try:
        await _resolve(state, raw)
    except _NotFoundPage as exc:
        return not_found_response(request, exc)
    return _see_other(request, "id/" + raw)  # the path as sent: ASCII, safe in headers


_PASSAGE = re.compile(r"^(doc/[^/]+)/((?:para|section|note)/[^/]+)$")
_DOCUMENT = re.compile(r"^doc/[^/]+$")


@router.api_route("/page/id/{rest:path}", methods=GET_HEAD, include_in_schema=False)
async def entity_page(rest: str, request: Request, state: StateDep) -> Response:
    """The HTML page about an entity; a source document's page shows its text; a passage's
    page is its place in that text (303 to /page/id/doc/<stem>#para-12)."""
    raw = _raw_rest(request, "/page/id/")
    try:
        iri = await _resolve(state, raw)
    except _NotFoundPage as exc:
        return html.render(request, "not_found.html", status=404, iri=exc.iri, q="",
                           hint="The entity may not be in this dataset. Search the labels:")
    root = _root(request)
    if (passage := _PASSAGE.match(raw)) is not None:
        anchor = passage.group(2).replace("/", "-")
        return Response(status_code=303,
                        headers={"Location": f"{root}/page/id/{passage.group(1)}#{anchor}"})
    doc_path = "id/" + raw
    headers = {"Link": _links(root, doc_path)}
    etag = _etag(state, "html")
    if (cached := _not_modified(request, etag, headers)) is not None:
        return cached
    headers["ETag"] = etag
    settings = state.settings
    if _DOCUMENT.match(raw):
        data = await run_in_threadpool(fetch_document, state.store, settings.base_iri, iri)
        if data is not None:
            doc = build_document_view(data, iri, settings.base_iri, root, settings.sources_dir)
            return html.render(request, "document.html", headers=headers, doc=doc,
                               alternates=RDF_MEDIA, data_path=f"{root}/data/{doc_path}")
    quads = await run_in_threadpool(fetch_page_quads, state.store, settings.base_iri, iri)
    view = build_view(quads, iri, settings.base_iri, root, settings.sources_dir)
    return html.render(request, "entity.html", headers=headers, view=view,
                       alternates=RDF_MEDIA, data_path=f"{root}/data/{doc_path}")


@router.api_route("/data/id/{rest:path}", methods=GET_HEAD, include_in_schema=False)
async def entity_data(rest: str, request: Request, state: StateDep) -> Response:
    """The RDF description of an entity, in the format its extension (or Accept) names."""
    stem, media = _split_extension(_raw_rest(request, "/data/id/"))
    negotiated = media is None
    if media is None:
        media = negotiate(request.headers.get("accept"), html=False)
    assert media is not None
    try:
        iri = await _resolve(state, stem)
    except _NotFoundPage as exc:
        raise NotFound(exc.detail) from None
    quads = await run_in_threadpool(
        fetch_description, state.store, state.settings.base_iri, iri)
    doc_path = "id/" + stem
    return _rdf(request, state, quads, media, doc_path, negotiated)


# --- the ontology -------------------------------------------------------------------------


def _graph_quads(state: AppState, name: str) -> list[ox.Quad]:
    g = ox.NamedNode(graph_iri(state.settings.base_iri, name))
    rows = select(state.store, "graph_quads", state.settings.base_iri, graph=g)
    return [ox.Quad(r["s"], r["p"], r["o"], g) for r in rows]  # type: ignore[arg-type]


def _ontology_quads(state: AppState) -> list[ox.Quad]:
    return _graph_quads(state, "ontology")


def _shape_quads(state: AppState) -> list[ox.Quad]:
    """graph/shapes as the build loaded it; else the shapes files the service checks writes
    against (a store made without a build, such as the test sample)."""
    quads = _graph_quads(state, "shapes")
    if quads:
        return quads
    for path in sorted(state.settings.shapes_dir.glob("*.ttl")):
        quads += ox.parse(path=str(path), format=ox.RdfFormat.TURTLE,
                          base_iri=state.settings.base_iri)
    return quads


async def _ontology_html(request: Request, state: AppState, headers: dict[str, str]) -> Response:
    """Documentation generated from the ontology and shapes graphs in the store."""
    root = _root(request)
    etag = _etag(state, "ontology-html")
    headers = {**headers, "Link": _links(root, "ontology")}
    if (cached := _not_modified(request, etag, headers)) is not None:
        return cached
    quads = await run_in_threadpool(_ontology_quads, state)
    if not quads:
        raise NotFound("the store holds no ontology graph")
    shapes = await run_in_threadpool(_shape_quads, state)
    view = build_ontology_view(quads, state.settings.ontology_iri, state.settings.base_iri, root,
                               shapes)
    return html.render(request, "ontology.html", headers={**headers, "ETag": etag},
                       onto=view, alternates=RDF_MEDIA, data_path=f"{root}/data/ontology")


@router.api_route("/ontology", methods=GET_HEAD, include_in_schema=False)
@router.api_route("/ontology/{version}", methods=GET_HEAD, include_in_schema=False)
async def ontology(request: Request, state: StateDep, version: str | None = None) -> Response:
    """The ontology IRI (terms are /ontology#Term) and its owl:versionIRI (/ontology/1.0.0).

    Browsers get the documentation here, 200 with `Content-Location: /page/ontology`, so
    <base>ontology#Agreement lands on the Agreement entry in one request; RDF clients get
    303 to /data/ontology.{ext} as before (Vary: Accept either way)."""
    if version is not None and version != await run_in_threadpool(_ontology_version, state):
        raise NotFound(f"no ontology version {version}")
    media = negotiate(request.headers.get("accept"))
    if media is not None:
        return _see_other(request, "ontology")
    return await _ontology_html(request, state, {
        "Vary": "Accept", "Content-Location": f"{_root(request)}/page/ontology"})


def _ontology_version(state: AppState) -> str | None:
    """The last path segment of the ontology's owl:versionIRI."""
    owl_version = ox.NamedNode("http://www.w3.org/2002/07/owl#versionIRI")
    for q in _ontology_quads(state):
        if q.predicate == owl_version and q.subject.value == state.settings.ontology_iri:
            return q.object.value.rstrip("/").rsplit("/", 1)[-1]
    return None


@router.api_route("/page/ontology", methods=GET_HEAD, include_in_schema=False)
async def ontology_page(request: Request, state: StateDep) -> Response:
    """The documentation at its own URL (what /ontology serves to browsers)."""
    return await _ontology_html(request, state, {})


@router.api_route("/data/ontology", methods=GET_HEAD, include_in_schema=False)
@router.api_route("/data/ontology.{ext}", methods=GET_HEAD, include_in_schema=False)
async def ontology_data(request: Request, state: StateDep, ext: str | None = None) -> Response:
    """The ontology graph as RDF (TriG and N-Quads keep its graph name)."""
    media = BY_EXTENSION.get(ext) if ext else negotiate(request.headers.get("accept"), html=False)
    if media is None:
        raise NotFound(f"no ontology document with extension .{ext}")
    quads = await run_in_threadpool(_ontology_quads, state)
    if not quads:
        raise NotFound("the store holds no ontology graph")
    return _rdf(request, state, quads, media, "ontology", ext is None)


# --- search (the 404 page's search box) ---------------------------------------------------


@router.get("/search", include_in_schema=False)
async def search(
    request: Request, state: StateDep, q: Annotated[str, Query(max_length=200)] = ""
) -> Response:
    """Entities whose label or alternative label contains `q` (case-insensitive), ranked and
    grouped by class with counts."""
    root = _root(request)
    needle = " ".join(q.split())
    groups = []
    if needle:
        rows = await run_in_threadpool(
            select, state.store, "search_labels", state.settings.base_iri,
            needle=ox.Literal(needle))
        groups = group_hits(rows, needle, state.settings.base_iri, root)
    return html.render(request, "search.html", q=needle, groups=groups,
                       total=sum(g.count for g in groups), per_group=PER_GROUP)
