"""core.pixels: one frame at a time, every transfer syntax, caching, and clear errors."""

from __future__ import annotations

import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom import uid
from pydicom.encaps import encapsulate, generate_frames
from pydicom.pixels import get_decoder, pack_bits
from pydicom.pixels.decoders.base import DecodeRunner

from dicomflow_lab.core import voi
from dicomflow_lab.core.pixels import (
    DisplayParams,
    Frame,
    FrameCache,
    frame_count,
    frame_key,
    overlay,
    read_frame,
)
from dicomflow_lab.core.sample import write_sample_study
from dicomflow_lab.errors import PixelDataError

TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"
GOLDEN = Path(__file__).parent / "golden"

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _reference(path: Path) -> np.ndarray:
    """pydicom's own decode of the whole dataset, in native byte order."""
    arr = pydicom.dcmread(path).pixel_array
    return arr.astype(arr.dtype.newbyteorder("="))


# --------------------------------------------------------- transfer syntaxes --

SYNTAXES = {
    "implicit": ("MR_small_implicit.dcm", uid.ImplicitVRLittleEndian),
    "explicit": ("MR_small.dcm", uid.ExplicitVRLittleEndian),
    "big endian": ("MR_small_bigendian.dcm", uid.ExplicitVRBigEndian),
    "big endian 32-bit": ("rtdose_expb_1frame.dcm", uid.ExplicitVRBigEndian),
    "deflated": ("image_dfl.dcm", uid.DeflatedExplicitVRLittleEndian),
    "jpeg baseline": ("SC_rgb_jpeg_dcmtk.dcm", uid.JPEGBaseline8Bit),
    "jpeg extended": ("JPGExtended.dcm", uid.JPEGExtended12Bit),
    "jpeg lossless sv1": ("SC_rgb_jpeg_gdcm.dcm", uid.JPEGLosslessSV1),
    "jpeg-ls lossless": ("MR_small_jpeg_ls_lossless.dcm", uid.JPEGLSLossless),
    "jpeg-ls near-lossless": ("JPEGLSNearLossless_16.dcm", uid.JPEGLSNearLossless),
    "j2k lossless": ("MR_small_jp2klossless.dcm", uid.JPEG2000Lossless),
    "j2k": ("JPEG2000.dcm", uid.JPEG2000),
    "j2k ybr_rct": ("GDCMJ2K_TextGBR.dcm", uid.JPEG2000Lossless),
    "rle": ("MR_small_RLE.dcm", uid.RLELossless),
    "rle 16-bit rgb": ("SC_rgb_rle_16bit.dcm", uid.RLELossless),
}


@pytest.mark.parametrize("name", SYNTAXES)
def test_each_transfer_syntax_decodes_one_frame_like_pydicom(name):
    filename, ts = SYNTAXES[name]
    path = TEST_FILES / filename
    assert pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID == ts
    frame = read_frame(path)
    assert frame.values.flags.c_contiguous and frame.values.dtype.isnative
    ref = _reference(path)
    if frame.params.samples == 3:
        bits = pydicom.dcmread(path, stop_before_pixels=True).BitsStored
        ref = np.rint(ref * (255 / (2**bits - 1))).astype(np.uint8) if bits > 8 else ref
        assert frame.values.dtype == np.uint8
    else:
        assert frame.values.dtype == ref.dtype
    np.testing.assert_array_equal(frame.values, ref)


def test_mr_small_is_the_same_image_in_every_lossless_syntax():
    plain = read_frame(TEST_FILES / "MR_small.dcm").values
    for name in ("implicit", "big endian", "jpeg-ls lossless", "j2k lossless", "rle"):
        np.testing.assert_array_equal(read_frame(TEST_FILES / SYNTAXES[name][0]).values, plain)


