"""The seeded synthetic sample study: determinism, idempotence, content, validity."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian, MRImageStorage

from dicomflow_lab.core import sample
from dicomflow_lab.core.sample import (
    GENERATOR_VERSION,
    IMPLEMENTATION_CLASS_UID,
    MANIFEST_NAME,
    SampleStudy,
    write_sample_study,
)
from tests._peers import INSTALL_HINT, missing_peer

SMALL = {"ct_slices": 6, "ct_size": 48, "mr_slices": 3, "mr_size": 32}
TINY = {"ct_slices": 2, "ct_size": 16, "mr_slices": 1, "mr_size": 16}

# SHA-256 of the manifest of write_sample_study(seed=0, **TINY). The manifest holds the
# SHA-256 of every file, so this pins every byte of the output. If a deliberate change
# alters it, bump GENERATOR_VERSION and update the value; if it changes on its own (a
# new numpy or pydicom, another platform) the "byte-identical everywhere" promise broke.
GOLDEN_TINY_MANIFEST = "2fdeab9596a66a576f739fc66c4da2233cd29caa4ad8f59f57058a955cc7b8c8"


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _hu(ds: pydicom.Dataset) -> np.ndarray:
    return ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def _box(ds: pydicom.Dataset, image: np.ndarray, x: float, y: float, half: float) -> np.ndarray:
    """Pixels within `half` mm of patient point (x, y) on an axial slice."""
    x0, y0 = float(ds.ImagePositionPatient[0]), float(ds.ImagePositionPatient[1])
    row_mm, col_mm = (float(v) for v in ds.PixelSpacing)
    c0, c1 = round((x - half - x0) / col_mm), round((x + half - x0) / col_mm) + 1
    r0, r1 = round((y - half - y0) / row_mm), round((y + half - y0) / row_mm) + 1
    return image[r0:r1, c0:c1]


@pytest.fixture(scope="module")
def default_study(tmp_path_factory) -> SampleStudy:
    """The default-size study (100 × 512² CT, 24 × 256² MR), written once."""
    return write_sample_study(tmp_path_factory.mktemp("sample") / "default")


@pytest.fixture(scope="module")
def small_study(tmp_path_factory) -> SampleStudy:
    return write_sample_study(tmp_path_factory.mktemp("sample") / "small", 0, **SMALL)


# --- determinism -------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_files(tmp_path, small_study):
    again = write_sample_study(tmp_path / "again", 0, **SMALL)
    assert not again.reused
    first, second = _digests(small_study.path), _digests(again.path)
    assert len(first) == 6 + 3 + 1
    assert first == second


def test_other_seed_changes_uids_names_and_noise_not_anatomy(tmp_path, small_study):
    other = write_sample_study(tmp_path / "seed1", 1, **SMALL)
    assert other.StudyInstanceUID != small_study.StudyInstanceUID
    for a, b in zip(small_study.series, other.series, strict=True):
        assert a.SeriesInstanceUID != b.SeriesInstanceUID
        assert a.FrameOfReferenceUID != b.FrameOfReferenceUID
    digests0, digests1 = _digests(small_study.path), _digests(other.path)
    assert digests0.keys() == digests1.keys()
    assert not set(digests0.values()) & set(digests1.values())
    ds0 = pydicom.dcmread(small_study.series[0].files[2])
    ds1 = pydicom.dcmread(other.series[0].files[2])
    assert ds0.SOPInstanceUID != ds1.SOPInstanceUID
    diff = np.abs(_hu(ds0) - _hu(ds1))
    assert diff.max() > 0, "noise must depend on the seed"
    assert np.median(diff) < 40, "the anatomy must not depend on the seed"


def test_seed_chooses_fake_identities(tmp_path):
    names = {
        write_sample_study(tmp_path / str(seed), seed, **TINY).PatientName for seed in range(6)
    }
    assert len(names) >= 2


def test_sizes_are_part_of_the_uids(tmp_path, small_study):
    other = write_sample_study(tmp_path / "bigger", 0, **{**SMALL, "ct_slices": 7})
    assert other.StudyInstanceUID != small_study.StudyInstanceUID
    assert other.PatientName == small_study.PatientName  # same seed, same patient


def test_output_matches_golden_hash(tmp_path):
    study = write_sample_study(tmp_path / "tiny", 0, **TINY)
    digest = hashlib.sha256(study.manifest.read_bytes()).hexdigest()
    assert digest == GOLDEN_TINY_MANIFEST, (
        f"sample output changed (generator version {GENERATOR_VERSION}); see the comment "
        "on GOLDEN_TINY_MANIFEST"
    )


# --- idempotence and the manifest ---------------------------------------------------------


def _age_files(root: Path) -> dict[Path, int]:
    """Set every file's mtime to a fixed past instant so that rewrites show (no sleeps)."""
    past = 1_000_000_000_000_000_000
    for p in root.rglob("*"):
        if p.is_file():
            os.utime(p, ns=(past, past))
    return {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_second_call_reuses_and_overwrite_rewrites(tmp_path):
    first = write_sample_study(tmp_path / "s", 0, **TINY)
    before = _age_files(first.path)
    again = write_sample_study(tmp_path / "s", 0, **TINY)
    assert again.reused
    assert again == SampleStudy(**{**first.__dict__, "reused": True})
    assert {p: p.stat().st_mtime_ns for p in before} == before
    forced = write_sample_study(tmp_path / "s", 0, **TINY, overwrite=True)
    assert not forced.reused
    assert all(p.stat().st_mtime_ns != t for p, t in before.items())


def test_manifest_lists_every_file_with_its_hash(small_study):
    manifest = json.loads(small_study.manifest.read_text(encoding="utf-8"))
    assert manifest["seed"] == 0
    assert manifest["version"] == GENERATOR_VERSION
    assert manifest["parameters"] == SMALL
    listed = {e["path"]: (e["size"], e["sha256"]) for e in manifest["files"]}
    on_disk = {
        f.relative_to(small_study.path).as_posix(): (
            f.stat().st_size,
            hashlib.sha256(f.read_bytes()).hexdigest(),
        )
        for f in small_study.files
    }
    assert listed == on_disk
    assert list(listed)[:2] == ["1_CT/IM0001.dcm", "1_CT/IM0002.dcm"]
    assert "2_MR/IM0003.dcm" in listed
    assert small_study.PatientName not in small_study.manifest.read_text(encoding="utf-8")


@pytest.mark.parametrize("damage", ["delete", "truncate", "manifest"])
def test_damaged_study_is_written_again(tmp_path, damage):
    study = write_sample_study(tmp_path / "s", 0, **TINY)
    victim = study.series[0].files[1]
    if damage == "delete":
        victim.unlink()
    elif damage == "truncate":
        victim.write_bytes(victim.read_bytes()[:-1])
    else:
        study.manifest.write_text("{not json", encoding="utf-8")
    again = write_sample_study(tmp_path / "s", 0, **TINY)
    assert not again.reused
    assert _digests(again.path) == _digests(write_sample_study(tmp_path / "ref", 0, **TINY).path)


def test_other_parameters_replace_own_files_and_keep_foreign_ones(tmp_path):
    root = tmp_path / "s"
    write_sample_study(root, 0, **{**TINY, "ct_slices": 4})
    (root / "notes.txt").write_text("mine", encoding="utf-8")
    (root / "1_CT" / "extra.dcm").write_bytes(b"mine too")
    study = write_sample_study(root, 0, **TINY)
    assert not study.reused
    assert sorted(p.name for p in (root / "1_CT").iterdir()) == [
        "IM0001.dcm",
        "IM0002.dcm",
        "extra.dcm",
    ]
    assert (root / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_interrupted_run_leaves_no_manifest(tmp_path, monkeypatch):
    root = tmp_path / "s"
    write_sample_study(root, 0, **TINY)
    calls = []
    real_encode = sample._encode

    def failing_encode(header, pixels):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full (simulated)")
        return real_encode(header, pixels)

    monkeypatch.setattr(sample, "_encode", failing_encode)
    with pytest.raises(OSError, match="simulated"):
        write_sample_study(root, 1, **TINY)
    assert not (root / MANIFEST_NAME).exists()
    assert not list(root.rglob(".*.tmp")), "atomic_writer must not leave temporary files"
    monkeypatch.undo()
    assert not write_sample_study(root, 0, **TINY).reused


# --- parameter checks ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"ct_size": 15}, ValueError, r"ct_size must be between 16 and 4096, got 15"),
        ({"mr_size": 8}, ValueError, r"mr_size must be between 16 and 4096, got 8"),
        ({"ct_slices": 0}, ValueError, r"ct_slices must be between 1 and 9999, got 0"),
        ({"mr_slices": -1}, ValueError, r"mr_slices must be between 1 and 9999, got -1"),
        ({"ct_slices": 10_000}, ValueError, r"ct_slices must be between 1 and 9999"),
        ({"seed": -1}, ValueError, r"seed must be between 0 and"),
        ({"seed": 1.5}, TypeError, r"seed must be an int, not float"),
        ({"ct_size": True}, TypeError, r"ct_size must be an int, not bool"),
    ],
)
def test_bad_parameters_raise_precisely(tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        write_sample_study(tmp_path / "s", **{**TINY, **kwargs})
    assert not (tmp_path / "s").exists(), "nothing is written before the checks pass"


def test_numpy_integers_are_accepted(tmp_path):
    study = write_sample_study(tmp_path / "s", np.int64(2), **{**TINY, "ct_size": np.int32(16)})
    assert study.seed == 2
    assert type(study.seed) is int


# --- content ------------------------------------------------------------------------------


def test_files_are_valid_part10_with_fixed_meta(small_study):
    assert [s.Modality for s in small_study.series] == ["CT", "MR"]
    assert [s.path.name for s in small_study.series] == ["1_CT", "2_MR"]
    for file in small_study.files:
        raw = file.read_bytes()
        assert raw[:128] == b"\0" * 128
        assert raw[128:132] == b"DICM"
        ds = pydicom.dcmread(file)
        meta = ds.file_meta
        assert meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
        assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert meta.MediaStorageSOPClassUID == ds.SOPClassUID
        assert ds.SpecificCharacterSet == "ISO_IR 100"


def test_values_pass_pydicom_validation(tmp_path, monkeypatch):
    monkeypatch.setattr(pydicom.config.settings, "writing_validation_mode", pydicom.config.RAISE)
    study = write_sample_study(tmp_path / "s", 3, **TINY)
    monkeypatch.setattr(pydicom.config.settings, "reading_validation_mode", pydicom.config.RAISE)
    for file in study.files:
        ds = pydicom.dcmread(file)
        for elem in ds.iterall():
            _ = elem.value  # converting each raw value validates it


def test_uids_are_valid_unique_and_shared_where_they_should_be(small_study):
    sop_uids = set()
    for series in small_study.series:
        for file in series.files:
            ds = pydicom.dcmread(file, stop_before_pixels=True)
            assert ds.StudyInstanceUID == small_study.StudyInstanceUID
            assert ds.SeriesInstanceUID == series.SeriesInstanceUID
            assert ds.FrameOfReferenceUID == series.FrameOfReferenceUID
            assert ds.SeriesDescription == series.SeriesDescription
            assert ds.PatientID == small_study.PatientID
            sop_uids.add(ds.SOPInstanceUID)
            for uid in (ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.StudyInstanceUID):
                assert UID(uid).is_valid
                assert uid.startswith("2.25.")
                assert int(uid[5:]) < 2**128  # the integer form of a UUID (PS3.5 B.2)
    assert len(sop_uids) == len(small_study.files)
    ct, mr = small_study.series
    assert ct.FrameOfReferenceUID != mr.FrameOfReferenceUID
    assert ct.SeriesInstanceUID != mr.SeriesInstanceUID
    assert UID(IMPLEMENTATION_CLASS_UID).is_valid


def test_non_ascii_patient_name_round_trips(tmp_path):
    for seed in range(40):
        study = write_sample_study(tmp_path / str(seed), seed, **TINY)
        if not study.PatientName.isascii():
            break
        shutil.rmtree(study.path)
    else:
        pytest.fail("no seed in 0..39 gave a non-ASCII name")
    raw = study.files[0].read_bytes()
    assert study.PatientName.encode("latin-1") in raw
    for file in (study.series[0].files[0], study.series[1].files[0]):
        ds = pydicom.dcmread(file)
        assert str(ds.PatientName) == study.PatientName


def test_geometry_is_consistent(small_study):
    for series in small_study.series:
        headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in series.files]
        assert [int(ds.InstanceNumber) for ds in headers] == list(range(1, len(headers) + 1))
        spacing = float(headers[0].SpacingBetweenSlices)
        assert float(headers[0].SliceThickness) == spacing
        zs = [float(ds.ImagePositionPatient[2]) for ds in headers]
        steps = np.diff(zs)
        assert np.all(steps < 0), "slices go from head to feet"
        np.testing.assert_allclose(-steps, spacing, atol=1e-3)
        assert [float(ds.SliceLocation) for ds in headers] == zs
        for ds in headers:
            assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
            assert ds.ImagePositionPatient[:2] == headers[0].ImagePositionPatient[:2]
            assert ds.PixelSpacing == headers[0].PixelSpacing
            assert ds.PositionReferenceIndicator == ""
            assert ds.PatientPosition == "HFS"
        # the field of view is centred on the isocentre
        first = headers[0]
        fov = float(first.PixelSpacing[1]) * first.Columns
        np.testing.assert_allclose(
            float(first.ImagePositionPatient[0]), -fov / 2 + float(first.PixelSpacing[1]) / 2
        )


