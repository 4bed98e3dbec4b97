"""The tag editor panel's kernel side: paging, filters, validation, edits, save-as, state."""

from __future__ import annotations

import time
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

import dicomflow_lab as dfl
from dicomflow_lab.core.sample import write_sample_study
from dicomflow_lab.widgets import TagEditorPanel
from tests.widgets._capture import Sent, ask


@pytest.fixture
def ct(tmp_path) -> Path:
    src = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    block = src.private_block(0x0009, "DFL TEST", create=True)
    block.add_new(0x01, "LO", "private value")
    src.ReferencedSeriesSequence = Sequence([Dataset(), Dataset()])
    src.ReferencedSeriesSequence[0].SeriesInstanceUID = "1.2.3.4"
    src.ReferencedSeriesSequence[1].SeriesInstanceUID = "1.2.3.5"
    folder = tmp_path / "study"
    folder.mkdir()
    path = folder / "ct.dcm"
    src.save_as(path)
    return path


@pytest.fixture
def panel(ct) -> TagEditorPanel:
    p = TagEditorPanel(ct)
    yield p
    p.close()


def rows(panel, monkeypatch, **filters):
    return ask(panel, monkeypatch, kind="rows", offset=0, limit=500, **filters)


def test_rows_are_paged_and_filtered(panel, monkeypatch):
    everything = rows(panel, monkeypatch)
    total = everything["total"]
    assert total > 50
    first = ask(panel, monkeypatch, kind="rows", offset=0, limit=20)
    second = ask(panel, monkeypatch, kind="rows", offset=20, limit=20)
    assert first["total"] == second["total"] == total
    assert [r["path"] for r in first["rows"] + second["rows"]] == [
        r["path"] for r in everything["rows"][:40]
    ]
    meta = [r for r in everything["rows"] if r["tag"].startswith("(0002,")]
    assert meta and all(r["is_meta"] and not r["editable"] for r in meta)

    by_keyword = rows(panel, monkeypatch, query="patientname", field="keyword")["rows"]
    assert [r["keyword"] for r in by_keyword] == ["PatientName"]
    by_tag = rows(panel, monkeypatch, query="(0010,0010)", field="tag")["rows"]
    assert [r["keyword"] for r in by_tag] == ["PatientName"]
    assert rows(panel, monkeypatch, query="00100010", field="tag")["total"] == 1
    by_value = rows(panel, monkeypatch, query="compressedsamples^ct1", field="value")["rows"]
    assert "PatientName" in {r["keyword"] for r in by_value}
    assert rows(panel, monkeypatch, query="patientname", field="value")["total"] == 0

    nested = rows(panel, monkeypatch, query="1.2.3.5", field="value")["rows"]
    assert [r["path"] for r in nested] == [
        "(0008,1115)",
        "(0008,1115)[1]",
        "(0008,1115)[1].(0020,000E)",
    ]
    hidden = rows(panel, monkeypatch, query="1.2.3.5", field="value", toggled=["(0008,1115)"])
    assert [r["path"] for r in hidden["rows"]] == ["(0008,1115)"]

    private = rows(panel, monkeypatch, query="DFL TEST")["rows"]
    assert any(
        r["private_creator"] == "DFL TEST" and r["value"] == "private value" for r in private
    )


def test_sequences_expand_and_collapse(panel, monkeypatch):
    seq = "(0008,1115)"
    expanded = [r["path"] for r in rows(panel, monkeypatch)["rows"]]
    i = expanded.index(seq)
    assert expanded[i + 1 : i + 5] == [
        f"{seq}[0]",
        f"{seq}[0].(0020,000E)",
        f"{seq}[1]",
        f"{seq}[1].(0020,000E)",
    ]
    collapsed = rows(panel, monkeypatch, toggled=[seq])["rows"]
    assert [r["path"] for r in collapsed if r["path"].startswith(seq)] == [seq]
    assert next(r for r in collapsed if r["path"] == seq)["expanded"] is False
    none_open = rows(panel, monkeypatch, expand_all=False)["rows"]
    assert all(r["depth"] == 0 for r in none_open)
    one_open = rows(panel, monkeypatch, expand_all=False, toggled=[seq])["rows"]
    assert f"{seq}[1].(0020,000E)" in [r["path"] for r in one_open]
    nested = next(r for r in one_open if r["path"] == f"{seq}[1].(0020,000E)")
    assert nested["depth"] == 1 and nested["editable"]


