"""The build's fast paths give exactly what the plain ones give.

SHACL runs on shapes with targets moved onto property shapes, word-bounded quotes use a
pattern that opens with a literal, stores and dumps load serialized runs of quads, and the
store is written while SHACL validates: each is checked against the straightforward way.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pyoxigraph as ox
import pytest

from kg import paths
from kg.build import build, validate, writer
from kg.build.infer import infer
from kg.build.ontology import Ontology, parse_turtle
from kg.build.quotes import quote_pattern
from kg.build.terms import Iris
from kg.errors import BuildError
from tests.build_fixtures import BASE, edit, make_layout, make_settings

FIXTURES = Path(__file__).parent / "fixtures" / "shapes"
IRIS = Iris(BASE)
ONTO = Ontology.load(IRIS, paths.project_root() / "ontology", paths.project_root() / "shapes")
SH = "http://www.w3.org/ns/shacl#"


def _data(names: list[str]) -> list[ox.Quad]:
    data = [q for n in names for q in parse_turtle(FIXTURES / n, BASE, IRIS.graph("doc/test"))]
    return validate.relevant(data + infer(data + ONTO.ontology, IRIS))


def _both(data: list[ox.Quad], shapes: list[ox.Quad]) -> tuple[list[str], list[str]]:
    plain = validate.violations(validate.to_graph(data), validate.to_graph(shapes))
    fast = validate.violations(
        validate.to_graph(data), validate.to_graph(validate.targeted(shapes))
    )
    return plain, fast


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.ttl")))
def test_targeted_shapes_report_the_same_violations(name: str):
    plain, fast = _both(_data([name]), ONTO.shapes)
    assert fast == plain
    assert bool(plain) == name.endswith(".fail.ttl")


def test_targeted_shapes_on_all_failing_fixtures_at_once():
    plain, fast = _both(_data(sorted(p.name for p in FIXTURES.glob("*.fail.ttl"))), ONTO.shapes)
    assert len(plain) > 10
    assert fast == plain


def test_targeted_moves_targets_in_the_real_shapes():
    moved = set(validate.targeted(ONTO.shapes)) - set(ONTO.shapes)
    assert moved
    assert all(q.predicate.value.startswith(SH + "target") for q in moved)


def _shapes(extra: str) -> list[ox.Quad]:
    text = f"""@prefix sh: <{SH}> . @prefix ex: <http://example.org/> .
    ex:S a sh:NodeShape ; sh:targetClass ex:C ; sh:property ex:P .
    ex:P sh:path ex:p ; sh:minCount 1 .
    {extra}"""
    graph = ox.NamedNode(BASE + "graph/shapes")
    parsed = ox.parse(text, format=ox.RdfFormat.TURTLE)
    return [ox.Quad(t.subject, t.predicate, t.object, graph) for t in parsed]


def test_targeted_moves_a_plain_node_shapes_targets():
    moved = {str(q) for q in validate.targeted(_shapes(""))} - {str(q) for q in _shapes("")}
    assert moved == {
        f"<http://example.org/P> <{SH}targetClass> <http://example.org/C> <{BASE}graph/shapes>"
    }


@pytest.mark.parametrize(
    "extra",
    [
        "ex:S sh:closed true .",  # closed: the allowed properties are its sh:property paths
        "ex:S sh:deactivated true .",
        "ex:Other a sh:NodeShape ; sh:node ex:S .",  # S is also used as a value shape
        "ex:S a <http://www.w3.org/2000/01/rdf-schema#Class> .",  # an implicit class target
        "ex:Other a sh:NodeShape ; sh:targetNode ex:n ; sh:property ex:P .",  # P is shared
        "ex:P sh:targetNode ex:n .",  # P has targets of its own
    ],
)
def test_targeted_keeps_shapes_it_cannot_move(extra: str):
    shapes = _shapes(extra)
    assert sorted(map(str, validate.targeted(shapes))) == sorted(map(str, shapes))


def _leading_lookbehind(quote: str, ignore_case: bool) -> re.Pattern:
    body = r"\s+".join(re.escape(p) for p in quote.split())
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE if ignore_case else 0)


def test_word_bounded_quote_pattern_finds_what_a_leading_lookbehind_finds():
    rnd = random.Random(5)
    pieces = ["a", "b", "_", " ", "\n", "é", "É", "1", "-", ".", "ab", "a b", "(", "İ"]
    for _ in range(5000):
        text = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 14)))
        quote = "".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 5)))
        if not quote.split():
            continue
        for ignore_case in (False, True):
            fast = quote_pattern(quote, True, ignore_case)
            plain = _leading_lookbehind(quote, ignore_case)
            for pos in range(len(text) + 1):
                got, want = fast.search(text, pos), plain.search(text, pos)
                assert (got and got.span()) == (want and want.span()), (quote, text, pos)


def _sample_quads() -> list[ox.Quad]:
    data = parse_turtle(FIXTURES / "ClaimShape.pass.ttl", BASE, IRIS.graph("doc/test"))
    return list(dict.fromkeys(data + ONTO.ontology + ONTO.shapes + data[:5]))


def test_batches_fill_memory_stores_like_bulk_extend():
    quads = _sample_quads()
    batches = writer.Batches(quads)
    assert any(blank for blank, _ in batches.runs) and any(not b for b, _ in batches.runs)
    plain, fast = ox.Store(), ox.Store()
    plain.bulk_extend(quads)
    batches.into_memory_store(fast)
    assert fast.dump(format=ox.RdfFormat.TRIG) == plain.dump(format=ox.RdfFormat.TRIG)
    plain_union, fast_union = ox.Store(), ox.Store()
    plain_union.bulk_extend(ox.Quad(q.subject, q.predicate, q.object) for q in quads)
    batches.into_memory_store(fast_union, union=True)
    turtle = ox.RdfFormat.TURTLE
    assert fast_union.dump(format=turtle, from_graph=ox.DefaultGraph()) == plain_union.dump(
        format=turtle, from_graph=ox.DefaultGraph()
    )
    assert batches.nquads() == writer.nquads(quads)


def test_store_holds_the_quads_and_their_merge(tmp_path: Path):
    quads = _sample_quads()
    target = writer.write_store(quads, tmp_path / "store")
    store = ox.Store.read_only(str(target))
    named = {q for q in store if not isinstance(q.graph_name, ox.DefaultGraph)}
    assert named == set(quads)
    merged = {q.triple for q in store if isinstance(q.graph_name, ox.DefaultGraph)}
    assert merged == {q.triple for q in quads}


def test_shacl_failure_discards_the_store_written_meanwhile(tmp_path: Path):
    layout, settings = make_layout(tmp_path / "home"), make_settings(tmp_path / "home")
    build(settings, layout)
    before = settings.store_path.resolve()
    stores = set(writer.stores_dir(settings.store_path).iterdir())
    dump = (settings.dumps_dir / "kg.nq").read_bytes()
    edit(layout, "alpha.yaml", "o: state/japan", "o: programme/crimario")
    with pytest.raises(BuildError, match="party must be an actor"):
        build(settings, layout)
    assert settings.store_path.resolve() == before
    assert set(writer.stores_dir(settings.store_path).iterdir()) == stores
    assert (settings.dumps_dir / "kg.nq").read_bytes() == dump