def test_ct_and_mr_attributes(small_study):
    ct = pydicom.dcmread(small_study.series[0].files[0])
    assert ct.SOPClassUID == CTImageStorage
    assert (ct.Rows, ct.Columns) == (48, 48)
    assert (ct.BitsAllocated, ct.BitsStored, ct.HighBit, ct.PixelRepresentation) == (16, 16, 15, 1)
    assert (float(ct.RescaleIntercept), float(ct.RescaleSlope)) == (-1024.0, 1.0)
    assert [float(v) for v in ct.WindowCenter] == [40.0, -600.0]
    assert [float(v) for v in ct.WindowWidth] == [400.0, 1500.0]
    assert list(ct.WindowCenterWidthExplanation) == ["SOFT TISSUE", "LUNG"]
    assert list(ct.ImageType) == ["ORIGINAL", "PRIMARY", "AXIAL"]
    assert ct.Manufacturer == "dicomflow_lab"
    assert ct.ManufacturerModelName == "Synthetic Phantom"
    for keyword in ("KVP", "ConvolutionKernel", "AccessionNumber", "ReferringPhysicianName",
                    "InstitutionName", "InstitutionAddress", "StationName", "OperatorsName",
                    "StudyID", "PatientBirthDate", "PatientSex", "PatientAge", "StudyDate",
                    "StudyTime", "SeriesDate", "AcquisitionTime", "ContentTime",
                    "StudyDescription", "BodyPartExamined"):  # fmt: skip
        assert ct.get(keyword) not in (None, ""), keyword
    mr = pydicom.dcmread(small_study.series[1].files[0])
    assert mr.SOPClassUID == MRImageStorage
    assert (mr.Rows, mr.Columns) == (32, 32)
    assert (mr.PixelRepresentation, mr.PhotometricInterpretation) == (0, "MONOCHROME2")
    for keyword in ("RepetitionTime", "EchoTime", "MagneticFieldStrength", "ScanningSequence",
                    "SequenceVariant", "MRAcquisitionType", "ImagedNucleus"):  # fmt: skip
        assert mr.get(keyword) not in (None, ""), keyword
    pixels = np.stack([pydicom.dcmread(f).pixel_array for f in small_study.series[1].files])
    low = float(mr.WindowCenter) - float(mr.WindowWidth) / 2
    high = float(mr.WindowCenter) + float(mr.WindowWidth) / 2
    assert pixels.min() <= low < high <= pixels.max()
    assert mr.PatientName == ct.PatientName
    assert mr.StudyDate == ct.StudyDate
    assert mr.SeriesTime > ct.SeriesTime or mr.SeriesDate > ct.SeriesDate


