"""Write the golden display-pipeline files and their expected rendered values.

Run ``python tests/core/golden/make_golden.py`` to regenerate ``*.dcm`` and
``expected.json`` in this folder (``tests/core/test_voi.py`` checks that the committed
files are what this script writes).

Each file is tiny and built by hand to exercise one part of PS3.3 C.11 / C.7.6.3 that
pydicom's bundled test files do not cover (or cover only at 16 x 16 pixels):
MONOCHROME1, PALETTE COLOR with a first-mapped offset, a segmented palette (C.7.9.2),
uncompressed YBR_FULL_422, signed data with rescale and several windows, LINEAR_EXACT and
SIGMOID, Float Pixel Data, an enhanced multi-frame with per-frame rescale and window,
and a Modality LUT Sequence with a VOI LUT Sequence.

The expected values are computed here, pixel by pixel, from the formulas of the standard
written out with :mod:`math` — never by calling ``dicomflow_lab``.
"""

from __future__ import annotations

import json
import math
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian

HERE = Path(__file__).resolve().parent
_NS = uuid.UUID("6f1b1c2e-52a8-5d0b-9d7e-2f3c1d0a9b11")
IMPLEMENTATION_UID = "2.25." + str(uuid.uuid5(_NS, "implementation").int)

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.1"
CR_IMAGE = "1.2.840.10008.5.1.4.1.1.1"
US_IMAGE = "1.2.840.10008.5.1.4.1.1.6.1"
SC_IMAGE = "1.2.840.10008.5.1.4.1.1.7"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
PARAMETRIC_MAP = "1.2.840.10008.5.1.4.1.1.30"


# ------------------------------------------------------ the formulas, by hand --


def linear(x: float, c: float, w: float) -> float:
    """PS3.3 C.11.2.1.2.1 with y_min = 0, y_max = 255."""
    if x <= c - 0.5 - (w - 1) / 2:
        return 0.0
    if x > c - 0.5 + (w - 1) / 2:
        return 255.0
    return ((x - (c - 0.5)) / (w - 1) + 0.5) * 255.0


def linear_exact(x: float, c: float, w: float) -> float:
    """PS3.3 C.11.2.1.3.2."""
    if x <= c - w / 2:
        return 0.0
    if x > c + w / 2:
        return 255.0
    return ((x - c) / w + 0.5) * 255.0


def sigmoid(x: float, c: float, w: float) -> float:
    """PS3.3 C.11.2.1.3.1."""
    return 255.0 / (1.0 + math.exp(-4.0 * (x - c) / w))


def ybr_to_rgb(y: int, cb: int, cr: int) -> list[int]:
    """PS3.3 C.7.6.3.1.2 (YBR_FULL), ITU-T T.871 equations."""
    r = y + 1.402 * (cr - 128)
    g = y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128)
    b = y + 1.772 * (cb - 128)
    return [int(min(255, max(0, math.floor(v + 0.5)))) for v in (r, g, b)]


def _grey(v: float) -> int:
    return int(min(255, max(0, math.floor(v + 0.5))))


# ------------------------------------------------------------------ helpers --


def _uid(name: str) -> str:
    return "2.25." + str(uuid.uuid5(_NS, name).int)


