"""Segmentation of a source text into located passages (paragraphs, sections, notes).

Offsets are Unicode code points into the file text, so they agree with Python slicing and
with the character offsets SPARQL users see in kg:startOffset / kg:endOffset.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

SUPERSCRIPT_DIGITS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")

_NUMBERED_PARA = re.compile(r"^(\d{1,3})\.(?:\s|$)")
_NUMBERED_HEADING = re.compile(r"^(\d{1,2}(?:\.\d{1,2})*)\.?[ \t]+([A-ZÀ-Þ].*)$")
_TOC_LINE = re.compile(r"\t\s*\d+\s*$")
_MARKDOWN_HEADING = re.compile(r"^(#{1,6})\s+(\S.*?)\s*#*\s*$")
_NOTE_BRACKET = re.compile(r"^\[([ivxlcdm]+|\d+)\]", re.IGNORECASE)
_NOTE_ARROW = re.compile(r"^\s*(\d+)\.\s.*↩")
_NOTE_SUPERSCRIPT = re.compile(r"^([⁰¹²³⁴⁵⁶⁷⁸⁹]+)\s")


@dataclass
class Passage:
    """A located part of a document: kind is 'para', 'section', 'note' or 'front'."""

    kind: str
    key: str  # IRI tail: para/12, section/2.4, note/iv, section/front
    start: int
    end: int
    locator: str
    number: int | None = None  # paragraph number (numbered docs) or ordinal in the document
    heading: str | None = None
    section_number: str | None = None  # "2.4" for numbered sections
    label: str | None = None  # note label
    section: Passage | None = field(default=None, repr=False)

    def contains(self, start: int, end: int) -> bool:
        return self.start <= start and end <= self.end


def _lines(text: str) -> list[tuple[int, str]]:
    """(offset, line without newline) for every line."""
    out, pos = [], 0
    for line in text.split("\n"):
        out.append((pos, line))
        pos += len(line) + 1
    return out


def _norm(s: str) -> str:
    return " ".join(s.split())


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink a span so it starts and ends on non-whitespace."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _find_headings(
    lines: list[tuple[int, str]], headings: Iterable[str]
) -> dict[int, tuple[int, str]]:
    """Line index -> (line count, heading) for listed headings (whitespace-flexible, ≤ 2 lines)."""
    wanted = {_norm(h): h for h in headings}
    found: dict[int, tuple[int, str]] = {}
    for i, (_, line) in enumerate(lines):
        one = _norm(line)
        if one in wanted:
            found[i] = (1, wanted.pop(one))
        elif i + 1 < len(lines):
            two = _norm(line + " " + lines[i + 1][1])
            if one and two in wanted:
                found[i] = (2, wanted.pop(two))
    return found


def _section_locator(number: str | None, heading: str) -> str:
    return f"section {number}" if number else f'section "{heading}"'


def segment_numbered(text: str, headings: list[str]) -> list[Passage]:
    """Lines "N." start paragraph N (in sequence); the listed headings start sections."""
    lines = _lines(text)
    heading_at = _find_headings(lines, headings)
    bounds: list[tuple[int, str, object]] = []  # (offset, kind, payload)
    expected = 1
    skip = 0
    for i, (off, line) in enumerate(lines):
        if skip:
            skip -= 1
            continue
        if i in heading_at:
            count, heading = heading_at[i]
            bounds.append((off, "section", heading))
            skip = count - 1
            continue
        m = _NUMBERED_PARA.match(line)
        if m and int(m.group(1)) == expected:
            bounds.append((off, "para", expected))
            expected += 1
    passages: list[Passage] = []
    first = bounds[0][0] if bounds else len(text)
    fs, fe = _trim(text, 0, first)
    if fe > fs:
        passages.append(Passage("front", "section/front", fs, fe, "front matter"))
    section: Passage | None = None
    ordinal = 0
    for idx, (off, kind, payload) in enumerate(bounds):
        s, e = _trim(text, off, bounds[idx + 1][0] if idx + 1 < len(bounds) else len(text))
        if kind == "section":
            ordinal += 1
            heading = str(payload)
            nxt = next((b[0] for b in bounds[idx + 1 :] if b[1] == "section"), len(text))
            s, e = _trim(text, off, nxt)
            section = Passage(
                "section",
                f"section/{ordinal}",
                s,
                e,
                _section_locator(None, heading),
                number=ordinal,
                heading=heading,
            )
            passages.append(section)
        else:
            n = int(payload)  # type: ignore[call-overload]
            passages.append(
                Passage("para", f"para/{n}", s, e, f"para. {n}", number=n, section=section)
            )
    return passages


def _note_label(first_line: str) -> str | None:
    for pattern in (_NOTE_BRACKET, _NOTE_ARROW, _NOTE_SUPERSCRIPT):
        m = pattern.match(first_line)
        if m:
            return m.group(1).translate(SUPERSCRIPT_DIGITS).lower()
    return None


def _heading(first_line: str, single: bool, headings: set[str]) -> tuple[str | None, str] | None:
    """(number or None, heading) when a block is a section heading."""
    if not single:
        return None
    if _norm(first_line) in headings:
        return None, _norm(first_line)
    m = _MARKDOWN_HEADING.match(first_line)
    if m:
        return None, m.group(2)
    m = _NUMBERED_HEADING.match(first_line)
    if m and not _TOC_LINE.search(first_line) and len(first_line) < 150:
        return m.group(1), m.group(2).strip()
    return None


def _blocks(text: str) -> list[tuple[int, int, list[str]]]:
    """Blank-line separated blocks: (start, end, lines)."""
    out: list[tuple[int, int, list[str]]] = []
    cur: list[tuple[int, str]] = []
    for off, line in [*_lines(text), (len(text) + 1, "")]:
        if line.strip():
            cur.append((off, line))
        elif cur:
            s, e = _trim(text, cur[0][0], cur[-1][0] + len(cur[-1][1]))
            out.append((s, e, [ln for _, ln in cur]))
            cur = []
    return out


def segment_blocks(text: str, headings: Iterable[str] = ()) -> list[Passage]:
    """Blank-line blocks are paragraphs; numbered/markdown/listed headings start sections."""
    wanted = {_norm(h) for h in headings}
    blocks = _blocks(text)
    passages: list[Passage] = []
    sections: list[tuple[int, Passage, int]] = []  # (block index, section, depth)
    section: Passage | None = None
    in_section = 0
    para_count = 0
    ordinal = 0
    seen_notes: set[str] = set()
    for bi, (s, e, lines) in enumerate(blocks):
        head = _heading(lines[0], len(lines) == 1, wanted)
        if head:
            number, heading = head
            ordinal += 1
            depth = number.count(".") + 1 if number else 1
            key = f"section/{number}" if number else f"section/{ordinal}"
            if any(p.key == key for p in passages):
                key = f"section/{ordinal}"
            section = Passage(
                "section",
                key,
                s,
                e,
                _section_locator(number, heading),
                number=ordinal,
                heading=heading,
                section_number=number,
            )
            passages.append(section)
            sections.append((bi, section, depth))
            in_section = 0
            continue
        label = _note_label(lines[0])
        if label is not None:
            while label in seen_notes:
                label += "'"
            seen_notes.add(label)
            passages.append(
                Passage(
                    "note", f"note/{label}", s, e, f"note {label}", label=label, section=section
                )
            )
            continue
        para_count += 1
        in_section += 1
        where = f"{section.locator}, para. {in_section}" if section else f"para. {para_count}"
        passages.append(
            Passage("para", f"para/{para_count}", s, e, where, number=para_count, section=section)
        )
    _close_sections(text, sections, blocks)
    return passages


def _close_sections(text: str, sections: list[tuple[int, Passage, int]], blocks: list) -> None:
    """A section runs to the next heading of the same or a higher level."""
    for idx, (_, sec, depth) in enumerate(sections):
        end = len(text)
        for _, later, later_depth in sections[idx + 1 :]:
            if later_depth <= depth or sec.section_number is None or later.section_number is None:
                end = later.start
                break
        sec.end = _trim(text, sec.start, end)[1]
