"""SPARQL 1.1 Update over the protocol. S1's POST /sparql parses the request (form `update=` or
direct `application/sparql-update`, size limit, charset) and calls `handle_update`.

Success is 204 No Content (any 2xx satisfies rdflib's SPARQLUpdateStore and SPARQLWrapper).
Refusals: 403 writes disabled, 401 missing or wrong credential, 400 syntax (with position) or
a dataset conflict, 403 LOAD/SERVICE not allow-listed, 422 SHACL violation (nothing changed).
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import Response

from kg.errors import ClientError, KgError
from kg.server.auth import check_write_access
from kg.server.state import AppState
from kg.store import writes

_OUTCOMES: dict[int, str] = {400: "invalid", 401: "unauthorized", 403: "forbidden",
                             422: "shape_violation"}


async def handle_update(
    request: Request,
    state: AppState,
    update_text: str,
    using_graph_uris: Sequence[str] = (),
    using_named_graph_uris: Sequence[str] = (),
) -> Response:
    """Authorise, then run the update as one SHACL-checked transaction."""
    try:
        check_write_access(request, state.settings)
        if not update_text.strip():
            raise ClientError("The update is empty.")
        await writes.run_update(state, update_text, using_graph_uris, using_named_graph_uris)
    except KgError as exc:
        _count(_OUTCOMES.get(exc.status, "error"))
        raise
    _count("committed")
    return Response(status_code=204)


def _count(outcome: str) -> None:
    """S3's metrics counter, when present."""
    try:
        from kg.server.metrics import UPDATES
    except ImportError:
        return
    UPDATES.labels(outcome=outcome).inc()
