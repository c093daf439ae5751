"""What one query worker can do per second on the bench's cold small queries, in process.

Why: under the cold small-query rows one worker serves every query (the other is held in reserve,
bench/NOTES.md), so its rate caps kg's whole rate on a kind, however fast the request process
is. `python -m bench.process_cpu` shows that worker busy nearly all the time on point lookups;
this tool shows how much of its time is pyoxigraph's, which no Python code of ours can remove.
Per kind, on the bench's `real` store with the bench's own cold texts (distinct per call), in µs
per query (process CPU time, best of `--rounds`):

- `Store.query("ASK {}")` on an empty in-memory store: what pyoxigraph spends on any query call
  before it reads data (its evaluator's set-up);
- pyoxigraph alone: `Store.query` and pyoxigraph's own serializer to bytes (SPARQL JSON, or
  Turtle without prefixes: `QueryTriples.serialize`, which the worker cannot use for Turtle
  because it neither declares the query's prefixes nor stops at the row cap);
- `kg.sparql.worker.run_job` and the reply's frame: the worker's work per job, without the pipe's
  system calls;

and the cap that follows, 1 / run_job: the most cold queries of that kind one worker can answer
per second on this machine (before system calls and the other processes' share of the cores).

    python -m bench.worker_cap [--kinds point,join,construct] [--queries 20000] [--rounds 3]

Run `python -m bench.run` once first (for the `real` store and its data file). No assertions.
"""

from __future__ import annotations

import argparse
import glob
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pyoxigraph as ox


def _best(calls: list[str], fn: Callable[[str], object], rounds: int) -> float:
    """µs of process CPU per call, the best of `rounds` passes (after one warm-up pass)."""
    for text in calls[: len(calls) // 10]:
        fn(text)
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for text in calls:
            fn(text)
        best = min(best, (time.process_time() - started) / len(calls) * 1e6)
    return best


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench import datagen, queries, servers
    from bench.paired import NUMBERS_PER_RUN
    from kg.sparql.channel import frame
    from kg.sparql.prologue import declared_prefixes
    from kg.sparql.worker import Config, Job, run_job

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", default="point,join,construct")
    parser.add_argument("--queries", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=Path, default=servers.ROOT / "var" / "bench")
    opts = parser.parse_args(argv)
    snapshots = glob.glob(str(opts.work / "stores" / "real" / "kg" / "snapshots" / "*"))
    if not snapshots:
        raise SystemExit(f"no `real` kg store under {opts.work}: run `python -m bench.run` first")
    entities, kinds = queries.of_run(opts.work)
    store = ox.Store.read_only(max(snapshots, key=lambda p: Path(p).stat().st_mtime))
    config: Config = {"base_iri": datagen.BASE_IRI, "union": False, "max_rows": 100_000,
                      "max_bytes": 1 << 30, "inline_limit": 262_144}
    empty = ox.Store()
    fixed = _best([f"ASK {{ FILTER({n} > 0) }}" for n in range(1, opts.queries + 1)],
                  empty.query, opts.rounds)
    print(f"Store.query of a trivial ASK on an empty in-memory store: {fixed:.1f} µs per call")
    print("| kind | pyoxigraph alone µs | run_job + frame µs | one worker's cap, queries/s |")
    print("|---|---|---|---|")
    for name in opts.kinds.split(","):
        template = kinds[name].cold[0]
        calls = [template.render(entities[i % len(entities)], NUMBERS_PER_RUN + i)
                 for i in range(opts.queries)]
        graph = template.accept == "text/turtle"
        # the query's own prefixes, which the request process reads and sends with the job
        prefixes = declared_prefixes(calls[0], datagen.BASE_IRI) if graph else None

        def bare(text: str, graph: bool = graph) -> object:
            results = store.query(text, base_iri=datagen.BASE_IRI)
            if graph:
                return results.serialize(format=ox.RdfFormat.TURTLE)  # type: ignore[union-attr]
            return results.serialize(format=ox.QueryResultsFormat.JSON)  # type: ignore[union-attr]

        def _request(text: str, graph: bool = graph,
                     prefixes: dict[str, str] | None = prefixes) -> Job:
            return {"query": text, "format": "turtle" if graph else "json",
                    "default_graph": None, "named_graphs": None, "prefixes": prefixes,
                    "spool": "/nonexistent/spool", "stream": True, "claim": 0}

        def job(text: str) -> bytes:
            return frame(run_job(store, _request(text), config))

        reply = run_job(store, _request(calls[0]), config)
        if reply[0] != "ok" or not reply[1]["size"]:  # an error is no measurement of the query
            raise SystemExit(f"{name}: the worker's answer to the first query was {reply!r}")
        alone, worker = _best(calls, bare, opts.rounds), _best(calls, job, opts.rounds)
        print(f"| {name} | {alone:.1f} | {worker:.1f} | {1e6 / worker:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
