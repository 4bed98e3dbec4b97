"""core.voi, the display pipeline's numpy reference: conformance with pydicom, golden files.

Conformance: every image that pydicom itself decodes among its bundled test files (and
the golden files) renders like ``apply_voi_lut(apply_modality_lut(arr, ds), ds)`` scaled
from pydicom's output range to 0–255, within one grey level — for the file's own first
window, for an explicit window in each VOI LUT function, for the VOI LUT Sequence, with
MONOCHROME1 inverted after the VOI; colour images equal pydicom's ``convert_color_space``
/ ``apply_color_lut`` results scaled to 8 bits.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.pixels import (
    apply_color_lut,
    apply_modality_lut,
    apply_voi_lut,
    convert_color_space,
    pixel_array,
)

from dicomflow_lab.core import voi
from dicomflow_lab.core.pixels import DisplayParams, Frame, WindowPreset, read_frame
from dicomflow_lab.errors import PixelDataError

TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"
GOLDEN = Path(__file__).parent / "golden"
FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

#: Files that hold pixel data that pydicom 3.0 itself cannot decode, and why.
UNDECODABLE = {
    "JPEG-lossy.dcm": "libjpeg rejects the codestream (a GDCM-only file in pydicom's tests)",
    "JPEG2000-embedded-sequence-delimiter.dcm": "the J2K header cannot be read",
    "MR_truncated.dcm": "8130 bytes of pixel data for 64 x 64 x 16 bits",
    "badVR.dcm": "Number of Frames is '1A'",
    "nested_priv_SQ.dcm": "Pixel Data without the Image Pixel module (no Bits Allocated)",
}


def _corpus() -> tuple[list[Path], dict[str, str]]:
    """Split the corpus into what pydicom decodes and what it refuses (with the reason)."""
    decodable, skipped = [], {}
    files = sorted(p for p in TEST_FILES.rglob("*") if p.is_file())
    files += sorted(GOLDEN.glob("*.dcm"))
    for path in files:
        name = path.relative_to(TEST_FILES if TEST_FILES in path.parents else GOLDEN)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                pixel_array(pydicom.dcmread(path, force=True), index=0)
            except Exception as exc:
                skipped[str(name)] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
                continue
        decodable.append(path)
    return decodable, skipped


DECODABLE, SKIPPED = _corpus()


def _id(path: Path) -> str:
    return (
        str(path.relative_to(TEST_FILES)) if TEST_FILES in path.parents else f"golden/{path.name}"
    )


def _has_pixels(path: Path) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, force=True)
    except Exception:
        return False
    has_meta_ts = "TransferSyntaxUID" in getattr(ds, "file_meta", {})
    keywords = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
    return has_meta_ts and any(kw in ds for kw in keywords)


def test_corpus_skips_only_files_without_a_decodable_image():
    assert len(DECODABLE) >= 90
    refused = {name for name in SKIPPED if _has_pixels(TEST_FILES / name)}
    assert refused == set(UNDECODABLE), SKIPPED


@pytest.mark.parametrize("name", sorted(SKIPPED))
def test_what_pydicom_cannot_decode_gives_pixel_data_error(name):
    with pytest.raises(PixelDataError):
        read_frame(TEST_FILES / name)


# ---------------------------------------------------------------- conformance --


def _y_range(ds: pydicom.Dataset) -> tuple[float, float]:
    """The output range of pydicom's apply_windowing (see its source)."""
    if ds.get("ModalityLUTSequence"):
        y_min, y_max = 0.0, 2.0 ** ds.ModalityLUTSequence[0].LUTDescriptor[2] - 1
    elif ds.PixelRepresentation == 0:
        y_min, y_max = 0.0, 2.0**ds.BitsStored - 1
    else:
        y_min, y_max = -(2.0 ** (ds.BitsStored - 1)), 2.0 ** (ds.BitsStored - 1) - 1
    if "RescaleSlope" in ds and "RescaleIntercept" in ds:
        y_min = y_min * ds.RescaleSlope + ds.RescaleIntercept
        y_max = y_max * ds.RescaleSlope + ds.RescaleIntercept
    return y_min, y_max


