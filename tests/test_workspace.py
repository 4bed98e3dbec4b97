"""Workspace: indexing (recursive, by content, incremental, DICOMDIR), queries, settings."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dicomflow_lab.workspace import Workspace
from tests.conftest import TEST_FILES, write_series


def test_index_finds_dicom_by_content_not_extension(tmp_path, workspace):
    folder = tmp_path / "mixed"
    write_series(folder / "a" / "b", 3, extension="")  # no extension, nested
    write_series(folder, 2, extension=".txt")  # misleading extension
    (folder / "notes.dcm").write_text("this is not DICOM")  # misleading the other way
    report = workspace.index(folder, progress=False)
    assert report.indexed == 5
    assert report.error_kinds == {"not_dicom": 1}
    errors = workspace.index_errors()
    assert errors["file_path"].tolist() == [str(folder / "notes.dcm")]
    assert "DICM" in errors["reason"][0]


def test_preamble_less_files_are_indexed(workspace):
    report = workspace.index(TEST_FILES / "ExplVR_LitEndNoMeta.dcm", progress=False)
    assert report.indexed == 1
    row = workspace.instances().iloc[0]
    assert row["TransferSyntaxUID"] == "1.2.840.10008.1.2.1"


def test_reindex_skips_unchanged_rereads_changed_and_removes_deleted(tmp_path, workspace):
    folder = tmp_path / "s"
    paths = write_series(folder, 6)
    first = workspace.index(folder, progress=False)
    assert (first.indexed, first.unchanged, first.removed) == (6, 0, 0)

    second = workspace.index(folder, progress=False)
    assert (second.indexed, second.unchanged, second.removed) == (0, 6, 0)

    paths[0].unlink()
    write_series(folder / "more", 2)
    os.utime(paths[1], ns=(1, 1))  # a changed mtime makes the file be read again
    third = workspace.index(folder, progress=False)
    assert (third.indexed, third.unchanged, third.removed) == (3, 4, 1)
    assert len(workspace.instances()) == 7
    assert str(paths[0]) not in set(workspace.instances()["file_path"])


def test_removing_a_file_that_had_failed_clears_its_error(tmp_path, workspace):
    folder = tmp_path / "s"
    write_series(folder, 1)
    bad = folder / "bad.dcm"
    bad.write_bytes(b"\0" * 10)
    workspace.index(folder, progress=False)
    assert len(workspace.index_errors()) == 1
    bad.unlink()
    report = workspace.index(folder, progress=False)
    assert workspace.index_errors().empty
    assert report.errors == 0


def test_a_fixed_file_moves_from_errors_to_instances(tmp_path, workspace):
    folder = tmp_path / "s"
    write_series(folder, 1)
    target = folder / "late.dcm"
    target.write_bytes(b"not yet")
    workspace.index(folder, progress=False)
    shutil.copy(folder / "IM0001.dcm", target)
    os.utime(target, ns=(10**18, 10**18))
    workspace.index(folder, progress=False)
    assert workspace.index_errors().empty
    assert str(target) in set(workspace.instances()["file_path"])


def test_dicomdir_indexes_the_files_it_references(tmp_path, workspace):
    src = TEST_FILES / "dicomdirtests"
    copy = tmp_path / "media"
    shutil.copytree(src, copy)
    report = workspace.index(copy / "DICOMDIR", progress=False)
    assert report.dicomdirs == (str(copy / "DICOMDIR"),)
    import pydicom
    from pydicom.fileset import FileSet

    expected = {str(Path(i.path)) for i in FileSet(pydicom.dcmread(copy / "DICOMDIR"))}
    indexed = set(workspace.instances()["file_path"])
    assert indexed == expected
    assert report.indexed == len(expected) > 0


def test_missing_dicomdir_reference_is_recorded(tmp_path, workspace):
    copy = tmp_path / "media"
    shutil.copytree(TEST_FILES / "dicomdirtests", copy)
    gone = copy / "98892003" / "MR700" / "4467"
    gone.unlink()
    workspace.index(copy / "DICOMDIR", progress=False)
    errors = workspace.index_errors()
    row = errors[errors["file_path"] == str(gone)]
    assert row["kind"].tolist() == ["missing"]
    assert "referenced by DICOMDIR" in row["reason"].iloc[0]


def test_parallel_and_inline_indexing_give_the_same_rows(tmp_path):
    folder = tmp_path / "s"
    write_series(folder, 120)
    frames = []
    for workers in (1, 2):
        with Workspace(tmp_path / f"ws{workers}") as ws:
            report = ws.index(folder, progress=False, workers=workers)
            assert report.indexed == 120
            frames.append(ws.sql("SELECT * EXCLUDE (indexed_at) FROM instances ORDER BY file_path"))
    assert frames[0].equals(frames[1])


def test_typed_columns_and_header_json(series_dir, workspace):
    workspace.index(series_dir, progress=False)
    row = workspace.sql(
        'SELECT "Rows", PixelSpacing, ImagePositionPatient, StudyDate, '
        "header->>'$.PatientID' AS pid, json_type(header, '$.PixelData') AS pixel "
        "FROM instances ORDER BY InstanceNumber LIMIT 1"
    ).iloc[0]
    assert row["Rows"] == 128
    assert list(row["ImagePositionPatient"]) == [0.0, 0.0, 0.0]
    assert len(row["PixelSpacing"]) == 2
    assert row["pid"] == "PAT001"
    assert row["pixel"] is None  # bulk pixel data never in the header JSON
    assert str(row["StudyDate"])[:4].isdigit()


def test_queries_filter_by_study_and_series(tmp_path, workspace):
    write_series(tmp_path / "x", 3, study_uid="1.2.3.4", series_number=1)
    write_series(tmp_path / "x", 2, study_uid="1.2.3.4", series_number=2, extension=".dicom")
    write_series(tmp_path / "y", 4, study_uid="1.2.3.5")
    workspace.index(tmp_path / "x", tmp_path / "y", progress=False)
    studies = workspace.studies()
    assert sorted(studies["n_instances"].tolist()) == [4, 5]
    series = workspace.series(study_uid="1.2.3.4")
    assert series["SeriesNumber"].tolist() == [1, 2]
    assert series["n_instances"].tolist() == [3, 2]
    one = workspace.instances(series["SeriesInstanceUID"][0])
    assert one["InstanceNumber"].tolist() == [1, 2, 3]
    assert "header" not in one.columns
    assert "header" in workspace.instances(study_uid="1.2.3.5", with_header=True).columns
    assert (
        workspace.sql(
            "SELECT count(*) AS n FROM instances WHERE StudyInstanceUID = ?", ["1.2.3.5"]
        )["n"][0]
        == 4
    )


def test_sources_are_recorded(series_dir, workspace):
    workspace.index(series_dir, progress=False)
    sources = workspace.sources()
    assert sources["source"].tolist() == [str(series_dir)]
    assert sources["kind"].tolist() == ["folder"]


def test_index_without_paths_is_a_type_error(workspace):
    with pytest.raises(TypeError, match="at least one"):
        workspace.index()


def test_missing_root_is_recorded_not_raised(tmp_path, workspace):
    report = workspace.index(tmp_path / "nope", progress=False)
    assert report.error_kinds == {"missing": 1}


def test_progress_bar_is_shown_in_a_terminal(series_dir, workspace, capsys):
    workspace.index(series_dir, progress=True)
    err = capsys.readouterr().err
    assert "Indexing" in err and "5/5" in err


class TestSettings:
    def test_defaults_and_overrides(self, workspace):
        assert workspace.get_setting("viewer.frame_cache_mb") == 512
        workspace.set_setting("viewer.frame_cache_mb", 256)
        assert workspace.get_setting("viewer.frame_cache_mb") == 256
        table = workspace.settings().set_index("name")
        assert bool(table.loc["viewer.frame_cache_mb", "overridden"]) is True
        workspace.reset_setting("viewer.frame_cache_mb")
        assert workspace.get_setting("viewer.frame_cache_mb") == 512

    def test_settings_persist_across_workspace_objects(self, tmp_path):
        with Workspace(tmp_path / "w") as ws:
            ws.set_setting("display.show_phi", True)
        with Workspace(tmp_path / "w") as ws:
            assert ws.get_setting("display.show_phi") is True

    @pytest.mark.parametrize(
        ("name", "value", "error", "match"),
        [
            ("no.such", 1, KeyError, "unknown setting 'no.such'; known settings"),
            ("viewer.frame_cache_mb", "big", TypeError, "positive whole number"),
            ("viewer.frame_cache_mb", -1, ValueError, "positive whole number"),
            ("viewer.frame_cache_mb", True, TypeError, "not a bool"),
            ("display.show_phi", 1, TypeError, "bool"),
        ],
    )
    def test_bad_values_are_refused(self, workspace, name, value, error, match):
        with pytest.raises(error, match=match):
            workspace.set_setting(name, value)


class TestEphemeral:
    def test_with_block_leaves_nothing(self, series_dir):
        with Workspace(ephemeral=True) as ws:
            ws.index(series_dir, progress=False)
            area = ws.path
            (ws.files_dir / "x").write_text("x")
            assert len(ws.instances()) == 5
        assert not area.exists()
        assert ws.closed

    def test_close_wipes_and_refuses_further_use(self, series_dir):
        ws = Workspace(ephemeral=True)
        area = ws.path
        ws.close()
        assert not area.exists()
        from dicomflow_lab.errors import StoreError

        with pytest.raises(StoreError):
            ws.studies()

    def test_interpreter_exit_wipes(self, tmp_path):
        code = (
            "import dicomflow_lab.workspace as w; ws = w.Workspace(ephemeral=True); print(ws.path)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
        ).stdout.strip()
        assert out and not Path(out).exists()

    def test_ephemeral_writes_no_database_file(self, series_dir, tmp_path):
        with Workspace(ephemeral=True) as ws:
            ws.index(series_dir, progress=False)
            assert ws.db.path is None
            assert not list(ws.path.rglob("*.duckdb"))


def test_default_workspace_location_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DICOMFLOW_HOME", str(tmp_path / "home"))
    with Workspace() as ws:
        assert ws.path == tmp_path / "home"
        ws.studies()
    assert (tmp_path / "home" / "workspace.duckdb").is_file()


def test_logs_above_debug_carry_no_patient_values(tmp_path, caplog):
    import logging

    import pydicom

    from dicomflow_lab.core.sample import write_sample_study

    study = write_sample_study(tmp_path / "s", ct_slices=60, ct_size=32, mr_slices=2, mr_size=32)
    (tmp_path / "s" / "junk.dcm").write_bytes(b"\0" * 300)
    ds = pydicom.dcmread(study.series[0].files[0], stop_before_pixels=True)
    secrets_ = [str(ds.PatientName), ds.PatientID, ds.StudyInstanceUID, ds.AccessionNumber]
    with caplog.at_level(logging.DEBUG, logger="dicomflow_lab"), Workspace(ephemeral=True) as ws:
        ws.index(tmp_path / "s", progress=False, workers=2)
        ws.studies()
    loud = [r.getMessage() for r in caplog.records if r.levelno > logging.DEBUG]
    assert not [m for m in loud for s in secrets_ if s in m]
