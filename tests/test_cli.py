"""Each kg command, run through typer's runner against a tmp KG_HOME with the small corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kg.cli import app
from kg.config import get_settings
from tests.build_fixtures import BASE, edit, make_layout

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch):
    root = tmp_path / "home"
    layout = make_layout(root)
    monkeypatch.setenv("KG_HOME", str(root))
    monkeypatch.setenv("KG_BASE_IRI", BASE)
    monkeypatch.setenv("KG_STORE_PATH", str(root / "var" / "store"))
    monkeypatch.setenv("KG_DUMPS_DIR", str(root / "var" / "dumps"))
    get_settings.cache_clear()
    yield layout
    get_settings.cache_clear()


def _run(*args: str):
    return runner.invoke(app, list(args))


def test_build_prints_counts(home):
    result = _run("build")
    assert result.exit_code == 0, result.output
    assert "Entities per class" in result.output and "Quads per graph" in result.output
    assert "BindingAgreement" in result.output
    assert f"{BASE}graph/mentions" in result.output
    assert (home.root / "var" / "store").is_symlink()


def test_validate_writes_nothing(home):
    result = _run("validate")
    assert result.exit_code == 0, result.output
    assert "valid" in result.output
    assert not (home.root / "var" / "store").exists()


def test_bad_input_exits_nonzero_naming_file_and_entry(home):
    edit(home, "alpha.yaml", "o: state/japan", "o: state/atlantis")
    for command in ("validate", "build"):
        result = _run(command)
        assert result.exit_code == 1
        assert "alpha.yaml" in result.output and "agreement/spa" in result.output
        assert "Traceback" not in result.output


def test_query_formats(home):
    assert _run("build").exit_code == 0
    q = f"SELECT ?l WHERE {{ <{BASE}id/state/japan> rdfs:label ?l }}"
    table = _run("query", q)
    assert table.exit_code == 0 and "Japan" in table.output
    as_json = json.loads(_run("query", q, "--format", "json").output)
    assert as_json["results"]["bindings"][0]["l"]["value"] == "Japan"
    assert "Japan" in _run("query", q, "--format", "csv").output
    triple = _run("query", 'SELECT (<<( <http://e/s> <http://e/p> "a, b" )>> AS ?t) {}',
                  "--format", "csv")
    assert triple.output.splitlines() == ["t", '"http://e/s http://e/p a, b"']
    unknown = _run("query", "SELECT (<http://e/no-such-function>(1) AS ?u) (2 AS ?n) {}",
                   "--format", "csv")  # an expression error, as the service answers it
    assert unknown.exit_code == 0 and unknown.output.splitlines() == ["u,n", ",2"]
    construct = "CONSTRUCT { ?s rdfs:label ?l } WHERE { ?s a kg:State ; rdfs:label ?l }"
    ttl = _run("query", construct, "--format", "ttl")
    assert ttl.exit_code == 0 and '"Japan"@en' in ttl.output
    assert "Japan" in _run("query", construct, "--format", "jsonld").output
    ask = _run("query", "ASK { ?s a kg:Mention }")
    assert ask.output.strip() == "true"
    qfile = home.root / "q.rq"
    qfile.write_text("SELECT (COUNT(*) AS ?n) WHERE { ?c a kg:Claim }")
    assert _run("query", "--file", str(qfile), "--format", "tsv").exit_code == 0
    bad = _run("query", "SELECT WHERE {")
    assert bad.exit_code == 1 and "syntax" in bad.output.lower()


def test_stats_and_export(home, tmp_path):
    assert _run("build").exit_code == 0
    stats = _run("stats")
    assert stats.exit_code == 0 and "State" in stats.output and "graph/inferred" in stats.output
    for fmt in ("trig", "nq", "ttl"):
        out = tmp_path / f"export.{fmt}"
        result = _run("export", "--format", fmt, "--out", str(out))
        assert result.exit_code == 0, result.output
        assert out.stat().st_size > 1000


def test_query_without_store_fails_cleanly(home):
    result = _run("query", "ASK {}")
    assert result.exit_code == 1 and "kg build" in result.output


def test_serve_builds_first_then_runs_the_app_factory(home, monkeypatch):
    import uvicorn

    calls = {}
    monkeypatch.setattr(uvicorn, "run", lambda target, **kw: calls.update(target=target, **kw))
    result = _run("serve", "--port", "8123")
    assert result.exit_code == 0, result.output
    assert calls["target"] == "kg.server.app:create_app" and calls["factory"] is True
    assert calls["port"] == 8123
    assert calls["http"] == "kg.server.http_protocol:JoinedWritesProtocol"
    assert (home.root / "var" / "store").is_symlink()
