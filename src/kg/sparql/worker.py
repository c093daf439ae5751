"""The query worker process: opens one read-only snapshot, runs queries, spools results.

Each worker is a separate process so a runaway query can be killed (pyoxigraph has no
cancellation) and so results iterators, which are bound to the thread that created them, are
created and consumed in this process's one thread.

Protocol over a socketpair in multiprocessing Connection frames (`_Pipe` here; the parent
reads it with asyncio, kg.sparql.channel): the per-pool `Config` comes once, as a process
argument; then the parent sends a small `Job` dict per job, ("reopen", snapshot path) after
a write, or None to stop.
Worker → parent: ("ready", pid) once the snapshot is open (at start and after each reopen; a
reopen that fails is answered ("error", "reopen", message) and the worker exits), then per job
either
- ("ok", meta) — complete; a small result travels inline in `meta["inline"]`, a larger one was
  written to `job["spool"]` (a file the parent chose, streams and deletes), or
- ("error", kind, message[, cap]) — nothing usable was produced, or
- ("skipped",) — the job was withdrawn while it waited in the pipe (`Claims`), or
- ("stream", meta) first, then ("ok", meta) or ("error", ...) — a large SELECT result in a
  streamable format (`STREAM_FORMATS`, when `job["stream"]`): sent as soon as the spool spills
  to its file, which the parent follows while this worker keeps writing; the final message says
  whether the file is complete.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import resource
import socket
import struct
import traceback
from collections.abc import Callable
from typing import Any, NotRequired, TypedDict

import pyoxigraph as ox

from kg.sparql.channel import frame
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

RESULT_FORMATS = ("json", "xml", "csv", "tsv")


_INT = struct.Struct("!i")
_LONG = struct.Struct("!Q")
_UNKNOWN_FUNCTION = re.compile(r"The custom function <([^>]*)> is not supported")
_MAX_UNKNOWN_FUNCTIONS = 32


def _no_value(*_: object) -> None:
    """An unknown function's call: an expression error (the variable stays unbound)."""
    return None


def evaluate(store: ox.Store, text: str, base_iri: str, **kwargs: Any) -> Any:
    """`store.query`, where a call to a function pyoxigraph does not know is an expression error,
    as SPARQL 1.1 (17.3) has it and Fuseki does, not a refusal of the whole query: pyoxigraph
    names one unknown function per refusal, so each is given as one that never answers and the
    query is asked again (only on that path: custom functions cost every call)."""
    unknown: dict[ox.NamedNode, Callable[..., None]] = {}
    while True:
        try:
            if unknown:
                return store.query(text, base_iri=base_iri, custom_functions=unknown, **kwargs)
            return store.query(text, base_iri=base_iri, **kwargs)
        except RuntimeError as exc:
            match = _UNKNOWN_FUNCTION.fullmatch(str(exc))
            if match is None or len(unknown) >= _MAX_UNKNOWN_FUNCTIONS:
                raise
            unknown[ox.NamedNode(match[1])] = _no_value


class Config(TypedDict):
    """What every job of one pool shares (sent once, at process start)."""

    base_iri: str | None
    union: bool
    max_rows: int  # row cap of results written by kg.sparql.results (422)
    max_bytes: int
    inline_limit: int


class Job(TypedDict):
    query: str
    format: str
    default_graph: list[str] | None
    named_graphs: list[str] | None
    prefixes: NotRequired[dict[str, str] | None]  # read by the server already (else here)
    spool: str
    stream: bool
    claim: int  # > 0: queued behind another job, run only if `Claims.start(claim)` says so


CLAIM_SLOTS = 16  # > the jobs that can be queued in one pipe at once (PIPE_DEPTH + moved ones)
LOCK_WAIT = 0.02  # seconds the parent's event loop may wait for a worker's claim lock


