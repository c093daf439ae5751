"""A remote backend's answer to a protocol query, turned into the service's own result.

`produce` runs in one thread (pyoxigraph iterators are thread-bound): it sends the query, parses
the backend's answer with pyoxigraph *as it arrives* and writes it in the negotiated format into
a kg.sparql.worker.Spool, as a query worker does over the embedded store. So the bytes, the row
cap (counted while reading: the connection is closed as soon as it is passed), the byte cap
(KG_MAX_RESULT_BYTES), the time limit and streaming (a large SELECT in JSON, CSV or TSV is
announced by `notify` once its first INLINE_LIMIT bytes are written, and followed while it
grows, kg.sparql.streaming) are the embedded store's, whatever the backend's serialisers do
(Virtuoso answers ASK as a one-row SELECT, for instance).
"""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pyoxigraph as ox

from kg.errors import (
    BackendError,
    BackendUnavailable,
    KgError,
    QuerySyntaxError,
    QueryTimeout,
    TooManyRows,
)
from kg.sparql.executor import INLINE_LIMIT
from kg.sparql.prologue import declared_prefixes
from kg.sparql.results import (
    PREFIXED_FORMATS,
    STREAM_FORMATS,
    RowCapExceeded,
    stream_solutions,
    write_boolean,
    write_solutions,
    write_triples,
)
from kg.sparql.worker import RESULT_FORMATS, ResultTooLarge, Spool
from kg.store.base import CHUNK_SIZE

if TYPE_CHECKING:
    from kg.config import Settings

_LINE = re.compile(r"line (\d+)")
_POSITION = re.compile(r"at (\d+):(\d+)")  # Oxigraph's (and pyoxigraph's) "error at 3:10"


def local_syntax_error(query: str, base_iri: str) -> QuerySyntaxError | None:
    """The embedded store's syntax error for `query` (pyoxigraph's parser, the same message and
    position), or None when it parses. Only for a SELECT, CONSTRUCT or DESCRIBE the backend
    refused: those are evaluated lazily, so parsing on an empty store runs nothing (an ASK
    would be evaluated at once)."""
    try:
        ox.Store().query(query, base_iri=base_iri)
    except SyntaxError as exc:
        position = _POSITION.search(str(exc))
        return QuerySyntaxError(str(exc), line=int(position[1]) if position else None,
                                column=int(position[2]) if position else None)
    except Exception:  # anything else: the backend's answer stands
        return None
    return None


def raise_for(status: int, body: str, shift: int = 0) -> None:
    """A 4xx is the query's fault (syntax, unsupported feature); anything else the backend's.

    `shift`: characters the service put before the client's text on its first line (the
    `BASE`, kg.store.sparql_text.with_base), taken off a line-1 column so that the position is
    the one in the client's text, as the embedded store reports it."""
    if 400 <= status < 500 and status not in (401, 403, 407):
        message = body.strip()
        position = _POSITION.search(message)
        if position:
            line, column = int(position[1]), int(position[2])
            if line == 1 and column > shift:
                column -= shift
                message = (f"{message[:position.start()]}at {line}:{column}"
                           f"{message[position.end():]}")
            raise QuerySyntaxError(message, line=line, column=column)
        found = _LINE.search(message)
        raise QuerySyntaxError(f"The SPARQL backend refused the query: {message}",
                               line=int(found[1]) if found else None, column=None)
    raise BackendError(f"The SPARQL backend answered {status}: {body.strip()[:500]}")


# Virtuoso names blank nodes in SPARQL JSON results "nodeID://b123", which is no blank node
# label (pyoxigraph refuses it): the prefix is dropped, giving the `_:b123` of its N-Triples
_VIRTUOSO_BNODE = re.compile(rb'("type"\s*:\s*"bnode"\s*,\s*"value"\s*:\s*")nodeID://')
_CARRY = 128  # longer than any match, so a match split between chunks is seen whole


def virtuoso_bnodes(body: bytes) -> bytes:
    return _VIRTUOSO_BNODE.sub(rb"\1", body)


class Cancelled(Exception):
    """The result is no longer wanted (the client left, HEAD): reading stopped."""


class BodyReader(io.RawIOBase):
    """The backend's body as a file for pyoxigraph's parsers, read as they ask for it. Past the
    deadline, or once `cancel` is set, a read fails (closing the connection ends the backend's
    work too); the cause is kept in `failure`, since pyoxigraph re-raises it as its own error."""

    def __init__(self, chunks: Iterator[bytes], deadline: float, cancel: threading.Event,
                 fix_bnodes: bool) -> None:
        self.chunks = chunks
        self.deadline = deadline
        self.cancel = cancel
        self.fix_bnodes = fix_bnodes
        self.pending = b""
        self.carry = b""
        self.ended = False
        self.failure: BaseException | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.pending:
            if self.ended:
                return 0
            if self.cancel.is_set():
                self._fail(Cancelled())
            if time.monotonic() > self.deadline:
                self._fail(TimeoutError())
            try:
                chunk = next(self.chunks)
            except StopIteration:
                self.ended, self.pending, self.carry = True, self.carry, b""
                continue
            except httpx.HTTPError as exc:
                self._fail(exc)
            if self.fix_bnodes:
                fixed = virtuoso_bnodes(self.carry + chunk)
                self.pending, self.carry = fixed[:-_CARRY], fixed[-_CARRY:]
            else:
                self.pending = chunk
        size = min(len(buffer), len(self.pending))
        buffer[:size] = self.pending[:size]
        self.pending = self.pending[size:]
        return size

    def _fail(self, exc: BaseException) -> None:
        self.failure = exc
        raise exc


