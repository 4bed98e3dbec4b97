"""A dataset as a table of tags: one row per element, nested sequences flattened by path.

Paths name an element anywhere in a dataset: ``(0010,0010)`` at the top level,
``(0008,1115)[0].(0008,1140)[1].(0008,1155)`` inside sequence items. :func:`parse_path`
also accepts keywords (``ReferencedSeriesSequence[0].SeriesInstanceUID``) and 8-digit
hexadecimal tags (``00100010``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from pydicom.datadict import keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import Tag

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "BULK_VRS",
    "MAX_VALUE_CHARS",
    "TagRow",
    "format_path",
    "format_tag",
    "is_bulk",
    "parse_path",
    "tag_frame",
    "tag_rows",
]

#: Display values longer than this are truncated with an ellipsis.
MAX_VALUE_CHARS = 120

#: VRs whose values are shown as a ``<VR, N bytes>`` placeholder, never as text.
BULK_VRS = frozenset({"OB", "OW", "OD", "OF", "OL", "OV", "UN", "OB or OW", "OB/OW"})

# Pixel Data, Float / Double Float Pixel Data, Waveform Data, Overlay Data (6000-60FF,3000).
_BULK_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009, 0x54001010})

_NUMERIC_SIZE = {"US": 2, "SS": 2, "UL": 4, "SL": 4, "FL": 4, "FD": 8, "SV": 8, "UV": 8, "AT": 4}

_TOKEN = re.compile(
    r"^(?:\((?P<g>[0-9A-Fa-f]{4}),(?P<e>[0-9A-Fa-f]{4})\)|(?P<hex>[0-9A-Fa-f]{8})"
    r"|(?P<kw>[A-Za-z][A-Za-z0-9]*))(?:\[(?P<i>\d+)\])?$"
)


@dataclass(frozen=True)
class TagRow:
    """One element of a dataset, as a row of the tag table.

    Attributes
    ----------
    path : str
        Full path, e.g. ``(0008,1115)[0].(0008,1140)[1].(0008,1155)``.
    tag : str
        The element's own tag, ``(gggg,eeee)``.
    keyword, name : str
        From pydicom's dictionaries (private dictionaries for private elements); empty
        when unknown.
    vr : str
        Value representation.
    vm : int
        Value multiplicity (number of items for a sequence).
    length : int
        Value length in bytes (text: encoded in UTF-8, approximate for other charsets).
    value : str
        Display form, truncated to about 120 characters with ``…``; bulk data as
        ``<OW, 524288 bytes>``, sequences as ``<3 items>``.
    private_creator : str or None
        The Private Creator of a private element.
    depth : int
        Nesting level, 0 at the top.
    is_meta : bool
        File meta information (group 0002), shown read-only.
    is_sequence : bool
        An SQ element; its items' elements follow it.
    editable : bool
        Whether the table editor may change the value (not meta, bulk or sequences).
    """

    path: str
    tag: str
    keyword: str
    name: str
    vr: str
    vm: int
    length: int
    value: str
    private_creator: str | None
    depth: int
    is_meta: bool
    is_sequence: bool
    editable: bool


def format_tag(tag: int) -> str:
    """Return ``(gggg,eeee)`` for an integer tag."""
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def format_path(parts: list[tuple[int, int | None]]) -> str:
    """Return the canonical path text of parsed parts (inverse of :func:`parse_path`)."""
    out = []
    for tag, index in parts:
        out.append(format_tag(tag) + (f"[{index}]" if index is not None else ""))
    return ".".join(out)


def parse_path(path: str) -> list[tuple[int, int | None]]:
    """Parse an element path into ``[(tag, item index or None), ...]``.

    Parameters
    ----------
    path : str
        ``(0010,0010)``, ``00100010``, ``PatientName`` or nested forms such as
        ``(0008,1115)[0].(0008,1140)[1].(0008,1155)`` or
        ``ReferencedSeriesSequence[0].SeriesInstanceUID``.

    Returns
    -------
    list of (int, int or None)
        One pair per level; every level but the last names a sequence item.

    Raises
    ------
    ValueError
        For an empty path, an unknown keyword or a malformed part.

    Examples
    --------
    >>> parse_path("ReferencedSeriesSequence[0].SeriesInstanceUID")
    [(528661, 0), (2097166, None)]
    """
    if not isinstance(path, str) or not path.strip():
        raise ValueError(f"empty element path: {path!r}")
    return list(_parse_path(path))


@functools.lru_cache(maxsize=4096)
def _parse_path(path: str) -> tuple[tuple[int, int | None], ...]:
    parts: list[tuple[int, int | None]] = []
    for token in path.strip().split("."):
        match = _TOKEN.match(token.strip())
        if match is None:
            raise ValueError(
                f"bad element path part {token!r} in {path!r}: use (gggg,eeee), gggggeeee or "
                "a DICOM keyword, optionally followed by [item index]"
            )
        if match.group("kw"):
            tag = tag_for_keyword(match.group("kw"))
            if tag is None:
                raise ValueError(f"unknown DICOM keyword {match.group('kw')!r} in {path!r}")
        elif match.group("hex"):
            tag = int(match.group("hex"), 16)
        else:
            tag = (int(match.group("g"), 16) << 16) | int(match.group("e"), 16)
        index = match.group("i")
        parts.append((int(tag), int(index) if index is not None else None))
    for tag, index in parts[:-1]:
        if index is None:
            raise ValueError(f"{path!r}: sequence {format_tag(tag)} needs an item index [n]")
    return tuple(parts)


def is_bulk(elem: DataElement) -> bool:
    """Return whether an element holds bulk data (binary VRs, pixel or waveform data)."""
    tag = int(elem.tag)
    return (
        elem.VR in BULK_VRS
        or tag in _BULK_TAGS
        or (0x60000000 <= tag <= 0x60FFFFFF and tag & 0xFFFF == 0x3000)
    )


def _value_length(elem: DataElement) -> int:
    value = elem.value
    if value is None:
        return 0
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if elem.VR == "SQ":
        return 0
    if elem.VR in _NUMERIC_SIZE:
        vm = len(value) if isinstance(value, (list, MultiValue, tuple)) else 1
        return _NUMERIC_SIZE[elem.VR] * vm
    return len(_text(value).encode("utf-8", "replace"))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (MultiValue, list, tuple)):
        return "\\".join(_text(v) for v in value)
    return str(value)


def display_value(elem: DataElement, limit: int = MAX_VALUE_CHARS) -> str:
    """Return an element's display form, truncated to `limit` characters.

    Parameters
    ----------
    elem : pydicom.dataelem.DataElement
        The element.
    limit : int, optional
        Longest text returned; longer values end with ``…``.

    Returns
    -------
    str
        The value as text; bulk data as ``<VR, N bytes>``; sequences as ``<N items>``.
    """
    if elem.VR == "SQ":
        n = len(elem.value or [])
        return f"<{n} item{'s' if n != 1 else ''}>"
    if is_bulk(elem):
        value = elem.value
        if elem.is_undefined_length or (
            isinstance(value, (bytes, bytearray))
            and elem.VR in ("OB", "OW", "OB or OW")
            and value[:4] == b"\xfe\xff\x00\xe0"
        ):
            return f"<{elem.VR}, {_value_length(elem)} bytes, encapsulated>"
        return f"<{elem.VR}, {_value_length(elem)} bytes>"
    if isinstance(elem.value, (bytes, bytearray)):
        return f"<{elem.VR}, {len(elem.value)} bytes>"
    text = _text(elem.value)
    if len(text) > limit:
        return text[: limit - 1] + "…"
    return text


def _vm(elem: DataElement) -> int:
    if elem.VR == "SQ":
        return len(elem.value or [])
    if is_bulk(elem) or isinstance(elem.value, (bytes, bytearray)):
        return 1 if elem.value else 0
    return elem.VM


def _row(elem: DataElement, path: str, depth: int, is_meta: bool) -> TagRow:
    tag = int(elem.tag)
    private = Tag(tag).is_private
    creator = getattr(elem, "private_creator", None) if private else None
    keyword = elem.keyword or ("" if private else keyword_for_tag(tag) or "")
    name = elem.name if (elem.keyword or private) else ""
    if private and name.startswith("[") and name.endswith("]"):
        name = name[1:-1]  # pydicom brackets names from its private dictionaries
    sequence = elem.VR == "SQ"
    return TagRow(
        path=path,
        tag=format_tag(tag),
        keyword=keyword,
        name=name,
        vr=str(elem.VR),
        vm=_vm(elem),
        length=_value_length(elem),
        value=display_value(elem),
        private_creator=creator,
        depth=depth,
        is_meta=is_meta,
        is_sequence=sequence,
        editable=not (is_meta or sequence or is_bulk(elem) or elem.VR == "UN"),
    )


def _walk(ds: Dataset, prefix: str, depth: int, out: list[TagRow], is_meta: bool) -> None:
    for elem in ds:
        path = prefix + format_tag(int(elem.tag))
        out.append(_row(elem, path, depth, is_meta))
        if elem.VR == "SQ" and isinstance(elem.value, DicomSequence):
            for i, item in enumerate(elem.value):
                _walk(item, f"{path}[{i}].", depth + 1, out, is_meta)


def tag_rows(ds: Dataset) -> list[TagRow]:
    """Return every element of `ds` as :class:`TagRow`, depth-first.

    File meta elements (group 0002) come first, read-only. Each sequence row is followed
    by the rows of its items' elements, item by item.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        A dataset (a ``FileDataset`` to include its file meta).

    Returns
    -------
    list of TagRow
        In file order.
    """
    rows: list[TagRow] = []
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        _walk(meta, "", 0, rows, True)
    _walk(ds, "", 0, rows, False)
    return rows


def tag_frame(ds: Dataset) -> pd.DataFrame:
    """Return :func:`tag_rows` as a pandas DataFrame (one column per :class:`TagRow` field).

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The dataset.

    Returns
    -------
    pandas.DataFrame
        Columns ``path``, ``tag``, ``keyword``, ``name``, ``vr``, ``vm``, ``length``,
        ``value``, ``private_creator``, ``depth``, ``is_meta``, ``is_sequence``,
        ``editable``.
    """
    import pandas as pd

    columns = [f.name for f in fields(TagRow)]
    return pd.DataFrame([asdict(r) for r in tag_rows(ds)], columns=columns)
