"""Workspace.anonymize: output, determinism across processes, store, mapping, cancel."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pandas as pd
import pydicom
import pytest

from dicomflow_lab.core.sample import write_sample_study
from dicomflow_lab.errors import AnonymizationError
from dicomflow_lab.workspace import Workspace

KEY = "test-key-0123456789"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("orig") / "study"
    return write_sample_study(folder, seed=3, ct_slices=12, ct_size=64, mr_slices=6, mr_size=64)


def _checksums(files) -> dict[str, str]:
    return {str(f): hashlib.sha256(Path(f).read_bytes()).hexdigest() for f in files}


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.dcm"))}


def test_anonymize_writes_indexes_and_records(study, tmp_path):
    before = _checksums(study.files)
    out = tmp_path / "anon"
    with Workspace(tmp_path / "ws") as ws:
        report = ws.anonymize(study.path, out, key=KEY, workers=2, progress=False, verify=True)
        assert report.status == "done"
        assert report.written == len(study.files) == len(report.df)
        assert report.failed == 0 and report.quarantined == 0
        # one file per instance, named by the new UIDs only
        outputs = sorted(out.rglob("*.dcm"))
        assert len(outputs) == len(study.files)
        for row in report.df.itertuples():
            assert Path(row.out_file) == out / row.StudyInstanceUID / row.SeriesInstanceUID / (
                row.SOPInstanceUID + ".dcm"
            )
            assert row.StudyInstanceUID != study.StudyInstanceUID
            assert row.StudyInstanceUID.startswith("2.25.")
        # originals untouched
        assert _checksums(study.files) == before
        # the output is a new indexed source
        indexed = ws.sql(
            "SELECT count(*) AS n FROM instances WHERE starts_with(file_path, ?)", [str(out)]
        )
        assert indexed["n"].iloc[0] == len(study.files)
        assert (ws.instances()["PatientID"] != study.PatientID).all()
        # the verification pass found nothing
        assert report.verified is True
        run = ws.anonymization_runs().iloc[0]
        assert run["run_id"] == report.run_id
        assert run["status"] == "done" and bool(run["verified"]) and run["residual_rows"] == 0
        assert run["written"] == len(study.files)
        assert run["key_fingerprint"] == report.key_fingerprint != KEY
        # the mapping needs the key
        with pytest.raises(AnonymizationError, match="not the key"):
            ws.anonymization_map(report.run_id, key="another key")
        mapping = ws.anonymization_map(report.run_id, key=KEY)
        uid = mapping[mapping["kind"] == "uid"].set_index("original")["new"]
        assert uid[study.StudyInstanceUID] == report.df["StudyInstanceUID"].iloc[0]
        pat = mapping[mapping["kind"] == "patient"]
        assert pat["original"].tolist() == [study.PatientID]
        new_id = pydicom.dcmread(outputs[0]).PatientID
        assert pat["new"].tolist() == [new_id]
        # audit: one row per attribute acted on, hashes only
        audit = ws.anonymization_audit(report.run_id)
        assert len(audit) > len(study.files)
        assert audit["old_hash"].dropna().str.fullmatch(r"[0-9a-f]{16}").all()
        assert set(audit["action"]) <= {
            "X",
            "Z",
            "D",
            "U",
            "K",
            "C",
            "keep",
            "replace",
            "remove",
            "hash",
        }


def test_mapping_and_audit_are_kept_apart_from_the_workspace(study, tmp_path):
    with Workspace(tmp_path / "ws") as ws:
        ws.anonymize(study.path, tmp_path / "anon", key=KEY, workers=1, progress=False)
    main = tmp_path / "ws" / "workspace.duckdb"
    private = tmp_path / "ws" / "anonymization.duckdb"
    assert private.exists()
    # everything in the shareable database, as text: no original UID, name, ID or key
    import duckdb

    con = duckdb.connect(str(main), read_only=True)
    try:
        tables = [r[0] for r in con.execute("SHOW TABLES").fetchall()]
        text = ""
        for table in tables:
            text += con.execute(f"SELECT * FROM {table}").df().to_csv()
    finally:
        con.close()
    name = study.PatientName.split("^")[0]
    for secret in (study.StudyInstanceUID, study.PatientID, name, KEY):
        assert secret not in text, f"{secret!r} leaked into the shareable workspace"
    con = duckdb.connect(str(private), read_only=True)
    try:
        originals = {r[0] for r in con.execute("SELECT original_uid FROM uid_map").fetchall()}
    finally:
        con.close()
    assert study.StudyInstanceUID in originals


def test_same_key_is_byte_identical_across_processes(study, tmp_path):
    with Workspace(ephemeral=True) as ws:
        ws.anonymize(study.path, tmp_path / "a", key=KEY, workers=1, progress=False, index=False)
        ws.anonymize(study.path, tmp_path / "b", key=KEY, workers=2, progress=False, index=False)
        ws.anonymize(
            study.path, tmp_path / "c", key="other", workers=1, progress=False, index=False
        )
    a, b, c = (_tree(tmp_path / n) for n in "abc")
    assert a == b and len(a) == len(study.files)
    assert not set(a) & set(c), "another key must give other UIDs"


def test_existing_output_with_other_content_is_refused(study, tmp_path):
    out = tmp_path / "anon"
    with Workspace(ephemeral=True) as ws:
        first = ws.anonymize(study.path, out, key=KEY, workers=1, progress=False, index=False)
        again = ws.anonymize(study.path, out, key=KEY, workers=1, progress=False, index=False)
        assert again.written == first.written  # identical bytes: fine
        other = ws.anonymize(
            study.path, out, key=KEY, template="research", workers=1, progress=False, index=False
        )
        assert other.failed == len(study.files)
        assert other.df["reason"].str.contains("overwrite=True").all()
        forced = ws.anonymize(
            study.path,
            out,
            key=KEY,
            template="research",
            workers=1,
            progress=False,
            index=False,
            overwrite=True,
        )
        assert forced.written == len(study.files)


def test_bad_files_become_report_rows(study, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    good = study.files[0]
    (folder / "good.dcm").write_bytes(good.read_bytes())
    (folder / "notes.txt").write_text("not dicom")
    broken = good.read_bytes()[:400]  # DICM marker, then the header cut short
    (folder / "broken.dcm").write_bytes(broken)
    with Workspace(ephemeral=True) as ws:
        report = ws.anonymize(folder, tmp_path / "anon", key=KEY, workers=1, progress=False)
    by_name = report.df.assign(name=report.df["file"].map(lambda f: Path(f).name))
    by_name = by_name.set_index("name")
    assert by_name.loc["good.dcm", "status"] == "written"
    assert by_name.loc["notes.txt", "status"] == "skipped"
    assert by_name.loc["broken.dcm", "status"] == "failed"
    assert "broken.dcm" in by_name.loc["broken.dcm", "reason"]


def test_key_is_required(study):
    with Workspace(ephemeral=True) as ws, pytest.raises(AnonymizationError, match="key="):
        ws.anonymize(study.path, key=None, progress=False)


def test_cancel_stops_between_chunks_and_reports_what_was_written(study, tmp_path):
    cancel = threading.Event()
    seen: list[tuple[int, int]] = []

    def on_progress(done: int, total: int) -> None:
        seen.append((done, total))
        cancel.set()

    with Workspace(ephemeral=True) as ws:
        report = ws.anonymize(
            study.path,
            tmp_path / "anon",
            key=KEY,
            workers=1,
            progress=False,
            cancel=cancel,
            on_progress=on_progress,
            index=False,
        )
        assert report.status == "cancelled"
        assert 0 < report.written < len(study.files)
        assert seen and seen[0][1] == len(study.files)
        written = report.df[report.df["status"] == "written"]["out_file"]
        assert all(Path(p).exists() for p in written)
        assert len(list((tmp_path / "anon").rglob("*.dcm"))) == report.written
        assert ws.anonymization_runs()["status"].iloc[0] == "cancelled"


def test_patient_map_table_is_used(study, tmp_path):
    table = pd.DataFrame(
        {
            "PatientID": [study.PatientID],
            "new_PatientID": ["SUBJ-007"],
            "new_PatientName": ["Subject^007"],
        }
    )
    csv = tmp_path / "map.csv"
    table.to_csv(csv, index=False)
    with Workspace(ephemeral=True) as ws:
        report = ws.anonymize(
            study.files[:2],
            tmp_path / "anon",
            key=KEY,
            patient_map=csv,
            workers=1,
            progress=False,
            index=False,
        )
    ds = pydicom.dcmread(report.df["out_file"].iloc[0])
    assert ds.PatientID == "SUBJ-007"
    assert str(ds.PatientName) == "Subject^007"


def test_deid_data_fake_phi_through_the_workspace_verifies_clean(tmp_path):
    """deid-data's humans, cookies and animals (reviewed pixels: burned_in 'warn')."""
    import deid_data

    from dicomflow_lab.anonymize import template_from_dict

    root = Path(deid_data.__file__).parent / "data"
    files = sorted(
        f for sub in ("humans", "dicom-cookies", "animals") for f in (root / sub).glob("*.dcm")
    )
    reviewed = template_from_dict({"name": "reviewed", "options": [], "burned_in": "warn"})
    with Workspace(ephemeral=True) as ws:
        held = ws.anonymize(files, tmp_path / "basic", key=KEY, workers=1, progress=False)
        report = ws.anonymize(
            files,
            tmp_path / "reviewed",
            template=reviewed,
            key=KEY,
            workers=2,
            progress=False,
            verify=True,
        )
    # secondary captures without Burned In Annotation are held back by default ...
    assert held.quarantined >= 1
    assert (
        held.df.loc[held.df["status"] == "quarantined", "reason"]
        .str.contains("burned", case=False)
        .all()
    )
    # ... and written, with a warning, once the template says the pixels were reviewed;
    # humans/ctbrain1 and ctbrain2 share one SOP Instance UID: one output, and the report
    # says why the other has none
    assert len(files) == 10 and report.written == 9
    dup = report.df[report.df["status"] != "written"]
    assert [Path(f).name for f in dup["file"]] in (["ctbrain1.dcm"], ["ctbrain2.dcm"])
    assert "SOP Instance UID" in dup["reason"].iloc[0]
    warned = report.df["warnings"].str.contains("without pixel cleaning").sum()
    assert warned >= held.quarantined - 1
    assert report.verified is True, report.verification.to_string()


