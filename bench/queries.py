"""The query kinds, each as request templates for wrk: cold (every request distinct) or warm.

A template is a list of parts: URL-encoded text, ENTITY (an entity IRI taken in turn from a
sample of the data) or NUMBER (a per-request counter, distinct across wrk threads). Cold
requests vary a LIMIT or, for the competency queries, an always-true `FILTER(n > 0)` in the
query's group (`cold_variant`), so the query text (and its algebra) differs on every request and
no cache can serve it; warm requests repeat one fixed text. Every query is sent as GET
`?query=` with an explicit BASE, since not every server resolves relative IRIs against the same
base.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from kg.sparql import guard

ENTITY = 1
NUMBER = 2
JSON = "application/sparql-results+json"
TURTLE = "text/turtle"
PREFIXES = (
    "PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>\n"
    "PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>\n"
)
SMALL_KINDS = ("point", "join", "construct")


@dataclass(frozen=True)
class Template:
    accept: str
    parts: tuple[str | int, ...]

    def render(self, entity: str, number: int) -> str:
        """The decoded query text of one request (for probes and tests)."""
        out = []
        for part in self.parts:
            if part == ENTITY:
                out.append(entity)
            elif part == NUMBER:
                out.append(str(number))
            else:
                out.append(urllib.parse.unquote_plus(str(part)))
        return "".join(out)


@dataclass(frozen=True)
class QueryKind:
    """One row group of the table: a kind of query, with its cold and warm templates."""

    name: str
    description: str
    cold: tuple[Template, ...]
    warm: tuple[Template, ...]
    small: bool = False
    heavy: bool = False
    names: tuple[str, ...] = field(default=())


def _split(text: str, accept: str) -> Template:
    """Encode `text`, keeping the {entity} and {n} slots as ENTITY and NUMBER parts."""
    parts: list[str | int] = []
    for piece in re.split(r"(\{entity\}|\{n\})", text):
        if piece == "{entity}":
            parts.append(ENTITY)
        elif piece == "{n}":
            parts.append(NUMBER)
        elif piece:
            parts.append(_quote(piece))
    return Template(accept, tuple(parts))


def with_base(text: str, base_iri: str) -> str:
    return f"BASE <{base_iri}>\n{text}"


def _form(text: str) -> str:
    body = re.sub(r"#[^\n]*", "", text)  # comments (no '#' inside these queries' IRIs matters)
    match = re.search(r"\b(SELECT|CONSTRUCT|DESCRIBE|ASK)\b", body, re.IGNORECASE)
    return match.group(1).upper() if match else "SELECT"


def accept_for(text: str) -> str:
    return TURTLE if _form(text) in {"CONSTRUCT", "DESCRIBE"} else JSON


POINT = PREFIXES + "SELECT ?p ?o WHERE { <{entity}> ?p ?o } LIMIT {n}"
JOIN = PREFIXES + "SELECT ?p ?o ?label WHERE { <{entity}> ?p ?o . ?o rdfs:label ?label } LIMIT {n}"
AGGREGATE = (
    PREFIXES + "SELECT ?type (COUNT(?s) AS ?count) WHERE { ?s rdf:type ?type }\n"
    "GROUP BY ?type ORDER BY DESC(?count) ?type LIMIT {n}"
)
CONSTRUCT = (
    PREFIXES + "CONSTRUCT { <{entity}> ?p ?o . ?o rdfs:label ?label }\n"
    "WHERE { <{entity}> ?p ?o OPTIONAL { ?o rdfs:label ?label } } LIMIT {n}"
)
WARM_LIMIT = "10000"


def _simple(name: str, text: str, description: str, warm_entity: str, *, small: bool = False,
            heavy: bool = False) -> QueryKind:
    accept = accept_for(text)
    cold = _split(text, accept)
    warm = _split(text.replace("{entity}", warm_entity).replace("{n}", WARM_LIMIT), accept)
    return QueryKind(name, description, (cold,), (warm,), small=small, heavy=heavy)


def competency_queries(queries_dir: Path) -> dict[str, str]:
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(queries_dir.glob("*.rq"))}


def cold_variant(text: str) -> str:
    """A twin with the same answer and a text (and algebra) of its own per request: the
    placeholder `{n}` (a number ≥ 1) in `FILTER({n} > 0)` at the start of the query's group.

    Why not a trailing `VALUES ?unused { n }`: Virtuoso 7.2 refuses a VALUES variable the query
    does not use (SQ200), and BIND of a fresh variable would add a column to `SELECT *`. A
    FILTER holds for the whole group wherever it stands, and this one for every solution. The
    group is the query's WHERE clause (after a CONSTRUCT template); a query without one gets a
    trailing comment instead, which still changes the text."""
    tokens = list(guard.tokenize(text))
    braces = [i for i, t in enumerate(tokens) if t.kind == "punct" and t.text == "{"]
    words = [t.text.upper() for t in tokens if t.kind == "word"]
    form = next((w for w in words if w in ("SELECT", "CONSTRUCT", "DESCRIBE", "ASK")), None)
    where = next((i for i, t in enumerate(tokens)
                  if t.kind == "word" and t.text.upper() == "WHERE"), None)
    if form == "CONSTRUCT" and where is not None:
        braces = [i for i in braces if i > where]
    elif form == "CONSTRUCT" and braces:  # CONSTRUCT { template } { group }
        depth, end = 0, braces[0]
        for end in range(braces[0], len(tokens)):
            if tokens[end].kind == "punct" and tokens[end].text in "{}":
                depth += 1 if tokens[end].text == "{" else -1
                if depth == 0:
                    break
        braces = [i for i in braces if i > end]
    elif form == "DESCRIBE" and where is None:
        braces = []
    if not braces:
        return text.rstrip() + "\n# cold {n}\n"
    cut = tokens[braces[0]].pos + 1
    return f"{text[:cut]} FILTER({{n}} > 0){text[cut:]}"


def build_kinds(base_iri: str, warm_entity: str, competency: dict[str, str]) -> list[QueryKind]:
    """The four fixed kinds, plus the mix of the given competency queries (name -> text)."""
    kinds = [
        _simple("point", with_base(POINT, base_iri),
                "all triples of one entity (SELECT ?p ?o)", warm_entity, small=True),
        _simple("join", with_base(JOIN, base_iri),
                "an entity's links joined with the targets' labels", warm_entity, small=True),
        _simple("aggregate", with_base(AGGREGATE, base_iri),
                "GROUP BY rdf:type with COUNT over the whole store", warm_entity, heavy=True),
        _simple("construct", with_base(CONSTRUCT, base_iri),
                "CONSTRUCT of an entity's description with labels (Turtle)", warm_entity,
                small=True),
    ]
    if competency:
        cold, warm = [], []
        for text in competency.values():
            full = with_base(text, base_iri)
            accept = accept_for(full)
            head, tail = cold_variant(full).split("{n}")
            cold.append(Template(accept, (_quote(head), NUMBER, _quote(tail))))
            warm.append(Template(accept, (_quote(full),)))
        kinds.append(QueryKind(
            "competency", f"{len(competency)} queries of queries/*.rq in turn",
            tuple(cold), tuple(warm), names=tuple(competency),
        ))
    return kinds


def _quote(text: str) -> str:
    return urllib.parse.quote_plus(text, safe="")


def of_run(work: Path, size: str = "real") -> tuple[list[str], dict[str, QueryKind]]:
    """The sampled entities and the query kinds (by name) of a full run's `size`, rebuilt from
    its data file under `work`: for the tools that measure a run's stores afterwards
    (bench.paired, bench.process_cpu, bench.ceiling, bench.worker_cap)."""
    from bench import datagen

    files = list((work / "data").glob(f"*-{size}-s*.nq"))
    if not files:
        raise SystemExit(f"no `{size}` data under {work}: run `python -m bench.run` first")
    data = max(files, key=lambda p: p.stat().st_mtime)
    entities = datagen.sample_entities(data, datagen.BASE_IRI, seed=42)
    kinds = build_kinds(datagen.BASE_IRI, datagen.typical_entity(data, entities), {})
    return entities, {kind.name: kind for kind in kinds}
