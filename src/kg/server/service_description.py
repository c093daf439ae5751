"""SPARQL 1.1 Service Description, answered by GET /sparql without a query (S1 calls render).

What it states is read from the running configuration, so it cannot drift: Update and the
Graph Store protocol are listed only when a write token enables them, BasicFederatedQuery only
when SERVICE is allow-listed, UnionDefaultGraph only when configured. Access URLs (sd:endpoint)
come from the request; graph names are the minted IRIs. Turtle by default, every RDF format by
`Accept`, and a small HTML page for browsers.
"""

from __future__ import annotations

import pyoxigraph as ox
from starlette.requests import Request
from starlette.responses import Response

from kg.namespaces import STANDARD_PREFIXES, kg_prefixes
from kg.server import html
from kg.server.rdf_media import RDF_MEDIA, negotiate, serialize
from kg.server.state import AppState
from kg.server.stats import DatasetStats, dataset_stats

SD = STANDARD_PREFIXES["sd"]
VOID = STANDARD_PREFIXES["void"]
RDF_TYPE = ox.NamedNode(STANDARD_PREFIXES["rdf"] + "type")
FORMATS = "http://www.w3.org/ns/formats/"
RESULT_FORMATS = (
    "SPARQL_Results_JSON", "SPARQL_Results_XML", "SPARQL_Results_CSV", "SPARQL_Results_TSV",
    "Turtle", "N-Triples", "N-Quads", "TriG", "RDF_XML", "JSON-LD",
)
INPUT_FORMATS = ("Turtle", "N-Triples", "N-Quads", "TriG", "RDF_XML", "JSON-LD")
EXAMPLE_QUERY = """PREFIX kg: <{kg}>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
SELECT ?agreement ?label WHERE {{
  ?agreement a kg:Agreement ; rdfs:label ?label .
}} LIMIT 20"""


def _sd(local: str) -> ox.NamedNode:
    return ox.NamedNode(SD + local)


def endpoint_url(request: Request) -> str:
    """Where this service answers, as the client reached it (proxies set Host / --root-path)."""
    return str(request.base_url) + "sparql"


def description_triples(state: AppState, stats: DatasetStats, endpoint: str) -> list[ox.Quad]:
    """The sd:Service graph (default graph quads)."""
    settings = state.settings
    out: list[ox.Quad] = []

    def add(s: ox.NamedNode | ox.BlankNode, p: ox.NamedNode,
            o: ox.NamedNode | ox.BlankNode | ox.Literal) -> None:
        out.append(ox.Quad(s, p, o))

    service = ox.BlankNode()
    add(service, RDF_TYPE, _sd("Service"))
    add(service, _sd("endpoint"), ox.NamedNode(endpoint))
    add(service, _sd("supportedLanguage"), _sd("SPARQL11Query"))
    writes = bool(settings.write_token)
    if writes:
        add(service, _sd("supportedLanguage"), _sd("SPARQL11Update"))
        for name in INPUT_FORMATS:
            add(service, _sd("inputFormat"), ox.NamedNode(FORMATS + name))
    for name in RESULT_FORMATS:
        add(service, _sd("resultFormat"), ox.NamedNode(FORMATS + name))
    # the default graph is the merge of all named graphs (kg.store.default_graph)
    add(service, _sd("feature"), _sd("UnionDefaultGraph"))
    if settings.allow_service:
        add(service, _sd("feature"), _sd("BasicFederatedQuery"))
    add(service, _sd("defaultEntailmentRegime"),
        ox.NamedNode("http://www.w3.org/ns/entailment/Simple"))

    dataset = ox.BlankNode()
    add(service, _sd("defaultDataset"), dataset)
    add(dataset, RDF_TYPE, _sd("Dataset"))
    default_graph = ox.BlankNode()
    add(dataset, _sd("defaultGraph"), default_graph)
    add(default_graph, RDF_TYPE, _sd("Graph"))
    add(default_graph, ox.NamedNode(VOID + "triples"), ox.Literal(str(stats.triples),
        datatype=ox.NamedNode(STANDARD_PREFIXES["xsd"] + "integer")))
    for graph, triples in stats.graphs.items():
        named, inner = ox.BlankNode(), ox.BlankNode()
        add(dataset, _sd("namedGraph"), named)
        add(named, RDF_TYPE, _sd("NamedGraph"))
        add(named, _sd("name"), ox.NamedNode(graph))
        add(named, _sd("graph"), inner)
        add(inner, RDF_TYPE, _sd("Graph"))
        add(inner, ox.NamedNode(VOID + "triples"), ox.Literal(
            str(triples), datatype=ox.NamedNode(STANDARD_PREFIXES["xsd"] + "integer")))
    return out


async def render(request: Request, state: AppState) -> Response:
    """The service description for GET /sparql with no query, negotiated (Turtle default)."""
    media = negotiate(request.headers.get("accept"))
    stats = await dataset_stats(state)
    endpoint = endpoint_url(request)
    headers = {"Vary": "Accept"}
    if media is None:
        return html.render(
            request, "sparql_endpoint.html", headers=headers, endpoint=endpoint,
            formats=RDF_MEDIA, triples=stats.triples, graph_count=len(stats.graphs),
            union=state.settings.union_default_graph,
            example=EXAMPLE_QUERY.format(kg=state.settings.kg_ns),
        )
    quads = description_triples(state, stats, endpoint)
    prefixes = {**kg_prefixes(state.settings.base_iri), "formats": FORMATS}
    return Response(serialize(quads, media, prefixes, sort=False), media_type=media.media_type,
                    headers=headers)