def _pydicom_window(ds: pydicom.Dataset, modality_values: np.ndarray) -> np.ndarray:
    out = apply_voi_lut(modality_values, ds, index=0, prefer_lut=False)
    y_min, y_max = _y_range(ds)
    scaled = (out - y_min) / (y_max - y_min) * 255.0
    return 255.0 - scaled if ds.PhotometricInterpretation == "MONOCHROME1" else scaled


def _close(mine: np.ndarray, expected: np.ndarray) -> None:
    assert mine.dtype == np.uint8 and mine.shape == expected.shape
    diff = np.abs(mine.astype(np.float64) - expected)
    assert diff.max() <= 1.0 + 1e-9, (
        f"max difference {diff.max()} at {np.unravel_index(diff.argmax(), diff.shape)}"
    )


def _with_function(frame: Frame, function: str) -> Frame:
    return dataclasses.replace(
        frame, params=dataclasses.replace(frame.params, voi_function=function)
    )


def _load(path: Path) -> tuple[pydicom.Dataset, np.ndarray, Frame]:
    ds = pydicom.dcmread(path)
    arr = pixel_array(ds, index=0)
    if ds.get("PhotometricInterpretation") in ("MONOCHROME1", "MONOCHROME2") and (
        "PixelRepresentation" not in ds
    ):  # float pixel data: give apply_windowing the range attributes it reads
        ds.PixelRepresentation, ds.BitsStored = 1, ds.BitsAllocated
    return ds, arr.astype(arr.dtype.newbyteorder("=")), read_frame(path, 0)


def _is_grey(path: Path) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    pi = ds.get("PhotometricInterpretation")
    return ds.get("SamplesPerPixel", 1) == 1 and pi != "PALETTE COLOR"


# pydicom's apply_modality_lut / apply_voi_lut read only top-level attributes, not the
# functional groups of an enhanced multi-frame: golden/enhanced.dcm is checked by hand.
GREY = [p for p in DECODABLE if _is_grey(p) and p.name != "enhanced.dcm"]
COLOUR = [p for p in DECODABLE if not _is_grey(p)]


@pytest.mark.parametrize("path", GREY, ids=_id)
def test_grey_conformance(path):
    ds, arr, frame = _load(path)
    np.testing.assert_array_equal(frame.values, arr)
    modality_values = apply_modality_lut(arr, ds)
    np.testing.assert_allclose(voi.modality(frame.values, frame.params), modality_values)
    if "WindowCenter" in ds and "WindowWidth" in ds:
        _close(voi.render(frame), _pydicom_window(ds, modality_values))
    low, high = float(np.min(modality_values)), float(np.max(modality_values))
    center = round((low + high) / 2 + 0.3, 2)
    width = round(max((high - low) * 0.6, 2.0), 1)
    for function in FUNCTIONS:
        ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = center, width, function
        expected = _pydicom_window(ds, modality_values)
        _close(voi.render(_with_function(frame, function), center, width), expected)
    if ds.get("VOILUTSequence"):
        out = apply_voi_lut(modality_values, ds, index=0, prefer_lut=True)
        entries, first, bits = ds.VOILUTSequence[0].LUTDescriptor
        expected = out / (2.0**bits - 1) * 255.0
        # pydicom 3.0 computes the table index in the entries' own type: with 8-bit
        # entries an input 256 or more above the first mapped value wraps around
        # instead of taking the last entry (PS3.3 C.11.2.1.1). Compare pydicom where it
        # does not wrap; beyond, the standard's last entry.
        wraps = (modality_values - first) >= (256 if bits == 8 else 65536)
        last = float(ds.VOILUTSequence[0].LUTData[(entries or 65536) - 1]) / (2.0**bits - 1)
        expected = np.where(wraps, last * 255.0, expected)
        if ds.PhotometricInterpretation == "MONOCHROME1":
            expected = 255.0 - expected
        _close(voi.render(frame, use_voi_lut=True), expected)


