"""`kg build` wall time: the real graph, and against the number of source documents.

Each build runs in a child process (`kg build`) with its store and dumps in a scratch folder, so
the checkout's var/ is never touched. The document-count curve builds subsets of data/: a scratch
KG_HOME holding the first n documents (sources, metadata, extraction files) with ontology/,
shapes/ and queries/ linked; a subset the build rejects (a document whose extraction depends on
another's) is reported as failed, not hidden.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

KG = [sys.executable, "-c", "from kg.cli import app; app()"]


def run_build(home: Path, out: Path, timeout: float = 600) -> dict[str, object]:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    env = {**os.environ, "KG_HOME": str(home), "KG_STORE_PATH": str(out / "store"),
           "KG_DUMPS_DIR": str(out / "dumps")}
    start = time.perf_counter()
    proc = subprocess.run([*KG, "build"], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=home)
    seconds = time.perf_counter() - start
    dump = out / "dumps" / "kg.nq"
    quads = sum(1 for _ in dump.open(encoding="utf-8")) if dump.is_file() else 0
    ok = proc.returncode == 0 and quads > 0
    return {
        "ok": ok,
        "seconds": round(seconds, 2),
        "quads": quads,
        "dump": str(dump) if ok else None,
        "error": "" if ok else (proc.stdout + proc.stderr)[-1500:],
    }


def _document_stems(root: Path) -> list[str]:
    return sorted(p.stem for p in (root / "data" / "sources").glob("*.txt"))


def subset_home(root: Path, target: Path, n: int) -> Path:
    """A scratch KG_HOME with the first `n` documents of `root`."""
    if target.exists():
        shutil.rmtree(target)
    (target / "data").mkdir(parents=True)
    for name in ("ontology", "shapes", "queries"):
        if (root / name).exists():
            (target / name).symlink_to((root / name).resolve())
    stems = _document_stems(root)[:n]
    sources = target / "data" / "sources"
    sources.mkdir()
    for stem in stems:
        shutil.copy2(root / "data" / "sources" / f"{stem}.txt", sources / f"{stem}.txt")
    extraction = target / "data" / "extraction"
    extraction.mkdir()
    for path in sorted((root / "data" / "extraction").glob("*")):
        if any(path.name.startswith(stem) for stem in stems) or not re.match(r"\d{3}_", path.name):
            shutil.copy2(path, extraction / path.name)
    meta_path = root / "data" / "documents.yaml"
    if meta_path.is_file():
        meta = yaml.safe_load(meta_path.read_text(encoding="utf-8")) or {}
        docs = [d for d in meta.get("documents", []) if Path(d.get("file", "")).stem in stems]
        meta["documents"] = docs
        (target / "data" / "documents.yaml").write_text(yaml.safe_dump(meta, sort_keys=False),
                                                        encoding="utf-8")
    return target


def build_curve(root: Path, scratch: Path) -> list[dict[str, object]]:
    points = []
    total = len(_document_stems(root))
    for n in range(1, total + 1):
        home = subset_home(root, scratch / f"home-{n}", n)
        result = run_build(home, scratch / f"out-{n}")
        result.pop("dump", None)
        points.append({"documents": n, **result})
    return points
