"""Blacking out pixel rules: every transfer syntax family, real files, saved and re-read."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom import uid
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import get_decoder, get_encoder

from dicomflow_lab import data
from dicomflow_lab.anonymize import PixelRule, Rectangle
from dicomflow_lab.anonymize.burned_in import BlackoutResult, apply_rule, assess
from dicomflow_lab.errors import AnonymizationError
from tests._peers import require_program

US_IMAGE = "1.2.840.10008.5.1.4.1.1.6.1"
US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def decoded(ds: Dataset, *, as_rgb: bool = False) -> np.ndarray:
    """All frames as (frames, rows, cols, samples), without colour conversion."""
    arr, _ = get_decoder(ds.file_meta.TransferSyntaxUID).as_array(ds, as_rgb=as_rgb)
    frames = int(ds.get("NumberOfFrames") or 1)
    return np.asarray(arr).reshape(frames, ds.Rows, ds.Columns, -1)


def mask_of(rects: tuple[Rectangle, ...], rows: int, cols: int) -> np.ndarray:
    mask = np.zeros((rows, cols), dtype=bool)
    for r in rects:
        mask[r.y : r.y + r.height, r.x : r.x + r.width] = True
    return mask


def save_and_reread(ds: Dataset, path: Path) -> Dataset:
    ds.save_as(path, enforce_file_format=True)
    return pydicom.dcmread(path)


def assert_blacked_out(before: np.ndarray, after: np.ndarray, rects, fill=0) -> None:
    """Inside every rectangle: the fill; outside: the same values, bit for bit."""
    assert after.shape == before.shape
    assert after.dtype == before.dtype
    mask = mask_of(tuple(rects), before.shape[1], before.shape[2])
    assert mask.any() and (~mask).any()
    assert np.all(after[:, mask] == fill)
    assert np.array_equal(after[:, ~mask], before[:, ~mask])
    assert np.any(before[:, mask] != fill), "the test image must have content to remove"


def native_file(
    path: Path,
    arr: np.ndarray,
    photometric: str,
    *,
    planar: int = 0,
    ts: str = uid.ExplicitVRLittleEndian,
    sop: str = US_IMAGE,
) -> Path:
    """Write `arr` ((frames,) rows, cols (, samples)) as a native US instance."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    ds.SOPClassUID = sop
    ds.SOPInstanceUID = uid.generate_uid()
    ds.Modality = "US"
    ds.PatientName = "DOE^JANE"
    ds.set_pixel_data(arr, photometric, arr.dtype.itemsize * 8, generate_instance_uid=False)
    if planar:
        frames = arr if arr.ndim == 4 else arr[np.newaxis]
        ds.PlanarConfiguration = 1
        ds.PixelData = np.ascontiguousarray(frames.transpose(0, 3, 1, 2)).tobytes()
    ds.file_meta.TransferSyntaxUID = ts
    ds.file_meta.MediaStorageSOPClassUID = sop
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(path, enforce_file_format=True)
    return path


def random_pixels(shape: tuple[int, ...], dtype: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -2000), min(info.max, 4000), shape, endpoint=True).astype(
        dtype
    )


RULE = PixelRule((Rectangle(0, 0, 24, 5), Rectangle(10, 12, 7, 9)))


def run(src: Path, tmp_path: Path, rule: PixelRule = RULE):
    """Apply `rule` to a file; return (original, result, re-read output)."""
    original = pydicom.dcmread(src)
    ds = pydicom.dcmread(src)
    result = apply_rule(ds, rule)
    out = save_and_reread(ds, tmp_path / f"out-{src.name}")
    return original, result, out


