"""Run the notebooks (pytest --nbval-lax) against a throw-away workspace, never ~/."""

from __future__ import annotations

import os
import tempfile


def pytest_configure(config) -> None:
    """Point the notebook kernels at a temporary DICOMFLOW_HOME."""
    os.environ["DICOMFLOW_HOME"] = tempfile.mkdtemp(prefix="dfl-nbval-")
