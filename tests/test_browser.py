"""The researcher's experience in a real browser: headless Chromium (Debian's package) driven by
Playwright against a live server. Screenshots land in test-artifacts/ for a person to look at.

Chromium missing is a failure with a clear message (scripts/install_browser.sh installs it),
not a silent skip; only an explicit KG_SKIP_BROWSER=1 skips these tests.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.server_process import ServerProcess
from tests.workbench_support import ARTIFACTS, serve_workbench

CHROMIUM = Path(os.environ.get("KG_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 15_000
QUOTE = "Strategic Partnership Agreement of'17 July 2018"  # tests/fixtures/sample.trig
pytestmark = pytest.mark.embedded_only(
    "rendering only (~50 s): the pages and feeds the browser loads are tested over every "
    "backend by test_pages.py, test_workbench_routes.py and test_linked_data.py")

if os.environ.get("KG_SKIP_BROWSER") == "1":
    pytest.skip("KG_SKIP_BROWSER=1: browser tests skipped on request", allow_module_level=True)


@pytest.fixture(scope="module")
def wb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from serve_workbench(tmp_path_factory)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: run scripts/install_browser.sh "
                    "(apt-get install chromium), set KG_CHROMIUM, or KG_SKIP_BROWSER=1 to skip")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, request: pytest.FixtureRequest) -> Iterator[object]:
    """A fresh page; uncaught script errors and CSP violations fail the test."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    pg = context.new_page()
    problems: list[str] = []
    pg.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    pg.on("console", lambda msg: problems.append(f"console: {msg.text}")
          if msg.type == "error" and "Content Security Policy" in msg.text else None)
    yield pg
    ARTIFACTS.mkdir(exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}-end.png"), full_page=True)
    context.close()
    assert not problems, problems