def _ask_value(solutions: ox.QuerySolutions) -> bool:
    """Virtuoso's ASK in JSON: one row, one integer or boolean."""
    for row in solutions:
        for value in row:
            return value is not None and value.value in ("1", "true")
    return False


def _timeout(settings: Settings) -> QueryTimeout:
    limit = settings.query_timeout
    return QueryTimeout(
        f"The query exceeded the {limit:g} s time limit and was stopped. Narrow it (LIMIT, more "
        "specific patterns) or avoid sorting large results.", limit_seconds=limit)


def _too_many_rows(settings: Settings) -> TooManyRows:
    return TooManyRows(
        f"The result has more than {settings.max_rows} rows (the row cap); add LIMIT or "
        "narrow the query.", max_rows=settings.max_rows)


def _too_large(settings: Settings) -> TooManyRows:
    return TooManyRows(
        f"The result is too large: the result is larger than {settings.max_result_bytes} "
        "bytes.", max_bytes=settings.max_result_bytes)


def _write(source: io.BufferedReader, media: str, form: str, fmt: str, settings: Settings,
           spool: Spool, stream: bool, query: str) -> tuple[str, int]:
    """Parse the answer from `source` and write it in `fmt` into `spool`: (format, rows); a
    graph with `query`'s own prefixes, as the embedded store's workers write it."""
    if form in ("SELECT", "ASK"):
        parsed = ox.parse_query_results(
            source, format=ox.QueryResultsFormat.XML
            if media.endswith("+xml") else ox.QueryResultsFormat.JSON)
        fmt = fmt if fmt in RESULT_FORMATS else "json"
        if isinstance(parsed, ox.QueryBoolean) or form == "ASK":
            value = bool(parsed) if isinstance(parsed, ox.QueryBoolean) else _ask_value(parsed)
            write_boolean(value, fmt, spool)
            return fmt, 1
        if stream and fmt in STREAM_FORMATS:
            stream_solutions(parsed, fmt, spool)  # as the worker streams: no row cap
            return fmt, -1
        return fmt, write_solutions(parsed, fmt, spool, settings.max_rows)
    from kg.store.remote import RDF_PARSERS

    triples = (q.triple for q in ox.parse(source, format=RDF_PARSERS.get(
        media, ox.RdfFormat.TURTLE)))
    fmt = fmt if fmt not in RESULT_FORMATS else "turtle"
    prefixes = (declared_prefixes(query, settings.base_iri)
                if fmt in PREFIXED_FORMATS else None)
    return fmt, write_triples(triples, fmt, spool, settings.max_rows, prefixes)


def produce(
    client: httpx.Client, url: str, query: str, data: dict[str, list[str]], accept: str,
    form: str,
    fmt: str, settings: Settings, path: str, deadline: float, cancel: threading.Event,
    notify: Callable[[], None] | None, fix_bnodes: bool, shift: int,
) -> tuple[str, int, dict[str, Any]]:
    """Run one protocol query on the backend (see the module docstring): (format, rows, the
    spool's meta). `notify` (streaming) is called from this thread once the first bytes are in
    the file at `path`. Raises the typed errors of the embedded store's workers."""
    spool = Spool(path, INLINE_LIMIT, settings.max_result_bytes,
                  on_spill=notify if notify is not None else None)
    reader: BodyReader | None = None
    try:
        with client.stream("POST", url, data=data, headers={"Accept": accept},
                           timeout=max(deadline - time.monotonic(), 0.001)) as response:
            if response.status_code >= 400:
                status = response.status_code
                if 400 <= status < 500 and form != "ASK":  # Virtuoso gives no column
                    local = local_syntax_error(query, settings.base_iri)
                    if local is not None:
                        raise local
                raise_for(status, response.read().decode("utf-8", "replace")[:1000], shift)
            media = response.headers.get("content-type", "").split(";")[0].strip().lower()
            reader = BodyReader(response.iter_bytes(), deadline, cancel, fix_bnodes)
            fmt, rows = _write(io.BufferedReader(reader, CHUNK_SIZE), media, form, fmt,
                               settings, spool, notify is not None, query)
    except KgError:
        spool.discard()
        raise
    except (RowCapExceeded, ResultTooLarge) as exc:
        spool.discard()
        if reader is not None and isinstance(reader.failure, Cancelled):
            raise reader.failure from None
        raise (_too_large(settings) if isinstance(exc, ResultTooLarge)
               else _too_many_rows(settings)) from exc
    except (Cancelled, httpx.HTTPError, TimeoutError, SyntaxError, ValueError, OSError,
            RuntimeError, TypeError) as exc:
        spool.discard()
        failure = reader.failure if reader is not None and reader.failure else exc
        if isinstance(failure, Cancelled):
            raise failure from None
        if isinstance(failure, (TimeoutError, httpx.TimeoutException)):
            raise _timeout(settings) from None
        if isinstance(failure, httpx.HTTPError):
            raise BackendUnavailable(
                f"The SPARQL backend is unreachable: {failure!r}") from failure
        if spool.size > spool.max_bytes:  # raised in write(), wrapped by pyoxigraph
            raise _too_large(settings) from exc
        if "more than" in str(exc) and "rows" in str(exc):
            raise _too_many_rows(settings) from exc
        raise BackendError(f"The SPARQL backend sent an unreadable result: {exc}") from exc
    return fmt, rows, spool.finish()
