"""`kg publish`: copy the built store into a remote SPARQL server, graph by graph, and verify it.

Each named graph is replaced with one Graph Store PUT (atomic per graph on Oxigraph server and
Virtuoso); then the merged default graph is rebuilt on the backend from them, one update per
graph (`ADD <g> TO DEFAULT`; RemoteStore.merge_into_default says why not one), so that a
blank node keeps one identity across a named graph and the merge, as in the build's store (a
PUT of the merge made it two). A store whose default graph is
not exactly that merge (not made by `kg build`) has it sent as stored, with one PUT. Remote
graphs the build does not have are dropped (`prune`); the dataset version is bumped before the
first and after every graph, so service processes in front of the backend drop their caches as
the data changes. A publish that was interrupted is simply run again: every step replaces, none
appends, so the rerun ends with exactly the build's graphs.

Verification (`verify`): the triple count of every graph must equal the build's. Virtuoso 7.2
cannot hold some builds intact: it stores value-equal numbers and dates of one subject and
predicate as one triple (kg.store.literal_values), so there each graph must hold the build's
count minus exactly the triples it is predicted to merge, and every merged group must have
exactly one of its literals left on the backend (asked for by subject and predicate). Each
merge is reported by name; any other difference, or a literal Virtuoso would rewrite, fails the
publish.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field

import pyoxigraph as ox

from kg.errors import BackendUnavailable
from kg.store import literal_values
from kg.store.remote import RemoteStore

Progress = Callable[[str], None]
BATCH = 200  # (subject, predicate) pairs per survivor query
# true when the stored default graph is not exactly the set of the named graphs' triples
DEFAULT_IS_NOT_THE_MERGE = """ASK {
  { ?s ?p ?o FILTER NOT EXISTS { GRAPH ?g { ?s ?p ?o } } }
  UNION { GRAPH ?g { ?s ?p ?o } FILTER NOT EXISTS { ?s ?p ?o } }
}"""


@dataclass
class Merge:
    """Literals of one subject and predicate in one graph that the backend stores as one."""

    graph: str  # "" for the default graph
    subject: ox.NamedNode | ox.BlankNode
    predicate: ox.NamedNode
    literals: tuple[ox.Literal, ...]
    kept: ox.Literal | None = None  # the literal the backend holds (None: not verifiable)

    @property
    def lost(self) -> int:
        return len(self.literals) - 1

    def describe(self) -> str:
        where = f"{self.graph or 'default graph (merge)'}: {self.subject} {self.predicate}"
        if self.kept is None:
            return f"{where} {', '.join(map(str, self.literals))} (stored as one)"
        gone = [str(lit) for lit in self.literals if lit != self.kept]
        return f"{where} kept {self.kept}, lost {', '.join(gone)}"


@dataclass
class PublishReport:
    graphs: dict[str, int] = field(default_factory=dict)  # graph ("" default) → local triples
    remote: dict[str, int] = field(default_factory=dict)  # same, counted on the backend
    dropped: list[str] = field(default_factory=list)
    merges: list[Merge] = field(default_factory=list)  # predicted for the backend, verified
    problems: list[str] = field(default_factory=list)  # findings that fail the verification

    @property
    def mismatches(self) -> dict[str, tuple[int, int]]:
        """Graphs whose remote count differs from the build's (explained or not)."""
        names = set(self.graphs) | set(self.remote)
        return {n: (self.graphs.get(n, 0), self.remote.get(n, 0)) for n in sorted(names)
                if self.graphs.get(n, 0) != self.remote.get(n, 0)}

    @property
    def expected(self) -> dict[str, int]:
        """What each graph should count on the backend: the build's minus its merges."""
        expected = dict(self.graphs)
        for merge in self.merges:
            expected[merge.graph] = expected.get(merge.graph, 0) - merge.lost
        return expected

    @property
    def unexplained(self) -> dict[str, tuple[int, int]]:
        """Graphs whose remote count is not the expected one: (expected, remote)."""
        expected = self.expected
        names = set(expected) | set(self.remote)
        return {n: (expected.get(n, 0), self.remote.get(n, 0)) for n in sorted(names)
                if expected.get(n, 0) != self.remote.get(n, 0)}

    @property
    def ok(self) -> bool:
        return not self.unexplained and not self.problems


def _bump(remote: RemoteStore) -> None:
    version = remote.next_version()
    remote.update(remote.version_ops(version))
    remote._version = version


