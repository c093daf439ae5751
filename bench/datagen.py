"""Scale a graph of the real one's shape to N quads, deterministically.

The source is the build's N-Quads dump (var/dumps/kg.nq) or, before the build works, the TriG test
fixture. Quads of the shared graphs (ontology, vocabularies) are written once; every other quad is
replicated with its IRIs renamed: replica 0 keeps the original names (so the competency queries
still find their entities), replica k appends `-r{k}` to each data IRI under `<base>id/` and to
each per-document graph, and ` [k]` to labels and titles. A seeded fraction of the links to
labelled entities points to an earlier replica, as several documents mention the same actors.
The output has exactly N quads (the last replica is cut short) and only absolute IRIs, so every
server loads the same bytes.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyoxigraph as ox

BASE_IRI = "http://localhost:8000/"
SHARED_GRAPH_NAMES = ("ontology", "vocabulary", "vocabularies", "shapes")
LABEL_PREDICATES = frozenset(
    [
        "http://www.w3.org/2000/01/rdf-schema#label",
        "http://www.w3.org/2004/02/skos/core#prefLabel",
        "http://www.w3.org/2004/02/skos/core#altLabel",
        "http://purl.org/dc/terms/title",
    ]
)
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
CROSS_LINK_RATE = 0.2
OWN, XLINK, LABEL = "\x00", "\x01", "\x02"  # markers in line templates


@dataclass(frozen=True)
class Source:
    """Where the shape comes from."""

    path: Path
    base_iri: str = BASE_IRI

    @property
    def format(self) -> ox.RdfFormat:
        return ox.RdfFormat.from_extension(self.path.suffix.lstrip(".")) or ox.RdfFormat.N_QUADS


def default_source(root: Path) -> Source:
    """The real build's dump when present, else the TriG fixture."""
    dump = root / "var" / "dumps" / "kg.nq"
    if dump.is_file() and dump.stat().st_size > 0:
        return Source(dump)
    return Source(root / "tests" / "fixtures" / "sample.trig")


def read_quads(source: Source) -> list[ox.Quad]:
    """The source's quads; the TriG fixture lacks the ontology graphs a build has, so add them."""
    quads = list(ox.parse(path=str(source.path), format=source.format, base_iri=source.base_iri))
    has_shared = any(_is_shared_graph(q.graph_name) for q in quads)
    if source.format == ox.RdfFormat.TRIG and not has_shared:
        ontology_dir = source.path.resolve().parents[2] / "ontology"
        for name, file in (("ontology", "kg.ttl"), ("vocabulary", "vocabularies.ttl")):
            if (ontology_dir / file).is_file():
                graph = ox.NamedNode(f"{source.base_iri}graph/{name}")
                for triple in ox.parse(path=str(ontology_dir / file), format=ox.RdfFormat.TURTLE,
                                       base_iri=source.base_iri):
                    quads.append(ox.Quad(triple.subject, triple.predicate, triple.object, graph))
    return quads


def _is_shared_graph(graph: ox.NamedNode | ox.BlankNode | ox.DefaultGraph) -> bool:
    if not isinstance(graph, ox.NamedNode):
        return False
    last = graph.value.rstrip("/#").rsplit("/", 1)[-1]
    return last in SHARED_GRAPH_NAMES


class _Templater:
    """Turns each quad into an N-Quads line template with replica markers."""

    def __init__(self, quads: list[ox.Quad], base_iri: str) -> None:
        self.id_prefix = base_iri + "id/"
        self.doc_graph_prefix = base_iri + "graph/doc/"
        shared = [q for q in quads if _is_shared_graph(q.graph_name)]
        self.fixed_iris = {q.subject.value for q in shared if isinstance(q.subject, ox.NamedNode)}
        self.entities = {
            q.subject.value
            for q in quads
            if q.predicate.value in LABEL_PREDICATES and isinstance(q.subject, ox.NamedNode)
        }

    def _renamed(self, term: ox.NamedNode) -> bool:
        value = term.value
        return value.startswith(self.id_prefix) and value not in self.fixed_iris

    def term(self, term: object, position: str, predicate: str) -> str:
        if isinstance(term, ox.NamedNode):
            if position == "g":
                if term.value.startswith(self.doc_graph_prefix):
                    return f"<{term.value}{OWN}>"
                return f"<{term.value}>"
            if self._renamed(term):
                cross = (
                    position == "o" and predicate != RDF_TYPE and term.value in self.entities
                )
                return f"<{term.value}{XLINK if cross else OWN}>"
            return str(term)
        if isinstance(term, ox.BlankNode):
            return f"_:{term.value}{OWN}"
        if isinstance(term, ox.Literal) and position == "o" and predicate in LABEL_PREDICATES:
            text = str(term)
            close = text.rindex('"')
            return text[:close] + LABEL + text[close:]
        if isinstance(term, ox.DefaultGraph):
            return ""
        return str(term)

    def line(self, quad: ox.Quad) -> str:
        p = quad.predicate.value
        parts = [
            self.term(quad.subject, "s", p),
            str(quad.predicate),
            self.term(quad.object, "o", p),
        ]
        graph = self.term(quad.graph_name, "g", p)
        if graph:
            parts.append(graph)
        return " ".join(parts) + " .\n"


