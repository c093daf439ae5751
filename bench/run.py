"""The side-by-side benchmark, in one command.

    python -m bench.run [--quick] [--sizes real,1m,10m] [--servers kg,oxigraph,rdflib,inprocess]
                        [--remote oxigraph,virtuoso]

For each size: generate the data (bench.datagen), bulk-load it (timed), then start each server in
turn on a free loopback port, check every query kind answers, drive it with wrk (cold and warm),
probe the competency queries one by one, stream a 1M-row SELECT, and stop it. Servers run one at
a time so they never share the two cores. Results: bench/results/latest.{json,md,png} plus the
scaling plots (bench.report).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path

from bench import buildtime, datagen, loading, paired, probe, remote, report, servers, wrk
from bench.queries import QueryKind, accept_for, build_kinds, cold_variant, with_base

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "results"
WORK_DIR = ROOT / "var" / "bench"
STREAM_ROWS = 1_000_000


@dataclass
class Options:
    quick: bool
    sizes: list[str]
    servers: list[str]
    duration: float
    connections: int
    threads: int
    seed: int
    out: Path
    work: Path
    rdflib_max: int
    build: bool
    build_curve: bool
    competency_runs: int
    stream_rows: int
    scaling: list[str]
    kg_env: dict[str, str]
    source: Path | None
    remote: list[str] = field(default_factory=list)  # "kg@oxigraph", … (bench.remote)


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="tiny data, 1 s per wrk run, no build timing: a smoke run (< 60 s)")
    parser.add_argument("--sizes", help="comma list: real, 10k, 100k, 1m, 10m (default: real,1m;"
                        " --quick: 5k)")
    parser.add_argument("--servers", help="comma list of kg, oxigraph, rdflib, inprocess "
                        "(default: all; --quick: oxigraph,kg)")
    parser.add_argument("--scaling", default="",
                        help="extra sizes for the scaling curves only (e.g. 10k,100k): Oxigraph "
                        "and our service, half the duration, no 1M-row stream")
    parser.add_argument("--duration", type=float, help="seconds per wrk run (default 10; quick 1)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--work", type=Path, default=WORK_DIR, help="data, stores and logs")
    parser.add_argument("--rdflib-max", type=int, default=1_000_000,
                        help="largest store given to rdflib-endpoint (it holds it in memory)")
    parser.add_argument("--no-build", action="store_true", help="skip the `kg build` timings")
    parser.add_argument("--no-build-curve", action="store_true",
                        help="skip build time against the number of documents")
    parser.add_argument("--source", type=Path,
                        help="N-Quads/TriG whose shape is scaled (default: the build's dump, "
                        "else tests/fixtures/sample.trig)")
    parser.add_argument("--kg-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for our service (repeatable)")
    parser.add_argument("--remote", default="", help="comma list of oxigraph, virtuoso: also "
                        "our service over that SPARQL server (rows kg@…; bench/remote.py)")
    args = parser.parse_args(argv)
    quick = args.quick
    sizes = (args.sizes or ("5k" if quick else "real,1m")).split(",")
    names = (args.servers or ("oxigraph,kg" if quick else "oxigraph,kg,inprocess,rdflib"))
    chosen = [s.strip() for s in names.split(",") if s.strip()]
    unknown = set(chosen) - set(servers.SERVER_NAMES)
    if unknown:
        parser.error(f"unknown server(s): {', '.join(sorted(unknown))}")
    env = dict(item.split("=", 1) for item in args.kg_env)
    try:
        remote_names = remote.names([b.strip() for b in args.remote.split(",") if b.strip()])
    except ValueError as exc:
        parser.error(str(exc))
    return Options(
        quick=quick, sizes=[s.strip() for s in sizes if s.strip()], servers=chosen,
        duration=args.duration or (1.0 if quick else 10.0), connections=args.connections,
        threads=args.threads, seed=args.seed, out=args.out, work=args.work,
        rdflib_max=args.rdflib_max, build=not (args.no_build or quick),
        build_curve=not (args.no_build_curve or args.no_build or quick),
        competency_runs=1 if quick else 3, stream_rows=10_000 if quick else STREAM_ROWS,
        scaling=[s.strip() for s in args.scaling.split(",") if s.strip()],
        kg_env=env, source=args.source, remote=remote_names,
    )


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("pyoxigraph", "oxigraph", "rdflib", "rdflib-endpoint", "fastapi", "uvicorn",
                 "kg"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "missing"
    out["wrk"] = "present" if wrk.wrk_binary() else "missing"
    return out


def start(name: str, opts: Options, stores: dict[str, Path], data: Path, quads: int,
          logs: Path) -> servers.Server:
    if name == "oxigraph":
        return servers.start_oxigraph(stores["oxigraph"], logs)
    if name == "kg":
        return servers.start_kg(stores["kg"], logs, datagen.BASE_IRI, extra_env=opts.kg_env)
    if name == "inprocess":
        return servers.start_inprocess(stores["kg"], logs, datagen.BASE_IRI)
    if name.startswith(remote.PREFIX):
        return remote.start_service(name, stores["kg"], logs, datagen.BASE_IRI, opts.kg_env,
                                    opts.work)
    return servers.start_rdflib(data, logs, timeout=max(120.0, quads / 5_000))


def check_kinds(server: servers.Server, kinds: list[QueryKind],
                entity: str) -> dict[str, dict[str, object]]:
    """One cold and one warm request of each kind: status and size, before wrk counts it. Every
    other warm text is requested once too, so a warm row measures repeats, not first runs (over
    a slow backend the competency mix's 37 first runs took most of a 5 s row)."""
    checks: dict[str, dict[str, object]] = {}
    for kind in kinds:
        for mode, templates in (("cold", kind.cold), ("warm", kind.warm)):
            template = templates[0]
            if mode == "warm":
                for other in templates[1:]:
                    probe.get(server, other.render(entity, 0), other.accept, 120)
            answer = probe.get(server, template.render(entity, 123456), template.accept, 120,
                               keep_body=True)
            checks[f"{kind.name}/{mode}"] = {
                "status": answer.status, "bytes": answer.bytes,
                "results": probe.count_results(answer) if answer.status == 200 else None,
                "ms": round(answer.seconds * 1e3, 1),
                "content_type": answer.content_type, "error": answer.error,
            }
    return checks


DRAIN_LIMIT = 60.0
MIX_MAX_MS = 1000.0  # competency queries slower than this alone (on Oxigraph) leave the wrk mix


@dataclass
class SizeState:
    """What the servers of one size share; the competency mix is fixed by the first server."""

    entities: list[str]
    entity: str
    stores: dict[str, Path]
    data: Path
    quads: int
    logs: Path
    competency: dict[str, str]
    kinds: list[QueryKind]
    mix: list[str] | None = None


def run_server(name: str, opts: Options,
               state: SizeState) -> tuple[dict[str, object], list[dict[str, object]]]:
    info: dict[str, object] = {"server": name}
    rows: list[dict[str, object]] = []
    log(f"  starting {name}")
    try:
        server = start(name, opts, state.stores, state.data, state.quads, state.logs)
    except servers.ServerError as exc:
        info["error"] = str(exc)[-3000:]
        log(f"  {name} did not start: {str(exc)[:300]}")
        return info, rows
    mb = 1024 * 1024
    try:
        info["started_in_s"] = round(server.started_in, 2)
        info["rss_idle_mb"] = round(server.rss() / mb, 1)
        if state.competency and not opts.quick:
            log(f"    {name}: each competency query alone")
            latencies = competency_latency(server, state.competency, opts, state.quads)
            info["competency_latency"] = latencies
            if state.mix is None:
                state.mix = [q for q, v in latencies.items() if v["status"] == 200
                             and v["median_ms"] is not None and v["median_ms"] <= MIX_MAX_MS]
                mix = {q: state.competency[q] for q in state.mix}
                state.kinds = build_kinds(datagen.BASE_IRI, state.entity, mix)
        kinds = state.kinds
        info["checks"] = check_kinds(server, kinds, state.entity)
        host, port = server.host_port
        with probe.RssSampler(lambda: server.pid, interval=0.2) as sampler:
            for kind in kinds:
                for mode in ("cold", "warm"):
                    check = info["checks"][f"{kind.name}/{mode}"]  # type: ignore[index]
                    row: dict[str, object] = {"server": name, "kind": kind.name, "mode": mode,
                                              "check_status": check["status"],
                                              "check_results": check["results"]}
                    if mode == "warm":
                        # again right before the row: the cold rows before it may have pushed
                        # these answers out of a cache (kg's is an LRU of 64 MB)
                        for template in kind.warm:
                            probe.get(server, template.render(state.entity, 0), template.accept,
                                      120)
                    try:
                        result = wrk.run(host, port, server.path,
                                         kind.cold if mode == "cold" else kind.warm,
                                         state.entities, mode == "cold", opts.duration,
                                         opts.connections, opts.threads)
                        row.update(result.as_dict())
                    except (wrk.WrkError, OSError, subprocess.TimeoutExpired) as exc:
                        row["error"] = str(exc)[-500:]
                    # requests still queued when wrk stopped must not load the next row: wait
                    # for them, or restart a server that would take too long to work them off
                    row["drain_s"] = round(servers.drain(server, limit=DRAIN_LIMIT), 2)
                    if server.process.poll() is not None:
                        row["error"] = f"server died: {server.log_tail(500)}"
                    elif row["drain_s"] >= DRAIN_LIMIT:
                        log(f"    {name}: backlog not worked off in {DRAIN_LIMIT:.0f} s; restart")
                        server.stop()
                        server = start(name, opts, state.stores, state.data, state.quads,
                                       state.logs)
                        row["restarted_after"] = True
                    rows.append(row)
                    log(f"    {name:9} {kind.name:10} {mode}: {row.get('rps', '-')} req/s, "
                        f"p50 {row.get('p50_ms', '-')} ms, p99 {row.get('p99_ms', '-')} ms, "
                        f"errors {row.get('errors', row.get('error', '-'))}")
                    if server.process.poll() is not None:
                        raise servers.ServerError(f"{name} died")
        info["rss_peak_wrk_mb"] = round(sampler.peak / mb, 1)
        info["conditional"] = probe.conditional(
            server, kinds[0].warm[0].render(state.entity, 0), kinds[0].warm[0].accept)
        rows_wanted = min(opts.stream_rows, state.quads)
        if rows_wanted:
            log(f"    {name}: streaming a SELECT of {rows_wanted} rows")
            info["stream"] = probe.stream_rows(server, rows_wanted, timeout=300).as_dict()
            if name == "kg":  # the same SELECT again: what grows once the worker has read the
                # store (reported beside the first, which alone is judged)
                info["stream_again"] = probe.stream_rows(server, rows_wanted,
                                                         timeout=300).as_dict()
        info["rss_end_mb"] = round(server.rss() / mb, 1)
    except Exception as exc:  # a failing server is a result, not a crash of the benchmark
        info["error"] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()[-1500:]}"
        log(f"  {name} failed: {exc}")
    finally:
        server.stop()
    return info, rows


