"""The parent's end of a worker pipe, read and written on the event loop (no thread hop).

Why: `Connection.recv` blocks, so the executor used to wait for readability and then hand the
read to a thread; that hop (plus the GIL hand-over) cost more than a small query itself. Here the
socket is an asyncio protocol that cuts frames as bytes arrive and hands each message straight to
the one waiting receiver (no StreamReader, no per-message timeout object: a deadline is one timer
handle, measured at ~15 % of the request process's time per small query with asyncio.timeout and
StreamReader.readexactly; a query's `Deadline` serves both its wait for a worker and this one).
Frames are those of `multiprocessing.connection.Connection` (a 4-byte big-endian length, or -1
and an 8-byte length, then a pickle), so the worker keeps its plain blocking `Connection`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import pickle
import socket
import struct
from typing import Any

_INT = struct.Struct("!i")
_LONG = struct.Struct("!Q")


class Expired(Exception):
    """A deadline passed (`recv` turns it into TimeoutError)."""


class Deadline:
    """One timer for all of a job's waits (for a worker, then for its answer): whichever
    waiter is current when it fires gets `Expired`. Why: a timer made and cancelled per wait
    cost ~1.3 µs each, twice per small query under load."""

    __slots__ = ("expired", "handle", "waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop, seconds: float) -> None:
        self.waiter: asyncio.Future[Any] | None = None
        self.expired = False
        self.handle = loop.call_later(seconds, self._fire)

    def watch(self, waiter: asyncio.Future[Any]) -> None:
        """`waiter` is the current wait; if the deadline passed already (it may fire between
        two waits, when no wait is current), it fails at once."""
        self.waiter = waiter
        if self.expired and not waiter.done():
            waiter.set_exception(Expired())

    def _fire(self) -> None:
        self.expired = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(Expired())

    def cancel(self) -> None:
        self.handle.cancel()


class Channel(asyncio.Protocol):
    """Pickled messages over one end of a socketpair; one receiver at a time."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock: socket.socket | None = sock
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._messages: collections.deque[Any] = collections.deque()
        self._waiter: asyncio.Future[Any] | None = None
        self._lost: BaseException | None = None
        self._closed = False

    # asyncio.Protocol -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        end = len(buffer)
        while end - start >= 4:
            (size,) = _INT.unpack_from(buffer, start)
            head = 4
            if size == -1:
                if end - start < 12:
                    break
                (size,) = _LONG.unpack_from(buffer, start + 4)
                head = 12
            if end - start - head < size:
                break
            body = start + head
            self._deliver(pickle.loads(memoryview(buffer)[body:body + size]))
            start = body + size
        if start:
            del buffer[:start]

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc or EOFError("the worker closed its end of the pipe")
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(EOFError(str(self._lost)))

    # the executor's side ----------------------------------------------------------------------

    def _deliver(self, message: Any) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(message)
        else:
            self._messages.append(message)

    async def _open(self) -> asyncio.Transport:
        if self._transport is None:
            if self._sock is None or self._closed:
                raise EOFError("the channel is closed")
            sock, self._sock = self._sock, None
            await asyncio.get_running_loop().create_unix_connection(lambda: self, sock=sock)
        assert self._transport is not None
        return self._transport

    async def recv(self, timeout: float | None = None, deadline: Deadline | None = None) -> Any:
        """The next message; EOFError if the worker went away, TimeoutError after `timeout`
        or when `deadline` fires."""
        if self._messages:
            return self._messages.popleft()
        await self._open()
        if self._lost is not None:
            raise EOFError(str(self._lost))
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = None if timeout is None else loop.call_later(timeout, _expire, waiter)
        if deadline is not None:
            deadline.watch(waiter)
        try:
            return await waiter
        except Expired:
            raise TimeoutError from None
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    async def send(self, message: Any) -> None:
        """`post`, once the pipe is open (the first message may come before the worker's)."""
        await self._open()
        self.post(message)

    def post(self, message: Any) -> None:
        """Write a message now (the pipe is open once the worker said "ready"); EOFError when
        the worker is gone. Jobs are small: the transport buffers whatever the pipe refuses."""
        transport = self._transport
        if transport is None or self._lost is not None or transport.is_closing():
            raise EOFError(str(self._lost or "the channel is not open"))
        transport.write(frame(message))

    def send_nowait(self, message: Any) -> None:
        """Best effort, for the polite stop message (never waits)."""
        if self._transport is None:
            return
        with contextlib.suppress(Exception):
            self._transport.write(frame(message))

    def close(self) -> None:
        self._closed = True
        if self._transport is not None:
            with contextlib.suppress(Exception):
                self._transport.close()
        if self._sock is not None:
            with contextlib.suppress(Exception):
                self._sock.close()
            self._sock = None


def frame(message: Any) -> bytes:
    """A message as multiprocessing's Connection frames it (kg.sparql.worker reads these)."""
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    size = len(payload)
    header = _INT.pack(size) if size <= 0x7FFFFFFF else _INT.pack(-1) + _LONG.pack(size)
    return header + payload


def _expire(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_exception(Expired())
