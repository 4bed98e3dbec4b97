"""Reading DICOM files safely, and turning a header into plain JSON-ready values.

:func:`read_header` is the hardened header reader used by the indexer: it decides by
content whether a file is DICOM, refuses deflate bombs and declared lengths that run past
the end of the file, and raises :class:`~dicomflow_lab.errors.DicomReadError` naming the
file and the reason. :func:`header_to_dict` turns a dataset into ``keyword -> value``
(sequences nested, bulk values replaced by a placeholder) far faster than pydicom's
DICOM JSON model, which stays the format for DICOMweb.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import struct
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import pydicom
from pydicom.charset import convert_encodings
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileDataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import _read_file_meta_info, read_dataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from dicomflow_lab.errors import DicomReadError

__all__ = [
    "BULK_VRS",
    "MEDIA_STORAGE_DIRECTORY",
    "HeaderReadOptions",
    "guess_transfer_syntax",
    "header_to_dict",
    "is_dicomdir",
    "read_complete",
    "read_header",
    "sniff_dicom",
]

logger = logging.getLogger(__name__)

#: VRs whose values are binary bulk data: never copied into the header JSON.
BULK_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN"})
_TEXT_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
)
_CHARSET_VRS = frozenset({"LO", "LT", "PN", "SH", "ST", "UC", "UT"})
_SPLIT_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "LO", "PN", "SH", "TM", "UC", "UI"})
_NUMBER_STRING_VRS = frozenset({"IS", "DS"})
_BINARY_NUMBER_FORMATS = {
    "US": "H",
    "SS": "h",
    "UL": "L",
    "SL": "l",
    "SV": "q",
    "UV": "Q",
    "FL": "f",
    "FD": "d",
}
_PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
_VALID_VRS = frozenset(
    b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL "
    b"UN UR US UT UV".split()
)
_MAX_DEPTH = 64
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"

_keyword_cache: dict[int, str] = {}
_vr_cache: dict[int, str] = {}


@dataclass(frozen=True)
class HeaderReadOptions:
    """Limits applied by :func:`read_header`.

    Attributes
    ----------
    defer_size : int
        Values longer than this many bytes are not read (they become placeholders).
    max_inflate_ratio : int
        A Deflated Explicit VR file may inflate to at most this many times its size
        (plus 1 MiB); beyond that it is refused as a possible deflate bomb.
    max_inflated_bytes : int
        Absolute cap on the inflated size of a deflated dataset.
    """

    defer_size: int = 64 * 1024
    max_inflate_ratio: int = 100
    max_inflated_bytes: int = 512 * 1024 * 1024


def sniff_dicom(head: bytes) -> str | None:
    """Tell from a file's first bytes whether it looks like DICOM.

    Parameters
    ----------
    head : bytes
        At least the first 132 bytes of the file (fewer if the file is shorter).

    Returns
    -------
    str or None
        ``"part10"`` for a file with the 128-byte preamble and ``DICM`` marker,
        ``"raw"`` for a plausible preamble-less dataset (starting with a group 0002 or
        0008 element), or None.
    """
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "part10"
    if len(head) < 8:
        return None
    group_le, elem_le = struct.unpack("<HH", head[:4])
    group_be = struct.unpack(">H", head[:2])[0]
    vr = head[4:6]
    if group_le in (0x0002, 0x0008) and elem_le < 0x2000:
        if vr in _VALID_VRS:
            return "raw"
        (length,) = struct.unpack("<L", head[4:8])
        if length < 0x10000:  # implicit VR: a short first value
            return "raw"
    if group_be == 0x0008 and vr in _VALID_VRS:
        return "raw"
    return None


def _why_not_dicom(head: bytes) -> str:
    if head[:2] == b"\x1f\x8b":
        return "gzip-compressed file, not DICOM (decompress it first)"
    if head[:4] == b"PK\x03\x04":
        return "ZIP archive, not DICOM (extract it first)"
    return "not a DICOM file: no 'DICM' marker at byte 128 and no DICOM element at the start"


def read_header(
    path: str | os.PathLike[str], options: HeaderReadOptions | None = None
) -> FileDataset:
    """Read a file's header (everything before Pixel Data), refusing malformed input.

    Parameters
    ----------
    path : str or os.PathLike
        The file to read.
    options : HeaderReadOptions, optional
        Size limits; the defaults suit indexing.

    Returns
    -------
    pydicom.dataset.FileDataset
        The header, with values longer than ``options.defer_size`` deferred.

    Raises
    ------
    DicomReadError
        With ``kind`` one of ``empty``, ``not_dicom``, ``unreadable``, ``truncated``,
        ``deflate_bomb``, ``too_deep`` or ``invalid``, and a reason naming the problem.
    """
    opts = options or HeaderReadOptions()
    fspath = os.fspath(path)
    fh, size, style = _open_dicom(fspath)
    with fh, _pydicom_errors(fspath):
        ds = _read(fh, fspath, size, style, opts)
    _check_lengths(ds, fspath, size)
    _require_instance(ds, fspath)
    return ds


def read_complete(path: str | os.PathLike[str]) -> FileDataset:
    """Read a whole file (Pixel Data included, kept encoded), refusing truncated input.

    pydicom stops quietly at the end of a file, so a file cut short inside a value (even
    inside Pixel Data) reads as a shorter dataset. Writers that copy a file (anonymize,
    export) must refuse that instead of writing a damaged copy; this reader checks every
    declared length against what was read, and the header the way :func:`read_header`
    does (deflated files go through its inflation cap first).

    Parameters
    ----------
    path : str or os.PathLike
        The file to read.

    Returns
    -------
    pydicom.dataset.FileDataset
        The complete dataset.

    Raises
    ------
    DicomReadError
        As :func:`read_header`, plus ``truncated`` when a value is shorter than its
        declared length.
    """
    fspath = os.fspath(path)
    fh, size, style = _open_dicom(fspath)
    with fh:
        if style == "part10" and b"1.2.840.10008.1.2.1.99" in fh.read(512):
            read_header(fspath)  # the inflation cap and its checks, before pydicom inflates
        fh.seek(0)
        with _pydicom_errors(fspath):
            ds = pydicom.dcmread(fh, force=(style == "raw"))
    _check_lengths(ds, fspath, size)
    _check_trailing(ds, fspath, size)
    _require_instance(ds, fspath)
    return ds


@contextlib.contextmanager
def _pydicom_errors(fspath: str) -> Iterator[None]:
    """Turn what pydicom raises on malformed input into DicomReadError naming the file."""
    try:
        yield
    except DicomReadError:
        raise
    except RecursionError:
        raise DicomReadError(fspath, "sequences nested too deeply", kind="too_deep") from None
    except MemoryError:
        raise DicomReadError(fspath, "a value is too large to load", kind="invalid") from None
    except (InvalidDicomError, EOFError, struct.error) as exc:
        raise DicomReadError(fspath, f"malformed DICOM: {exc}", kind="truncated") from exc
    except Exception as exc:  # pydicom raises many types on malformed input
        raise DicomReadError(
            fspath, f"malformed DICOM: {type(exc).__name__}: {exc}", kind="invalid"
        ) from exc


def _require_instance(ds: Dataset, fspath: str) -> None:
    if "SOPInstanceUID" not in ds and not is_dicomdir(ds):
        raise DicomReadError(
            fspath,
            "no SOP Instance UID (0008,0018) and no Media Storage SOP Instance UID: "
            "the file is truncated or is not a DICOM instance",
            kind="invalid",
        )


def _open_dicom(fspath: str) -> tuple[BinaryIO, int, str]:
    """Open a regular, non-empty file that looks like DICOM; return (file, size, style).

    The file is positioned after the first 132 bytes; the caller closes it.
    """
    try:
        # non-blocking, so that opening a FIFO cannot wait forever for a writer
        fh = open(fspath, "rb", opener=_open_nonblocking)  # noqa: SIM115 - returned
    except PermissionError as exc:
        raise DicomReadError(
            fspath, f"permission denied ({exc.strerror})", kind="unreadable"
        ) from exc
    except IsADirectoryError:
        raise DicomReadError(fspath, "is a directory", kind="unreadable") from None
    except OSError as exc:
        raise DicomReadError(fspath, f"cannot open: {exc.strerror}", kind="unreadable") from exc
    try:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise DicomReadError(
                fspath, "not a regular file (a FIFO, socket or device)", kind="unreadable"
            )
        if st.st_size == 0:
            raise DicomReadError(fspath, "empty file (0 bytes)", kind="empty")
        head = fh.read(132)
        style = sniff_dicom(head)
        if style is None:
            raise DicomReadError(fspath, _why_not_dicom(head), kind="not_dicom")
    except BaseException:
        fh.close()
        raise
    return fh, st.st_size, style


def _open_nonblocking(path: str, flags: int) -> int:
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


def _read(fh: BinaryIO, fspath: str, size: int, style: str, opts: HeaderReadOptions) -> FileDataset:
    meta = None
    tsuid = None
    if style == "part10":
        # Look at the transfer syntax before pydicom would inflate a deflated dataset.
        fh.seek(132)
        meta = _read_file_meta_info(fh)
        tsuid = meta.get("TransferSyntaxUID")
    if tsuid == DeflatedExplicitVRLittleEndian:
        return _read_deflated(fh, fspath, size, meta, opts)
    fh.seek(0)
    ds = pydicom.dcmread(
        fh, stop_before_pixels=True, defer_size=opts.defer_size, force=(style == "raw")
    )
    pixel_at = fh.tell()
    _check_pixel_header(fh, fspath, size, pixel_at, ds)
    _check_trailing(ds, fspath, size)
    return ds


def _check_trailing(ds: Dataset, fspath: str, size: int) -> None:
    """Refuse a file that ends part-way through an element header.

    pydicom treats a short element header at the end of the file as a clean end of
    file; a file truncated there would otherwise look complete.
    """
    if not ds._dict:
        return
    last = next(reversed(ds._dict.values()))
    if not isinstance(last, RawDataElement) or last.length == 0xFFFFFFFF:
        return
    end = last.value_tell + last.length
    if 0 < size - end < 12 and last.tag not in _PIXEL_TAGS:
        raise DicomReadError(
            fspath,
            f"file ends inside an element header after {_tag_str(last.tag)}",
            kind="truncated",
        )


def _read_deflated(
    fh: BinaryIO, fspath: str, size: int, meta: Dataset | None, opts: HeaderReadOptions
) -> FileDataset:
    """Inflate a Deflated Explicit VR dataset to a spooled temp file, with a size cap."""
    cap = min(opts.max_inflated_bytes, opts.max_inflate_ratio * size + (1 << 20))
    preamble = b"\0" * 128
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    written = 0
    with tempfile.SpooledTemporaryFile(max_size=8 << 20) as out:
        while True:
            chunk = fh.read(1 << 16)
            data = inflater.decompress(chunk, 1 << 20) if chunk else b""
            while True:
                written += len(data)
                if written > cap:
                    raise DicomReadError(
                        fspath,
                        f"deflated data inflates beyond {cap // (1 << 20)} MiB from a "
                        f"{size}-byte file (ratio > {opts.max_inflate_ratio}:1): refused as "
                        "a possible deflate bomb",
                        kind="deflate_bomb",
                    )
                out.write(data)
                if not inflater.unconsumed_tail:
                    break
                data = inflater.decompress(inflater.unconsumed_tail, 1 << 20)
            if not chunk:
                written += out.write(inflater.flush())
                break
        if not inflater.eof:
            raise DicomReadError(
                fspath, "the deflated dataset ends early (truncated file)", kind="truncated"
            )
        out.seek(0)
        dataset = read_dataset(
            out,
            is_implicit_VR=False,
            is_little_endian=True,
            stop_when=lambda tag, vr, length: tag in _PIXEL_TAGS,
            defer_size=opts.defer_size,
        )
        _check_lengths(dataset, fspath, written)
        # Deferred values cannot be re-read from the compressed file: drop them.
        for elem in list(dataset.values()):
            if isinstance(elem, RawDataElement) and elem.value is None and elem.length:
                del dataset[elem.tag]
    ds = FileDataset(fspath, dataset, preamble, meta, False, True)
    ds.set_original_encoding(False, True, dataset._character_set)
    return ds


def _check_pixel_header(fh: BinaryIO, fspath: str, size: int, at: int, ds: Dataset) -> None:
    """Check that a Pixel Data element's declared length fits in the file."""
    fh.seek(at)
    hdr = fh.read(12)
    if len(hdr) < 8:
        return
    little = getattr(ds, "is_little_endian", True)
    end = "<" if little is not False else ">"
    group, elem = struct.unpack(end + "HH", hdr[:4])
    if (group << 16 | elem) not in _PIXEL_TAGS:
        return
    # Decide explicit/implicit from the bytes themselves: some files switch encoding.
    vr = hdr[4:6]
    if vr in (b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN"):
        if len(hdr) < 12:
            raise DicomReadError(fspath, "file ends inside the Pixel Data header", kind="truncated")
        (length,) = struct.unpack(end + "L", hdr[8:12])
        start = at + 12
    elif vr in _VALID_VRS:
        (length,) = struct.unpack(end + "H", hdr[6:8])
        start = at + 8
    else:
        (length,) = struct.unpack(end + "L", hdr[4:8])
        start = at + 8
    if length != 0xFFFFFFFF and (group << 16 | elem) == 0x7FE00010:
        _check_pixel_size(ds, fspath, length)
    if length != 0xFFFFFFFF and start + length > size:
        raise DicomReadError(
            fspath,
            f"Pixel Data declares {length} bytes but only {size - start} remain (truncated file)",
            kind="truncated",
        )


def _check_pixel_size(ds: Dataset, fspath: str, length: int) -> None:
    """Refuse native Pixel Data whose size cannot fit its 32-bit length field.

    Rows x Columns x Samples x Frames x Bits Allocated beyond 2**32 - 2 bytes cannot be
    encoded with a defined length: the declared length is then the true size modulo
    2**32, and reading on from it parses pixel values as elements (pydicom#1274).
    """
    try:
        rows, cols = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
        samples = int(ds.get("SamplesPerPixel") or 1)
        frames = int(ds.get("NumberOfFrames") or 1)
        bits = int(ds.get("BitsAllocated") or 0)
    except Exception:  # malformed image attributes are not this check's business
        return
    needed = (rows * cols * samples * frames * bits + 7) // 8
    if needed > 0xFFFFFFFE:
        raise DicomReadError(
            fspath,
            f"Pixel Data needs {needed} bytes ({rows} rows x {cols} columns x {samples} "
            f"samples x {frames} frames x {bits} bits), more than a 32-bit length can "
            f"declare; its length field says {length} (the size overflowed 32 bits)",
            kind="invalid",
        )


def _check_lengths(ds: Dataset, fspath: str, size: int, depth: int = 0) -> None:
    """Refuse a dataset whose elements declare more bytes than the file holds."""
    if depth > _MAX_DEPTH:
        raise DicomReadError(fspath, f"sequences nested deeper than {_MAX_DEPTH}", kind="too_deep")
    for elem in ds._dict.values():
        if isinstance(elem, RawDataElement):
            length = elem.length
            if length == 0xFFFFFFFF:
                continue
            value = elem.value
            if value is None:
                if length and elem.value_tell + length > size:
                    raise _overrun(fspath, elem.tag, length, size - elem.value_tell)
            elif isinstance(value, bytes | bytearray) and len(value) < length:
                raise _overrun(fspath, elem.tag, length, len(value))
        elif elem.VR == "SQ" and elem.value:
            for item in elem.value:
                _check_lengths(item, fspath, size, depth + 1)


def _overrun(fspath: str, tag: int, declared: int, remaining: int) -> DicomReadError:
    return DicomReadError(
        fspath,
        f"element {_tag_str(tag)} declares {declared} bytes but only {max(remaining, 0)} "
        "remain (truncated or corrupt file)",
        kind="truncated",
    )


def _tag_str(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _keyword(tag: int) -> str:
    kw = _keyword_cache.get(tag)
    if kw is None:
        kw = (keyword_for_tag(tag) if not tag >> 16 & 1 else "") or f"{tag:08X}"
        _keyword_cache[tag] = kw
    return kw


def _dict_vr(tag: int) -> str:
    vr = _vr_cache.get(tag)
    if vr is None:
        try:
            vr = dictionary_VR(tag) if not tag >> 16 & 1 else "UN"
        except KeyError:
            vr = "UN"
        vr = vr.split(" ")[0]  # "US or SS" -> "US"
        _vr_cache[tag] = vr
    return vr


def header_to_dict(
    ds: Dataset, *, defer_size: int = 64 * 1024, include_meta: bool = True
) -> dict[str, Any]:
    """Convert a dataset to plain ``keyword -> value`` data for JSON.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The dataset (typically from :func:`read_header`).
    defer_size : int, optional
        Text values longer than this are replaced by a placeholder.
    include_meta : bool, optional
        Also convert the file meta group (0002,eeee) if the dataset has one.

    Returns
    -------
    dict
        Keys are DICOM keywords, or ``GGGGEEEE`` hex for private and unknown tags.
        Values: ``str`` for text VRs, ``int``/``float`` for numbers, a ``list`` when
        VM > 1, a list of dicts for sequences, ``None`` for empty values, and
        ``"<OB, 123 bytes>"`` style placeholders for bulk and deferred values.

    Raises
    ------
    DicomReadError
        With ``kind="too_deep"`` when sequences nest deeper than 64 levels (defined
        length sequences are only parsed here, not by :func:`read_header`).
    """
    out: dict[str, Any] = {}
    try:
        if include_meta:
            meta = getattr(ds, "file_meta", None)
            if meta:
                _convert_into(meta, out, ["iso8859"], defer_size, 0)
        encodings = _encodings(ds, ["iso8859"])
        _convert_into(ds, out, encodings, defer_size, 0)
    except (_TooDeepError, RecursionError):
        raise DicomReadError(
            getattr(ds, "filename", None) or "<dataset>",
            f"sequences nested deeper than {_MAX_DEPTH} levels",
            kind="too_deep",
        ) from None
    return out


class _TooDeepError(ValueError):
    """Sequences nest deeper than ``_MAX_DEPTH`` (turned into a DicomReadError)."""


def _encodings(ds: Dataset, parent: list[str]) -> list[str]:
    cs = ds._dict.get(0x00080005)
    if cs is None:
        return parent
    value = cs.value if isinstance(cs, DataElement) else None
    if value is None and isinstance(cs, RawDataElement):
        raw = cs.value or b""
        value = [v.strip() for v in raw.decode("ascii", "replace").split("\\")]
    if not value:
        return ["iso8859"]
    try:
        return list(convert_encodings(value if isinstance(value, list | tuple) else [value]))
    except Exception:  # unknown charset names: fall back to the default repertoire
        return ["iso8859"]


def _convert_into(
    ds: Dataset, out: dict[str, Any], encodings: list[str], defer_size: int, depth: int
) -> None:
    if depth > _MAX_DEPTH:
        raise _TooDeepError(f"sequences nested deeper than {_MAX_DEPTH}")
    simple_codec = encodings[0] if len(encodings) == 1 else None
    for tag, elem in ds._dict.items():
        if tag in _PIXEL_TAGS:
            continue
        key = _keyword(tag)
        if isinstance(elem, RawDataElement):
            vr = elem.VR or _dict_vr(tag)
            value = elem.value
            if vr == "SQ" or (vr == "UN" and elem.length == 0xFFFFFFFF):
                out[key] = _sequence(ds[tag].value, encodings, defer_size, depth)
                continue
            if value is None and elem.length:
                out[key] = f"<{vr}, {elem.length} bytes>"
                continue
            if vr in BULK_VRS:
                out[key] = f"<{vr}, {elem.length} bytes>" if elem.length else None
                continue
            if not value:
                out[key] = None
                continue
            out[key] = _raw_value(ds, tag, vr, value, elem, simple_codec, defer_size)
        else:
            vr = elem.VR
            if vr == "SQ":
                out[key] = _sequence(elem.value, encodings, defer_size, depth)
            elif vr in BULK_VRS:
                n = len(elem.value) if elem.value is not None else 0
                out[key] = f"<{vr}, {n} bytes>" if n else None
            else:
                out[key] = _plain(elem.value)


def _raw_value(
    ds: Dataset,
    tag: int,
    vr: str,
    value: bytes,
    elem: RawDataElement,
    codec: str | None,
    defer_size: int,
) -> Any:
    if vr in _TEXT_VRS or vr in _NUMBER_STRING_VRS:
        if len(value) > defer_size:
            return f"<{vr}, {len(value)} bytes>"
        if vr in _CHARSET_VRS and (
            codec is None or codec.startswith("iso2022") or codec in ("iso_ir_126",)
        ):
            return _plain(ds[tag].value)  # code extensions: pydicom decodes
        return decode_text(vr, value, _PY_CODECS.get(codec or "", codec or "latin-1"))
    if vr in _BINARY_NUMBER_FORMATS:
        return decode_numbers(vr, value, little_endian=elem.is_little_endian)
    return _plain(ds[tag].value)


def decode_text(vr: str, value: bytes, codec: str) -> Any:
    """Decode a text or number-string value (IS, DS) the way :func:`header_to_dict` shows it.

    Parameters
    ----------
    vr : str
        A text VR, ``IS`` or ``DS``.
    value : bytes
        The raw value.
    codec : str
        The Python codec for the character-set-dependent VRs (SH, LO, ST, LT, PN, UC, UT).

    Returns
    -------
    str, int, float, list or None
        Trimmed text (a list when VM > 1); numbers for IS/DS; None when empty.
    """
    text = value.decode(codec if vr in _CHARSET_VRS else "latin-1", "replace")
    if vr in _NUMBER_STRING_VRS:
        nums = [_number(p, vr) for p in text.split("\\")]
        return nums[0] if len(nums) == 1 else nums
    text = text.rstrip(" \0") if vr != "UT" else text.rstrip(" ")
    if vr in _SPLIT_VRS and "\\" in text:
        return [p.strip(" \0") or None for p in text.split("\\")]
    if vr not in ("LT", "ST", "UT"):
        text = text.lstrip(" ")
    return text or None


def decode_numbers(vr: str, value: bytes, *, little_endian: bool = True) -> Any:
    """Unpack a binary number value (US, SS, UL, SL, SV, UV, FL, FD): a number, or a list."""
    fmt = _BINARY_NUMBER_FORMATS[vr]
    width = struct.calcsize("<" + fmt)
    count = len(value) // width
    if count == 0:
        return None
    order = "<" if little_endian else ">"
    nums = struct.unpack(f"{order}{count}{fmt}", value[: count * width])
    return nums[0] if count == 1 else list(nums)


_PY_CODECS = {"iso8859": "latin-1", "latin_1": "latin-1", "UTF8": "utf-8"}


def _number(text: str, vr: str) -> int | float | str | None:
    """Convert one IS (to int) or DS (to float) value, as pydicom does; keep bad text."""
    s = text.strip(" \0")
    if not s:
        return None
    if vr == "IS":
        try:
            return int(s)
        except ValueError:
            pass
    try:
        f = float(s)
    except ValueError:
        return s
    if f != f or f in (float("inf"), float("-inf")):
        return s
    return int(f) if vr == "IS" and f.is_integer() else f


def _sequence(
    seq: Iterable[Dataset], encodings: list[str], defer_size: int, depth: int
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for item in seq:
        sub: dict[str, Any] = {}
        _convert_into(item, sub, _encodings(item, encodings), defer_size, depth + 1)
        items.append(sub)
    return items


def _plain(value: Any) -> Any:
    """Turn a converted pydicom value into JSON-ready Python values."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, pydicom.valuerep.DSfloat | pydicom.valuerep.IS):
        # before plain numbers: orjson cannot serialize DSfloat, a float subclass
        return _number(str(value), "DS" if isinstance(value, float) else "IS")
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    if isinstance(value, pydicom.valuerep.PersonName):
        return str(value) or None
    if isinstance(value, pydicom.multival.MultiValue | list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def is_dicomdir(ds: Dataset) -> bool:
    """Return True if `ds` is a DICOMDIR (Media Storage Directory Storage, PS3.10)."""
    meta = getattr(ds, "file_meta", None)
    sop_class = meta.get("MediaStorageSOPClassUID") if meta else None
    return sop_class == MEDIA_STORAGE_DIRECTORY or ds.get("SOPClassUID") == MEDIA_STORAGE_DIRECTORY


def guess_transfer_syntax(ds: FileDataset) -> str:
    """Return the file's transfer syntax UID, or the encoding pydicom detected."""
    meta = getattr(ds, "file_meta", None)
    ts = meta.get("TransferSyntaxUID") if meta is not None else None
    if ts:
        return str(ts)
    if ds.is_implicit_VR:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if ds.is_little_endian else ExplicitVRBigEndian