@pytest.mark.parametrize("path", COLOUR, ids=_id)
def test_colour_conformance(path):
    ds, arr, frame = _load(path)
    pi = ds.PhotometricInterpretation
    if pi == "PALETTE COLOR":
        rgb = apply_color_lut(arr, ds)[..., :3]
        expected = rgb * (255.0 / 65535.0) if rgb.dtype == np.uint16 else rgb.astype(float)
    else:
        expected = arr * (255.0 / (2.0**ds.BitsStored - 1)) if ds.BitsStored > 8 else arr
        if pi in ("YBR_FULL", "YBR_FULL_422"):
            raw = pixel_array(ds, index=0, raw=True)
            np.testing.assert_array_equal(convert_color_space(raw, pi, "RGB"), arr)
    _close(voi.render(frame), np.asarray(expected, dtype=np.float64))
    assert frame.params.photometric == "RGB" and frame.values.dtype == np.uint8


# --------------------------------------------------------------------- golden --


def _golden_module():
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN / "make_golden.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GOLDEN_CASES = json.loads((GOLDEN / "expected.json").read_text())["cases"]


@pytest.mark.parametrize(
    "case", GOLDEN_CASES, ids=[f"{c['file']}[{c['frame']}]{c['args']}" for c in GOLDEN_CASES]
)
def test_golden_pixels(case):
    image = voi.render(read_frame(GOLDEN / case["file"], case["frame"]), **case["args"])
    for row, col, expected in case["pixels"]:
        got = np.asarray(image[row, col], dtype=int)
        assert np.abs(got - np.asarray(expected)).max() <= 1, (row, col, got, expected)


def test_golden_files_are_what_the_generator_writes(tmp_path):
    expected = _golden_module().make(tmp_path)
    assert (tmp_path / "expected.json").read_text() == (GOLDEN / "expected.json").read_text()
    assert expected["cases"] == GOLDEN_CASES
    committed = sorted(p.name for p in GOLDEN.glob("*.dcm"))
    assert sorted(p.name for p in tmp_path.glob("*.dcm")) == committed
    for name in committed:
        assert pydicom.dcmread(tmp_path / name) == pydicom.dcmread(GOLDEN / name), name
    size = sum(p.stat().st_size for p in GOLDEN.iterdir() if p.is_file())
    assert size < 200_000


# ------------------------------------------------------------ window and lut --


def _window_by_hand(x: float, c: float, w: float, function: str) -> float:
    if function == "SIGMOID":
        exponent = -4.0 * (x - c) / w
        return 0.0 if exponent > 700 else 255.0 / (1.0 + math.exp(exponent))
    if function == "LINEAR":
        c, w = c - 0.5, w - 1.0
    if x <= c - w / 2:
        return 0.0
    if x > c + w / 2:
        return 255.0
    return ((x - c) / w + 0.5) * 255.0


@settings(max_examples=200, deadline=None, database=None)
@given(
    xs=st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=1, max_size=50),
    center=st.floats(-5000, 5000, allow_nan=False),
    width=st.floats(1.5, 8000, allow_nan=False),
    function=st.sampled_from(FUNCTIONS),
)
def test_window_matches_the_standard_formulas(xs, center, width, function):
    got = voi.window(np.array(xs), center, width, function)
    expected = [_window_by_hand(x, center, width, function) for x in xs]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    assert got.min() >= 0 and got.max() <= 255


def test_window_degenerate_widths_are_steps_without_warnings():
    x = np.array([-1e308, -1.0, 0.0, 0.4, 0.5, 1.0, 1e308])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        linear = voi.window(x, 1.0, 0.0, "LINEAR")  # width < 1 is taken as 1
        exact = voi.window(x, 0.5, 0.0, "LINEAR_EXACT")
        sigmoid = voi.window(x, 0.5, -3.0, "SIGMOID")
        tiny = voi.window(x, 0.5, 1e-300, "SIGMOID")
    np.testing.assert_array_equal(linear, [0, 0, 0, 0, 0, 255, 255])
    np.testing.assert_array_equal(exact, [0, 0, 0, 0, 0, 255, 255])
    np.testing.assert_array_equal(sigmoid, [0, 0, 0, 0, 127.5, 255, 255])
    assert tiny[0] < 1e-9 and tiny[-1] == 255 and np.isfinite(tiny).all()
    with pytest.raises(ValueError, match="unknown VOI LUT function"):
        voi.window(x, 0, 1, "GAMMA")


