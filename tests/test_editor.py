"""The public editor: round trip of pydicom's corpus, batch edits, safe writes, undo."""

from __future__ import annotations

import hashlib
import io
import subprocess
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.errors import InvalidDicomError

import dicomflow_lab as dfl
from dicomflow_lab import editor as editor_module
from dicomflow_lab.core import _write
from dicomflow_lab.core.sample import write_sample_study
from dicomflow_lab.core.tags import tag_rows
from dicomflow_lab.editor import BatchEdit, TagEditor
from dicomflow_lab.errors import EditError

from ._peers import require_program
from .conftest import TEST_FILES


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _corpus() -> list[Path]:
    return sorted(p for p in TEST_FILES.rglob("*") if p.is_file())


def _without_group_lengths(ds: pydicom.Dataset) -> pydicom.Dataset:
    # (gggg,0000) group lengths are retired; pydicom does not write them (PS3.5 7.2)
    for elem in list(ds):
        if elem.tag.element == 0:
            del ds[elem.tag]
    return ds


def _readable(path: Path) -> pydicom.Dataset | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(path)
            ds.save_as(io.BytesIO(), enforce_file_format=True)  # pydicom itself can write it
        except (InvalidDicomError, Exception):
            return None
    return ds


def _dcmdump_ok(dcmdump: str, path: Path) -> bool:
    return subprocess.run([dcmdump, "-q", str(path)], capture_output=True).returncode == 0


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns about odd corpus values
def test_round_trip_of_every_bundled_file(tmp_path):
    dcmdump = require_program("dcmdump")
    done = 0
    for i, source in enumerate(_corpus()):
        original = _readable(source)
        if original is None:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rows = tag_rows(original)
            ed = TagEditor(source)
            editable = [r for r in rows if r.editable and r.depth == 0 and r.value]
            if editable:  # a no-op edit: set a value to itself
                row = editable[0]
                ed.set(row.path, ed.dataset[row.path.strip("()").replace(",", "")].value, row.vr)
                assert len(ed.pending()) == 1
            (written,) = ed.save(out=tmp_path / str(i))
            back = pydicom.dcmread(written)
        assert written.name == source.name
        assert _without_group_lengths(back) == _without_group_lengths(original), source.name
        ts = original.file_meta.get("TransferSyntaxUID")
        assert back.file_meta.get("TransferSyntaxUID") == ts, source.name
        if "PixelData" in original:
            assert back.PixelData == original.PixelData, source.name
        if _dcmdump_ok(dcmdump, source):
            assert _dcmdump_ok(dcmdump, written), source.name
        done += 1
    assert done >= 100  # the corpus really went through


@pytest.mark.parametrize(
    ("charset", "name"),
    [("ISO_IR 100", "Müller^Jürgen"), ("ISO_IR 192", "山田^太郎=やまだ^たろう")],
)
def test_non_ascii_person_name_survives_a_save(tmp_path, charset, name):
    ed = TagEditor(TEST_FILES / "CT_small.dcm")
    ed.set("SpecificCharacterSet", charset)
    ed.set("PatientName", name)
    (written,) = ed.save(out=tmp_path)
    back = pydicom.dcmread(written)
    assert back.SpecificCharacterSet == charset
    assert str(back.PatientName) == name


def test_editor_undo_redo_and_preview():
    ed = dfl.TagEditor(TEST_FILES / "CT_small.dcm")
    old = str(ed.dataset.PatientName)
    ed.set("PatientName", "Doe^Jane")
    ed.delete("PatientID")
    preview = ed.preview()
    assert list(preview.columns) == ["file", "path", "keyword", "op", "old", "new"]
    assert preview[["path", "old", "new"]].values.tolist()[0] == ["(0010,0010)", old, "Doe^Jane"]
    ed.undo()
    assert "PatientID" in ed.dataset and len(ed.pending()) == 1
    ed.redo()
    assert "PatientID" not in ed.dataset
    with pytest.raises(EditError, match="VR DA"):
        ed.set("StudyDate", "yesterday")
    assert len(ed.pending()) == 2  # a refused value is not pending
    table = ed.table()
    assert table.loc[table.keyword == "PatientName", "value"].item() == "Doe^Jane"


def test_editor_of_a_dataset_never_changes_the_callers_object(tmp_path):
    ds = pydicom.dcmread(TEST_FILES / "CT_small.dcm")
    ed = TagEditor(ds)
    ed.set("PatientName", "Doe^Jane")
    assert ds.PatientName != "Doe^Jane"
    (written,) = ed.save(out=tmp_path / "x.dcm")
    assert pydicom.dcmread(written).PatientName == "Doe^Jane"


# -- batch edits of a 100-file series ------------------------------------------------


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("study")
    write_sample_study(root, ct_slices=100, ct_size=64, mr_slices=1, mr_size=32)
    return root


