"""Validated edits: one refused and one accepted value per VR, charsets, all-or-nothing."""

from __future__ import annotations

import pytest
from pydicom.datadict import DicomDictionary
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dicomflow_lab.core.edit import Edit, apply_edits, regenerate_uids, validate
from dicomflow_lab.errors import EditError


def _tag_for(vr: str) -> int:
    """The first current (not retired) public tag with this VR and VM 1 (else 1-n)."""
    for vm in ("1", "1-n"):
        tag = _first(vr, vm)
        if tag:
            return tag
    raise LookupError(vr)


def _first(vr: str, vm: str) -> int | None:
    for tag, (entry_vr, entry_vm, _name, retired, _kw) in sorted(DicomDictionary.items()):
        public = tag >> 16 not in (0, 2) and tag & 0xFFFF and not 0x50000000 <= tag < 0x70000000
        if entry_vr == vr and entry_vm == vm and not retired and public:
            return tag
    return None


def _path(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


# VR -> (a refused value, a word of the rule in the message, an accepted value)
CASES = {
    "AE": ("A" * 17, "exceeds the maximum length of 16", "STORESCP"),
    "AS": ("12", "Invalid value for VR AS", "045Y"),
    "AT": ("NotATag", "not a valid tag", 0x00100010),
    "CS": ("ct", "Invalid value for VR CS", "CT"),
    "DA": ("20201301", "Invalid value for VR DA", "20201231"),
    "DS": ("1.2.3", "Invalid value for VR DS", "1.25"),
    "DT": ("2020x", "Invalid value for VR DT", "20201231235959.5"),
    "FD": ("abc", "not a valid number", 1.5),
    "FL": (1e39, "outside the 32-bit float range", "2.5"),
    "IS": ("99999999999", "between -2**31", "12"),
    "LO": ("x" * 65, "exceeds the maximum length of 64", "abc"),
    "LT": ("x" * 10241, "exceeds the maximum length of 10240", "a\\b"),
    "PN": ("a^b^c^d^e^f", "at most 5 components", "Doe^Jane"),
    "SH": ("x" * 17, "exceeds the maximum length of 16", "abc"),
    "SL": (2**31, "must be between", -5),
    "SS": (40000, "must be between -32768 and 32767", "-5"),
    "ST": ("x" * 1025, "exceeds the maximum length of 1024", "text"),
    "SV": (2**63, "must be between", -5),
    "TM": ("256000", "Invalid value for VR TM", "235959.123"),
    "UC": ("Müller", "Specific Character Set", "abc"),
    "UI": ("1.2.a", "Invalid value for VR UI", "1.2.3"),
    "UL": (-1, "must be between 0 and 4294967295", 5),
    "UR": ("http://x y", "Invalid value for VR UR", "http://example.com/a"),
    "US": (70000, "must be between 0 and 65535", "5"),
    "UT": ("Grüße", "Specific Character Set", "text"),
    "UV": (-1, "must be between 0", 5),
}


@pytest.mark.parametrize("vr", sorted(CASES))
def test_each_vr_refuses_an_invalid_value_and_accepts_a_valid_one(vr):
    bad, rule, good = CASES[vr]
    tag = _tag_for(vr)
    path = _path(tag)
    ds = Dataset()
    with pytest.raises(EditError) as info:
        apply_edits(ds, [Edit("set", path, bad)])
    message = str(info.value)
    assert path in message and f"VR {vr}" in message and rule in message, message
    assert info.value.vr == vr and info.value.path == path
    assert tag not in ds  # refused: nothing applied
    changes = apply_edits(ds, [Edit("set", path, good)])
    assert tag in ds and changes[0].old is None and changes[0].new


@pytest.mark.parametrize("vr", ["OB", "OW", "OF", "OD", "OL", "OV", "UN"])
def test_bulk_vrs_are_not_edited_as_values(vr):
    ds = Dataset()
    with pytest.raises(EditError, match=f"VR {vr}: bulk data"):
        apply_edits(ds, [Edit("set", "(0009,1001)", b"\x00\x01", vr=vr)])


def test_sq_takes_items_not_values_and_items_can_be_added_and_removed():
    ds = Dataset()
    with pytest.raises(EditError, match="VR SQ: a sequence has items"):
        apply_edits(ds, [Edit("set", "ReferencedSeriesSequence", "x")])
    changes = apply_edits(
        ds,
        [
            Edit("add_item", "ReferencedSeriesSequence"),
            Edit("set", "ReferencedSeriesSequence[0].SeriesInstanceUID", "1.2.3"),
            Edit("add_item", "ReferencedSeriesSequence"),
        ],
    )
    assert [c.path for c in changes] == [
        "(0008,1115)[0]",
        "(0008,1115)[0].(0020,000E)",
        "(0008,1115)[1]",
    ]
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == "1.2.3"
    apply_edits(ds, [Edit("remove_item", "ReferencedSeriesSequence", 0)])
    assert len(ds.ReferencedSeriesSequence) == 1
    assert "SeriesInstanceUID" not in ds.ReferencedSeriesSequence[0]


def test_vm_is_checked_against_the_dictionary():
    ds = Dataset()
    with pytest.raises(EditError, match=r"VR CS: VM 1 allowed, got 2"):
        apply_edits(ds, [Edit("set", "Modality", "CT\\MR")])
    with pytest.raises(EditError, match=r"VR DS: VM 2 allowed, got 3"):
        apply_edits(ds, [Edit("set", "PixelSpacing", "1\\2\\3")])
    apply_edits(ds, [Edit("set", "PixelSpacing", "0.5\\0.5")])
    assert list(ds.PixelSpacing) == [0.5, 0.5]


@pytest.mark.parametrize(
    ("charset", "name"),
    [
        ("ISO_IR 100", "Müller^Jürgen"),
        ("ISO_IR 192", "山田^太郎=やまだ^たろう"),
        ("ISO_IR 192", "Müller^Jürgen"),
    ],
)
def test_non_ascii_names_are_accepted_in_a_charset_that_has_them(charset, name):
    ds = Dataset()
    ds.SpecificCharacterSet = charset
    assert validate(ds, "PatientName", name) == name


@pytest.mark.parametrize(
    ("charset", "name"), [(None, "Müller^Jürgen"), ("ISO_IR 100", "山田^太郎")]
)
def test_names_the_charset_cannot_encode_are_refused(charset, name):
    ds = Dataset()
    if charset:
        ds.SpecificCharacterSet = charset
    with pytest.raises(EditError, match="VR PN: value not encodable in Specific Character Set"):
        apply_edits(ds, [Edit("set", "PatientName", name)])


def test_a_sequence_item_with_its_own_charset_is_respected():
    ds = Dataset()
    item = Dataset()
    item.SpecificCharacterSet = "ISO_IR 192"
    ds.ReferencedSeriesSequence = Sequence([item])
    validate(ds, "ReferencedSeriesSequence[0].PatientName", "山田^太郎")


def test_apply_edits_is_all_or_nothing():
    ds = Dataset()
    ds.PatientName = "Old^Name"
    ds.PatientID = "ID1"
    edits = [
        Edit("set", "PatientName", "New^Name"),
        Edit("delete", "PatientID"),
        Edit("add_item", "ReferencedSeriesSequence"),
        Edit("set", "StudyDate", "2020-01-01"),
    ]
    with pytest.raises(
        EditError, match=r"\(0008,0020\) StudyDate, VR DA: .*must be a date as YYYYMMDD"
    ):
        apply_edits(ds, edits)
    assert ds.PatientName == "Old^Name" and ds.PatientID == "ID1"
    assert "ReferencedSeriesSequence" not in ds


def test_add_refuses_an_existing_element_and_delete_of_missing_is_no_change():
    ds = Dataset()
    ds.PatientID = "1"
    with pytest.raises(EditError, match="already exists; use set"):
        apply_edits(ds, [Edit("add", "PatientID", "2")])
    (change,) = apply_edits(ds, [Edit("delete", "PatientName")])
    assert change.old is None and change.new is None


def test_file_meta_and_missing_items_are_refused():
    ds = Dataset()
    with pytest.raises(EditError, match="file meta"):
        apply_edits(ds, [Edit("set", "TransferSyntaxUID", "1.2.840.10008.1.2")])
    with pytest.raises(EditError, match=r"not a sequence in this dataset"):
        apply_edits(ds, [Edit("set", "ReferencedSeriesSequence[0].SeriesInstanceUID", "1.2")])


def test_private_tags_need_a_vr():
    ds = Dataset()
    with pytest.raises(ValueError, match="give the VR"):
        apply_edits(ds, [Edit("set", "(0009,1001)", "x")])
    apply_edits(ds, [Edit("set", "(0009,1001)", "x", vr="LO")])
    assert ds[0x00091001].VR == "LO"


def test_regenerate_uids_maps_references_consistently():
    ds = Dataset()
    ds.StudyInstanceUID = "1.2.3.1"
    ds.SeriesInstanceUID = "1.2.3.2"
    ds.SOPInstanceUID = "1.2.3.3"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ref = Dataset()
    ref.SeriesInstanceUID = "1.2.3.2"
    ds.ReferencedSeriesSequence = Sequence([ref])
    mapping: dict[str, str] = {}
    regenerate_uids(ds, mapping, "run")
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    assert ds.SeriesInstanceUID != "1.2.3.2"
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == ds.SeriesInstanceUID
    other = Dataset()
    other.SeriesInstanceUID = "1.2.3.2"
    regenerate_uids(other, {}, "run")
    assert other.SeriesInstanceUID == ds.SeriesInstanceUID  # deterministic per run
