"""The index update after a batch edit: rows derived from the sources' rows.

Conformance: for several edit sets, on the sample study and on pydicom's bundled files,
the rows a batch edit leaves in the workspace (derived from the sources' rows where it
can, indexed otherwise) equal, column by column with the header JSON parsed, the rows a
fresh ``ws.index(out)`` gives in another workspace; and a later ``ws.index(out)`` finds
nothing to do.
"""

from __future__ import annotations

import math
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import orjson
import pydicom
import pytest

import dicomflow_lab as dfl
from dicomflow_lab import editor as editor_module
from dicomflow_lab.core import _write
from dicomflow_lab.core._write_fast import fast_edit
from dicomflow_lab.core.edit import Edit
from dicomflow_lab.core.sample import write_sample_study
from dicomflow_lab.editor import BatchEdit
from dicomflow_lab.errors import DicomflowError

from .conftest import TEST_FILES

# op, path, value[, vr]
EDIT_SETS: dict[str, list[tuple[Any, ...]]] = {
    "person_name_non_ascii": [("set", "PatientName", "Müller^Jürgen=Ünal")],
    "add_and_delete": [
        ("add", "(0010,2160)", "added"),  # Ethnic Group: a header key, in tag order
        ("set", "StationName", "NEWSTATION"),  # a column; inserted where missing
        ("delete", "InstitutionName"),
        ("delete", "PatientID"),
        ("delete", "(0010,1010)"),  # Patient's Age: often absent, nothing to delete
    ],
    "numbers": [
        ("set", "SliceThickness", "2.50"),
        ("set", "SeriesNumber", "42"),
        ("set", "InstanceNumber", "-7"),
        ("set", "WindowCenter", ["40", "-400.5"]),
        ("set", "RescaleSlope", "1e0"),
    ],
    "dates_and_times": [
        ("set", "StudyDate", "20240131"),
        ("set", "PatientBirthDate", "19700101"),
        ("set", "ContentDate", ""),  # empty value: a null in the header and the column
        ("set", "StudyTime", "235959.123"),
    ],
    "multi_valued_cs": [("set", "ImageType", ["DERIVED", "SECONDARY", "AXIAL"])],
    "text_and_private": [
        ("set", "StudyDescription", "  padded text  "),
        ("set", "ImageComments", "x" * 300),
        ("set", "(0009,1001)", "private value", "LO"),
    ],
}

# edits the patch cannot express: these files are all indexed afresh
FALLBACK_SETS: dict[str, list[tuple[Any, ...]]] = {
    "character_set": [
        ("set", "SpecificCharacterSet", "ISO_IR 192"),
        ("set", "PatientName", "Ærø^Å"),
    ],
    "sequence": [
        ("add_item", "ReferencedSeriesSequence"),
        ("set", "ReferencedSeriesSequence[0].SeriesInstanceUID", "1.2.3.4"),
    ],
    "image_size": [("set", "Rows", 64)],
    "after_pixel_data": [("set", "(7FE1,1001)", "after the pixels", "LO")],
}


def _push(batch: BatchEdit, edits: list[tuple[Any, ...]]) -> None:
    for op, path, *rest in edits:
        if op == "delete":
            batch.delete(path)
        elif op == "add_item":
            batch.add_item(path)
        else:
            getattr(batch, op)(path, *rest)


def _rows(ws: dfl.Workspace, folder: Path) -> dict[str, dict[str, Any]]:
    frame = ws.sql(
        "SELECT * EXCLUDE (indexed_at) FROM instances WHERE starts_with(file_path, ?)"
        " ORDER BY file_path",
        [str(folder) + os.sep],
    )
    rows = {}
    for record in frame.to_dict("records"):
        record["header"] = orjson.loads(record["header"])
        rows[record["file_path"]] = {k: _plain(v) for k, v in record.items()}
    return rows


