"""The build end to end on a small corpus: failing checks name their entry; store swap; dumps."""

from __future__ import annotations

import json
from pathlib import Path

import pyoxigraph as ox
import pytest

from kg.build import build, check
from kg.build.writer import stores_dir
from kg.errors import BuildError
from tests.build_fixtures import BASE, edit, make_layout, make_settings

KG = BASE + "ontology#"


@pytest.fixture
def layout(tmp_path: Path):
    return make_layout(tmp_path / "home")


@pytest.fixture
def settings(tmp_path: Path):
    return make_settings(tmp_path / "home")


def _fails(settings, layout, *needles: str) -> str:
    with pytest.raises(BuildError) as info:
        check(settings, layout)
    message = info.value.detail
    for needle in needles:
        assert needle in message, message
    return message


def _ask(settings, query: str) -> bool:
    store = ox.Store.read_only(str(settings.store_path.resolve()))
    return bool(store.query(query))


def test_valid_corpus_checks(settings, layout):
    report = check(settings, layout)
    assert report.documents == 2
    assert report.entities == 4
    assert report.claims >= 10
    assert report.classes["State"] == 1
    assert not settings.store_path.exists()  # validate writes nothing


def test_quote_not_found_names_file_entity_and_fact(settings, layout):
    edit(layout, "alpha.yaml", 'quote: "on 17 July 2018"', 'quote: "on 18 July 2018"')
    _fails(
        settings,
        layout,
        "data/extraction/alpha.yaml",
        "entity agreement/spa",
        "fact 2",
        "quote not found",
        "on 18 July 2018",
    )


def test_quote_outside_its_locator(settings, layout):
    edit(layout, "alpha.yaml", "at: para 3", "at: para 1")
    _fails(settings, layout, "entity programme/crimario", "not inside its locator 'para 1'")


def test_unknown_entity_reference(settings, layout):
    edit(layout, "alpha.yaml", "o: state/japan", "o: state/atlantis")
    _fails(settings, layout, "entity agreement/spa", "fact 1", "unknown object id 'state/atlantis'")


def test_unknown_class_and_property(settings, layout):
    edit(layout, "alpha.yaml", "type: State", "type: Nation")
    edit(layout, "alpha.yaml", "p: fundedBy", "p: financedBy")
    message = _fails(settings, layout, "unknown class 'Nation'", "unknown property 'financedBy'")
    assert "2 problem(s)" in message  # all problems are collected before failing


def test_malformed_yaml(settings, layout):
    (layout.extraction_dir / "broken.yaml").write_text("document: alpha.txt\nentities: [\n")
    _fails(settings, layout, "data/extraction/broken.yaml", "malformed YAML")


def test_non_date_date(settings, layout):
    edit(layout, "alpha.yaml", "v: 2018-07-17", "v: 17 July 2018")
    _fails(settings, layout, "entity agreement/spa", "fact 2", "is not a date")
    edit(layout, "alpha.yaml", "v: 17 July 2018", "v: 2018-02-30")
    _fails(settings, layout, "is not a date")


def test_label_conflict_between_files(settings, layout):
    (layout.extraction_dir / "beta.yaml").write_text(
        "document: beta.txt\nentities:\n  - id: agreement/spa\n    type: BindingAgreement\n"
        "    label: The SPA\n    quote: The SPA is\n"
    )
    _fails(settings, layout, "beta.yaml: entity agreement/spa", "conflicts with")


def test_checksum_mismatch_names_file(settings, layout):
    text = layout.documents_file.read_text()
    layout.documents_file.write_text(
        text.replace("segmentation: blocks", "segmentation: blocks\n    sha256: " + "0" * 64)
    )
    _fails(settings, layout, "alpha.txt: sha256 mismatch")


def test_shape_violation(settings, layout):
    edit(layout, "alpha.yaml", "o: state/japan", "o: programme/crimario")
    _fails(settings, layout, "SHACL violation", "agreement/spa", "party must be an actor")


