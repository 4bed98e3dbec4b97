"""The engine on hand-made datasets: keys, overrides, private and unknown elements, dates,
character sets, cleaning, errors, preview and writing."""

from __future__ import annotations

import copy
import io

import pandas as pd
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from dicomflow_lab.anonymize import (
    Anonymizer,
    new_key,
    patient_offset_days,
    template_from_dict,
    template_from_options,
)
from dicomflow_lab.anonymize.clean import Cleaner, identifying_tokens
from dicomflow_lab.anonymize.engine import encode, load_safe_private
from dicomflow_lab.errors import AnonymizationError

CT = "1.2.840.10008.5.1.4.1.1.2"


def make(
    patient_id="P1",
    name="DOE^JOHN",
    charset=None,
    ts=ExplicitVRLittleEndian,
    **extra,
) -> Dataset:
    ds = Dataset()
    if charset:
        ds.SpecificCharacterSet = charset
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = generate_uid(entropy_srcs=[patient_id, name, "sop"])
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[patient_id, "study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[patient_id, "series"])
    ds.PatientName = name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700517"
    ds.StudyDate = "20240305"
    ds.SeriesDate = "20240306"
    ds.StudyTime = "083015"
    ds.AcquisitionDateTime = "20240305083512.25+0100"
    ds.Modality = "CT"
    ds.BurnedInAnnotation = "NO"
    ds.StudyDescription = f"CT chest for {name.split('^')[0]} 2024-03-05"
    ds.InstitutionName = "Springfield General"
    ds.Rows = ds.Columns = 2
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = b"\x01\x00\x02\x00\x03\x00\x04\x00"
    for k, v in extra.items():
        setattr(ds, k, v)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CT
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ts
    implicit = ts == ImplicitVRLittleEndian
    ds.set_original_encoding(implicit, True, None)
    return ds


def reread(ds: Dataset) -> Dataset:
    return pydicom.dcmread(io.BytesIO(encode(ds)))


# -- keys and templates -----------------------------------------------------------------


def test_key_is_required():
    with pytest.raises(AnonymizationError, match=r"key=\.\.\."):
        Anonymizer("basic")
    with pytest.raises(AnonymizationError, match="must not be empty"):
        Anonymizer("basic", key="")


def test_template_by_name_path_or_object(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text('{"name": "mine", "options": ["retain_uids"]}', encoding="utf-8")
    assert Anonymizer(path, key="k").template.name == "mine"
    assert Anonymizer("research", key="k").template.name == "research"
    assert Anonymizer(template_from_options(), key="k").template.name == "basic"


# -- basic behaviour --------------------------------------------------------------------


def test_basic_profile_on_a_small_dataset():
    ds = make()
    before = copy.deepcopy(ds)
    res = Anonymizer("basic", key="k").anonymize(ds, source="x.dcm")
    assert ds == before  # never mutates its input
    out = res.dataset
    assert res.source == "x.dcm"
    assert str(out.PatientName).startswith("ANON^") and out.PatientID.startswith("ANON")
    assert res.patient == ("P1", out.PatientID)
    assert out.StudyInstanceUID.startswith("2.25.")
    assert out.SOPClassUID == CT
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    assert out.file_meta.MediaStorageSOPClassUID == CT
    assert out.PatientBirthDate == "" and out.StudyDate == ""  # Z
    assert "InstitutionName" in out and out.InstitutionName == "ANONYMIZED"  # X/Z/D -> D
    assert "StudyDescription" not in out  # X
    assert out.PixelData == ds.PixelData
    assert res.uid_map[ds.StudyInstanceUID] == out.StudyInstanceUID
    counts = res.counts()
    assert counts["X"] >= 1 and counts["U"] >= 3
    assert all(r.before is None and r.after is None for r in res.records)


def test_audit_hashes_are_keyed_and_never_values():
    ds = make()
    res = Anonymizer("basic", key="k").anonymize(ds)
    rec = next(r for r in res.records if r.keyword == "PatientName")
    assert rec.old_hash and len(rec.old_hash) == 16 and "DOE" not in rec.old_hash
    other = Anonymizer("basic", key="k2").anonymize(ds)
    assert next(r for r in other.records if r.keyword == "PatientName").old_hash != rec.old_hash


# -- private and unknown elements --------------------------------------------------------


def with_private(ds: Dataset) -> Dataset:
    block = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    block.add_new(0x0C, "IS", "1000")  # B_value: safe (PS3.15 Table E.3.10-1)
    block.add_new(0x50, "LO", "DOE JOHN")  # not in the safe list
    other = ds.private_block(0x0029, "ACME PRIVATE", create=True)
    other.add_new(0x01, "LO", "DOE JOHN 12345")
    return ds


def test_private_elements_removed_by_default():
    out = Anonymizer("basic", key="k").anonymize(with_private(make())).dataset
    assert not [e for e in out if e.tag.is_private]


def test_retain_safe_private_keeps_listed_elements_and_their_creator():
    assert ("SIEMENS MR HEADER", 0x0019, 0x0C) in load_safe_private()
    tmpl = template_from_options("retain_safe_private")
    out = reread(Anonymizer(tmpl, key="k").anonymize(with_private(make())).dataset)
    assert out[0x00190010].value == "SIEMENS MR HEADER"
    assert out[0x0019100C].value == "1000"
    assert 0x00191050 not in out
    assert 0x00290010 not in out and 0x00291001 not in out  # empty block: creator gone


def test_template_safe_private_list_adds_entries():
    tmpl = template_from_dict(
        {
            "name": "t",
            "options": ["retain_safe_private"],
            "safe_private": [{"creator": "ACME PRIVATE", "tag": "(0029,xx01)"}],
        }
    )
    out = Anonymizer(tmpl, key="k").anonymize(with_private(make())).dataset
    assert out[0x00291001].value == "DOE JOHN 12345"


def test_unknown_and_un_elements_removed_unless_kept():
    ds = make()
    ds.add_new(0x0028FFF0, "LO", "unknown public")  # not in any dictionary
    ds.add_new(0x00431099, "UN", b"raw bytes!")  # private, UN
    out = Anonymizer("basic", key="k").anonymize(ds).dataset
    assert 0x0028FFF0 not in out and 0x00431099 not in out
    tmpl = template_from_dict(
        {
            "name": "keep",
            "options": [],
            "overrides": [
                {"selector": "(0028,FFF0)", "action": "keep"},
                {"selector": "(0043,XXXX)", "action": "keep"},
            ],
        }
    )
    out = Anonymizer(tmpl, key="k").anonymize(ds).dataset
    assert out[0x0028FFF0].value == "unknown public"
    assert out[0x00431099].value == b"raw bytes!"


# -- overrides --------------------------------------------------------------------------


def test_overrides_by_tag_keyword_and_mask_win():
    tmpl = template_from_dict(
        {
            "name": "ov",
            "options": [],
            "overrides": [
                {"selector": "StudyDescription", "action": "keep"},
                {"selector": "(0010,0010)", "action": "replace", "value": "SUBJECT^ONE"},
                {"selector": "SeriesInstanceUID", "action": "remove"},
                {"selector": "PatientID", "action": "hash"},
                {"selector": "(0008,002X)", "action": "replace", "value": "20000101"},
            ],
        }
    )
    ds = make()
    res = Anonymizer(tmpl, key="k").anonymize(ds)
    out = res.dataset
    assert out.StudyDescription == ds.StudyDescription
    assert out.PatientName == "SUBJECT^ONE"
    assert "SeriesInstanceUID" not in out
    assert out.PatientID != "P1" and len(out.PatientID) == 32
    assert out.PatientID == Anonymizer(tmpl, key="k").anonymize(make()).dataset.PatientID
    assert out.StudyDate == out.SeriesDate == "20000101"
    rules = {r.keyword: (r.action, r.rule) for r in res.records}
    assert rules["StudyDescription"] == ("keep", "override:StudyDescription")
    assert rules["SeriesInstanceUID"][0] == "remove"


# -- dates ------------------------------------------------------------------------------


def test_modified_dates_shift_per_patient_keeping_intervals():
    tmpl = template_from_options("retain_long_modified_dates")
    anon = Anonymizer(tmpl, key="k")
    a = anon.anonymize(make("P1")).dataset
    b = anon.anonymize(make("P2")).dataset
    off1 = patient_offset_days("k", "P1")
    off2 = patient_offset_days("k", "P2")
    assert off1 != off2
    import datetime as dt

    def d(s):
        return dt.datetime.strptime(s, "%Y%m%d").date()

    assert d(a.StudyDate) - d("20240305") == dt.timedelta(days=off1)
    assert d(a.SeriesDate) - d(a.StudyDate) == dt.timedelta(days=1)  # interval kept
    assert d(b.StudyDate) - d("20240305") == dt.timedelta(days=off2)
    assert a.StudyTime == "083015"  # whole-day shift keeps the time of day
    assert a.AcquisitionDateTime.endswith("083512.25+0100")
    assert a.AcquisitionDateTime[:8] == a.StudyDate
    assert a.LongitudinalTemporalInformationModified == "MODIFIED"


def test_full_dates_kept_and_basic_dates_removed():
    full = Anonymizer(template_from_options("retain_long_full_dates"), key="k")
    out = full.anonymize(make()).dataset
    assert out.StudyDate == "20240305" and out.AcquisitionDateTime == "20240305083512.25+0100"
    assert out.LongitudinalTemporalInformationModified == "UNMODIFIED"
    basic = Anonymizer("basic", key="k").anonymize(make()).dataset
    assert basic.LongitudinalTemporalInformationModified == "REMOVED"
    assert basic.get("AcquisitionDateTime", "") in ("", "19000101000000")


# -- character sets and cleaning ---------------------------------------------------------


@pytest.mark.parametrize(
    ("charset", "name", "encoding"),
    [("ISO_IR 100", "Müller^Jürgen", "latin-1"), ("ISO_IR 192", "Müller^Jürgen=張^偉", "utf-8")],
)
def test_non_ascii_names(charset, name, encoding):
    ds = make(name=name, charset=charset)
    ds.PatientComments = f"Patient {name.split('^')[0]} called"
    tmpl = template_from_options("clean_descriptors", "retain_patient_characteristics")
    out = Anonymizer(tmpl, key="k").anonymize(ds).dataset
    data = encode(out)
    back = pydicom.dcmread(io.BytesIO(data))
    assert back.SpecificCharacterSet == charset
    assert "Müller" not in str(back.PatientName)
    assert "Müller" not in back.StudyDescription
    assert "Müller".encode(encoding) not in data
    assert back.StudyDescription.startswith("CT chest for ")


def test_cleaner_masks_identifying_tokens_deterministically():
    ds = make(name="DOE^JOHN", PatientAddress="12 Lindenstrasse, Springfield")
    c = Cleaner(ds, offset_days=-10, pseudonym=lambda k, v: "ABCDEF0123")
    tokens = identifying_tokens(ds)
    assert "DOE" in tokens and "JOHN" in tokens and "Lindenstrasse" in tokens
    text = (
        "Seen John Doe on 05.03.2024 and 2024-03-06, MRN 1234567, tel +49 30 5550123, "
        "mail j.doe@example.org, lives in Springfield; lesion 12 mm"
    )
    out = c.text(text, "LT")
    for word in ("John", "Doe", "05.03.2024", "2024-03-06", "1234567", "5550123", "example"):
        assert word not in out
    assert "Springfield" not in out
    assert "lesion 12 mm" in out and len(out) == len(text)
    assert c.text(text, "LT") == out
    assert c.value(0x00080201, "SH", "+0100") == "+0000"
    assert c.value(0x00080020, "DA", "20240305") == "20240224"
    assert c.value(0x00080055, "AE", "CT_SCANNER_01") == "AE_ABCDEF0123"
    assert c.value(0x00340007, "OB", b"\x01\x02") == b"\x00\x00"
    assert c.text("Doe", "CS") == "XXX"


def test_clean_descriptors_keeps_harmless_text():
    ds = make(name="DOE^JOHN")
    ds.StudyDescription = "CT THORAX WITH CONTRAST"
    tmpl = template_from_options("clean_descriptors")
    out = Anonymizer(tmpl, key="k").anonymize(ds).dataset
    assert out.StudyDescription == "CT THORAX WITH CONTRAST"


def test_structured_content_cleaned_recursively():
    ds = make(name="DOE^JOHN")
    item = Dataset()
    item.ValueType = "TEXT"
    item.TextValue = "Findings for John Doe: no change since 2023-01-02."
    item.PersonName = "SMITH^ANNA"
    nested = Dataset()
    nested.ValueType = "TEXT"
    nested.UnformattedTextValue = "Dr Smith, tel 555-1234567"
    nested.UID = "1.2.826.0.1.3680043.9.7433.99.1"
    item.ContentSequence = [nested]
    ds.ContentSequence = [item]
    basic = Anonymizer("basic", key="k").anonymize(ds).dataset
    d_item = basic.ContentSequence[0]  # D: kept as a dummy structure
    assert d_item.TextValue == "ANONYMIZED" and "Doe" not in str(d_item.PersonName)
    tmpl = template_from_options("clean_structured_content")
    res = Anonymizer(tmpl, key="k").anonymize(ds)
    c_item = res.dataset.ContentSequence[0]
    assert c_item.TextValue.startswith("Findings for ") and "Doe" not in c_item.TextValue
    assert "2023-01-02" not in c_item.TextValue
    inner = c_item.ContentSequence[0]
    assert "Smith" not in inner.UnformattedTextValue and "1234567" not in inner.UnformattedTextValue
    assert inner.UID.startswith("2.25.")
    assert any(r.path.startswith("(0040,A730)[0].(0040,A730)[0].") for r in res.records)


# -- writing, reading, errors -------------------------------------------------------------


def test_anonymize_file_writes_atomically_and_refuses_overwrites(tmp_path):
    src = tmp_path / "in.dcm"
    make().save_as(src, enforce_file_format=True)
    original = src.read_bytes()
    anon = Anonymizer("basic", key="k")
    dst = tmp_path / "out.dcm"
    res = anon.anonymize_file(src, dst)
    assert src.read_bytes() == original
    back = pydicom.dcmread(dst)
    assert back.SOPInstanceUID == res.dataset.SOPInstanceUID
    assert back.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    with pytest.raises(AnonymizationError, match="exists"):
        anon.anonymize_file(src, dst)
    anon.anonymize_file(src, dst, overwrite=True)
    with pytest.raises(AnonymizationError, match="over the original"):
        anon.anonymize_file(src, src, overwrite=True)
    assert src.read_bytes() == original
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_anonymize_file_into_a_folder_uses_new_uids(tmp_path):
    src = tmp_path / "in.dcm"
    make(ts=ImplicitVRLittleEndian).save_as(src, enforce_file_format=True)
    out_dir = tmp_path / "anon"
    out_dir.mkdir()
    res = Anonymizer("basic", key="k").anonymize_file(src, out_dir)
    ds = res.dataset
    path = out_dir / ds.StudyInstanceUID / ds.SeriesInstanceUID / f"{ds.SOPInstanceUID}.dcm"
    back = pydicom.dcmread(path)
    assert back.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    assert back.PixelData == make().PixelData


@pytest.mark.parametrize(
    "content",
    [b"", b"not a dicom file at all", b"\x00" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff"],
    ids=["empty", "text", "truncated"],
)
def test_malformed_input_names_the_file(tmp_path, content):
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(content)
    with pytest.raises(AnonymizationError, match=r"bad\.dcm"):
        Anonymizer("basic", key="k").anonymize_file(bad, tmp_path / "out.dcm")
    assert not (tmp_path / "out.dcm").exists()


def test_preview_lists_every_element_and_writes_nothing(tmp_path):
    src = tmp_path / "in.dcm"
    make().save_as(src, enforce_file_format=True)
    df = Anonymizer("basic", key="k").preview(src)
    assert list(df.columns) == ["path", "tag", "keyword", "vr", "action", "rule", "before", "after"]
    row = df[df.keyword == "PatientName"].iloc[0]
    assert row.before == "DOE^JOHN" and row.after.startswith("ANON^") and row.action == "Z"
    assert df[df.keyword == "Rows"].iloc[0].action == "K"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.dcm"]
    assert pd.isna(df[df.keyword == "StudyDescription"].iloc[0].after)  # removed


def test_key_changes_every_derived_value():
    a = Anonymizer("basic", key=new_key()).anonymize(make()).dataset
    b = Anonymizer("basic", key=new_key()).anonymize(make()).dataset
    assert a.StudyInstanceUID != b.StudyInstanceUID and a.PatientID != b.PatientID


def test_group_0000_and_file_meta_in_body_are_handled():
    ds = make()
    ds.add_new(0x00001000, "UI", "1.2.3.4.5")  # Affected SOP Instance UID (table: X)
    out = Anonymizer("basic", key="k").anonymize(ds).dataset
    assert 0x00001000 not in out


def test_preview_and_anonymize_count_the_same_actions(tmp_path):
    """A run's report counts (K included) are what the preview showed for the instance."""
    import pydicom

    from dicomflow_lab.anonymize import Anonymizer
    from dicomflow_lab.core.sample import write_sample_study
    from dicomflow_lab.data import testfile

    study = write_sample_study(tmp_path / "s", ct_slices=2, ct_size=32, mr_slices=1, mr_size=32)
    for path in (study.files[0], testfile("MR_small.dcm"), testfile("rtplan.dcm")):
        for template in ("basic", "research"):
            anon = Anonymizer(template, key="counts")
            shown = anon.preview(path).groupby("action").size().to_dict()
            done = anon.anonymize(pydicom.dcmread(path)).counts()
            assert done == shown, (path, template)
            assert done.get("K", 0) > 0