@pytest.mark.parametrize(
    "ybr",
    [
        "SC_rgb_dcmtk_+eb+cy+s2.dcm",  # JPEG baseline, YBR_FULL_422
        "SC_rgb_dcmtk_+eb+cy+np.dcm",  # JPEG baseline, YBR_FULL_422
        "SC_rgb_jpeg_dcmtk.dcm",  # JPEG baseline, YBR_FULL
        "SC_ybr_full_422_uncompressed.dcm",  # native YBR_FULL_422
    ],
)
def test_ybr_is_converted_to_rgb_exactly_once(ybr):
    frame = read_frame(TEST_FILES / ybr)
    assert frame.params.photometric == "RGB"
    values = frame.values.astype(int)
    # the stripes of pydicom's SC_rgb test images (a second conversion, or none, would
    # turn red into (76, 85, 255) or similar)
    stripes = [(255, 0, 0), (255, 128, 128), (0, 255, 0), (128, 255, 128), (0, 0, 255)]
    for band, colour in enumerate(stripes):
        got = values[band * 10 + 5, 50]
        assert np.abs(got - colour).max() <= 8, (band, got, colour)
    reference = read_frame(TEST_FILES / "SC_rgb_dcmtk_+eb+cr.dcm").values.astype(int)  # RGB JPEG
    assert np.abs(values - reference).mean() < 3


# ---------------------------------------------------------------- multi-frame --


@pytest.mark.parametrize(
    ("filename", "indices"),
    [
        ("examples_ybr_color.dcm", (0, 7, 29)),  # JPEG baseline YBR_FULL_422, 30 frames
        ("rtdose.dcm", (0, 3, 14)),  # native uint32, 15 frames
        ("rtdose_expb.dcm", (1, 14)),  # big endian uint32
        ("rtdose_rle.dcm", (2, 9)),  # RLE uint32
        ("SC_rgb_rle_2frame.dcm", (1,)),
        ("SC_rgb_rle_32bit_2frame.dcm", (1,)),
    ],
)
def test_frame_i_is_frame_i_of_the_full_array(filename, indices):
    path = TEST_FILES / filename
    full = pydicom.dcmread(path).pixel_array
    assert frame_count(path) == len(full)
    for i in indices:
        frame = read_frame(path, i)
        expected = full[i]
        if frame.params.samples == 3 and expected.dtype != np.uint8:
            bits = pydicom.dcmread(path, stop_before_pixels=True).BitsStored
            expected = np.rint(expected * (255 / (2**bits - 1))).astype(np.uint8)
        np.testing.assert_array_equal(frame.values, expected)
        assert frame.index == i


def test_encapsulated_frame_decodes_only_that_frame(monkeypatch):
    decoder = get_decoder(uid.JPEGBaseline8Bit)
    calls: list[int] = []
    plugins = {}
    for name, func in decoder._available.items():

        def counting(src, runner, _func=func):
            calls.append(len(src))
            return _func(src, runner)

        plugins[name] = counting
    monkeypatch.setattr(decoder, "_available", plugins)
    path = TEST_FILES / "examples_ybr_color.dcm"
    frame = read_frame(path, 17)
    assert len(calls) == 1
    with open(path, "rb") as fh:
        ds = pydicom.dcmread(fh)
    fragments = list(generate_frames(ds.PixelData, number_of_frames=30))
    assert calls == [len(fragments[17])]
    assert frame.values.shape == (240, 320, 3)


def test_native_frame_reads_only_that_frames_bytes(monkeypatch):
    reads: list[tuple[int, int]] = []
    original = DecodeRunner.get_data

    def recording(self, src, offset, length):
        reads.append((offset, length))
        return original(self, src, offset, length)

    monkeypatch.setattr(DecodeRunner, "get_data", recording)
    frame = read_frame(TEST_FILES / "rtdose.dcm", 9)
    assert frame.values.shape == (10, 10)
    assert sum(length for _, length in reads) == 10 * 10 * 4  # one uint32 frame of 15


def test_frame_index_out_of_range():
    path = TEST_FILES / "rtdose.dcm"
    with pytest.raises(IndexError, match=r"frame index 15 is out of range: .*rtdose.dcm has 15"):
        read_frame(path, 15)
    with pytest.raises(IndexError, match="-1"):
        read_frame(path, -1)
    with pytest.raises(TypeError):
        read_frame(path, "1")  # type: ignore[arg-type]


