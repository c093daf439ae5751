"""Per-process CPU of `kg serve` under cold wrk rows: where a small query's CPU goes.

Why: on 2 cores the request process, the query workers and wrk share the CPUs, and what a
request costs depends on how the processes wake each other, not only on the code each runs.
This tool showed that two workers each sleeping and waking at every job spent 160–219 µs of
CPU per small CONSTRUCT against 135–141 µs for one worker that never slept, which led to the
reserve worker (`KG_QUERY_RESERVE_WORKERS`, bench/NOTES.md). Per process (the request process
first, then each worker): user and system CPU in µs per request, voluntary + involuntary
context switches per request (psutil, read before and after each row), and how busy the process
was (CPU seconds per second of the row: near 1.00 is the bottleneck).

Runs on the bench's `real` store (run `python -m bench.run` once first); settings for `kg
serve` with `--env`, e.g. compare `--env KG_QUERY_RESERVE_WORKERS=0` and the default in
interleaved runs (this VM's rates move ±20 % within minutes):

    python -m bench.process_cpu [--kinds point,join,construct] [--duration 5] [--env K=V ...]

No assertions: numbers to compare (bench/NOTES.md quotes them).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any


def _sample(processes: list[Any]) -> list[tuple[float, float, int, int]]:
    samples = []
    for process in processes:
        times, switches = process.cpu_times(), process.num_ctx_switches()
        samples.append((times.user, times.system, switches.voluntary, switches.involuntary))
    return samples


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import psutil

    from bench import datagen, queries, servers, wrk
    from bench.paired import NUMBERS_PER_RUN

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", default="point,join,construct")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--work", type=Path, default=servers.ROOT / "var" / "bench")
    opts = parser.parse_args(argv)
    entities, kinds = queries.of_run(opts.work)
    wanted = [kinds[name] for name in opts.kinds.split(",")]
    env = dict(item.split("=", 1) for item in opts.env)
    server = servers.start_kg(opts.work / "stores" / "real" / "kg" / "store",
                              opts.work / "logs" / "process_cpu", datagen.BASE_IRI,
                              extra_env=env)
    try:
        host, port = server.host_port
        parent = psutil.Process(server.pid)
        processes = [parent, *parent.children(recursive=True)]
        for number, kind in enumerate(wanted):
            # the warm-up and the row get distinct query numbers: a repeated text would be a
            # cache hit (before this, the row repeated the warm-up's first texts)
            offset = 2 * number * NUMBERS_PER_RUN
            wrk.run(host, port, server.path, kind.cold, entities, True, opts.warmup, 16, 2,
                    offset=offset)
            before, started = _sample(processes), time.monotonic()
            result = wrk.run(host, port, server.path, kind.cold, entities, True,
                             opts.duration, 16, 2, offset=offset + NUMBERS_PER_RUN)
            after, wall = _sample(processes), time.monotonic() - started
            requests = max(result.rps * opts.duration, 1.0)
            print(f"{kind.name}: {result.rps:,.0f} req/s, {result.errors} errors")
            for process, old, new in zip(processes, before, after, strict=True):
                user, system, voluntary, involuntary = (
                    (b - a) / requests for a, b in zip(old, new, strict=True))
                if process is not parent and user + system < 1e-7:
                    continue  # an idle child: a reserve, the forkserver, the resource tracker
                role = "request process" if process is parent else "child (query worker)"
                # busy: CPU seconds per second of the row (wrk's start and stop included), so
                # a process near 1.00 is the bottleneck whatever the others spend
                busy = (user + system) * requests / wall
                print(f"  {role} {process.pid}: user {user * 1e6:.1f} µs, system "
                      f"{system * 1e6:.1f} µs, switches {voluntary:.2f} + {involuntary:.2f} "
                      f"per request; busy {busy:.2f}")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