def test_ultrasounds_are_cleaned_by_the_example_pixel_rules(tmp_path):
    import deid_data
    import numpy as np

    import dicomflow_lab.anonymize as anonymize_pkg
    from dicomflow_lab.anonymize import load_template, match_rule

    us = Path(deid_data.__file__).parent / "data" / "ultrasounds"
    files = [us / "GREYSCALE_IMAGE.dcm", us / "RGB_IMAGE.dcm"]
    example = Path(anonymize_pkg.__file__).parent / "data" / "pixel-rules-example.json"
    rules = load_template(example)
    with Workspace(ephemeral=True) as ws:
        held = ws.anonymize(files, tmp_path / "a", key=KEY, workers=1, progress=False)
        report = ws.anonymize(
            files, tmp_path / "b", template=rules, key=KEY, workers=1, progress=False, verify=True
        )
    assert held.quarantined == 2 and held.written == 0
    assert report.written == 2 and report.verified is True
    for row in report.df.itertuples():
        original = pydicom.dcmread(row.file).pixel_array
        cleaned = pydicom.dcmread(row.out_file).pixel_array
        rule = match_rule(rules.pixel_rules, pydicom.dcmread(row.file, stop_before_pixels=True))
        inside = np.zeros(original.shape[:2], bool)
        for rect in rule.rectangles:
            inside[rect.y : rect.y + rect.height, rect.x : rect.x + rect.width] = True
        assert (cleaned[inside] == 0).all()
        assert np.array_equal(cleaned[~inside], original[~inside])


