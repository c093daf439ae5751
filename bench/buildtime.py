"""`kg build` wall time: the real graph, and against the number of source documents.

Each build runs in a child process (`kg build`) with its store and dumps in a scratch folder, so
the checkout's var/ is never touched. The document-count curve builds a scratch KG_HOME holding
the curated extraction of the first n documents only, with ontology/, shapes/, queries/ linked.
Every source text stays (segmentation and the mention scan still cover all of them): the build
checks that each curated label occurs in some source, so dropping source texts makes it refuse
the subset. A subset the build rejects is reported as failed, not hidden.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

KG = [sys.executable, "-c", "from kg.cli import app; app()"]


def run_build(home: Path, out: Path, timeout: float = 600) -> dict[str, object]:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    env = {**os.environ, "KG_HOME": str(home), "KG_STORE_PATH": str(out / "store"),
           "KG_DUMPS_DIR": str(out / "dumps")}
    load1 = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([*KG, "build"], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=home)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    dump = out / "dumps" / "kg.nq"
    quads = sum(1 for _ in dump.open(encoding="utf-8")) if dump.is_file() else 0
    ok = proc.returncode == 0 and quads > 0
    return {
        "ok": ok,
        "seconds": round(seconds, 2),
        # CPU time of the build (all its threads) and the 1-minute load average before it:
        # on a shared machine wall time swings with other work, CPU time much less.
        "cpu_s": round(cpu, 2),
        "load1": round(load1, 2),
        "quads": quads,
        "dump": str(dump) if ok else None,
        "error": "" if ok else (proc.stdout + proc.stderr)[-1500:],
    }


def _document_stems(root: Path) -> list[str]:
    return sorted(p.stem for p in (root / "data" / "sources").glob("*.txt"))


def subset_home(root: Path, target: Path, n: int) -> Path:
    """A scratch KG_HOME with the curated extraction of the first `n` documents of `root`."""
    if target.exists():
        shutil.rmtree(target)
    (target / "data").mkdir(parents=True)
    for name in ("ontology", "shapes", "queries"):
        if (root / name).exists():
            (target / name).symlink_to((root / name).resolve())
    shutil.copytree(root / "data" / "sources", target / "data" / "sources")
    if (root / "data" / "documents.yaml").is_file():
        shutil.copy2(root / "data" / "documents.yaml", target / "data" / "documents.yaml")
    stems = _document_stems(root)[:n]
    extraction = target / "data" / "extraction"
    extraction.mkdir()
    for path in sorted((root / "data" / "extraction").glob("*")):
        if any(path.name.startswith(stem) for stem in stems) or not re.match(r"\d{3}_", path.name):
            shutil.copy2(path, extraction / path.name)
    return target


def build_curve(root: Path, scratch: Path) -> list[dict[str, object]]:
    points = []
    total = len(_document_stems(root))
    for n in range(total + 1):
        home = subset_home(root, scratch / f"home-{n}", n)
        result = run_build(home, scratch / f"out-{n}")
        result.pop("dump", None)
        points.append({"documents": n, "sources": total, **result})
    return points