def _errors(ws: dfl.Workspace, folder: Path) -> list[tuple[Any, ...]]:
    frame = ws.sql(
        "SELECT file_path, file_size, file_mtime, source, kind, reason FROM index_errors"
        " WHERE starts_with(file_path, ?) ORDER BY file_path",
        [str(folder) + os.sep],
    )
    return [tuple(row) for row in frame.itertuples(index=False)]


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    try:
        if value is None or (not isinstance(value, (str, dict)) and bool(value != value)):
            return None
    except (TypeError, ValueError):
        pass
    return value


def _capture_patched(monkeypatch: pytest.MonkeyPatch) -> list[set[str]]:
    """Record the paths whose rows the editor derived from the sources' rows."""
    done: list[set[str]] = []
    real = editor_module.patch_instances

    def spy(*args: Any, **kwargs: Any) -> set[str]:
        result = real(*args, **kwargs)
        done.append(result)
        return result

    monkeypatch.setattr(editor_module, "patch_instances", spy)
    return done


def _check_like_a_fresh_index(ws: dfl.Workspace, out: Path, n_files: int) -> None:
    """The rows left by the save equal a fresh index's; indexing again changes nothing."""
    got = _rows(ws, out)
    errors = ws.sql("SELECT count(*) AS n FROM index_errors")["n"].item()
    with dfl.Workspace(ephemeral=True) as fresh:
        fresh.index(out, progress=False, workers=1)
        expected = _rows(fresh, out)
        assert set(fresh.sources()["source"]) == {str(out)}
        assert _errors(ws, out) == _errors(fresh, out)
    assert set(got) ^ set(expected) == set()
    assert list(got) == list(expected)
    for path, row in expected.items():
        for column, value in row.items():
            assert got[path][column] == value, (Path(path).name, column)
    assert str(out) in set(ws.sources()["source"])
    again = ws.index(out, progress=False, workers=1)
    assert (again.indexed, again.removed, again.errors) == (0, 0, 0)
    assert again.unchanged == again.files_seen == n_files
    assert _rows(ws, out) == got
    assert ws.sql("SELECT count(*) AS n FROM index_errors")["n"].item() == errors


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("study")
    write_sample_study(root, ct_slices=24, ct_size=32, mr_slices=6, mr_size=32)
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pydicom's bundled files, flat, under unique names."""
    root = tmp_path_factory.mktemp("corpus")
    for path in sorted(p for p in TEST_FILES.rglob("*") if p.is_file()):
        name = "_".join(path.relative_to(TEST_FILES).parts)
        shutil.copy2(path, root / name)
    return root


def _indexed_copy(source: Path, tmp_path: Path) -> tuple[dfl.Workspace, Path]:
    root = tmp_path / "in"
    shutil.copytree(source, root)
    ws = dfl.Workspace(ephemeral=True)
    ws.index(root, progress=False, workers=1)
    return ws, root


def _accepted(ws: dfl.Workspace, root: Path, edits: list[tuple[Any, ...]]) -> list[Path]:
    """The indexed files that every edit of the set accepts (preview without error)."""
    files = [Path(p) for p in ws.sql("SELECT file_path FROM instances ORDER BY 1")["file_path"]]
    accepted = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in files:
            batch = BatchEdit([path])
            try:
                _push(batch, edits)
                batch.preview()
                _write.edit_bytes(path, path.read_bytes(), batch.pending(), False, "probe")
            except (DicomflowError, ValueError, KeyError, TypeError):
                continue
            accepted.append(path)
    return accepted


@pytest.mark.parametrize("name", sorted(EDIT_SETS))
def test_sample_study_rows_equal_a_fresh_index(study, tmp_path, monkeypatch, name):
    ws, root = _indexed_copy(study, tmp_path)
    with ws:
        files = sorted(root.rglob("*.dcm"))
        patched = _capture_patched(monkeypatch)
        batch = BatchEdit(files, workspace=ws)
        _push(batch, EDIT_SETS[name])
        out = tmp_path / "out"
        # a row left from an earlier file of that name, gone since: an index removes it
        ws.sql(
            "INSERT INTO instances SELECT * REPLACE (? AS file_path) FROM instances LIMIT 1",
            [str(out / "gone.dcm")],
        )
        reports = []
        real_index = ws.index
        monkeypatch.setattr(ws, "index", lambda *a, **k: reports.append(real_index(*a, **k)))
        batch.save(out=out, progress=False, processes=1)
        monkeypatch.setattr(ws, "index", real_index)
        assert len(patched) == 1 and len(patched[0]) == len(files)
        assert reports == []  # every row derived: the folder is not even scanned
        _check_like_a_fresh_index(ws, out, len(files))