@pytest.fixture
def series(study_dir, tmp_path):
    """A private copy of the sample study, indexed in an ephemeral workspace."""
    import shutil

    root = tmp_path / "in"
    shutil.copytree(study_dir, root)
    ws = dfl.Workspace(ephemeral=True)
    ws.index(root, progress=False, workers=1)
    ct = ws.series().query("Modality == 'CT'")
    yield ws, root, ct.SeriesInstanceUID.item()
    ws.close()


def test_batch_edit_save_as_preview_index_and_undo(series, tmp_path, monkeypatch):
    ws, root, series_uid = series
    files = sorted((root / "1_CT").glob("*.dcm"))
    assert len(files) == 100
    before = {p: _sha(p) for p in files}
    old_names = {str(pydicom.dcmread(p, stop_before_pixels=True).PatientName) for p in files}
    batch = ws.edit(series_uid)
    assert isinstance(batch, BatchEdit) and len(batch.files) == 100
    batch.set("PatientName", "Edited^Name")
    batch.set("StudyDescription", "edited")
    batch.delete("InstitutionName")
    with pytest.raises(EditError, match="VR TM"):
        batch.set("StudyTime", "25:00")
    preview = batch.preview()
    assert len(preview) == 300 and set(preview.file) == {str(p) for p in files}
    names = preview[preview.keyword == "PatientName"]
    assert set(names.old) == old_names and set(names.new) == {"Edited^Name"}
    assert all(before[p] == _sha(p) for p in files)  # preview writes nothing

    writes = []
    real_add = _write._Staged.add

    def spy_add(self, target, data):
        writes.append(Path(target))
        return real_add(self, target, data)

    monkeypatch.setattr(_write._Staged, "add", spy_add)
    out = tmp_path / "out"
    report = batch.save(out=out, progress=False)
    assert len(report.files) == 100 and report.changes == 300 - _absent(files)
    assert sorted(writes) == sorted(report.files)  # each file through the staged writer
    assert not list(out.rglob(".*.tmp"))
    assert all(before[p] == _sha(p) for p in files)  # originals untouched
    for src in files[:3]:
        new = out / src.name
        a, b = pydicom.dcmread(src), pydicom.dcmread(new)
        assert b.PatientName == "Edited^Name" and "InstitutionName" not in b
        assert b.PixelData == a.PixelData
        assert b.file_meta.TransferSyntaxUID == a.file_meta.TransferSyntaxUID
    indexed = ws.sql(
        "SELECT PatientName, count(*) AS n FROM instances WHERE starts_with(file_path, ?) "
        "GROUP BY 1",
        [str(out)],
    )
    assert indexed.values.tolist() == [["Edited^Name", 100]]
    journal = ws.sql("SELECT * FROM edits WHERE run_id = ?", [report.run_id])
    assert len(journal) == report.changes and set(journal.user) == {editor_module._user()}

    undone = ws.undo(report.run_id)
    assert len(undone.removed) == 100 and not any(p.exists() for p in report.files)
    left = ws.sql("SELECT count(*) FROM instances WHERE starts_with(file_path, ?)", [str(out)])
    assert left.iloc[0, 0] == 0
    assert all(before[p] == _sha(p) for p in files)
    assert ws.sql("SELECT count(*) FROM edits WHERE op = 'undo'").iloc[0, 0] == 100
    with pytest.raises(EditError, match="nothing to undo"):
        ws.undo(report.run_id)


def _absent(files: list[Path]) -> int:
    return sum("InstitutionName" not in pydicom.dcmread(p, stop_before_pixels=True) for p in files)


def test_batch_overwrite_keeps_backups_and_undo_restores_them(series):
    ws, root, series_uid = series
    files = sorted((root / "1_CT").glob("*.dcm"))
    before = {p: _sha(p) for p in files}
    batch = ws.edit(ws.instances(series_uid))
    batch.set("PatientName", "InPlace^Edit")
    with pytest.raises(FileExistsError):
        batch.save(out=root / "1_CT", progress=False)  # never over the originals by accident
    report = batch.save(overwrite=True, progress=False)
    assert len(report.backups) == 100
    assert all(b.is_relative_to(ws.files_dir / "backups") for b in report.backups)
    assert all(before[p] != _sha(p) for p in files)
    assert {_sha(b) for b in report.backups} == set(before.values())
    assert set(ws.instances(series_uid).PatientName) == {"InPlace^Edit"}

    second = ws.edit(series_uid)
    second.set("StudyDescription", "second run")
    report2 = second.save(overwrite=True, progress=False)
    with pytest.raises(EditError, match=f"undo {report2.run_id} first"):
        ws.undo(report.run_id)
    assert len(ws.undo(report2.run_id).restored) == 100
    first = int(
        ws.sql("SELECT min(edit_id) FROM edits WHERE run_id = ?", [report.run_id]).iloc[0, 0]
    )
    one = ws.undo(first)  # an edit_id restores its file
    assert len(one.restored) == 1 and before[one.restored[0]] == _sha(one.restored[0])
    rest = ws.undo(report.run_id)
    assert len(rest.restored) == 99
    assert all(before[p] == _sha(p) for p in files)
    assert set(ws.instances(series_uid).PatientName) != {"InPlace^Edit"}