class Claims:
    """Who has a queued job: this worker (it started it) or the parent (it withdrew it).

    A job queued in a worker's pipe may be withdrawn while it waits: moved to another worker,
    or its caller gave up. Exactly one side must have it, decided atomically under a lock
    shared by the two processes. A marker file the worker merely checked was a race: it could
    start the job just before the parent marked it, and a long query then held two workers
    until the time limit (the reads behind it waited that out). Queued jobs are numbered per
    worker in pipe order (`Job["claim"]`, from 1); `cells[0]` is the last one started, and
    `cells[1 + n % CLAIM_SLOTS] == n` marks n withdrawn. The lock is held for a few
    instructions; the parent waits for it at most `LOCK_WAIT` (a worker preempted or killed
    while holding it) and then treats the job as undecided, not as started.
    """

    def __init__(self, ctx: Any) -> None:
        self.lock = ctx.Lock()
        self.cells = ctx.RawArray("q", 1 + CLAIM_SLOTS)

    def start(self, number: int) -> bool:
        """In the worker, before queued job `number`: False if it was withdrawn (skip it)."""
        with self.lock:
            if self.cells[1 + number % CLAIM_SLOTS] == number:
                return False
            self.cells[0] = number
            return True

    def withdraw(self, number: int) -> bool | None:
        """In the parent: True if the worker will skip queued job `number`, False if it has
        started it, None if the lock stayed busy (the worker preempted or killed inside it):
        unknown, ask again later. The event loop waits at most `LOCK_WAIT` for it."""
        if not self.lock.acquire(timeout=LOCK_WAIT):
            return None
        try:
            if self.cells[0] >= number:
                return False
            self.cells[1 + number % CLAIM_SLOTS] = number
            return True
        finally:
            self.lock.release()


class ResultTooLarge(Exception):
    pass


class Spool:
    """A binary writer that stays in memory up to `inline_limit`, then continues in a file.

    `on_spill`, when set, is called once the file holds the first `inline_limit` bytes (flushed):
    the streaming signal.
    """

    def __init__(
        self, path: str, inline_limit: int, max_bytes: int,
        on_spill: Callable[[], None] | None = None,
    ) -> None:
        self.path = path
        self.inline_limit = inline_limit
        self.max_bytes = max_bytes
        self.on_spill = on_spill
        self.buffer = bytearray()
        self.file: Any = None
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self.max_bytes:
            raise ResultTooLarge(f"the result is larger than {self.max_bytes} bytes")
        if self.file is not None:
            self.file.write(data)
        else:
            self.buffer += data
            if len(self.buffer) > self.inline_limit:
                self.file = open(self.path, "wb")  # noqa: SIM115 - closed in finish()
                self.file.write(self.buffer)
                self.buffer = bytearray()
                if self.on_spill is not None:
                    self.file.flush()
                    self.on_spill()
        return len(data)

    def flush(self) -> None:
        pass

    def finish(self) -> dict[str, Any]:
        if self.file is not None:
            self.file.close()
            return {"inline": None, "path": self.path, "size": self.size}
        return {"inline": bytes(self.buffer), "path": None, "size": self.size}

    def discard(self) -> None:
        if self.file is not None:
            self.file.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


