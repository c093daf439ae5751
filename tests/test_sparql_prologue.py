"""kg.sparql.prologue: the prefixes a query declares, which its Turtle answer declares too.

Checked against pyoxigraph itself: for every prefix the prologue reader returns, the engine,
given the same prologue and base IRI, expands `prefix:zz` to exactly that namespace + "zz".
"""

from __future__ import annotations

import pyoxigraph as ox
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kg.sparql import guard
from kg.sparql.prologue import (
    MEMO_PROLOGUE_CHARS,
    _memo,
    declared_prefixes,
    prologue_prefixes,
)

BASE = "http://localhost:8000/"


def engine_namespace(prologue: str, name: str, base: str | None) -> str:
    """How pyoxigraph expands `name:zz` after `prologue` (with `base` as the base IRI)."""
    results = ox.Store().query(f"{prologue}\nSELECT ?v WHERE {{ BIND({name}:zz AS ?v) }}",
                               base_iri=base)
    (row,) = list(results)  # type: ignore[arg-type]
    value = row["v"].value
    assert value.endswith("zz")
    return value[:-2]


CASES = [
    ("PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>\n"
     "PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>",
     {"rdfs": "http://www.w3.org/2000/01/rdf-schema#",
      "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#"}),
    # relative namespaces resolve against KG_BASE_IRI, then against BASE (fragment kept)
    ("PREFIX kg: <ontology#> PREFIX id: <id/>",
     {"kg": BASE + "ontology#", "id": BASE + "id/"}),
    ("BASE <http://x.example/a/b>\nprefix : <ontology#> PREFIX up: <../c#> PREFIX h: <#>",
     {"": "http://x.example/a/ontology#", "up": "http://x.example/c#",
      "h": "http://x.example/a/b#"}),
    # comments, case, no space before the IRI, VERSION, a redeclared name (the last wins)
    ("# PREFIX no: <http://no.example/>\nVERSION \"1.2\"\npReFiX ex:<http://e.example/>\n"
     "PREFIX ex: <http://f.example/> PREFIX é-x.y: <urn:x:>",
     {"ex": "http://f.example/", "é-x.y": "urn:x:"}),
]


@pytest.mark.parametrize(("prologue", "expected"), CASES)
def test_the_prologue_is_read_as_the_engine_reads_it(prologue: str,
                                                     expected: dict[str, str]) -> None:
    found = declared_prefixes(prologue + "\nSELECT * WHERE { ?s ?p ?o }", BASE)
    assert found == expected
    for name, namespace in found.items():
        assert engine_namespace(prologue, name, BASE) == namespace


@pytest.mark.parametrize(("prologue", "base"), [
    ("BASE <http://a.example/b#frag> PREFIX p: <>", None),  # an empty reference: no fragment
    ("BASE <HTTP://a.example/b/c> PREFIX p: <d/>", None),  # the scheme's case is kept
    ("PREFIX p: <x>", "urn:kg:"),  # a base that is not hierarchical
    ("BASE <http://x\u2100y/> PREFIX p: <foo#>", None),  # urllib refused this host (NFKC)
    ("PREFIX p: <c#>", "http://a\uff0fb/"),
])
def test_relative_namespaces_resolve_as_the_engine_resolves_them(prologue: str,
                                                                 base: str | None) -> None:
    """Found in review: urllib's urljoin differed from the engine on these, and raised on the
    fourth (which failed the whole CONSTRUCT); pyoxigraph's own parser resolves them now."""
    found = declared_prefixes(prologue + " ASK {}", base)
    assert list(found) == ["p"]
    assert engine_namespace(prologue, "p", base) == found["p"]


def test_only_the_prologue_declares() -> None:
    query = ('PREFIX a: <http://a.example/>\nSELECT * WHERE { ?s ?p "PREFIX b: <http://b/>" }'
             "\n# PREFIX c: <http://c.example/>")
    assert declared_prefixes(query, BASE) == {"a": "http://a.example/"}
    assert declared_prefixes("SELECT * {} # PREFIX d: <http://d.example/>", BASE) == {}


def test_a_namespace_that_is_not_an_absolute_iri_is_left_out() -> None:
    assert declared_prefixes("PREFIX r: <rel#> SELECT * {}", None) == {}
    assert declared_prefixes("PREFIX s: <a b> PREFIX t: <http://t.example/> ASK {}", BASE) == {}


def test_escapes_in_a_namespace_are_decoded_as_the_engine_decodes_them() -> None:
    prologue = "PREFIX e: <http://e.example/\\u0041/> PREFIX f: <http://f.example/\\U0001F600#>"
    found = declared_prefixes(prologue + " ASK {}", BASE)
    assert found == {"e": "http://e.example/A/", "f": "http://f.example/\U0001F600#"}
    for name, namespace in found.items():
        assert engine_namespace(prologue, name, BASE) == namespace


