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

Each widget declares its own request kinds (``BaseWidget._request_kinds``, a mapping of
kind to :class:`Field` rules; :data:`VIEWER_KINDS` above is the viewer's and the default).
The tag editor's are in :mod:`dicomflow_lab.widgets.tag_editor`; the anonymization
panel's are :data:`ANONYMIZE_KINDS` below.

The display pipeline the browser applies is :mod:`dicomflow_lab.core.voi`'s, in PS3.3
order: stored → modality (table or slope/intercept) → VOI (window function, or VOI LUT
table) → 0–255 → MONOCHROME1 inversion XOR the user's ``invert``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = [
    "ANONYMIZE_KINDS",
    "ANONYMIZE_PAGE_LIMIT",
    "MAX_ID",
    "VIEWER_KINDS",
    "Field",
    "Kinds",
    "ProtocolError",
    "Request",
    "error_reply",
    "parse_request",
]

MAX_ID = 2**53 - 1  # ids are JS numbers
_SERIES_KEY = re.compile(r"s[1-9][0-9]{0,5}")
_MISSING = object()


class ProtocolError(ValueError):
    """A message from the front end is malformed; the reply says why."""


@dataclass(frozen=True)
class Field:
    """How one field of a request is validated.

    Parameters
    ----------
    type : {"int", "str", "bool", "str_list", "str_or_null"}
        The JSON type expected (``bool`` is never accepted as an ``int``).
    required : bool, optional
        A missing field is refused (else `default` is used).
    default : Any, optional
        The value of an optional field that is absent.
    min, max : int, optional
        Range of an ``int``.
    max_len : int, optional
        Longest ``str`` (and longest item of a ``str_list``).
    max_items : int, optional
        Most items of a ``str_list``.
    pattern : re.Pattern, optional
        A ``str`` must match it entirely.
    choices : tuple of str, optional
        A ``str`` must be one of them.
    message : str, optional
        The refusal message (default: one built from the rule).
    """

    type: str
    required: bool = True
    default: Any = None
    min: int | None = None
    max: int | None = None
    max_len: int | None = None
    max_items: int | None = None
    pattern: re.Pattern[str] | None = None
    choices: tuple[str, ...] | None = None
    message: str | None = None

    def check(self, name: str, value: Any) -> Any:
        """Return `value` if it satisfies the rule, else raise :class:`ProtocolError`."""
        ok = _CHECKS[self.type](self, value)
        if not ok:
            raise ProtocolError(self.message or f"{name!r} must be {self.describe()}")
        return list(value) if self.type == "str_list" else value

    def describe(self) -> str:
        """Describe the rule in words, for refusal messages."""
        if self.type == "int":
            lo = "" if self.min is None else f" >= {self.min}"
            hi = "" if self.max is None else f" <= {self.max}"
            return f"an integer{lo}{' and' if lo and hi else ''}{hi}"
        if self.type == "bool":
            return "true or false"
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        what = "a string" if self.type == "str" else "a string or null"
        if self.type == "str_list":
            what = f"a list of at most {self.max_items} strings"
        return what + (f" of at most {self.max_len} characters" if self.max_len else "")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(f: Field, v: Any) -> bool:
    return _is_int(v) and (f.min is None or v >= f.min) and (f.max is None or v <= f.max)


def _check_str(f: Field, v: Any) -> bool:
    if not isinstance(v, str):
        return False
    if f.max_len is not None and len(v) > f.max_len:
        return False
    if f.choices is not None and v not in f.choices:
        return False
    return f.pattern is None or f.pattern.fullmatch(v) is not None


def _check_str_list(f: Field, v: Any) -> bool:
    if not isinstance(v, list) or (f.max_items is not None and len(v) > f.max_items):
        return False
    return all(isinstance(x, str) and (f.max_len is None or len(x) <= f.max_len) for x in v)


_CHECKS: dict[str, Callable[[Field, Any], bool]] = {
    "int": _check_int,
    "str": _check_str,
    "bool": lambda _f, v: isinstance(v, bool),
    "str_list": _check_str_list,
    "str_or_null": lambda f, v: v is None or _check_str(f, v),
}

#: A widget's request kinds: ``{kind: {field name: Field}}`` (``id`` is always checked).
Kinds = Mapping[str, Mapping[str, Field]]

_SERIES = Field(
    "str",
    pattern=_SERIES_KEY,
    message='\'series\' must be a series key of this viewer ("s1", "s2", ...)',
)
_INDEX = Field("int", min=0, message="'index' must be a non-negative integer")

#: The viewer's requests (the default of :func:`parse_request` and ``BaseWidget``).
VIEWER_KINDS: Kinds = MappingProxyType(
    {
        "frame": {"series": _SERIES, "index": _INDEX},
        "thumb": {"series": _SERIES},
        "annotations": {"series": _SERIES, "index": _INDEX},
        "overlay": {"series": _SERIES, "index": _INDEX},
    }
)