# -- native -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "dtype", "photometric", "planar"),
    [
        ((32, 40), "uint8", "MONOCHROME2", 0),
        ((32, 40), "int16", "MONOCHROME2", 0),
        ((32, 40), "uint16", "MONOCHROME1", 0),
        ((3, 32, 40), "uint16", "MONOCHROME2", 0),
        ((32, 40, 3), "uint8", "RGB", 0),
        ((32, 40, 3), "uint8", "RGB", 1),
        ((4, 32, 40, 3), "uint8", "RGB", 0),
        ((4, 32, 40, 3), "uint8", "RGB", 1),
    ],
)
def test_native_keeps_transfer_syntax_bits_and_bytes_outside(
    tmp_path, shape, dtype, photometric, planar
):
    arr = random_pixels(shape, dtype)
    src = native_file(tmp_path / "in.dcm", arr, photometric, planar=planar)
    original, result, out = run(src, tmp_path)
    assert result.transfer_syntax_in == result.transfer_syntax_out == uid.ExplicitVRLittleEndian
    assert out.file_meta.TransferSyntaxUID == uid.ExplicitVRLittleEndian
    assert not result.new_instance and not result.lossy and result.note == ""
    multiframe = len(shape) == 4 or (len(shape) == 3 and photometric != "RGB")
    assert result.frames == (shape[0] if multiframe else 1)
    for kw in ("BitsAllocated", "BitsStored", "PixelRepresentation", "PhotometricInterpretation"):
        assert out[kw].value == original[kw].value
    assert out.get("PlanarConfiguration") == original.get("PlanarConfiguration")
    assert out.BurnedInAnnotation == "NO"
    assert_blacked_out(decoded(original), decoded(out), result.rectangles)
    assert len(out.PixelData) == len(original.PixelData)


def test_native_multiframe_cleans_every_frame_and_only_the_pixel_bytes_change(tmp_path):
    arr = random_pixels((5, 32, 40), "uint8", seed=3)
    src = native_file(tmp_path / "in.dcm", arr, "MONOCHROME2")
    original, result, out = run(src, tmp_path)
    assert result.frames == 5
    after = decoded(out)
    for frame in range(5):
        assert np.all(after[frame, 0:5, 0:24] == 0)
    # Nothing but Pixel Data and Burned In Annotation differs.
    changed = {e.keyword for e in out if e.tag not in original or original[e.tag] != e}
    assert changed == {"PixelData", "BurnedInAnnotation"}


def test_native_big_endian_16_bit(tmp_path):
    src = Path(shutil.copy(data.testfile("MR_small_bigendian.dcm"), tmp_path / "be.dcm"))
    original, result, out = run(src, tmp_path)
    assert out.file_meta.TransferSyntaxUID == uid.ExplicitVRBigEndian
    assert result.transfer_syntax_out == uid.ExplicitVRBigEndian
    assert_blacked_out(decoded(original), decoded(out), result.rectangles)


def test_native_deflated(tmp_path):
    src = Path(shutil.copy(data.testfile("image_dfl.dcm"), tmp_path / "dfl.dcm"))
    original, result, out = run(src, tmp_path)
    assert out.file_meta.TransferSyntaxUID == uid.DeflatedExplicitVRLittleEndian
    assert_blacked_out(decoded(original), decoded(out), result.rectangles)


def test_native_single_bit(tmp_path):
    src = Path(shutil.copy(data.testfile("liver_1frame.dcm"), tmp_path / "seg.dcm"))
    rule = PixelRule((Rectangle(150, 150, 60, 60),))
    original, result, out = run(src, tmp_path, rule)
    assert out.BitsAllocated == 1
    assert len(out.PixelData) == len(original.PixelData)
    assert_blacked_out(decoded(original), decoded(out), result.rectangles)


def test_native_ybr_full_422_cleans_whole_chroma_pairs(tmp_path):
    src = Path(shutil.copy(data.testfile("SC_ybr_full_422_uncompressed.dcm"), tmp_path / "y.dcm"))
    rule = PixelRule((Rectangle(3, 4, 10, 6),))  # odd x: widened to [2, 14)
    original, result, out = run(src, tmp_path, rule)
    assert result.rectangles == (Rectangle(2, 4, 12, 6),)
    assert out.PhotometricInterpretation == "YBR_FULL_422"
    assert len(out.PixelData) == len(original.PixelData)
    before, after = decoded(original), decoded(out)
    assert_blacked_out(before, after, result.rectangles, fill=np.array([0, 128, 128], np.uint8))
    rgb = decoded(out, as_rgb=True)
    assert np.all(rgb[0, 4:10, 2:14] == 0), "YCbCr (0, 128, 128) is black"


