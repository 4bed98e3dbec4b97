"""header_to_dict: the fast keyword -> value conversion, checked against pydicom's own."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import orjson
import pydicom
import pytest
from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pydicom.valuerep import IS, DSfloat, PersonName

from dicomflow_lab.core.dataset import BULK_VRS, HeaderReadOptions, header_to_dict, read_header
from dicomflow_lab.errors import DicomReadError

TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"
PIXEL_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}


# -- a reference conversion, written from the documented rules on pydicom's values -----
def _ref_key(tag: int) -> str:
    return (keyword_for_tag(tag) if not tag >> 16 & 1 else "") or f"{tag:08X}"


def _ref_value(value: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, PersonName):
        return str(value) or None
    if isinstance(value, DSfloat):
        return float(value)
    if isinstance(value, IS):
        return int(value)
    if isinstance(value, MultiValue | list):
        return [_ref_value(v) for v in value]
    if isinstance(value, str):
        return str(value)  # UID and other str subclasses compare as plain text
    return value


def _ref_elem(elem: DataElement) -> Any:
    if elem.VR == "SQ":
        return [_ref_dataset(item) for item in elem.value]
    if elem.VR in BULK_VRS:
        return f"<{elem.VR}, {len(elem.value)} bytes>" if elem.value else None
    return _ref_value(elem.value)


def _ref_dataset(ds: Dataset) -> dict[str, Any]:
    return {_ref_key(e.tag): _ref_elem(e) for e in ds if e.tag not in PIXEL_TAGS}


def _reference(path: Path) -> dict[str, Any]:
    full = pydicom.dcmread(path, stop_before_pixels=True)
    out = _ref_dataset(full.file_meta)
    out.update(_ref_dataset(full))
    return out


def _assert_same(got: Any, want: Any, where: str) -> None:
    """Equal values *and* equal JSON types (1 and 1.0 differ in a header JSON)."""
    if isinstance(want, dict):
        assert isinstance(got, dict), where
        assert got.keys() == want.keys(), f"{where}: keys differ: {got.keys() ^ want.keys()}"
        for k in want:
            _assert_same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {got!r} != {want!r}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _assert_same(g, w, f"{where}[{i}]")
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"
        assert _json_type(got) is _json_type(want), f"{where}: {got!r} vs {want!r}"


def _json_type(value: Any) -> type:
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind
    return type(value)


# -- helpers ---------------------------------------------------------------------------
def _new_dataset(charset: str | None = None, ts: str = ExplicitVRLittleEndian) -> Dataset:
    ds = Dataset()
    if charset:
        ds.SpecificCharacterSet = charset
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ts
    ds.file_meta = meta
    return ds


def _roundtrip(ds: Dataset, tmp_path: Path, options: HeaderReadOptions | None = None) -> Dataset:
    path = tmp_path / f"{ds.SOPInstanceUID}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return read_header(path, options)


# -- keys ------------------------------------------------------------------------------
def test_keywords_as_keys_and_private_tags_as_hex() -> None:
    d = header_to_dict(read_header(TEST_FILES / "CT_small.dcm"))
    assert d["PatientName"] == "CompressedSamples^CT1"
    assert d["TransferSyntaxUID"] == ExplicitVRLittleEndian  # the meta group is included
    assert d["00090010"] == "GEMS_IDEN_01"  # a private creator
    assert "00091001" in d  # a private element
    for key in d:
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]*|[0-9A-F]{8}", key), key
        if re.fullmatch(r"[0-9A-F]{8}", key):
            assert int(key[:4], 16) & 1, f"public tag {key} has no keyword"
    assert "TransferSyntaxUID" not in header_to_dict(
        read_header(TEST_FILES / "CT_small.dcm"), include_meta=False
    )


# -- sequences -------------------------------------------------------------------------
def test_sequences_nested_as_lists_of_dicts() -> None:
    d = header_to_dict(read_header(TEST_FILES / "rtplan.dcm"))
    beams = d["BeamSequence"]
    assert isinstance(beams, list) and all(isinstance(b, dict) for b in beams)
    points = beams[0]["ControlPointSequence"]
    assert isinstance(points, list) and isinstance(points[0], dict)
    assert points[0]["GantryAngle"] == 0.0 and type(points[0]["GantryAngle"]) is float
    assert isinstance(points[0]["BeamLimitingDevicePositionSequence"][0], dict)


def test_sequence_depth_beyond_limit_is_a_read_error() -> None:
    ds = _new_dataset()
    inner = Dataset()
    inner.CodeValue = "X"
    for _ in range(70):
        outer = Dataset()
        outer.ContentSequence = [inner]
        inner = outer
    ds.ContentSequence = inner.ContentSequence
    with pytest.raises(DicomReadError) as info:
        header_to_dict(ds)
    assert info.value.kind == "too_deep"
    assert "nested deeper than 64" in info.value.reason


# -- numbers and multiple values -------------------------------------------------------
def test_numbers_become_int_and_float(tmp_path: Path) -> None:
    ds = _new_dataset()
    ds.Rows = 512  # US
    ds.InstanceNumber = "7"  # IS
    ds.SliceThickness = "5"  # DS written without a decimal point stays a float
    ds.KVP = "120.5"  # DS
    ds.add_new(0x00189087, "FD", 1000.0)  # DiffusionBValue
    ds.add_new(0x00280106, "SS", -3)  # SmallestImagePixelValue (US or SS)
    ds.add_new(0x00181310, "US", [0, 256, 256, 0])  # AcquisitionMatrix, VM 4
    ds.add_new(0x00209241, "FL", 1.5)  # NominalPercentageOfCardiacPhase
    ds.add_new(0x00182043, "FL", [0.25, 0.5])  # LocalizingCursorPosition, VM 2
    ds.add_new(0x00186020, "SL", -70000)  # ReferencePixelX0
    ds.add_new(0x00081160, "IS", ["1", "2", "3"])  # ReferencedFrameNumber, VM 1-n
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.PixelSpacing = ["0.5", "0.5"]
    for source in (_roundtrip(ds, tmp_path), ds):  # raw (fast path) and converted values
        d = header_to_dict(source)
        expected = {
            "Rows": 512,
            "InstanceNumber": 7,
            "SliceThickness": 5.0,
            "KVP": 120.5,
            "DiffusionBValue": 1000.0,
            "SmallestImagePixelValue": -3,
            "AcquisitionMatrix": [0, 256, 256, 0],
            "NominalPercentageOfCardiacPhase": 1.5,
            "LocalizingCursorPosition": [0.25, 0.5],
            "ReferencePixelX0": -70000,
            "ReferencedFrameNumber": [1, 2, 3],
            "ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"],
            "PixelSpacing": [0.5, 0.5],
        }
        for key, want in expected.items():
            _assert_same(d[key], want, key)
        orjson.dumps(d)  # JSON-ready, including the converted (DSfloat) values


# -- bulk and deferred values ----------------------------------------------------------
def test_bulk_values_become_placeholders(tmp_path: Path) -> None:
    ds = _new_dataset()
    ds.add_new(0x00420011, "OB", b"%PDF" + bytes(96))  # EncapsulatedDocument
    ds.add_new(0x00281201, "OW", bytes(512))  # RedPaletteColorLookupTableData
    ds.add_new(0x00091010, "UN", bytes(10))  # private, unknown VR
    ds.add_new(0x00283006, "OB", b"")  # empty LUTData
    ds.add_new(0x00204000, "LT", "x" * 300)  # ImageComments: long text
    raw = _roundtrip(ds, tmp_path)
    for source in (raw, ds):
        d = header_to_dict(source, defer_size=200)
        assert d["EncapsulatedDocument"] == "<OB, 100 bytes>"
        assert d["RedPaletteColorLookupTableData"] == "<OW, 512 bytes>"
        assert d["00091010"] == "<UN, 10 bytes>"
        assert d["LUTData"] is None
    assert header_to_dict(raw)["FileMetaInformationVersion"] == "<OB, 2 bytes>"
    # a long text value of a raw element becomes a placeholder past defer_size
    assert header_to_dict(raw, defer_size=200)["ImageComments"] == "<LT, 300 bytes>"
    assert header_to_dict(raw)["ImageComments"] == "x" * 300
    # a value the reader deferred (never read from disk) also becomes a placeholder
    deferred = _roundtrip(ds, tmp_path, HeaderReadOptions(defer_size=64))
    d = header_to_dict(deferred)
    assert d["ImageComments"] == "<LT, 300 bytes>"
    assert d["EncapsulatedDocument"] == "<OB, 100 bytes>"


def test_pixel_data_is_left_out() -> None:
    full = pydicom.dcmread(TEST_FILES / "CT_small.dcm")
    assert "PixelData" in full
    d = header_to_dict(full)
    assert "PixelData" not in d
    assert d["Rows"] == 128
    assert "PixelData" not in header_to_dict(read_header(TEST_FILES / "CT_small.dcm"))


# -- character sets --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("charset", "name", "ts"),
    [
        ("ISO_IR 100", "Müller^Jürgen", ExplicitVRLittleEndian),
        ("ISO_IR 100", "Gómez^José^^Dr.", ImplicitVRLittleEndian),
        ("ISO_IR 192", "山田^太郎=やまだ^たろう", ExplicitVRLittleEndian),
        ("ISO_IR 192", "Ærøskøbing^Åse", ImplicitVRLittleEndian),
    ],
)
def test_non_ascii_person_names(charset: str, name: str, ts: str, tmp_path: Path) -> None:
    ds = _new_dataset(charset, ts)
    ds.PatientName = name
    ds.InstitutionName = name.replace("^", " ").split("=")[0]
    raw = _roundtrip(ds, tmp_path)
    if charset == "ISO_IR 100":  # really single-byte Latin-1 on disk
        assert name.encode("latin-1") in (tmp_path / f"{ds.SOPInstanceUID}.dcm").read_bytes()
    for source in (raw, ds):
        d = header_to_dict(source)
        assert d["PatientName"] == name
        assert d["InstitutionName"] == name.replace("^", " ").split("=")[0]
        assert d["SpecificCharacterSet"] == charset


def test_charset_applies_inside_sequences(tmp_path: Path) -> None:
    ds = _new_dataset("ISO_IR 100")
    item = Dataset()
    item.PatientName = "Ødegård^Søren"
    ds.OtherPatientIDsSequence = [item]
    d = header_to_dict(_roundtrip(ds, tmp_path))
    assert d["OtherPatientIDsSequence"] == [{"PatientName": "Ødegård^Søren"}]


# -- conformance with pydicom ----------------------------------------------------------
@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "image_dfl.dcm"])
def test_fast_path_matches_pydicom_for_every_element(name: str) -> None:
    path = TEST_FILES / name
    fast = header_to_dict(read_header(path))
    _assert_same(fast, _reference(path), name)
    # the same rules on pydicom's fully converted elements (DataElement, not raw)
    converted = pydicom.dcmread(path, stop_before_pixels=True)
    for _ in converted:  # iterating converts every raw element
        pass
    _assert_same(header_to_dict(converted), fast, f"{name} (converted)")
    orjson.dumps(fast)
    orjson.dumps(header_to_dict(converted))


def test_header_to_dict_on_plain_dataset_without_meta() -> None:
    ds = Dataset()
    ds.PatientID = "P1"
    ds.add(DataElement(0x00280030, "DS", [DSfloat("0.25"), DSfloat("0.5")]))
    assert header_to_dict(ds) == {"PatientID": "P1", "PixelSpacing": [0.25, 0.5]}


def test_value_multiplicity_keeps_empty_parts() -> None:
    raw = io.BytesIO()
    ds = _new_dataset()
    ds.ImageType = ["ORIGINAL", "", "AXIAL"]
    pydicom.dcmwrite(raw, ds, enforce_file_format=True)
    raw.seek(0)
    d = header_to_dict(pydicom.dcmread(raw))
    assert d["ImageType"] == ["ORIGINAL", None, "AXIAL"]
    assert header_to_dict(ds)["ImageType"] == ["ORIGINAL", None, "AXIAL"]


def test_read_complete_refuses_files_cut_anywhere(tmp_path):
    """pydicom reads a cut file quietly; read_complete names the file and the cut."""
    import pytest as _pytest

    from dicomflow_lab.core.dataset import read_complete
    from dicomflow_lab.data import testfile
    from dicomflow_lab.errors import DicomReadError

    data = open(testfile("CT_small.dcm"), "rb").read()  # noqa: SIM115 - tiny test read
    whole = tmp_path / "whole.dcm"
    whole.write_bytes(data)
    ds = read_complete(whole)
    assert len(ds.PixelData) == ds.Rows * ds.Columns * 2
    for cut in (400, 1000, 2000, len(data) - 100):
        part = tmp_path / f"cut{cut}.dcm"
        part.write_bytes(data[:cut])
        with _pytest.raises(DicomReadError) as err:
            read_complete(part)
        assert err.value.kind in ("truncated", "invalid")
        assert str(part) in str(err.value)
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"hello")
    with _pytest.raises(DicomReadError) as err:
        read_complete(junk)
    assert err.value.kind == "not_dicom"