NAMES = st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,8}", fullmatch=True)
NAMESPACES = st.from_regex(r"http://[a-z]{1,8}\.example/[a-z0-9/]{0,12}[#/]?", fullmatch=True)
GAPS = st.sampled_from([" ", "\n", "\t", "  # note\n", "\r\n"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(NAMES, NAMESPACES, GAPS), max_size=6))
def test_any_prologue_of_absolute_declarations(declarations: list[tuple[str, str, str]]) -> None:
    prologue = "".join(f"PREFIX {name}:{gap}<{iri}>{gap}" for name, iri, gap in declarations)
    expected = {name: iri for name, iri, _ in declarations}
    found = declared_prefixes(prologue + "ASK {}", BASE)
    assert found == expected
    for name in found:
        assert engine_namespace(prologue, name, BASE) == found[name]


PATHOLOGICAL = [
    "#" * 20000 + "\nSELECT * {}",
    "# " * 20000 + "SELECT * {}",
    "PREFIX " + " " * 20000 + "x",
    "PREFIX a: <" + "a" * 20000,
]


def test_long_or_unfinished_prologues_end() -> None:
    """A pattern that backtracks over the ways to split a line of '#' into comments never ends
    on the first of these (measured: a version without possessive gaps was still running after
    60 s); run in a child process so that such a regression fails instead of hanging the run."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("from kg.sparql.prologue import declared_prefixes as d\n"
            "from tests.test_sparql_prologue import PATHOLOGICAL\n"
            "assert all(d(text, None) == {} for text in PATHOLOGICAL)\n"
            "assert len(d('PREFIX p: <http://p.example/>\\n' * 2000 + 'ASK {}')) == 1\n")
    try:
        subprocess.run([sys.executable, "-c", code], check=True, timeout=60,
                       cwd=Path(__file__).resolve().parents[1])
    except subprocess.TimeoutExpired:
        pytest.fail("reading a pathological prologue did not end within 60 s")


FORMS = st.sampled_from(["CONSTRUCT WHERE { ?s ?p ?o }", "construct{?s ?p ?o}where{?s ?p ?o}",
                         "DESCRIBE <http://d.example/x>", "SELECT * {}", "ASK {}"])
EXTRAS = st.sampled_from(["", "BASE <http://b.example/base/> ", "VERSION \"1.2\" ",
                          "# CONSTRUCT PREFIX z: <http://z.example/>\n", "BASE <sub/>\n",
                          "PREFIX construct: <http://c.example/> ", "PREFIX : <rel#> "])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(EXTRAS, NAMES, NAMESPACES, GAPS), max_size=5), FORMS,
       st.sampled_from([BASE, None]))
def test_the_guards_prologue_end_keeps_every_declaration(
        parts: list[tuple[str, str, str, str]], form: str, base: str | None) -> None:
    """The request process reads the prefixes from the text before the query form that the
    guard found (kg.server.routes.sparql.prepare), not from the whole query: the same mapping
    for any prologue the guard's fast path accepts, keyword-like prefix names and comments
    included."""
    query = "".join(f"{extra}PREFIX {name}:{gap}<{iri}>{gap}"
                    for extra, name, iri, gap in parts) + form
    analysis = guard.analyse(query)
    assert analysis.prologue_end is not None  # all of these take the fast path
    assert query[analysis.prologue_end:].upper().startswith(analysis.form or "?")
    expected = declared_prefixes(query, base)
    assert declared_prefixes(query[:analysis.prologue_end], base) == expected
    assert prologue_prefixes(query[:analysis.prologue_end], base) == expected


def test_the_slow_path_leaves_the_prologue_to_the_worker() -> None:
    """A query the guard must tokenize (an escape, SERVICE or LOAD anywhere) has no prologue
    end: the worker reads the prefixes from the whole text, as before."""
    for query in ["PREFIX e: <http://e.example/\\u0041/> CONSTRUCT WHERE { ?s ?p ?o }",
                  "PREFIX s: <http://s.example/service/> CONSTRUCT WHERE { ?s ?p ?o }"]:
        assert guard.analyse(query).prologue_end is None


def test_a_long_prologue_or_large_namespaces_are_left_to_the_worker() -> None:
    """Found in review: a long BASE and many relative `<>` prefixes make namespaces that grow
    with the square of the query's length; the request process must not build (or keep) them:
    None, and the worker reads them under its time and memory limits."""
    prologue = "PREFIX p: <http://p.example/> " + "# padding\n" * 1000
    assert len(prologue) > MEMO_PROLOGUE_CHARS
    before = _memo.cache_info().currsize
    assert prologue_prefixes(prologue, BASE) is None
    assert _memo.cache_info().currsize == before  # not read, not kept
    wide = "BASE <http://b.example/" + "a" * 1000 + "/> " + "".join(
        f"PREFIX p{i}: <> " for i in range(12))
    assert len(wide) <= MEMO_PROLOGUE_CHARS
    assert len(declared_prefixes(wide, BASE)) == 12
    assert prologue_prefixes(wide, BASE) is None  # 12 namespaces of ~1 KB each
    short = "PREFIX q: <http://q.example/> "
    assert prologue_prefixes(short, BASE) is prologue_prefixes(short, BASE)  # remembered
    assert prologue_prefixes(short, BASE) == {"q": "http://q.example/"}