# -- lossless compressed ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["SC_rgb_rle_2frame.dcm", "MR_small_RLE.dcm", "SC_rgb_rle.dcm"])
def test_rle_round_trip_stays_rle(tmp_path, name):
    src = Path(shutil.copy(data.testfile(name), tmp_path / name))
    original, result, out = run(src, tmp_path)
    assert out.file_meta.TransferSyntaxUID == uid.RLELossless
    assert result.transfer_syntax_out == uid.RLELossless and not result.new_instance
    assert out["PixelData"].is_undefined_length
    assert out.PhotometricInterpretation == original.PhotometricInterpretation
    assert_blacked_out(decoded(original), decoded(out), result.rectangles)


def test_rle_that_pydicom_cannot_encode_falls_back_to_native(tmp_path):
    src = Path(shutil.copy(data.testfile("SC_rgb_rle_32bit.dcm"), tmp_path / "rle32.dcm"))
    original, result, out = run(src, tmp_path)
    assert out.file_meta.TransferSyntaxUID == uid.ExplicitVRLittleEndian
    assert not result.new_instance and not result.lossy
    assert "RLE Lossless encoder could not re-encode" in result.note
    assert out.PlanarConfiguration == 0 and out.BitsAllocated == 32
    assert_blacked_out(decoded(original), decoded(out), result.rectangles)


@pytest.mark.parametrize("name", ["examples_jpeg2k.dcm", "MR_small_jp2klossless.dcm"])
def test_jpeg2000_lossless_stays_jpeg2000_lossless(tmp_path, name):
    if not get_encoder(uid.JPEG2000Lossless).is_available:
        pytest.fail("pylibjpeg-openjpeg (a dependency) should provide a JPEG 2000 encoder")
    src = Path(shutil.copy(data.testfile(name), tmp_path / name))
    original, result, out = run(src, tmp_path, PixelRule((Rectangle(20, 20, 30, 16),)))
    assert out.file_meta.TransferSyntaxUID == uid.JPEG2000Lossless
    assert out.PhotometricInterpretation == original.PhotometricInterpretation
    assert not result.new_instance and result.note == ""
    assert_blacked_out(decoded(original), decoded(out), result.rectangles)


@pytest.mark.parametrize(
    ("name", "ts"),
    [
        ("MR_small_jpeg_ls_lossless.dcm", uid.JPEGLSLossless),
        ("SC_rgb_jpeg_gdcm.dcm", uid.JPEGLosslessSV1),
    ],
)
def test_lossless_without_encoder_is_stored_native_and_says_why(tmp_path, name, ts):
    src = Path(shutil.copy(data.testfile(name), tmp_path / name))
    original, result, out = run(src, tmp_path)
    assert result.transfer_syntax_in == ts
    try:
        has_encoder = get_encoder(ts).is_available
    except NotImplementedError:
        has_encoder = False
    if has_encoder:
        assert out.file_meta.TransferSyntaxUID == ts
    else:
        assert out.file_meta.TransferSyntaxUID == uid.ExplicitVRLittleEndian
        assert "encoder is installed" in result.note
    assert not result.new_instance and not result.lossy
    assert "LossyImageCompression" not in out or out.LossyImageCompression == "00"
    assert_blacked_out(decoded(original), decoded(out), result.rectangles)


