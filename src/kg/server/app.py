"""The app factory: assembles routers, middleware and the store's lifespan."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from kg import __version__
from kg.config import Settings, get_settings
from kg.server import hit_lane, problems
from kg.server.access import AccessMiddleware, configure_logging
from kg.server.limits import RequestSizeLimit
from kg.server.routes import describe, graph_store, linked_data, ops, sparql, workbench
from kg.server.state import AppState
from kg.store.base import open_store

STATIC_DIR = Path(__file__).parent / "static"


class KgApp(FastAPI):
    """FastAPI with a step before its middleware stack, which cost more than a small answer:
    repeated cached GET /sparql answers are replayed (kg.server.hit_lane), other plain GET
    /sparql requests go straight to the route (SparqlFastLane), counted and logged as usual."""

    sparql_hits: hit_lane.HitLane
    sparql_lane: sparql.SparqlFastLane  # plain GET /sparql, counted and logged there
    kg_state: AppState | None = None  # app.state.kg, without Starlette State's __getattr__

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if await hit_lane.dispatch(
                    self.sparql_hits, getattr(self.state, "kg", None), scope, receive, send):
                return
            if sparql.SparqlFastLane.takes(scope):
                scope["app"] = self
                await self.sparql_lane(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ASGI app; `uvicorn --factory kg.server.app:create_app` calls this."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = open_store(settings)  # remote when KG_STORE_URL is set (kg.store.base)
        executor = store.runner(settings)
        try:
            await executor.start()
        except BaseException:
            store.close()
            raise
        app.state.kg = AppState(settings=settings, store=store, executor=executor)
        if isinstance(app, KgApp):
            app.kg_state = app.state.kg  # what kg.server.protocol_lane reads per request
        # everything loaded so far lives as long as the process: out of the collector's sight,
        # so the full collections that per-request garbage triggers do not rescan it
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await executor.close()
            store.close()

    app = KgApp(
        title="kg: EU–Japan security and defence cooperation knowledge graph",
        version=__version__,
        lifespan=lifespan,
        redirect_slashes=False,
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "HEAD", "POST", "OPTIONS"],
        allow_headers=["Accept", "Content-Type", "If-None-Match"],
        expose_headers=["ETag", "Content-Location", "Link"],
    )
    app.add_middleware(RequestSizeLimit, max_bytes=settings.max_request_bytes)
    configure_logging(settings.log_level)
    app.add_middleware(AccessMiddleware)  # outermost: counts and logs every response
    app.sparql_hits = hit_lane.HitLane()
    app.sparql_lane = sparql.SparqlFastLane()
    problems.install(app)
    for module in (ops, sparql, graph_store, describe, linked_data, workbench):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
