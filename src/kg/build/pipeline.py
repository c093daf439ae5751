"""The build, step by step: sources -> extraction -> RDF -> mentions -> inference -> SHACL -> write.

`build(settings)` is what `kg build` and the server's start-up call; `check(settings)` runs
every check without writing anything (`kg validate`).
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pyoxigraph as ox

from kg import paths
from kg.build import validate, writer
from kg.build.abbreviations import abbreviation_statements
from kg.build.describe import document_quads
from kg.build.extraction import load_extraction
from kg.build.infer import infer
from kg.build.mentions import find_mentions, mention_quads
from kg.build.ontology import Ontology
from kg.build.provenance import statement_quads
from kg.build.sources import load_documents
from kg.build.terms import RDF_TYPE, Iris
from kg.config import Settings

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Layout:
    """Where the inputs are: the checkout (or KG_HOME) by default, any root in tests."""

    root: Path

    @classmethod
    def default(cls) -> Layout:
        return cls(paths.project_root())

    @property
    def ontology_dir(self) -> Path:
        return self.root / "ontology"

    @property
    def shapes_dir(self) -> Path:
        return self.root / "shapes"

    @property
    def sources_dir(self) -> Path:
        return self.root / "data" / "sources"

    @property
    def documents_file(self) -> Path:
        return self.root / "data" / "documents.yaml"

    @property
    def extraction_dir(self) -> Path:
        return self.root / "data" / "extraction"


@dataclass
class BuildReport:
    """What a build produced; counts are what `kg build` prints and manifest.json records."""

    graphs: dict[str, int] = field(default_factory=dict)
    classes: dict[str, int] = field(default_factory=dict)
    documents: int = 0
    entities: int = 0
    claims: int = 0
    mentions: int = 0
    inferred: int = 0
    quads: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    store_dir: Path | None = None
    dumps: dict[str, Path] = field(default_factory=dict)
    built_at: str = ""

    @property
    def seconds(self) -> float:
        return sum(self.timings.values())

    def manifest(self) -> dict[str, object]:
        return {
            "built_at": self.built_at,
            "documents": self.documents,
            "entities": self.entities,
            "claims": self.claims,
            "mentions": self.mentions,
            "inferred": self.inferred,
            "quads": self.quads,
            "graphs": self.graphs,
            "classes": self.classes,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }


@contextmanager
def _step(report: BuildReport, name: str, progress: Progress | None) -> Iterator[None]:
    if progress:
        progress(name)
    t = time.perf_counter()
    yield
    report.timings[name] = time.perf_counter() - t


def assemble(
    settings: Settings, layout: Layout | None = None, progress: Progress | None = None
) -> tuple[list[ox.Quad], BuildReport]:
    """Every quad of the dataset, checked (extraction rules and SHACL); nothing written."""
    layout = layout or Layout.default()
    iris = Iris(settings.base_iri)
    report = BuildReport(built_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    with _step(report, "sources", progress):
        onto = Ontology.load(iris, layout.ontology_dir, layout.shapes_dir)
        docs = load_documents(layout.sources_dir, layout.documents_file)
    with _step(report, "extraction", progress):
        extraction = load_extraction(layout.extraction_dir, docs, onto, layout.root)
        statements = extraction.statements + abbreviation_statements(docs, extraction.entities)
    with _step(report, "statements", progress):
        data: list[ox.Quad] = []
        for doc in docs:
            data.extend(document_quads(doc, iris))
        data.extend(statement_quads(statements, iris))
    with _step(report, "mentions", progress):
        mentions = find_mentions(docs, extraction.entities)
        data.extend(mention_quads(mentions, extraction.entities, iris))
    with _step(report, "inference", progress):
        inferred = infer(data + onto.ontology + onto.vocabulary, iris)
    with _step(report, "validation", progress):
        validate.check(validate.relevant(data + onto.vocabulary + inferred), onto.shapes)
    quads = list(dict.fromkeys(data + onto.ontology + onto.vocabulary + onto.shapes + inferred))
    report.documents = len(docs)
    report.entities = len(extraction.entities)
    report.claims = len({(s.subject, s.predicate, s.object, s.evidence) for s in statements})
    report.mentions = len(mentions)
    report.inferred = len(inferred)
    report.quads = len(quads)
    report.graphs = dict(sorted(Counter(q.graph_name.value for q in quads).items()))
    asserted_types = {(st.subject, st.object) for st in statements if st.predicate == RDF_TYPE}
    report.classes = dict(sorted(Counter(_local(o.value) for _, o in asserted_types).items()))
    return quads, report


def _local(iri: str) -> str:
    return iri.rsplit("#", 1)[-1].rsplit("/", 1)[-1]


def check(
    settings: Settings, layout: Layout | None = None, progress: Progress | None = None
) -> BuildReport:
    """All checks of a build, writing nothing (kg validate)."""
    return assemble(settings, layout, progress)[1]


def build(
    settings: Settings, layout: Layout | None = None, progress: Progress | None = None
) -> BuildReport:
    """Check, write a new store aside, swap it in, write dumps; the old store survives failure."""
    quads, report = assemble(settings, layout, progress)
    with _step(report, "store", progress):
        target = writer.write_store(quads, settings.store_path)
        writer.swap(settings.store_path, target)
        writer.prune(settings.store_path)
        report.store_dir = target
    with _step(report, "dumps", progress):
        report.dumps = writer.write_dumps(
            quads, settings.dumps_dir, settings.base_iri, report.manifest()
        )
    return report