def test_batch_regenerates_uids_consistently(series, tmp_path):
    ws, _root, series_uid = series
    batch = ws.edit(series_uid)
    report = batch.save(out=tmp_path / "anon", regenerate_uids=True, progress=False)
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in report.files]
    assert {h.SeriesInstanceUID for h in headers} != {series_uid}
    assert len({h.SeriesInstanceUID for h in headers}) == 1
    assert len({h.StudyInstanceUID for h in headers}) == 1
    assert len({h.SOPInstanceUID for h in headers}) == 100
    assert all(h.file_meta.MediaStorageSOPInstanceUID == h.SOPInstanceUID for h in headers)


def test_tag_editor_without_workspace_overwrite_keeps_a_dot_backup(tmp_path):
    import shutil

    path = tmp_path / "ct.dcm"
    shutil.copy(TEST_FILES / "CT_small.dcm", path)
    before = _sha(path)
    ed = TagEditor(path)
    ed.set("PatientName", "Doe^Jane")
    ed.save(overwrite=True)
    backup = tmp_path / ".ct.dcm.dfl-backup"
    assert _sha(backup) == before and pydicom.dcmread(path).PatientName == "Doe^Jane"
    with pytest.raises(ValueError, match="out="):
        TagEditor(path).save()


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_implicit.dcm", "JPEG2000.dcm"])
def test_fast_path_writes_what_a_full_pydicom_write_would(tmp_path, monkeypatch, name):
    edits = [
        ("set", "PatientName", "Doe^Jane"),
        ("delete", "PatientID", None),
        ("set", "ImageComments", "new element, inserted in tag order"),
        ("set", "(0009,1001)", "private", "LO"),
        ("add_item", "ReferencedSeriesSequence", None),
        ("set", "ReferencedSeriesSequence[0].SeriesInstanceUID", "1.2.3"),
        ("set", "(0029,1001)", "after pixel data? no: before", "LO"),
    ]

    def run(out):
        batch = BatchEdit([TEST_FILES / name])
        for op, path, value, *vr in edits:
            if op == "delete":
                batch.delete(path)
            elif op == "add_item":
                batch.add_item(path)
            else:
                batch.set(path, value, *vr)
        return batch.save(out=out, progress=False).files[0]

    full_calls = []
    real = _write.encode_dataset
    monkeypatch.setattr(
        _write, "encode_dataset", lambda ds, name: (full_calls.append(name), real(ds, name))[1]
    )
    fast = run(tmp_path / "fast")
    assert full_calls == []  # the splice was taken
    monkeypatch.setattr(_write, "splice", lambda *a: None)  # force the full write
    full = run(tmp_path / "full")
    assert full_calls == [name]
    a, b = pydicom.dcmread(fast), pydicom.dcmread(full)
    assert _without_group_lengths(a) == _without_group_lengths(b)
    assert a.file_meta == b.file_meta
    assert a.PixelData == b.PixelData == pydicom.dcmread(TEST_FILES / name).PixelData
    assert a.ImageComments.startswith("new element")
    assert a.ReferencedSeriesSequence[0].SeriesInstanceUID == "1.2.3"
    original = (TEST_FILES / name).read_bytes()
    assert fast.read_bytes()[:132] == original[:132]  # preamble (a TIFF header here) kept


def test_worker_processes_write_the_same_files_as_threads(series, tmp_path):
    _ws, root, _series_uid = series
    files = sorted((root / "1_CT").glob("*.dcm"))[:20]
    outputs = []
    for name, kw in [("threads", {"processes": 1}), ("procs", {"processes": 2})]:
        batch = BatchEdit(files)
        batch.set("PatientName", "Doe^Jane")
        batch.set("StudyDescription", "edited")
        report = batch.save(out=tmp_path / name, progress=False, **kw)
        outputs.append([_sha(p) for p in report.files])
    assert outputs[0] == outputs[1] and len(outputs[0]) == 20


