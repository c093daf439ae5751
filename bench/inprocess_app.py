"""Baseline for the isolation cost: a plain FastAPI route calling pyoxigraph in-process.

No guard, no worker processes, no timeout, no cache: the query runs and its results are
serialized in the one thread that handles the request (results iterators are thread-bound).
Started by bench.servers as `uvicorn --factory bench.inprocess_app:create_app`, store from
BENCH_STORE_PATH (opened read-only), base IRI from BENCH_BASE_IRI.
"""

from __future__ import annotations

import os

import pyoxigraph as ox
from fastapi import FastAPI, Request, Response

FORMATS = {
    "application/sparql-results+json": ox.QueryResultsFormat.JSON,
    "text/turtle": ox.RdfFormat.TURTLE,
}


def create_app() -> FastAPI:
    store = ox.Store.read_only(os.environ["BENCH_STORE_PATH"])
    base = os.environ.get("BENCH_BASE_IRI", "http://localhost:8000/")
    app = FastAPI()

    @app.get("/sparql")
    def sparql(request: Request, query: str) -> Response:
        results = store.query(query, base_iri=base)
        if isinstance(results, ox.QueryTriples):
            body = results.serialize(format=ox.RdfFormat.TURTLE)
            return Response(body, media_type="text/turtle")
        body = results.serialize(format=ox.QueryResultsFormat.JSON)
        return Response(body, media_type="application/sparql-results+json")

    return app
