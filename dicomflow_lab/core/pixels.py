"""Decode one frame at a time, with everything needed to display it.

:func:`read_frame` decodes a single frame of a file (never all frames of a multi-frame
file) through pydicom's decoders and the pylibjpeg plug-ins, and returns a
:class:`Frame`: the stored values, unchanged for greyscale (the display pipeline of
:mod:`dicomflow_lab.core.voi` maps them) and converted to 8-bit RGB for colour
(YBR_FULL / YBR_FULL_422 by pydicom's ``convert_color_space``, PALETTE COLOR by
``apply_color_lut``), plus the :class:`DisplayParams` of the PS3.3 C.11 pipeline and the
frame's geometry. Enhanced multi-frame files get per-frame rescale, window and position
from their functional groups (PS3.3 C.7.6.16).

Every problem with a file's pixel data raises
:class:`~dicomflow_lab.errors.PixelDataError` naming the file, the transfer syntax and,
for a missing decoder, what to install.
"""

from __future__ import annotations

import logging
import math
import os
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, as_pixel_options, convert_color_space, get_decoder
from pydicom.uid import UID

from dicomflow_lab.core._frame_cache import (
    FrameCache,
    _Header,
    _header,
    _PixelElement,
    frame_key,
)
from dicomflow_lab.core.codecs import check_decoder
from dicomflow_lab.errors import PixelDataError