def competency_latency(server: servers.Server, competency: dict[str, str], opts: Options,
                       quads: int, budget: float = 240.0) -> dict[str, dict[str, object]]:
    """Each competency query alone (median of distinct cold variants), within a time budget."""
    runs = opts.competency_runs if quads < 5_000_000 else 1
    out: dict[str, dict[str, object]] = {}
    deadline = time.monotonic() + budget
    for stem, text in competency.items():
        if time.monotonic() > deadline:
            out[stem] = {"status": None, "median_ms": None, "error": "skipped: time budget"}
            continue
        variant = cold_variant(with_base(text, datagen.BASE_IRI))
        out[stem] = probe.latency(server, lambda i, v=variant: v.replace("{n}", str(900_000 + i)),
                                  accept_for(text), runs=runs)
        if out[stem]["status"] != 200:
            servers.drain(server)
    return out


def run_size(label: str, opts: Options, source: datagen.Source,
             scaling: bool = False) -> dict[str, object]:
    if scaling:
        opts = replace(opts, servers=[n for n in opts.servers if n in ("oxigraph", "kg")],
                       duration=max(2.0, opts.duration / 2), stream_rows=0)
    size_started = time.perf_counter()
    target = datagen.parse_size(label)
    log(f"size {label}: generating data")
    t0 = time.perf_counter()
    data = datagen.generate(source, target, opts.work / "data", opts.seed)
    quads = datagen.count_lines(data)
    entities = datagen.sample_entities(data, datagen.BASE_IRI, seed=opts.seed)
    result: dict[str, object] = {"size": label, "quads": quads, "data": str(data),
                                 "scaling_only": scaling,
                                 "generate_s": round(time.perf_counter() - t0, 2),
                                 "entities_sampled": len(entities)}
    store_root = opts.work / "stores" / label
    stores = {"kg": store_root / "kg" / "store", "oxigraph": store_root / "oxigraph"}
    loads = []
    wanted = set(opts.servers)
    if wanted & {"kg", "inprocess"} or opts.remote:
        log(f"size {label}: {quads} quads; bulk-loading with pyoxigraph")
        loads.append(loading.load_pyoxigraph(data, stores["kg"]).as_dict())
        shutil.rmtree(store_root / "kg" / "snapshots", ignore_errors=True)
    if "oxigraph" in wanted:
        log(f"size {label}: loading with `oxigraph load`")
        loads.append(loading.load_oxigraph_cli(data, stores["oxigraph"], quads).as_dict())
    result["loads"] = loads
    entity = datagen.typical_entity(data, entities)
    result["warm_entity"] = entity
    competency = {p.stem: p.read_text(encoding="utf-8")
                  for p in sorted((ROOT / "queries").glob("*.rq"))}
    state = SizeState(entities, entity, stores, data, quads, opts.work / "logs" / label,
                      competency, build_kinds(datagen.BASE_IRI, entity, competency))
    infos: dict[str, object] = {}
    rows: list[dict[str, object]] = []
    # Oxigraph first: it is the reference, and its per-query latencies fix the competency mix
    order = sorted(opts.servers, key=lambda n: n != "oxigraph") + opts.remote
    for name in order:
        if name in ("rdflib", "inprocess") and quads > opts.rdflib_max:
            why = ("rdflib holds the graph in Python objects" if name == "rdflib"
                   else "the isolation baseline is measured on the smaller stores")
            infos[name] = {"server": name, "skipped": f"{quads} quads > --rdflib-max "
                           f"{opts.rdflib_max}: {why}"}
            continue
        info, server_rows = run_server(name, opts, state)
        infos[name] = info
        rows.extend(server_rows)
    if {"oxigraph", "kg"} <= wanted and not scaling:
        rounds = 1 if opts.quick else paired.ROUNDS
        log(f"size {label}: cold small queries, Oxigraph and kg in turn ({rounds} rounds)")
        result["paired"] = paired.measure(
            lambda name: start(name, opts, stores, data, quads, state.logs),
            [k for k in state.kinds if k.small], entities, rounds=rounds,
            duration=opts.duration, connections=opts.connections, threads=opts.threads,
            drain_limit=DRAIN_LIMIT)
        for kind, entry in result["paired"]["kinds"].items():
            log(f"    paired {kind:10} kg/oxigraph per round: "
                + ", ".join(f"{r:.2f}" for r in entry["ratios"]))
    if opts.remote:
        result["remote_backends"] = remote.stop_all()
    result["competency_mix"] = state.mix if state.mix is not None else list(competency)
    result["competency_left_out"] = sorted(set(competency) - set(result["competency_mix"]))
    result["servers"] = infos
    result["rows"] = rows
    result["kinds"] = {k.name: k.description for k in state.kinds}
    result["wall_s"] = round(time.perf_counter() - size_started, 1)
    return result


