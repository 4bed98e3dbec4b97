r"""Burned-in identifying text: find instances at risk and black out known regions.

PS3.15 E.3.1 (Clean Pixel Data Option) requires identifying information drawn into the
pixel data to be removed. Table E.1-1 has no column for it, so it is handled here, by
three functions the engine calls for every instance:

- :func:`assess` says whether an instance is at risk of burned-in text, and why;
- :func:`match_rule` finds the template's :class:`~.templates.PixelRule` for the device
  (manufacturer, model, rows, columns), as RSNA CTP's ``DicomPixelAnonymizer`` does with
  its signatures;
- :func:`apply_rule` blacks out the rule's rectangles in every frame.

An instance at risk with no matching rule is quarantined by the engine.

**At risk** (checked in this order; the lists are data, in ``data/burned-in-risk.json``):

1. Encapsulated PDF and CDA documents: always, whatever Burned In Annotation
   (0028,0301) says. Their text cannot be cleaned by a pixel rule, so
   :func:`apply_rule` refuses them.
2. Instances without an image, i.e. no Pixel Data, Float Pixel Data or Double Float
   Pixel Data and no Rows/Columns (SR, PR, KOS, RT Structure Set …): never. Structured
   text is the job of the Clean Structured Content option.
3. Burned In Annotation = ``YES``: at risk. ``NO``: **not** at risk. The attribute is
   trusted (PS3.3 C.7.6.1.1.7 makes the creator responsible for it), as deid's
   "Marked as Clean" whitelist and CTP do; a site that does not trust its devices should
   use a template override or a rule for them.
4. Burned In Annotation absent (or neither YES nor NO), and one of:

   - the SOP class is a secondary capture (all five), ultrasound (single and
     multi-frame, incl. the retired ones), X-ray angiography or fluoroscopy (incl.
     enhanced), VL endoscopic / microscopic / photographic (still and video), ophthalmic
     photography, or a retired hardcopy print;
   - the Modality is US, IVUS, XA, RF, ES, XC, GM, OP, SC (not a defined term, but
     written by many capture tools), OT or DOC;
   - Image Type (0008,0008) has a value containing ``SAVE`` (``SCREEN SAVE``, in any
     modality: dose screens, workstation captures); or is ``DERIVED`` and
     ``SECONDARY`` for a projection radiograph (CR, DX, MG, IO, PX, DG); or is a slide
     microscopy ``LABEL`` or ``OVERVIEW`` image.

Sources: DICOM PS3.15 E.3.1 and PS3.3 C.7.6.1.1.7 / C.24.2; RSNA CTP's
``BurnedInPixels`` filter (ImageType contains SAVE, secondary capture, ultrasound) and
``DicomPixelAnonymizer.script`` (per-device regions), as carried over by pydicom/deid
(``deid/data/deid.dicom``); the TCIA/NBIA submission profile, which flags
``SCREEN SAVE`` and Burned In Annotation YES.

**Blacking out.** Rectangles are ``[x, y, width, height]`` in pixels (column, row),
clipped to the image; a rectangle entirely outside the image is an error (the rule does
not fit the instance). Every frame is cleaned. Inside a rectangle the stored values become
0 (black for MONOCHROME2 and RGB, white for MONOCHROME1, palette entry 0 for PALETTE
COLOR); for YBR_FULL and YBR_FULL_422 pixels the luminance becomes 0 and both chroma
samples the middle value, i.e. black. Whatever the colour, the text is gone.

- **Native** transfer syntaxes (Implicit/Explicit VR Little Endian, Explicit VR Big
  Endian, Deflated): the Pixel Data bytes are changed in place and nothing else, so the
  transfer syntax, photometric interpretation, planar configuration, bits and every
  byte outside the rectangles stay as they were. YBR_FULL_422 stores two pixels per
  chroma pair, so a rectangle edge on an odd column is widened by one column (the
  rectangles reported in :class:`BlackoutResult` are the ones applied).
- **Lossless** compressed sources are decoded (no colour conversion: the values are
  those the codec stores; JPEG 2000 returns RGB for YBR_RCT as the standard defines), cleaned
  and re-encoded in the **same** transfer syntax when pydicom has a usable encoder for it
  (RLE Lossless: pydicom's own or pylibjpeg-rle; JPEG 2000 Lossless: pylibjpeg-openjpeg,
  with the reversible colour transform when the source said YBR_RCT). The result is
  decoded again and compared with the cleaned values before it is kept. Where there is
  no encoder (JPEG Lossless, JPEG-LS Lossless without pyjpegls, HTJ2K) or the encoder
  refuses the data (RLE with 32-bit RGB), the pixels are written as native Explicit VR
  Little Endian instead, and :attr:`BlackoutResult.note` says why. No information is lost
  either way, so the instance keeps its identity (``new_instance`` False).
- **Lossy** sources (JPEG Baseline/Extended, JPEG-LS Near-Lossless, JPEG 2000 and HTJ2K
  unless Lossy Image Compression is ``00``) are decoded as pydicom does by default:
  YBR_FULL / YBR_FULL_422 JPEG data are converted to RGB by pydicom (libjpeg upsamples
  the chroma, pydicom's ``convert_color_space`` applies the PS3.3 C.7.6.3.1.2
  equations). They are written as native Explicit VR Little Endian, never re-compressed
  lossily (that would degrade the image again), with Photometric Interpretation set to
  what was decoded (e.g. RGB), Planar Configuration 0, Lossy Image Compression ``01``
  and the original Lossy Image Compression Method / Ratio kept (the method, and the
  ratio, are added from the transfer syntax and the sizes when the source lacked both).
  ``new_instance`` is True: the engine gives the result a new SOP Instance UID.

In every case Burned In Annotation is set to ``NO`` afterwards and the file meta
Transfer Syntax UID follows the pixel data. The input file is never touched: only the
given :class:`~pydicom.dataset.Dataset` is changed.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
from pydicom import uid as _uid
from pydicom.dataset import Dataset
from pydicom.pixels import get_decoder, get_encoder
from pydicom.pixels.utils import pack_bits, unpack_bits
from pydicom.uid import UID

from ..core.codecs import check_decoder
from ..errors import AnonymizationError, PixelDataError
from .templates import PixelRule, Rectangle, template_from_dict

__all__ = [
    "BlackoutResult",
    "apply_rule",
    "assess",
    "describe_rule",
    "example_pixel_rules",
    "match_rule",
]

logger = logging.getLogger(__name__)

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")

#: Encapsulated transfer syntaxes whose data are lossless by definition.
_LOSSLESS = frozenset(
    {
        _uid.RLELossless,
        _uid.JPEGLossless,
        _uid.JPEGLosslessSV1,
        _uid.JPEGLSLossless,
        _uid.JPEG2000Lossless,
        _uid.HTJ2KLossless,
        _uid.HTJ2KLosslessRPCL,
    }
)
#: Always lossy.
_LOSSY = frozenset({_uid.JPEGBaseline8Bit, _uid.JPEGExtended12Bit})
#: Lossy unless Lossy Image Compression (0028,2110) says ``00`` (reversible coding).
_MAYBE_LOSSY = frozenset({_uid.JPEGLSNearLossless, _uid.JPEG2000, _uid.HTJ2K})
#: Defined terms of Lossy Image Compression Method (0028,2114), PS3.3 C.7.6.1.1.5.1.
_LOSSY_METHOD = {
    _uid.JPEGBaseline8Bit: "ISO_10918_1",
    _uid.JPEGExtended12Bit: "ISO_10918_1",
    _uid.JPEGLSNearLossless: "ISO_14495_1",
    _uid.JPEG2000: "ISO_15444_1",
    _uid.HTJ2K: "ISO_15444_15",
}


# -- the risk lists ---------------------------------------------------------------------


@dataclass(frozen=True)
class _ImageTypeRule:
    match: str  # "substring", "all" or "any"
    values: tuple[str, ...]
    modalities: frozenset[str] | None
    why: str

    def matches(self, image_type: Sequence[str], modality: str) -> bool:
        if self.modalities is not None and modality not in self.modalities:
            return False
        if self.match == "substring":
            return any(v in value for value in image_type for v in self.values)
        if self.match == "all":
            return all(v in image_type for v in self.values)
        return any(v in image_type for v in self.values)


@dataclass(frozen=True)
class _Risk:
    documents: dict[str, tuple[str, str]]
    sop_classes: dict[str, tuple[str, str]]
    modalities: dict[str, tuple[str, str]]
    image_types: tuple[_ImageTypeRule, ...]


def _data_text(name: str) -> str:
    return resources.files(__package__).joinpath("data", name).read_text(encoding="utf-8")


@functools.cache
def _risk() -> _Risk:
    raw = json.loads(_data_text("burned-in-risk.json"))
    image_types = []
    for item in raw["image_types"]:
        if item["match"] not in ("substring", "all", "any"):
            raise ValueError(f"burned-in-risk.json: unknown image type match {item['match']!r}")
        mods = item.get("modalities")
        image_types.append(
            _ImageTypeRule(
                item["match"],
                tuple(v.upper() for v in item["values"]),
                None if mods is None else frozenset(m.upper() for m in mods),
                item["why"],
            )
        )
    return _Risk(
        documents={d["uid"]: (d["name"], d["why"]) for d in raw["documents"]},
        sop_classes={d["uid"]: (d["name"], d["why"]) for d in raw["sop_classes"]},
        modalities={d["value"].upper(): (d["name"], d["why"]) for d in raw["modalities"]},
        image_types=tuple(image_types),
    )


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip().upper()


def _sop_class(ds: Dataset) -> str:
    sop = ds.get("SOPClassUID")
    if not sop:
        meta = getattr(ds, "file_meta", None)
        sop = meta.get("MediaStorageSOPClassUID") if meta is not None else None
    return str(sop or "").strip()


def _has_image(ds: Dataset) -> bool:
    if any(kw in ds for kw in _PIXEL_KEYWORDS):
        return True
    # A header read without its pixel data (stop_before_pixels) still describes an image.
    return "Rows" in ds and "Columns" in ds


def _image_type(ds: Dataset) -> list[str]:
    value = ds.get("ImageType")
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    return [_text(v) for v in items]


def assess(ds: Dataset) -> str | None:
    """Say why an instance is at risk of burned-in identifying text, if it is.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The instance (its header is enough).

    Returns
    -------
    str or None
        A sentence giving the reason (it names attributes and defined terms, never a
        patient's value), or ``None`` when the instance is not considered at risk. The
        rules and their sources are in the module docstring.

    Examples
    --------
    >>> from pydicom.dataset import Dataset
    >>> ds = Dataset()
    >>> ds.Modality, ds.Rows, ds.Columns = "US", 480, 640
    >>> assess(ds).startswith("Burned In Annotation (0028,0301) is absent")
    True
    >>> ds.BurnedInAnnotation = "NO"
    >>> assess(ds) is None
    True
    """
    risk = _risk()
    sop = _sop_class(ds)
    if sop in risk.documents:
        name, why = risk.documents[sop]
        return (
            f"the instance is an {name} document: {why}; documents are always treated "
            "as at risk, whatever Burned In Annotation (0028,0301) says"
        )
    if not _has_image(ds):
        return None
    bia = _text(ds.get("BurnedInAnnotation"))
    if bia == "YES":
        return (
            "Burned In Annotation (0028,0301) is YES: the creator says identifying text "
            "is drawn into the pixels"
        )
    if bia == "NO":
        return None
    lead = (
        "Burned In Annotation (0028,0301) is absent"
        if not bia
        else "Burned In Annotation (0028,0301) is neither YES nor NO"
    )
    if sop in risk.sop_classes:
        name, why = risk.sop_classes[sop]
        return f"{lead} and the SOP class is {name}: {why}"
    modality = _text(ds.get("Modality"))
    if modality in risk.modalities:
        name, why = risk.modalities[modality]
        return f"{lead} and the modality is {modality} ({name}): {why}"
    image_type = _image_type(ds)
    for rule in risk.image_types:
        if rule.matches(image_type, modality):
            shown = "\\".join(v for v in image_type if v)
            return f"{lead} and Image Type (0008,0008) is {shown}: {rule.why}"
    return None


# -- rules ------------------------------------------------------------------------------


def _norm(value: Any) -> str | None:
    return None if value is None else str(value).strip().casefold()


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def match_rule(rules: Sequence[PixelRule], ds: Dataset) -> PixelRule | None:
    """Return the first rule that fits the instance's device and image size.

    Parameters
    ----------
    rules : sequence of PixelRule
        In the template's order.
    ds : pydicom.dataset.Dataset
        The instance.

    Returns
    -------
    PixelRule or None
        The first rule whose manufacturer (0008,0070) and model (0008,1090) equal the
        instance's (compared without case and surrounding spaces), and whose rows and
        columns equal (0028,0010) and (0028,0011); a ``None`` field matches anything,
        a field the instance lacks matches only ``None``.

    Examples
    --------
    >>> from pydicom.dataset import Dataset
    >>> from dicomflow_lab.anonymize import PixelRule, Rectangle
    >>> rule = PixelRule((Rectangle(0, 0, 640, 40),), manufacturer="ACME", rows=480)
    >>> ds = Dataset()
    >>> ds.Manufacturer, ds.Rows, ds.Columns = " acme ", 480, 640
    >>> match_rule([rule], ds) is rule
    True
    """
    manufacturer = _norm(ds.get("Manufacturer"))
    model = _norm(ds.get("ManufacturerModelName"))
    rows, columns = _int(ds.get("Rows")), _int(ds.get("Columns"))
    for rule in rules:
        if rule.manufacturer is not None and _norm(rule.manufacturer) != manufacturer:
            continue
        if rule.model is not None and _norm(rule.model) != model:
            continue
        if rule.rows is not None and rule.rows != rows:
            continue
        if rule.columns is not None and rule.columns != columns:
            continue
        return rule
    return None


def describe_rule(rule: PixelRule) -> str:
    """Describe a pixel rule in one line (for reports and the audit).

    Examples
    --------
    >>> from dicomflow_lab.anonymize import PixelRule, Rectangle
    >>> describe_rule(PixelRule((Rectangle(0, 0, 640, 40),), "ACME", None, 480, 640))
    "manufacturer 'ACME', any model, 480 x 640 (rows x columns): [0, 0, 640, 40]"
    """
    man = (
        f"manufacturer {rule.manufacturer!r}"
        if rule.manufacturer is not None
        else "any manufacturer"
    )
    model = f"model {rule.model!r}" if rule.model is not None else "any model"
    rows = str(rule.rows) if rule.rows is not None else "any"
    cols = str(rule.columns) if rule.columns is not None else "any"
    rects = ", ".join(f"[{r.x}, {r.y}, {r.width}, {r.height}]" for r in rule.rectangles)
    return f"{man}, {model}, {rows} x {cols} (rows x columns): {rects}"


@functools.cache
def example_pixel_rules() -> tuple[PixelRule, ...]:
    """Return the example rules shipped in ``data/pixel-rules-example.json``.

    The file is a complete template (the Basic Profile plus ``pixel_rules``) with rules
    for the five ultrasound files of the ``deid-data`` package (Philips EPIQ 5G and
    Affiniti 70G, Siemens S2000, Teratech Terason). Copy its ``pixel_rules`` into your
    own template, checking each rectangle against your devices' screens.

    Returns
    -------
    tuple of PixelRule
    """
    raw = json.loads(_data_text("pixel-rules-example.json"))
    return template_from_dict(raw, source="pixel-rules-example.json").pixel_rules


# -- blackout ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BlackoutResult:
    """What :func:`apply_rule` did to one instance.

    Attributes
    ----------
    rule : PixelRule
        The rule applied.
    rectangles : tuple of Rectangle
        The rectangles blacked out, clipped to the image (and widened to whole chroma
        pairs for native YBR_FULL_422).
    frames : int
        Frames cleaned (all of them).
    transfer_syntax_in, transfer_syntax_out : str
        Transfer Syntax UIDs before and after.
    new_instance : bool
        True when the source was lossy compressed and is now stored decoded: the
        engine must give the instance a new SOP Instance UID.
    lossy : bool
        True when the source transfer syntax was lossy; Lossy Image Compression is
        ``01`` in the result.
    note : str
        Why the transfer syntax changed, when it did; empty otherwise.
    """

    rule: PixelRule
    rectangles: tuple[Rectangle, ...]
    frames: int
    transfer_syntax_in: str
    transfer_syntax_out: str
    new_instance: bool
    lossy: bool
    note: str = ""


@dataclass(frozen=True)
class _Image:
    where: str
    keyword: str
    ts: UID
    rows: int
    cols: int
    frames: int
    samples: int
    bits: int
    bits_stored: int
    photometric: str


def _where(ds: Dataset, source: str | None) -> str:
    if source:
        return str(source)
    filename = getattr(ds, "filename", None)
    if isinstance(filename, str) and filename:
        return filename
    return f"instance {ds.get('SOPInstanceUID', '(no SOP Instance UID)')}"


def _image(ds: Dataset, where: str) -> _Image:
    keyword = next((kw for kw in _PIXEL_KEYWORDS if kw in ds), None)
    if keyword is None:
        raise AnonymizationError(
            f"{where}: no Pixel Data (7FE0,0010) to clean; a pixel rule applies to images "
            "only (read the file with its pixel data)"
        )
    meta = getattr(ds, "file_meta", None)
    ts_value = meta.get("TransferSyntaxUID") if meta is not None else None
    if not ts_value:
        raise AnonymizationError(
            f"{where}: no Transfer Syntax UID (0002,0010) in the file meta information, "
            "so the pixel data cannot be interpreted"
        )
    ts = UID(str(ts_value))
    if not ts.is_transfer_syntax:
        raise AnonymizationError(f"{where}: unknown transfer syntax {str(ts)!r}")
    rows, cols = _int(ds.get("Rows")) or 0, _int(ds.get("Columns")) or 0
    frames = _int(ds.get("NumberOfFrames") or 1) or 0
    samples = _int(ds.get("SamplesPerPixel") or 1) or 0
    if keyword == "PixelData":
        bits = _int(ds.get("BitsAllocated")) or 0
    else:
        bits = 32 if keyword == "FloatPixelData" else 64
    bits_stored = _int(ds.get("BitsStored")) or bits
    if min(rows, cols, frames, samples, bits) <= 0:
        raise AnonymizationError(
            f"{where}: invalid image attributes (Rows {rows}, Columns {cols}, Number of "
            f"Frames {frames}, Samples per Pixel {samples}, Bits Allocated {bits})"
        )
    return _Image(
        where=where,
        keyword=keyword,
        ts=ts,
        rows=rows,
        cols=cols,
        frames=frames,
        samples=samples,
        bits=bits,
        bits_stored=min(bits_stored, bits),
        photometric=_text(ds.get("PhotometricInterpretation")),
    )


def _clip(rule: PixelRule, img: _Image) -> tuple[Rectangle, ...]:
    out = []
    for i, r in enumerate(rule.rectangles):
        x0, y0 = max(r.x, 0), max(r.y, 0)
        x1, y1 = min(r.x + r.width, img.cols), min(r.y + r.height, img.rows)
        if x0 >= x1 or y0 >= y1:
            raise AnonymizationError(
                f"{img.where}: rectangle {i} [{r.x}, {r.y}, {r.width}, {r.height}] of the "
                f"pixel rule ({describe_rule(rule)}) lies entirely outside the image "
                f"({img.rows} rows x {img.cols} columns); fix the rule or restrict it "
                "with rows and columns"
            )
        if (x0, y0, x1, y1) != (r.x, r.y, r.x + r.width, r.y + r.height):
            logger.debug("%s: rectangle %d clipped to the image", img.where, i)
        out.append(Rectangle(x0, y0, x1 - x0, y1 - y0))
    return tuple(out)


def _fill(photometric: str, samples: int, bits_stored: int) -> list[int]:
    """Return the stored values of black: 0, or (0, mid, mid) for YCbCr."""
    if samples == 3 and photometric.startswith("YBR_FULL"):
        mid = 1 << (max(bits_stored, 1) - 1)
        return [0, mid, mid]
    return [0] * samples


def apply_rule(ds: Dataset, rule: PixelRule, *, source: str | None = None) -> BlackoutResult:
    """Black out the rule's rectangles in every frame of ``ds``, in place.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The instance, read with its pixel data. It is changed in place (Pixel Data,
        the image pixel attributes when the pixels had to be stored decoded, the Lossy
        Image Compression attributes, Burned In Annotation and the file meta Transfer
        Syntax UID); the file it came from is not.
    rule : PixelRule
        The rule, usually from :func:`match_rule`.
    source : str, optional
        How to name the instance in errors; defaults to ``ds.filename`` or its SOP
        Instance UID.

    Returns
    -------
    BlackoutResult
        The rectangles applied, the transfer syntaxes, and whether the instance needs a
        new SOP Instance UID (lossy source).

    Raises
    ------
    AnonymizationError
        Naming the instance and the reason: no pixel data, an encapsulated document, a
        rectangle entirely outside the image, no decoder (with the ``pip install`` line),
        corrupt or truncated pixel data.

    Examples
    --------
    >>> import pydicom
    >>> from dicomflow_lab.anonymize import PixelRule, Rectangle
    >>> ds = pydicom.dcmread(pydicom.data.get_testdata_file("SC_rgb_rle.dcm"))
    >>> result = apply_rule(ds, PixelRule((Rectangle(0, 0, 100, 10),)))
    >>> result.transfer_syntax_out == result.transfer_syntax_in, str(ds.BurnedInAnnotation)
    (True, 'NO')
    """
    where = _where(ds, source)
    sop = _sop_class(ds)
    if sop in _risk().documents:
        raise AnonymizationError(
            f"{where}: an {_risk().documents[sop][0]} document cannot be cleaned by a pixel "
            "rule (its text is not in pixels); leave it out of the selection"
        )
    img = _image(ds, where)
    rects = _clip(rule, img)
    if not img.ts.is_encapsulated:
        rects = _blackout_native(ds, img, rects)
        ts_out, new_instance, lossy, note = img.ts, False, False, ""
    else:
        ts_out, new_instance, lossy, note = _blackout_encapsulated(ds, img, rects)
    ds.BurnedInAnnotation = "NO"
    logger.debug(
        "%s: blacked out %d rectangle(s) in %d frame(s), %s -> %s",
        where,
        len(rects),
        img.frames,
        img.ts.name,
        UID(ts_out).name,
    )
    return BlackoutResult(
        rule=rule,
        rectangles=rects,
        frames=img.frames,
        transfer_syntax_in=str(img.ts),
        transfer_syntax_out=str(ts_out),
        new_instance=new_instance,
        lossy=lossy,
        note=note,
    )


# -- native -----------------------------------------------------------------------------


def _blackout_native(
    ds: Dataset, img: _Image, rects: tuple[Rectangle, ...]
) -> tuple[Rectangle, ...]:
    """Zero the rectangles directly in the Pixel Data bytes; nothing else changes."""
    elem = ds[img.keyword]
    data = elem.value
    if not isinstance(data, (bytes, bytearray)) or not data:
        raise AnonymizationError(f"{img.where}: the pixel data are empty")
    if img.bits == 1:
        _blackout_bits(ds, img, rects, bytes(data))
        return rects
    if img.bits % 8 or img.bits // 8 not in (1, 2, 4, 8):
        raise AnonymizationError(
            f"{img.where}: Bits Allocated {img.bits} is not supported for a blackout "
            "(1, 8, 16, 32 or 64)"
        )
    size = img.bits // 8
    ybr422 = img.photometric == "YBR_FULL_422" and img.samples == 3
    if ybr422 and img.cols % 2:
        raise AnonymizationError(
            f"{img.where}: YBR_FULL_422 pixel data with an odd number of columns "
            f"({img.cols}) is invalid (PS3.3 C.7.6.3.1.2)"
        )
    per_frame = img.rows * img.cols * (2 if ybr422 else img.samples)
    needed = per_frame * img.frames * size
    if len(data) < needed:
        raise AnonymizationError(
            f"{img.where}: the pixel data hold {len(data)} bytes but {img.frames} frame(s) "
            f"of {img.rows} x {img.cols} x {img.samples} samples at {img.bits} bits need "
            f"{needed}: the file is truncated or its image attributes are wrong"
        )
    buf = bytearray(data)
    order = "<" if img.ts.is_little_endian else ">"
    values = np.frombuffer(buf, dtype=np.dtype(f"{order}u{size}"), count=needed // size)
    fill = _fill(img.photometric, img.samples, img.bits_stored)
    applied = []
    if ybr422:
        # Y1 Y2 Cb Cr per pair of pixels (PS3.3 C.7.6.3.1.2): clean whole pairs.
        pairs = values.reshape(img.frames, img.rows, img.cols // 2, 4)
        for r in rects:
            p0, p1 = r.x // 2, math.ceil((r.x + r.width) / 2)
            pairs[:, r.y : r.y + r.height, p0:p1, 0:2] = 0
            pairs[:, r.y : r.y + r.height, p0:p1, 2:4] = fill[1]
            applied.append(Rectangle(2 * p0, r.y, 2 * (p1 - p0), r.height))
        rects = tuple(applied)
    elif img.samples == 1:
        grid = values.reshape(img.frames, img.rows, img.cols)
        for r in rects:
            grid[:, r.y : r.y + r.height, r.x : r.x + r.width] = 0
    elif _int(ds.get("PlanarConfiguration") or 0) == 1:
        planes = values.reshape(img.frames, img.samples, img.rows, img.cols)
        for r in rects:
            for s in range(img.samples):
                planes[:, s, r.y : r.y + r.height, r.x : r.x + r.width] = fill[s]
    else:
        pixels = values.reshape(img.frames, img.rows, img.cols, img.samples)
        for r in rects:
            pixels[:, r.y : r.y + r.height, r.x : r.x + r.width, :] = fill
    elem.value = bytes(buf)
    return rects


def _blackout_bits(ds: Dataset, img: _Image, rects: tuple[Rectangle, ...], data: bytes) -> None:
    if img.samples != 1:
        raise AnonymizationError(f"{img.where}: 1-bit pixel data must have one sample")
    count = img.frames * img.rows * img.cols
    bits = np.array(unpack_bits(data, as_array=True), dtype=np.uint8)
    if bits.size < count:
        raise AnonymizationError(
            f"{img.where}: the 1-bit pixel data hold {bits.size} bits but {img.frames} "
            f"frame(s) of {img.rows} x {img.cols} need {count}: the file is truncated"
        )
    grid = bits[:count].reshape(img.frames, img.rows, img.cols)
    for r in rects:
        grid[:, r.y : r.y + r.height, r.x : r.x + r.width] = 0
    packed = pack_bits(bits, pad=False)
    ds[img.keyword].value = packed + data[len(packed) :]


# -- encapsulated -----------------------------------------------------------------------


def _is_lossy(ts: UID, ds: Dataset) -> bool:
    if ts in _LOSSY:
        return True
    if ts in _MAYBE_LOSSY:
        return _text(ds.get("LossyImageCompression")) != "00"
    return False


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split()).rstrip(".") or type(exc).__name__


def _blackout_encapsulated(
    ds: Dataset, img: _Image, rects: tuple[Rectangle, ...]
) -> tuple[UID, bool, bool, str]:
    try:
        check_decoder(img.ts)
    except PixelDataError as exc:
        raise AnonymizationError(f"{img.where}: cannot black out burned-in text: {exc}") from exc
    lossy = _is_lossy(img.ts, ds)
    compressed_size = len(ds[img.keyword].value or b"")
    try:
        # Lossless: the codec's own values (no YBR -> RGB rounding) so that they can be
        # re-encoded exactly. Lossy: converted to RGB as pydicom does by default.
        arr, props = get_decoder(img.ts).as_array(ds, raw=False, as_rgb=lossy)
        pixels = np.array(arr, copy=True).reshape(img.frames, img.rows, img.cols, -1)
    except Exception as exc:  # pydicom and the plug-ins raise many types
        raise AnonymizationError(
            f"{img.where}: cannot decode the pixel data ({img.ts.name}) to black out "
            f"burned-in text: {_reason(exc)}"
        ) from exc
    samples = pixels.shape[-1]
    photometric = _text(props.get("photometric_interpretation")) or img.photometric
    bits_stored = _int(props.get("bits_stored")) or img.bits_stored
    fill = _fill(photometric, samples, bits_stored)
    for r in rects:
        pixels[:, r.y : r.y + r.height, r.x : r.x + r.width, :] = fill
    if lossy:
        _write_native(ds, img, pixels, photometric, bits_stored)
        _mark_lossy(ds, img.ts, compressed_size, len(ds.PixelData))
        return UID(_uid.ExplicitVRLittleEndian), True, True, ""
    note = _reencode(ds, img, pixels)
    if note:
        _write_native(ds, img, pixels, photometric, bits_stored)
        return UID(_uid.ExplicitVRLittleEndian), False, False, note
    return img.ts, False, False, ""


def _pydicom_shape(pixels: np.ndarray) -> np.ndarray:
    """(frames, rows, cols, samples) -> the shape pydicom's encoders take."""
    out = pixels
    if out.shape[-1] == 1:
        out = out[..., 0]
    if out.shape[0] == 1:
        out = out[0]
    return out