def _params(**changes) -> DisplayParams:
    base = DisplayParams(
        photometric="MONOCHROME2",
        samples=1,
        bits_stored=12,
        signed=False,
        is_float=False,
        slope=1.0,
        intercept=0.0,
        rescale_type="",
        modality_lut=None,
        voi_function="LINEAR",
        windows=(),
        voi_lut=None,
        invert=False,
    )
    return dataclasses.replace(base, **changes)


def _frame(values: np.ndarray, params: DisplayParams) -> Frame:
    return Frame("mem", 0, np.ascontiguousarray(values), params, None, None, None, None)


def _all_stored(bits: int, signed: bool) -> np.ndarray:
    dtype = {(False, 1): np.uint8, (True, 1): np.int8, (False, 2): np.uint16, (True, 2): np.int16}
    low = -(2 ** (bits - 1)) if signed else 0
    return np.arange(low, low + 2**bits).astype(dtype[signed, 1 if bits <= 8 else 2])[None, :]


@settings(max_examples=60, deadline=None, database=None)
@given(
    bits=st.integers(1, 16),
    signed=st.booleans(),
    slope=st.sampled_from([1.0, 0.5, 2.0, -1.0, 0.01, 3.7]),
    intercept=st.floats(-3000, 3000, allow_nan=False),
    function=st.sampled_from(FUNCTIONS),
    center=st.floats(-5000, 5000, allow_nan=False),
    width=st.floats(0, 10000, allow_nan=False),
    invert=st.booleans(),
    mono1=st.booleans(),
)
def test_lut_equals_render_for_every_stored_value(
    bits, signed, slope, intercept, function, center, width, invert, mono1
):
    params = _params(
        photometric="MONOCHROME1" if mono1 else "MONOCHROME2",
        bits_stored=bits,
        signed=signed,
        slope=slope,
        intercept=intercept,
        voi_function=function,
        invert=mono1,
    )
    values = _all_stored(bits, signed)
    table, offset = voi.lut(params, center, width, invert=invert)
    assert table.dtype == np.uint8 and table.shape == (2**bits,)
    assert offset == (2 ** (bits - 1) if signed else 0)
    rendered = voi.render(_frame(values, params), center, width, invert=invert)
    np.testing.assert_array_equal(table[values.astype(np.int64) + offset], rendered)


@settings(max_examples=30, deadline=None, database=None)
@given(
    first=st.integers(-100, 100),
    table=st.lists(st.integers(0, 65535), min_size=1, max_size=300),
    voi_first=st.integers(-200, 2000),
    voi_table=st.lists(st.integers(0, 255), min_size=1, max_size=300),
    use_voi_lut=st.booleans(),
)
def test_lut_equals_render_with_lut_sequences(first, table, voi_first, voi_table, use_voi_lut):
    params = _params(
        bits_stored=10,
        signed=True,
        modality_lut=(first, tuple(float(v) for v in table)),
        voi_lut=(voi_first, 8, tuple(voi_table)),
    )
    values = _all_stored(10, True)
    lut_table, offset = voi.lut(params, 300.0, 600.0, use_voi_lut=use_voi_lut)
    rendered = voi.render(_frame(values, params), 300.0, 600.0, use_voi_lut=use_voi_lut)
    np.testing.assert_array_equal(lut_table[values.astype(np.int64) + offset], rendered)


def test_lut_refuses_what_it_cannot_tabulate():
    for params in (_params(is_float=True, bits_stored=32), _params(bits_stored=32)):
        with pytest.raises(ValueError, match=r"1\.\.16 bits"):
            voi.lut(params, 0, 1)
    with pytest.raises(ValueError):
        voi.lut(_params(photometric="RGB", samples=3, bits_stored=8), 0, 1)


# -------------------------------------------------------------- the pipeline --


def test_monochrome1_is_inverted_after_the_window():
    values = np.arange(0, 4096, 16, dtype=np.uint16).reshape(16, 16)
    mono2 = _frame(values, _params())
    mono1 = _frame(values, _params(photometric="MONOCHROME1", invert=True))
    for center, width in ((1000, 500), (2048, 4096), (10, 3)):
        np.testing.assert_array_equal(
            voi.render(mono1, center, width), 255 - voi.render(mono2, center, width)
        )
        # the user's invert flips it back (XOR)
        np.testing.assert_array_equal(
            voi.render(mono1, center, width, invert=True), voi.render(mono2, center, width)
        )


