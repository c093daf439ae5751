"""What a committed write costs the query executor: `QueryExecutor.refresh()` and read throughput.

    python -m bench.refresh [--store var/store] [--writes 40] [--readers 8] [--workers 2]

In-process (no HTTP, no SHACL), on a copy of `--store` (default var/store, else the test sample):
1. idle: `--writes` times, INSERT DATA on the live store, `bump_version()`, then time
   `await executor.refresh()` (what kg.store.writes does after a commit), and the CPU time the
   process tree spent per write (update, refresh, one ASK; workers started or retired too);
2. reads alone: `--readers` tasks loop over fast queries through `executor.execute` for
   `--window` seconds: the baseline throughput;
3. reads while writing: the same readers, and a writer doing step 1 every `--interval` s;
   refresh times under load, read throughput and the slowest read.
Also counts the worker processes that existed during the run (the forkserver's children): a
refresh that starts new workers shows there.
Prints one JSON line; `--out` writes it to a file too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kg.config import Settings  # noqa: E402
from kg.sparql.executor import QueryExecutor  # noqa: E402
from kg.store.base import QueryJob  # noqa: E402
from kg.store.embedded import EmbeddedStore  # noqa: E402

BASE_IRI = "http://localhost:8000/"
READS = [
    "SELECT ?s ?p ?o WHERE { ?s ?p ?o } LIMIT 10",
    "ASK { ?s a ?c }",
    "SELECT (COUNT(*) AS ?n) WHERE { GRAPH <http://localhost:8000/graph/bench> { ?s ?p ?o } }",
]


def _ms(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "n": len(values),
        "p50": round(statistics.median(ordered) * 1000, 1),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000, 1),
        "max": round(ordered[-1] * 1000, 1),
    }


class Bench:
    def __init__(self, executor: QueryExecutor, store: EmbeddedStore) -> None:
        self.executor = executor
        self.store = store
        self.n = 0
        self.pids: set[int] = set()
        self.me = psutil.Process()

    def sample_pids(self) -> None:
        """Query workers are forked by the forkserver: grandchildren of this process."""
        for child in self.me.children():
            with contextlib.suppress(psutil.Error):
                self.pids.update(p.pid for p in child.children())

    def tree_cpu(self) -> float:
        """CPU seconds of this process, the forkserver (with its reaped children: retired
        workers) and the live workers: what refreshes cost, whatever else runs on the host."""
        total = sum(self.me.cpu_times()[:2])
        for child in self.me.children():
            with contextlib.suppress(psutil.Error):
                t = child.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
                for worker in child.children():
                    with contextlib.suppress(psutil.Error):
                        total += sum(worker.cpu_times()[:2])
        return total

    async def write(self) -> float:
        self.n += 1
        text = (f"INSERT DATA {{ GRAPH <{BASE_IRI}graph/bench> {{ <{BASE_IRI}id/b{self.n}> "
                f"<http://www.w3.org/2000/01/rdf-schema#label> \"b{self.n}\" }} }}")
        await asyncio.to_thread(self.store.raw.update, text)
        self.store.bump_version()
        started = time.perf_counter()
        await self.executor.refresh()
        elapsed = time.perf_counter() - started
        # read-your-writes: a query after refresh() sees the write
        result = await self.executor.execute(QueryJob(
            f"ASK {{ GRAPH <{BASE_IRI}graph/bench> {{ <{BASE_IRI}id/b{self.n}> ?p ?o }} }}",
            "json"))
        assert result.inline is not None and b"true" in result.inline, result
        return elapsed

    async def reads(self, until: float, latencies: list[float]) -> None:
        i = 0
        while time.monotonic() < until:
            started = time.perf_counter()
            result = await self.executor.execute(QueryJob(READS[i % len(READS)], "json"))
            result.discard()
            latencies.append(time.perf_counter() - started)
            i += 1
            await asyncio.sleep(0)  # as an HTTP client would: let the other readers in

    async def read_phase(self, readers: int, window: float, interval: float | None
                         ) -> dict[str, object]:
        latencies: list[float] = []
        refreshes: list[float] = []
        until = time.monotonic() + window

        async def writer() -> None:
            assert interval is not None
            while time.monotonic() < until:
                refreshes.append(await self.write())
                self.sample_pids()
                await asyncio.sleep(interval)

        started = time.monotonic()
        tasks = [self.reads(until, latencies) for _ in range(readers)]
        if interval is not None:
            tasks.append(writer())
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
        return {"reads": len(latencies), "reads_per_s": round(len(latencies) / elapsed, 1),
                "read_ms": _ms(latencies), "writes": len(refreshes),
                "refresh_ms": _ms(refreshes)}


async def run(store_dir: Path, writes: int, readers: int, workers: int, window: float,
              interval: float) -> dict[str, object]:
    settings = Settings(store_path=store_dir, base_iri=BASE_IRI, query_workers=workers,
                        query_timeout=30)
    store = EmbeddedStore(store_dir)
    executor = QueryExecutor(settings, store)
    await executor.start()
    bench = Bench(executor, store)
    bench.sample_pids()
    try:
        idle = []
        cpu = bench.tree_cpu()
        for _ in range(writes):
            idle.append(await bench.write())
            bench.sample_pids()
        await asyncio.sleep(1.0)  # retired workers exit and are reaped
        cpu_per_write = (bench.tree_cpu() - cpu) / writes
        alone = await bench.read_phase(readers, window, None)
        loaded = await bench.read_phase(readers, window, interval)
    finally:
        await executor.close()
        store.close()
    return {"load_avg": [round(x, 2) for x in psutil.getloadavg()], "workers": workers,
            "refresh_idle_ms": _ms(idle), "cpu_ms_per_write_idle": round(cpu_per_write * 1000, 1),
            "reads_alone": alone, "reads_while_writing": loaded,
            "worker_processes_seen": len(bench.pids)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, default=ROOT / "var" / "store")
    parser.add_argument("--writes", type=int, default=40, help="refreshes timed on an idle pool")
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--window", type=float, default=15.0, help="seconds per read phase")
    parser.add_argument("--interval", type=float, default=0.1, help="pause between writes")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="kg-refresh-"))
    copy = scratch / "store"
    try:
        if args.store.exists():
            shutil.copytree(args.store.resolve(), copy)
        else:
            from tests.server_process import make_sample_store

            make_sample_store(copy, BASE_IRI)
        report = asyncio.run(run(copy, args.writes, args.readers, args.workers, args.window,
                                 args.interval))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    line = json.dumps(report)
    print(line)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(line + "\n")


if __name__ == "__main__":
    main()