__all__ = [
    "DisplayParams",
    "Frame",
    "FrameCache",
    "WindowPreset",
    "frame_count",
    "frame_key",
    "overlay",
    "read_frame",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WindowPreset:
    """A named VOI window (PS3.3 C.11.2.1.2).

    Attributes
    ----------
    name : str
        The Window Center & Width Explanation, a preset's name, or ``"Window n"``.
    center, width : float
        Window Center (0028,1050) and Window Width (0028,1051) in modality units.
    source : str
        ``"dataset"`` (from the file), ``"ct"`` (a CT preset), ``"user"`` or ``"auto"``.
    """

    name: str
    center: float
    width: float
    source: str


@dataclass(frozen=True)
class DisplayParams:
    """Everything that maps a frame's delivered values to display, in PS3.3 C.11 order.

    Attributes
    ----------
    photometric : str
        Of the delivered values: ``"MONOCHROME1"``, ``"MONOCHROME2"`` or ``"RGB"``
        (colour is converted to 8-bit RGB on decode).
    samples : int
        1 (grey) or 3 (RGB).
    bits_stored : int
        Bits Stored (0028,0101); 8 for delivered RGB; 32 or 64 for float data.
    signed : bool
        Pixel Representation (0028,0103) is two's complement.
    is_float : bool
        The values come from Float or Double Float Pixel Data (7FE0,0008/0009).
    slope, intercept : float
        Modality rescale (PS3.3 C.11.1); per frame for enhanced multi-frame
        (Pixel Value Transformation, C.7.6.16.2.9). 1 and 0 when absent.
    rescale_type : str
        Rescale Type (0028,1054), else ``"HU"`` for CT (C.8.2.1), else ``""``.
    modality_lut : tuple or None
        ``(first stored value mapped, table)`` from the Modality LUT Sequence
        (0028,3000), which replaces the rescale (C.11.1.1).
    voi_function : str
        VOI LUT Function (0028,1056): ``"LINEAR"``, ``"LINEAR_EXACT"`` or ``"SIGMOID"``.
    windows : tuple of WindowPreset
        The file's Window Center/Width pairs named by their explanations; per frame
        (Frame VOI LUT, C.7.6.16.2.10) for enhanced multi-frame.
    voi_lut : tuple or None
        ``(first value mapped, bits per entry, table)`` from the first item of the VOI
        LUT Sequence (0028,3010), C.11.2.1.1.
    invert : bool
        True for MONOCHROME1: the display is inverted after the VOI (C.7.6.3.1.2).
    """

    photometric: str
    samples: int
    bits_stored: int
    signed: bool
    is_float: bool
    slope: float
    intercept: float
    rescale_type: str
    modality_lut: tuple[int, tuple[float, ...]] | None
    voi_function: str
    windows: tuple[WindowPreset, ...]
    voi_lut: tuple[int, int, tuple[int, ...]] | None
    invert: bool


@dataclass(frozen=True)
class Frame:
    """One decoded frame and what is needed to display and place it.

    Attributes
    ----------
    path : str
        The file.
    index : int
        The frame index (0-based).
    values : numpy.ndarray
        Grey: 2-D, in the stored integer type (``uint8`` … ``int32``) or ``float32``
        for float pixel data. Colour: ``(rows, cols, 3)`` ``uint8`` RGB. C-contiguous,
        native byte order.
    params : DisplayParams
        The display pipeline's parameters for this frame.
    position : tuple of 3 float or None
        Image Position (Patient) (0020,0032), per frame for enhanced multi-frame.
    orientation : tuple of 6 float or None
        Image Orientation (Patient) (0020,0037).
    spacing : tuple of 2 float or None
        Pixel Spacing (0028,0030): row spacing, column spacing in mm.
    thickness : float or None
        Slice Thickness (0018,0050) in mm.
    """

    path: str
    index: int
    values: np.ndarray
    params: DisplayParams
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    spacing: tuple[float, float] | None
    thickness: float | None

    @property
    def nbytes(self) -> int:
        """Size of :attr:`values` in bytes."""
        return int(self.values.nbytes)

    @property
    def rows(self) -> int:
        """Number of rows."""
        return int(self.values.shape[0])

    @property
    def columns(self) -> int:
        """Number of columns."""
        return int(self.values.shape[1])


def frame_count(path: str | os.PathLike[str]) -> int:
    """Return the number of frames in a file (0 when it has no pixel data).

    Parameters
    ----------
    path : str or os.PathLike
        The DICOM file.

    Returns
    -------
    int
        Number of Frames (0028,0008), or 1 for a single-frame image, or 0.

    Raises
    ------
    PixelDataError
        If the file cannot be read or its Number of Frames is invalid.
    """
    h = _header(path)
    return h.frames if h.pixel is not None else 0


# ---------------------------------------------------------------- decode ----


def read_frame(
    path: str | os.PathLike[str], index: int = 0, *, cache: FrameCache | None = None
) -> Frame:
    """Decode one frame of a file.

    Only the requested frame is read and decoded, also for multi-frame files
    (pydicom's decoder reads its bytes or its fragments from the file).

    Parameters
    ----------
    path : str or os.PathLike
        The DICOM file.
    index : int, optional
        The frame index, ``0 <= index < frame_count(path)``.
    cache : FrameCache, optional
        Frames are looked up in and stored into it, keyed by :func:`frame_key`.

    Returns
    -------
    Frame
        The values and their :class:`DisplayParams` (PS3.3 C.11), the geometry
        (C.7.6.2) and, for enhanced multi-frame, the frame's functional groups.

    Raises
    ------
    IndexError
        If `index` is out of range.
    PixelDataError
        If the file has no pixel data, it cannot be read, no decoder is installed for
        its transfer syntax or the data are truncated or corrupt. The message names the
        file, the transfer syntax and what to do.

    Examples
    --------
    >>> from dicomflow_lab.core import voi
    >>> frame = read_frame("CT_small.dcm")  # doctest: +SKIP
    >>> voi.render(frame, 40, 400).shape  # doctest: +SKIP
    (128, 128)
    """
    fspath = os.fspath(path)
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise TypeError(f"frame index must be an int, not {type(index).__name__}")
    index = int(index)
    key = None
    if cache is not None:
        try:
            key = frame_key(fspath, index)
        except OSError as exc:
            raise PixelDataError(f"{fspath}: cannot open: {exc.strerror or exc}") from exc
        hit = cache.get(key)
        if hit is not None:
            return hit
    h = _header(fspath)
    if h.pixel is None:
        raise PixelDataError(
            f"{fspath}: no Pixel Data (7FE0,0010), Float Pixel Data or Double Float Pixel "
            f"Data in this {_sop_name(h.ds)}: there is no image to show"
        )
    if not 0 <= index < h.frames:
        raise IndexError(f"frame index {index} is out of range: {fspath} has {h.frames} frame(s)")
    check_decoder(h.transfer_syntax, fspath)
    try:
        arr, props = _decode(h, index)
        values, photometric = _delivered(h, arr, props)
        frame = Frame(
            path=fspath,
            index=index,
            values=values,
            params=_display_params(h, index, photometric, values),
            **_geometry(h.ds, index),
        )
    except PixelDataError:
        raise
    except Exception as exc:  # pydicom and the plug-ins raise many types
        reason = " ".join(str(exc).split()).rstrip(".") or type(exc).__name__
        raise PixelDataError(
            f"{fspath}: cannot decode frame {index} ({_ts_name(h.transfer_syntax)}): "
            f"{reason}. {_hint(h)}"
        ) from exc
    if cache is not None and key is not None:
        cache.put(key, frame)
    return frame


def _decode(h: _Header, index: int) -> tuple[np.ndarray, dict[str, Any]]:
    ts = UID(h.transfer_syntax)
    decoder = get_decoder(ts)
    opts: dict[str, Any] = as_pixel_options(h.ds)
    opts["number_of_frames"] = h.frames
    pi = str(h.ds.get("PhotometricInterpretation", "")).strip().upper()
    if pi.startswith("YBR_FULL") and int(h.ds.get("BitsAllocated", 8) or 8) > 8:
        opts["as_rgb"] = False  # pydicom converts 8-bit only; done below after scaling
    if h.deflated:
        for name in ("transfer_syntax_uid", "pixel_keyword", "pixel_vr"):
            opts.pop(name, None)
        return decoder.as_array(h.ds, index=index, validate=True, raw=False, **opts)
    pixel = h.pixel
    assert pixel is not None
    if ts.is_encapsulated and pixel.length != 0xFFFFFFFF:
        raise PixelDataError(
            f"{h.path}: the pixel data of this {_ts_name(ts)} file has a defined length "
            "instead of the encapsulated format (PS3.5 A.4): the file is corrupt or its "
            "transfer syntax is wrong"
        )
    if not ts.is_encapsulated:
        _check_native_length(h, pixel, index)
    opts.update(transfer_syntax_uid=ts, pixel_keyword=pixel.keyword)
    if pixel.vr:
        opts["pixel_vr"] = pixel.vr
    with open(h.path, "rb") as fh:
        fh.seek(pixel.offset)
        return decoder.as_array(fh, index=index, validate=True, raw=False, **opts)


def _check_native_length(h: _Header, pixel: _PixelElement, index: int) -> None:
    ds = h.ds
    rows, cols = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    samples = int(ds.get("SamplesPerPixel") or 1)
    bits = int(ds.get("BitsAllocated") or 0)
    if pixel.keyword != "PixelData":
        bits = 32 if pixel.keyword == "FloatPixelData" else 64
    values = rows * cols * samples
    if str(ds.get("PhotometricInterpretation", "")).strip() == "YBR_FULL_422":
        values = values // 3 * 2  # two luminance values share one Cb, Cr pair
    needed = math.ceil((index + 1) * values * bits / 8)
    if rows <= 0 or cols <= 0 or bits <= 0:
        raise PixelDataError(
            f"{h.path}: invalid image attributes (Rows {rows}, Columns {cols}, Bits "
            f"Allocated {bits}); the pixel data cannot be interpreted"
        )
    if pixel.length < needed:
        raise PixelDataError(
            f"{h.path}: the pixel data ({_ts_name(h.transfer_syntax)}) holds "
            f"{pixel.length} bytes but frame {index} of {h.frames} ({rows} x {cols} x "
            f"{samples} samples, {bits} bits allocated) needs {needed}: the file is "
            "truncated or its image attributes are wrong"
        )


def _delivered(h: _Header, arr: np.ndarray, props: dict[str, Any]) -> tuple[np.ndarray, str]:
    """Turn pydicom's array into the delivered values and their photometric."""
    pi = str(props.get("photometric_interpretation") or h.ds.get("PhotometricInterpretation", ""))
    pi = pi.strip().upper()
    samples = int(props.get("samples_per_pixel") or 1)
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if samples == 1:
        if pi == "PALETTE COLOR":
            return np.ascontiguousarray(_palette(h, arr)), "RGB"
        if arr.dtype.kind == "f":
            arr = arr.astype(np.float32, copy=False)
        if pi not in ("MONOCHROME1", "MONOCHROME2"):
            logger.debug("%s: photometric %r with one sample shown as MONOCHROME2", h.path, pi)
            pi = "MONOCHROME2"
        return np.ascontiguousarray(arr), pi
    if samples == 3 and pi in ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT"):
        bits = int(props.get("bits_stored") or h.ds.get("BitsStored") or 8)
        rgb = _to_8bit(arr, bits)
        if pi.startswith("YBR_FULL"):
            rgb = convert_color_space(rgb, "YBR_FULL", "RGB")
        return np.ascontiguousarray(rgb), "RGB"
    raise PixelDataError(
        f"{h.path}: photometric interpretation {pi!r} with {samples} samples per pixel "
        "is not supported for display (only MONOCHROME1/2, PALETTE COLOR, RGB and "
        "YBR_FULL/YBR_FULL_422/YBR_ICT/YBR_RCT)"
    )


def _to_8bit(arr: np.ndarray, bits: int) -> np.ndarray:
    if arr.dtype == np.uint8 and bits >= 8:
        return arr
    top = float(2 ** min(max(bits, 1), 32) - 1)
    scaled = np.rint(arr.astype(np.float64) * (255.0 / top))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def _palette(h: _Header, arr: np.ndarray) -> np.ndarray:
    """Map stored indices through the (possibly segmented) palette, PS3.3 C.7.9."""
    table = h.memo.get("palette")
    if table is None:
        ds = h.ds
        bits = min(int(ds.get("BitsStored") or 8), 16)
        signed = int(ds.get("PixelRepresentation") or 0) == 1
        low = -(2 ** (bits - 1)) if signed else 0
        domain = np.arange(low, low + 2**bits, dtype=np.int32)
        rgb = apply_color_lut(domain, ds)[..., :3]
        depth = int(ds.RedPaletteColorLookupTableDescriptor[2])
        if rgb.dtype == np.uint8 or (depth == 8 and int(rgb.max(initial=0)) <= 255):
            rgb8 = rgb.astype(np.uint8)
        else:
            rgb8 = _to_8bit(rgb, 16)
        table = (low, rgb8)
        h.memo["palette"] = table
    low, rgb8 = table
    idx = np.clip(arr.astype(np.int64) - low, 0, len(rgb8) - 1)
    return rgb8[idx]


def _ts_name(ts: str) -> str:
    name = UID(ts).name
    return f"{name}, {ts}" if name and name != ts else str(ts)


def _sop_name(ds: Dataset) -> str:
    sop = ds.get("SOPClassUID") or getattr(
        getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", ""
    )
    name = UID(str(sop)).name if sop else ""
    return name or "file"


def _hint(h: _Header) -> str:
    ts = UID(h.transfer_syntax)
    if ts.is_encapsulated:
        extra = (
            "; GDCM (`pip install python-gdcm`) decodes some JPEG variants libjpeg refuses"
            if ts.keyword.startswith("JPEG") and "2000" not in ts.keyword
            else ""
        )
        return (
            "The compressed data are corrupt or truncated, or the installed plug-ins "
            "cannot decode this variant (`dicomflow_lab.core.codecs.decoder_status()` "
            f"lists them){extra}"
        )
    return "The file is truncated or its image attributes (group 0028) are wrong"


# ---------------------------------------------------------------- params ----


def _groups(ds: Dataset, index: int) -> tuple[Dataset | None, Dataset | None]:
    per_frame = shared = None
    seq = ds.get("PerFrameFunctionalGroupsSequence")
    if seq is not None and index < len(seq):
        per_frame = seq[index]
    seq = ds.get("SharedFunctionalGroupsSequence")
    if seq:
        shared = seq[0]
    return per_frame, shared


def _macro(ds: Dataset, index: int, keyword: str) -> Dataset | None:
    """Return a functional group macro's item: per-frame, else shared (C.7.6.16)."""
    for group in _groups(ds, index):
        if group is not None:
            seq = group.get(keyword)
            if seq:
                return seq[0]
    return None


def _float(value: Any, default: float | None) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) else default