def test_frame_count():
    assert frame_count(TEST_FILES / "CT_small.dcm") == 1
    assert frame_count(TEST_FILES / "examples_ybr_color.dcm") == 30
    assert frame_count(TEST_FILES / "rtplan.dcm") == 0


# ------------------------------------------------------------------ metadata --


def test_ct_metadata_and_params():
    path = TEST_FILES / "CT_small.dcm"
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    frame = read_frame(path)
    assert isinstance(frame, Frame) and isinstance(frame.params, DisplayParams)
    assert frame.values.dtype == np.int16 and frame.nbytes == 128 * 128 * 2
    assert frame.position == tuple(float(v) for v in ds.ImagePositionPatient)
    assert frame.orientation == tuple(float(v) for v in ds.ImageOrientationPatient)
    assert frame.spacing == tuple(float(v) for v in ds.PixelSpacing)
    assert frame.thickness == float(ds.SliceThickness)
    p = frame.params
    assert (p.photometric, p.samples, p.bits_stored, p.signed, p.is_float) == (
        "MONOCHROME2",
        1,
        16,
        True,
        False,
    )
    assert (p.slope, p.intercept, p.rescale_type) == (
        float(ds.RescaleSlope),
        float(ds.RescaleIntercept),
        "HU",
    )
    assert p.modality_lut is None and p.voi_lut is None and not p.invert


def test_window_explanations_name_the_windows():
    params = read_frame(GOLDEN / "ct_signed.dcm").params
    assert [(w.name, w.center, w.width, w.source) for w in params.windows] == [
        ("SOFT TISSUE", 40.0, 400.0, "dataset"),
        ("LUNG", -600.0, 1500.0, "dataset"),
    ]
    assert read_frame(TEST_FILES / "MR_small.dcm").params.windows[0].name == "Window 1"


def test_enhanced_multiframe_uses_per_frame_functional_groups():
    path = GOLDEN / "enhanced.dcm"
    expected = [(1.0, -500.0, "SOFT", "LINEAR"), (2.0, -2048.0, "LUNG", "LINEAR")]
    expected.append((0.5, 0.0, "Window 1", "LINEAR_EXACT"))
    for k, (slope, intercept, name, function) in enumerate(expected):
        frame = read_frame(path, k)
        p = frame.params
        assert (p.slope, p.intercept, p.rescale_type) == (slope, intercept, "HU")
        assert [w.name for w in p.windows] == [name]  # not the top-level decoy 9999/2
        assert p.voi_function == function
        assert frame.position == (-100.0, -120.0, 5.0 * k)
        assert frame.orientation == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
        assert frame.spacing == (0.5, 0.75) and frame.thickness == 5.0


def test_float_pixel_data():
    frame = read_frame(GOLDEN / "float.dcm")
    assert frame.values.dtype == np.float32
    assert frame.params.is_float and frame.params.signed and frame.params.bits_stored == 32
    assert frame.values[0, 0] == np.float32(-0.25)


def test_palette_and_monochrome1_params():
    assert read_frame(GOLDEN / "palette_segmented.dcm").params.photometric == "RGB"
    mono1 = read_frame(GOLDEN / "mono1.dcm").params
    assert mono1.photometric == "MONOCHROME1" and mono1.invert
    lut = read_frame(GOLDEN / "modality_voi_lut.dcm").params
    assert lut.modality_lut is not None and lut.modality_lut[0] == 8
    assert lut.modality_lut[1][:3] == (100.0, 110.0, 120.0)
    assert lut.voi_lut is not None and lut.voi_lut[:2] == (100, 8) and lut.voi_lut[2][0] == 255


# ------------------------------------------------------------------ overlays --


def test_overlay_matches_pydicom():
    path = TEST_FILES / "examples_overlay.dcm"
    planes = overlay(path, 0)
    assert [g for g, _ in planes] == [0x6000]
    mask = planes[0][1]
    assert mask.dtype == bool and mask.shape == (300, 484)
    np.testing.assert_array_equal(mask, pydicom.dcmread(path).overlay_array(0x6000).astype(bool))
    assert overlay(TEST_FILES / "CT_small.dcm") == []


