"""`kg publish`: copy the built store into a remote SPARQL server, graph by graph.

Each named graph, then the merged default graph, is replaced with one Graph Store PUT (atomic
per graph on Oxigraph server and Virtuoso); remote graphs the build does not have are dropped
(`prune`); the dataset version is bumped before the first and after every graph, so service
processes in front of the backend drop their caches as the data changes. Finally the triple
counts of every graph are compared. A publish that was interrupted is simply run again: every
step replaces, none appends, so the rerun ends with exactly the build's graphs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pyoxigraph as ox

from kg.errors import BackendUnavailable
from kg.store.remote import RemoteStore


@dataclass
class PublishReport:
    graphs: dict[str, int] = field(default_factory=dict)  # graph ("" default) → local triples
    remote: dict[str, int] = field(default_factory=dict)  # same, counted on the backend
    dropped: list[str] = field(default_factory=list)

    @property
    def mismatches(self) -> dict[str, tuple[int, int]]:
        names = set(self.graphs) | set(self.remote)
        return {n: (self.graphs.get(n, 0), self.remote.get(n, 0)) for n in sorted(names)
                if self.graphs.get(n, 0) != self.remote.get(n, 0)}


def _bump(remote: RemoteStore) -> None:
    version = remote.next_version()
    remote.update(remote.version_ops(version))
    remote._version = version


def publish(source: ox.Store, remote: RemoteStore, *, prune: bool = True,
            progress: Callable[[str], None] = lambda _: None) -> PublishReport:
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
    counts = remote.graph_counts()
    report.remote = {k: v for k, v in counts.items() if k != remote.meta_graph.value}
    return report
