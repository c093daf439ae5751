"""Cold small queries measured in pairs: Oxigraph and kg up at once, driven in turn.

Why: a size's main table measures each server once per row, minutes apart, and Oxigraph's own
cold rate moved by ±20 % between runs on this machine, and every ratio with it. Here both
servers run at the same time (the idle one costs nothing), and each round drives Oxigraph and
kg one after the other on the same cold templates (kg first in every other round, so a drift of
the machine favours neither); a round's ratio compares two measurements seconds apart. The
cold small-query target is judged on the median of the rounds' ratios (bench.report).

Every run of a kind against a server gets its own range of query numbers (`wrk.run`'s
`offset`): a round must not repeat the texts of an earlier one, which kg's cache would answer.
"""

from __future__ import annotations

import statistics
import subprocess
from collections.abc import Callable
from typing import Any

from bench import servers, wrk
from bench.queries import QueryKind

PAIR = ("oxigraph", "kg")
ROUNDS = 3
NUMBERS_PER_RUN = 5_000_000  # per wrk thread: far more requests than one run makes


def measure(start: Callable[[str], servers.Server], kinds: list[QueryKind],
            entities: list[str], *, rounds: int, duration: float, connections: int,
            threads: int, drain_limit: float) -> dict[str, Any]:
    """Per kind: each server's req/s and the kg/Oxigraph ratio of every round, and medians."""
    if rounds * len(kinds) * NUMBERS_PER_RUN > wrk.MAX_OFFSET:
        raise ValueError(f"{rounds} rounds of {len(kinds)} kinds: too many runs for distinct "
                         "query numbers")
    running: dict[str, servers.Server] = {}
    out: dict[str, Any] = {"rounds": rounds, "duration_s": duration, "kinds": {}}
    try:
        for name in PAIR:
            running[name] = start(name)
        for number in range(rounds):
            order = PAIR if number % 2 == 0 else PAIR[::-1]
            for index, kind in enumerate(kinds):
                entry = out["kinds"].setdefault(kind.name, {"oxigraph": [], "kg": [],
                                                            "ratios": [], "errors": []})
                rates: dict[str, float] = {}
                for name in order:
                    server = running[name]
                    host, port = server.host_port
                    try:
                        result = wrk.run(host, port, server.path, kind.cold, entities, True,
                                         duration, connections, threads,
                                         offset=(number * len(kinds) + index) * NUMBERS_PER_RUN)
                    except (wrk.WrkError, OSError, subprocess.TimeoutExpired) as exc:
                        entry["errors"].append(f"{name}, round {number + 1}: {str(exc)[-300:]}")
                        continue
                    servers.drain(server, limit=drain_limit)
                    if result.errors:
                        entry["errors"].append(f"{name}, round {number + 1}: {result.errors} "
                                               "errors")
                    rates[name] = result.rps
                    entry[name].append(result.rps)
                if rates.get("oxigraph") and "kg" in rates:
                    entry["ratios"].append(rates["kg"] / rates["oxigraph"])
    except servers.ServerError as exc:
        out["error"] = str(exc)[-2000:]
    finally:
        for server in running.values():
            server.stop()
    for entry in out["kinds"].values():
        for key in ("oxigraph", "kg", "ratios"):
            values = entry[key]
            entry[f"{key}_median"] = statistics.median(values) if values else None
    return out


def main(argv: list[str] | None = None) -> int:
    """Paired rounds alone, on a store a full `bench.run` left in var/bench: to judge one
    change in minutes instead of a 23-minute run (the run's own rows come from `measure`)."""
    import argparse
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench import datagen, queries

    parser = argparse.ArgumentParser(description="Cold small queries, Oxigraph and kg in turn.")
    parser.add_argument("--size", default="real", help="a size a full run has built (real, 1m..)")
    parser.add_argument("--kinds", default="point,join,construct")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting for kg serve, e.g. KG_QUERY_RESERVE_WORKERS=0")
    parser.add_argument("--work", type=Path, default=servers.ROOT / "var" / "bench")
    opts = parser.parse_args(argv)
    stores = opts.work / "stores" / opts.size
    entities, kinds = queries.of_run(opts.work, opts.size)
    env = dict(item.split("=", 1) for item in opts.env)
    logs = opts.work / "logs" / "paired"

    def start(name: str) -> servers.Server:
        if name == "oxigraph":
            return servers.start_oxigraph(stores / "oxigraph", logs)
        return servers.start_kg(stores / "kg" / "store", logs, datagen.BASE_IRI, extra_env=env)

    out = measure(start, [kinds[name] for name in opts.kinds.split(",")], entities,
                  rounds=opts.rounds, duration=opts.duration, connections=16, threads=2,
                  drain_limit=60.0)
    for name, entry in out["kinds"].items():
        rounds = ", ".join(f"{kg:,.0f}/{ox:,.0f} = {r:.2f}" for kg, ox, r in zip(
            entry["kg"], entry["oxigraph"], entry["ratios"], strict=False))
        median = entry["ratios_median"]
        shown = f"{median:.2f}" if median is not None else "—"
        print(f"{name:10} median {shown}×  (kg/oxigraph req/s per round: {rounds})"
              + (f"  errors: {entry['errors']}" if entry["errors"] else ""))
    if "error" in out:
        print(out["error"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
