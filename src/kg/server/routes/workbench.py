"""The researcher's side of the service: the query workbench at `/` and the picture views.

Pages are server-rendered shells (every value autoescaped); the browser fetches results from
the same-origin `/sparql` endpoint, so what a page shows is exactly what a SPARQL client gets.
The JSON routes feed the editor: prefixes (YASQE's `prefixCcApi`, served locally instead of
prefix.cc), the ontology's classes and properties (completion), and the competency queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pyoxigraph as ox
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from kg import paths
from kg.errors import NotFound
from kg.namespaces import STANDARD_PREFIXES, kg_prefixes
from kg.server import html, queries
from kg.server.state import AppState, StateDep

router = APIRouter()

# Terms outside the ontology that nearly every query here uses; offered alongside kg: terms.
COMMON_PROPERTIES = [
    STANDARD_PREFIXES["rdf"] + "type",
    STANDARD_PREFIXES["rdfs"] + "label",
    STANDARD_PREFIXES["rdfs"] + "comment",
    STANDARD_PREFIXES["rdfs"] + "subClassOf",
    STANDARD_PREFIXES["skos"] + "prefLabel",
    STANDARD_PREFIXES["skos"] + "altLabel",
    STANDARD_PREFIXES["skos"] + "broader",
    STANDARD_PREFIXES["skos"] + "narrower",
    STANDARD_PREFIXES["dct"] + "title",
    STANDARD_PREFIXES["owl"] + "sameAs",
    STANDARD_PREFIXES["prov"] + "wasDerivedFrom",
]

# Security headers for the HTML shells: scripts only from this origin, data fetched only here.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; connect-src 'self'; font-src 'self' data:; "
        "frame-ancestors 'self'; base-uri 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@dataclass(frozen=True)
class CompetencyQuery:
    """One file of queries/: its name (file stem), the question it answers, and its text."""

    name: str
    question: str
    text: str

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "question": self.question, "query": self.text}


def read_query(path: Path) -> CompetencyQuery:
    """Parse a .rq file; the question is its `# Question:` line (the file name otherwise)."""
    text = path.read_text(encoding="utf-8")
    question = path.stem.replace("-", " ")
    for line in text.splitlines():
        if line.startswith("#") and line.lstrip("# ").lower().startswith("question:"):
            question = line.split(":", 1)[1].strip()
            break
    return CompetencyQuery(path.stem, question, text)


def competency_queries(directory: Path | None = None) -> list[CompetencyQuery]:
    """All competency queries, by file name (read each time: they are small and may change)."""
    directory = directory or paths.QUERIES_DIR
    return [read_query(p) for p in sorted(directory.glob("*.rq"))]


def competency_query(name: str) -> CompetencyQuery:
    """One competency query by name; names come from a fixed directory listing, never a path."""
    for query in competency_queries():
        if query.name == name:
            return query
    raise NotFound(f"no competency query named {name!r}")


def _ontology_terms(state: AppState) -> dict[str, list[str]]:
    """Classes and properties declared in the ontology and vocabulary graphs (one thread)."""
    rows = queries.select(state.store, "workbench-terms", state.settings.base_iri)
    terms: dict[str, list[str]] = {"classes": [], "properties": []}
    for row in rows:
        term, kind = row["term"], row["kind"]
        if isinstance(term, ox.NamedNode) and isinstance(kind, ox.Literal):
            terms["classes" if kind.value == "class" else "properties"].append(term.value)
    terms["properties"] += [p for p in COMMON_PROPERTIES if p not in terms["properties"]]
    return terms


def _page(request: Request, template: str, **context: object) -> Response:
    state: AppState = request.app.state.kg
    return html.render(
        request, template, headers=PAGE_HEADERS, base_iri=state.settings.base_iri, **context
    )


@router.get("/", include_in_schema=False)
def workbench(request: Request) -> Response:
    """The query workbench: editor, competency queries, results, chart, downloads."""
    return _page(request, "workbench.html", examples=competency_queries())


@router.get("/workbench/prefixes.json", include_in_schema=False)
def prefixes(state: StateDep) -> JSONResponse:
    """Prefix completion for the editor, in prefix.cc's shape ({prefix: namespace})."""
    return JSONResponse(kg_prefixes(state.settings.base_iri))


@router.get("/workbench/terms.json", include_in_schema=False)
async def terms(state: StateDep) -> JSONResponse:
    """The ontology's classes and properties (full IRIs), cached until the store changes."""
    key = ("workbench-terms", state.store.version)
    cached = state.extras.get("workbench-terms")
    if not cached or cached[0] != key:
        cached = (key, await run_in_threadpool(_ontology_terms, state))
        state.extras["workbench-terms"] = cached
    return JSONResponse(cached[1])


@router.get("/workbench/queries.json", include_in_schema=False)
def queries_json() -> JSONResponse:
    """The competency queries, each with the question it answers and its SPARQL text."""
    return JSONResponse([q.as_json() for q in competency_queries()])


VIEWS = {
    "timeline": ("Timeline", "timeline",
                 "Agreements, dialogues and events on a time axis: dated events and every "
                 "lifecycle date the sources give (proposed, adopted, signed, in force)."),
    "network": ("Cooperation network", "cooperation-network",
                "Actors linked to the agreements, programmes and mechanisms they are party "
                "to, take part in, sign, fund or issue."),
    "matrix": ("Partnership matrix", "area-paragraph-matrix",
               "The 2024 Security and Defence Partnership: its cooperation areas against its "
               "paragraphs, with the modality of each commitment."),
}


@router.get("/views/{view}", include_in_schema=False)
def view_page(request: Request, view: str) -> Response:
    """A picture backed by a competency query, which the page shows and links to."""
    if view not in VIEWS:
        raise NotFound(f"no view named {view!r}; try {', '.join(sorted(VIEWS))}")
    title, name, blurb = VIEWS[view]
    query = competency_query(name)
    return _page(
        request, "workbench_view.html", view=view, title=title, blurb=blurb, query=query,
        views=VIEWS, workbench_link="#query=" + quote(query.text, safe=""),
    )
