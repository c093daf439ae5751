"""kg.server.query_string.parse agrees with urllib's parse_qsl on every query string."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlencode

from hypothesis import given, settings
from hypothesis import strategies as st

from kg.server.query_string import parse


def reference(raw: bytes) -> list[tuple[str, str]]:
    return parse_qsl(raw.decode("latin-1"), keep_blank_values=True)


URL_BYTES = st.sampled_from(
    [b"%", b"%2", b"%2B", b"%3d", b"%E2%80%93", b"%C3", b"%zz", b"+", b"=", b"&", b"&&", b";",
     b"a", b"Z", b"0", b"?", b"/", b"<", b"{", b"_", b"\xe2\x80\x93", b" ", b"\t", b"%0A", b"~",
     b"!", b"\x7f", b"\x00", b"\x80"])


@settings(max_examples=500, deadline=None)  # no timing: xdist shares the cores
@given(st.lists(URL_BYTES, max_size=40))
def test_agrees_with_parse_qsl_on_generated_strings(parts: list[bytes]) -> None:
    raw = b"".join(parts)
    assert parse(raw) == reference(raw)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80), st.text(max_size=20))
def test_agrees_on_encoded_queries(text: str, other: str) -> None:
    for raw in (urlencode({"query": text, "default-graph-uri": other}).encode(),
                ("query=" + quote(text, safe="")).encode("ascii")):
        assert parse(raw) == reference(raw)


def test_a_sparql_query_and_its_dataset() -> None:
    text = "SELECT ?s WHERE { ?s <http://x/p> \"a+b=c%\" } LIMIT 3"
    raw = urlencode([("query", text), ("default-graph-uri", "http://x/g"), ("flag", "")]).encode()
    assert parse(raw) == [("query", text), ("default-graph-uri", "http://x/g"), ("flag", "")]
    assert parse(b"query=a+b%2Bc&x") == [("query", "a b+c"), ("x", "")]
