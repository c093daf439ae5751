"""A large SELECT result sent while its worker is still writing it (README, SPARQL: streaming).

Why a followed file and not the worker pipe: the worker writes its spool file at its own pace and
is released as soon as the query is done, whatever the client's speed, so a slow reader never
holds a worker (the property the spool path had); memory stays flat on both sides (the page
cache holds the file; the parent reads 64 KB at a time).

Contract: the status (200) is decided when the worker reports that the first `INLINE_LIMIT`
bytes are in the file ("stream"); rows after that are not yet known. If the query then fails
(time limit, streamed row cap, byte cap, a worker crash), the body ends without its closing
bytes *and* the HTTP response is cut before its terminating chunk (no Content-Length is sent),
so every HTTP client reports an incomplete response; the failure is logged and counted
(`kg_stream_aborts`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from kg.store.base import CHUNK_SIZE, QueryResult

POLL_SECONDS = 0.005  # wait for more bytes when the reader caught up with the worker


class StreamAborted(Exception):
    """The query failed after the first bytes were sent; the response must be cut short."""


@dataclass
class StreamedResult(QueryResult):
    """A result whose spool file is still growing; `final` resolves to the worker's last word
    (meta of a complete result) or raises the typed error that ended it."""

    final: asyncio.Task[dict[str, Any]] | None = field(default=None, repr=False)
    streamed: bool = True

    async def chunks(self) -> AsyncIterator[bytes]:
        self._consumed = True
        final = self.final
        assert final is not None and self.path is not None
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            await asyncio.wait((final,))
            raise StreamAborted(_reason(final)) from None
        with handle:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            try:
                while True:
                    data = handle.read(CHUNK_SIZE)
                    if data:
                        yield data
                        continue
                    if final.done():
                        if final.cancelled() or final.exception() is not None:
                            raise StreamAborted(_reason(final))
                        meta = final.result()
                        while data := handle.read(CHUNK_SIZE):
                            yield data
                        self.rows, self.size = meta["rows"], meta["size"]
                        return
                    await asyncio.wait((final,), timeout=POLL_SECONDS)
            finally:
                if not final.done():
                    final.cancel()  # the client left: the executor replaces the worker

    def discard(self) -> None:
        """Not sent (HEAD, or an error before the response): stop the worker, drop the file."""
        if self.final is not None and not self.final.done():
            self.final.cancel()
        if self.path and not self._consumed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


def _reason(final: asyncio.Task[Any]) -> str:
    if final.cancelled():
        return "cancelled"
    exc = final.exception()
    return f"{type(exc).__name__}: {exc}"