def _floats(value: Any, count: int) -> tuple[float, ...] | None:
    if value is None:
        return None
    items = (
        list(value) if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) else [value]
    )
    out = tuple(_float(v, None) for v in items)
    if len(out) != count or any(v is None for v in out):
        return None
    return tuple(float(v) for v in out if v is not None)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return list(value)
    return [value]


def _windows(src: Dataset) -> tuple[WindowPreset, ...]:
    centers = _as_list(src.get("WindowCenter"))
    widths = _as_list(src.get("WindowWidth"))
    names = _as_list(src.get("WindowCenterWidthExplanation"))
    out = []
    for k, (c, w) in enumerate(zip(centers, widths, strict=False)):
        center, width = _float(c, None), _float(w, None)
        if center is None or width is None:
            continue
        name = str(names[k]).strip() if k < len(names) and names[k] else ""
        out.append(WindowPreset(name or f"Window {k + 1}", center, width, "dataset"))
    return tuple(out)


def _lut_first(desc: Any, signed_input: bool) -> tuple[int, int, int]:
    entries, first, bits = (int(v) for v in list(desc)[:3])
    if signed_input and first >= 2**15:
        first -= 2**16  # "US or SS": signed when the input is signed (C.11.1.1.1)
    return entries or 2**16, first, bits


