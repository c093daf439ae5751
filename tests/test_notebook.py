"""notebooks/explore.ipynb runs top to bottom against a live server (nbclient), so it cannot rot."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator

import nbformat
import pytest
from nbclient import NotebookClient

from kg import paths
from tests.server_process import ServerProcess
from tests.workbench_support import ARTIFACTS, serve_workbench

NOTEBOOK = paths.ROOT / "notebooks" / "explore.ipynb"


@pytest.fixture(scope="module")
def wb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from serve_workbench(tmp_path_factory)


@pytest.fixture
def endpoint_env(wb: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> str:
    """The kernel inherits the environment: KG_ENDPOINT points the notebook at the server."""
    url = wb.url + "/sparql"
    monkeypatch.setenv("KG_ENDPOINT", url)
    return url


def test_notebook_executes_against_a_live_server(endpoint_env: str) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert f"endpoint: {endpoint_env}" in text
    assert "EU–Japan Strategic Partnership Agreement" in text
    assert "claims       Int64" in text  # typed columns
    images = [o["data"]["image/png"] for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "notebook-plot.png").write_bytes(base64.b64decode(images[0]))
    nbformat.write(nb, ARTIFACTS / "explore.executed.ipynb")


def test_committed_notebook_has_no_outputs() -> None:
    """Outputs are produced by running it; the committed file stays small and diffable."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert os.path.getsize(NOTEBOOK) < 50_000