def test_bad_date_gets_a_validation_message_naming_tag_vr_and_rule(panel, monkeypatch):
    reply = ask(panel, monkeypatch, kind="validate", path="StudyDate", value="2024-13-45")
    assert reply["ok"] is True and reply["valid"] is False
    assert "(0008,0020)" in reply["message"] and "StudyDate" in reply["message"]
    assert "DA" in reply["message"] and "2024-13-45" in reply["message"]
    good = ask(panel, monkeypatch, kind="validate", path="StudyDate", value="20241231")
    assert good["valid"] is True
    refused = ask(panel, monkeypatch, kind="edit", op="set", path="StudyDate", value="2024-13-45")
    assert refused["ok"] is False and "DA" in refused["error"]["message"]
    assert panel.n_pending == 0
    meta = ask(panel, monkeypatch, kind="validate", path="(0002,0010)", value="1.2")
    assert meta["valid"] is False and "group 0002" in meta["message"]


def test_edit_undo_redo_and_pending_diff(panel, monkeypatch):
    assert not panel.can_undo and not panel.can_redo
    revision = panel.revision
    ask(panel, monkeypatch, kind="edit", op="set", path="PatientName", value="Doe^Jane")
    ask(panel, monkeypatch, kind="edit", op="add", path="SeriesDescription", value="EDITED")
    ask(panel, monkeypatch, kind="edit", op="delete", path="(0009,1001)")
    assert panel.n_pending == 3 and panel.can_undo and panel.revision > revision
    changes = ask(panel, monkeypatch, kind="changes")["changes"]
    assert [(c["keyword"], c["old"], c["new"]) for c in changes][:2] == [
        ("PatientName", "CompressedSamples^CT1", "Doe^Jane"),
        ("SeriesDescription", None, "EDITED"),
    ]
    row = rows(panel, monkeypatch, query="patientname", field="keyword")["rows"][0]
    assert row["value"] == "Doe^Jane" and row["changed"] is True

    ask(panel, monkeypatch, kind="undo")
    assert panel.n_pending == 2 and panel.can_redo
    ask(panel, monkeypatch, kind="redo")
    assert panel.n_pending == 3 and not panel.can_redo
    ask(panel, monkeypatch, kind="edit", op="add_item", path="(0008,1115)")
    assert rows(panel, monkeypatch, query="", toggled=[])["total"] > 0
    ask(panel, monkeypatch, kind="edit", op="remove_item", path="(0008,1115)", index=0)
    assert panel.editor.dataset.ReferencedSeriesSequence[0].SeriesInstanceUID == "1.2.3.5"
    for _ in range(5):
        ask(panel, monkeypatch, kind="undo")
    assert panel.n_pending == 0
    empty = ask(panel, monkeypatch, kind="undo")
    assert empty["ok"] is False and "undo" in empty["error"]["message"]


def test_save_as_writes_a_new_file_and_never_in_place(panel, ct, monkeypatch, tmp_path):
    before = ct.read_bytes()
    ask(panel, monkeypatch, kind="edit", op="set", path="PatientName", value="Doe^Jane")
    info = ask(panel, monkeypatch, kind="info")
    assert info["default_out"] == str(ct.parent.parent / "study_edited")
    same = ask(panel, monkeypatch, kind="save", out=str(ct.parent))
    assert same["ok"] is False and "overwrite originals" in same["error"]["message"]

    out = tmp_path / "out"
    reply = ask(panel, monkeypatch, kind="save", out=str(out))
    assert reply["ok"] is True and reply["written"] == 1 and reply["folder"] == str(out)
    written = pydicom.dcmread(out / ct.name)
    assert str(written.PatientName) == "Doe^Jane"
    assert written.PixelData == pydicom.dcmread(ct).PixelData
    assert ct.read_bytes() == before
    assert panel.n_pending == 0

    relative = ask(panel, monkeypatch, kind="save", out="../beside")
    assert relative["ok"] is True and (ct.parent.parent / "beside" / ct.name).is_file()