def test_default_window_is_the_files_first_then_auto():
    values = np.arange(1000, dtype=np.int16).reshape(10, 100)
    windows = (WindowPreset("A", 100.0, 50.0, "dataset"), WindowPreset("B", 500, 10, "dataset"))
    with_windows = _frame(values, _params(windows=windows, signed=True, bits_stored=16))
    np.testing.assert_array_equal(voi.render(with_windows), voi.render(with_windows, 100, 50))
    plain = _frame(values, _params(signed=True, bits_stored=16))
    auto = voi.auto_window(plain)
    assert (auto.name, auto.source) == ("Auto", "auto")
    np.testing.assert_array_equal(voi.render(plain), voi.render(plain, auto.center, auto.width))
    low, high = np.percentile(values, [0.5, 99.5])
    image = voi.render(plain).ravel()
    assert image[values.ravel() <= low].max() == 0
    assert image[values.ravel() >= high].min() == 255


def test_voi_lut_is_used_when_asked_or_when_there_is_no_window():
    params = _params(voi_lut=(0, 8, tuple(range(255, -1, -1))), bits_stored=8)
    frame = _frame(np.arange(256, dtype=np.uint8).reshape(16, 16), params)
    inverted = 255 - np.arange(256, dtype=np.uint8).reshape(16, 16)
    np.testing.assert_array_equal(voi.render(frame), inverted)  # no window: the LUT
    np.testing.assert_array_equal(voi.render(frame, 128, 256), frame.values)  # explicit
    identity = (WindowPreset("W", 128, 256, "dataset"),)  # LINEAR 128/256 maps v to v
    with_window = _frame(frame.values, dataclasses.replace(params, windows=identity))
    np.testing.assert_array_equal(voi.render(with_window), frame.values)
    np.testing.assert_array_equal(voi.render(with_window, use_voi_lut=True), inverted)


def test_modality_lut_clamps_outside_its_range():
    params = _params(modality_lut=(10, (5.0, 6.0, 7.0)))
    got = voi.modality(np.array([0, 10, 11, 12, 13, 4000], dtype=np.uint16), params)
    np.testing.assert_array_equal(got, [5, 5, 6, 7, 7, 7])


def test_presets():
    assert [(p.name, p.center, p.width) for p in voi.CT_PRESETS] == [
        ("Brain", 40, 80),
        ("Subdural", 75, 215),
        ("Stroke", 40, 40),
        ("Lung", -600, 1500),
        ("Mediastinum", 50, 350),
        ("Abdomen", 50, 400),
        ("Liver", 30, 150),
        ("Bone", 400, 1800),
    ]
    assert all(p.source == "ct" for p in voi.CT_PRESETS)
    ct = read_frame(GOLDEN / "ct_signed.dcm")
    assert voi.presets_for(ct) == ct.params.windows + voi.CT_PRESETS
    mr = read_frame(TEST_FILES / "MR_small.dcm")
    assert voi.presets_for(mr) == mr.params.windows
    assert voi.presets_for(read_frame(TEST_FILES / "CT_small.dcm"))[-1].name == "Bone"


def test_colour_render_and_png():
    from matplotlib import image as mpimg

    frame = read_frame(GOLDEN / "palette.dcm")
    rgb = voi.render(frame)
    np.testing.assert_array_equal(voi.render(frame, invert=True), 255 - rgb)
    assert not np.array_equal(voi.render(frame, 60, 40), rgb)  # an explicit window applies
    decoded = mpimg.imread(io.BytesIO(voi.to_png(rgb)))
    np.testing.assert_array_equal(np.rint(decoded[..., :3] * 255).astype(np.uint8), rgb)
    grey = voi.render(read_frame(GOLDEN / "mono1.dcm"))
    decoded = mpimg.imread(io.BytesIO(voi.to_png(grey)))
    assert decoded.ndim == 2  # grey stays one channel
    np.testing.assert_array_equal(np.rint(decoded * 255).astype(np.uint8), grey)
    with pytest.raises(ValueError, match="uint8"):
        voi.to_png(grey.astype(np.float32))
