"""Burned-in text: which instances are at risk, and which pixel rule fits them."""

from __future__ import annotations

import json
from importlib import resources

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from dicomflow_lab import data
from dicomflow_lab.anonymize import PixelRule, Rectangle, load_template
from dicomflow_lab.anonymize.burned_in import (
    assess,
    describe_rule,
    example_pixel_rules,
    match_rule,
)

RISK = json.loads(
    resources.files("dicomflow_lab.anonymize")
    .joinpath("data", "burned-in-risk.json")
    .read_text(encoding="utf-8")
)
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
SC_IMAGE = "1.2.840.10008.5.1.4.1.1.7"
US_IMAGE = "1.2.840.10008.5.1.4.1.1.6.1"
PDF = "1.2.840.10008.5.1.4.1.1.104.1"
BASIC_SR = "1.2.840.10008.5.1.4.1.1.88.11"


def image(modality: str = "CT", sop: str = CT_IMAGE, **attrs: object) -> Dataset:
    """A small image instance with fake identifying values."""
    ds = Dataset()
    ds.SOPClassUID = sop
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = modality
    ds.PatientName = "DOE^JANE"
    ds.PatientID = "PID-4711"
    ds.Rows, ds.Columns = 4, 4
    ds.SamplesPerPixel, ds.BitsAllocated, ds.BitsStored, ds.HighBit = 1, 8, 8, 7
    ds.PixelRepresentation = 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = bytes(16)
    for key, value in attrs.items():
        setattr(ds, key, value)
    return ds


# -- assess -----------------------------------------------------------------------------


def test_plain_ct_is_not_at_risk():
    assert assess(image()) is None
    assert assess(pydicom.dcmread(data.testfile("CT_small.dcm"))) is None


def test_burned_in_annotation_yes_is_at_risk_whatever_the_modality():
    reason = assess(image("CT", BurnedInAnnotation="YES"))
    assert reason is not None
    assert "Burned In Annotation (0028,0301) is YES" in reason


@pytest.mark.filterwarnings("ignore:Invalid value for VR CS")
@pytest.mark.parametrize("value", ["NO", "no ", " No"])
def test_burned_in_annotation_no_is_trusted(value):
    ds = image("US", US_IMAGE, BurnedInAnnotation="NO")
    ds["BurnedInAnnotation"].value = value
    assert assess(ds) is None


def test_invalid_burned_in_annotation_counts_as_absent():
    reason = assess(image("US", US_IMAGE, BurnedInAnnotation="MAYBE"))
    assert reason is not None and "neither YES nor NO" in reason
    assert assess(image("CT", BurnedInAnnotation="MAYBE")) is None


@pytest.mark.parametrize("entry", RISK["sop_classes"], ids=lambda e: e["uid"])
def test_every_listed_sop_class_is_at_risk(entry):
    reason = assess(image("CT", entry["uid"]))
    assert reason is not None
    assert entry["name"] in reason and entry["why"] in reason


@pytest.mark.parametrize("entry", RISK["sop_classes"] + RISK["documents"], ids=lambda e: e["uid"])
def test_listed_sop_classes_are_named_as_pydicom_names_them(entry):
    assert UID(entry["uid"]).name == entry["name"]


@pytest.mark.parametrize("entry", RISK["modalities"], ids=lambda e: e["value"])
def test_every_listed_modality_is_at_risk(entry):
    reason = assess(image(entry["value"], CT_IMAGE))
    assert reason is not None
    assert f"the modality is {entry['value']}" in reason


def test_secondary_capture_class_is_at_risk_even_with_an_ordinary_modality():
    # deid-data's humans/ctbrain*.dcm: Modality CT, SOP class Secondary Capture.
    reason = assess(image("CT", SC_IMAGE))
    assert reason is not None and "Secondary Capture Image Storage" in reason