def shot(pg, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def run_example(pg, wb: ServerProcess, name: str) -> None:
    pg.goto(wb.url + "/")
    pg.click(f"button.example[data-name='{name}']")
    pg.wait_for_selector("#tab-table table.results tbody tr")


def test_run_example_query_and_see_rows(page, wb: ServerProcess) -> None:
    run_example(page, wb, "agreements-overview")
    rows = page.locator("#tab-table table.results tbody tr")
    assert rows.count() == 2
    table = page.inner_text("#tab-table")
    assert "EU–Japan Strategic Partnership Agreement" in table
    assert re.search(r"2 rows", page.inner_text("#status"))
    # The shareable URL now holds the query.
    assert "#query=" in page.url and "agreements" not in page.url.split("#")[0]
    shot(page, "workbench-rows")


def test_result_link_opens_entity_page_with_quote(page, wb: ServerProcess) -> None:
    run_example(page, wb, "agreements-overview")
    link = page.locator("#tab-table a.iri.local[href='/id/agreement/spa']")
    assert link.count() == 1
    link.click()
    page.wait_for_url(re.compile(r"/id/agreement/spa"))
    page.wait_for_load_state()
    body = page.inner_text("body")
    assert "EU–Japan Strategic Partnership Agreement" in body
    assert QUOTE in body
    shot(page, "entity-page")


def test_syntax_error_is_shown_in_the_editor(page, wb: ServerProcess) -> None:
    bad = "PREFIX kg: <ontology#>\nSELECT * WHERE {\n  ?s a kg:Agreement ;\n  FILTER(?s = )\n}"
    page.goto(wb.url + "/#query=" + quote(bad, safe=""))
    page.wait_for_selector(".kg-error-widget")
    assert not page.locator("#error").is_hidden()
    message = page.inner_text("#error")
    assert "line" in message and re.search(r"\d", message)
    # The marked line is one of the query's last lines, where the parser stopped.
    marked = page.locator(".CodeMirror-code > div:has(.kg-error-line), .kg-error-line").first
    assert marked.count() == 1
    line_no = page.evaluate("() => window.kgYasqe.getCursor().line + 1")
    assert 4 <= line_no <= 5
    assert page.locator("#results-area").is_hidden()
    shot(page, "workbench-syntax-error")
    # Editing clears the marker.
    page.evaluate("() => window.kgYasqe.setValue('SELECT * WHERE { ?s ?p ?o } LIMIT 1')")
    assert page.locator(".kg-error-widget").count() == 0


def test_shared_url_reopens_and_reruns(page, wb: ServerProcess) -> None:
    query = ("SELECT ?label WHERE { <id/state/japan> "
             "<http://www.w3.org/2000/01/rdf-schema#label> ?label }")
    page.goto(wb.url + "/?query=" + quote(query, safe=""))
    page.wait_for_selector("#tab-table table.results tbody tr")
    assert "Japan" in page.inner_text("#tab-table")
    assert page.evaluate("() => window.kgYasqe.getValue()") == query
    page.goto(wb.url + "/#query=" + quote("ASK { ?s ?p ?o }", safe=""))
    page.wait_for_selector(".ask-answer")
    assert page.inner_text(".ask-answer") == "true"


def test_count_result_gets_a_chart_and_downloads(page, wb: ServerProcess) -> None:
    run_example(page, wb, "actors-by-kind")
    chart_tab = page.locator("[data-tab=chart]")
    assert chart_tab.is_visible()
    chart_tab.click()
    assert page.locator("#chart").is_visible()
    assert "?actors by ?kind" in page.inner_text("#chart-note")
    shot(page, "workbench-chart")
    hrefs = {a.get_attribute("data-format"): a.get_attribute("href")
             for a in page.locator("#downloads a").all()}
    assert set(hrefs) == {"json", "xml", "csv", "tsv"}
    r = httpx.get(wb.url + hrefs["csv"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.text.splitlines()[0].strip() == "kind,actors"


def test_construct_result_offers_rdf_downloads(page, wb: ServerProcess) -> None:
    query = "CONSTRUCT { <id/agreement/spa> ?p ?o } WHERE { <id/agreement/spa> ?p ?o }"
    page.goto(wb.url + "/#query=" + quote(query, safe=""))
    page.wait_for_selector("#tab-table pre.graph")
    assert "Strategic Partnership" in page.inner_text("#tab-table")
    formats = {a.get_attribute("data-format") for a in page.locator("#downloads a").all()}
    assert {"ttl", "nt", "jsonld", "rdfxml"} <= formats
    href = page.locator("#downloads a[data-format=nt]").get_attribute("href")
    r = httpx.get(wb.url + href)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/n-triples")


def test_editor_completes_ontology_terms(page, wb: ServerProcess) -> None:
    page.goto(wb.url + "/")
    page.wait_for_selector(".CodeMirror")
    page.evaluate(
        "() => window.kgYasqe.setValue('PREFIX kg: <ontology#>\\nSELECT * WHERE { ?s a ')")
    page.evaluate("() => window.kgYasqe.setCursor({line: 1, ch: 100})")
    page.locator(".CodeMirror textarea").focus()
    page.keyboard.type("kg:Agree")
    page.keyboard.press("Control+Space")
    hints = page.wait_for_selector(".CodeMirror-hints")
    assert "kg:Agreement" in hints.inner_text()
    shot(page, "workbench-completion")


def test_timeline_view(page, wb: ServerProcess) -> None:
    page.goto(wb.url + "/views/timeline")
    page.wait_for_selector(".vis-item")
    text = page.inner_text("#view")
    assert "EU–Japan Strategic Partnership Agreement" in text
    # A label holding markup is shown as text, not run.
    assert "<script>alert('x')</script> & co" in text
    assert page.evaluate("() => document.querySelectorAll('#view script, #view b').length") == 0
    assert "timeline.rq" in page.inner_text(".view-query")
    shot(page, "view-timeline")


def test_network_view(page, wb: ServerProcess) -> None:
    page.goto(wb.url + "/views/network")
    page.wait_for_selector("#view canvas")
    page.wait_for_function("() => /nodes and/.test(document.getElementById('status').textContent)")
    assert "6 nodes and 4 links" in page.inner_text("#status")
    shot(page, "view-network")


def test_matrix_view(page, wb: ServerProcess) -> None:
    page.goto(wb.url + "/views/matrix")
    page.wait_for_selector("table.matrix")
    rows = page.locator("table.matrix tbody tr")
    assert rows.count() == 2
    assert page.locator("table.matrix thead th").all_inner_texts()[1:] == ["¶ 5", "¶ 6", "¶ 9"]
    assert "Cyber <b>security</b>" in page.inner_text("table.matrix")
    assert page.evaluate("() => document.querySelectorAll('table.matrix b').length") == 0
    assert "will strengthen" in page.inner_text("table.matrix")
    shot(page, "view-matrix")
    # The page shows its query and opens it in the workbench, where it runs.
    page.click("#open-in-workbench")
    page.wait_for_selector("#tab-table table.results tbody tr")
    assert page.locator("#tab-table table.results tbody tr").count() == 3


def test_entity_page_passage_link_opens_document_at_the_passage(
    page, real_server: ServerProcess
) -> None:
    """Entity page → a quote's passage link → the document page scrolled to that passage,
    its mentions linked to their entities."""
    page.goto(real_server.url + "/page/id/agreement/spa")
    assert page.locator("h2", has_text="Status history").count() == 1
    link = page.locator(
        "a.passage-link[href='/page/id/doc/003_250a2082ed9276f3#para-11']:visible").first
    link.scroll_into_view_if_needed()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "entity-page-quotes.png"))
    quote = link.locator("xpath=ancestor::figure[1]//mark[@class='quote']")
    assert quote.inner_text().strip()
    link.click()
    page.wait_for_url(re.compile(r"/page/id/doc/003_250a2082ed9276f3#para-11$"))
    block = page.locator(".block:has(> #para-11)")
    box = block.bounding_box()
    assert box is not None and 0 <= box["y"] < 1000  # scrolled to the passage
    assert "Strategic Partnership Agreements with the EU" in block.inner_text()
    assert block.locator("a.mention").count() >= 3
    assert block.locator(".claim-quote").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "document-passage.png"))
    block.locator("a.mention[href='/page/id/agreement/spa']").first.click()
    page.wait_for_url(re.compile(r"/page/id/agreement/spa$"))
    assert "EU–Japan Strategic Partnership Agreement" in page.inner_text("h1")
