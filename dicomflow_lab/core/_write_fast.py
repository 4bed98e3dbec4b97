"""Top-level edits of a file's bytes without a full pydicom parse (the batch fast path).

:func:`dicomflow_lab.core._write.splice` needs a pydicom read of the whole file to know
where each top-level element starts; that read (≈0.5 ms for a CT file) is most of the
cost of a batch edit. This module finds the same positions with a ``struct`` walk over
the top-level elements (:func:`scan_layout`), then validates the edits with the very same
code as the pydicom path (:func:`~dicomflow_lab.core.edit.apply_edits` on a dataset that
holds only the raw elements the edits read: the touched ones and Specific Character
Set, decoded by pydicom as a full read would) and encodes the new elements with
pydicom's ``write_data_element``. Every other byte is the original's.

It declines (returns ``None``, and the caller takes the pydicom path) whenever the
outcome could differ from that path: anything but plain Part-10 little-endian files
with a known transfer syntax, an encoding that disagrees with it, tags out of order,
undefined-length values other than sequences and encapsulated Pixel Data, trailing or
truncated bytes, group lengths in a touched group, and edits other than ``set`` /
``add`` / ``delete`` of standard top-level elements with one unambiguous VR (no
sequences, bulk data, file meta, character set or SOP UIDs). That both paths write the
same bytes is tested on pydicom's bundled files (``tests/core/test_write_fast.py``).
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydicom.charset import convert_encodings
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.tag import BaseTag
from pydicom.uid import UID
from pydicom.valuerep import EXPLICIT_VR_LENGTH_16, EXPLICIT_VR_LENGTH_32

from dicomflow_lab.core.edit import Change, Edit, apply_edits
from dicomflow_lab.core.tags import parse_path

__all__ = ["Layout", "fast_edit", "fast_tags", "scan_layout"]

_CHARSET = 0x00080005
_PIXEL_DATA = 0x7FE00010
_SOP_UIDS = frozenset({0x00080016, 0x00080018})
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_MAX_DEPTH = 32
_CACHE_LIMIT = 4096
# the VRs with a 4-byte length in explicit VR (PS3.5 7.1.2), as pydicom reads them
_LONG_VRS = frozenset(str(vr).encode("ascii") for vr in EXPLICIT_VR_LENGTH_32)
_KNOWN_VRS = _LONG_VRS | frozenset(str(vr).encode("ascii") for vr in EXPLICIT_VR_LENGTH_16)
_NOT_VALUES = frozenset({"SQ", "OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_u16 = struct.Struct("<H").unpack_from
_u32 = struct.Struct("<L").unpack_from
_tag_u16 = struct.Struct("<HH").unpack_from
_explicit_head = struct.Struct("<HH2sH").unpack_from
_implicit_head = struct.Struct("<HHL").unpack_from


class _Decline(Exception):
    """The file or the edits need the pydicom path."""


@dataclass(frozen=True)
class Layout:
    """Where each top-level element of a Part-10 file starts.

    Attributes
    ----------
    implicit : bool
        Implicit VR little endian (else explicit VR little endian).
    tags : list of int
        Top-level data set tags (file meta excluded), ascending.
    starts : list of int
        Byte offset of each element's tag; one more entry, the file's length.
    """

    implicit: bool
    tags: list[int]
    starts: list[int]

    def vr(self, data: bytes, k: int) -> bytes | None:
        """Element `k`'s VR as written (``None`` in implicit VR files)."""
        return None if self.implicit else data[self.starts[k] + 4 : self.starts[k] + 6]

    def value(self, data: bytes, k: int) -> bytes:
        """Element `k`'s value bytes."""
        vr = self.vr(data, k)
        head = 12 if vr in _LONG_VRS else 8
        return data[self.starts[k] + head : self.starts[k + 1]]

    def after(self, tag: int) -> int:
        """Offset of the first element with a tag larger than `tag` (or the end)."""
        return self.starts[bisect.bisect_right(self.tags, tag)]


