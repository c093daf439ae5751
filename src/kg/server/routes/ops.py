"""Operations: health for load balancers, Prometheus metrics for monitoring."""

from __future__ import annotations

import asyncio

import pyoxigraph as ox
from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from kg.errors import KgError
from kg.server.metrics import REGISTRY
from kg.server.state import AppState, StateDep

router = APIRouter()

HEALTH_TIMEOUT = 5.0


def _probe(state: AppState) -> bool:
    """A trivial read of the store (embedded or remote), in a worker thread."""
    return state.store.health()


@router.api_route("/healthz", methods=["GET", "HEAD"], include_in_schema=False)
async def healthz(state: StateDep) -> JSONResponse:
    """200 when the store answers a trivial read within a few seconds, 503 otherwise."""
    try:
        has_data = await asyncio.wait_for(run_in_threadpool(_probe, state), HEALTH_TIMEOUT)
    except (TimeoutError, OSError, RuntimeError, ValueError, AttributeError, KgError) as exc:
        return JSONResponse({"status": "unavailable", "error": type(exc).__name__},
                            status_code=503, headers={"Cache-Control": "no-store"})
    return JSONResponse(
        {"status": "ok", "version": state.store.version, "empty": not has_data,
         "backend": state.store.kind,
         "pyoxigraph": ox.__version__},
        headers={"Cache-Control": "no-store"},
    )


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    """Prometheus text exposition of kg's registry (requests, latencies, queries, updates)."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST,
                    headers={"Cache-Control": "no-store"})
