"""verify(): an independent check of de-identified output, tested without the engine.

The "anonymized" copies here are made by a small, careful scrub written with pydicom alone
(every element whose table action is not K removed, every non-well-known UID of a U
element remapped through one dict, private elements removed). verify() must find nothing
in them; then single leaks are planted, one at a time, and each must be found with the
right check, location and kind, and no residual row may show the leaked value.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import shutil
from pathlib import Path

import deid_data
import numpy as np
import pydicom
import pytest
from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.uid import UID_dictionary, generate_uid

import dicomflow_lab as dfl
from dicomflow_lab.anonymize.profile import Action, resolve_action
from dicomflow_lab.anonymize.templates import template_from_dict
from dicomflow_lab.anonymize.verify import COLUMNS, assert_clean, verify
from dicomflow_lab.errors import AnonymizationError

DEID = Path(deid_data.__file__).parent / "data"
META_X = (0x00020016, 0x00020017, 0x00020018, 0x00020026, 0x00020027, 0x00020028, 0x00020102)


# -- a scrub written independently of the engine ----------------------------------------


def _new_uid(uid: str, uid_map: dict[str, str]) -> str:
    if uid.startswith("1.2.840.10008.") or uid in UID_dictionary:
        return uid
    digest = hashlib.sha256(b"test-scrub:" + uid.encode()).digest()[:16]
    return uid_map.setdefault(uid, f"2.25.{int.from_bytes(digest, 'big')}")


def _scrub_level(ds: Dataset, uid_map: dict[str, str], options: tuple[str, ...]) -> None:
    for elem in list(ds):
        tag = int(elem.tag)
        if elem.tag.is_private:
            del ds[tag]
            continue
        action = resolve_action(tag, options)
        if action is None:
            keep = bool(keyword_for_tag(tag)) and elem.VR != "UN"
        else:
            keep = action is Action.K or (elem.VR == "SQ" and action in (Action.U, Action.X_Z_U))
        if elem.VR == "UI" and action not in (None, Action.K):
            values = [str(v) for v in (elem.value if elem.VM > 1 else [elem.value]) if v]
            new = [_new_uid(v, uid_map) for v in values]
            elem.value = new if len(new) > 1 else (new[0] if new else "")
            continue
        if not keep:
            del ds[tag]
        elif elem.VR == "SQ":
            for item in elem.value:
                _scrub_level(item, uid_map, options)


def scrub(ds: Dataset, uid_map: dict[str, str], options: tuple[str, ...] = ()) -> Dataset:
    out = copy.deepcopy(ds)
    _scrub_level(out, uid_map, options)
    for tag in META_X:
        if tag in out.file_meta:
            del out.file_meta[tag]
    out.file_meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
    out.PatientIdentityRemoved = "YES"
    out.DeidentificationMethod = "test scrub"
    return out


def write_outputs(originals, out_dir: Path, *, mutate=None, options=()):
    """Scrub each original into out_dir; ``mutate(i, ds)`` may plant a leak first."""
    out_dir.mkdir(parents=True, exist_ok=True)
    uid_map: dict[str, str] = {}
    paths = []
    for i, src in enumerate(originals):
        ds = scrub(pydicom.dcmread(src), uid_map, options)
        if mutate is not None:
            mutate(i, ds)
        path = out_dir / f"{i:04d}.dcm"
        ds.save_as(path)  # keeps the meta as set (enforce_file_format would fix it)
        paths.append(path)
    return paths, uid_map


def assert_masked(residual, *values: str) -> None:
    text = "\n".join(" ".join(map(str, row)) for row in residual.itertuples(index=False))
    for value in values:
        assert value.lower() not in text.lower(), f"a residual row shows the value {value!r}"


def one(residual, **where):
    rows = residual
    for col, value in where.items():
        rows = rows[rows[col] == value]
    assert len(rows) >= 1, f"no row with {where}:\n{residual.to_string()}"
    return rows.iloc[0]


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    return dfl.data.sample_study(tmp_path_factory.mktemp("study") / "s", seed=0)


@pytest.fixture(scope="module")
def small(study) -> list[Path]:
    """Three sample files (two CT, one MR) and one deid-data CT with private tags."""
    ct = sorted((study / "1_CT").glob("*.dcm"))
    mr = sorted((study / "2_MR").glob("*.dcm"))
    return [ct[0], ct[1], mr[0], DEID / "humans" / "ctbrain1.dcm"]


def deid_files() -> list[Path]:
    return (
        sorted((DEID / "humans").glob("*.dcm"))
        + sorted((DEID / "dicom-cookies").glob("*.dcm"))
        + sorted((DEID / "animals").glob("*.dcm"))
    )


# -- clean copies pass ----------------------------------------------------------------------


def test_scrubbed_sample_study_passes_with_and_without_uid_map(study, tmp_path):
    originals = sorted(study.rglob("*.dcm"))
    assert len(originals) == 124
    _, uid_map = write_outputs(originals, tmp_path / "out")
    residual = verify(study, tmp_path / "out")
    assert list(residual.columns) == list(COLUMNS)
    assert residual.empty, residual.to_string()
    assert verify(study, tmp_path / "out", uid_map=uid_map).empty
    assert_clean(residual)


def test_scrubbed_deid_data_passes(tmp_path):
    files = deid_files()
    assert len(files) == 10
    _, uid_map = write_outputs(files, tmp_path / "out")
    residual = verify(files, tmp_path / "out")
    assert residual.empty, residual.to_string()
    assert verify(files, tmp_path / "out", uid_map=uid_map).empty


@pytest.mark.parametrize(
    "name",
    [
        "CT_small.dcm",
        "MR_small.dcm",
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "rtplan.dcm",
        "rtdose.dcm",
        "test-SR.dcm",
        "reportsi.dcm",
        "waveform_ecg.dcm",
        "JPEG2000.dcm",
        "SC_rgb_rle.dcm",
        "examples_overlay.dcm",
        "liver_1frame.dcm",
    ],
)
def test_scrubbed_pydicom_testfiles_pass(name, tmp_path):
    src = dfl.data.testfile(name)
    write_outputs([src], tmp_path / "out")
    residual = verify(src, tmp_path / "out")
    assert residual.empty, residual.to_string()


def test_identifying_values_are_really_searched(small, tmp_path):
    # The unscrubbed originals compared with themselves: everything leaks.
    residual = verify(small, small)
    kinds = set(residual.kind)
    assert {"name", "id", "date", "uid", "address", "text"} <= kinds
    assert_masked(residual, "Lindqvist", "SIMPSON", "DFL6727996", "00007041776")


# -- planted leaks, one at a time ----------------------------------------------------------


def _leak(small, tmp_path, mutate, **kw):
    write_outputs(small, tmp_path / "out", mutate=mutate)
    return verify(small, tmp_path / "out", **kw)


def test_patient_name_in_a_nested_sequence_item(small, tmp_path):
    def mutate(i, ds):
        if i == 0:
            inner = Dataset()
            inner.CodeMeaning = "Lindqvist"
            outer = Dataset()
            outer.AnatomicRegionSequence = [inner]
            ds.ReferencedImageSequence = [outer]

    residual = _leak(small, tmp_path, mutate)
    row = one(residual, check="phi", location="(0008,1140)[0].(0008,2218)[0].(0008,0104)")
    assert row.kind == "name" and row.attribute == "PatientName"
    assert row.file.endswith("0000.dcm")
    assert len(residual) == 1
    assert_masked(residual, "Lindqvist")


def test_patient_name_in_a_private_element(small, tmp_path):
    def mutate(i, ds):
        if i == 1:
            block = ds.private_block(0x0011, "LEAKY VENDOR", create=True)
            block.add_new(0x01, "LO", "Lindqvist^Åsa")
            block.add_new(0x02, "LO", "DFL6727996")

    residual = _leak(small, tmp_path, mutate)
    row = one(residual, check="phi", location="(0011,1001)")
    assert (row.kind, row.attribute) == ("name", "PatientName")
    row = one(residual, check="phi", location="(0011,1002)")
    assert (row.kind, row.attribute) == ("id", "PatientID")
    assert set(residual.file) == {str(tmp_path / "out" / "0001.dcm")}
    assert_masked(residual, "Lindqvist", "DFL6727996")


def test_name_in_image_comments_free_text(small, tmp_path):
    def mutate(i, ds):
        if i == 3:
            ds.ImageComments = "Follow-up for Mr homer simpson, see prior"

    residual = _leak(small, tmp_path, mutate)
    rows = residual[residual.location == "(0020,4000)"]
    assert set(rows.kind) == {"name"} and set(rows.check) == {"phi"}
    assert "PatientName" in set(rows.attribute)
    assert_masked(residual, "simpson", "homer")


def test_patient_name_in_file_meta(small, tmp_path):
    def mutate(i, ds):
        if i == 0:
            ds.file_meta.SourceApplicationEntityTitle = "LINDQVIST"

    residual = _leak(small, tmp_path, mutate)
    row = one(residual, check="phi", location="file meta (0002,0016)")
    assert (row.kind, row.attribute) == ("name", "PatientName")
    assert len(residual) == 1
    assert_masked(residual, "Lindqvist")


def test_value_only_in_raw_bytes_preamble_and_after_the_dataset(small, tmp_path):
    paths, _ = write_outputs(small, tmp_path / "out")
    data = bytearray(paths[0].read_bytes())
    data[10:19] = b"Lindqvist"  # inside the 128-byte preamble: no element holds it
    paths[0].write_bytes(bytes(data))
    paths[2].write_bytes(paths[2].read_bytes() + b"\x00\x00\x00\x00ACC80744481")
    residual = verify(small, tmp_path / "out")
    row = one(residual, file=str(paths[0]), location="raw bytes @10")
    assert (row.check, row.kind, row.attribute) == ("phi", "name", "PatientName")
    row = one(residual, file=str(paths[2]), kind="id")
    assert row.attribute == "AccessionNumber"
    assert_masked(residual, "Lindqvist", "ACC80744481")


def test_value_inside_an_ob_element(small, tmp_path):
    def mutate(i, ds):
        if i == 2:
            blob = b"\x01\x02binary\x00Weber^Anna\x00\xff"
            ds.private_block(0x0013, "BLOB", create=True).add_new(0x10, "OB", blob)

    residual = _leak(small, tmp_path, mutate)
    row = one(residual, location="(0013,1010)", kind="name")
    assert row.attribute == "ReferringPhysicianName"
    assert_masked(residual, "Weber")


def test_original_date_left_in_an_output_date(small, tmp_path):
    def mutate(i, ds):
        if i == 0:
            ds.InstanceCreationDate = "20190803"  # the original StudyDate

    residual = _leak(small, tmp_path, mutate)
    row = one(residual, check="phi", location="(0008,0012)")
    assert row.kind == "date"
    assert_masked(residual, "20190803")


def test_birth_date_inside_free_text(small, tmp_path):
    def mutate(i, ds):
        if i == 1:
            ds.ImageComments = "born 19500426."

    residual = _leak(small, tmp_path, mutate)
    row = one(residual, location="(0020,4000)")
    assert (row.kind, row.attribute) == ("date", "PatientBirthDate")


def test_original_uid_left_in_a_referenced_sop_instance_uid(small, tmp_path):
    original_uid = pydicom.dcmread(small[1]).SOPInstanceUID

    def mutate(i, ds):
        if i == 0:
            ref = Dataset()
            ref.ReferencedSOPClassUID = ds.SOPClassUID
            ref.ReferencedSOPInstanceUID = original_uid
            ds.ReferencedImageSequence = [ref]

    residual = _leak(small, tmp_path, mutate)
    row = one(residual, check="uid", location="(0008,1140)[0].(0008,1155)")
    assert (row.kind, row.attribute) == ("uid", "SOPInstanceUID")
    assert_masked(residual, original_uid)


def test_original_uid_in_text_and_as_root_of_a_new_uid(small, tmp_path):
    study_uid = pydicom.dcmread(small[0]).StudyInstanceUID

    def mutate(i, ds):
        if i == 0:
            ds.ImageComments = f"from {study_uid}"
        if i == 1:
            ds.IrradiationEventUID = study_uid + ".7"

    residual = _leak(small, tmp_path, mutate)
    one(residual, check="uid", location="(0020,4000)", attribute="StudyInstanceUID")
    one(residual, check="uid", location="(0008,3010)", attribute="StudyInstanceUID")
    assert_masked(residual, study_uid)


@pytest.fixture
def referencing(small, tmp_path) -> list[Path]:
    """Originals where the second CT refers to the first (and to an outside instance)."""
    folder = tmp_path / "orig"
    folder.mkdir()
    first = pydicom.dcmread(small[0])
    second = pydicom.dcmread(small[1])
    refs = []
    for uid in (first.SOPInstanceUID, "1.2.826.0.1.3680043.9.999.1.2.3"):
        ref = Dataset()
        ref.ReferencedSOPClassUID = first.SOPClassUID
        ref.ReferencedSOPInstanceUID = uid
        refs.append(ref)
    second.ReferencedImageSequence = refs
    first.save_as(folder / "a.dcm")
    second.save_as(folder / "b.dcm")
    return [folder / "a.dcm", folder / "b.dcm"]


def test_references_resolve_to_the_referenced_instance_output(referencing, tmp_path):
    _, uid_map = write_outputs(referencing, tmp_path / "ok")
    assert verify(referencing, tmp_path / "ok").empty
    assert verify(referencing, tmp_path / "ok", uid_map=uid_map).empty

    def mutate(i, ds):
        if i == 1:
            ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID = generate_uid(prefix=None)

    write_outputs(referencing, tmp_path / "bad", mutate=mutate)
    for kw in ({}, {"uid_map": uid_map}):
        residual = verify(referencing, tmp_path / "bad", **kw)
        row = one(residual, check="uid", location="(0008,1140)[0].(0008,1155)")
        assert "inconsistent" in row.detail and row.file.endswith("0001.dcm")
        assert len(residual) == 1, residual.to_string()


def test_outside_reference_checked_against_the_uid_map(referencing, tmp_path):
    def mutate(i, ds):
        if i == 1:
            ds.ReferencedImageSequence[1].ReferencedSOPInstanceUID = generate_uid(prefix=None)

    _, uid_map = write_outputs(referencing, tmp_path / "bad", mutate=mutate)
    # Without the map nothing tells what the outside instance became...
    assert verify(referencing, tmp_path / "bad").empty
    # ...with it, the reference must hold the mapped UID.
    residual = verify(referencing, tmp_path / "bad", uid_map=uid_map)
    one(residual, check="uid", location="(0008,1140)[1].(0008,1155)")


def test_study_uid_mapped_two_ways(small, tmp_path):
    def mutate(i, ds):
        if i == 1:
            ds.StudyInstanceUID = generate_uid(prefix=None)

    residual = _leak(small, tmp_path, mutate)
    row = one(residual, check="uid", location="(0020,000D)")
    assert "more than one" in row.detail


def test_media_storage_sop_instance_uid_mismatch(small, tmp_path):
    def mutate(i, ds):
        if i == 2:
            ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(prefix=None)

    residual = _leak(small, tmp_path, mutate)
    row = one(residual, check="uid", location="file meta (0002,0003)")
    assert row.attribute == "MediaStorageSOPInstanceUID" and row.file.endswith("0002.dcm")
    assert len(residual) == 1, residual.to_string()


def test_changed_pixels(small, tmp_path):
    def mutate(i, ds):
        if i == 1:
            data = bytearray(ds.PixelData)
            data[1000] ^= 0x01
            ds.PixelData = bytes(data)

    residual = _leak(small, tmp_path, mutate)
    row = one(residual, check="pixels")
    assert row.file.endswith("0001.dcm") and row.location == "(7FE0,0010)"
    assert len(residual) == 1, residual.to_string()


def test_missing_counterpart_and_quarantine(small, tmp_path):
    paths, _ = write_outputs(small, tmp_path / "out")
    paths[3].unlink()
    residual = verify(small, tmp_path / "out")
    row = one(residual, check="uid", file=str(small[3]))
    assert "no anonymized counterpart" in row.detail
    assert len(residual) == 1
    assert verify(small, tmp_path / "out", quarantined=[str(small[3])]).empty


def test_non_dicom_file_in_the_output_is_searched(small, tmp_path):
    write_outputs(small, tmp_path / "out")
    (tmp_path / "out" / "notes.txt").write_text("patient: Lindqvist\n", encoding="utf-8")
    residual = verify(small, tmp_path / "out")
    row = one(residual, file=str(tmp_path / "out" / "notes.txt"))
    assert (row.kind, row.location) == ("name", "raw bytes @9")


# -- character sets ---------------------------------------------------------------------------


def test_non_ascii_name_in_raw_bytes_iso_ir_100(small, tmp_path):
    # Sample study: SpecificCharacterSet ISO_IR 100, OperatorsName 'Tech^Chloé'.
    paths, _ = write_outputs(small, tmp_path / "out")
    for path, text in ((paths[0], "Chloé"), (paths[1], "CHLOÉ")):
        data = bytearray(path.read_bytes())
        enc = text.encode("latin-1")
        data[20 : 20 + len(enc)] = enc
        path.write_bytes(bytes(data))
    residual = verify(small, tmp_path / "out")
    for path in paths[:2]:
        row = one(residual, file=str(path), location="raw bytes @20")
        assert (row.kind, row.attribute) == ("name", "OperatorsName")
    assert_masked(residual, "Chloé", "hloé")


def test_non_ascii_name_iso_ir_192(small, tmp_path):
    folder = tmp_path / "orig"
    folder.mkdir()
    ds = pydicom.dcmread(small[0])
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "Ødegård^Bjørn"
    ds.save_as(folder / "utf8.dcm")
    originals = [folder / "utf8.dcm"]

    def mutate(i, out):
        out.SpecificCharacterSet = "ISO_IR 192"
        out.ImageComments = "seen by bjørn"  # element search, case folded

    paths, _ = write_outputs(originals, tmp_path / "out", mutate=mutate)
    data = bytearray(paths[0].read_bytes())
    enc = "Ødegård".encode()
    data[30 : 30 + len(enc)] = enc
    paths[0].write_bytes(bytes(data))
    residual = verify(originals, tmp_path / "out")
    one(residual, location="(0020,4000)", kind="name")
    one(residual, location="raw bytes @30", kind="name")
    assert_masked(residual, "Bjørn", "Ødegård", "degård")


# -- Retain UIDs, pixel rules, assert_clean --------------------------------------------------


def test_retain_uids_requires_unchanged_uids(small, tmp_path):
    _, uid_map = write_outputs(small, tmp_path / "ok", options=("retain_uids",))
    assert uid_map == {}
    assert verify(small, tmp_path / "ok", template="retain-uids").empty
    # The same output under the Basic Profile: original UIDs survive.
    basic = verify(small, tmp_path / "ok")
    assert set(basic.check) == {"uid"} and set(basic.kind) == {"uid"}

    def mutate(i, ds):
        if i == 0:
            ds.SeriesInstanceUID = generate_uid(prefix=None)

    write_outputs(small, tmp_path / "bad", mutate=mutate, options=("retain_uids",))
    residual = verify(small, tmp_path / "bad", template="retain-uids")
    row = one(residual, check="uid", location="(0020,000E)")
    assert "retains UIDs" in row.detail and len(residual) == 1


def _rule_template(rows=512, columns=512):
    return template_from_dict(
        {
            "name": "with-rule",
            "options": [],
            "pixel_rules": [
                {
                    "manufacturer": "dicomflow_lab",
                    "model": None,
                    "rows": rows,
                    "columns": columns,
                    "rectangles": [[10, 20, 30, 5]],
                }
            ],
        }
    )


def _blackout(ds, value=0):
    arr = ds.pixel_array.copy()
    arr[20:25, 10:40] = value
    ds.PixelData = arr.tobytes()


def test_pixel_rule_rectangles_must_be_zero_and_the_rest_unchanged(small, tmp_path):
    tpl = _rule_template()
    write_outputs(small, tmp_path / "ok", mutate=lambda i, ds: i < 2 and _blackout(ds))
    assert verify(small, tmp_path / "ok", template=tpl).empty
    # Without the rule, the blacked-out CT pixels are a change.
    plain = verify(small, tmp_path / "ok")
    assert list(plain.check) == ["pixels", "pixels"]

    def not_zero(i, ds):
        if i == 0:
            _blackout(ds, value=7)
        if i == 1:
            _blackout(ds)
            arr = ds.pixel_array.copy()
            arr[100, 100] += 1
            ds.PixelData = arr.tobytes()

    write_outputs(small, tmp_path / "bad", mutate=not_zero)
    residual = verify(small, tmp_path / "bad", template=tpl)
    inside = one(residual, check="pixels", file=str(tmp_path / "bad" / "0000.dcm"))
    assert "inside" in inside.detail and inside.detail.startswith("150 ")
    outside = one(residual, check="pixels", file=str(tmp_path / "bad" / "0001.dcm"))
    assert "outside" in outside.detail and outside.detail.startswith("1 ")
    # The MR (256×256) does not match the rule: untouched, no row.
    assert not residual.file.str.endswith("0002.dcm").any()


def test_pixels_compared_decoded_when_the_transfer_syntax_changes(tmp_path):
    src = dfl.data.testfile("MR_small_RLE.dcm")

    def decompress(i, ds):
        ds.decompress()

    write_outputs([src], tmp_path / "ok", mutate=decompress)
    assert verify(src, tmp_path / "ok").empty

    def decompress_and_change(i, ds):
        ds.decompress()
        arr = ds.pixel_array.copy()
        arr[0, 0] += 1
        ds.PixelData = arr.tobytes()

    write_outputs([src], tmp_path / "bad", mutate=decompress_and_change)
    residual = verify(src, tmp_path / "bad")
    assert one(residual, check="pixels").detail.startswith("1 decoded pixel")


def test_datasets_accepted(small):
    originals = [pydicom.dcmread(p) for p in small[:2]]
    uid_map: dict[str, str] = {}
    outputs = [scrub(ds, uid_map) for ds in originals]
    assert verify(originals, outputs, uid_map=uid_map).empty
    outputs[1].PatientComments = "Lindqvist"
    residual = verify(originals, outputs)
    assert one(residual, location="(0010,4000)").file == "<dataset 1>"


def test_retained_values_are_not_identifying(tmp_path, small):
    # A value in an identifying element that also sits in a kept one of the same
    # original (here the Manufacturer) is not reported when it survives there.
    folder = tmp_path / "orig"
    folder.mkdir()
    ds = pydicom.dcmread(small[0])
    ds.StationName = ds.Manufacturer
    ds.save_as(folder / "a.dcm")
    write_outputs([folder / "a.dcm"], tmp_path / "out")
    assert verify(folder / "a.dcm", tmp_path / "out").empty


def test_assert_clean_raises_without_values(small, tmp_path):
    def mutate(i, ds):
        if i == 0:
            ds.PatientComments = "Lindqvist DFL6727996"

    residual = _leak(small, tmp_path, mutate)
    assert len(residual) == 2
    with pytest.raises(AnonymizationError, match="2 residual") as info:
        assert_clean(residual, what="test output")
    assert "Lindqvist" not in str(info.value) and "DFL6727996" not in str(info.value)
    assert "phi/name" in str(info.value) and "phi/id" in str(info.value)


def test_missing_input_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        verify(tmp_path / "nope", tmp_path)


def test_folder_inputs_skip_dot_files(study, tmp_path):
    out = tmp_path / "out"
    originals = sorted((study / "2_MR").glob("*.dcm"))[:2]
    write_outputs(originals, out)
    shutil.copy(study / ".dicomflow_sample.json", out / ".hidden.json")
    assert verify(originals, out).empty


def test_pixel_arrays_untouched_by_scrub(small):
    # Guard for the helpers above: the scrub keeps Pixel Data byte for byte.
    ds = pydicom.dcmread(small[0])
    out = scrub(ds, {})
    assert np.array_equal(out.pixel_array, ds.pixel_array)


# -- template semantics: strict, safe private, overrides --------------------------------------


def test_strict_reports_whole_values_quoted_in_kept_text(small, tmp_path):
    folder = tmp_path / "orig"
    folder.mkdir()
    ds = pydicom.dcmread(small[0])
    code = Dataset()
    code.CodeValue = "P1"
    code.CodingSchemeDesignator = "99TEST"
    code.CodeMeaning = "Scan for DFL6727996"  # Procedure Code Sequence is kept (K)
    ds.ProcedureCodeSequence = [code]
    ds.save_as(folder / "a.dcm")
    write_outputs([folder / "a.dcm"], tmp_path / "out")
    # Default: a value found in a kept attribute of its own original is not identifying.
    assert verify(folder, tmp_path / "out").empty
    residual = verify(folder, tmp_path / "out", strict=True)
    row = one(residual, location="(0008,1032)[0].(0008,0104)")
    assert (row.check, row.kind, row.attribute) == ("phi", "id", "PatientID")
    assert_masked(residual, "DFL6727996")


def test_retain_safe_private_keeps_only_listed_elements(small, tmp_path):
    tpl = template_from_dict(
        {
            "name": "safe",
            "options": ["retain_safe_private"],
            "safe_private": [{"creator": "ACME TEST 1.0", "tag": "(0019,xx10)"}],
        }
    )
    folder = tmp_path / "orig"
    folder.mkdir()
    ds = pydicom.dcmread(small[0])
    block = ds.private_block(0x0019, "ACME TEST 1.0", create=True)
    block.add_new(0x10, "LO", "FAST HELICAL 64")
    block.add_new(0x11, "LO", "operator lindqvist")
    ds.save_as(folder / "a.dcm")

    def keep(extra):
        def mutate(i, out):
            b = out.private_block(0x0019, "ACME TEST 1.0", create=True)
            b.add_new(0x10, "LO", "FAST HELICAL 64")
            if extra:
                b.add_new(0x11, "LO", "operator lindqvist")

        return mutate

    write_outputs([folder / "a.dcm"], tmp_path / "ok", mutate=keep(False))
    assert verify(folder, tmp_path / "ok", template=tpl).empty
    basic = verify(folder, tmp_path / "ok")  # without the option every private value leaks
    assert {"(0019,0010)", "(0019,1010)"} <= set(basic.location)
    write_outputs([folder / "a.dcm"], tmp_path / "bad", mutate=keep(True))
    residual = verify(folder, tmp_path / "bad", template=tpl)
    assert set(residual.location) == {"(0019,1011)"}
    assert_masked(residual, "lindqvist", "operator")


def test_override_keep_makes_an_attribute_retained(small, tmp_path):
    tpl = template_from_dict(
        {"name": "keep-station", "overrides": [{"selector": "StationName", "action": "keep"}]}
    )

    def mutate(i, ds):
        if i == 0:
            ds.StationName = "DFL-CT01"

    write_outputs(small, tmp_path / "out", mutate=mutate)
    assert verify(small, tmp_path / "out", template=tpl).empty
    row = one(verify(small, tmp_path / "out"), location="(0008,1010)")
    assert row.attribute == "StationName"


def test_shifted_dates_equal_to_another_original_date_are_not_leaks(small, tmp_path):
    # Modified dates: every date moves by the same offset, so a shifted date may equal
    # another original date (here: Study Date - 7 days == Patient's Birth Date).
    folder = tmp_path / "orig"
    folder.mkdir()
    ds = pydicom.dcmread(small[0])
    ds.PatientBirthDate = "20190727"
    ds.save_as(folder / "a.dcm")
    research = ("retain_device_identity", "retain_patient_characteristics")
    research += ("retain_long_modified_dates", "clean_descriptors")
    dates = ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate", "InstanceCreationDate")

    def shift(value: str) -> str:
        day = datetime.date(int(value[:4]), int(value[4:6]), int(value[6:8]))
        return (day - datetime.timedelta(days=7)).strftime("%Y%m%d")

    def shifted(i, out):
        for kw in dates:
            setattr(out, kw, shift(ds[kw].value))

    write_outputs([folder / "a.dcm"], tmp_path / "ok", mutate=shifted, options=research)
    assert verify(folder, tmp_path / "ok", template="research").empty

    def one_left(i, out):
        shifted(i, out)
        out.ContentDate = ds.ContentDate

    write_outputs([folder / "a.dcm"], tmp_path / "bad", mutate=one_left, options=research)
    residual = verify(folder, tmp_path / "bad", template="research")
    row = one(residual, location="(0008,0023)")
    assert row.kind == "date" and len(residual) == 1


def test_standard_words_of_the_deid_method_are_not_leaks_but_elsewhere_they_are():
    """An ROI named "Patient" vs "Retain Patient Characteristics Option" in the method."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    from dicomflow_lab.anonymize import template_from_options, verify

    def instance(uid: str) -> Dataset:
        ds = Dataset()
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.481.3"
        ds.SOPInstanceUID = uid
        ds.Modality = "RTSTRUCT"
        return ds

    original = instance("1.2.826.0.1.3680043.99.1")
    roi = Dataset()
    roi.ROIName = "Patient"
    roi.ROINumber = 1
    original.StructureSetROISequence = Sequence([roi])
    template = template_from_options("retain_patient_characteristics")
    out = instance("2.25.12345")
    out.DeidentificationMethod = ["PS3.15 Basic Profile", template.name]
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator = "113108", "DCM"
    code.CodeMeaning = "Retain Patient Characteristics Option"
    out.DeidentificationMethodCodeSequence = Sequence([code])
    uid_map = {original.SOPInstanceUID: out.SOPInstanceUID}
    assert verify([original], [out], template=template, uid_map=uid_map).empty
    out.ImageComments = "whole body: Patient"
    residual = verify([original], [out], template=template, uid_map=uid_map)
    assert residual["location"].tolist() == ["(0020,4000)"]
