"""Writes from the clients people use, against a live server: rdflib's SPARQLUpdateStore (HTTP
Basic, the only credential it can send) and SPARQLWrapper (POST `update=` forms)."""

from __future__ import annotations

import urllib.error
import uuid

import pytest
from rdflib import Graph, Literal, URIRef
from rdflib.plugins.stores.sparqlstore import SPARQLUpdateStore
from SPARQLWrapper import POST, URLENCODED, SPARQLWrapper
from SPARQLWrapper.SPARQLExceptions import Unauthorized

from tests.conftest import WRITE_TOKEN
from tests.server_process import ServerProcess

S, P = URIRef("http://example.org/client/s"), URIRef("http://example.org/client/p")


def update_store(url: str, auth: tuple[str, str] | None) -> SPARQLUpdateStore:
    return SPARQLUpdateStore(query_endpoint=f"{url}/sparql", update_endpoint=f"{url}/sparql",
                             auth=auth)


def test_rdflib_update_store_inserts_and_deletes(writable_server: ServerProcess) -> None:
    store = update_store(writable_server.url, ("rdflib", WRITE_TOKEN))
    name = URIRef(f"http://example.org/client/{uuid.uuid4().hex}")
    graph = Graph(store, identifier=name)
    graph.add((S, P, Literal("one")))
    graph.add((S, P, Literal("two", lang="en")))
    assert set(graph.objects(S, P)) == {Literal("one"), Literal("two", lang="en")}
    graph.remove((S, P, Literal("one")))
    assert set(graph.objects(S, P)) == {Literal("two", lang="en")}
    store.update(f"CLEAR GRAPH <{name}>")
    assert len(graph) == 0
    store.close()


def test_rdflib_update_store_is_refused_without_credential(
    writable_server: ServerProcess,
) -> None:
    name = URIRef(f"http://example.org/client/{uuid.uuid4().hex}")
    graph = Graph(update_store(writable_server.url, None), identifier=name)
    with pytest.raises(urllib.error.HTTPError) as err:
        graph.add((S, P, Literal("nope")))
    assert err.value.code == 401
    wrong = Graph(update_store(writable_server.url, ("rdflib", "wrong")), identifier=name)
    with pytest.raises(urllib.error.HTTPError) as err:
        wrong.add((S, P, Literal("nope")))
    assert err.value.code == 401
    reader = Graph(update_store(writable_server.url, ("rdflib", WRITE_TOKEN)), identifier=name)
    assert len(reader) == 0


def wrapper(url: str) -> SPARQLWrapper:
    sparql = SPARQLWrapper(f"{url}/sparql")
    sparql.setMethod(POST)
    sparql.setRequestMethod(URLENCODED)  # sends `update=` as a form
    return sparql


def ask(url: str, text: str) -> bool:
    sparql = SPARQLWrapper(f"{url}/sparql")
    sparql.setQuery(text)
    sparql.setReturnFormat("json")
    return sparql.queryAndConvert()["boolean"]


def test_sparqlwrapper_update_with_basic_and_bearer(writable_server: ServerProcess) -> None:
    name = f"http://example.org/client/{uuid.uuid4().hex}"
    sparql = wrapper(writable_server.url)
    sparql.setCredentials("wrapper", WRITE_TOKEN)
    sparql.setQuery(f'INSERT DATA {{ GRAPH <{name}> {{ <{S}> <{P}> "basic" }} }}')
    assert 200 <= sparql.query().response.status < 300
    bearer = wrapper(writable_server.url)
    bearer.addCustomHttpHeader("Authorization", f"Bearer {WRITE_TOKEN}")
    bearer.setQuery(f'INSERT DATA {{ GRAPH <{name}> {{ <{S}> <{P}> "bearer" }} }}')
    bearer.query()
    assert ask(writable_server.url, f'ASK {{ GRAPH <{name}> {{ ?s ?p "basic", "bearer" }} }}')


def test_sparqlwrapper_update_without_credential_is_unauthorized(
    writable_server: ServerProcess,
) -> None:
    name = f"http://example.org/client/{uuid.uuid4().hex}"
    sparql = wrapper(writable_server.url)
    sparql.setQuery(f'INSERT DATA {{ GRAPH <{name}> {{ <{S}> <{P}> "x" }} }}')
    with pytest.raises(Unauthorized):
        sparql.query()
    assert not ask(writable_server.url, f"ASK {{ GRAPH <{name}> {{ ?s ?p ?o }} }}")
