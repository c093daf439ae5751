"""The child process that rehearses writes (kg.store.rehearsal), seen from the server.

One long-lived child per server process (pyshacl and rdflib are imported once), started on the
first write, used by one writer at a time (the caller holds the store's write lock). The
server thread only sends a job and waits on the pipe, so it holds the GIL for microseconds.
A rehearsal that overruns its time limit is stopped by killing the child (replaced on the next
write) — something a thread could not do — and a child that dies fails only that write.
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
from kg.store.rehearsal import Job, Plan

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

    def run(self, job: Job, timeout: float) -> Plan:
        """The child's plan for `job`, or the client's error re-raised here."""
        with self._lock:
            conn = self._start()
            try:
                conn.send(job)
                if not conn.poll(timeout):
                    log.warning("write rehearsal exceeded %.0f s; rehearsal process killed",
                                timeout)
                    self.stop()
                    raise UpdateTimeout(
                        f"The update did not finish its rehearsal within {timeout:g} s and was "
                        "stopped. Nothing was changed.", limit_seconds=timeout)
                reply = conn.recv()
            except (EOFError, OSError) as exc:
                self.stop()
                raise BackendUnavailable(
                    "The write rehearsal process stopped (memory limit exceeded?). Nothing was "
                    "changed.") from exc
        if reply[0] == "ok":
            plan: Plan = reply[1]
            return plan
        if reply[0] == "error":
            _, name, detail, extra = reply
            cls = getattr(errors, name, None)
            if not (isinstance(cls, type) and issubclass(cls, errors.KgError)):
                cls = errors.ClientError
            raise cls(detail, **extra)
        raise RuntimeError(f"the write rehearsal failed: {reply[1]}")


REHEARSER = Rehearser()
atexit.register(REHEARSER.stop)
