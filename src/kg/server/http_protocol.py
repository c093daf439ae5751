"""uvicorn's httptools protocol, with a response's head and first body bytes sent in one write,
and plain GET /sparql requests handed to kg.server.protocol_lane before uvicorn builds a cycle.

Why: uvicorn writes the status line and headers as soon as `http.response.start` arrives, then
the body in a second write: two loopback sends, two wake-ups of the client, for a response that
fits in one packet. In a profile of small uncached queries the head's write alone was 17 % of
the request process's time, the body's 3 %. Here a write is held until the next one joins it,
or until the end of the current event-loop step (`call_soon`), whichever comes first, so a
streamed response's head still leaves before its first chunk is computed. Everything else is
uvicorn's own (`kg serve` passes this class as `http=`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from kg.server import protocol_lane


class _JoiningTransport:
    """A transport proxy that joins a held write with the one after it."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:
            self._held = data
            self._loop.call_soon(self.flush)
        else:
            self._held = None
            self._transport.write(held + data)

    def write_whole(self, data: bytes) -> None:
        """A complete response: sent at once (after anything held), nothing left to join."""
        held = self._held
        if held is not None:
            self._held = None
            data = held + data
        self._transport.write(data)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:  # asked several times per request: not via __getattr__
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, pause_reading...
        return getattr(self._transport, name)


class JoinedWritesProtocol(HttpToolsProtocol):
    """HttpToolsProtocol on a `_JoiningTransport`, with the protocol lane in front."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = _JoiningTransport(transport, self.loop)  # type: ignore[assignment]
        self.kg_app = None if self.root_path or self.limit_concurrency is not None else (
            protocol_lane.find_app(self.app))

    def write_whole(self, data: bytes) -> None:
        """Send a complete response in one write (kg.server.protocol_lane)."""
        self.transport.write_whole(data)  # type: ignore[attr-defined]

    def on_headers_complete(self) -> None:
        # a request the lane answered at once in this same read armed the keep-alive timer,
        # which would close the connection under the next one: a request is not idle
        self._unset_keepalive_if_required()
        app = self.kg_app
        if app is None or not protocol_lane.take(self, app):
            super().on_headers_complete()