def test_overlay_origin_and_frames(tmp_path):
    ds = pydicom.dcmread(TEST_FILES / "rtdose.dcm")  # 15 frames of 10 x 10
    bits = np.zeros((2, 3, 4), dtype=np.uint8)
    bits[0, 0, 0] = 1  # overlay frame 0 -> image frame 4 (origin 5)
    bits[1, 2, 3] = 1
    group = 0x6002
    ds.add_new((group, 0x0010), "US", 3)
    ds.add_new((group, 0x0011), "US", 4)
    ds.add_new((group, 0x0015), "IS", 2)
    ds.add_new((group, 0x0040), "CS", "G")
    ds.add_new((group, 0x0050), "SS", [2, 8])  # row 2, column 8 (1-based): clipped at 10
    ds.add_new((group, 0x0051), "US", 5)
    ds.add_new((group, 0x0100), "US", 1)
    ds.add_new((group, 0x0102), "US", 0)
    ds.add_new((group, 0x3000), "OW", pack_bits(bits.ravel()))
    path = tmp_path / "ov.dcm"
    ds.save_as(path)
    assert overlay(path, 0) == []
    ((g, first),) = overlay(path, 4)
    assert g == group and first.shape == (10, 10)
    assert list(zip(*np.nonzero(first), strict=True)) == [(1, 7)]
    ((_, second),) = overlay(path, 5)
    assert not second.any()  # (2, 3) of the overlay lands on column 10: outside
    assert overlay(path, 6) == []


# --------------------------------------------------------------------- cache --


@pytest.fixture(scope="module")
def ct_files(tmp_path_factory) -> list[Path]:
    study = write_sample_study(
        tmp_path_factory.mktemp("sample"), ct_slices=40, ct_size=128, mr_slices=1, mr_size=32
    )
    return list(study.series[0].files)


def test_cache_evicts_by_bytes_and_stays_under_its_limit(ct_files):
    frame_bytes = 128 * 128 * 2
    cache = FrameCache(limit_bytes=int(10.5 * frame_bytes))
    seen = []
    for i in range(100):
        frame = read_frame(ct_files[(i * 7) % 40], cache=cache)
        seen.append(frame)
        assert cache.bytes_used <= cache.limit_bytes
    assert len(cache) == 10 and cache.bytes_used == 10 * frame_bytes
    # the ten most recent reads are cached, the rest evicted
    recent = [ct_files[(i * 7) % 40] for i in range(90, 100)]
    for path in recent:
        assert frame_key(path, 0) in cache
    assert frame_key(ct_files[(89 * 7) % 40], 0) not in cache


def test_cache_hit_returns_the_same_object_and_lru_keeps_used_frames(ct_files):
    cache = FrameCache(limit_bytes=3 * 128 * 128 * 2)
    first = read_frame(ct_files[0], cache=cache)
    assert read_frame(ct_files[0], cache=cache) is first
    read_frame(ct_files[1], cache=cache)
    read_frame(ct_files[2], cache=cache)
    assert read_frame(ct_files[0], cache=cache) is first  # touched: most recent again
    read_frame(ct_files[3], cache=cache)  # evicts ct_files[1], the least recent
    assert frame_key(ct_files[1], 0) not in cache
    assert read_frame(ct_files[0], cache=cache) is first
    cache.clear()
    assert cache.bytes_used == 0 and len(cache) == 0
    assert read_frame(ct_files[0], cache=cache) is not first


def test_cache_key_changes_when_the_file_changes(tmp_path, ct_files):
    path = tmp_path / "im.dcm"
    shutil.copy(ct_files[0], path)
    cache = FrameCache()
    first = read_frame(path, cache=cache)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert read_frame(path, cache=cache) is not first


def test_frame_larger_than_the_limit_is_not_cached(ct_files):
    cache = FrameCache(limit_bytes=1000)
    read_frame(ct_files[0], cache=cache)
    assert len(cache) == 0 and cache.bytes_used == 0