def test_an_output_folder_with_other_files_is_indexed_too(study, tmp_path, monkeypatch):
    ws, root = _indexed_copy(study, tmp_path)
    with ws:
        out = tmp_path / "out"
        out.mkdir()
        shutil.copy(TEST_FILES / "CT_small.dcm", out / "other.dcm")  # not indexed yet
        files = sorted((root / "1_CT").glob("*.dcm"))
        patched = _capture_patched(monkeypatch)
        batch = BatchEdit(files, workspace=ws)
        _push(batch, EDIT_SETS["numbers"])
        batch.save(out=out, progress=False, processes=1)
        assert len(patched[0]) == len(files)
        assert str(out / "other.dcm") in set(_rows(ws, out))
        _check_like_a_fresh_index(ws, out, len(files) + 1)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", sorted(EDIT_SETS))
def test_bundled_files_rows_equal_a_fresh_index(corpus, tmp_path, monkeypatch, name):
    ws, root = _indexed_copy(corpus, tmp_path)
    with ws:
        files = _accepted(ws, root, EDIT_SETS[name])
        assert len(files) >= 10
        patched = _capture_patched(monkeypatch)
        batch = BatchEdit(files, workspace=ws)
        _push(batch, EDIT_SETS[name])
        out = tmp_path / "out"
        report = batch.save(out=out, progress=False, processes=1)
        assert len(report.files) == len(files)
        # most files take the patch (the rest: full pydicom writes, files the
        # top-level walk declines); every row is checked either way
        assert len(patched[0]) >= len(files) // 2
        _check_like_a_fresh_index(ws, out, len(files))


@pytest.mark.parametrize("name", sorted(FALLBACK_SETS))
def test_edits_the_patch_cannot_express_are_indexed_afresh(study, tmp_path, monkeypatch, name):
    ws, root = _indexed_copy(study, tmp_path)
    with ws:
        files = sorted((root / "1_CT").glob("*.dcm"))
        patched = _capture_patched(monkeypatch)
        batch = BatchEdit(files, workspace=ws)
        _push(batch, FALLBACK_SETS[name])
        out = tmp_path / "out"
        batch.save(out=out, progress=False, processes=1)
        assert patched == [] or patched == [set()]
        _check_like_a_fresh_index(ws, out, len(files))


def test_uid_regeneration_is_indexed_afresh(study, tmp_path, monkeypatch):
    ws, root = _indexed_copy(study, tmp_path)
    with ws:
        files = sorted((root / "1_CT").glob("*.dcm"))
        patched = _capture_patched(monkeypatch)
        batch = BatchEdit(files, workspace=ws)
        batch.set("PatientName", "Doe^Jane")
        out = tmp_path / "out"
        batch.save(out=out, progress=False, processes=1, regenerate_uids=True)
        assert patched == [set()]
        _check_like_a_fresh_index(ws, out, len(files))


def test_stale_or_missing_source_rows_are_indexed_afresh(study, tmp_path, monkeypatch):
    ws, root = _indexed_copy(study, tmp_path)
    with ws:
        files = sorted((root / "1_CT").glob("*.dcm"))
        stale = files[3]
        data = pydicom.dcmread(stale)
        data.StudyDescription = "changed after indexing"
        data.save_as(stale, enforce_file_format=True)  # size and mtime change
        touched = files[5]
        st = touched.stat()
        os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        missing = files[7]
        ws.sql("DELETE FROM instances WHERE file_path = ?", [str(missing)])
        patched = _capture_patched(monkeypatch)
        batch = BatchEdit(files, workspace=ws)
        batch.set("PatientName", "Doe^Jane")
        out = tmp_path / "out"
        batch.save(out=out, progress=False, processes=1)
        skipped = {str(out / f.name) for f in (stale, touched, missing)}
        assert patched[0] == {str(out / f.name) for f in files} - skipped
        _check_like_a_fresh_index(ws, out, len(files))
        assert _rows(ws, out)[str(out / stale.name)]["StudyDescription"] == (
            "changed after indexing"
        )


