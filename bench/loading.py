"""Load one N-Quads file into the stores each server reads, timing the bulk loads."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.servers import oxigraph_binary

# Runs in a child process so the benchmark process never holds a store (or its memory).
# The clock covers opening the store, the load (oxigraph reads the file itself: `path=`; a
# Python parse fed to bulk_extend was no faster and holds the GIL) and the flush. The
# quads are counted after the clock stops: len() scans the store (~1 s per 10M quads) and
# checks the load, it is not part of it. argv[3] == "lenient" skips oxigraph's IRI and
# literal checks (about 15% less CPU on 10M quads): only for files known to be valid.
_PYOXIGRAPH_LOAD = """
import sys, time, pyoxigraph as ox
lenient = sys.argv[3] == "lenient"
start = time.perf_counter()
store = ox.Store(sys.argv[2])
store.bulk_load(path=sys.argv[1], format=ox.RdfFormat.N_QUADS, lenient=lenient)
store.flush()
seconds = time.perf_counter() - start
print(len(store), seconds)
"""


@dataclass
class LoadResult:
    tool: str
    quads: int
    seconds: float

    @property
    def quads_per_second(self) -> float:
        return self.quads / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, object]:
        return {"tool": self.tool, "quads": self.quads, "seconds": round(self.seconds, 3),
                "quads_per_second": round(self.quads_per_second)}


def _fresh(directory: Path) -> None:
    if directory.exists():
        shutil.rmtree(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)


def load_pyoxigraph(data: Path, store: Path, lenient: bool = False) -> LoadResult:
    """`Store.bulk_load` (what `kg build` and the service use), in a child process.

    Strict parsing by default: the figure is for any N-Quads file, not only trusted ones.
    """
    _fresh(store)
    mode = "lenient" if lenient else "strict"
    out = subprocess.run([sys.executable, "-c", _PYOXIGRAPH_LOAD, str(data), str(store), mode],
                         check=True, capture_output=True, text=True)
    quads, seconds = out.stdout.split()
    tool = "pyoxigraph Store.bulk_load" + (" (lenient)" if lenient else "")
    return LoadResult(tool, int(quads), float(seconds))


def load_oxigraph_cli(data: Path, store: Path, quads: int) -> LoadResult:
    """`oxigraph load` (the CLI's parallel bulk loader)."""
    binary = oxigraph_binary()
    if binary is None:
        raise RuntimeError("the oxigraph CLI is missing: bash bench/install.sh")
    _fresh(store)
    start = time.perf_counter()
    subprocess.run([binary, "load", "--location", str(store), "--file", str(data)],
                   check=True, capture_output=True)
    return LoadResult("oxigraph load (CLI)", quads, time.perf_counter() - start)