def test_overwrite_keeps_a_backup(panel, ct, monkeypatch):
    ask(panel, monkeypatch, kind="edit", op="set", path="PatientID", value="NEW-ID")
    reply = ask(panel, monkeypatch, kind="save", overwrite=True)
    assert reply["ok"] is True
    assert pydicom.dcmread(ct).PatientID == "NEW-ID"
    backups = list(ct.parent.glob(".*dfl-backup*"))
    assert backups and pydicom.dcmread(backups[0]).PatientID != "NEW-ID"


def test_no_patient_values_in_widget_state(panel, ct, monkeypatch):
    ds = pydicom.dcmread(ct)
    ask(panel, monkeypatch, kind="edit", op="set", path="PatientName", value="Secret^Name")
    rows(panel, monkeypatch)
    ask(panel, monkeypatch, kind="validate", path="PatientID", value="SECRET-ID")
    state = repr(panel.get_state())
    for value in (
        "Secret^Name",
        "SECRET-ID",
        str(ds.PatientName),
        ds.PatientID,
        ds.StudyInstanceUID,
        ds.SOPInstanceUID,
        str(ct),
        ct.name,
        "private value",
    ):
        assert value not in state


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ({"kind": "rows", "id": 1, "offset": 0, "limit": 5000}, "'limit'"),
        ({"kind": "rows", "id": 1, "offset": -1, "limit": 5}, "'offset'"),
        ({"kind": "rows", "id": 1, "offset": 0, "limit": 5, "field": "sql"}, "'field'"),
        ({"kind": "rows", "id": 1, "offset": 0, "limit": 5, "toggled": "x"}, "'toggled'"),
        ({"kind": "edit", "id": 1, "op": "rm -rf", "path": "PatientName"}, "'op'"),
        ({"kind": "edit", "id": 1, "op": "set", "path": 7}, "'path'"),
        ({"kind": "validate", "id": 1, "path": "PatientName", "value": 3}, "'value'"),
        ({"kind": "save", "id": 1, "overwrite": "yes"}, "'overwrite'"),
        ({"kind": "apply", "id": 1, "scope": "everything"}, "'scope'"),
        ({"kind": "frame", "id": 1, "series": "s1", "index": 0}, "unknown message kind"),
        ({"kind": "rows", "id": True, "offset": 0, "limit": 5}, "'id'"),
    ],
)
def test_bad_requests_get_an_error_reply(panel, monkeypatch, content, error):
    sent = Sent(panel, monkeypatch)
    panel._on_message(panel, content, [])
    reply, _ = sent.last
    assert reply["ok"] is False and error in reply["error"]["message"]


def test_five_thousand_elements_are_served_in_pages_quickly(tmp_path, monkeypatch):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    items = []
    for i in range(500):
        item = Dataset()
        item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        item.ReferencedSOPInstanceUID = f"1.2.3.{i}"
        item.ReferencedFrameNumber = str(i + 1)
        item.CodeValue = f"C{i}"
        item.CodeMeaning = f"meaning {i}"
        item.CodingSchemeDesignator = "DCM"
        item.ReferencedSegmentNumber = i % 7
        item.TextValue = f"text {i}"
        items.append(item)
    ds.ReferencedImageSequence = Sequence(items)
    path = tmp_path / "big.dcm"
    ds.save_as(path)
    started = time.perf_counter()
    panel = TagEditorPanel(path)
    opened = time.perf_counter() - started
    assert panel.n_rows > 4000
    started = time.perf_counter()
    page = ask(panel, monkeypatch, kind="rows", offset=2000, limit=200)
    assert len(page["rows"]) == 200 and page["total"] > 4500
    filtered = ask(panel, monkeypatch, kind="rows", offset=0, limit=200, query="meaning 49")
    elapsed = time.perf_counter() - started
    matches = [r for r in filtered["rows"] if r["value"].startswith("meaning 49")]
    assert len(matches) == 11  # meaning 49, 490..499
    assert filtered["total"] == 1 + 2 * 11  # with their sequence and items
    ask(panel, monkeypatch, kind="edit", op="set", path="(0008,1140)[3].(0008,0104)", value="x")
    assert opened < 5 and elapsed < 2, (opened, elapsed)
    panel.close()


