"""The inline viewer in Notebook 7's own UI (``jupyter notebook``), not only in JupyterLab.

Notebook 7 is built on JupyterLab's components and loads the same prebuilt extensions
(anywidget's among them); this checks that a notebook opened at ``/notebooks/<name>``
runs on the .venv kernel and that ``dfl.open`` paints the viewer there.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._peers import require_module
from tests.ui._harness import JupyterLab, run_notebook, running_jupyterlab, screenshot, wait_for
from tests.ui.test_viewer import attrs, browser_greys, element_shot, kernel

READY = '.dfl-viewer[data-dfl-ready="1"]'


@pytest.fixture(scope="module")
def notebook7(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterLab]:
    """A Notebook 7 server, isolated like the JupyterLab one, for this module."""
    notebook = require_module("notebook")
    major = int(str(notebook.__version__).split(".")[0])
    if major < 7:
        pytest.skip(f"notebook {notebook.__version__} is installed; these tests need 7.x")
    with running_jupyterlab(tmp_path_factory.mktemp("notebook7"), app="notebook") as server:
        yield server


@pytest.fixture
def nb_page(browser_context: Any, notebook7: JupyterLab) -> Iterator[Any]:
    """A tab of the session's Chromium, logged in to the Notebook 7 server too."""
    # the session's context shares its cookie jar with its request client: one call with
    # the token sets this server's login cookie (named after its port)
    status = browser_context.request.get(
        f"{notebook7.base_url}/api/status", headers=notebook7.auth_headers
    )
    assert status.ok, f"login to Notebook 7 failed: HTTP {status.status}"
    tab = browser_context.new_page()
    try:
        yield tab
    finally:
        tab.close()
        notebook7.shutdown_kernels()


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import dicomflow_lab as dfl

    return Path(
        dfl.data.sample_study(
            tmp_path_factory.mktemp("nb7-sample"), ct_slices=8, ct_size=128, mr_slices=2
        )
    )


def test_viewer_paints_in_notebook7(nb_page: Any, notebook7: JupyterLab, sample: Path) -> None:
    page = nb_page
    run_notebook(
        page,
        notebook7,
        [
            "import dicomflow_lab as dfl",
            f"v = dfl.open({str(sample)!r}, progress=False)\nv",
        ],
        "viewer_nb7",
    )
    # Notebook 7's single-document UI, not JupyterLab's
    assert "/notebooks/viewer_nb7.ipynb" in page.url
    assert page.evaluate("() => window.jupyterapp.name") == "Jupyter Notebook"
    assert page.locator("#main-panel .jp-NotebookPanel").count() == 1

    viewer = wait_for(page, READY, state="visible")
    a = attrs(viewer)
    assert a["dflError"] == ""
    assert (a["dflWc"], a["dflWw"]) == ("40", "400")
    greys = browser_greys(viewer)
    assert greys.shape == (128, 128)
    assert greys.std() > 20, "the image canvas looks blank"
    # the kernel is this interpreter, and Python still drives the view
    assert kernel(page, "import sys; print(sys.executable)").strip() == sys.executable
    kernel(page, "v.frame = 1")
    wait_for(page, '.dfl-viewer[data-dfl-frame="1"]')
    assert browser_greys(viewer).std() > 20
    element_shot(viewer, "notebook7_viewer")
    screenshot(page, "notebook7_page")