def test_default_study_anatomy_in_hounsfield_units(default_study):
    ct = default_study.series[0]
    assert ct.num_instances == 100
    slices = [pydicom.dcmread(f) for f in ct.files]
    first = slices[0]
    assert (first.Rows, first.Columns) == (512, 512)
    assert float(first.SpacingBetweenSlices) == 5.0
    assert float(first.PixelSpacing[0]) == 0.78125

    upper = slices[19]  # 97.5 mm below the lung apices
    hu = _hu(upper)
    assert hu.min() >= -1024 and hu.max() <= 3071
    assert np.median(hu[:40, :40]) < -950, "air outside the body"
    assert abs(np.std(hu[:40, :40]) - 10) < 3, "about 10 HU of noise"
    for side in (-1, 1):
        assert np.median(_box(upper, hu, side * 70.0, 5.0, 10.0)) < -700, "lung"
    assert np.median(_box(upper, hu, -8.0, -36.0, 3.0)) > 150, "ascending aorta, contrast"
    assert np.median(_box(upper, hu, 20.0, 23.7, 3.0)) > 150, "descending aorta, contrast"
    assert -120 < np.median(_box(upper, hu, 0.0, -60.0, 4.0)) < -40, "mediastinal fat"

    # The vertebral body sits 48.5 mm behind the isocentre on every slice; a few
    # slices cut an intervertebral disc instead.
    spine = [np.median(_box(ds, _hu(ds), 0.0, 48.5, 4.0)) for ds in slices]
    assert sum(v > 400 for v in spine) >= 0.75 * len(spine), "vertebral bone"
    assert all(v > 40 for v in spine)

    lower = slices[51]  # 257.5 mm: upper abdomen
    hu = _hu(lower)
    assert 30 < np.median(_box(lower, hu, -80.0, 0.0, 6.0)) < 100, "liver"
    assert np.median(_box(lower, hu, 70.0, 5.0, 10.0)) > -200, "no lung on the lower slice"
    trunk = [_box(ds, _hu(ds), 0.0, 0.0, 100.0) for ds in slices]  # above the table
    lung = [float(np.mean((t > -950) & (t < -700))) for t in trunk]
    assert lung[19] > 0.3, "lungs in the upper slices"
    assert max(lung[60:]) < 0.02, "no lungs in the lower slices (only edges of bowel gas)"


