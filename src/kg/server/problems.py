"""Every error leaves the service as one problem shape (RFC 9457), or plain text on request."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, PlainTextResponse, Response

from kg.errors import KgError

log = logging.getLogger("kg.server")

PROBLEM_JSON = "application/problem+json"


def _wants_text(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/plain" in accept and "json" not in accept


def problem_response(
    request: Request, status: int, title: str, detail: str, **extra: object
) -> Response:
    """Render a problem as JSON, or as text when the client prefers text/plain."""
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="kg", Basic realm="kg"'
    retry_after = extra.get("retry_after")
    if isinstance(retry_after, int | float) and status in (429, 503):
        headers["Retry-After"] = str(max(1, round(retry_after)))
    if _wants_text(request):
        return PlainTextResponse(f"{title}: {detail}\n", status_code=status, headers=headers)
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def install(app: FastAPI) -> None:
    """Map the error tree, framework errors and real bugs in one place."""

    @app.exception_handler(KgError)
    async def _kg_error(request: Request, exc: KgError) -> Response:
        if exc.status >= 500:
            log.warning("%s: %s", exc.title, exc.detail)
        return problem_response(request, exc.status, exc.title, exc.detail, **exc.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return problem_response(
            request, exc.status_code, _reason(exc.status_code), str(exc.detail or "")
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        return problem_response(request, 400, "Invalid request parameter", str(exc.errors()))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(request, 500, "Internal error", "An unexpected error occurred.")


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