def test_build_writes_store_dumps_and_manifest(settings, layout):
    report = build(settings, layout)
    assert settings.store_path.is_symlink()
    assert report.store_dir == settings.store_path.resolve()
    for name in ("kg.trig", "kg.nq", "kg.ttl", "manifest.json"):
        assert (settings.dumps_dir / name).stat().st_size > 0
    manifest = json.loads((settings.dumps_dir / "manifest.json").read_text())
    assert manifest["graphs"][BASE + "graph/doc/alpha"] > 0
    assert manifest["classes"]["Programme"] == 1
    assert manifest["built_at"]
    # claims, selectors and the statement itself are in the document's graph
    assert _ask(
        settings,
        f"""ASK {{ GRAPH <{BASE}graph/doc/alpha> {{
        <{BASE}id/agreement/spa> <{KG}signedOn>
            "2018-07-17"^^<http://www.w3.org/2001/XMLSchema#date> .
        ?c a <{KG}Claim> ; <{KG}about> <{BASE}id/agreement/spa> ; <{KG}quote> "on 17 July 2018" ;
           <{KG}locator> "section 1, para. 1" ; <http://www.w3.org/ns/oa#hasTarget> ?t .
        ?t <http://www.w3.org/ns/oa#hasSelector> ?s .
        ?s <http://www.w3.org/ns/oa#prefix> ?pre }} }}""",
    )
    # gYear from an unquoted YAML integer
    assert _ask(
        settings,
        f"""ASK {{ <{BASE}id/agreement/spa> <{KG}enteredIntoForceOn>
        "2025"^^<http://www.w3.org/2001/XMLSchema#gYear> }}""",
    )
    # an alt label found only in another document is evidenced in that document's graph
    assert _ask(
        settings,
        f"""ASK {{ GRAPH <{BASE}graph/doc/beta> {{ <{BASE}id/agreement/spa>
        <http://www.w3.org/2004/02/skos/core#altLabel> "SPA"@en }} }}""",
    )
    # inference: superclasses (also external) and inverses, in graph/inferred only
    assert _ask(
        settings,
        f"""ASK {{ GRAPH <{BASE}graph/inferred> {{
        <{BASE}id/state/japan> a <http://www.w3.org/ns/org#Organization>,
            <http://www.w3.org/ns/prov#Agent> ;
            <{KG}partyTo> <{BASE}id/agreement/spa> }} }}""",
    )
    assert not _ask(
        settings,
        f"""ASK {{ GRAPH <{BASE}graph/doc/alpha> {{
        <{BASE}id/state/japan> a <http://www.w3.org/ns/org#Organization> }} }}""",
    )
    # mentions, longest match first: "European Union" is one mention, not "EU" inside something
    assert _ask(
        settings,
        f"""ASK {{ GRAPH <{BASE}graph/mentions> {{
        ?m <{KG}mentionOf> <{BASE}id/programme/crimario> ; <{KG}matchedText> "CRIMARIO" ;
           <{KG}passage> <{BASE}id/doc/alpha/para/3> }} }}""",
    )
    assert _ask(
        settings,
        f"""ASK {{ ?m <{KG}mentionOf> <{BASE}id/org/eu> ;
        <{KG}passage> <{BASE}id/doc/alpha/note/i> ; <{KG}matchedText> "European Union" }}""",
    )


def test_failed_build_keeps_previous_store(settings, layout):
    build(settings, layout)
    before = settings.store_path.resolve()
    edit(layout, "alpha.yaml", "o: state/japan", "o: state/atlantis")
    with pytest.raises(BuildError):
        build(settings, layout)
    assert settings.store_path.resolve() == before
    assert _ask(settings, f"ASK {{ <{BASE}id/state/japan> a ?c }}")


def test_builds_are_idempotent_and_old_stores_pruned(settings, layout):
    build(settings, layout)
    first = (settings.dumps_dir / "kg.nq").read_bytes()
    for _ in range(3):
        build(settings, layout)
    assert (settings.dumps_dir / "kg.nq").read_bytes() == first
    stores = [p for p in stores_dir(settings.store_path).iterdir() if p.name[0].isdigit()]
    assert len(stores) == 3  # the live one and two old ones
