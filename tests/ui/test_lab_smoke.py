"""JupyterLab opens a generated notebook in Chromium, runs it on the .venv kernel, shows output."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tests.ui._harness import JupyterLab, run_notebook, screenshot, wait_for

MARKER_HTML = '<div class="dfl-smoke" data-dfl-ready="1">hello</div>'
STDOUT = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stdout"]'


def test_notebook_runs_and_displays_output(page: Any, jupyterlab: JupyterLab) -> None:
    run_notebook(
        page,
        jupyterlab,
        [
            f"from IPython.display import HTML\n\nHTML({MARKER_HTML!r})",
            "import sys\n\nimport dicomflow_lab\n\n"
            "print(sys.executable)\nprint(dicomflow_lab.__file__)",
        ],
        "smoke",
    )

    marker = wait_for(page, '.dfl-smoke[data-dfl-ready="1"]', state="visible")
    assert marker.inner_text() == "hello"

    printed = wait_for(page, STDOUT, state="visible").inner_text().split()
    executable, package_file = printed[0], printed[1]
    assert executable == sys.executable
    assert sys.prefix != sys.base_prefix, "tests should run in the project's virtualenv"
    import dicomflow_lab

    assert Path(package_file) == Path(dicomflow_lab.__file__)

    shot = screenshot(page, "lab_smoke")
    assert shot.stat().st_size > 10_000