# -- lossy ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "method", "ratio"),
    [
        # YBR_FULL, method and ratio in the source: both kept.
        ("SC_rgb_jpeg_dcmtk.dcm", ["ISO_10918_1"], "17.401"),
        # YBR_FULL_422, 30 frames, ratio but no method: method added, ratio kept.
        ("examples_ybr_color.dcm", ["ISO_10918_1"], "19"),
        # 12-bit greyscale JPEG Extended.
        ("JPGExtended.dcm", ["ISO_10918_1"], None),
    ],
)
def test_lossy_jpeg_becomes_native_new_instance_with_lossy_attributes(
    tmp_path, name, method, ratio
):
    src = Path(shutil.copy(data.testfile(name), tmp_path / name))
    original, result, out = run(src, tmp_path, PixelRule((Rectangle(0, 0, 40, 8),)))
    assert result.lossy and result.new_instance
    assert out.file_meta.TransferSyntaxUID == uid.ExplicitVRLittleEndian
    assert out.LossyImageCompression == "01"
    got = out.LossyImageCompressionMethod
    assert (list(got) if not isinstance(got, str) else [got]) == method
    if ratio is not None:
        assert str(out.LossyImageCompressionRatio) == ratio
    # Colour is decoded as pydicom does by default: YBR -> RGB.
    before = decoded(original, as_rgb=True)
    if before.shape[-1] == 3:
        assert out.PhotometricInterpretation == "RGB" and out.PlanarConfiguration == 0
    else:
        assert out.PhotometricInterpretation == original.PhotometricInterpretation
        assert out.BitsStored == original.BitsStored
    assert_blacked_out(before, decoded(out), result.rectangles)


def test_lossy_jpeg2000_becomes_native(tmp_path):
    src = Path(shutil.copy(data.testfile("JPEG2000.dcm"), tmp_path / "j2k.dcm"))
    original, result, out = run(src, tmp_path, PixelRule((Rectangle(0, 0, 200, 20),)))
    assert result.lossy and result.new_instance
    assert out.file_meta.TransferSyntaxUID == uid.ExplicitVRLittleEndian
    assert out.LossyImageCompression == "01"
    assert_blacked_out(decoded(original), decoded(out), result.rectangles)


def test_jpeg2000_marked_reversible_is_not_treated_as_lossy(tmp_path):
    src = tmp_path / "j2k.dcm"
    ds = pydicom.dcmread(data.testfile("JPEG2000.dcm"))
    ds.LossyImageCompression = "00"
    ds.save_as(src, enforce_file_format=True)
    original, result, out = run(src, tmp_path, PixelRule((Rectangle(0, 0, 200, 20),)))
    assert not result.lossy and not result.new_instance
    assert out.file_meta.TransferSyntaxUID == uid.ExplicitVRLittleEndian
    assert "not a lossless-only transfer syntax" in result.note
    assert out.LossyImageCompression == "00"
    assert_blacked_out(decoded(original), decoded(out), result.rectangles)


# -- geometry and errors ----------------------------------------------------------------


def test_rectangles_are_clipped_to_the_image(tmp_path):
    src = native_file(tmp_path / "in.dcm", random_pixels((32, 40), "uint8"), "MONOCHROME2")
    rule = PixelRule((Rectangle(30, 25, 100, 100), Rectangle(0, 0, 5, 5)))
    original, result, out = run(src, tmp_path, rule)
    assert result.rectangles == (Rectangle(30, 25, 10, 7), Rectangle(0, 0, 5, 5))
    after = decoded(out)
    assert np.all(after[0, 25:, 30:] == 0)
    assert_blacked_out(decoded(original), after, result.rectangles)


def test_a_rectangle_entirely_outside_is_an_error_naming_the_rule(tmp_path):
    src = native_file(tmp_path / "in.dcm", random_pixels((32, 40), "uint8"), "MONOCHROME2")
    ds = pydicom.dcmread(src)
    before = ds.PixelData
    rule = PixelRule((Rectangle(0, 0, 4, 4), Rectangle(40, 0, 10, 10)), "ACME", "US-1")
    with pytest.raises(AnonymizationError) as info:
        apply_rule(ds, rule)
    message = str(info.value)
    assert str(src) in message
    assert "rectangle 1 [40, 0, 10, 10]" in message and "'ACME'" in message
    assert "entirely outside" in message and "32 rows x 40 columns" in message
    assert ds.PixelData == before, "nothing is changed when the rule does not fit"


