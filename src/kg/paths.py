"""Where the project's inputs live; found relative to the checkout (or KG_HOME), never absolute."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The checkout holding ontology/, shapes/, data/ and queries/ (KG_HOME overrides)."""
    env = os.environ.get("KG_HOME")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parents[2]


ROOT = project_root()
ONTOLOGY_DIR = ROOT / "ontology"
SHAPES_DIR = ROOT / "shapes"
DATA_DIR = ROOT / "data"
SOURCES_DIR = DATA_DIR / "sources"
EXTRACTION_DIR = DATA_DIR / "extraction"
DOCUMENTS_FILE = DATA_DIR / "documents.yaml"
QUERIES_DIR = ROOT / "queries"
VAR_DIR = ROOT / "var"
