"""Operations: health and metrics."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import JSONResponse

from kg.server.state import StateDep

router = APIRouter()


@router.get("/healthz", include_in_schema=False)
def healthz(state: StateDep) -> JSONResponse:
    """Healthy when the store answers a trivial read."""
    quads = next(iter(state.store.raw.quads_for_pattern(None, None, None, None)), None)
    return JSONResponse({"status": "ok", "store": str(state.store.path), "empty": quads is None})