def _drop_extended_offsets(ds: Dataset) -> None:
    for kw in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
        if kw in ds:
            del ds[kw]


def _reencode(ds: Dataset, img: _Image, pixels: np.ndarray) -> str:
    """Encode the cleaned pixels in the source transfer syntax; return '' or why not."""
    name = img.ts.name
    if img.ts not in _LOSSLESS:
        return (
            f"{name} is not a lossless-only transfer syntax, so no lossless encoder is "
            "used for it; the pixels were stored as Explicit VR Little Endian (lossless)"
        )
    try:
        encoder = get_encoder(img.ts)
    except NotImplementedError:
        encoder = None
    if encoder is None or not encoder.is_available:
        return (
            f"no {name} encoder is installed (pydicom has "
            f"{'none' if encoder is None else 'none usable'}); the pixels were stored as "
            "Explicit VR Little Endian (lossless)"
        )
    kept = ("PixelData", "ExtendedOffsetTable", "ExtendedOffsetTableLengths")
    saved = [ds[kw] for kw in kept if kw in ds]
    try:
        _drop_extended_offsets(ds)
        ds.compress(img.ts, _pydicom_shape(pixels), generate_instance_uid=False)
        check, _ = get_decoder(img.ts).as_array(ds, raw=False, as_rgb=False)
        if not np.array_equal(np.asarray(check).reshape(pixels.shape), pixels):
            raise ValueError("the re-encoded pixels differ from the cleaned ones")
    except Exception as exc:  # encoder profile refused, plug-in failure, mismatch
        _drop_extended_offsets(ds)
        for elem in saved:
            ds[elem.tag] = elem
        ds.file_meta.TransferSyntaxUID = img.ts
        return (
            f"the {name} encoder could not re-encode the pixels ({_reason(exc)}); they "
            "were stored as Explicit VR Little Endian (lossless)"
        )
    return ""


