"""The shipped notebooks, executed by nbclient on a real kernel, offline.

Each runs in a temporary copy of its folder, so its downloads land there; the test then
checks the saved outputs: no errors, widget views where widgets belong, and files that
match the bundled sample byte for byte.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nbformat
import pytest
from helpers import file_sha as sha
from nb_kernel import REPO, close_jupyter_loop
from nbclient import NotebookClient

from vidnb import demo

pytestmark = pytest.mark.notebook

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def run(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    # The kernel imports this checkout, whatever is installed.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    shutil.copy(REPO / "notebooks" / name, tmp_path / name)
    nb = nbformat.read(tmp_path / name, as_version=4)
    client = NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    finally:
        close_jupyter_loop()
    return nb


def outputs(cell: nbformat.NotebookNode, kind: str) -> list[dict]:
    return [o["data"][kind] for o in cell.get("outputs", []) if kind in o.get("data", {})]


def models(nb: nbformat.NotebookNode) -> dict[str, dict]:
    """The widget models saved with the notebook: model id -> {model_name, state}."""
    return nb.metadata["widgets"][WIDGET_STATE]["state"]


def cell_with(nb: nbformat.NotebookNode, text: str) -> nbformat.NotebookNode:
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and text in c.source]
    return cell


def test_quickstart_runs_offline_and_saves_the_sample(tmp_path, monkeypatch):
    nb = run("quickstart.ipynb", tmp_path, monkeypatch)
    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.outputs if o["output_type"] == "error"]
    assert errors == []
    assert all(c.execution_count for c in code)

    state = models(nb)
    # Progress bars (tqdm's notebook widget) for the async, sync and background downloads.
    for text in ("await vidnb.download", "download_sync", "vidnb.start"):
        views = outputs(cell_with(nb, text), WIDGET_VIEW)
        assert views, f"no progress widget in the cell with {text}"
        assert all(v["model_id"] in state for v in views)
    shown = outputs(cell_with(nb, "await vidnb.download"), "text/plain")[-1]
    assert "DownloadResult('downloads/sample.mp4', 105.4 KiB, mp4" in shown
    assert "<DownloadTask background.mp4: running" in outputs(cell_with(nb, "vidnb.start"), "text/plain")[-1]

    # The preview is a Video widget carrying the sample's format.
    (view,) = outputs(cell_with(nb, "vidnb.preview(result"), WIDGET_VIEW)
    video = state[view["model_id"]]
    assert video["model_name"] == "VideoModel" and video["state"]["format"] == "mp4"
    assert "all files match the sample" in "".join(o.get("text", "") for o in cell_with(nb, "expected =").outputs)

    folder = tmp_path / "downloads"
    assert sorted(os.listdir(folder)) == ["background.mp4", "sample.mp4", "sample.webm"]
    assert sha(folder / "sample.mp4") == sha(folder / "background.mp4") == demo.sample_sha256("sample.mp4")
    assert sha(folder / "sample.webm") == demo.sample_sha256("sample.webm")


def test_panel_notebook_downloads_through_the_panel(tmp_path, monkeypatch):
    nb = run("panel.ipynb", tmp_path, monkeypatch)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o["output_type"] == "error"]
    assert errors == []
    state = models(nb)
    (view,) = outputs(cell_with(nb, "DownloadPanel("), WIDGET_VIEW)
    panel = state[view["model_id"]]
    assert panel["model_name"] == "VBoxModel" and "vidnb-panel" in panel["state"]["_dom_classes"]
    rows = [m for m in state.values() if "vidnb-row" in m["state"].get("_dom_classes", [])]
    assert len(rows) == 2
    assert "[('done'," in outputs(cell_with(nb, "preview_button.click()"), "text/plain")[0]
    assert "<DownloadPanel 'downloads': 2 done>" in "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert any(m["model_name"] == "VideoModel" for m in state.values())  # the preview
    assert sha(tmp_path / "downloads" / "sample.mp4") == demo.sample_sha256("sample.mp4")
    assert sha(tmp_path / "downloads" / "sample.webm") == demo.sample_sha256("sample.webm")