def test_default_study_mr_head(default_study):
    mr = default_study.series[1]
    assert mr.num_instances == 24
    ds = pydicom.dcmread(mr.files[12])
    assert (ds.Rows, ds.Columns) == (256, 256)
    pixels = ds.pixel_array.astype(np.float64)
    centre = _box(ds, pixels, 30.0, 20.0, 5.0)  # white matter
    corner = pixels[:30, :30]
    assert np.median(centre) > 400
    assert np.median(corner) < 40
    assert float(ds.WindowWidth) > 100


def test_logs_only_at_debug_and_without_names(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="dicomflow_lab")
    study = write_sample_study(tmp_path / "s", 5, **TINY)
    write_sample_study(tmp_path / "s", 5, **TINY)
    assert caplog.records
    assert all(r.levelno == logging.DEBUG for r in caplog.records)
    assert not any(study.PatientName in r.getMessage() for r in caplog.records)


# --- a real peer --------------------------------------------------------------------------


@pytest.mark.peer
def test_dcmtk_dcmdump_parses_every_file(small_study):
    dcmdump = shutil.which("dcmdump")
    if dcmdump is None:
        missing_peer(f"dcmtk dcmdump not installed ({INSTALL_HINT})")
    for file in small_study.files:
        done = subprocess.run([dcmdump, "-q", str(file)], capture_output=True, timeout=30)
        errors = done.stderr.decode("latin-1")
        assert done.returncode == 0, f"{file}: {errors}"
        assert not errors.strip(), f"{file}: {errors}"
        # dcmdump prints values as stored (Latin-1) unless built to convert to UTF-8
        name = small_study.PatientName
        assert name.encode("latin-1") in done.stdout or name.encode() in done.stdout
