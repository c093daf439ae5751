"""Request-size limiting as a pure ASGI middleware: 413 before a large body is read.

Why middleware: every route that reads a body (SPARQL query/update, Graph Store uploads) needs
the same cap, and it must hold for chunked bodies without Content-Length, so the body is counted
as it streams in. A declared Content-Length over the cap is refused before any body is read.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kg.errors import PayloadTooLarge


class _TooLarge(PayloadTooLarge):
    """Raised from receive(): a route reading the body gets the usual 413 problem."""


class RequestSizeLimit:
    """Answer 413 (problem+json) when a request body exceeds `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, send, declared)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge(
                        f"The request body exceeds the limit of {self.max_bytes} bytes "
                        "(KG_MAX_REQUEST_BYTES).",
                        max_bytes=self.max_bytes,
                    )
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if started:
                raise
            await self._refuse(scope, send, received)

    async def _refuse(self, scope: Scope, send: Send, size: int) -> None:
        detail = (
            f"The request body ({size} bytes or more) exceeds the limit of {self.max_bytes} "
            "bytes (KG_MAX_REQUEST_BYTES)."
        )
        accept = dict(scope.get("headers") or []).get(b"accept", b"").decode("latin-1")
        if "text/plain" in accept and "json" not in accept:
            body, media = f"Request too large: {detail}\n".encode(), b"text/plain; charset=utf-8"
        else:
            problem = {"type": "about:blank", "title": "Request too large", "status": 413,
                       "detail": detail, "max_bytes": self.max_bytes}
            body, media = json.dumps(problem).encode(), b"application/problem+json"
        await send({
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", media),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        })
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or []:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
