"""Fixtures for the real-browser tests; the harness itself lives in ``_harness.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ui._harness import UI_DIR, browser_context, jupyterlab, page  # noqa: F401


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test collected under ``tests/ui`` as ``ui`` and ``peer``."""
    for item in items:
        if UI_DIR in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.ui)
            item.add_marker(pytest.mark.peer)
