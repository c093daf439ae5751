"""The child process that rehearses writes (kg.store.rehearsal), seen from the server.

One long-lived child per server process (pyshacl and rdflib are imported once), started on the
first write, used by one writer at a time (the caller holds the store's write lock). The
server thread only sends a job and waits on the pipe, so it holds the GIL for microseconds.
A rehearsal that overruns its time limit is stopped by killing the child (replaced on the next
write) — something a thread could not do — and a child that dies fails only that write.
Embedded writes send a `Job` (rehearsal on a checkpoint); remote writes a `CopyJob` (the update
on a copy of the fetched graphs) and then a `ShapesJob` (pySHACL), under one time limit.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import multiprocessing as mp
import threading
from multiprocessing.connection import Connection
from typing import Any

from kg import errors
from kg.errors import BackendUnavailable, UpdateTimeout
from kg.store.rehearsal import CopyJob, Delta, Job, Plan, ShapesJob

log = logging.getLogger("kg.writes")

START_TIMEOUT = 60.0


class Rehearser:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: Any = None
        self._conn: Connection | None = None

    def _start(self) -> Connection:
        if self._conn is not None and self._process is not None and self._process.is_alive():
            return self._conn
        self.stop()
        method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        ctx = mp.get_context(method)
        parent, child = ctx.Pipe()
        from kg.store import rehearsal

        process = ctx.Process(target=rehearsal.main, args=(child,), daemon=True,
                              name="kg-rehearsal")
        process.start()
        child.close()
        if not parent.poll(START_TIMEOUT):
            process.kill()
            raise BackendUnavailable("the write rehearsal process did not start")
        try:
            parent.recv()  # ("ready", pid)
        except (EOFError, OSError) as exc:
            process.kill()
            raise BackendUnavailable(f"the write rehearsal process failed to start: {exc!r}") \
                from exc
        self._process, self._conn = process, parent
        return parent

    def stop(self) -> None:
        if self._process is not None:
            with contextlib.suppress(Exception):
                self._process.kill()
                self._process.join(5)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._process = self._conn = None

    def ready(self) -> None:
        """Start the child unless it runs, so that its start-up (pyshacl's import, seconds) is
        not counted against a time limit measured by the caller."""
        with self._lock:
            self._start()

    def run(self, job: Job, timeout: float) -> Plan:
        """The child's plan for `job` (an embedded store's write), or the client's error."""
        plan: Plan = self._call(job, timeout, timeout)
        return plan

    def run_copy(self, job: CopyJob, timeout: float, limit: float) -> Delta:
        """What a remote store's update changes on the copy in `job`, or the client's error."""
        delta: Delta = self._call(job, timeout, limit)
        return delta

    def check_shapes(self, job: ShapesJob, timeout: float, limit: float) -> None:
        """Nothing, or ShapeViolation if a remote store's write introduces violations."""
        self._call(job, timeout, limit)

    def _call(self, job: Job | CopyJob | ShapesJob, timeout: float, limit: float) -> Any:
        """The child's answer to `job` within `timeout` s (what is left of the rehearsal's
        `limit`, which the UpdateTimeout reports); past it the child is killed."""
        if timeout <= 0:  # the limit ran out in the parent (a remote write's backend queries)
            raise _timed_out(limit)
        with self._lock:
            conn = self._start()
            try:
                conn.send(job)
                if not conn.poll(timeout):
                    log.warning("write rehearsal exceeded %.0f s; rehearsal process killed",
                                limit)
                    self.stop()
                    raise _timed_out(limit)
                reply = conn.recv()
            except (EOFError, OSError) as exc:
                self.stop()
                raise BackendUnavailable(
                    "The write rehearsal process stopped (memory limit exceeded?). Nothing was "
                    "changed.") from exc
        if reply[0] == "ok":
            return reply[1]
        if reply[0] == "error":
            _, name, detail, extra = reply
            cls = getattr(errors, name, None)
            if not (isinstance(cls, type) and issubclass(cls, errors.KgError)):
                cls = errors.ClientError
            raise cls(detail, **extra)
        raise RuntimeError(f"the write rehearsal failed: {reply[1]}")


def _timed_out(limit: float) -> UpdateTimeout:
    return UpdateTimeout(
        f"The update did not finish its rehearsal within {limit:g} s and was stopped. Nothing "
        "was changed.", limit_seconds=limit)


REHEARSER = Rehearser()
atexit.register(REHEARSER.stop)
