"""The no-parse fast path writes exactly what the pydicom path writes, or declines."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import pydicom
import pytest

from dicomflow_lab.core import _write
from dicomflow_lab.core._write_fast import fast_edit, fast_tags, scan_layout
from dicomflow_lab.core.edit import Edit
from dicomflow_lab.core.sample import write_sample_study
from dicomflow_lab.errors import DicomReadError, EditError

from ..conftest import TEST_FILES

EDIT_SETS = {
    "benchmark": [
        Edit("set", "PatientName", "Bench^Mark"),
        Edit("set", "StudyDescription", "Edited by benchmark"),
        Edit("set", "InstitutionName", "Benchmark Hospital"),
    ],
    "insert_delete_empty": [
        Edit("set", "PatientName", "Doe^Jane"),
        Edit("delete", "PatientID"),
        Edit("set", "ImageComments", "a new element, inserted in tag order"),
        Edit("set", "SeriesDescription", ""),
        Edit("delete", "(0040,0254)"),  # usually absent: no change
    ],
    "non_ascii": [  # refused where the character set cannot hold it, in both paths
        Edit("set", "PatientName", "Müller^Jürgen"),
        Edit("set", "AccessionNumber", "A1"),
    ],
    "numbers_dates": [
        Edit("set", "InstanceNumber", 7),
        Edit("set", "SliceThickness", 1.25),
        Edit("set", "StudyDate", "20240131"),
        Edit("set", "WindowCenter", "40\\400"),
        Edit("set", "Rows", 1),
    ],
    "refused": [Edit("set", "StudyTime", "25:00")],
    "add_existing": [Edit("add", "Modality", "OT")],
    "last_element": [Edit("set", "(FFFA,FFFA)", None, "SQ")],  # declined: a sequence
}


def _corpus() -> list[Path]:
    return sorted(p for p in TEST_FILES.rglob("*") if p.is_file())


def _pydicom(path: Path, data: bytes, edits: list[Edit]) -> tuple[str, object]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return "ok", _write.pydicom_edit(path, data, edits, False, "run", {}, {})
    except (EditError, DicomReadError, ValueError) as exc:
        return type(exc).__name__, str(exc)


def _fast(data: bytes, edits: list[Edit], cache: dict | None) -> tuple[str, object] | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            done = fast_edit(data, edits, cache)
    except (EditError, ValueError) as exc:
        return type(exc).__name__, str(exc)
    return None if done is None else ("ok", done)


def test_fast_path_equals_the_pydicom_path_on_every_bundled_file():
    accepted = set()
    for path in _corpus():
        data = path.read_bytes()
        cache: dict = {}  # shared across edit sets, as a batch shares it across files
        for name, edits in EDIT_SETS.items():
            for _twice in range(2):  # the second run comes from the cache
                fast = _fast(data, edits, cache)
                if fast is None:
                    continue
                accepted.add(path.name)
                assert fast == _pydicom(path, data, edits), (path.name, name)
    # the fast path is the common case, not a curiosity
    assert len(accepted) >= 60, sorted(accepted)
    assert {"CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "MR_small_implicit.dcm"} <= accepted


def test_fast_path_is_taken_for_the_generated_series(tmp_path):
    write_sample_study(tmp_path, ct_slices=3, ct_size=16, mr_slices=2, mr_size=16)
    files = sorted(tmp_path.rglob("*.dcm"))
    assert files
    for path in files:
        data = path.read_bytes()
        fast = _fast(data, EDIT_SETS["benchmark"], {})
        assert fast is not None and fast == _pydicom(path, data, EDIT_SETS["benchmark"])
        new, _changes = fast[1]
        a, b = pydicom.dcmread(path), pydicom.dcmread(pydicom.filebase.DicomBytesIO(new))
        assert b.PatientName == "Bench^Mark" and b.PixelData == a.PixelData
        assert b.file_meta == a.file_meta


@pytest.mark.parametrize(
    "edits",
    [
        [Edit("set", "(0009,1001)", "private", "LO")],
        [Edit("add_item", "ReferencedSeriesSequence")],
        [Edit("set", "ReferencedSeriesSequence[0].SeriesInstanceUID", "1.2.3")],
        [Edit("set", "SpecificCharacterSet", "ISO_IR 192")],
        [Edit("set", "SOPInstanceUID", "1.2.3")],
        [Edit("set", "(0028,0106)", 0, "US")],  # US or SS in the dictionary
        [Edit("set", "(0018,0000)", 4)],  # a group length
        [Edit("remove_item", "ReferencedSeriesSequence", 0)],
    ],
)
def test_edits_beyond_plain_top_level_values_take_the_pydicom_path(edits):
    assert fast_tags(edits) is None
    assert fast_edit((TEST_FILES / "CT_small.dcm").read_bytes(), edits) is None


def test_unusual_files_are_declined():
    data = (TEST_FILES / "CT_small.dcm").read_bytes()
    assert scan_layout(data) is not None
    assert scan_layout(data[128:]) is None  # no preamble
    assert scan_layout(data + b"\0\0\0\0") is None  # trailing bytes
    assert scan_layout(data[:-10]) is None  # truncated Pixel Data
    for name in ("MR_small_bigendian.dcm", "image_dfl.dcm"):  # big endian, deflated
        assert scan_layout((TEST_FILES / name).read_bytes()) is None, name
    # tags out of order: swap two top-level elements' bytes
    layout = scan_layout(data)
    assert layout is not None
    k = layout.tags.index(0x00100010)
    a, b, c = layout.starts[k], layout.starts[k + 1], layout.starts[k + 2]
    swapped = data[:a] + data[b:c] + data[a:b] + data[c:]
    assert scan_layout(swapped) is None
    # explicit VR bytes that pydicom would read as implicit
    bad_vr = data[:a] + struct.pack("<HH", 0x0010, 0x0010) + b"\x01\x02" + data[a + 6 :]
    assert scan_layout(bad_vr) is None


def test_a_touched_group_with_a_group_length_is_declined():
    data = (TEST_FILES / "693_J2KI.dcm").read_bytes()
    layout = scan_layout(data)
    assert layout is not None
    assert {0x00080000, 0x00100000} <= set(layout.tags)  # (0008,0000), (0010,0000)
    assert fast_edit(data, [Edit("set", "InstitutionName", "X")]) is None
    assert fast_edit(data, [Edit("set", "PatientName", "X")]) is None