def scan_layout(data: bytes) -> Layout | None:
    """Walk the top-level elements of a plain little-endian Part-10 file.

    Parameters
    ----------
    data : bytes
        The whole file.

    Returns
    -------
    Layout or None
        The element positions, or ``None`` when the file is not one the fast path
        handles exactly like pydicom (see the module notes).
    """
    try:
        return _scan(data)
    except (_Decline, struct.error, IndexError, ValueError, KeyError, UnicodeDecodeError):
        return None


def _scan(data: bytes) -> Layout:
    size = len(data)
    if size < 144 or data[128:132] != b"DICM":
        raise _Decline
    pos, tsuid = _meta(data, 132)
    ts = UID(tsuid)
    if not ts.is_transfer_syntax or not ts.is_little_endian or ts.is_deflated:
        raise _Decline
    implicit = bool(ts.is_implicit_VR)
    # pydicom looks at the first element's VR bytes and follows what it finds
    if pos + 8 > size:
        raise _Decline
    looks_explicit = 0x40 < data[pos + 4] < 0x5B and 0x40 < data[pos + 5] < 0x5B
    if looks_explicit == implicit:
        raise _Decline
    tags: list[int] = []
    starts: list[int] = []
    last = -1
    unpack = _explicit_head if not implicit else _implicit_head
    while pos < size:
        if pos + 8 > size:
            raise _Decline  # trailing bytes: pydicom may ignore or refuse them
        if implicit:
            group, elem, length = unpack(data, pos)
            vr, head = None, 8
        else:
            group, elem, vr, length = unpack(data, pos)
            if vr not in _KNOWN_VRS:
                raise _Decline
            head = 8
            if vr in _LONG_VRS:
                length = _u32(data, pos + 8)[0]
                head = 12
        tag = group << 16 | elem
        if tag <= last or group < 0x0008 or group == 0xFFFE:
            raise _Decline
        value = pos + head
        if length == _UNDEFINED:
            if not _undefined_allowed(tag, vr, implicit):
                raise _Decline
            end = _skip_items(data, value, implicit, 0)
        else:
            end = value + length
            if end > size:
                raise _Decline
        tags.append(tag)
        starts.append(pos)
        last, pos = tag, end
    if pos != size:
        raise _Decline
    starts.append(size)
    return Layout(implicit, tags, starts)


def _meta(data: bytes, pos: int) -> tuple[int, str]:
    """Skip the file meta group (explicit VR LE); return its end and the TS UID."""
    tsuid = ""
    size = len(data)
    while pos + 8 <= size and _u16(data, pos)[0] == 0x0002:
        tag = 0x00020000 | _u16(data, pos + 2)[0]
        _vr, length, head = _element_header(data, pos, False)
        if length == _UNDEFINED or pos + head + length > size:
            raise _Decline
        if tag == 0x00020010:
            tsuid = data[pos + head : pos + head + length].decode("ascii").strip("\0 ")
        pos += head + length
    if not tsuid:
        raise _Decline
    return pos, tsuid


def _element_header(data: bytes, pos: int, implicit: bool) -> tuple[bytes | None, int, int]:
    if implicit:
        return None, _u32(data, pos + 4)[0], 8
    vr = data[pos + 4 : pos + 6]
    if vr not in _KNOWN_VRS:
        raise _Decline
    if vr in _LONG_VRS:
        return vr, _u32(data, pos + 8)[0], 12
    return vr, _u16(data, pos + 6)[0], 8


def _undefined_allowed(tag: int, vr: bytes | None, implicit: bool) -> bool:
    """Only sequences and encapsulated Pixel Data: pydicom walks both item by item."""
    if implicit:
        return not BaseTag(tag).is_private and _dict_vr(tag) == "SQ"
    return vr == b"SQ" or (tag == _PIXEL_DATA and vr in (b"OB", b"OW"))