def test_no_pixel_data_is_an_error(tmp_path):
    ds = pydicom.dcmread(data.testfile("CT_small.dcm"))
    del ds.PixelData
    with pytest.raises(AnonymizationError, match="no Pixel Data"):
        apply_rule(ds, RULE, source="ct.dcm")


def test_an_encapsulated_document_is_refused():
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.104.1"
    ds.EncapsulatedDocument = b"%PDF-1.4\n"
    with pytest.raises(AnonymizationError, match="Encapsulated PDF Storage document cannot"):
        apply_rule(ds, RULE, source="report.dcm")


def test_an_undecodable_transfer_syntax_is_an_error_naming_the_instance(tmp_path):
    ds = pydicom.dcmread(data.testfile("SC_rgb_rle.dcm"))
    ds.file_meta.TransferSyntaxUID = uid.MPEG2MPML  # video: pydicom has no decoder
    with pytest.raises(AnonymizationError) as info:
        apply_rule(ds, RULE, source="video.dcm")
    assert str(info.value).startswith("video.dcm: cannot black out burned-in text")
    assert "MPEG2" in str(info.value)


def test_truncated_native_pixel_data_is_an_error(tmp_path):
    src = native_file(tmp_path / "in.dcm", random_pixels((32, 40), "uint8"), "MONOCHROME2")
    ds = pydicom.dcmread(src)
    ds.PixelData = ds.PixelData[:100]
    with pytest.raises(AnonymizationError, match="truncated"):
        apply_rule(ds, RULE)


# -- the input file, determinism, dcmdump -----------------------------------------------


@pytest.mark.parametrize("name", ["SC_rgb_rle_2frame.dcm", "examples_ybr_color.dcm"])
def test_the_input_file_is_never_touched(tmp_path, name):
    src = Path(shutil.copy(data.testfile(name), tmp_path / name))
    digest = sha256(src)
    ds = pydicom.dcmread(src)
    apply_rule(ds, RULE)
    ds.save_as(tmp_path / "out.dcm", enforce_file_format=True)
    assert sha256(src) == digest


@pytest.mark.parametrize("name", ["SC_rgb_rle_2frame.dcm", "examples_jpeg2k.dcm"])
def test_the_output_is_deterministic(tmp_path, name):
    outs = []
    for i in range(2):
        ds = pydicom.dcmread(data.testfile(name))
        apply_rule(ds, RULE)
        ds.save_as(tmp_path / f"{i}.dcm", enforce_file_format=True)
        outs.append(sha256(tmp_path / f"{i}.dcm"))
    assert outs[0] == outs[1]


def test_after_blackout_the_instance_is_no_longer_at_risk(tmp_path):
    src = native_file(tmp_path / "in.dcm", random_pixels((32, 40), "uint8"), "MONOCHROME2")
    ds = pydicom.dcmread(src)
    assert assess(ds) is not None
    result = apply_rule(ds, RULE)
    assert isinstance(result, BlackoutResult) and result.rule is RULE
    assert assess(ds) is None


@pytest.mark.peer
@pytest.mark.parametrize("name", ["examples_ybr_color.dcm", "SC_rgb_rle_2frame.dcm"])
def test_dcmdump_parses_the_output(tmp_path, name):
    dcmdump = require_program("dcmdump")
    ds = pydicom.dcmread(data.testfile(name))
    apply_rule(ds, RULE)
    out = tmp_path / "out.dcm"
    ds.save_as(out, enforce_file_format=True)
    proc = subprocess.run(
        [dcmdump, "-q", "-Un", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    ts = str(ds.file_meta.TransferSyntaxUID)
    assert any(line.startswith(f"(0002,0010) UI [{ts}]") for line in lines)
    assert any(line.startswith("(0028,0301) CS [NO]") for line in lines)
    assert any(line.startswith("(7fe0,0010)") for line in lines)
