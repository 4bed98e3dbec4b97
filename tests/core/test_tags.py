"""The tag table: rows, paths, display values, file meta read-only."""

from __future__ import annotations

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dicomflow_lab.core.tags import TagRow, format_path, parse_path, tag_frame, tag_rows

from ..conftest import TEST_FILES


def _nested() -> Dataset:
    ds = Dataset()
    ds.PatientName = "Doe^Jane"
    ref = Dataset()
    ref.SeriesInstanceUID = "1.2.3"
    inner = [Dataset(), Dataset()]
    inner[0].ReferencedSOPInstanceUID = "1.2.3.4"
    inner[1].ReferencedSOPInstanceUID = "1.2.3.5"
    ref.ReferencedImageSequence = Sequence(inner)
    ds.ReferencedSeriesSequence = Sequence([ref])
    ds.add_new(0x00090010, "LO", "GEMS_IDEN_01")
    ds.add_new(0x00091001, "LO", "value")
    return ds


def test_nested_rows_are_depth_first_with_full_paths():
    rows = tag_rows(_nested())
    paths = [r.path for r in rows]
    assert paths.index("(0008,1115)") < paths.index("(0008,1115)[0].(0008,1140)")
    assert "(0008,1115)[0].(0008,1140)[1].(0008,1155)" in paths
    deep = next(r for r in rows if r.path == "(0008,1115)[0].(0008,1140)[1].(0008,1155)")
    assert (deep.depth, deep.keyword, deep.value, deep.vr) == (
        2,
        "ReferencedSOPInstanceUID",
        "1.2.3.5",
        "UI",
    )
    seq = next(r for r in rows if r.path == "(0008,1115)")
    assert seq.is_sequence and not seq.editable and seq.vm == 1 and seq.value == "<1 item>"


def test_private_element_names_its_creator():
    rows = {r.path: r for r in tag_rows(_nested())}
    assert rows["(0009,1001)"].private_creator == "GEMS_IDEN_01"
    assert rows["(0009,1001)"].name == "Full fidelity"  # from pydicom's private dictionary
    assert rows["(0010,0010)"].private_creator is None


def test_file_meta_is_read_only_and_pixel_data_a_placeholder():
    ds = pydicom.dcmread(TEST_FILES / "CT_small.dcm")
    rows = tag_rows(ds)
    meta = [r for r in rows if r.is_meta]
    assert meta and all(not r.editable and r.tag.startswith("(0002,") for r in meta)
    pixel = next(r for r in rows if r.tag == "(7FE0,0010)")
    assert pixel.value == f"<OW, {len(ds.PixelData)} bytes>"
    assert pixel.length == len(ds.PixelData) and not pixel.editable


def test_long_values_are_truncated():
    ds = Dataset()
    ds.ImageComments = "x" * 500
    row = tag_rows(ds)[0]
    assert len(row.value) == 120 and row.value.endswith("…") and row.length == 500


def test_frame_has_one_column_per_field():
    frame = tag_frame(_nested())
    assert list(frame.columns) == list(TagRow.__dataclass_fields__)
    assert len(frame) == len(tag_rows(_nested()))


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("(0010,0010)", [(0x00100010, None)]),
        ("00100010", [(0x00100010, None)]),
        ("PatientName", [(0x00100010, None)]),
        (
            "ReferencedSeriesSequence[0].SeriesInstanceUID",
            [(0x00081115, 0), (0x0020000E, None)],
        ),
        (
            "(0008,1115)[0].(0008,1140)[1].(0008,1155)",
            [(0x00081115, 0), (0x00081140, 1), (0x00081155, None)],
        ),
    ],
)
def test_parse_path_forms(path, expected):
    assert parse_path(path) == expected


def test_format_path_is_the_inverse_of_parse_path():
    text = "(0008,1115)[0].(0008,1140)[1].(0008,1155)"
    assert format_path(parse_path(text)) == text


@pytest.mark.parametrize(
    "bad", ["", "NoSuchKeyword", "(0010,00)", "PatientName[x]", "(0008,1115).(0008,1155)"]
)
def test_parse_path_refuses_malformed_paths(bad):
    with pytest.raises(ValueError):
        parse_path(bad)
