"""The dataset describes itself: VoID + DCAT at /.well-known/void, dumps at /dumps/{name}.

Identifiers (the dataset, its subsets, graphs, entities) are minted under settings.base_iri;
access URLs (the endpoint, dump downloads) are where the client reached this server.
"""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime

import pyoxigraph as ox
from fastapi import APIRouter, Request
from starlette.responses import FileResponse, Response

from kg.errors import NotFound
from kg.namespaces import STANDARD_PREFIXES, kg_prefixes
from kg.server.dumps import Dump, find_dump, list_dumps
from kg.server.rdf_media import negotiate, serialize
from kg.server.service_description import endpoint_url
from kg.server.state import AppState, StateDep
from kg.server.stats import DatasetStats, dataset_stats

router = APIRouter()

NS = STANDARD_PREFIXES
XSD = NS["xsd"]
TITLE = "EU–Japan security and defence cooperation knowledge graph"
DEFAULT_LICENSE = "https://creativecommons.org/licenses/by/4.0/"
DESCRIPTION = (
    "Actors, agreements, cooperation areas, dialogues, events and commitments of EU–Japan "
    "security and defence cooperation, each statement with the quote and passage of the "
    "source document that supports it (one named graph per document)."
)


def _t(prefix: str, local: str) -> ox.NamedNode:
    return ox.NamedNode(NS[prefix] + local)


def _int(n: int) -> ox.Literal:
    return ox.Literal(str(n), datatype=ox.NamedNode(XSD + "integer"))


def _when(moment: datetime) -> ox.Literal:
    return ox.Literal(moment.isoformat(), datatype=ox.NamedNode(XSD + "dateTime"))


def void_quads(state: AppState, stats: DatasetStats, dumps: list[Dump],
               access_base: str) -> list[ox.Quad]:
    """VoID and DCAT statements about the whole dataset and its named graphs."""
    base = state.settings.base_iri
    doc = base + ".well-known/void"
    out: list[ox.Quad] = []

    def add(s: ox.NamedNode | ox.BlankNode, p: ox.NamedNode,
            o: ox.NamedNode | ox.BlankNode | ox.Literal) -> None:
        out.append(ox.Quad(s, p, o))

    rdf_type = _t("rdf", "type")
    dataset = ox.NamedNode(doc + "#dataset")
    add(ox.NamedNode(doc), rdf_type, _t("void", "DatasetDescription"))
    add(ox.NamedNode(doc), _t("foaf", "primaryTopic"), dataset)
    add(dataset, rdf_type, _t("void", "Dataset"))
    add(dataset, rdf_type, _t("dcat", "Dataset"))
    add(dataset, _t("dct", "title"), ox.Literal(TITLE, language="en"))
    add(dataset, _t("dct", "description"), ox.Literal(DESCRIPTION, language="en"))
    add(dataset, _t("dct", "license"), ox.NamedNode(stats.license or DEFAULT_LICENSE))
    add(dataset, _t("dct", "modified"), _when(stats.modified))
    add(dataset, _t("void", "sparqlEndpoint"), ox.NamedNode(access_base + "sparql"))
    add(dataset, _t("void", "uriSpace"), ox.Literal(base + "id/"))
    add(dataset, _t("void", "vocabulary"), ox.NamedNode(state.settings.kg_ns))
    add(dataset, _t("void", "triples"), _int(stats.triples))
    add(dataset, _t("void", "entities"), _int(stats.entities))
    add(dataset, _t("void", "distinctSubjects"), _int(stats.subjects))
    add(dataset, _t("void", "properties"), _int(stats.properties))
    add(dataset, _t("void", "classes"), _int(len(stats.classes)))
    for example in stats.examples:
        add(dataset, _t("void", "exampleResource"), ox.NamedNode(example))

    for dump in dumps:
        url = ox.NamedNode(f"{access_base}dumps/{dump.name}")
        add(dataset, _t("void", "dataDump"), url)
        dist = ox.NamedNode(f"{doc}#dump-{dump.name}")
        add(dataset, _t("dcat", "distribution"), dist)
        add(dist, rdf_type, _t("dcat", "Distribution"))
        add(dist, _t("dcat", "downloadURL"), url)
        add(dist, _t("dcat", "mediaType"), ox.NamedNode(
            "https://www.iana.org/assignments/media-types/" + dump.media_type))
        add(dist, _t("dct", "format"), ox.Literal(dump.media_type))
        add(dist, _t("dct", "title"), ox.Literal(dump.name))
        if dump.size is not None:
            add(dist, _t("dcat", "byteSize"), ox.Literal(
                str(dump.size), datatype=ox.NamedNode(XSD + "nonNegativeInteger")))
        if dump.modified is not None:
            add(dist, _t("dct", "modified"), _when(dump.modified))
        if not dump.built:
            add(dist, _t("dct", "description"), ox.Literal(
                "Exported from the live store on first request.", language="en"))

    for cls, count in stats.classes.items():
        part = ox.BlankNode()
        add(dataset, _t("void", "classPartition"), part)
        add(part, _t("void", "class"), ox.NamedNode(cls))
        add(part, _t("void", "entities"), _int(count))
    for prop, count in stats.property_triples.items():
        part = ox.BlankNode()
        add(dataset, _t("void", "propertyPartition"), part)
        add(part, _t("void", "property"), ox.NamedNode(prop))
        add(part, _t("void", "triples"), _int(count))

    for graph, count in stats.graphs.items():
        subset = (ox.NamedNode(f"{doc}#{graph[len(base):]}") if graph.startswith(base)
                  else ox.BlankNode())
        add(dataset, _t("void", "subset"), subset)
        add(subset, rdf_type, _t("void", "Dataset"))
        add(subset, rdf_type, _t("sd", "NamedGraph"))
        add(subset, _t("sd", "name"), ox.NamedNode(graph))
        add(subset, _t("void", "triples"), _int(count))
        add(subset, _t("void", "sparqlEndpoint"), ox.NamedNode(access_base + "sparql"))
    return out


@router.api_route("/.well-known/void", methods=["GET", "HEAD"], include_in_schema=False)
async def void(request: Request, state: StateDep) -> Response:
    """The VoID/DCAT description (RDF only; Turtle for browsers and */*)."""
    media = negotiate(request.headers.get("accept"), html=False)
    assert media is not None
    stats = await dataset_stats(state)
    access_base = endpoint_url(request).removesuffix("sparql")
    quads = void_quads(state, stats, list_dumps(state), access_base)
    body = serialize(quads, media, kg_prefixes(state.settings.base_iri), sort=False)
    return Response(body, media_type=media.media_type, headers={"Vary": "Accept"})


@router.api_route("/dumps/{name}", methods=["GET", "HEAD"], include_in_schema=False)
async def dump(name: str, state: StateDep) -> Response:
    """Download one dump; only names listed in the dumps directory (or on demand) exist."""
    found = await find_dump(state, name)
    if found is None or found.path is None:
        raise NotFound(f"no dump called {name!r}; see /.well-known/void for the list")
    headers = {"Cache-Control": "public, max-age=300"}
    if found.modified is not None:
        headers["Last-Modified"] = format_datetime(found.modified, usegmt=True)
    return FileResponse(found.path, media_type=found.media_type, filename=found.name,
                        headers=headers, content_disposition_type="attachment")
