"""The parent's end of a worker pipe, read and written on the event loop (no thread hop).

Why: `Connection.recv` blocks, so the executor used to wait for readability and then hand the
read to a thread; that hop (plus the GIL hand-over) cost more than a small query itself. Here the
socket is an asyncio stream; frames are those of `multiprocessing.connection.Connection`
(a 4-byte big-endian length, or -1 and an 8-byte length, then a pickle), so the worker keeps its
plain blocking `Connection`.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import socket
import struct
from typing import Any

_INT = struct.Struct("!i")
_LONG = struct.Struct("!Q")
READ_LIMIT = 1 << 20


class Channel:
    """Pickled messages over one end of a socketpair."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock: socket.socket | None = sock
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> asyncio.StreamReader:
        if self._reader is None:
            if self._sock is None:
                raise EOFError("the channel is closed")
            self._reader, self._writer = await asyncio.open_unix_connection(
                sock=self._sock, limit=READ_LIMIT
            )
            self._sock = None
        return self._reader

    async def recv(self) -> Any:
        """The next message; EOFError if the worker went away (asyncio.IncompleteReadError)."""
        reader = await self._open()
        try:
            (size,) = _INT.unpack(await reader.readexactly(4))
            if size == -1:
                (size,) = _LONG.unpack(await reader.readexactly(8))
            payload = await reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise EOFError(str(exc)) from exc
        return pickle.loads(payload)

    async def send(self, message: Any) -> None:
        await self._open()
        assert self._writer is not None
        payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        size = len(payload)
        header = _INT.pack(size) if size <= 0x7FFFFFFF else _INT.pack(-1) + _LONG.pack(size)
        self._writer.write(header + payload)
        if self._writer.transport.get_write_buffer_size() > READ_LIMIT:
            await self._writer.drain()

    def send_nowait(self, message: Any) -> None:
        """Best effort, for the polite stop message (never waits)."""
        if self._writer is None:
            return
        payload = pickle.dumps(message)
        self._writer.write(_INT.pack(len(payload)) + payload)

    def close(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
        if self._sock is not None:
            with contextlib.suppress(Exception):
                self._sock.close()
            self._sock = None
