"""The build, step by step: sources -> extraction -> RDF -> mentions -> inference -> SHACL -> write.

`build(settings)` is what `kg build` and the server's start-up call; `check(settings)` runs
every check without writing anything (`kg validate`).

Steps overlap in worker threads where oxigraph does the work (it lets go of the GIL):
inference runs while the data is converted for SHACL, and writing the new store aside and
rendering the dumps run while SHACL validates. Nothing is swapped in or written to the dumps
until validation has passed; a failed validation discards the store written aside.
"""

from __future__ import annotations

import datetime as dt
import gc
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pyoxigraph as ox
import rdflib

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
T = TypeVar("T")


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
    wall: float = 0.0  # start to finish; steps overlap, so their timings add up to more

    @property
    def seconds(self) -> float:
        return self.wall or sum(self.timings.values())

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


@dataclass
class _Assembled:
    """Every quad of the dataset, extraction-checked; SHACL not yet run."""

    quads: list[ox.Quad]
    report: BuildReport
    shacl_data: rdflib.Graph  # what SHACL validates, converted for pySHACL
    shapes: list[ox.Quad]

    def validate(self) -> None:
        validate.check_graph(self.shacl_data, self.shapes)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the duration (back on after, if it was on).

    A build allocates a few million long-lived objects (terms, rdflib nodes and indexes) and
    makes no cyclic garbage worth collecting: the collector only rescanned the growing heap,
    a quarter of the time spent building the SHACL data graph.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _assemble(settings: Settings, layout: Layout | None, progress: Progress | None) -> _Assembled:
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
    with _step(report, "inference", progress), ThreadPoolExecutor(1) as pool:
        inferring = pool.submit(infer, data + onto.ontology + onto.vocabulary, iris)
        # The SHACL data graph is data + vocabulary + inferred types (validate.relevant
        # filters quad by quad), so the asserted part converts while the rules run.
        shacl_data = validate.to_graph(validate.relevant(data + onto.vocabulary))
        inferred = inferring.result()
        validate.to_graph(validate.relevant(inferred), shacl_data)
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
    return _Assembled(quads, report, shacl_data, onto.shapes)


def assemble(
    settings: Settings, layout: Layout | None = None, progress: Progress | None = None
) -> tuple[list[ox.Quad], BuildReport]:
    """Every quad of the dataset, checked (extraction rules and SHACL); nothing written."""
    start = time.perf_counter()
    with _gc_paused():
        assembled = _assemble(settings, layout, progress)
        with _step(assembled.report, "validation", progress):
            assembled.validate()
    assembled.report.wall = time.perf_counter() - start
    return assembled.quads, assembled.report


def _local(iri: str) -> str:
    return iri.rsplit("#", 1)[-1].rsplit("/", 1)[-1]


def check(
    settings: Settings, layout: Layout | None = None, progress: Progress | None = None
) -> BuildReport:
    """All checks of a build, writing nothing (kg validate)."""
    return assemble(settings, layout, progress)[1]


def _timed(fn: Callable[..., T], *args: object) -> tuple[T, float]:
    t = time.perf_counter()
    return fn(*args), time.perf_counter() - t


def _discard(storing: Future[tuple[Path, float]]) -> None:
    """Wait for the store written aside and remove it (its own failure is not the news)."""
    try:
        target, _ = storing.result()
    except BaseException:
        return
    shutil.rmtree(target, ignore_errors=True)


def build(
    settings: Settings, layout: Layout | None = None, progress: Progress | None = None
) -> BuildReport:
    """Check, write a new store aside, swap it in, write dumps; the old store survives failure.

    The store is written and the dumps rendered while SHACL validates; only a build that
    passes validation swaps its store in and replaces the dumps.
    """
    start = time.perf_counter()
    with _gc_paused():
        report = _build(settings, layout, progress)
    report.wall = time.perf_counter() - start
    return report


def _build(settings: Settings, layout: Layout | None, progress: Progress | None) -> BuildReport:
    assembled = _assemble(settings, layout, progress)
    report = assembled.report
    batches = writer.Batches(assembled.quads).serialized()
    if progress:
        progress("store and dumps")
    with ThreadPoolExecutor(2) as pool:
        storing = pool.submit(_timed, writer.write_store, batches, settings.store_path)
        rendering = pool.submit(_timed, writer.render_dumps, batches, settings.base_iri)
        try:
            with _step(report, "validation", progress):
                assembled.validate()
        except BaseException:
            _discard(storing)
            raise
        try:
            dumps, report.timings["dumps"] = rendering.result()
        except BaseException:
            _discard(storing)
            raise
        target, report.timings["store"] = storing.result()
    writer.swap(settings.store_path, target)
    writer.prune(settings.store_path)
    report.store_dir = target
    report.dumps = writer.save_dumps(dumps, settings.dumps_dir, report.manifest())
    return report
