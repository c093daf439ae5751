"""The SPARQL guard: classification and SERVICE/LOAD refusal, including disguised forms."""

from __future__ import annotations

import pytest

from kg.errors import BadParameter, ForbiddenOperation
from kg.sparql.guard import analyse, check_query, check_update, decode_escapes, tokenize

ALLOWED = "http://allowed.example/sparql"

CLASSIFY = [
    ("SELECT * { ?s ?p ?o }", "query", "SELECT"),
    ("  select * { ?s ?p ?o }", "query", "SELECT"),
    ("PREFIX ex: <http://ex/> BASE <http://b/> CONSTRUCT WHERE { ?s ex:p ?o }", "query",
     "CONSTRUCT"),
    ("# INSERT in a comment\nASK {}", "query", "ASK"),
    ("DESCRIBE <http://x>", "query", "DESCRIBE"),
    ("INSERT DATA { <a> <b> <c> }", "update", "INSERT"),
    ("PREFIX : <http://x/> DELETE WHERE { ?s :p ?o }", "update", "DELETE"),
    ("WITH <http://g> DELETE { ?s ?p ?o } WHERE { ?s ?p ?o }", "update", "WITH"),
    ("CLEAR ALL", "update", "CLEAR"),
    ("DROP SILENT GRAPH <http://g>", "update", "DROP"),
    ("PREFIX : <http://x/>", "update", None),  # an empty update is valid SPARQL Update
    ("\\u0053ELECT * {}", "query", "SELECT"),
    ("garbage words here", "unknown", None),
]


@pytest.mark.parametrize(("text", "operation", "form"), CLASSIFY)
def test_classification(text: str, operation: str, form: str | None) -> None:
    result = analyse(text)
    assert (result.operation, result.form) == (operation, form)


REFUSED = [
    ("plain SERVICE", "SELECT * { SERVICE <http://127.0.0.1:9999/> { ?s ?p ?o } }"),
    ("lower case", "select * { service <http://127.0.0.1/> { ?s ?p ?o } }"),
    ("SILENT", "SELECT * { SERVICE SILENT <http://127.0.0.1/> { ?s ?p ?o } }"),
    ("variable target", "SELECT * { BIND(<http://127.0.0.1/> AS ?e) SERVICE ?e { ?s ?p ?o } }"),
    ("prefixed name", "PREFIX lo: <http://127.0.0.1:8/> SELECT * { SERVICE lo:sparql {} }"),
    ("empty prefix", "PREFIX : <http://127.0.0.1/> SELECT * { SERVICE :x { ?s ?p ?o } }"),
    ("undeclared prefix", "SELECT * { SERVICE nope:x { ?s ?p ?o } }"),
    ("escaped keyword", "SELECT * { \\u0053ERVICE <http://127.0.0.1/> { ?s ?p ?o } }"),
    ("escaped long form", "SELECT * { \\U00000053ERVICE <http://127.0.0.1/> { ?s ?p ?o } }"),
    ("escaped IRI", "SELECT * { SERVICE <\\u0068ttp://127.0.0.1/> { ?s ?p ?o } }"),
    ("relative IRI against BASE", "BASE <http://127.0.0.1/> SELECT * { SERVICE <x> { ?s ?p ?o } }"),
    ("relative IRI against the engine base", "SELECT * { SERVICE <sparql> { ?s ?p ?o } }"),
    ("allow-list prefix trick", f"SELECT * {{ SERVICE <{ALLOWED}.evil.example/> {{ ?s ?p ?o }} }}"),
    ("no space", "SELECT*{SERVICE<http://127.0.0.1/>{?s ?p ?o}}"),
    ("comment between", "SELECT * { SERVICE # hidden\n <http://127.0.0.1/> { ?s ?p ?o } }"),
    ("nested in OPTIONAL", "SELECT * { ?s ?p ?o OPTIONAL { SERVICE <http://127.0.0.1/> {} } }"),
    ("after a string with a hash", 'SELECT * { ?s ?p "#" . SERVICE <http://127.0.0.1/> {} }'),
    ("after an IRI with a hash", "SELECT * { ?s <http://x#p> ?o SERVICE <http://127.0.0.1/> {} }"),
    ("escaped quote in a string", 'SELECT * { ?s ?p "a\\"b" SERVICE <http://127.0.0.1/> {} }'),
]


