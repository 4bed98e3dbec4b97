"""Keys, keyed UID remapping, date shifting, pseudonyms and the generated table dataset."""

from __future__ import annotations

import io
import itertools
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pydicom
import pytest

from dicomflow_lab.anonymize import profile_rows, table_dataset
from dicomflow_lab.anonymize.dates import patient_offset_days, shift_da, shift_dt
from dicomflow_lab.anonymize.keys import as_key, derive, fingerprint, new_key, value_hash
from dicomflow_lab.anonymize.pseudonyms import Pseudonymizer
from dicomflow_lab.anonymize.uids import UidRemapper, is_well_known_uid
from dicomflow_lab.errors import AnonymizationError

# -- keys -------------------------------------------------------------------------------


def test_new_key_is_random_hex():
    a, b = new_key(), new_key()
    assert len(a) == 64 and int(a, 16) >= 0 and a != b


def test_as_key_and_empty_key():
    assert as_key("abc") == b"abc"
    assert as_key(b"abc") == b"abc"
    with pytest.raises(ValueError, match="key must not be empty"):
        as_key("")
    with pytest.raises(TypeError):
        as_key(12)  # type: ignore[arg-type]


def test_derive_fingerprint_value_hash():
    assert derive("k", "uid") != derive("k", "date")
    assert derive("k", "uid") == derive(b"k", "uid")
    assert len(fingerprint("k")) == 12 and fingerprint("k") != fingerprint("k2")
    assert value_hash("k", b"x") == value_hash("k", b"x") != value_hash("k2", b"x")
    assert len(value_hash("k", b"x")) == 16


# -- UIDs -------------------------------------------------------------------------------


def test_uid_remap_is_keyed_deterministic_and_valid():
    r = UidRemapper("secret")
    new = r("1.2.3.4")
    assert new == UidRemapper("secret")("1.2.3.4") == r("1.2.3.4\x00")
    assert new != UidRemapper("other")("1.2.3.4")
    assert new != r("1.2.3.5")
    assert new.startswith("2.25.") and len(new) <= 64
    assert all(p.isdigit() and (p == "0" or not p.startswith("0")) for p in new.split("."))
    assert r.mapping == {"1.2.3.4": new, "1.2.3.5": r("1.2.3.5")}