@pytest.mark.parametrize(
    ("modality", "image_type", "at_risk"),
    [
        ("CT", ["DERIVED", "SECONDARY", "SCREEN SAVE"], True),
        ("MR", ["ORIGINAL", "PRIMARY", "SCREEN SAVE"], True),
        ("DX", ["DERIVED", "SECONDARY"], True),
        ("CR", ["DERIVED", "SECONDARY", "POST_PROCESSED"], True),
        ("DX", ["ORIGINAL", "PRIMARY"], False),
        ("DX", ["DERIVED", "PRIMARY"], False),
        ("CT", ["DERIVED", "SECONDARY", "REFORMATTED"], False),
        ("SM", ["ORIGINAL", "PRIMARY", "LABEL", "NONE"], True),
        ("SM", ["ORIGINAL", "PRIMARY", "OVERVIEW", "NONE"], True),
        ("SM", ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"], False),
    ],
)
def test_image_type_rules(modality, image_type, at_risk):
    reason = assess(image(modality, CT_IMAGE, ImageType=image_type))
    assert (reason is not None) is at_risk
    if at_risk:
        assert "Image Type (0008,0008)" in reason


def test_documents_are_always_at_risk():
    ds = Dataset()
    ds.SOPClassUID = PDF
    ds.Modality = "DOC"
    ds.BurnedInAnnotation = "NO"
    ds.EncapsulatedDocument = b"%PDF-1.4\n"
    reason = assess(ds)
    assert reason is not None
    assert "Encapsulated PDF Storage" in reason and "always" in reason


def test_the_sop_class_may_come_from_the_file_meta():
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = PDF
    assert assess(ds) is not None


@pytest.mark.parametrize("modality", ["SR", "PR", "KO", "US"])
def test_instances_without_an_image_are_not_at_risk(modality):
    ds = Dataset()
    ds.SOPClassUID = BASIC_SR
    ds.Modality = modality
    ds.ContentSequence = []
    assert assess(ds) is None


def test_a_header_read_without_its_pixels_is_still_assessed(tmp_path):
    path = tmp_path / "us.dcm"
    ds = image("US", US_IMAGE)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = US_IMAGE
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(path, enforce_file_format=True)
    header = pydicom.dcmread(path, stop_before_pixels=True)
    assert "PixelData" not in header
    assert assess(header) is not None


def test_the_reason_never_holds_identifying_values():
    ds = image("US", US_IMAGE, ImageType=["ORIGINAL", "PRIMARY"])
    for reason in (assess(ds), assess(image("CT", BurnedInAnnotation="YES"))):
        assert reason is not None
        assert "DOE" not in reason and "PID-4711" not in reason


def test_the_risk_lists_are_well_formed():
    # The lists are data: every entry carries a reason, no duplicates.
    for key in ("documents", "sop_classes"):
        uids = [e["uid"] for e in RISK[key]]
        assert len(uids) == len(set(uids))
        assert all(e["why"] for e in RISK[key])
    values = [e["value"] for e in RISK["modalities"]]
    assert len(values) == len(set(values))
    assert {"US", "XA", "ES", "XC", "SC", "OT"} <= set(values)
    assert RISK["sources"]


# -- match_rule -------------------------------------------------------------------------


def rule(**fields: object) -> PixelRule:
    return PixelRule((Rectangle(0, 0, 10, 2),), **fields)  # type: ignore[arg-type]


def device(manufacturer: str | None = "ACME Medical", model: str | None = "US-1") -> Dataset:
    ds = image("US", US_IMAGE)
    ds.Rows, ds.Columns = 480, 640
    if manufacturer is not None:
        ds.Manufacturer = manufacturer
    if model is not None:
        ds.ManufacturerModelName = model
    return ds


def test_match_is_case_insensitive_and_ignores_surrounding_spaces():
    r = rule(manufacturer="acme medical", model=" us-1 ", rows=480, columns=640)
    assert match_rule([r], device("  ACME MEDICAL ", "US-1")) is r


def test_none_fields_match_anything():
    r = rule()
    assert match_rule([r], device(None, None)) is r
    assert match_rule([rule(rows=480)], device()) is not None


def test_the_first_matching_rule_wins():
    first, second = rule(manufacturer="ACME Medical"), rule()
    assert match_rule([first, second], device()) is first
    assert match_rule([first, second], device("Other")) is second


@pytest.mark.parametrize(
    "fields",
    [
        {"manufacturer": "ACME"},
        {"model": "US-2"},
        {"rows": 600},
        {"columns": 800},
        {"manufacturer": "ACME Medical", "model": "US-1", "rows": 480, "columns": 800},
    ],
)
def test_any_mismatch_means_no_match(fields):
    assert match_rule([rule(**fields)], device()) is None


def test_a_missing_attribute_matches_only_a_wildcard():
    assert match_rule([rule(manufacturer="ACME Medical")], device(None)) is None
    assert match_rule([rule(model="US-1")], device(model=None)) is None


def test_no_rules_no_match():
    assert match_rule([], device()) is None


def test_describe_rule():
    text = describe_rule(
        PixelRule((Rectangle(0, 0, 640, 40), Rectangle(1, 2, 3, 4)), "ACME", None, 480, None)
    )
    assert text == (
        "manufacturer 'ACME', any model, 480 x any (rows x columns): [0, 0, 640, 40], [1, 2, 3, 4]"
    )


def test_the_example_rules_file_is_a_valid_template():
    path = resources.files("dicomflow_lab.anonymize").joinpath("data", "pixel-rules-example.json")
    template = load_template(str(path))
    assert template.pixel_rules == example_pixel_rules()
    assert len(example_pixel_rules()) == 5
    for r in example_pixel_rules():
        assert None not in (r.manufacturer, r.model, r.rows, r.columns)