def _lut_data(item: Dataset, ds: Dataset, entries: int) -> list[int]:
    elem = item["LUTData"]
    value = elem.value
    if isinstance(value, (bytes, bytearray)):
        little = getattr(ds, "original_encoding", (None, True))[1] is not False
        count = len(value) // 2
        fmt = ("<" if little else ">") + f"{count}H"
        return list(struct.unpack(fmt, value[: count * 2]))[:entries]
    return [int(v) for v in _as_list(value)][:entries]


def _display_params(h: _Header, index: int, photometric: str, values: np.ndarray) -> DisplayParams:
    ds = h.ds
    if photometric == "RGB":
        return DisplayParams(
            "RGB", 3, 8, False, False, 1.0, 0.0, "", None, "LINEAR", (), None, False
        )
    is_float = values.dtype.kind == "f"
    signed = is_float or values.dtype.kind == "i"
    if is_float:
        bits = 64 if h.pixel is not None and h.pixel.keyword == "DoubleFloatPixelData" else 32
    else:
        bits = int(ds.get("BitsStored") or values.dtype.itemsize * 8)
    transform = _macro(ds, index, "PixelValueTransformationSequence") or ds
    slope = _float(transform.get("RescaleSlope"), 1.0) or 1.0
    intercept = _float(transform.get("RescaleIntercept"), 0.0) or 0.0
    rescale_type = str(transform.get("RescaleType") or ds.get("RescaleType") or "").strip()
    modality_lut = None
    seq = ds.get("ModalityLUTSequence")
    if seq and not is_float and "LUTDescriptor" in seq[0] and "LUTData" in seq[0]:
        entries, first, _ = _lut_first(seq[0].LUTDescriptor, signed)
        modality_lut = (first, tuple(float(v) for v in _lut_data(seq[0], ds, entries)))
        slope, intercept = 1.0, 0.0
        rescale_type = str(seq[0].get("ModalityLUTType") or "").strip()
    if not rescale_type and modality_lut is None and str(ds.get("Modality", "")).upper() == "CT":
        rescale_type = "HU"  # CT Image: Rescale Type is required only when not HU (C.8.2.1)
    voi = _macro(ds, index, "FrameVOILUTSequence")
    windows = _windows(voi) if voi is not None else ()
    if not windows:
        windows = _windows(ds)
    function = (voi.get("VOILUTFunction") if voi is not None else None) or ds.get("VOILUTFunction")
    function = str(function or "LINEAR").strip().upper()
    if function not in ("LINEAR", "LINEAR_EXACT", "SIGMOID"):
        logger.debug("%s: unknown VOI LUT Function %r, using LINEAR", h.path, function)
        function = "LINEAR"
    voi_lut = None
    seq = ds.get("VOILUTSequence")
    if seq and "LUTDescriptor" in seq[0] and "LUTData" in seq[0]:
        may_be_negative = signed or intercept < 0 or slope < 0
        entries, first, lut_bits = _lut_first(seq[0].LUTDescriptor, may_be_negative)
        voi_lut = (first, lut_bits, tuple(_lut_data(seq[0], ds, entries)))
    return DisplayParams(
        photometric=photometric,
        samples=1,
        bits_stored=bits,
        signed=signed,
        is_float=is_float,
        slope=float(slope),
        intercept=float(intercept),
        rescale_type=rescale_type,
        modality_lut=modality_lut,
        voi_function=function,
        windows=windows,
        voi_lut=voi_lut,
        invert=photometric == "MONOCHROME1",
    )