def _dict_vr(tag: int) -> str:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return ""


def _skip_items(data: bytes, pos: int, implicit: bool, depth: int) -> int:
    """Skip the items of an undefined-length value; return the end of its delimiter."""
    if depth > _MAX_DEPTH:
        raise _Decline
    size = len(data)
    while True:
        if pos + 8 > size:
            raise _Decline
        group, elem = _tag_u16(data, pos)
        tag = group << 16 | elem
        length = _u32(data, pos + 4)[0]
        pos += 8
        if tag == _SEQ_END:
            return pos
        if tag != _ITEM:
            raise _Decline
        if length == _UNDEFINED:
            pos = _skip_item_elements(data, pos, implicit, depth + 1)
        else:
            pos += length
            if pos > size:
                raise _Decline


def _skip_item_elements(data: bytes, pos: int, implicit: bool, depth: int) -> int:
    """Skip the elements of an undefined-length item; return the end of its delimiter."""
    size = len(data)
    while True:
        if pos + 8 > size:
            raise _Decline
        group, elem = _tag_u16(data, pos)
        tag = group << 16 | elem
        if tag == _ITEM_END:
            return pos + 8
        if group == 0xFFFE:
            raise _Decline
        # an implicit VR item in an explicit file (pydicom accepts it) has no known
        # VR where the VR would be: declined there
        vr, length, head = _element_header(data, pos, implicit)
        pos += head
        if length == _UNDEFINED:
            if implicit:
                if BaseTag(tag).is_private or _dict_vr(tag) != "SQ":
                    raise _Decline
            elif vr != b"SQ":
                raise _Decline
            pos = _skip_items(data, pos, implicit, depth + 1)
        else:
            pos += length
            if pos > size:
                raise _Decline


def fast_tags(edits: Sequence[Edit]) -> frozenset[int] | None:
    """Return the top-level tags `edits` touch, or ``None`` when they need pydicom.

    Only ``set``, ``add`` and ``delete`` of standard (not private, not repeating-group
    ambiguous) top-level elements whose dictionary VR is one value VR qualify; file meta,
    Specific Character Set and the SOP Class / Instance UIDs (which the file meta
    follows) do not.
    """
    tags = set()
    for edit in edits:
        if edit.op not in ("set", "add", "delete"):
            return None
        parts = parse_path(edit.path)
        if len(parts) != 1 or parts[0][1] is not None:
            return None
        tag = parts[0][0]
        if (
            tag >> 16 <= 0x0002
            or tag & 0xFFFF == 0
            or tag in _SOP_UIDS
            or tag == _CHARSET
            or BaseTag(tag).is_private
        ):
            return None
        vr = _dict_vr(tag)
        if not vr or " or " in vr or vr in _NOT_VALUES:
            return None
        tags.add(tag)
    return frozenset(tags)


def _raw(data: bytes, layout: Layout, k: int) -> RawDataElement:
    vr = layout.vr(data, k)
    value = layout.value(data, k)
    return RawDataElement(
        BaseTag(layout.tags[k]),
        None if vr is None else vr.decode("ascii"),
        len(value),
        value,
        layout.starts[k + 1] - len(value),
        layout.implicit,
        True,
    )


def _partial_dataset(data: bytes, layout: Layout, tags: frozenset[int]) -> Dataset:
    """Make a dataset of the raw elements `tags` and (0008,0005), as dcmread would."""
    raws: dict[BaseTag, RawDataElement] = {}
    for tag in (_CHARSET, *tags):
        k = bisect.bisect_left(layout.tags, tag)
        if k < len(layout.tags) and layout.tags[k] == tag:
            raws[BaseTag(tag)] = _raw(data, layout, k)
    ds = Dataset(raws)
    encoding: Any = "iso8859"  # pydicom's default_encoding for a top-level dataset
    if _CHARSET in raws:
        encoding = convert_encodings(convert_raw_data_element(raws[BaseTag(_CHARSET)]).value)
    ds.set_original_encoding(layout.implicit, True, encoding)
    return ds