def _suffix(k: int) -> str:
    return "" if k == 0 else f"-r{k}"


def _blank_suffix(k: int) -> str:
    return f"r{k}"


def generate_lines(quads: list[ox.Quad], target: int, seed: int,
                   base_iri: str = BASE_IRI) -> Iterator[str]:
    """Yield exactly `target` N-Quads lines (fewer only if `target` <= 0)."""
    templater = _Templater(quads, base_iri)
    shared = [templater.line(q) for q in quads if _is_shared_graph(q.graph_name)]
    data = [templater.line(q) for q in quads if not _is_shared_graph(q.graph_name)]
    plain = [t for t in data if XLINK not in t]
    linked = [t for t in data if XLINK in t]
    rng = random.Random(seed)
    emitted = 0
    for line in shared:
        if emitted >= target:
            return
        # Shared graphs hold no renamed IRIs, but may hold blank nodes.
        yield line.replace(XLINK, "").replace(OWN, "").replace(LABEL, "")
        emitted += 1
    if not data:
        return
    k = 0
    while emitted < target:
        own, label = _suffix(k), ("" if k == 0 else f" [{k}]")
        chunk: list[str] = []
        for template in plain:
            text = template.replace(LABEL, label)
            # blank nodes need a legal label suffix: "_:b0" + "-r1" is not one
            chunk.append(text.replace(f"{OWN}>", f"{own}>").replace(OWN, _blank_suffix(k)))
        for template in linked:
            other = rng.randrange(k) if k and rng.random() < CROSS_LINK_RATE else k
            text = template.replace(XLINK, _suffix(other)).replace(LABEL, label)
            chunk.append(text.replace(f"{OWN}>", f"{own}>").replace(OWN, _blank_suffix(k)))
        for line in chunk:
            if emitted >= target:
                return
            yield line
            emitted += 1
        k += 1


def source_digest(quads: list[ox.Quad]) -> str:
    digest = hashlib.sha256()
    for quad in quads:
        digest.update(str(quad).encode())
    return digest.hexdigest()[:12]


def generate(source: Source, target: int | None, out_dir: Path, seed: int = 42) -> Path:
    """Write (or reuse) the scaled N-Quads file; `target=None` keeps the source's size."""
    quads = read_quads(source)
    size = len(quads) if target is None else target
    name = f"kg-{source_digest(quads)}-{size}-s{seed}.nq"
    out = out_dir / name
    if out.is_file():
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8", newline="\n") as fh:
        batch: list[str] = []
        for line in generate_lines(quads, size, seed, source.base_iri):
            batch.append(line)
            if len(batch) >= 100_000:
                fh.writelines(batch)
                batch.clear()
        fh.writelines(batch)
    tmp.replace(out)
    return out


def count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


def sample_entities(path: Path, base_iri: str, limit: int = 2000, seed: int = 42) -> list[str]:
    """Up to `limit` distinct labelled subjects (entities) under <base>id/, reservoir-sampled."""
    prefix = f"<{base_iri}id/"
    markers = tuple(f"<{p}>" for p in LABEL_PREDICATES)
    rng = random.Random(seed)
    seen: set[str] = set()
    sample: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.startswith(prefix):
                continue
            subject, _, rest = line.partition(" ")
            if not rest.startswith(markers) or subject in seen:
                continue
            seen.add(subject)
            if len(sample) < limit:
                sample.append(subject[1:-1])
            else:
                j = rng.randrange(len(seen))
                if j < limit:
                    sample[j] = subject[1:-1]
    return sorted(sample)


def out_degrees(path: Path, entities: list[str]) -> dict[str, int]:
    """How many quads each of `entities` is the subject of."""
    wanted = {f"<{e}>": e for e in entities}
    counts = dict.fromkeys(entities, 0)
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            subject = line[: line.find(" ")]
            if subject in wanted:
                counts[wanted[subject]] += 1
    return counts


def typical_entity(path: Path, entities: list[str]) -> str:
    """The sampled entity of median out-degree (the one warm requests repeat)."""
    if not entities:
        return "urn:none"
    counts = out_degrees(path, entities)
    ranked = sorted(entities, key=lambda e: (counts[e], e))
    return ranked[len(ranked) // 2]


def parse_size(text: str) -> int | None:
    """'real' -> None, '10k' -> 10000, '1m' -> 1000000, '2500' -> 2500."""
    text = text.strip().lower()
    if text == "real":
        return None
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    number = text[:-1] if factor > 1 else text
    return int(float(number) * factor)