def _base(name: str, sop_class: str, modality: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID(sop_class)
    ds.file_meta.MediaStorageSOPInstanceUID = UID(_uid(name + "/instance"))
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = UID(IMPLEMENTATION_UID)
    ds.file_meta.ImplementationVersionName = "DFL_GOLDEN_1"
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = _uid("study")
    ds.SeriesInstanceUID = _uid(name + "/series")
    ds.PatientName = "Golden^Pipeline"
    ds.PatientID = "GOLDEN"
    ds.Modality = modality
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    return ds


def _image(ds: Dataset, arr: np.ndarray, photometric: str, bits_stored: int) -> None:
    ds.SamplesPerPixel = 1 if arr.ndim == 2 else arr.shape[-1]
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = arr.shape[:2]
    ds.BitsAllocated = arr.dtype.itemsize * 8
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if arr.dtype.kind == "i" else 0
    ds.PixelData = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()


def _write(ds: Dataset, folder: Path, name: str) -> None:
    ds.save_as(folder / name, enforce_file_format=True)


Case = dict[str, Any]


def _grey_case(
    name: str, frame: int, args: dict[str, Any], points: list[tuple[int, int]], f: Callable
) -> Case:
    return {
        "file": name,
        "frame": frame,
        "args": args,
        "pixels": [[r, c, f(r, c)] for r, c in points],
    }


# -------------------------------------------------------------------- files --


def mono1(folder: Path) -> list[Case]:
    """CR MONOCHROME1, 12 bits stored: inverted *after* the window (C.7.6.3.1.2)."""
    arr = (np.arange(256, dtype=np.uint16).reshape(16, 16) * 16).astype(np.uint16)
    ds = _base("mono1", CR_IMAGE, "CR")
    _image(ds, arr, "MONOCHROME1", 12)
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    _write(ds, folder, "mono1.dcm")
    points = [(0, 0), (0, 5), (7, 15), (8, 0), (15, 15)]
    value = lambda r, c: float((r * 16 + c) * 16)  # noqa: E731
    return [
        _grey_case(
            "mono1.dcm", 0, {}, points, lambda r, c: _grey(255 - linear(value(r, c), 2048, 4096))
        ),
        _grey_case(
            "mono1.dcm",
            0,
            {"center": 1000, "width": 500},
            points,
            lambda r, c: _grey(255 - linear(value(r, c), 1000, 500)),
        ),
        _grey_case(
            "mono1.dcm",
            0,
            {"center": 1000, "width": 500, "invert": True},
            points,
            lambda r, c: _grey(linear(value(r, c), 1000, 500)),
        ),
    ]


def palette(folder: Path) -> list[Case]:
    """PALETTE COLOR, 16-bit entries, first mapped value 16 (C.7.6.3.1.5)."""
    arr = np.arange(256, dtype=np.uint8).reshape(16, 16)
    ds = _base("palette", US_IMAGE, "US")
    _image(ds, arr, "PALETTE COLOR", 8)
    entries = 240
    k = np.arange(entries, dtype=np.uint32)
    for colour, table in (("Red", k * 257), ("Green", (239 - k) * 257), ("Blue", (k // 2) * 257)):
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [entries, 16, 16])
        setattr(ds, f"{colour}PaletteColorLookupTableData", table.astype("<u2").tobytes())
    _write(ds, folder, "palette.dcm")

    def rgb(r: int, c: int) -> list[int]:
        i = min(max(r * 16 + c - 16, 0), entries - 1)  # below first mapped -> entry 0
        return [i, 239 - i, i // 2]  # 257 * i * 255 / 65535 == i

    points = [(0, 0), (0, 15), (1, 0), (1, 5), (8, 8), (15, 15)]
    return [
        {
            "file": "palette.dcm",
            "frame": 0,
            "args": {},
            "pixels": [[r, c, rgb(r, c)] for r, c in points],
        }
    ]


def _segmented(first: int, then: int) -> bytes:
    # C.7.9.2: discrete segment [0, 1, first], then linear segment [1, 255, then]
    return np.array([0, 1, first, 1, 255, then], dtype="<u2").tobytes()


def palette_segmented(folder: Path) -> list[Case]:
    """Segmented PALETTE COLOR (C.7.9.2): discrete + linear segments, 16-bit."""
    arr = np.arange(256, dtype=np.uint8).reshape(16, 16)
    ds = _base("palette_segmented", US_IMAGE, "US")
    _image(ds, arr, "PALETTE COLOR", 8)
    for colour, seg in (("Red", (0, 65535)), ("Green", (65535, 0)), ("Blue", (25700, 25700))):
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, 16])
        setattr(ds, f"Segmented{colour}PaletteColorLookupTableData", _segmented(*seg))
    _write(ds, folder, "palette_segmented.dcm")
    # linear from y0 to y1 over 255 entries: entry i = y0 + (y1 - y0) * i / 255
    points = [(0, 0), (0, 1), (3, 7), (8, 8), (15, 15)]
    pixels = [[r, c, [r * 16 + c, 255 - (r * 16 + c), 100]] for r, c in points]
    return [{"file": "palette_segmented.dcm", "frame": 0, "args": {}, "pixels": pixels}]


def ybr_422(folder: Path) -> list[Case]:
    """Uncompressed YBR_FULL_422: Y1 Y2 Cb Cr per pair of pixels (C.7.6.3.1.2)."""
    pairs = [  # (Y1, Y2, Cb, Cr) for columns (0, 1) and (2, 3) of each row
        [(76, 80, 85, 255), (150, 150, 44, 21)],
        [(29, 29, 255, 107), (128, 200, 128, 128)],
        [(0, 255, 128, 128), (100, 110, 160, 90)],
        [(226, 226, 0, 149), (179, 179, 171, 1)],
    ]
    data = bytes(v for row in pairs for pair in row for v in pair)
    ds = _base("ybr_422", SC_IMAGE, "OT")
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = 4, 4
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = data
    _write(ds, folder, "ybr_422.dcm")
    pixels = []
    for r, row in enumerate(pairs):
        for p, (y1, y2, cb, cr) in enumerate(row):
            pixels.append([r, 2 * p, ybr_to_rgb(y1, cb, cr)])
            pixels.append([r, 2 * p + 1, ybr_to_rgb(y2, cb, cr)])
    return [{"file": "ybr_422.dcm", "frame": 0, "args": {}, "pixels": pixels}]


def ct_signed(folder: Path) -> list[Case]:
    """Signed 16-bit CT, HU = stored - 1024, two windows with explanations."""
    hu = np.array(
        [-2000, -1000, -700, -600, -100, 0, 40, 100, 239, 240, 400, 1000, 3000, -160, -159, 241]
    )
    arr = (np.resize(hu, 64).reshape(8, 8) + 1024).astype(np.int16)
    ds = _base("ct_signed", CT_IMAGE, "CT")
    _image(ds, arr, "MONOCHROME2", 16)
    ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = 1, -1024, "HU"
    ds.WindowCenter, ds.WindowWidth = [40, -600], [400, 1500]
    ds.WindowCenterWidthExplanation = ["SOFT TISSUE", "LUNG"]
    _write(ds, folder, "ct_signed.dcm")
    points = [(0, i) for i in range(8)] + [(1, i) for i in range(8)]
    value = lambda r, c: float(hu[(r * 8 + c) % 16])  # noqa: E731
    return [
        _grey_case(
            "ct_signed.dcm", 0, {}, points, lambda r, c: _grey(linear(value(r, c), 40, 400))
        ),
        _grey_case(
            "ct_signed.dcm",
            0,
            {"center": -600, "width": 1500},
            points,
            lambda r, c: _grey(linear(value(r, c), -600, 1500)),
        ),
    ]


def signed12_exact(folder: Path) -> list[Case]:
    """Signed 12-bit MR with a fractional slope and LINEAR_EXACT (C.11.2.1.3.2)."""
    stored = np.linspace(-2048, 2047, 64).round().astype(np.int16).reshape(8, 8)
    ds = _base("signed12_exact", MR_IMAGE, "MR")
    _image(ds, stored, "MONOCHROME2", 12)
    ds.RescaleSlope, ds.RescaleIntercept = 0.5, 100
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = 100, 200, "LINEAR_EXACT"
    _write(ds, folder, "signed12_exact.dcm")
    points = [(0, 0), (2, 3), (3, 7), (4, 0), (4, 1), (5, 5), (7, 7)]
    value = lambda r, c: float(stored[r, c]) * 0.5 + 100  # noqa: E731
    return [
        _grey_case(
            "signed12_exact.dcm",
            0,
            {},
            points,
            lambda r, c: _grey(linear_exact(value(r, c), 100, 200)),
        ),
    ]


def float_pixels(folder: Path) -> list[Case]:
    """Float Pixel Data (7FE0,0008) with a SIGMOID window (C.11.2.1.3.1)."""
    arr = (np.arange(64, dtype=np.float32).reshape(8, 8) / 63 - 0.25).astype(np.float32)
    ds = _base("float", PARAMETRIC_MAP, "MR")
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = 8, 8
    ds.BitsAllocated = 32
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = 0.5, 1.0, "SIGMOID"
    ds.FloatPixelData = arr.astype("<f4").tobytes()
    _write(ds, folder, "float.dcm")
    points = [(0, 0), (1, 1), (3, 4), (5, 2), (7, 7)]

    def value(r: int, c: int) -> float:
        return float(arr[r, c])  # the stored float32, exactly as written

    return [
        _grey_case("float.dcm", 0, {}, points, lambda r, c: _grey(sigmoid(value(r, c), 0.5, 1.0))),
        _grey_case(
            "float.dcm",
            0,
            {"center": 0.25, "width": 0.5},
            points,
            lambda r, c: _grey(sigmoid(value(r, c), 0.25, 0.5)),
        ),
    ]


ENHANCED_FRAMES = [
    # slope, intercept, (center, width, explanation, function), z
    (1.0, -500.0, (40.0, 400.0, "SOFT", "LINEAR"), 0.0),
    (2.0, -2048.0, (-600.0, 1500.0, "LUNG", "LINEAR"), 5.0),
    (0.5, 0.0, (500.0, 1000.0, "", "LINEAR_EXACT"), 10.0),
]


def enhanced(folder: Path) -> list[Case]:
    """Enhanced CT, 3 frames: per-frame rescale, window and position (C.7.6.16)."""
    frames = np.array(
        [[[400 + 100 * k + 60 * r + 20 * c for c in range(4)] for r in range(4)] for k in range(3)],
        dtype=np.uint16,
    )
    ds = _base("enhanced", ENHANCED_CT, "CT")
    _image(ds, frames[0], "MONOCHROME2", 12)
    ds.NumberOfFrames = 3
    ds.PixelData = frames.astype("<u2").tobytes()
    # decoys: a reader that ignores the functional groups would use these
    ds.WindowCenter, ds.WindowWidth = 9999, 2
    ds.RescaleSlope, ds.RescaleIntercept = 1, 0
    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = [0.5, 0.75]
    measures.SliceThickness = 5
    shared.PixelMeasuresSequence = Sequence([measures])
    orientation = Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    shared.PlaneOrientationSequence = Sequence([orientation])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    items = []
    for slope, intercept, (center, width, name, function), z in ENHANCED_FRAMES:
        item = Dataset()
        pvt = Dataset()
        pvt.RescaleSlope, pvt.RescaleIntercept, pvt.RescaleType = slope, intercept, "HU"
        item.PixelValueTransformationSequence = Sequence([pvt])
        voi = Dataset()
        voi.WindowCenter, voi.WindowWidth = center, width
        if name:
            voi.WindowCenterWidthExplanation = name
        voi.VOILUTFunction = function
        item.FrameVOILUTSequence = Sequence([voi])
        plane = Dataset()
        plane.ImagePositionPatient = [-100, -120, z]
        item.PlanePositionSequence = Sequence([plane])
        items.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(items)
    _write(ds, folder, "enhanced.dcm")
    cases = []
    points = [(0, 0), (0, 3), (1, 2), (2, 1), (3, 3)]
    for k, (slope, intercept, (center, width, _, function), _) in enumerate(ENHANCED_FRAMES):
        fn = linear if function == "LINEAR" else linear_exact

        def expect(
            r: int,
            c: int,
            k: int = k,
            s: float = slope,
            i: float = intercept,
            cw: tuple[float, float] = (center, width),
            fn: Callable = fn,
        ) -> int:
            return _grey(fn(float(frames[k, r, c]) * s + i, *cw))

        cases.append(_grey_case("enhanced.dcm", k, {}, points, expect))
    return cases


def modality_voi_lut(folder: Path) -> list[Case]:
    """Modality LUT Sequence (C.11.1) then VOI LUT Sequence (C.11.2.1.1), plus a window."""
    arr = np.arange(64, dtype=np.uint8).reshape(8, 8)
    ds = _base("modality_voi_lut", SC_IMAGE, "OT")
    _image(ds, arr, "MONOCHROME2", 8)
    mlut = Dataset()
    mlut.LUTDescriptor = [32, 8, 16]  # 32 entries, first stored value mapped 8, 16 bits
    mlut.ModalityLUTType = "OD"
    mlut.LUTData = [100 + 10 * k for k in range(32)]
    mlut["LUTData"].VR = "US"
    ds.ModalityLUTSequence = Sequence([mlut])
    vlut = Dataset()
    vlut.LUTDescriptor = [256, 100, 8]  # first modality value mapped 100, 8 bits
    vlut.LUTData = [255 - k for k in range(256)]
    vlut["LUTData"].VR = "US"
    ds.VOILUTSequence = Sequence([vlut])
    ds.WindowCenter, ds.WindowWidth = 250, 300
    _write(ds, folder, "modality_voi_lut.dcm")
    points = [(0, 0), (0, 7), (1, 0), (1, 1), (2, 5), (4, 7), (5, 0), (7, 7)]

    def modality_value(r: int, c: int) -> float:
        return 100.0 + 10 * min(max(r * 8 + c - 8, 0), 31)

    def through_lut(r: int, c: int) -> int:
        entry = min(max(int(modality_value(r, c)) - 100, 0), 255)
        return _grey((255 - entry) * 255 / 255)

    return [
        _grey_case(
            "modality_voi_lut.dcm",
            0,
            {},
            points,
            lambda r, c: _grey(linear(modality_value(r, c), 250, 300)),
        ),
        _grey_case("modality_voi_lut.dcm", 0, {"use_voi_lut": True}, points, through_lut),
    ]


MAKERS = (
    mono1,
    palette,
    palette_segmented,
    ybr_422,
    ct_signed,
    signed12_exact,
    float_pixels,
    enhanced,
    modality_voi_lut,
)


def make(folder: Path = HERE) -> dict[str, Any]:
    """Write every golden file into `folder` and return (and write) the expectations."""
    folder.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []
    for maker in MAKERS:
        cases.extend(maker(folder))
    expected = {"format": "dicomflow_lab.golden/1", "cases": cases}
    body = ",\n".join("  " + json.dumps(case) for case in cases)
    text = f'{{"format": "{expected["format"]}", "cases": [\n{body}\n]}}\n'
    (folder / "expected.json").write_text(text)
    return expected


if __name__ == "__main__":
    make(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
