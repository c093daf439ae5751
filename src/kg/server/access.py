"""Request metrics and structured access logs, as one pure ASGI middleware.

Pure ASGI (not BaseHTTPMiddleware) so streamed results pass through untouched; duration runs
to the last body byte. Logged: method, path without query string, route template, status,
duration and bytes, as one JSON line on the 'kg.access' logger at info. Never the query
string, bodies or headers: queries may be sensitive and credentials travel in headers.
Uvicorn's own access log prints query strings, so installing this silences it.
"""

from __future__ import annotations

import functools
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
            record(scope, state["status"], state["bytes"], time.perf_counter() - start)


def record(scope: Scope, status: int, size: int, duration: float) -> None:
    """Count, time and log one finished request (also called by kg.server.hit_lane).

    Kept cheap (a cached answer costs ~40 µs in all): metric children and JSON-encoded strings
    are memoised, the timestamp is formatted once per second.
    """
    route = _route(scope)
    method = scope.get("method", "")
    children = _children(method, route, status)
    children[0].inc()
    children[1].observe(duration)
    if log.isEnabledFor(logging.INFO):
        log.info(
            '{"ts": "%s", "method": %s, "path": %s, "route": %s, "status": %d, '
            '"duration_ms": %s, "bytes": %d}',
            _timestamp(int(time.time())), _json(method),
            _json(scope.get("path", "")[:MAX_LOGGED_PATH]), _json(route), status,
            round(duration * 1000, 2), size,
        )


@functools.lru_cache(maxsize=1024)
def _children(method: str, route: str, status: int) -> tuple[Any, Any]:
    return (metrics.REQUESTS.labels(method=method, route=route, status=str(status)),
            metrics.LATENCY.labels(route=route))


@functools.lru_cache(maxsize=4096)
def _json(text: str) -> str:
    return json.dumps(text, ensure_ascii=True)


@functools.lru_cache(maxsize=4)
def _timestamp(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
