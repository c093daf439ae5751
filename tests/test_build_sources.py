"""Segmentation, locators, quotes and abbreviation tables on the real source texts."""

from __future__ import annotations

import pytest

from kg import paths
from kg.build.abbreviations import table
from kg.build.quotes import context, find_quote
from kg.build.sources import load_documents


@pytest.fixture(scope="module")
def docs():
    return {d.stem[:3]: d for d in load_documents(paths.SOURCES_DIR, paths.DOCUMENTS_FILE)}


def test_numbered_paragraphs_and_headings(docs):
    d = docs["000"]
    paras = [p for p in d.passages if p.kind == "para"]
    assert [p.number for p in paras] == list(range(1, 33))
    headings = [p.heading for p in d.passages if p.kind == "section"]
    assert len(headings) == 13  # including the one heading that spans two lines
    assert d.locate("para 24").section.heading.startswith("The EU and Japan defence initiatives")
    assert d.locate('section "Cyber issues"').kind == "section"
    assert d.text[d.locate("para 7").start :].startswith("7.")


def test_blocks_sections_and_notes(docs):
    d = docs["004"]
    sec = d.locate("section 2.4")
    assert sec.heading == "Cooperation on security and defence"
    assert d.locate("section 2").contains(sec.start, sec.end)
    para = d.passage_for(sec.start + 200, sec.start + 210)
    assert para.locator.startswith("section 2.4, para.")
    assert d.locate("note 12").kind == "note"
    assert docs["001"].locate("note iv").locator == "note iv"
    assert docs["003"].locate("note 3").kind == "note"


def test_toc_lines_are_not_headings(docs):
    d = docs["004"]
    headings = [p for p in d.passages if p.kind == "section"]
    assert all("\t" not in d.text[p.start : p.start + 80].split("\n")[0] for p in headings)


def test_quotes_are_whitespace_flexible_and_exact(docs):
    d = docs["000"]
    span = find_quote(
        d.text, "The European Union (EU) and    Japan face an increasingly chal enging"
    )
    assert span is not None
    assert (
        find_quote(d.text, "The European Union (EU) and Japan face an increasingly challenging")
        is None
    )
    prefix, suffix = context(d.text, *span)
    assert len(prefix) == 32 and len(suffix) == 32


def test_abbreviation_table(docs):
    rows = {r.abbr: r.expansion for r in table(docs["004"])}
    assert rows["CRIMARIO"] == "EU's Critical Maritime Routes Indo-Pacific"
    assert rows["NATO"] == "The North Atlantic Treaty Organization"
    assert len(rows) > 50