def encode_element(ds: Dataset, tag: int, implicit: bool, encodings: Sequence[str]) -> bytes | None:
    """Encode one element of `ds` as little-endian bytes; None if pydicom refuses it."""
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = implicit
    try:
        write_data_element(fp, ds[tag], encodings)
    except Exception:
        return None
    return fp.getvalue()


def fast_edit(
    data: bytes, edits: Sequence[Edit], cache: dict[Any, Any] | None = None
) -> tuple[bytes, list[Change]] | None:
    """Apply top-level `edits` to a file's bytes, as the pydicom path would.

    Parameters
    ----------
    data : bytes
        The original file.
    edits : sequence of Edit
        The edits (validated here, with :func:`~dicomflow_lab.core.edit.apply_edits`).
    cache : dict, optional
        Shared across the files of a batch: validation verdicts (see ``apply_edits``)
        and, keyed by the exact raw bytes of the elements the edits read (the touched
        elements and Specific Character Set) and the encoding, the outcome of
        validating and encoding the edits — a pure function of those bytes, so a file
        whose old values or character set differ in any byte is validated afresh.

    Returns
    -------
    tuple of (bytes, list of Change) or None
        The new file content and the changes, or ``None`` when the pydicom path must
        handle this file or these edits.

    Raises
    ------
    EditError
        When a value is refused, with the same message as the pydicom path.
    """
    tags = fast_tags(edits)
    if not tags:
        return None
    layout = scan_layout(data)
    if layout is None:
        return None
    index = {tag: k for k, tag in enumerate(layout.tags)}
    if any((t >> 16) << 16 in index for t in tags):
        return None  # a group length would go stale: the full write drops them
    read = sorted(t for t in (_CHARSET, *tags) if t in index)
    key = (
        "fast_edit",
        tuple((e.op, e.path, type(e.value).__name__, repr(e.value), e.vr) for e in edits),
        layout.implicit,
        tuple((t, layout.vr(data, index[t]), layout.value(data, index[t])) for t in read),
    )
    outcome = None if cache is None else cache.get(key)
    if outcome is None:
        outcome = _validate_and_encode(data, layout, tags, edits, cache)
        if cache is not None and outcome is not None:
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()  # many distinct old values: keep memory bounded
            cache[key] = outcome
    if outcome is None:
        return None
    changes, encoded = outcome
    out: list[bytes] = []
    cursor = 0
    for tag, element in encoded:
        if tag in index:
            k = index[tag]
            start, end = layout.starts[k], layout.starts[k + 1]
        else:
            start = end = layout.after(tag)
        out.append(data[cursor:start])
        out.append(element)
        cursor = end
    out.append(data[cursor:])
    return b"".join(out), list(changes)


def _validate_and_encode(
    data: bytes,
    layout: Layout,
    tags: frozenset[int],
    edits: Sequence[Edit],
    cache: dict[Any, Any] | None,
) -> tuple[tuple[Change, ...], tuple[tuple[int, bytes], ...]] | None:
    """Run the edits on the raw elements they read; encode the touched elements.

    Returns the changes and, per touched tag in order, its new encoding (``b""`` when
    deleted or absent), or ``None`` when pydicom cannot encode a value.
    """
    ds = _partial_dataset(data, layout, tags)
    changes = apply_edits(ds, edits, cache=cache)
    encodings = convert_encodings(ds.get("SpecificCharacterSet"))
    encoded = []
    for tag in sorted({parse_path(c.path)[0][0] for c in changes}):
        element = b""
        if tag in ds:
            written = encode_element(ds, tag, layout.implicit, encodings)
            if written is None:
                return None
            element = written
        encoded.append((tag, element))
    return tuple(changes), tuple(encoded)