def run_builds(opts: Options) -> dict[str, object]:
    log("timing `kg build` of the real graph")
    runs = [buildtime.run_build(ROOT, opts.work / "build" / f"real-{i}") for i in range(3)]
    ok = [r for r in runs if r["ok"]]
    real = dict(sorted(ok, key=lambda r: r["seconds"])[len(ok) // 2] if ok else runs[-1])
    real["runs_s"] = [r["seconds"] for r in runs]
    out: dict[str, object] = {"real": real}
    if opts.build_curve:
        log("timing `kg build` against the number of documents")
        out["curve"] = buildtime.build_curve(ROOT, opts.work / "build" / "curve")
    return out


def choose_source(opts: Options, build: dict[str, object]) -> datagen.Source:
    if opts.source:
        return datagen.Source(opts.source)
    real = build.get("real") if build else None
    if isinstance(real, dict) and real.get("ok") and real.get("dump"):
        return datagen.Source(Path(str(real["dump"])))
    return datagen.default_source(ROOT)


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    if wrk.wrk_binary() is None:
        print("wrk is missing: run `bash bench/install.sh`", file=sys.stderr)
        return 2
    started = time.time()
    opts.work.mkdir(parents=True, exist_ok=True)
    results: dict[str, object] = {
        "meta": {
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                        "memory_gb": round(_memory_gb(), 1)},
            "versions": versions(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "settings": {"quick": opts.quick, "duration_s": opts.duration,
                         "connections": opts.connections, "threads": opts.threads,
                         "seed": opts.seed, "servers": opts.servers, "sizes": opts.sizes,
                         "scaling_sizes": opts.scaling,
                         "kg_env": opts.kg_env},
        },
    }
    build = run_builds(opts) if opts.build else {}
    results["build"] = build
    source = choose_source(opts, build)
    results["meta"]["source"] = str(source.path)  # type: ignore[index]
    log(f"shape source: {source.path}")
    results["sizes"] = [run_size(label, opts, source, scaling=True) for label in opts.scaling]
    results["sizes"] += [run_size(label, opts, source) for label in opts.sizes]
    results["meta"]["wall_s"] = round(time.time() - started, 1)  # type: ignore[index]
    results["meta"]["load_average_at_end"] = [  # type: ignore[index]
        round(x, 2) for x in os.getloadavg()]
    paths = report.write(results, opts.out)
    if opts.remote:  # the backends' publish time and memory, after the tables
        with Path(paths[0]).with_suffix(".md").open("a", encoding="utf-8") as md:
            md.write(remote.markdown(results) + "\n")
    for path in paths:
        log(f"wrote {path}")
    print(Path(paths[0]).with_suffix(".md").read_text(encoding="utf-8"))
    return 0


def _memory_gb() -> float:
    import psutil
    return psutil.virtual_memory().total / 1024**3


if __name__ == "__main__":
    raise SystemExit(main())
