"""Label search for people (the 404 page's box and the site header): matches on labels and
alternative labels, ranked (exact, then prefix, then word start, then anywhere; a label
before an alternative label), grouped by class with counts."""

from __future__ import annotations

from dataclasses import dataclass, field

from kg.server.html import local_href
from kg.server.page_terms import capitalised

ALT = "http://www.w3.org/2004/02/skos/core#altLabel"
PER_GROUP = 50


@dataclass
class Hit:
    iri: str
    href: str
    name: str
    matched: str | None  # the alternative label that matched, when the name did not
    rank: tuple[int, int, str] = (9, 9, "")


@dataclass
class ResultGroup:
    kind: str
    anchor: str
    hits: list[Hit] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.hits)


def _rank(label: str, needle: str) -> int:
    low, n = label.casefold(), needle.casefold()
    if low == n:
        return 0
    if low.startswith(n):
        return 1
    if f" {n}" in f" {low}" or f"({n}" in low:
        return 2
    return 3


def group_hits(rows: list[dict], needle: str, base_iri: str, root: str) -> list[ResultGroup]:
    hits: dict[str, Hit] = {}
    kinds: dict[str, set[str]] = {}
    for row in rows:
        iri = row["s"].value
        label = row["label"].value
        name = row["name"].value if "name" in row else label
        is_alt = row["p"].value == ALT
        hit = hits.get(iri)
        if hit is None or (hit.name == iri.rsplit("/", 1)[-1] and "name" in row):
            hit = hits[iri] = Hit(iri, local_href(iri, base_iri, root), name, None)
        rank = (_rank(label, needle), 1 if is_alt else 0, name.casefold())
        if rank < hit.rank:
            hit.rank = rank
            hit.matched = label if is_alt and label != hit.name else None
        kind = row["typeLabel"].value if "typeLabel" in row else (
            row["type"].value.rsplit("#", 1)[-1] if "type" in row else "other")
        kinds.setdefault(iri, set()).add(capitalised(kind))
    groups: dict[str, ResultGroup] = {}
    for iri, hit in hits.items():
        kind = sorted(kinds.get(iri) or {"Other"})[0]
        group = groups.setdefault(kind, ResultGroup(kind, "k-" + kind.lower().replace(" ", "-")))
        group.hits.append(hit)
    for group in groups.values():
        group.hits.sort(key=lambda h: h.rank)
    return sorted(groups.values(), key=lambda g: (min(h.rank for h in g.hits)[:1], -g.count,
                                                  g.kind))
