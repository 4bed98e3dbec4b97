"""The deid-data ultrasounds: at risk, matched by the example rules, cleaned exactly.

The example rectangles were placed by rendering the first frame of each file to PNG and
measuring the header bar (patient name, ID, birth date, institution, date and time); the
tests check that every frame is zero inside and bit-identical outside.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.pixels import iter_pixels

from dicomflow_lab.anonymize import Rectangle
from dicomflow_lab.anonymize.burned_in import apply_rule, assess, example_pixel_rules, match_rule
from tests._peers import require_module

# deid-data's files carry a few over-long values (LO, SH); pydicom warns when they are read.
pytestmark = pytest.mark.filterwarnings("ignore:The value length .* exceeds the maximum length")

# file -> (manufacturer, model, rows, columns, rectangle [x, y, width, height])
ULTRASOUNDS = {
    "GREYSCALE_IMAGE.dcm": ("Philips Medical Systems", "EPIQ 5G", 768, 1024, (0, 0, 1024, 26)),
    "RGB_IMAGE.dcm": ("SIEMENS", "S2000", 768, 1024, (0, 0, 1024, 60)),
    "ultrasound-multiframe.dcm": (
        "Philips Medical Systems",
        "Affiniti 70G",
        600,
        800,
        (0, 0, 800, 20),
    ),
    "GREYSCALE_CINE.zip": ("Philips Medical Systems", "EPIQ 5G", 600, 800, (0, 0, 800, 20)),
    "RGB_CINE.zip": (
        "Teratech Corp.",
        "Terason Ultrasound Imaging System",
        672,
        1016,
        (0, 0, 1016, 54),
    ),
}
# Distributed with its header band already black (rows 0-50 are 0 in every frame).
ALREADY_BLANK = {"ultrasound-multiframe.dcm"}


def deid_data_dir() -> Path:
    module = require_module("deid_data")
    return Path(module.__file__).parent / "data"


@pytest.fixture(scope="module")
def ultrasound_files(tmp_path_factory) -> dict[str, Path]:
    """The five ultrasounds as files; the zipped cines extracted into a temp dir."""
    folder = deid_data_dir() / "ultrasounds"
    out = tmp_path_factory.mktemp("ultrasounds")
    files = {}
    for name in ULTRASOUNDS:
        src = folder / name
        if name.endswith(".zip"):
            with zipfile.ZipFile(src) as zf:
                member = name.replace(".zip", ".dcm")
                zf.extract(member, out)
            files[name] = out / member
        else:
            files[name] = src
    return files


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@pytest.mark.parametrize("name", list(ULTRASOUNDS))
def test_ultrasound_is_at_risk_and_the_example_rule_matches(ultrasound_files, name):
    ds = pydicom.dcmread(ultrasound_files[name], stop_before_pixels=True)
    assert assess(ds) is not None
    manufacturer, model, rows, columns, rect = ULTRASOUNDS[name]
    rule = match_rule(example_pixel_rules(), ds)
    assert rule is not None
    assert (rule.manufacturer, rule.model, rule.rows, rule.columns) == (
        manufacturer,
        model,
        rows,
        columns,
    )
    assert rule.rectangles == (Rectangle(*rect),)


@pytest.mark.parametrize("name", list(ULTRASOUNDS))
def test_ultrasound_blackout_is_exact_in_every_frame(ultrasound_files, tmp_path, name):
    src = ultrasound_files[name]
    digest = sha256(src)
    ds = pydicom.dcmread(src)
    ts = ds.file_meta.TransferSyntaxUID
    result = apply_rule(ds, match_rule(example_pixel_rules(), ds))
    out = tmp_path / "clean.dcm"
    ds.save_as(out, enforce_file_format=True)
    del ds
    assert sha256(src) == digest, "the input file must not change"

    assert result.transfer_syntax_in == result.transfer_syntax_out == ts
    assert not result.new_instance
    x, y, w, h = ULTRASOUNDS[name][4]
    assert result.rectangles == (Rectangle(x, y, w, h),)
    clean = pydicom.dcmread(out, stop_before_pixels=True)
    orig = pydicom.dcmread(src, stop_before_pixels=True)
    assert clean.BurnedInAnnotation == "NO"
    assert assess(clean) is None
    for elem in orig:
        if elem.keyword != "BurnedInAnnotation":
            assert clean[elem.tag] == elem, elem.keyword

    mask = np.zeros((orig.Rows, orig.Columns), dtype=bool)
    mask[y : y + h, x : x + w] = True
    frames = 0
    had_text = False
    for before, after in zip(iter_pixels(src), iter_pixels(out), strict=True):
        assert after.dtype == before.dtype and after.shape == before.shape
        assert np.all(after[mask] == 0)
        assert np.array_equal(after[~mask], before[~mask])
        had_text = had_text or bool(np.any(before[mask] > 64))
        frames += 1
    assert frames == result.frames == int(orig.get("NumberOfFrames") or 1)
    assert had_text is (name not in ALREADY_BLANK)


@pytest.mark.parametrize(
    ("path", "at_risk"),
    [
        ("animals/cat.dcm", False),  # DX with Burned In Annotation NO
        ("humans/ctbrain1.dcm", True),  # CT modality, Secondary Capture SOP class
        ("dicom-cookies/image1.dcm", True),  # Secondary Capture, no Modality
    ],
)
def test_other_deid_data_files(path, at_risk):
    ds = pydicom.dcmread(deid_data_dir() / path, stop_before_pixels=True)
    assert (assess(ds) is not None) is at_risk
