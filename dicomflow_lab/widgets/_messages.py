"""The message protocol between the widget front ends (``static/*.js``) and the kernel.

The comm is the security boundary (DESIGN.md §6): every payload from the browser is
validated here before anything is read, and the browser names objects by the keys the kernel
gave it (a series key such as ``"s1"`` and a frame index) — never a file path, and no
UIDs travel in the widget state.

Requests (browser → kernel), sent with ``model.send(content)``::

    {"kind": "frame", "id": 7, "series": "s1", "index": 12}
    {"kind": "thumb", "id": 8, "series": "s1"}
    {"kind": "annotations", "id": 9, "series": "s1", "index": 12}
    {"kind": "overlay", "id": 10, "series": "s1", "index": 12}

Every request gets exactly one reply (kernel → browser), ``kind`` + ``":reply"``, with the
same ``id``::

    {"kind": "frame:reply", "id": 7, "ok": true, "frame": FrameHeader}   buffers: [values]
    {"kind": "thumb:reply", "id": 8, "ok": true, "mime": "image/png"}    buffers: [png]
    {"kind": "annotations:reply", "id": 9, "ok": true, "corners": {"tl": [...], ...}}
    {"kind": "overlay:reply", "id": 10, "ok": true, "overlays": [OverlayHeader, ...]}
                                                          buffers: [mask, ...] (one each)
    {"kind": "<kind>:reply", "id": 7, "ok": false, "error": {"type": "...", "message": "..."}}

``FrameHeader`` describes the raw values in the single buffer (little-endian, row-major,
``rows * columns * samples`` values of ``dtype``)::

    series, index, rows, columns, samples (1 or 3), dtype ("uint8", "int8", "uint16",
    "int16", "uint32", "int32", "float32"), photometric ("MONOCHROME1", "MONOCHROME2",
    "RGB"), bits_stored, signed, is_float, slope, intercept, rescale_type ("HU" or ""),
    modality_lut (null or {"first": int, "table": [float, ...]}), voi_function
    ("LINEAR" | "LINEAR_EXACT" | "SIGMOID"), voi_lut (null or {"first", "bits", "table"}),
    invert (MONOCHROME1), windows ([{"name", "center", "width", "source"}]),
    min, max (stored-value range of this frame), position ([x, y, z] or null),
    orientation ([6 floats] or null), spacing ([row mm, column mm] or null),
    thickness (mm or null), file (the file's base name, for messages),
    overlays (how many overlay planes, 60xx, apply to this frame; null when they could
    not be read — an ``overlay`` request then says why)

``OverlayHeader`` describes one overlay plane (PS3.3 C.9.2) of the frame, in the order of
its group; its buffer holds ``rows * columns`` uint8 values, 1 where the overlay is set
and 0 elsewhere, image-sized (the frame's rows and columns, the plane already placed at
its Overlay Origin)::

    group (0x6000, 0x6002 ...), rows, columns, label (Overlay Label (60xx,1500), else
    Overlay Description (60xx,0022), else "Overlay 6000")

The display pipeline the browser applies is :mod:`dicomflow_lab.core.voi`'s, in PS3.3
order: stored → modality (table or slope/intercept) → VOI (window function, or VOI LUT
table) → 0–255 → MONOCHROME1 inversion XOR the user's ``invert``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_ID", "ProtocolError", "Request", "error_reply", "parse_request"]

MAX_ID = 2**53 - 1  # ids are JS numbers
_KINDS = {
    "frame": ("series", "index"),
    "thumb": ("series",),
    "annotations": ("series", "index"),
    "overlay": ("series", "index"),
}
_SERIES_KEY = re.compile(r"s[1-9][0-9]{0,5}")


class ProtocolError(ValueError):
    """A message from the front end is malformed; the reply says why."""


@dataclass(frozen=True)
class Request:
    """A validated request: its kind, correlation id, series key and frame index."""

    kind: str
    id: int
    series: str
    index: int = 0


def parse_request(content: Any) -> Request:
    """Validate a front-end message.

    Parameters
    ----------
    content : Any
        The message content as received from the comm.

    Returns
    -------
    Request
        The validated request.

    Raises
    ------
    ProtocolError
        If the kind is unknown or a field is missing, of the wrong type or out of range.
    """
    if not isinstance(content, dict):
        raise ProtocolError("a message must be an object")
    kind = content.get("kind")
    if kind not in _KINDS:
        raise ProtocolError(f"unknown message kind {kind!r}")
    msg_id = content.get("id")
    if not isinstance(msg_id, int) or isinstance(msg_id, bool) or not 0 <= msg_id <= MAX_ID:
        raise ProtocolError("'id' must be a non-negative integer")
    series = content.get("series")
    if not isinstance(series, str) or not _SERIES_KEY.fullmatch(series):
        raise ProtocolError('\'series\' must be a series key of this viewer ("s1", "s2", ...)')
    index = 0
    if "index" in _KINDS[kind]:
        index = content.get("index")
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise ProtocolError("'index' must be a non-negative integer")
    return Request(kind, msg_id, series, index)


def error_reply(kind: str, msg_id: Any, exc: BaseException) -> dict[str, Any]:
    """Build the ``{ok: false}`` reply for a failed request.

    Parameters
    ----------
    kind : str
        The request's kind (``"frame"`` ...), or ``"unknown"``.
    msg_id : Any
        The request's id as received (echoed back when it is an integer).
    exc : BaseException
        What went wrong; its message is shown under the widget.

    Returns
    -------
    dict
        The reply content.
    """
    return {
        "kind": f"{kind}:reply",
        "id": msg_id if isinstance(msg_id, int) else None,
        "ok": False,
        "error": {"type": type(exc).__name__, "message": str(exc)},
    }
