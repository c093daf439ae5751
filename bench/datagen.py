"""Scale a graph of the real one's shape to N quads, deterministically.

The source is the build's N-Quads dump (var/dumps/kg.nq) or, before the build works, the TriG test
fixture. Quads of the shared graphs (ontology, vocabularies) are written once; every other quad is
replicated with its IRIs renamed: replica 0 keeps the original names (so the competency queries
still find their entities), replica k appends `-r{k}` to each data IRI under `<base>id/` and to
each per-document graph, and ` [k]` to labels and titles. A seeded fraction of the links to
labelled entities points to an earlier replica, as several documents mention the same actors.
As `kg build` does, the default graph holds the merge (distinct triples) of all named graphs, so
every server answers from the same stored default graph (no union option needed, and none of
pyoxigraph 0.5's union double counting). N counts all quads, default graph included; the output
has exactly N lines (the last replica is cut short) and only absolute IRIs, so every server loads
the same bytes.
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

    def term(self, term: object, position: str, predicate: str, renamed_subject: bool) -> str:
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
        if (isinstance(term, ox.Literal) and position == "o" and renamed_subject
                and predicate in LABEL_PREDICATES):
            text = str(term)
            close = text.rindex('"')
            return text[:close] + LABEL + text[close:]
        return str(term)

    def templates(self, quad: ox.Quad) -> tuple[str, str]:
        """(the quad's line, its triple's line in the default graph), both with markers."""
        p = quad.predicate.value
        subject = quad.subject
        renamed = isinstance(subject, ox.BlankNode) or (
            isinstance(subject, ox.NamedNode) and self._renamed(subject))
        triple = " ".join((self.term(subject, "s", p, renamed), str(quad.predicate),
                           self.term(quad.object, "o", p, renamed)))
        graph = self.term(quad.graph_name, "g", p, renamed)
        return f"{triple} {graph} .\n", f"{triple} .\n"


def _fill(template: str, own: str, other: str, label: str, blank: str) -> str:
    # IRIs take "-r{k}"; blank node labels take "r{k}" ("_:b0-r1" is not a legal label)
    text = template.replace(XLINK, other).replace(LABEL, label)
    return text.replace(f"{OWN}>", f"{own}>").replace(OWN, blank)


def _suffix(k: int) -> str:
    return "" if k == 0 else f"-r{k}"


def generate_lines(quads: list[ox.Quad], target: int | None, seed: int,
                   base_iri: str = BASE_IRI) -> Iterator[str]:
    """Yield `target` N-Quads lines (all of one copy when `target` is None).

    As `kg build` does, the default graph holds the merge (the distinct triples) of all the
    named graphs; each triple's default-graph line follows the first quad that asserts it, so a
    cut anywhere leaves a consistent store.
    """
    templater = _Templater(quads, base_iri)
    named = [q for q in quads if not isinstance(q.graph_name, ox.DefaultGraph)]
    shared = [templater.templates(q) for q in named if _is_shared_graph(q.graph_name)]
    data = [templater.templates(q) for q in named if not _is_shared_graph(q.graph_name)]
    # lines without any marker are the same in every copy: written once, with the shared ones
    fixed = shared + [t for t in data if not any(m in t[0] for m in (OWN, XLINK, LABEL))]
    varying = [t for t in data if any(m in t[0] for m in (OWN, XLINK, LABEL))]
    rng = random.Random(seed)
    limit = target if target is not None else -1
    emitted = 0
    seen: set[str] = set()  # default-graph lines already written
    for quad_t, triple_t in fixed:
        for line, is_triple in ((_fill(quad_t, "", "", "", "r0"), False),
                                (_fill(triple_t, "", "", "", "r0"), True)):
            if is_triple:
                if line in seen:
                    continue
                seen.add(line)
            if emitted == limit:
                return
            yield line
            emitted += 1
    if not varying:
        return
    copies = 1 if target is None else None
    k = 0
    while (k < copies) if copies is not None else (emitted < limit):
        own, label, blank = _suffix(k), ("" if k == 0 else f" [{k}]"), f"r{k}"
        replica_seen = seen if k == 0 else set()
        for quad_t, triple_t in varying:
            other = own
            if XLINK in quad_t:
                other = _suffix(rng.randrange(k)) if k and rng.random() < CROSS_LINK_RATE else own
            quad_line = _fill(quad_t, own, other, label, blank)
            triple_line = _fill(triple_t, own, other, label, blank)
            for line, is_triple in ((quad_line, False), (triple_line, True)):
                if is_triple:
                    if triple_line in replica_seen:  # asserted by several graphs
                        continue
                    replica_seen.add(triple_line)
                if emitted == limit:
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
    size = "real" if target is None else str(target)
    name = f"kg-{source_digest(quads)}-{size}-s{seed}.nq"
    out = out_dir / name
    if out.is_file():
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8", newline="\n") as fh:
        batch: list[str] = []
        for line in generate_lines(quads, target, seed, source.base_iri):
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
