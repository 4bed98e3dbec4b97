"""The base of every dicomflow_lab panel: strict construction and one message router.

Subclasses declare their request kinds and field rules (``_request_kinds``, default the
viewer's :data:`~dicomflow_lab.widgets._messages.VIEWER_KINDS`) and define
``_handle_<kind>(request) -> (reply, buffers)`` methods; the router validates each
front-end message (:mod:`dicomflow_lab.widgets._messages`), calls the
handler and always answers — with ``ok: false`` and the error's message when it fails,
so the front end can show it under the widget instead of waiting forever.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ClassVar

import anywidget

from dicomflow_lab.errors import DicomflowError
from dicomflow_lab.widgets._messages import (
    VIEWER_KINDS,
    Kinds,
    ProtocolError,
    Request,
    error_reply,
    parse_request,
)

__all__ = ["BaseWidget"]

logger = logging.getLogger(__name__)

Reply = tuple[dict[str, Any], list[bytes | memoryview]]


class BaseWidget(anywidget.AnyWidget):
    """An anywidget with strict keyword arguments and a validated request router."""

    #: The request kinds this widget answers, with their field rules.
    _request_kinds: ClassVar[Kinds] = VIEWER_KINDS

    def __init__(self, **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - set(self.class_trait_names()))
        if unknown:
            known = ", ".join(sorted(n for n in self.class_trait_names() if not n.startswith("_")))
            raise TypeError(
                f"{type(self).__name__} got unexpected argument(s) {unknown}; known: {known}"
            )
        super().__init__(**kwargs)
        self.on_msg(self._on_message)

    def _on_message(self, _widget: Any, content: Any, buffers: list[Any]) -> None:
        kind = content.get("kind", "unknown") if isinstance(content, dict) else "unknown"
        msg_id = content.get("id") if isinstance(content, dict) else None
        try:
            request = parse_request(content, self._request_kinds)
        except ProtocolError as exc:
            logger.warning("refused a malformed %s message: %s", kind, exc)
            self.send(error_reply(str(kind)[:40], msg_id, exc))
            return
        handler: Callable[[Request], Reply] | None = getattr(self, f"_handle_{request.kind}", None)
        if handler is None:
            self.send(error_reply(request.kind, request.id, ProtocolError("not supported here")))
            return
        try:
            reply, out_buffers = handler(request)
        except (DicomflowError, LookupError, ValueError) as exc:
            logger.debug("%s request failed: %s", request.kind, exc)
            self.send(error_reply(request.kind, request.id, exc))
            return
        except Exception as exc:  # a bug: still answer, and log it for the developer
            logger.exception("%s request failed unexpectedly", request.kind)
            self.send(error_reply(request.kind, request.id, exc))
            return
        reply = {"kind": f"{request.kind}:reply", "id": request.id, "ok": True, **reply}
        self.send(reply, out_buffers)
