"""The workbench's server side over HTTP: pages, JSON feeds for the editor, static assets."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from kg import paths
from kg.server.routes.workbench import competency_queries, read_query
from tests.server_process import BASE_IRI, ServerProcess
from tests.workbench_support import serve_workbench


@pytest.fixture(scope="module")
def wb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from serve_workbench(tmp_path_factory)


def test_every_competency_query_has_a_question() -> None:
    queries = competency_queries()
    assert len(queries) == len(list(paths.QUERIES_DIR.glob("*.rq"))) > 0
    for q in queries:
        assert q.question and q.question != q.name.replace("-", " "), q.name


def test_question_line_is_parsed(tmp_path) -> None:
    f = tmp_path / "x.rq"
    f.write_text("# Question: Who <signs>?\nSELECT * {}\n")
    assert read_query(f).question == "Who <signs>?"


def test_workbench_page_lists_questions_escaped(wb: ServerProcess) -> None:
    r = httpx.get(wb.url + "/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert 'data-name="timeline"' in r.text
    assert "/static/vendor/yasgui/yasgui.min.js" in r.text
    # Query text sits in an attribute: quotes and angle brackets are escaped there.
    assert "PREFIX kg: &lt;ontology#&gt;" in r.text


def test_prefixes_feed(wb: ServerProcess) -> None:
    prefixes = httpx.get(wb.url + "/workbench/prefixes.json").json()
    assert prefixes["kg"] == BASE_IRI + "ontology#"
    assert prefixes["id"] == BASE_IRI + "id/"
    assert prefixes["rdfs"] == "http://www.w3.org/2000/01/rdf-schema#"


def test_terms_feed_comes_from_the_ontology(wb: ServerProcess) -> None:
    terms = httpx.get(wb.url + "/workbench/terms.json").json()
    assert BASE_IRI + "ontology#Agreement" in terms["classes"]
    assert BASE_IRI + "ontology#party" in terms["properties"]
    assert "http://www.w3.org/2000/01/rdf-schema#label" in terms["properties"]


def test_queries_feed(wb: ServerProcess) -> None:
    feed = httpx.get(wb.url + "/workbench/queries.json").json()
    by_name = {q["name"]: q for q in feed}
    assert by_name["timeline"]["query"].startswith("# Question:")
    assert "timeline" in by_name["timeline"]["question"]


@pytest.mark.parametrize("view", ["timeline", "network", "matrix"])
def test_view_pages_show_their_query(wb: ServerProcess, view: str) -> None:
    r = httpx.get(f"{wb.url}/views/{view}")
    assert r.status_code == 200
    assert "Open this query in the workbench" in r.text
    assert "PREFIX kg: &lt;ontology#&gt;" in r.text  # the .rq text, escaped


def test_unknown_view_is_a_404(wb: ServerProcess) -> None:
    r = httpx.get(wb.url + "/views/nope")
    assert r.status_code == 404
    assert "timeline" in r.json()["detail"]


@pytest.mark.parametrize("asset", [
    "vendor/yasgui/yasgui.min.js", "vendor/yasgui/yasgui.min.css", "vendor/chartjs/chart.umd.js",
    "vendor/vis/vis-network.min.js", "vendor/vis/vis-timeline-graph2d.min.js",
    "app/workbench.js", "app/results.js", "app/views.js", "app/workbench.css",
])
def test_assets_are_served_locally(wb: ServerProcess, asset: str) -> None:
    r = httpx.get(f"{wb.url}/static/{asset}")
    assert r.status_code == 200 and len(r.content) > 100


def test_app_code_never_writes_html_from_data() -> None:
    """Our JS builds DOM with textContent; innerHTML/outerHTML/insertAdjacentHTML are banned."""
    app_dir = paths.ROOT / "src" / "kg" / "server" / "static" / "app"
    scripts = sorted(app_dir.glob("*.js"))
    assert scripts, f"no scripts in {app_dir}"
    for js in scripts:
        text = js.read_text()
        for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"):
            assert banned not in text, f"{js.name} uses {banned}"
