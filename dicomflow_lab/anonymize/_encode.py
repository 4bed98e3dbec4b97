"""Writing de-identified datasets: raw (pre-encoded) elements and a fast Part-10 writer.

Kept elements stay as pydicom read them (``RawDataElement``) and new text values are
encoded once here, so writing a file needs no decoding and no copy of the Pixel Data
bytes; anything unusual goes through pydicom's own writer.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

from pydicom.charset import default_encoding
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO, DicomFileLike, DicomIO
from pydicom.filewriter import write_data_element, write_dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from ..errors import AnonymizationError

__all__ = ["encode", "encode_sequence", "new_element", "write_part10"]

_RAW_OK = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI"}
    | {"UR", "UT"}
)
_PACK_IMPLICIT = _PACK_ITEM = struct.Struct("<HHL").pack
_PACK_LONG = struct.Struct("<HH2sHL").pack
_PACK_SHORT = struct.Struct("<HH2sH").pack
_LEN32 = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})


def _values(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, MultiValue | list | tuple):
        return list(value)
    return [value]


def encode_sequence(
    implicit: bool | None, little: bool | None, tag: int, items: list[Dataset]
) -> DataElement | RawDataElement:
    """Return a sequence of ``items``, pre-encoded (defined lengths) when the encoding is known."""
    if implicit is None or not little:
        return DataElement(tag, "SQ", Sequence(items))
    body = bytearray()
    for item in items:
        buf = DicomBytesIO()
        buf.is_implicit_VR, buf.is_little_endian = implicit, True
        write_dataset(buf, item)
        data = buf.getvalue()
        body += _PACK_ITEM(0xFFFE, 0xE000, len(data)) + data
    return RawDataElement(
        BaseTag(tag), None if implicit else "SQ", len(body), bytes(body), 0, implicit, True
    )


def new_element(
    implicit: bool | None, little: bool | None, tag: int, vr: str, value: Any
) -> DataElement | RawDataElement:
    """Return the new element, as a raw (pre-encoded) element where that is simple.

    ASCII text and UIDs are encoded here, in the source's encoding, so that writing needs
    no conversion; anything else becomes a :class:`~pydicom.dataelem.DataElement`.
    """
    if implicit is not None and little is not None and vr in _RAW_OK:
        if isinstance(value, str):
            text = value
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            text = "\\".join(value)
        else:
            text = None
        if text is not None and text.isascii():
            data = text.encode("ascii")
            if len(data) % 2:
                data += b"\x00" if vr == "UI" else b" "
            if implicit or len(data) <= 0xFFFF or vr in _LEN32:
                return RawDataElement(
                    BaseTag(tag), None if implicit else vr, len(data), data, 0, implicit, little
                )
    return DataElement(tag, vr, value)


def encode(ds: Dataset) -> bytes:
    """Encode a de-identified dataset as a Part-10 file in its file meta's transfer syntax.

    The preamble is zero bytes (an original preamble may hold data). Raw elements are
    written as read, so Pixel Data bytes are kept byte for byte. Group 0000 elements are
    allowed (unlike ``dcmwrite``). Deflated transfer syntaxes are compressed again.
    """
    fp = DicomBytesIO()
    write_part10(fp, ds)
    return fp.getvalue()


def write_part10(fh: Any, ds: Dataset) -> None:
    """Write ``ds`` as a Part-10 file to the binary file object ``fh`` (see :func:`encode`)."""
    meta = ds.file_meta
    ts = UID(meta.TransferSyntaxUID)
    fp = fh if isinstance(fh, DicomIO) else DicomFileLike(fh)
    fp.write(b"\x00" * 128 + b"DICM")
    _write_meta(fp, meta)
    implicit, little = (
        (ts.is_implicit_VR, ts.is_little_endian)
        if ts.is_transfer_syntax
        else (
            False,
            True,
        )
    )
    if ts == DeflatedExplicitVRLittleEndian:
        body = DicomBytesIO()
        body.is_little_endian, body.is_implicit_VR = little, implicit
        _write_body(body, ds)
        comp = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        data = comp.compress(body.getvalue()) + comp.flush()
        if len(data) % 2:
            data += b"\x00"
        fp.write(data)
        return
    fp.is_little_endian, fp.is_implicit_VR = little, implicit
    _write_body(fp, ds)


def _write_meta(fp: DicomIO, meta: FileMetaDataset) -> None:
    """Write the file meta group (explicit VR little endian) with its group length."""
    if "TransferSyntaxUID" not in meta:
        raise AnonymizationError("cannot write the file: no Transfer Syntax UID in the file meta")
    body = bytearray()
    for tag in sorted(meta._dict):
        if tag == 0x00020000:
            continue
        elem = meta[tag]
        vr, value = elem.VR, elem.value
        if isinstance(value, bytes | bytearray):
            data = bytes(value)
        else:
            text = "\\".join(str(v) for v in _values(value))
            data = text.encode("ascii", "replace")
        if len(data) % 2:
            data += b"\x00" if vr in ("UI", "OB") else b" "
        if vr in _LEN32:
            body += _PACK_LONG(tag >> 16, tag & 0xFFFF, vr.encode("ascii"), 0, len(data))
        else:
            body += _PACK_SHORT(tag >> 16, tag & 0xFFFF, vr.encode("ascii"), len(data))
        body += data
    fp.write(_PACK_SHORT(0x0002, 0x0000, b"UL", 4) + struct.pack("<L", len(body)))
    fp.write(bytes(body))


def _write_body(fp: DicomIO, ds: Dataset) -> None:
    """Write the top-level dataset, raw elements directly (pydicom's writer for the rest)."""
    implicit, little = fp.is_implicit_VR, fp.is_little_endian
    same = (
        little
        and ds.original_encoding == (implicit, little)
        and ds.original_character_set == ds._character_set
    )
    if not same:
        write_dataset(fp, ds)
        return
    charset = ds.get("SpecificCharacterSet", default_encoding)
    encodings = charset.value if isinstance(charset, DataElement) else charset
    write = fp.write
    d = ds._dict
    for tag in sorted(d):
        if tag & 0xFFFF == 0 and tag >> 16 > 6:
            continue  # retired group lengths (PS3.5 7.2)
        elem = d[tag]
        if elem.is_raw and elem.length != 0xFFFFFFFF:
            value = elem.value or b""
            n = len(value)
            if implicit:
                write(_PACK_IMPLICIT(tag >> 16, tag & 0xFFFF, n))
                write(value)
                continue
            vr = elem.VR
            if vr is not None and len(vr) == 2:
                if vr in _LEN32:
                    write(_PACK_LONG(tag >> 16, tag & 0xFFFF, vr.encode("ascii"), 0, n))
                    write(value)
                    continue
                if n <= 0xFFFF:
                    write(_PACK_SHORT(tag >> 16, tag & 0xFFFF, vr.encode("ascii"), n))
                    write(value)
                    continue
            elem = ds[tag]
        write_data_element(fp, elem, encodings)
