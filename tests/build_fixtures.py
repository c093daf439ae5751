"""Test helpers for the build: throw-away project layouts and settings in tmp directories."""

from __future__ import annotations

import shutil
from pathlib import Path

from kg import paths
from kg.build import Layout
from kg.config import Settings

FIXTURES = Path(__file__).parent / "fixtures"
MINI = FIXTURES / "mini"
BASE = "http://example.org/kg/"


def make_layout(root: Path, corpus: Path = MINI, extraction: bool = True) -> Layout:
    """A KG_HOME-like copy: the real ontology and shapes, the given corpus's data/."""
    shutil.copytree(paths.project_root() / "ontology", root / "ontology")
    shutil.copytree(paths.project_root() / "shapes", root / "shapes")
    (root / "data").mkdir(parents=True)
    shutil.copytree(corpus / "data" / "sources", root / "data" / "sources")
    shutil.copy(corpus / "data" / "documents.yaml", root / "data" / "documents.yaml")
    if extraction:
        shutil.copytree(corpus / "data" / "extraction", root / "data" / "extraction")
    else:
        (root / "data" / "extraction").mkdir()
    return Layout(root)


def make_settings(root: Path) -> Settings:
    return Settings(
        base_iri=BASE, store_path=root / "var" / "store", dumps_dir=root / "var" / "dumps"
    )


def edit(layout: Layout, name: str, old: str, new: str) -> None:
    """Change one extraction file of a tmp layout (never the real corpus)."""
    path = layout.extraction_dir / name
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