def predict(name: str, quads: Iterable[ox.Quad], dialect: str) -> tuple[list[Merge], list[str]]:
    """The merges `dialect` will make of one graph, and the literals it would rewrite."""
    if dialect != "virtuoso":
        return [], []
    groups: dict[tuple[ox.NamedNode | ox.BlankNode, ox.NamedNode, Hashable],
                 list[ox.Literal]] = defaultdict(list)
    rewrites = []
    for quad in quads:
        literal = quad.object
        if not isinstance(literal, ox.Literal):
            continue
        if literal_values.rewritten(literal):
            rewrites.append(f"{name or 'default graph (merge)'}: {quad.subject} "
                            f"{quad.predicate} {literal}")
        key = literal_values.merge_key(literal)
        if key is not None and isinstance(quad.subject, (ox.NamedNode, ox.BlankNode)):
            groups[(quad.subject, quad.predicate, key)].append(literal)
    merges = [Merge(name, s, p, tuple(sorted(lits, key=str)))
              for (s, p, _), lits in groups.items() if len(lits) > 1]
    return sorted(merges, key=lambda m: (str(m.subject), str(m.predicate))), rewrites


def _check_survivors(remote: RemoteStore, merges: list[Merge]) -> list[str]:
    """Fill in each merge's `kept` from the backend; what does not match the prediction."""
    problems: list[str] = []
    by_graph: dict[str, list[Merge]] = defaultdict(list)
    for merge in merges:
        if isinstance(merge.subject, ox.NamedNode):  # blank nodes: counted, not looked up
            by_graph[merge.graph].append(merge)
    merge_graph = remote.merge_graph
    for name, group in by_graph.items():
        graph = ox.NamedNode(name) if name else merge_graph
        pattern = f"GRAPH {graph} {{ ?s ?p ?o }}" if graph is not None else "?s ?p ?o"
        for start in range(0, len(group), BATCH):
            batch = group[start:start + BATCH]
            pairs = " ".join(f"({m.subject} {m.predicate})" for m in batch)
            rows = remote._select(
                f"SELECT ?s ?p ?o WHERE {{ VALUES (?s ?p) {{ {pairs} }} {pattern} "
                "FILTER(isLiteral(?o)) }", dataset=False)
            held: dict[tuple[str, str], list[ox.Literal]] = defaultdict(list)
            for row in rows:
                value = row.get("o")
                if isinstance(value, ox.Literal):
                    held[(row["s"].value, row["p"].value)].append(value)
            for merge in batch:
                key = literal_values.merge_key(merge.literals[0])
                left = [o for o in held[(merge.subject.value, merge.predicate.value)]
                        if literal_values.merge_key(o) == key]
                if len(left) == 1 and left[0] in merge.literals:
                    merge.kept = left[0]
                else:
                    problems.append(f"expected one of {', '.join(map(str, merge.literals))} "
                                    f"for {merge.subject} {merge.predicate} in "
                                    f"{name or 'the default graph'}, the backend holds "
                                    f"{', '.join(map(str, left)) or 'none'}")
    return problems


def verify(remote: RemoteStore, report: PublishReport, progress: Progress) -> PublishReport:
    """Count every graph on the backend and check the predicted merges (module docstring)."""
    counts = remote.graph_counts()
    report.remote = {k: v for k, v in counts.items() if k != remote.meta_graph.value}
    report.problems += _check_survivors(remote, report.merges)
    for merge in report.merges:
        progress(f"merged by the backend (value-equal literals): {merge.describe()}")
    return report


def publish(source: ox.Store, remote: RemoteStore, *, prune: bool = True,
            progress: Progress = lambda _: None) -> PublishReport:
    remote.poll_version()
    if not remote.available:
        raise BackendUnavailable(f"the SPARQL backend does not answer: {remote.last_error}")
    report = PublishReport()
    graphs: list[ox.NamedNode | ox.DefaultGraph] = sorted(
        (g for g in source.named_graphs() if isinstance(g, ox.NamedNode)), key=lambda g: g.value)
    graphs.append(ox.DefaultGraph())
    _bump(remote)
    for number, graph in enumerate(graphs, 1):
        quads = list(source.quads_for_pattern(None, None, None, graph))
        name = graph.value if isinstance(graph, ox.NamedNode) else ""
        report.graphs[name] = len(quads)
        merges, rewrites = predict(name, quads, remote.dialect)
        report.merges += merges
        report.problems += [f"the backend rewrites the lexical form of {r}" for r in rewrites]
        if isinstance(graph, ox.NamedNode):
            remote.put_graph(graph, quads)
        elif not source.query(DEFAULT_IS_NOT_THE_MERGE):
            remote.merge_into_default(graphs[:-1])  # kg build's merge (kg.store.default_graph)
        else:  # copied as it is, so the counts still match; its blank nodes become others
            progress("the default graph is not the merge of the named graphs: sent as stored")
            remote.put_graph(graph, quads)
        _bump(remote)
        progress(f"[{number}/{len(graphs)}] {name or 'default graph (merge)'}: {len(quads)} "
                 "triples")
    keep = set(report.graphs) | {remote.meta_graph.value}
    if prune:
        for name in remote.named_graphs():
            if name not in keep:
                remote.delete_graph(ox.NamedNode(name))
                report.dropped.append(name)
                progress(f"dropped {name} (not in the build)")
        _bump(remote)
    return verify(remote, report, progress)
