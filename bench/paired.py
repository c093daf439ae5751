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