def test_a_refused_file_stops_the_run_and_what_was_written_is_journaled(series, tmp_path):
    ws, root, _series_uid = series
    files = sorted((root / "1_CT").glob("*.dcm"))[:5]
    victim = pydicom.dcmread(files[3])
    victim.SpecificCharacterSet = "ISO_IR 6"
    victim.save_as(files[3])
    batch = BatchEdit(files, workspace=ws)
    batch.set("PatientName", "Müller^Jürgen")  # fine in ISO_IR 100 (the sample), not ISO_IR 6
    with pytest.raises(EditError, match=r"IM0004.dcm: .*VR PN: value not encodable"):
        batch.save(out=tmp_path / "out", progress=False, workers=1)
    written = sorted(p.name for p in (tmp_path / "out").glob("*.dcm"))
    assert written == [f.name for f in files[:3]]
    journal = ws.sql("SELECT DISTINCT new_file_path FROM edits WHERE op = 'set'")
    assert sorted(Path(p).name for p in journal.new_file_path) == written


def test_a_refused_file_with_worker_processes_stops_the_run_and_journals_the_rest(series, tmp_path):
    ws, root, _series_uid = series
    files = sorted((root / "1_CT").glob("*.dcm"))[:30]
    victim = pydicom.dcmread(files[12])
    victim.SpecificCharacterSet = "ISO_IR 6"
    victim.save_as(files[12])
    batch = BatchEdit(files, workspace=ws)
    batch.set("PatientName", "Müller^Jürgen")
    with pytest.raises(EditError, match=r"IM0013\.dcm: .*VR PN: value not encodable"):
        batch.save(out=tmp_path / "out", progress=False, processes=2)
    written = sorted(p.name for p in (tmp_path / "out").glob("*.dcm"))
    assert "IM0013.dcm" not in written and "IM0001.dcm" in written
    assert not list((tmp_path / "out").glob(".*.tmp"))
    journal = ws.sql("SELECT DISTINCT new_file_path FROM edits WHERE op = 'set'")
    assert sorted(Path(p).name for p in journal.new_file_path) == written


def test_a_file_encoded_against_its_transfer_syntax_is_refused_not_corrupted(tmp_path):
    """pydicom's SC_rgb_jpeg.dcm declares explicit VR and is encoded implicit VR."""
    import shutil
    import warnings

    import pytest as _pytest

    from dicomflow_lab.data import testfile
    from dicomflow_lab.editor import TagEditor
    from dicomflow_lab.errors import EditError

    src = tmp_path / "sc.dcm"
    shutil.copy(testfile("SC_rgb_jpeg.dcm"), src)
    before = src.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ed = TagEditor(src)
        ed.set("PatientName", "Doe^Jane")
        with _pytest.raises(EditError, match=r"sc\.dcm: .*explicit VR.*encoded implicit VR"):
            ed.save(out=tmp_path / "out")
    assert src.read_bytes() == before
    assert not list((tmp_path / "out").rglob("*.dcm")) if (tmp_path / "out").exists() else True


def test_save_reports_progress_and_cancels_as_one_undoable_run(tmp_path):
    import threading

    from dicomflow_lab.editor import BatchEdit
    from dicomflow_lab.workspace import Workspace
    from tests.conftest import write_series

    folder = tmp_path / "series"
    write_series(folder, 120)
    files = sorted(folder.glob("*.dcm"))
    cancel = threading.Event()
    seen: list[tuple[int, int]] = []

    def on_progress(done: int, total: int) -> None:
        seen.append((done, total))
        cancel.set()

    with Workspace(ephemeral=True) as ws:
        batch = BatchEdit(files, workspace=ws)
        batch.set("PatientName", "Cancel^Me")
        report = batch.save(
            tmp_path / "out", progress=False, processes=1, on_progress=on_progress, cancel=cancel
        )
        assert report.cancelled
        assert 0 < len(report.files) < len(files)
        assert seen[0][1] == len(files) and seen[-1][0] == len(report.files)
        assert sorted(tmp_path.joinpath("out").rglob("*.dcm")) == sorted(report.files)
        assert ws.edits()["run_id"].unique().tolist() == [report.run_id]
        ws.undo(report.run_id)
        assert not list(tmp_path.joinpath("out").rglob("*.dcm"))


def test_in_place_edit_keeps_the_files_permissions_and_the_backup_gets_them_too(tmp_path):
    import shutil
    import stat

    from dicomflow_lab.data import testfile
    from dicomflow_lab.editor import TagEditor

    src = tmp_path / "ct.dcm"
    shutil.copy(testfile("CT_small.dcm"), src)
    src.chmod(0o640)
    ed = TagEditor(src)
    ed.set("PatientName", "Perm^Kept")
    ed.save(overwrite=True)
    assert stat.S_IMODE(src.stat().st_mode) == 0o640
    backups = [p for p in tmp_path.iterdir() if p != src]
    assert backups and all(stat.S_IMODE(p.stat().st_mode) == 0o640 for p in backups)
