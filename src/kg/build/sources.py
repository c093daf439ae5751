"""Source documents: metadata from documents.yaml, text from data/sources, checksums, passages."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from kg.build.segment import Passage, segment_blocks, segment_numbered
from kg.errors import BuildError


@dataclass(eq=False)
class Document:
    """One source text with its metadata and its passages (in document order)."""

    file: str
    text: str
    sha256: str
    meta: dict[str, Any]
    passages: list[Passage] = field(default_factory=list)
    _spans: dict[tuple[int, int], Passage] = field(default_factory=dict, repr=False)

    @cached_property
    def stem(self) -> str:
        """File name without suffix (cached: every quad of the document's graph needs it)."""
        return Path(self.file).stem

    @property
    def title(self) -> str:
        return str(self.meta.get("title") or self.file)

    def passage_for(self, start: int, end: int) -> Passage:
        """The smallest passage holding the span (else the one holding its start)."""
        hit = self._spans.get((start, end))
        if hit is None:
            hit = self._spans[(start, end)] = self._passage_for(start, end)
        return hit

    def _passage_for(self, start: int, end: int) -> Passage:
        holding = [p for p in self.passages if p.contains(start, end)]
        if not holding:
            holding = [p for p in self.passages if p.start <= start < p.end] or self.passages
        return min(holding, key=lambda p: (p.end - p.start, p.start))

    def locate(self, at: str) -> Passage:
        """Resolve an `at` locator (para N, section 2.4, section "Cyber issues", note iv)."""
        spec = at.strip()
        m = re.fullmatch(r"(?:para(?:graph)?|art(?:icle)?)\.?\s*(\d+)", spec, re.IGNORECASE)
        if m:
            return self._find(lambda p: p.kind == "para" and p.number == int(m.group(1)), spec)
        m = re.fullmatch(r"section\.?\s+[\"“'](.+?)[\"”']", spec, re.IGNORECASE)
        if m:
            want = " ".join(m.group(1).split()).casefold()
            return self._find(
                lambda p: (
                    p.kind == "section" and " ".join((p.heading or "").split()).casefold() == want
                ),
                spec,
            )
        m = re.fullmatch(r"section\.?\s+(\d+(?:\.\d+)*)", spec, re.IGNORECASE)
        if m:
            return self._find(
                lambda p: p.kind == "section" and p.section_number == m.group(1), spec
            )
        m = re.fullmatch(r"(?:foot)?notes?\.?\s*(\S+)", spec, re.IGNORECASE)
        if m:
            return self._find(lambda p: p.kind == "note" and p.label == m.group(1).lower(), spec)
        raise LookupError(
            f"locator {at!r} is not 'para N', 'section N.N', 'section \"Heading\"' or 'note X'"
        )

    def _find(self, pred: Any, spec: str) -> Passage:
        for p in self.passages:
            if pred(p):
                return p
        raise LookupError(f"locator {spec!r} names no passage of {self.file}")


def load_metadata(documents_file: Path) -> dict[str, dict[str, Any]]:
    """documents.yaml entries by file name."""
    if not documents_file.exists():
        return {}
    try:
        data = yaml.safe_load(documents_file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise BuildError(f"{documents_file}: malformed YAML: {exc}") from exc
    entries = data.get("documents") or []
    out: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "file" not in entry:
            raise BuildError(f"{documents_file}: entry {i} has no 'file'")
        out[str(entry["file"])] = entry
    return out


def _generic_meta(text: str) -> dict[str, Any]:
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "untitled")
    return {"title": first[:200], "segmentation": "blocks", "language": "en"}


def load_documents(sources_dir: Path, documents_file: Path) -> list[Document]:
    """Every .txt in sources_dir, with its metadata, verified checksum and passages."""
    meta = load_metadata(documents_file)
    docs: list[Document] = []
    missing = sorted(set(meta) - {p.name for p in sources_dir.glob("*.txt")})
    if missing:
        raise BuildError(f"{documents_file}: listed but not in {sources_dir}: {', '.join(missing)}")
    for path in sorted(sources_dir.glob("*.txt")):
        raw = path.read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        entry = meta.get(path.name)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BuildError(f"{path.name}: not UTF-8 ({exc})") from exc
        info = dict(entry) if entry else _generic_meta(text)
        want = info.get("sha256")
        if want is not None and str(want).lower() != digest:
            raise BuildError(
                f"{path.name}: sha256 mismatch (documents.yaml says {want}, file has {digest})"
            )
        doc = Document(path.name, text, digest, info)
        doc.passages = segment(doc)
        docs.append(doc)
    return docs


def segment(doc: Document) -> list[Passage]:
    mode = doc.meta.get("segmentation", "blocks")
    headings = [str(h) for h in doc.meta.get("headings") or []]
    if mode == "numbered-paragraphs":
        return segment_numbered(doc.text, headings)
    if mode == "blocks":
        return segment_blocks(doc.text, headings)
    raise BuildError(f"{doc.file}: unknown segmentation {mode!r}")


def date_text(value: object) -> str | None:
    """documents.yaml dates may be parsed by YAML (date) or stay strings/ints."""
    if value is None:
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)
