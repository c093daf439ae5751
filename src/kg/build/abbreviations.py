"""Abbreviation tables ("ABBR<TAB>Expansion" lines under a heading) as evidenced alt labels."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyoxigraph as ox

from kg.build.extraction import Entity, Evidence, Statement
from kg.build.sources import Document
from kg.build.terms import SKOS_ALT

_ROW = re.compile(r"([^\t\n]{1,20})\t+([^\t\n]+?)\s*$")


@dataclass(frozen=True)
class Abbreviation:
    abbr: str
    expansion: str
    start: int  # offsets of the table line
    end: int


def table(doc: Document) -> list[Abbreviation]:
    """Rows of the document's abbreviation table (documents.yaml `abbreviations: <heading>`)."""
    heading = doc.meta.get("abbreviations")
    if not heading:
        return []
    rows: list[Abbreviation] = []
    pos, started = 0, False
    for line in doc.text.split("\n"):
        here, pos = pos, pos + len(line) + 1
        if not started:
            started = line.strip() == str(heading).strip()
            continue
        if not line.strip():
            continue
        m = _ROW.fullmatch(line)
        if not m or m.group(2).strip().isdigit():
            if rows:
                break
            continue
        rows.append(
            Abbreviation(m.group(1).strip(), m.group(2).strip(), here, here + len(line.rstrip()))
        )
    return rows


def _key(label: str) -> str:
    label = " ".join(label.split())
    if label.lower().startswith("the "):
        label = label[4:]
    return label.casefold()


def abbreviation_statements(docs: list[Document], entities: dict[str, Entity]) -> list[Statement]:
    """Alt labels from the tables; adds them to the entities (so mentions find them too)."""
    by_label: dict[str, list[Entity]] = {}
    for ent in entities.values():
        for label in [ent.label, *ent.alts]:
            by_label.setdefault(_key(label), []).append(ent)
    out: list[Statement] = []
    for doc in docs:
        for row in table(doc):
            matches = {e.id: e for e in by_label.get(_key(row.expansion), [])}
            for ent in matches.values():
                if row.abbr not in ent.alts and row.abbr != ent.label:
                    ent.alts.append(row.abbr)
                out.append(
                    Statement(
                        ent.iri,
                        SKOS_ALT,
                        ox.Literal(row.abbr, language="en"),
                        Evidence(doc, row.start, row.end),
                    )
                )
    return out