def _write_native(
    ds: Dataset, img: _Image, pixels: np.ndarray, photometric: str, bits_stored: int
) -> None:
    """Store decoded pixels as native Explicit VR Little Endian, planar configuration 0."""
    dtype = pixels.dtype
    if dtype.kind not in "ui":
        raise AnonymizationError(
            f"{img.where}: decoded pixels of type {dtype} cannot be stored natively"
        )
    samples = pixels.shape[-1]
    data = pixels.astype(dtype.newbyteorder("<"), copy=False).tobytes()
    if len(data) % 2:
        data += b"\0"
    _drop_extended_offsets(ds)
    bits = dtype.itemsize * 8
    ds.PixelData = data
    elem = ds["PixelData"]
    elem.VR = "OB" if bits == 8 else "OW"
    elem.is_undefined_length = False
    ds.file_meta.TransferSyntaxUID = _uid.ExplicitVRLittleEndian
    ds.PhotometricInterpretation = photometric
    ds.SamplesPerPixel = samples
    if samples > 1:
        ds.PlanarConfiguration = 0
    elif "PlanarConfiguration" in ds:
        del ds.PlanarConfiguration
    ds.BitsAllocated = bits
    ds.BitsStored = min(bits_stored, bits)
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if dtype.kind == "i" else 0


def _mark_lossy(ds: Dataset, ts: UID, compressed: int, native: int) -> None:
    """PS3.3 C.7.6.1.1.5: the image has been lossy compressed; keep how."""
    ds.LossyImageCompression = "01"
    has_method = "LossyImageCompressionMethod" in ds
    has_ratio = "LossyImageCompressionRatio" in ds
    if not has_method and ts in _LOSSY_METHOD:
        ds.LossyImageCompressionMethod = _LOSSY_METHOD[ts]
        if not has_ratio and compressed > 0:
            ds.LossyImageCompressionRatio = f"{native / compressed:.2f}"[:16]