# -- the anonymization panel (widgets/anonymize_panel.py) -------------------------------
#
# Selections are named by the opaque keys the kernel listed (``"q"`` for the query result
# the panel was opened with, ``"st1"`` ... for studies, ``"se1"`` ... for series), never by
# UID or path. The secret ``key`` only ever travels inside a ``preview`` or ``run``
# request: it is refused by type and length without being echoed, and never enters a
# synced trait. Before/after values of a preview are patient data: ``preview_rows`` sends
# them only when ``values`` is true (the user ticked "show values").
#
#   {"kind": "info", "id"}                      → {"default_out", "templates", "options"}
#   {"kind": "refresh", "id"}                   → {"n_choices"}  (the list in a trait)
#   {"kind": "select", "id", "selection"}       → {"n_files"}
#   {"kind": "template", "id", "base", "json"}  → {"template"}  (TemplateError → ok: false)
#   {"kind": "options", "id", "options"}        → {"template"}
#   {"kind": "preview", "id", "key", "sample"}  → {"total", "counts", "sample", "n_files", "file"}
#   {"kind": "preview_rows", "id", "offset", "limit", "query", "values"}
#                                     → {"rows", "total", "offset"}  (query: never values)
#   {"kind": "run", "id", "key", "out"}         → {"started", "out"}  (progress in traits;
#                                     out "": the workspace's files_dir/anon/<run id>)
#   {"kind": "cancel", "id"}                    → {"cancelled"}
#   {"kind": "report", "id", "section", "offset", "limit"} → {"rows", "total", "out"}

ANONYMIZE_PAGE_LIMIT = 500
_ANON_SELECTION = Field(
    "str",
    pattern=re.compile(r"q|st[1-9][0-9]{0,5}|se[1-9][0-9]{0,5}"),
    message='\'selection\' must be a selection key of this panel ("q", "st1", "se1", ...)',
)
_ANON_KEY = Field(
    "str",
    max_len=1024,
    message="'key' must be a string of at most 1024 characters",
)
_ANON_OFFSET = Field("int", min=0, max=10_000_000)
_ANON_LIMIT = Field("int", min=1, max=ANONYMIZE_PAGE_LIMIT)

#: The anonymization panel's requests and their field rules (see the comment above).
ANONYMIZE_KINDS: Kinds = MappingProxyType(
    {
        "info": {},
        "refresh": {},
        "select": {"selection": _ANON_SELECTION},
        "template": {
            "base": Field("str", max_len=128, pattern=re.compile(r"[A-Za-z0-9_.+-]+")),
            "json": Field("str", required=False, default="", max_len=1_000_000),
        },
        "options": {"options": Field("str_list", max_items=10, max_len=64)},
        "preview": {
            "key": _ANON_KEY,
            "sample": Field("int", required=False, default=0, min=0, max=10_000_000),
        },
        "preview_rows": {
            "offset": _ANON_OFFSET,
            "limit": _ANON_LIMIT,
            "query": Field("str", required=False, default="", max_len=256),
            "values": Field("bool", required=False, default=False),
        },
        "run": {
            "key": _ANON_KEY,
            "out": Field("str", required=False, default="", max_len=4096),
        },
        "cancel": {},
        "report": {
            "section": Field("str", choices=("quarantined", "failed", "warnings", "residual")),
            "offset": Field("int", required=False, default=0, min=0, max=10_000_000),
            "limit": Field("int", required=False, default=100, min=1, max=ANONYMIZE_PAGE_LIMIT),
        },
    }
)


@dataclass(frozen=True)
class Request:
    """A validated request: its kind, correlation id and fields.

    The viewer's ``series`` and ``index`` are attributes; every field (of any widget's
    kinds) is also in :attr:`fields`, and ``request["name"]`` reads one.
    """

    kind: str
    id: int
    series: str = ""
    index: int = 0
    fields: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __getitem__(self, name: str) -> Any:
        return self.fields[name]

    def get(self, name: str, default: Any = None) -> Any:
        """Return a field's value, or `default`."""
        return self.fields.get(name, default)


def parse_request(content: Any, kinds: Kinds | None = None) -> Request:
    """Validate a front-end message.

    Parameters
    ----------
    content : Any
        The message content as received from the comm.
    kinds : mapping, optional
        The widget's request kinds and their field rules (default :data:`VIEWER_KINDS`).
        Fields not named by the kind's rules are ignored.

    Returns
    -------
    Request
        The validated request.

    Raises
    ------
    ProtocolError
        If the kind is unknown or a field is missing, of the wrong type or out of range.
    """
    kinds = VIEWER_KINDS if kinds is None else kinds
    if not isinstance(content, dict):
        raise ProtocolError("a message must be an object")
    kind = content.get("kind")
    if not isinstance(kind, str) or kind not in kinds:
        raise ProtocolError(f"unknown message kind {kind!r}")
    msg_id = content.get("id")
    if not _is_int(msg_id) or not 0 <= msg_id <= MAX_ID:
        raise ProtocolError("'id' must be a non-negative integer")
    values: dict[str, Any] = {}
    for name, rule in kinds[kind].items():
        value = content.get(name, _MISSING)
        if value is _MISSING:
            if rule.required:
                raise ProtocolError(
                    rule.message or f"{name!r} is missing: it must be {rule.describe()}"
                )
            values[name] = rule.default
            continue
        values[name] = rule.check(name, value)
    return Request(
        kind,
        msg_id,
        series=values.get("series", "") if isinstance(values.get("series"), str) else "",
        index=values.get("index", 0) if _is_int(values.get("index")) else 0,
        fields=MappingProxyType(values),
    )


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