def run_job(
    store: ox.Store, job: Job, config: Config,
    notify: Callable[[tuple[Any, ...]], None] | None = None,
) -> tuple[Any, ...]:
    """Execute one query and serialize it; every failure becomes an ("error", kind, msg)."""
    kwargs: dict[str, Any] = {}
    if job["default_graph"] is not None or job["named_graphs"] is not None:
        kwargs["default_graph"] = [ox.NamedNode(g) for g in job["default_graph"] or []]
        kwargs["named_graphs"] = [ox.NamedNode(g) for g in job["named_graphs"] or []]
    elif config["union"]:
        kwargs["use_default_graph_as_union"] = True
    spool = Spool(job["spool"], config["inline_limit"], config["max_bytes"])
    fmt = job["format"]
    try:
        results = evaluate(store, job["query"], config["base_iri"], **kwargs)
        if isinstance(results, ox.QuerySolutions):
            fmt = fmt if fmt in RESULT_FORMATS else "json"
            if job["stream"] and fmt in STREAM_FORMATS:
                if notify is not None:
                    streamed = {"format": fmt, "path": spool.path}
                    spool.on_spill = lambda: notify(("stream", streamed))
                stream_solutions(results, fmt, spool)
                rows = -1  # not counted (no row cap; the byte cap and time limit hold)
            else:
                rows = write_solutions(results, fmt, spool, config["max_rows"])
        elif isinstance(results, ox.QueryBoolean):
            fmt = fmt if fmt in RESULT_FORMATS else "json"
            write_boolean(bool(results), fmt, spool)
            rows = 1
        else:
            fmt = fmt if fmt not in RESULT_FORMATS else "turtle"
            # Turtle and TriG declare the query's own prefixes (kg.sparql.prologue), as Fuseki
            prefixes = job.get("prefixes")
            if prefixes is None and fmt in PREFIXED_FORMATS:
                prefixes = declared_prefixes(job["query"], config["base_iri"])
            rows = write_triples(results, fmt, spool, config["max_rows"], prefixes)
    except SyntaxError as exc:
        spool.discard()
        return ("error", "syntax", str(exc))
    except RowCapExceeded as exc:
        spool.discard()
        return ("error", "too_many_rows", str(exc), exc.cap)
    except ResultTooLarge as exc:
        spool.discard()
        return ("error", "too_large", str(exc))
    except (OSError, ValueError, TypeError, RuntimeError) as exc:
        spool.discard()
        if spool.size > spool.max_bytes:  # raised in write(), wrapped by pyoxigraph
            return ("error", "too_large", f"the result is larger than {spool.max_bytes} bytes")
        if "more than" in str(exc) and "rows" in str(exc):
            return ("error", "too_many_rows", str(exc))
        return ("error", "failed", f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # a bug here must not kill the worker: report it
        spool.discard()
        traceback.print_exc()
        return ("error", "bug", f"{type(exc).__name__}: {exc}")
    return ("ok", {"format": fmt, "rows": rows, **spool.finish()})


class _Pipe:
    """The worker's end of its socketpair, framed as multiprocessing's Connection frames it (a
    4-byte big-endian length, or -1 and an 8-byte length, then a pickle), which the parent
    reads (kg.sparql.channel). Own framing, not Connection.recv/send: those read a frame in two
    system calls and pickle through ForkingPickler, a measurable share of a small query's time
    in the worker."""

    def __init__(self, conn: Any) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=os.dup(conn.fileno()))
        conn.close()
        self.buffer = bytearray()

    def recv(self) -> Any:
        buffer = self.buffer
        while True:
            if len(buffer) >= 4:
                (size,) = _INT.unpack_from(buffer, 0)
                head = 4
                if size == -1:
                    if len(buffer) >= 12:
                        (size,) = _LONG.unpack_from(buffer, 4)
                        head = 12
                    else:
                        size = None
                if size is not None and len(buffer) >= head + size:
                    message = pickle.loads(memoryview(buffer)[head:head + size])
                    del buffer[:head + size]
                    return message
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError("the parent closed the pipe")
            buffer += chunk

    def send(self, message: Any) -> None:
        self.sock.sendall(frame(message))

    def close(self) -> None:
        self.sock.close()


def main(conn: Any, snapshot: str, memory_limit: int | None, config: Config,
         claims: Claims) -> None:
    """Entry point of a worker process (started by kg.sparql.executor)."""
    if memory_limit:
        # a sort over a cartesian product can exhaust memory before the time limit: fail alone
        resource.setrlimit(resource.RLIMIT_DATA, (memory_limit, memory_limit))
    pipe = _Pipe(conn)
    store = ox.Store.read_only(snapshot)
    pipe.send(("ready", os.getpid()))
    while True:
        try:
            message = pipe.recv()
        except (EOFError, OSError):
            break
        if message is None:
            break
        if isinstance(message, tuple):  # ("reopen", path): a write made a newer snapshot
            # close the old one first: the parent prunes its directory once we answer
            del store
            try:
                store = ox.Store.read_only(message[1])
            except (OSError, ValueError, RuntimeError) as exc:
                pipe.send(("error", "reopen", f"{type(exc).__name__}: {exc}"))
                break  # the parent replaces a worker that has no snapshot open
            pipe.send(("ready", os.getpid()))
            continue
        try:
            if message["claim"] and not claims.start(message["claim"]):  # withdrawn meanwhile
                pipe.send(("skipped",))
                continue
            pipe.send(run_job(store, message, config, pipe.send))
        except (BrokenPipeError, ConnectionResetError):
            break  # the parent is gone (the pool closed while this job ran): nothing to tell
    pipe.close()