def _geometry(ds: Dataset, index: int) -> dict[str, Any]:
    plane = _macro(ds, index, "PlanePositionSequence") or ds
    orient = _macro(ds, index, "PlaneOrientationSequence") or ds
    measures = _macro(ds, index, "PixelMeasuresSequence") or ds
    position = _floats(plane.get("ImagePositionPatient"), 3)
    spacing = _floats(measures.get("PixelSpacing") or ds.get("PixelSpacing"), 2)
    thickness = _float(measures.get("SliceThickness") or ds.get("SliceThickness"), None)
    return {
        "position": position,
        "orientation": _floats(orient.get("ImageOrientationPatient"), 6),
        "spacing": spacing,
        "thickness": thickness,
    }


# --------------------------------------------------------------- overlays ---


def overlay(path: str | os.PathLike[str], index: int = 0) -> list[tuple[int, np.ndarray]]:
    """Return the overlay planes (60xx groups) that apply to one frame, PS3.3 C.9.2.

    Parameters
    ----------
    path : str or os.PathLike
        The DICOM file.
    index : int, optional
        The image frame (0-based); a multi-frame overlay contributes its frame
        ``index - (Image Frame Origin - 1)`` when that exists.

    Returns
    -------
    list of (int, numpy.ndarray)
        ``(group, mask)`` per overlay, ``mask`` a ``bool`` array of the image's
        ``(rows, cols)`` with the overlay placed at its Overlay Origin (60xx,0050).
        Overlays embedded in the high bits of the pixel data (retired) are not read.

    Raises
    ------
    PixelDataError
        If the file cannot be read or an overlay is malformed.
    """
    h = _header(path)
    ds = h.ds
    rows, cols = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    groups = [g for g in range(0x6000, 0x6020, 2) if (g, 0x3000) in ds]
    out: list[tuple[int, np.ndarray]] = []
    for group in groups:
        try:
            data = ds.overlay_array(group)
            origin = _as_list(ds.get((group, 0x0050)).value if (group, 0x0050) in ds else [1, 1])
            first = int(ds[group, 0x0051].value) if (group, 0x0051) in ds else 1
        except Exception as exc:
            raise PixelDataError(
                f"{h.path}: overlay group {group:04X} is malformed: {exc}"
            ) from exc
        frames = data if data.ndim == 3 else data[np.newaxis]
        k = index - (first - 1)
        if not 0 <= k < len(frames):
            continue
        mask = np.zeros((rows, cols), dtype=bool)
        r0, c0 = int(origin[0]) - 1, int(origin[1]) - 1
        plane = frames[k].astype(bool)
        rs, cs = max(r0, 0), max(c0, 0)
        re, ce = min(r0 + plane.shape[0], rows), min(c0 + plane.shape[1], cols)
        if rs < re and cs < ce:
            mask[rs:re, cs:ce] = plane[rs - r0 : re - r0, cs - c0 : ce - c0]
        out.append((group, mask))
    return out