def test_two_inputs_with_one_sop_instance_uid_give_one_output_and_say_so(study, tmp_path):
    """In parallel workers both may write the same output name: the report says which won."""
    folder = tmp_path / "dups"
    folder.mkdir()
    ds = pydicom.dcmread(study.files[0])
    for name, thickness in (("a.dcm", "1.0"), ("b.dcm", "2.0"), ("c.dcm", "1.0")):
        ds.SliceThickness = thickness  # b differs from a; c is a byte-identical copy of a
        ds.save_as(folder / name)
    with Workspace(ephemeral=True) as ws:
        report = ws.anonymize(
            folder, tmp_path / "anon", key=KEY, workers=2, progress=False, verify=True, index=False
        )
    by_name = report.df.assign(name=report.df["file"].map(lambda f: Path(f).name))
    by_name = by_name.set_index("name")
    outputs = list((tmp_path / "anon").rglob("*.dcm"))
    assert len(outputs) == 1 and report.written == 1
    winner = by_name[by_name["status"] == "written"].index[0]
    kept = pydicom.dcmread(outputs[0])
    assert str(kept.SliceThickness) == ("2.0" if winner == "b.dcm" else "1.0")
    others = by_name.drop(index=winner)
    assert set(others["status"]) <= {"failed", "skipped"}
    assert others["reason"].str.contains("another input of this run|same output as").all()
    assert report.verified is True, report.verification.to_string()


