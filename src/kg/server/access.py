"""Request metrics and structured access logs, as one pure ASGI middleware.

Pure ASGI (not BaseHTTPMiddleware) so streamed results pass through untouched; duration runs
to the last body byte. Logged: method, path without query string, route template, status,
duration and bytes, as one JSON line on the 'kg.access' logger at info. Never the query
string, bodies or headers: queries may be sensitive and credentials travel in headers.
Uvicorn's own access log prints query strings, so installing this silences it.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kg.server import metrics

log = logging.getLogger("kg.access")
MAX_LOGGED_PATH = 512


def configure_logging(level: str) -> None:
    """Give 'kg.access' a JSON-lines handler on stderr unless the deployment configured one."""
    logging.getLogger("uvicorn.access").disabled = True
    log.setLevel(level.upper())
    if not log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.propagate = False


def _route(scope: Scope) -> str:
    """The matched route's template (bounded label set), not the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "<unmatched>"


class AccessMiddleware:
    """Counts, times and logs every HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state: dict[str, Any] = {"status": 500, "bytes": 0}

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
            elif message["type"] == "http.response.body":
                state["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            duration = time.perf_counter() - start
            route = _route(scope)
            method = scope.get("method", "")
            status = state["status"]
            metrics.REQUESTS.labels(method=method, route=route, status=str(status)).inc()
            metrics.LATENCY.labels(route=route).observe(duration)
            if log.isEnabledFor(logging.INFO):
                log.info(json.dumps({
                    "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "method": method,
                    "path": scope.get("path", "")[:MAX_LOGGED_PATH],
                    "route": route,
                    "status": status,
                    "duration_ms": round(duration * 1000, 2),
                    "bytes": state["bytes"],
                }, ensure_ascii=True))
