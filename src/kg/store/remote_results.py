"""A remote backend's answer to a protocol query, turned into the service's own result.

The body is downloaded into a spool file (bounded by the byte cap and the deadline), then
parsed with pyoxigraph and re-serialised with kg.sparql.results in the negotiated format, in
one thread (pyoxigraph iterators are thread-bound). So the bytes, the row cap and the byte cap
are the embedded store's, whatever the backend's serialisers do (Virtuoso answers ASK as a
one-row SELECT, for instance).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pyoxigraph as ox

from kg.errors import BackendError, QuerySyntaxError, TooManyRows
from kg.namespaces import kg_prefixes
from kg.sparql.executor import INLINE_LIMIT, MAX_RESULT_BYTES
from kg.sparql.negotiation import BY_KEY
from kg.sparql.results import RowCapExceeded, write_boolean, write_solutions, write_triples
from kg.sparql.worker import RESULT_FORMATS, ResultTooLarge, Spool
from kg.store.base import QueryResult

if TYPE_CHECKING:
    from kg.config import Settings

_LINE = re.compile(r"line (\d+)")


def raise_for(status: int, body: str) -> None:
    """A 4xx is the query's fault (syntax, unsupported feature); anything else the backend's."""
    if 400 <= status < 500 and status not in (401, 403, 407):
        line = _LINE.search(body)
        raise QuerySyntaxError(f"The SPARQL backend refused the query: {body.strip()}",
                               line=int(line[1]) if line else None, column=None)
    raise BackendError(f"The SPARQL backend answered {status}: {body.strip()[:500]}")


# Virtuoso names blank nodes in SPARQL JSON results "nodeID://b123", which is no blank node
# label (pyoxigraph refuses it): the prefix is dropped, giving the `_:b123` of its N-Triples
_VIRTUOSO_BNODE = re.compile(rb'("type"\s*:\s*"bnode"\s*,\s*"value"\s*:\s*")nodeID://')
_CARRY = 128  # longer than any match, so a match split between chunks is seen whole


def virtuoso_bnodes(body: bytes) -> bytes:
    return _VIRTUOSO_BNODE.sub(rb"\1", body)


async def download(response: httpx.Response, path: Path, deadline: float,
                   fix_bnodes: bool = False) -> int:
    """Write the body to `path`; TimeoutError past the deadline, TooManyRows past the cap.
    `fix_bnodes`: rewrite Virtuoso's blank node names on the way (see virtuoso_bnodes)."""
    size = 0
    carry = b""
    with open(path, "wb") as out:
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_RESULT_BYTES:
                raise TooManyRows(f"The result is larger than {MAX_RESULT_BYTES} bytes.",
                                  max_bytes=MAX_RESULT_BYTES)
            if time.monotonic() > deadline:
                raise TimeoutError
            if fix_bnodes:
                buffer = virtuoso_bnodes(carry + chunk)
                chunk, carry = buffer[:-_CARRY], buffer[-_CARRY:]
            out.write(chunk)
        out.write(carry)
    return size


def _ask_value(solutions: ox.QuerySolutions) -> bool:
    """Virtuoso's ASK in JSON: one row, one integer or boolean."""
    for row in solutions:
        for value in row:
            return value is not None and value.value in ("1", "true")
    return False


def reserialize(path: Path, media: str, size: int, form: str, fmt: str, settings: Settings,
                started: float) -> QueryResult:
    spool = Spool(str(path) + ".out", INLINE_LIMIT, MAX_RESULT_BYTES)
    try:
        if form in ("SELECT", "ASK"):
            parsed = ox.parse_query_results(
                path=str(path), format=ox.QueryResultsFormat.XML
                if media.endswith("+xml") else ox.QueryResultsFormat.JSON)
            fmt = fmt if fmt in RESULT_FORMATS else "json"
            if isinstance(parsed, ox.QueryBoolean) or form == "ASK":
                value = bool(parsed) if isinstance(parsed, ox.QueryBoolean) else _ask_value(parsed)
                write_boolean(value, fmt, spool)
                rows = 1
            else:
                rows = write_solutions(parsed, fmt, spool, settings.max_rows)
        else:
            from kg.store.remote import RDF_PARSERS

            parser = RDF_PARSERS.get(media, ox.RdfFormat.TURTLE)
            triples = (q.triple for q in ox.parse(path=str(path), format=parser))
            fmt = fmt if fmt not in RESULT_FORMATS else "turtle"
            rows = write_triples(triples, fmt, spool, settings.max_rows,
                                 kg_prefixes(settings.base_iri))
    except (RowCapExceeded, ResultTooLarge) as exc:
        spool.discard()
        raise TooManyRows(
            f"The result has more than {settings.max_rows} rows (the row cap); add LIMIT or "
            "narrow the query.", max_rows=settings.max_rows) from exc
    except (SyntaxError, ValueError, OSError, RuntimeError, TypeError) as exc:
        spool.discard()
        if spool.size > spool.max_bytes or ("more than" in str(exc) and "rows" in str(exc)):
            raise TooManyRows(  # raised in write(), wrapped by pyoxigraph's serializer
                f"The result has more than {settings.max_rows} rows (the row cap) or "
                f"{MAX_RESULT_BYTES} bytes; add LIMIT or narrow the query.",
                max_rows=settings.max_rows) from exc
        raise BackendError(f"The SPARQL backend sent an unreadable result: {exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    meta = spool.finish()
    return QueryResult(format=BY_KEY[fmt], rows=rows, size=meta["size"], inline=meta["inline"],
                       path=meta["path"], elapsed=time.monotonic() - started)