@pytest.mark.parametrize("base", ["basic", "research", "retain-uids", "clinical-trial"])
def test_every_bundled_pydicom_file_verifies_clean(base, tmp_path):
    """pydicom's test files (SR, RT, multi-frame, odd encodings, character sets), end to end."""
    import warnings

    from dicomflow_lab.anonymize import load_template, template_from_dict
    from dicomflow_lab.data import testfiles

    template = template_from_dict({**load_template(base).to_dict(), "burned_in": "warn"})
    from pydicom.data import get_charset_files

    # plus pydicom's character-set files: Arabic, Greek, Hebrew, Japanese, Korean, Chinese...
    files = [str(f) for f in testfiles()] + sorted(get_charset_files("*.dcm"))
    with warnings.catch_warnings(), Workspace(ephemeral=True) as ws:
        warnings.simplefilter("ignore")
        report = ws.anonymize(
            files,
            tmp_path / "anon",
            template=template,
            key=KEY,
            workers=2,
            progress=False,
            verify=True,
            index=False,
        )
    assert report.written > 30
    assert report.verified is True, report.verification.to_string()
    # what was not written says why: not DICOM, a DICOMDIR, unreadable, or a SOP Instance
    # UID shared with another input (pydicom ships one image in many encodings)
    held = report.df[report.df["status"] != "written"]
    assert held["reason"].notna().all()


def test_a_study_or_its_viewer_is_a_selection(study, tmp_path):
    import dicomflow_lab as dfl

    with Workspace(ephemeral=True) as ws:
        opened = dfl.open(study.path, workspace=ws, progress=False, view=False)
        by_study = ws.anonymize(
            opened, tmp_path / "a", key=KEY, workers=1, progress=False, index=False
        )
        viewer = dfl.open(study.path, workspace=ws, progress=False)
        by_viewer = ws.anonymize(
            viewer, tmp_path / "b", key=KEY, workers=1, progress=False, index=False
        )
    assert by_study.written == by_viewer.written == len(study.files)
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
