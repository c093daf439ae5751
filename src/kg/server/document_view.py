"""A source document's page: its metadata, then its text in passages, every recognised
mention linked to its entity and every quoted claim marked.

The text is split by offsets into segments on the server (never by inserting markup into the
text): each segment is plain text plus what covers it (at most one mention link, any number
of claims), and Jinja2 autoescapes it. Passage anchors are the passage IRI's tail with '/'
as '-' (<doc>/para/12 → #para-12, #section-2.4, #note-iv), as entity pages link them;
mentions are #m-<start>-<end>, claims #c-<id>.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import pyoxigraph as ox

from kg.server.evidence import passage_anchor
from kg.server.page_terms import Reader, page_href
from kg.server.queries import select
from kg.server.source_text import load_text
from kg.store.base import Store

DCT = "http://purl.org/dc/terms/"
META = (("Title", DCT + "title"), ("Publisher", DCT + "publisher"), ("Date", DCT + "date"),
        ("Kind", DCT + "type"), ("Language", DCT + "language"))
LEAF_TYPES = ("Paragraph", "Footnote", "Passage")


def fetch_document(
    store: ox.Store | Store, base_iri: str, iri: str
) -> dict[str, list[dict]] | None:
    """Metadata, passages and spans of a source document, or None when `iri` is none.
    Run in one thread."""
    doc = ox.NamedNode(iri)
    meta = select(store, "document_metadata", base_iri, doc=doc)
    if not meta:
        return None
    return {"meta": meta,
            "passages": select(store, "document_passages", base_iri, doc=doc),
            "spans": select(store, "document_spans", base_iri, doc=doc)}


@dataclass
class Span:
    kind: str  # "mention" or "claim"
    start: int
    end: int
    href: str | None
    title: str
    anchor: str


@dataclass
class Segment:
    text: str
    href: str | None = None
    link_title: str | None = None
    claims: list[str] = field(default_factory=list)
    anchors: list[str] = field(default_factory=list)


@dataclass
class Block:
    kind: str  # "para", "note", "gap" (text outside every passage)
    anchors: list[str]
    locator: str | None
    heading: bool
    segments: list[Segment]
    section: str | None = None


@dataclass
class DocumentView:
    iri: str
    title: str
    meta: list[tuple[str, str]]
    file_name: str | None
    sha256: str | None
    text_status: str
    blocks: list[Block]
    outline: list[tuple[str, str]]
    mention_count: int
    claim_count: int
    entity_count: int


def _int(term: object | None) -> int | None:
    try:
        return int(term.value) if isinstance(term, ox.Literal) else None
    except ValueError:
        return None


def _spans(rows: list[dict], base_iri: str, root: str, length: int) -> list[Span]:
    spans: list[Span] = []
    claims: dict[str, Span] = {}
    for row in rows:
        start, end = _int(row.get("start")), _int(row.get("end"))
        if start is None or end is None or not 0 <= start < end <= length:
            continue
        target = row["target"]
        label = row["targetLabel"].value if "targetLabel" in row else target.value
        if row["kind"].value == "mention":
            spans.append(Span("mention", start, end, page_href(target.value, base_iri, root),
                              label, f"m-{start}-{end}"))
            continue
        node = row["node"].value
        if node in claims:  # several labels for one claim: keep the first
            continue
        predicate = row["predicateLabel"].value if "predicateLabel" in row else (
            row["predicate"].value.rsplit("#", 1)[-1].rsplit("/", 1)[-1])
        obj = row["object"]
        shown = row["objectLabel"].value if "objectLabel" in row else (
            obj.value if isinstance(obj, ox.Literal) else obj.value.rsplit("/", 1)[-1])
        claims[node] = Span("claim", start, end, None, f"{label} — {predicate} — {shown}",
                            "c-" + node.rstrip("/").rsplit("/", 1)[-1])
    spans += claims.values()
    return spans


def _segments(text: str, lo: int, hi: int, spans: list[Span]) -> list[Segment]:
    """Cut text[lo:hi] where any span starts or ends; each piece knows what covers it."""
    inside = [s for s in spans if s.start < hi and s.end > lo]
    cuts = sorted({lo, hi} | {min(max(s.start, lo), hi) for s in inside}
                  | {min(max(s.end, lo), hi) for s in inside})
    out: list[Segment] = []
    for a, b in pairwise(cuts):
        covering = [s for s in inside if s.start <= a and s.end >= b]
        mention = min((s for s in covering if s.kind == "mention"),
                      key=lambda s: (s.end - s.start, s.start), default=None)
        out.append(Segment(
            text=text[a:b],
            href=mention.href if mention else None,
            link_title=mention.title if mention else None,
            claims=[s.title for s in covering if s.kind == "claim"],
            anchors=sorted({s.anchor for s in inside if s.start == a}),
        ))
    return out


def build_document_view(data: dict[str, list[dict]], iri: str, base_iri: str, root: str,
                        sources_dir: Path | None) -> DocumentView:
    kg = base_iri + "ontology#"
    doc = ox.NamedNode(iri)
    quads = [ox.Quad(doc, r["p"], r["o"]) for r in data["meta"]]  # type: ignore[arg-type]
    r = Reader(quads, base_iri, root)
    file_name, sha256 = r.text(doc, kg + "fileName"), r.text(doc, kg + "sha256")
    text = load_text(sources_dir, file_name, sha256) if sources_dir else None
    meta = [(name, shown) for name, p in META if (shown := r.text(doc, p))]
    if text is None:
        status = ("The source file is not available here, or it is not the file the graph "
                  "was built from (checksum differs): the text cannot be shown.")
        blocks: list[Block] = []
        outline: list[tuple[str, str]] = []
        spans: list[Span] = []
    else:
        status = "The text below is the source file, verified against the checksum." if sha256 \
            else "The text below is the source file (the graph records no checksum)."
        spans = _spans(data["spans"], base_iri, root, len(text))
        blocks, outline = _blocks(text, data["passages"], iri, kg, spans)
    targets = {s.href for s in spans if s.kind == "mention"}
    return DocumentView(
        iri=iri,
        title=r.text(doc, DCT + "title") or r.label_of(doc),
        meta=meta,
        file_name=file_name,
        sha256=sha256,
        text_status=status,
        blocks=blocks,
        outline=outline,
        mention_count=sum(1 for s in spans if s.kind == "mention"),
        claim_count=sum(1 for s in spans if s.kind == "claim"),
        entity_count=len(targets),
    )


def _blocks(text: str, passages: list[dict], iri: str, kg: str,
            spans: list[Span]) -> tuple[list[Block], list[tuple[str, str]]]:
    """Leaf passages (paragraphs, notes) in order, the text between them as gaps; a section
    anchors the block where it starts (its heading is the gap before its first paragraph)."""
    leaves, sections = [], []
    for row in passages:
        start, end = _int(row.get("start")), _int(row.get("end"))
        anchor = passage_anchor(row["passage"].value, iri)
        if start is None or end is None or anchor is None or not 0 <= start <= end <= len(text):
            continue
        locator = row["locator"].value if "locator" in row else None
        kind = row["type"].value[len(kg):] if row["type"].value.startswith(kg) else ""
        if kind == "Section":
            heading = row["heading"].value if "heading" in row else None
            sections.append((start, anchor, " ".join(filter(None, (locator, heading)))))
        elif kind in LEAF_TYPES:
            leaves.append((start, end, anchor, locator, "note" if kind == "Footnote" else "para"))
    leaves.sort()
    sections.sort()
    pieces: list[tuple[int, int, str, list[str], str | None]] = []
    pos = 0
    for start, end, anchor, locator, kind in leaves:
        if start < pos:  # overlapping leaves: keep document order, skip the overlap
            start = pos
            if start >= end:
                continue
        if text[pos:start].strip():
            pieces.append((pos, start, "gap", [], None))
        pieces.append((start, end, kind, [anchor], locator))
        pos = end
    if text[pos:].strip():
        pieces.append((pos, len(text), "gap", [], None))
    blocks: list[Block] = []
    pending = list(sections)
    current: str | None = None
    for lo, hi, kind, anchors, locator in pieces:
        heads = []
        while pending and pending[0][0] < hi:
            heads.append(pending.pop(0))
        for _, _anchor, title in heads:
            current = title
        blocks.append(Block(
            kind=kind,
            anchors=[a for _, a, _ in heads] + anchors,
            locator=locator,
            heading=bool(heads) and kind == "gap",
            segments=_segments(text, lo, hi, spans),
            section=current,
        ))
    outline = [(a, t) for _, a, t in sections]
    return blocks, outline