@pytest.mark.parametrize(("label", "text"), REFUSED, ids=[r[0] for r in REFUSED])
def test_service_refused(label: str, text: str) -> None:
    with pytest.raises(ForbiddenOperation) as info:
        check_query(text, allow_service=[ALLOWED], base="http://localhost:8000/")
    assert "SERVICE" in info.value.detail


HARMLESS = [
    ("in a comment", "SELECT * { ?s ?p ?o } # SERVICE <http://127.0.0.1/> {}"),
    ("in a string", 'SELECT * { ?s ?p "SERVICE <http://127.0.0.1/> { }" }'),
    ("in a long string", "SELECT * { ?s ?p '''x\nSERVICE <http://127.0.0.1/> {}\n''' }"),
    ("in an IRI", "SELECT * { ?s <http://example.org/SERVICE> ?o }"),
    ("as a prefixed name", "PREFIX ex: <http://ex/> SELECT * { ?s ex:SERVICE ?o . ?s ex:LOAD ?x }"),
    ("as a variable", "SELECT ?service ?load { ?service ?p ?load }"),
    ("allow-listed", f"SELECT * {{ SERVICE <{ALLOWED}> {{ ?s ?p ?o }} }}"),
    ("allow-listed via prefix", f"PREFIX r: <{ALLOWED}/> SELECT * {{ SERVICE r:x {{ }} }}"),
    ("less-than comparison", "SELECT * { ?s ?p ?o FILTER(?o < 3 && ?o >= 1) }"),
]


@pytest.mark.parametrize(("label", "text"), HARMLESS, ids=[h[0] for h in HARMLESS])
def test_harmless_text_passes(label: str, text: str) -> None:
    assert check_query(text, allow_service=[ALLOWED]).operation == "query"


LOADS = [
    "LOAD <http://127.0.0.1:9/data.ttl>",
    "LOAD SILENT <http://127.0.0.1/x> INTO GRAPH <http://g>",
    "PREFIX h: <http://127.0.0.1/> LOAD h:x",
    "\\u004cOAD <http://127.0.0.1/x>",
    "LOAD <\\u0068ttp://127.0.0.1/x>",
    "INSERT DATA { <a> <b> <c> } ; LOAD <http://127.0.0.1/x>",
    "INSERT { ?s ?p ?o } WHERE { SERVICE <http://127.0.0.1/> { ?s ?p ?o } }",
]


@pytest.mark.parametrize("text", LOADS)
def test_load_and_service_in_updates_refused(text: str) -> None:
    with pytest.raises(ForbiddenOperation):
        check_update(text, allow_load=["http://allowed.example/"])


def test_allow_list_matches_on_a_boundary() -> None:
    with pytest.raises(ForbiddenOperation):
        check_query(
            "SELECT * { SERVICE <http://allowed.example.evil.com/> {} }",
            allow_service=["http://allowed.example"],
        )
    assert check_query(
        "SELECT * { SERVICE <http://allowed.example/q> {} }",
        allow_service=["http://allowed.example"],
    ).form == "SELECT"


def test_allow_listed_load_passes() -> None:
    assert check_update(
        "LOAD <http://allowed.example/x.ttl>", allow_load=["http://allowed.example/"]
    ).operation == "update"


def test_update_sent_as_query_is_400() -> None:
    with pytest.raises(BadParameter, match="SPARQL Update"):
        check_query("INSERT DATA { <http://a> <http://b> <http://c> }")


def test_query_sent_as_update_is_400() -> None:
    with pytest.raises(BadParameter, match="SELECT query"):
        check_update("SELECT * { ?s ?p ?o }")


def test_decode_escapes() -> None:
    assert decode_escapes("\\u0053\\U00000045x") == "SEx"
    assert decode_escapes("\\uZZZZ") == "\\uZZZZ"
    assert decode_escapes("\\uD800") == "\\uD800"  # a lone surrogate is not decoded


def test_tokenizer_never_raises_on_junk() -> None:
    kinds = [t.kind for t in tokenize("SELECT ' unterminated\n} \x00 ` ~")]
    assert kinds[0] == "word" and "string" in kinds
