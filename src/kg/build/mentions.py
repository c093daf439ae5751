"""Every occurrence of every known entity label in every document, as kg:Mention resources.

Matching is word-bounded and whitespace-flexible; short, all-caps or digit-bearing labels
("EU", "G7", "SPA") match case-sensitively so that ordinary words do not become mentions;
on overlaps the longest match wins. Candidates are found by first word, so the cost grows
with the text, not with the number of labels times the text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pyoxigraph as ox

from kg.build.extraction import Entity
from kg.build.sources import Document
from kg.build.terms import RDF_TYPE, Iris, integer

_WORD = re.compile(r"\w+")


def case_sensitive(label: str) -> bool:
    return len(label) <= 5 or label.upper() == label or any(c.isdigit() for c in label)


@dataclass(frozen=True)
class Mention:
    doc: Document
    start: int
    end: int
    entities: tuple[str, ...]


class _Matcher:
    """Labels indexed by their first word (casefolded)."""

    def __init__(self, entities: dict[str, Entity]) -> None:
        labels: dict[tuple[str, bool], set[str]] = {}
        for ent in entities.values():
            for label in [ent.label, *ent.alts]:
                norm = " ".join(label.split())
                sensitive = case_sensitive(norm)
                key = norm if sensitive else norm.casefold()
                labels.setdefault((key, sensitive), set()).add(ent.id)
        self.index: dict[str, list[tuple[re.Pattern, tuple[str, ...]]]] = {}
        for (label, sensitive), ids in sorted(labels.items()):
            first = _WORD.match(label)
            if not first:
                continue
            body = r"\s+".join(re.escape(p) for p in label.split()) + r"(?!\w)"
            pattern = re.compile(body, 0 if sensitive else re.IGNORECASE)
            self.index.setdefault(first.group(0).casefold(), []).append(
                (pattern, tuple(sorted(ids)))
            )

    def find(self, doc: Document) -> list[Mention]:
        text = doc.text
        found: list[tuple[int, int, tuple[str, ...]]] = []
        for word in _WORD.finditer(text):
            candidates = self.index.get(word.group(0).casefold())
            if not candidates:
                continue
            start = word.start()
            if start and (text[start - 1].isalnum() or text[start - 1] == "_"):
                continue
            for pattern, ids in candidates:
                m = pattern.match(text, start)
                if m:
                    found.append((start, m.end(), ids))
        return _longest_first(doc, found)


def _longest_first(doc: Document, found: list[tuple[int, int, tuple[str, ...]]]) -> list[Mention]:
    merged: dict[tuple[int, int], set[str]] = {}
    for s, e, ids in found:
        merged.setdefault((s, e), set()).update(ids)
    taken = bytearray(len(doc.text) + 1)
    chosen: list[Mention] = []
    for (s, e), ids in sorted(merged.items(), key=lambda kv: (kv[0][0] - kv[0][1], kv[0][0])):
        if any(taken[s:e]):
            continue
        taken[s:e] = b"\x01" * (e - s)
        chosen.append(Mention(doc, s, e, tuple(sorted(ids))))
    return sorted(chosen, key=lambda m: m.start)


def find_mentions(docs: list[Document], entities: dict[str, Entity]) -> list[Mention]:
    matcher = _Matcher(entities)
    return [m for doc in docs for m in matcher.find(doc)]


def mention_quads(
    mentions: list[Mention], entities: dict[str, Entity], iris: Iris
) -> Iterator[ox.Quad]:
    g = iris.graph("mentions")
    kg = iris.term
    for m in mentions:
        stem = m.doc.stem
        node = iris.mention(stem, m.start, m.end)
        passage = m.doc.passage_for(m.start, m.end)
        yield ox.Quad(node, RDF_TYPE, kg("Mention"), g)
        for eid in m.entities:
            yield ox.Quad(node, kg("mentionOf"), entities[eid].iri, g)
        yield ox.Quad(node, kg("inDocument"), iris.doc(stem), g)
        yield ox.Quad(node, kg("passage"), iris.passage(stem, passage.key), g)
        yield ox.Quad(node, kg("matchedText"), ox.Literal(m.doc.text[m.start : m.end]), g)
        yield ox.Quad(node, kg("startOffset"), integer(m.start), g)
        yield ox.Quad(node, kg("endOffset"), integer(m.end), g)
