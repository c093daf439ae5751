"""Content negotiation of the describing routes, as data (no server needed)."""

from __future__ import annotations

import pyoxigraph as ox
import pytest

from kg.errors import NotAcceptable
from kg.server.rdf_media import negotiate, serialize


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "text/turtle"),
        ("", "text/turtle"),
        ("*/*", "text/turtle"),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "html"),
        ("text/html;q=0.5, text/turtle", "text/turtle"),
        ("application/ld+json", "application/ld+json"),
        ("application/rdf+xml, application/sparql-results+xml", "application/rdf+xml"),
        ("text/turtle;q=0.5, application/n-quads;q=0.9", "application/n-quads"),
        ("application/trig", "application/trig"),
        ("text/plain", "application/n-triples"),
        ("application/x-turtle", "text/turtle"),
        ("text/*", "text/turtle"),
        # a malformed q is ignored (weight 1), as the SPARQL endpoint reads it
        ("text/turtle;q=abc, application/ld+json;q=0.1", "text/turtle"),
        ("application/sparql-results+json, */*;q=0.1", "text/turtle"),
    ],
)
def test_negotiate(accept: str | None, expected: str) -> None:
    media = negotiate(accept)
    assert (media.media_type if media else "html") == expected


def test_nothing_acceptable_is_406() -> None:
    with pytest.raises(NotAcceptable):
        negotiate("image/png")
    with pytest.raises(NotAcceptable):
        negotiate("text/html", html=False)
    with pytest.raises(NotAcceptable):
        negotiate("text/turtle;q=0")


def test_triple_formats_merge_graphs_and_prefixes_stay_readable() -> None:
    s = ox.NamedNode("http://localhost:8000/id/agreement/spa")
    p = ox.NamedNode("http://www.w3.org/2000/01/rdf-schema#label")
    o = ox.Literal("SPA")
    quads = [ox.Quad(s, p, o, ox.NamedNode(f"http://localhost:8000/graph/{g}")) for g in "ab"]
    prefixes = {"id": "http://localhost:8000/id/", "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
                "owl": "http://www.w3.org/2002/07/owl#"}
    turtle = serialize(quads, negotiate("text/turtle"), prefixes).decode()  # type: ignore[arg-type]
    assert turtle.count('"SPA"') == 1
    assert "@prefix rdfs:" in turtle and "@prefix owl:" not in turtle
    assert "id:agreement" not in turtle  # no escaped slashes in local names
    nquads = serialize(quads, negotiate("application/n-quads"), prefixes)  # type: ignore[arg-type]
    assert nquads.decode().count('"SPA"') == 2