def test_cache_is_thread_safe(ct_files):
    frame_bytes = 128 * 128 * 2
    cache = FrameCache(limit_bytes=5 * frame_bytes)
    errors = []
    barrier = threading.Barrier(4)

    def work(k: int) -> None:
        barrier.wait()
        for i in range(25):
            try:
                frame = read_frame(ct_files[(i * 3 + k) % 40], cache=cache)
                assert frame.values.shape == (128, 128)
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(4)))
    assert not errors
    assert cache.bytes_used <= cache.limit_bytes
    assert cache.bytes_used == len(cache) * frame_bytes


# -------------------------------------------------------------------- errors --


def test_truncated_native_file(tmp_path):
    path = tmp_path / "cut.dcm"
    data = (TEST_FILES / "MR_small.dcm").read_bytes()
    path.write_bytes(data[:-1000])
    with pytest.raises(PixelDataError) as info:
        read_frame(path)
    assert str(path) in str(info.value) and "truncated" in str(info.value)
    with pytest.raises(PixelDataError, match=r"MR_truncated\.dcm.*truncated"):
        read_frame(TEST_FILES / "MR_truncated.dcm")


def test_pixel_data_shorter_than_its_attributes(tmp_path):
    ds = pydicom.dcmread(TEST_FILES / "rtdose.dcm")
    ds.NumberOfFrames = 20  # only 15 frames of data
    path = tmp_path / "short.dcm"
    ds.save_as(path)
    assert read_frame(path, 14).values.shape == (10, 10)
    with pytest.raises(PixelDataError) as info:
        read_frame(path, 17)
    msg = str(info.value)
    assert str(path) in msg
    assert "holds 6000 bytes" in msg and "frame 17 of 20" in msg


def test_corrupt_jpeg(tmp_path):
    ds = pydicom.dcmread(TEST_FILES / "SC_rgb_jpeg_dcmtk.dcm")
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([frame[:40] + b"\x00" * 64])
    path = tmp_path / "bad.dcm"
    ds.save_as(path)
    with pytest.raises(PixelDataError) as info:
        read_frame(path)
    msg = str(info.value)
    assert str(path) in msg
    assert "JPEG Baseline (Process 1), 1.2.840.10008.1.2.4.50" in msg
    assert "corrupt or truncated" in msg


def test_missing_decoder(monkeypatch):
    decoder = get_decoder(uid.JPEG2000Lossless)
    monkeypatch.setattr(decoder, "_available", {})
    monkeypatch.setattr(decoder, "_unavailable", {"pylibjpeg": ("pylibjpeg-openjpeg>=2.0",)})
    path = TEST_FILES / "MR_small_jp2klossless.dcm"
    with pytest.raises(PixelDataError) as info:
        read_frame(path)
    msg = str(info.value)
    assert str(path) in msg
    assert "JPEG 2000 Image Compression (Lossless Only) (1.2.840.10008.1.2.4.90)" in msg
    assert "pylibjpeg-openjpeg" in msg


@pytest.mark.parametrize(
    "filename",
    ["rtplan.dcm", "README.txt", "zipMR.gz", "badVR.dcm", "JPEG-lossy.dcm", "no_such_file.dcm"],
)
def test_files_without_a_decodable_image_raise_pixel_data_error(filename):
    with pytest.raises(PixelDataError, match=filename.replace(".", r"\.")):
        read_frame(TEST_FILES / filename)


@pytest.mark.parametrize(
    "filename",
    ["MR_small.dcm", "SC_rgb_jpeg_dcmtk.dcm", "examples_ybr_color.dcm", "rtdose_rle.dcm"],
)
def test_any_truncation_gives_pixel_data_error_or_a_frame(tmp_path, filename):
    data = (TEST_FILES / filename).read_bytes()
    path = tmp_path / filename
    for cut in np.linspace(200, len(data) - 1, 23).astype(int):
        path.write_bytes(data[:cut])
        try:
            frame = read_frame(path, 0)
        except PixelDataError as exc:
            assert str(path) in str(exc)
        else:
            voi.render(frame)  # a damaged tail may still leave frame 0 whole