def test_worker_processes_give_the_same_rows(study, tmp_path, monkeypatch):
    ws, root = _indexed_copy(study, tmp_path)
    with ws:
        files = sorted(root.rglob("*.dcm"))
        patched = _capture_patched(monkeypatch)
        batch = BatchEdit(files, workspace=ws)
        _push(batch, EDIT_SETS["numbers"] + EDIT_SETS["person_name_non_ascii"])
        out = tmp_path / "out"
        batch.save(out=out, progress=False, processes=2)
        assert len(patched[0]) == len(files)
        _check_like_a_fresh_index(ws, out, len(files))


def test_in_place_edit_rows_equal_a_fresh_index(study, tmp_path, monkeypatch):
    ws, root = _indexed_copy(study, tmp_path)
    with ws:
        files = sorted(root.rglob("*.dcm"))
        patched = _capture_patched(monkeypatch)
        batch = BatchEdit(files, workspace=ws)
        _push(batch, EDIT_SETS["add_and_delete"] + EDIT_SETS["dates_and_times"])
        batch.save(overwrite=True, progress=False, processes=1)
        assert patched[0] == {str(f) for f in files}
        again = ws.index(root, progress=False, workers=1)
        assert again.indexed == 0 and again.unchanged == len(files)
        with dfl.Workspace(ephemeral=True) as fresh:
            fresh.index(root, progress=False, workers=1)
            assert _rows(ws, root) == _rows(fresh, root)


def test_index_patch_of_a_written_file(tmp_path):
    src = TEST_FILES / "CT_small.dcm"
    dst = tmp_path / "ct.dcm"
    edits = [Edit("set", "PatientName", "Doe^Jane"), Edit("delete", "PatientID")]
    (result,) = _write.run_chunk([(src, dst, None)], edits, False, "run", index_patches=True)
    assert isinstance(result, _write.Written) and len(result) == 2
    patch = result.patch
    st, before = dst.stat(), src.stat()
    assert (patch.size, patch.mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert (patch.src_size, patch.src_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert patch.values == ((0x00100010, "PatientName", "Doe^Jane"),)
    assert patch.deleted == ("PatientID",)
    (plain,) = _write.run_chunk([(src, tmp_path / "b.dcm", None)], edits, False, "run")
    assert type(plain) is list


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_the_short_walk_finds_what_the_whole_walk_finds():
    edits = [
        Edit("set", "PatientName", "Doe^Jane"),
        Edit("delete", "PatientID"),
        Edit("set", "StationName", "S1"),
        Edit("set", "WindowWidth", ["400", "1500"]),
    ]
    fast = 0
    for path in sorted(p for p in TEST_FILES.rglob("*.dcm") if p.is_file()):
        try:
            done = fast_edit(path.read_bytes(), edits)
        except DicomflowError:
            continue
        if done is None:
            continue
        new, changes = done
        whole = _write.index_values(new, changes, None, "splice")
        assert _write.index_values(new, changes, None, "fast") == whole, path.name
        fast += whole is not None
    assert fast >= 20


def test_one_file_saved_under_a_new_name(study, tmp_path, monkeypatch):
    ws, root = _indexed_copy(study, tmp_path)
    with ws:
        patched = _capture_patched(monkeypatch)
        editor = dfl.TagEditor(root / "1_CT" / "IM0001.dcm", workspace=ws)
        editor.set("PatientName", "Doe^Jane")
        target = tmp_path / "saved" / "renamed.dcm"
        editor.save(out=target)
        assert patched[0] == {str(target)}
        with dfl.Workspace(ephemeral=True) as fresh:
            fresh.index(target, progress=False, workers=1)
            assert _rows(ws, target.parent) == _rows(fresh, target.parent)
        again = ws.index(target, progress=False, workers=1)
        assert (again.indexed, again.unchanged) == (0, 1)
