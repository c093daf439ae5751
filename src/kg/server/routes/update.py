"""SPARQL 1.1 Update over the protocol. S1's POST /sparql parses the request (form `update=` or
direct `application/sparql-update`, size limit, charset) and calls `handle_update`.

Success is 204 No Content (any 2xx satisfies rdflib's SPARQLUpdateStore and SPARQLWrapper).
Refusals: 403 writes disabled, 401 missing or wrong credential, 400 syntax (with position) or
a dataset conflict, 403 LOAD/SERVICE not allow-listed, 422 SHACL violation (nothing changed).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from starlette.requests import Request
from starlette.responses import Response

from kg.errors import ClientError, KgError
from kg.server.auth import check_write_access
from kg.server.metrics import UPDATES
from kg.server.state import AppState
from kg.store import writes

_OUTCOMES: dict[int, str] = {
    400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    415: "unsupported_media_type", 422: "shape_violation",
}


async def handle_update(
    request: Request,
    state: AppState,
    update_text: str,
    using_graph_uris: Sequence[str] = (),
    using_named_graph_uris: Sequence[str] = (),
) -> Response:
    """Authorise, then run the update as one SHACL-checked transaction."""
    with counted_write():
        check_write_access(request, state.settings)
        if not update_text.strip():
            raise ClientError("The update is empty.")
        await writes.run_update(state, update_text, using_graph_uris, using_named_graph_uris)
    return Response(status_code=204)


@contextmanager
def counted_write() -> Iterator[None]:
    """Count a write's outcome in S3's `kg_updates` metric (Graph Store writes use it too)."""
    try:
        yield
    except KgError as exc:
        UPDATES.labels(outcome=_OUTCOMES.get(exc.status, "error")).inc()
        raise
    UPDATES.labels(outcome="committed").inc()