def test_opens_from_a_study_a_viewer_and_a_dataset(tmp_path, monkeypatch):
    sample = write_sample_study(tmp_path / "s", ct_slices=3, ct_size=16, mr_slices=2, mr_size=16)
    ws = dfl.Workspace(tmp_path / "ws")
    viewer = dfl.open(sample.path, workspace=ws, progress=False)
    panel = TagEditorPanel.for_viewer(viewer)
    assert panel.editor.path == Path(viewer._locate(viewer.series_key, viewer.frame)[0])
    assert panel.can_apply
    study = dfl.open(sample.path, workspace=ws, progress=False, view=False)
    from_study = TagEditorPanel(study)
    assert from_study.editor.path is not None
    in_memory = TagEditorPanel(pydicom.dcmread(get_testdata_file("CT_small.dcm")))
    assert not in_memory.can_apply and in_memory.n_rows > 50
    out = tmp_path / "mem"
    assert ask(in_memory, monkeypatch, kind="save", out=str(out))["written"] == 1
    assert len(list(out.glob("*.dcm"))) == 1
    for widget in (panel, from_study, in_memory, viewer):
        widget.close()
    ws.close()


def test_apply_to_series_writes_every_file_with_progress(tmp_path, monkeypatch):
    sample = write_sample_study(tmp_path / "s", ct_slices=6, ct_size=16, mr_slices=2, mr_size=16)
    ws = dfl.Workspace(tmp_path / "ws")
    ct_files = sorted(sample.series[0].files)
    panel = TagEditorPanel(ct_files[0], workspace=ws)
    ask(panel, monkeypatch, kind="edit", op="set", path="SeriesDescription", value="BATCH")
    out = tmp_path / "series_out"
    seen: list[int] = []
    panel.observe(lambda c: seen.append(c["new"]), names=["job_done"])
    reply = ask(panel, monkeypatch, kind="apply", scope="series", out=str(out))
    assert reply["ok"] is True and reply["started"] is True
    panel._job.join(60)
    assert panel.job_state == "done", panel.job_message
    assert panel.job_done == panel.job_total == len(ct_files)
    assert seen and seen[-1] == len(ct_files)
    written = sorted(out.rglob("*.dcm"))
    assert len(written) == len(ct_files)
    assert {pydicom.dcmread(f).SeriesDescription for f in written} == {"BATCH"}
    assert {pydicom.dcmread(f).SeriesDescription for f in ct_files} != {"BATCH"}
    assert str(out) not in repr(panel.get_state())
    panel.close()
    ws.close()


def test_a_failed_apply_job_reports_without_paths_in_traits(tmp_path, monkeypatch):
    sample = write_sample_study(tmp_path / "s", ct_slices=3, ct_size=16, mr_slices=2, mr_size=16)
    ws = dfl.Workspace(tmp_path / "ws")
    ct_files = sorted(sample.series[0].files)
    panel = TagEditorPanel(ct_files[0], workspace=ws)
    out = tmp_path / "taken"
    out.mkdir()
    (out / Path(ct_files[0]).name).write_bytes(b"already here")
    ask(panel, monkeypatch, kind="edit", op="set", path="SeriesDescription", value="BATCH")
    sent = Sent(panel, monkeypatch)
    panel._on_message(panel, {"kind": "apply", "id": 5, "scope": "study", "out": str(out)}, [])
    assert sent.messages[0][0]["ok"] is True
    panel._job.join(60)
    assert panel.job_state == "error"
    assert "exists" in panel.job_error and str(out) in panel.job_error
    assert str(out) not in repr(panel.get_state())
    push = sent.last[0]
    assert push["kind"] == "job" and push["state"] == "error" and "exists" in push["message"]
    busy = ask(panel, monkeypatch, kind="apply", scope="series", out=str(Path(ct_files[0]).parent))
    assert busy["ok"] is False  # the source's own folder needs "overwrite originals"
    panel.close()
    ws.close()


def test_the_viewer_itself_opens_its_current_instance(tmp_path):
    sample = write_sample_study(tmp_path / "s", ct_slices=3, ct_size=16, mr_slices=2, mr_size=16)
    ws = dfl.Workspace(tmp_path / "ws")
    viewer = dfl.open(sample.path, workspace=ws, progress=False)
    viewer.frame = 2
    panel = TagEditorPanel(viewer)
    assert str(panel.editor.path) == viewer._locate(viewer.series_key, 2)[0]
    panel.close()
    viewer.close()
    ws.close()
