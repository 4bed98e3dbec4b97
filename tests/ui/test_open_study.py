"""The Study summary (dfl.open(..., view=False)) and its thumbnails paint in Chromium."""

from __future__ import annotations

from typing import Any

from tests.ui._harness import JupyterLab, run_notebook, screenshot, wait_for


def test_open_shows_summary_and_thumbnails(page: Any, jupyterlab: JupyterLab, tmp_path) -> None:
    sample = tmp_path / "sample"
    run_notebook(
        page,
        jupyterlab,
        [
            "import dicomflow_lab as dfl\n"
            f"path = dfl.data.sample_study({str(sample)!r}, ct_slices=12, ct_size=128,"
            " mr_slices=4, mr_size=64)",
            "study = dfl.open(path, progress=False, view=False)\nstudy",
        ],
        "open_study",
    )
    study = wait_for(page, '.dfl-study[data-dfl-ready="1"]', state="visible")
    rows = study.locator("table.dfl-series tbody tr")
    assert rows.count() == 2
    text = study.inner_text()
    assert "CT" in text and "MR" in text
    assert "•••" in text  # identifying values hidden by default
    # every thumbnail decoded to a real image in the browser
    sizes = page.eval_on_selector_all(
        "img.dfl-thumb", "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
    )
    assert len(sizes) == 2
    assert all(done and w > 16 and h > 16 for done, w, h in sizes)
    shot = screenshot(page, "open_study")
    assert shot.stat().st_size > 10_000
