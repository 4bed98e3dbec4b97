"""Capture what a widget sends to its front end (for router tests without a browser)."""

from __future__ import annotations

from typing import Any

import pytest


class Sent:
    """Replace ``widget.send`` for the test and keep every (content, buffers) sent."""

    def __init__(self, widget: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.messages: list[tuple[dict[str, Any], list[Any]]] = []
        monkeypatch.setattr(
            widget,
            "send",
            lambda content, buffers=None: self.messages.append((content, list(buffers or []))),
        )

    @property
    def last(self) -> tuple[dict[str, Any], list[Any]]:
        """The most recent message."""
        return self.messages[-1]