def test_uid_remap_same_in_another_process():
    code = (
        "from dicomflow_lab.anonymize.uids import UidRemapper;"
        "print(UidRemapper('secret')('1.2.3.4'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == UidRemapper("secret")("1.2.3.4")


def test_well_known_uids():
    assert is_well_known_uid("1.2.840.10008.5.1.4.1.1.2")  # CT Image Storage
    assert is_well_known_uid("1.2.840.10008.1.2.1")  # Explicit VR Little Endian
    assert not is_well_known_uid("1.2.826.0.1.3680043.9.1")
    r = UidRemapper("k")
    assert r.remap("1.2.840.10008.1.2") == "1.2.840.10008.1.2"
    assert r.remap("1.2.3") != "1.2.3"


# -- dates ------------------------------------------------------------------------------


def test_patient_offset_range_and_determinism():
    offs = [patient_offset_days("k", f"P{i}") for i in range(500)]
    assert all(-3650 <= o <= -1 for o in offs)
    assert len(set(offs)) > 400
    assert patient_offset_days("k", "P1") == patient_offset_days(b"k", "P1")
    assert patient_offset_days("k", "P1") != patient_offset_days("k2", "P1")


@pytest.mark.parametrize(
    ("value", "days", "expected"),
    [
        ("20240301", -1, "20240229"),
        ("20240101\\20240102", -2, "20231230\\20231231"),
        ("", -5, ""),
        (None, -5, ""),
        ("garbage", -5, "19000101"),
        ("20241301", -1, "19000101"),
        ("2024.03.01", -1, "20240229"),
        ("20240101-20240131", -1, "20231231-20240130"),
    ],
)
def test_shift_da(value, days, expected):
    assert shift_da(value, days) == expected


@pytest.mark.parametrize(
    ("value", "days", "expected"),
    [
        ("20240301120000.5+0100", -1, "20240229120000.5+0100"),
        ("20240301", -1, "20240229"),
        ("202403", -1, "202402"),
        ("2024", -1, "2023"),
        ("20240301083015", -366, "20230301083015"),
        ("nonsense", -1, "19000101000000"),
        ("", -1, ""),
    ],
)
def test_shift_dt(value, days, expected):
    assert shift_dt(value, days) == expected


def test_shift_keeps_intervals_and_order():
    import datetime as dt

    days = patient_offset_days("k", "PAT")
    dates = ["20200101", "20200315", "20211231"]
    shifted = [shift_da(d, days) for d in dates]
    parse = [dt.datetime.strptime(d, "%Y%m%d") for d in dates]
    sparse = [dt.datetime.strptime(d, "%Y%m%d") for d in shifted]
    gaps = [b - a for a, b in itertools.pairwise(parse)]
    assert gaps == [b - a for a, b in itertools.pairwise(sparse)]
    assert all(s != d for s, d in zip(shifted, dates, strict=True))


# -- pseudonyms -------------------------------------------------------------------------


def test_pseudonyms_derived_from_key():
    p = Pseudonymizer("k")
    pid = p.patient_id("12345")
    assert (
        pid.startswith("ANON") and len(pid) == 14 and pid == Pseudonymizer("k").patient_id("12345")
    )
    assert pid != Pseudonymizer("k2").patient_id("12345")
    assert p.patient_name("12345") == "ANON^" + pid[4:]


def test_pseudonyms_from_dict_dataframe_and_csv(tmp_path):
    p = Pseudonymizer("k", {"A": "SUBJ-1", "B": ("SUBJ-2", "SUBJ^TWO")})
    assert p.patient_id("A") == "SUBJ-1" and p.patient_name("A").startswith("ANON^")
    assert p.patient_name("B") == "SUBJ^TWO"
    df = pd.DataFrame({"PatientID": ["A"], "new_PatientID": ["S1"], "new_PatientName": ["S^1"]})
    assert Pseudonymizer("k", df).patient_name("A") == "S^1"
    csv = tmp_path / "map.csv"
    csv.write_text("PatientID,new_PatientID\nA,S9\n", encoding="utf-8")
    assert Pseudonymizer("k", csv).patient_id("A") == "S9"
    bad = tmp_path / "bad.csv"
    bad.write_text("id,new\nA,S9\n", encoding="utf-8")
    with pytest.raises(AnonymizationError, match="new_PatientID"):
        Pseudonymizer("k", bad)
    with pytest.raises(AnonymizationError, match="patient_map"):
        Pseudonymizer("k", 42)


# -- the generated table dataset --------------------------------------------------------


def test_table_dataset_holds_every_row():
    ds = table_dataset.build()
    rows = profile_rows()
    assert len(rows) == 656
    for row in rows:
        for tag in table_dataset.row_elements(row):
            where = ds.file_meta if tag >> 16 == 2 else ds
            assert tag in where, row.tag
            elem = where[tag]
            assert elem.VR not in (None, "UN") or row.vr == "UN", row.tag
            assert elem.value not in (None, "", b"") and elem.VM >= 1, row.tag
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert str(ds.PatientName) == table_dataset.PATIENT_NAME


def test_table_dataset_values_distinct_and_deterministic(tmp_path):
    ds = table_dataset.build()
    texts = [str(e.value) for e in ds if e.VR not in ("SQ",) and e.tag >> 16 not in (9,)]
    # the only repeats are the constant attributes we added (none) or SOP Class / special
    assert len(texts) - len(set(texts)) <= 2
    a = table_dataset.write(tmp_path / "a.dcm")
    b = table_dataset.write(tmp_path / "b.dcm")
    first = Path(a).read_bytes()
    assert first == Path(b).read_bytes()
    assert table_dataset.to_bytes(table_dataset.build(seed=1)) != first


def test_table_dataset_reads_back_and_dcmdump_parses(tmp_path):
    path = table_dataset.write(tmp_path / "t.dcm")
    back = pydicom.dcmread(path)
    assert len(back) == len(table_dataset.build())
    assert 0x00081301 in back and back[0x00081301].VR == "SQ"  # a 2026c row, no keyword
    res = subprocess.run(["/usr/bin/dcmdump", "-q", path], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_unchanged_attributes_counts_all_rows_of_an_untouched_copy():
    ds = table_dataset.build()
    copy = pydicom.dcmread(io.BytesIO(table_dataset.to_bytes(ds)))
    assert len(table_dataset.unchanged_attributes(ds, copy)) == 656
    # with every date option kept (K) the date rows are allowed to stay
    kept = table_dataset.unchanged_attributes(ds, copy, template="retain-uids")
    assert "(0020,000D) Study Instance UID" not in kept
    assert len(kept) == 656 - 59
