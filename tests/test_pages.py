"""Reading pages against live servers: entity pages grouped by kind with quotes in context,
source-document pages with linked mentions and passage anchors, ontology documentation with
SHACL constraints, grouped search, and markup in labels, quotes and texts shown as text."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import httpx
import pytest

from tests.server_process import ServerProcess, make_sample_store, start_server

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

# A source text whose quote sits next to markup: the page must show both as text.
TEXT = (
    "Pages test document\n\n"
    "1. The parties <b>agree</b> & confirm: the Partnership for Testing was signed "
    "on 3 May 2024 by Japan and the European Union.\n\n"
    "2. A second paragraph names Japan again.\n"
)
QUOTE = "the Partnership for Testing was signed on 3 May 2024"
MARKUP_LABEL = "Partnership <i>for</i> Testing"


def _trig(text: str) -> str:
    p1 = text.index("1. The parties")
    p1_end = text.index("\n\n", p1)
    p2 = text.index("2. A second")
    p2_end = len(text.rstrip("\n"))
    q = text.index(QUOTE)
    m1 = text.index("Japan", q)
    m2 = text.index("Japan", p2)
    doc, para = "<id/doc/000_pages>", "<id/doc/000_pages/para/{}>".format
    return f"""
@prefix kg: <ontology#> . @prefix rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> . @prefix dct: <http://purl.org/dc/terms/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> . @prefix prov: <http://www.w3.org/ns/prov#> .
<graph/doc/000_pages> {{
  {doc} a kg:SourceDocument ; dct:title "Pages <test> document" ; dct:date "2024-05-04"^^xsd:date ;
      kg:fileName "000_pages.txt" .
  {para(1)} a kg:Paragraph ; kg:inDocument {doc} ; kg:locator "para. 1" ;
      kg:startOffset {p1} ; kg:endOffset {p1_end} .
  {para(2)} a kg:Paragraph ; kg:inDocument {doc} ; kg:locator "para. 2" ;
      kg:startOffset {p2} ; kg:endOffset {p2_end} .
  <id/agreement/testing> a kg:NonBindingInstrument ; rdfs:label "{MARKUP_LABEL}"@en ;
      kg:party <id/state/japan> ; kg:signedOn "2024-05-03"^^xsd:date .
  <id/claim/aaaabbbbcccc> a kg:Claim ; rdf:subject <id/agreement/testing> ;
      rdf:predicate kg:party ; rdf:object <id/state/japan> ; kg:about <id/agreement/testing> ;
      kg:inDocument {doc} ; kg:passage {para(1)} ; kg:quote "{QUOTE}" ;
      kg:startOffset {q} ; kg:endOffset {q + len(QUOTE)} ; kg:locator "para. 1" ;
      prov:wasDerivedFrom {doc} .
}}
<graph/mentions> {{
  <id/mention/000_pages/{m1}-{m1 + 5}> a kg:Mention ; kg:mentionOf <id/state/japan> ;
      kg:inDocument {doc} ; kg:passage {para(1)} ; kg:matchedText "Japan" ;
      kg:startOffset {m1} ; kg:endOffset {m1 + 5} .
  <id/mention/000_pages/{m2}-{m2 + 5}> a kg:Mention ; kg:mentionOf <id/state/japan> ;
      kg:inDocument {doc} ; kg:passage {para(2)} ; kg:matchedText "Japan" ;
      kg:startOffset {m2} ; kg:endOffset {m2 + 5} .
}}
<graph/inferred> {{ <id/state/japan> kg:partyTo <id/agreement/testing> . }}
"""


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("pages")
    sources = root / "sources"
    sources.mkdir()
    (sources / "000_pages.txt").write_text(TEXT, encoding="utf-8")
    (root / "pages.trig").write_text(_trig(TEXT), encoding="utf-8")
    store = make_sample_store(root / "store", extra=[root / "pages.trig"])
    (root / "logs").mkdir()
    proc = start_server(store, root / "logs", KG_SOURCES_DIR=str(sources))
    yield proc
    proc.stop()


def _get(server: ServerProcess, path: str) -> httpx.Response:
    r = httpx.get(server.url + path, headers={"Accept": BROWSER}, timeout=60)
    assert r.status_code == 200, (path, r.status_code, r.text[:300])
    return r


def test_entity_page_groups_relations_and_shows_quote_in_context(pages: ServerProcess) -> None:
    r = _get(pages, "/page/id/agreement/testing")
    text = r.text
    for section in ("Parties and signatories", "Dates", "Mentions in the documents"):
        assert f">{section}</h2>" in text, section
    assert '<section class="group" id="parties-and-signatories">' in text
    # the quote, highlighted, inside its passage (text before and after it), escaped
    assert f'<mark class="quote">{QUOTE}</mark>' in text
    assert "1. The parties &lt;b&gt;agree&lt;/b&gt; &amp; confirm: " in text
    assert "<b>agree</b>" not in text
    # the caption: document title (escaped), its date, locator, link to the passage
    assert "Pages &lt;test&gt; document" in text and "(2024-05-04)" in text
    assert 'href="/page/id/doc/000_pages#para-1"' in text
    # markup in the label is text
    assert html.escape(MARKUP_LABEL, quote=False) in text and "<i>for</i>" not in text


def test_actor_page_shows_inverse_with_the_claims_quote(pages: ServerProcess) -> None:
    text = _get(pages, "/page/id/state/japan").text
    assert ">Agreements</h2>" in text
    assert "Partnership &lt;i&gt;for&lt;/i&gt; Testing" in text
    # Japan partyTo testing is inferred; the claim "testing party Japan" supports it
    assert f'<mark class="quote">{QUOTE}</mark>' in text
    # mentions: counted per document, each linking to its place on the document page
    assert re.search(r'href="/page/id/doc/000_pages#m-\d+-\d+"', text)
    assert "<strong>2</strong> mentions" in text


def test_document_page_links_mentions_and_marks_quotes(pages: ServerProcess) -> None:
    text = _get(pages, "/page/id/doc/000_pages").text
    assert "Pages &lt;test&gt; document" in text
    assert 'id="para-1"' in text and 'id="para-2"' in text
    assert len(re.findall(r'<a class="mention" href="/page/id/state/japan"', text)) == 2
    assert re.search(r'<span class="claim-quote" title="[^"]*party[^"]*Japan', text)
    assert "&lt;b&gt;agree&lt;/b&gt; &amp; confirm" in text and "<b>agree" not in text
    assert 'id="c-aaaabbbbcccc"' in text


def test_passage_page_redirects_to_its_anchor(pages: ServerProcess) -> None:
    r = httpx.get(pages.url + "/page/id/doc/000_pages/para/2")
    assert r.status_code == 303
    assert r.headers["location"] == "/page/id/doc/000_pages#para-2"


def test_document_without_its_source_file_still_has_a_page(pages: ServerProcess) -> None:
    text = _get(pages, "/page/id/doc/000_sample").text  # sample.trig: no file here
    assert "Sample partnership text" in text and "cannot be shown" in text


def test_document_with_a_different_checksum_shows_no_text(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    root = tmp_path_factory.mktemp("pages-sha")
    sources = root / "sources"
    sources.mkdir()
    (sources / "000_pages.txt").write_text(TEXT, encoding="utf-8")
    trig = _trig(TEXT).replace('kg:fileName "000_pages.txt"',
                               'kg:fileName "000_pages.txt" ; kg:sha256 "' + "0" * 64 + '"')
    (root / "pages.trig").write_text(trig, encoding="utf-8")
    (root / "logs").mkdir()
    proc = start_server(make_sample_store(root / "store", extra=[root / "pages.trig"]),
                        root / "logs", KG_SOURCES_DIR=str(sources))
    try:
        text = _get(proc, "/page/id/doc/000_pages").text
        assert "cannot be shown" in text and 'id="para-1"' not in text
        entity = _get(proc, "/page/id/agreement/testing").text
        assert f'<mark class="quote">{QUOTE}</mark>' in entity  # the quote alone
        assert "1. The parties" not in entity
    finally:
        proc.stop()


def test_ontology_documentation_with_shacl_constraints(server: ServerProcess) -> None:
    r = httpx.get(server.url + "/ontology", headers={"Accept": BROWSER})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "Accept" in r.headers["vary"]
    assert r.headers["content-location"] == "/page/ontology"
    text = html.unescape(r.text)
    for expected in ('id="Agreement"', 'id="party"', 'id="hierarchy"', "SHACL constraints",
                     "an agreement party must be an actor", "Properties with this domain",
                     "exactly 1", "at least 1", 'id="shape-CommitmentShape"',
                     "applies through"):
        assert expected in text, expected
    assert httpx.get(server.url + "/ontology/1.0.0", headers={"Accept": BROWSER}).status_code \
        == 200
    assert httpx.get(server.url + "/ontology/9.9.9", headers={"Accept": BROWSER}).status_code \
        == 404
    ttl = httpx.get(server.url + "/ontology", headers={"Accept": "text/turtle"})
    assert ttl.status_code == 303 and ttl.headers["location"] == "/data/ontology.ttl"


def test_search_groups_label_and_alt_label_matches(server: ServerProcess) -> None:
    text = httpx.get(server.url + "/search", params={"q": "spa"}).text
    assert 'href="/id/agreement/spa"' in text
    assert "also “SPA”" in html.unescape(text)  # matched on the alternative label
    assert re.search(r'<span class="count">\d+</span>', text)
    markup = httpx.get(server.url + "/search", params={"q": "<script>"}).text
    assert "<script>alert" not in markup and "&lt;script&gt;" in markup


def test_real_agreement_page_has_status_history_and_lifecycle(real_server: ServerProcess) -> None:
    text = _get(real_server, "/page/id/agreement/spa").text
    for expected in (">Parties and signatories</h2>", ">Status history</h2>",
                     "Lifecycle events", '<mark class="quote">'):
        assert expected in text, expected
    assert re.search(r'href="/page/id/doc/003_250a2082ed9276f3#para-11"', text)


def test_real_document_page_has_anchors_and_linked_mentions(real_server: ServerProcess) -> None:
    text = _get(real_server, "/page/id/doc/003_250a2082ed9276f3").text
    assert 'id="para-11"' in text
    assert '<a class="mention" href="/page/id/agreement/spa"' in text
    assert 'class="claim-quote"' in text
    assert "verified against the checksum" in text


def test_page_anchor_names_match_passage_iris(real_server: ServerProcess) -> None:
    """Every passage link an entity page gives lands on an id of the document page."""
    entity = _get(real_server, "/page/id/agreement/security-defence-partnership").text
    links = set(re.findall(r'href="/page/id/doc/([^"#]+)#([^"]+)"', entity))
    assert links
    pages: dict[str, str] = {}
    for stem, anchor in sorted(links)[:30]:
        page = pages.get(stem) or pages.setdefault(stem, _get(real_server,
                                                              f"/page/id/doc/{stem}").text)
        assert f'id="{anchor}"' in page, (stem, anchor)
