"""Free text outside Table E.1-1 keeps its bytes except the patient's own words."""

from __future__ import annotations

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dicomflow_lab.anonymize import Anonymizer
from dicomflow_lab.anonymize._identity import mask_bytes, patient_pattern


def _file(tmp_path, **attrs):
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "CT"
    for k, v in attrs.items():
        setattr(ds, k, v)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    path = tmp_path / "in.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def test_patient_words_are_masked_whole_words_only():
    ds = Dataset()
    ds.PatientName = "Ann^Doe"
    ds.PatientID = "MRN12345"
    pattern = patient_pattern(ds)
    assert mask_bytes(b"B30f Doe MRN12345", pattern) == b"B30f *** ********"
    assert mask_bytes(b"SCANNER ANNEX", pattern) is None  # inside other words: kept
    assert mask_bytes(b"doe", pattern) == b"***"  # case-insensitive


def test_text_outside_the_table_is_masked_in_place(tmp_path):
    src = _file(
        tmp_path,
        PatientName="DOE^JOHN",
        PatientID="PID-778899",
        ConvolutionKernel="B30f JOHN",  # SH, not in Table E.1-1
        Manufacturer="ACME SCANNERS",  # no patient word: untouched
    )
    res = Anonymizer("basic", key="k").anonymize_file(src, tmp_path / "out.dcm")
    out = pydicom.dcmread(tmp_path / "out.dcm")
    assert out.ConvolutionKernel == "B30f ****"
    assert out.Manufacturer == "ACME SCANNERS"
    masked = [r for r in res.records if r.keyword == "ConvolutionKernel"]
    assert [(r.action, r.rule) for r in masked] == [("C", "not-in-table:patient-identity-masked")]
    assert b"JOHN" not in (tmp_path / "out.dcm").read_bytes()
