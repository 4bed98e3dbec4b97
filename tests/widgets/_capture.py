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


def ask(widget: Any, monkeypatch: pytest.MonkeyPatch, **content: Any) -> dict[str, Any]:
    """Send one request to a widget's router; check it gets exactly one reply; return it."""
    sent = Sent(widget, monkeypatch)
    content.setdefault("id", 1)
    widget._on_message(widget, content, [])
    assert len(sent.messages) == 1, "every request gets exactly one reply"
    reply, buffers = sent.last
    assert reply["kind"] == f"{content['kind']}:reply" and reply["id"] == content["id"]
    assert buffers == []
    return reply
