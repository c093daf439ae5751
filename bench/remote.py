"""Our service in front of a remote SPARQL server (issue 6, item 5): rows `kg@oxigraph` and
`kg@virtuoso` beside the others.

    python -m bench.run --remote oxigraph,virtuoso --servers oxigraph,kg --sizes real \\
        --no-build --out bench/results/remote --work var/bench-remote

For each size the backend is started once, on a fresh database (the start-up of
tests/remote_servers.py: `oxigraph serve` from PyPI, or Debian's Virtuoso 7.2 with the test
configuration: MaxQueryExecutionTime 10 s, 10 HTTP threads), the size's pyoxigraph store is
loaded into it with `kg publish` (timed), and the `kg@…` row is our service (servers.start_kg,
default settings) with KG_STORE_URL pointing at it. bench.run then measures it like any other
server; the backend is stopped when the size is done (`stop_all`, which reports the publish
time and the backend's resident memory: the service row's RSS is the web tier's alone). A
publish counts as verified when `kg publish` exits 0: on Virtuoso that includes the value-equal
literals it stores as one triple (README, Backends), which are kept in the results by name.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench import servers

PREFIX = "kg@"
BACKENDS = ("oxigraph", "virtuoso")
KG_CLI = str(Path(sys.executable).parent / "kg")
MERGED = "merged by the backend"  # kg.store.publish's progress line for each merge


@dataclass
class Deployed:
    store: Path
    backend: object  # tests.remote_servers.Backend
    publish_s: float
    publish_ok: bool
    publish_tail: str
    publish_merges: list[str]  # the literals the backend stores as one ("merged by the backend")


_deployed: dict[str, Deployed] = {}


def names(backends: list[str]) -> list[str]:
    unknown = set(backends) - set(BACKENDS)
    if unknown:
        raise ValueError(f"unknown remote backend(s): {', '.join(sorted(unknown))}")
    return [PREFIX + b for b in backends]


def _deploy(backend_name: str, store: Path, base_iri: str, work: Path) -> Deployed:
    from tests.remote_servers import start_oxigraph, start_virtuoso

    starter = start_oxigraph if backend_name == "oxigraph" else start_virtuoso
    workdir = (work / "remote" / f"{backend_name}-{int(time.time())}").resolve()
    try:
        backend = starter(workdir)
    except (RuntimeError, AssertionError) as exc:  # reported as a row that did not start
        raise servers.ServerError(f"{backend_name} backend: {exc}") from exc
    started = time.perf_counter()
    run = subprocess.run(
        [KG_CLI, "publish"], capture_output=True, text=True, timeout=3600,
        env={**os.environ, **backend.env, "KG_STORE_PATH": str(store), "KG_BASE_IRI": base_iri})
    seconds = time.perf_counter() - started
    tail = (run.stdout + run.stderr)[-600:]
    merges = [line for line in run.stderr.splitlines() if line.startswith(MERGED)]
    return Deployed(store, backend, round(seconds, 2), run.returncode == 0, tail, merges)


def start_service(name: str, store: Path, logs: Path, base_iri: str,
                  extra_env: dict[str, str], work: Path) -> servers.Server:
    """Our service over the named backend, deployed (and published) on first use per store."""
    backend_name = name.removeprefix(PREFIX)
    deployed = _deployed.get(backend_name)
    if deployed is None or deployed.store != store:
        if deployed is not None:
            deployed.backend.stop()  # type: ignore[attr-defined]
        deployed = _deployed[backend_name] = _deploy(backend_name, store, base_iri, work)
    env = {**deployed.backend.env, **extra_env}  # type: ignore[attr-defined]
    server = servers.start_kg(store, logs, base_iri, extra_env=env)
    server.name = name
    return server


def stop_all() -> dict[str, dict[str, object]]:
    """Stop every backend; what was measured of each (publish time, resident memory)."""
    report: dict[str, dict[str, object]] = {}
    for backend_name, deployed in list(_deployed.items()):
        process = deployed.backend.process  # type: ignore[attr-defined]
        report[PREFIX + backend_name] = {
            "publish_s": deployed.publish_s,
            "publish_ok": deployed.publish_ok,
            "publish_tail": None if deployed.publish_ok else deployed.publish_tail,
            "publish_merges": deployed.publish_merges,
            "backend_rss_mb": round(servers.tree_rss(process.pid) / 1024 / 1024, 1),
        }
        deployed.backend.stop()  # type: ignore[attr-defined]
        del _deployed[backend_name]
    return report


def markdown(results: dict[str, object]) -> str:
    """The remote backends' own figures, per size (appended to latest.md by bench.run)."""
    lines: list[str] = []
    for size in results.get("sizes", []):  # type: ignore[union-attr]
        backends = size.get("remote_backends") or {}
        if not backends:
            continue
        lines += ["", f"Remote backends, store `{size['size']}`:", "",
                  "| service row | `kg publish` s | publish verified | backend RSS MB |",
                  "|---|---|---|---|"]
        for name, info in backends.items():
            merges = len(info.get("publish_merges") or [])
            verified = ("no (see latest.json)" if not info["publish_ok"] else
                        f"yes, {merges} merges of value-equal literals (latest.json)" if merges
                        else "yes")
            lines.append(f"| {name} | {info['publish_s']} | {verified} | "
                         f"{info['backend_rss_mb']} |")
    return "\n".join(lines)
