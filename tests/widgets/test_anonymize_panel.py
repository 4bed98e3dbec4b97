"""The anonymization panel's kernel side: choices, templates, key handling, preview, run.

The run goes through ``Workspace.anonymize`` when the workspace has it; the tests that
need a job that fails or names the key on purpose use :class:`StandIn`, a small real
anonymizer of their own (pydicom, real files), wrapped around a real workspace.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pydicom
import pytest

import dicomflow_lab as dfl
from dicomflow_lab.core.sample import write_sample_study
from dicomflow_lab.widgets._messages import ANONYMIZE_KINDS, parse_request
from dicomflow_lab.widgets.anonymize_panel import AnonymizePanel
from tests.widgets._capture import Sent, ask

KEY = "s3cret-panel-key-0123456789abcdef"


class StandIn:
    """A real workspace with a small real ``anonymize`` of the tests' own.

    It blanks the patient's name and ID, remaps UIDs with an HMAC of the key, writes
    ``<out>/<n>.dcm``, reports progress, stops between files when ``cancel`` is set and
    returns a report shaped like ``AnonymizationReport`` (``run_id``, ``status``, ``out``,
    ``df`` with ``file, out_file, status, reason``, action counts and ``"; "``-joined
    ``warnings``, ``verification``). ``fail_with`` makes it raise that message (after
    ``fail_after`` files); ``quarantine`` holds file indexes to quarantine.
    """

    def __init__(self, ws: dfl.Workspace) -> None:
        self._ws = ws
        self.calls: list[dict[str, Any]] = []
        self.fail_with: str | None = None
        self.fail_after = 0
        self.quarantine: set[int] = set()
        self.broken: set[int] = set()
        self.real_verify = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ws, name)

    def anonymize(self, selection, *, out, template, key, cancel, on_progress, **kwargs):
        self.calls.append({"selection": list(selection), "out": out, "template": template})
        self.calls[-1].update(kwargs)
        run_id = f"standin-{len(self.calls)}"
        out_dir = Path(out) if out else self._ws.files_dir / "anon" / run_id
        out_dir.mkdir(parents=True, exist_ok=True)
        rows, originals, status = [], [], "done"
        secret = key.encode() if isinstance(key, str) else key
        for i, src in enumerate(selection):
            if cancel is not None and cancel.is_set():
                status = "cancelled"
                break
            if self.fail_with is not None and i >= self.fail_after:
                raise ValueError(self.fail_with)
            if i in self.broken:
                rows.append({"file": src, "status": "failed", "reason": "truncated", "X": 0})
                continue
            ds = pydicom.dcmread(src)
            originals.append((str(ds.PatientName), str(ds.PatientID)))
            row = {"file": src, "out_file": None, "status": "quarantined", "X": 0}
            row["reason"] = "burned-in text"
            if i not in self.quarantine:
                ds.PatientName, ds.PatientID = "ANON", "ANON"
                for kw in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
                    mac = hmac.new(secret, str(ds[kw].value).encode(), hashlib.sha256)
                    setattr(ds, kw, "2.25." + str(int.from_bytes(mac.digest()[:16], "big")))
                ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
                dst = out_dir / f"{i:04d}.dcm"
                ds.save_as(dst)
                row.update(out_file=str(dst), status="written", reason=None, X=2)
            row["warnings"] = "no pixel rule; odd VR" if i == 0 else ""
            rows.append(row)
            on_progress(i + 1, len(selection))
        if self.real_verify:  # the project's verify: finds what this stand-in leaves
            from dicomflow_lab.anonymize.verify import verify

            residual = verify(list(selection), out_dir, template=template)
        else:
            found = []
            for dst in sorted(out_dir.glob("*.dcm")):
                data = dst.read_bytes()
                for name, pid in originals:
                    if name.encode("latin-1") in data or pid.encode() in data:
                        found.append({"check": "phi", "file": str(dst), "detail": "leak"})
            residual = pd.DataFrame(found)
        return SimpleNamespace(
            run_id=run_id,
            status=status,
            out=out_dir,
            df=pd.DataFrame(rows),
            verification=residual,
        )


@pytest.fixture
def sample(tmp_path):
    return write_sample_study(tmp_path / "s", ct_slices=3, ct_size=16, mr_slices=2, mr_size=16)


@pytest.fixture
def ws(tmp_path, sample):
    workspace = dfl.Workspace(tmp_path / "ws")
    workspace.index(sample.path, progress=False)
    yield workspace
    workspace.close()


@pytest.fixture
def panel(ws):
    p = AnonymizePanel(ws)
    yield p
    p.close()


def phi_of(sample) -> list[str]:
    """Identifying values of the sample study that must never be in state or messages."""
    values = [sample.PatientName, sample.PatientID, sample.StudyInstanceUID]
    values += [sample.PatientName.split("^")[0]]
    for series in sample.series:
        values += [series.SeriesInstanceUID, series.FrameOfReferenceUID, str(series.path)]
    ds = pydicom.dcmread(sample.series[0].files[0])
    values += [ds.SOPInstanceUID, str(ds.StudyDate), str(ds.get("AccessionNumber", "")) or "x"]
    return [v for v in values if v and len(v) >= 3]


needs_engine = pytest.mark.skipif(
    not hasattr(dfl.Workspace, "anonymize"), reason="Workspace.anonymize is not there yet"
)


def wait_done(panel) -> None:
    panel.wait(120)
    assert panel._job is not None and not panel._job.is_alive()


# --------------------------------------------------------------------------- choices


def test_choices_are_opaque_keys_without_patient_values(panel, sample, monkeypatch):
    kinds = [c["kind"] for c in panel.choices]
    assert kinds == ["study", "series", "series"]
    assert [c["key"] for c in panel.choices] == ["st1", "se1", "se2"]
    assert panel.selection_key == "st1" and panel.n_files == len(sample.files)
    assert panel.files == sorted(str(f) for f in sample.files)
    study = panel.choices[0]["label"]
    assert "CT/MR" in study and "2 series" in study and f"{len(sample.files)} inst." in study
    assert "Series 1 CT" in panel.choices[1]["label"]
    state = repr(panel.get_state())
    for value in phi_of(sample):
        assert value not in state, value
    ask(panel, monkeypatch, kind="select", selection="se2")
    assert panel.n_files == len(sample.series[1].files)


def test_show_phi_puts_patient_values_in_the_labels_on_purpose(ws, sample):
    shown = AnonymizePanel(ws, show_phi=True)
    assert sample.PatientID in shown.choices[0]["label"]
    assert sample.PatientName in shown.choices[0]["label"]
    shown.close()
    ws.set_setting("display.show_phi", True)
    by_setting = AnonymizePanel(ws)
    assert by_setting.show_phi and sample.PatientID in by_setting.choices[0]["label"]
    by_setting.close()


def test_a_query_result_becomes_the_default_selection(ws, sample, monkeypatch):
    query = ws.instances(sample.series[0].SeriesInstanceUID)
    p = AnonymizePanel(ws, query, template="research")
    assert p.choices[0] == {
        "key": "q",
        "kind": "query",
        "label": f"The selection the panel was opened with ({len(query)} files)",
        "n_files": len(query),
    }
    assert p.selection_key == "q" and p.files == sorted(query["file_path"])
    assert p.template_name == "research" and "retain_device_identity" in p.options
    assert p.template_base == "research"
    study = dfl.open(sample.path, workspace=ws, progress=False, view=False)
    from_study = AnonymizePanel(ws, study)
    assert from_study.n_files == len(sample.files)
    from_uid = AnonymizePanel(ws, sample.series[1].SeriesInstanceUID)
    assert from_uid.n_files == len(sample.series[1].files)
    for widget in (p, from_study, from_uid):
        widget.close()


def test_unknown_selection_keys_are_refused(panel, monkeypatch):
    missing = ask(panel, monkeypatch, kind="select", selection="st9")
    assert missing["ok"] is False and "refresh" in missing["error"]["message"]
    bad = ask(panel, monkeypatch, kind="select", selection="/etc/passwd")
    assert bad["ok"] is False and "'selection'" in bad["error"]["message"]
    no_q = ask(panel, monkeypatch, kind="select", selection="q")
    assert no_q["ok"] is False
    assert panel.selection_key == "st1"


# --------------------------------------------------------------------------- templates


def test_builtin_templates_and_option_toggles(panel, monkeypatch):
    info = ask(panel, monkeypatch, kind="info")
    assert info["templates"] == dfl.anonymize.list_templates()
    assert [o["value"] for o in info["options"]] == [o.value for o in dfl.anonymize.Option]
    assert info["default_out"].endswith("/anon/<run id>")
    assert panel.template_name == "basic" and panel.options == []

    reply = ask(panel, monkeypatch, kind="template", base="research")
    assert reply["template"]["name"] == "research" and panel.template_base == "research"
    assert set(panel.options) == {
        "retain_device_identity",
        "retain_patient_characteristics",
        "retain_long_modified_dates",
        "clean_descriptors",
    }
    reply = ask(panel, monkeypatch, kind="options", options=["retain_uids", "clean_graphics"])
    assert reply["template"]["options"] == ["retain_uids", "clean_graphics"]
    assert panel.template.name == "basic+retain_uids+clean_graphics"
    assert not panel.template.uids.remap
    both = ask(
        panel,
        monkeypatch,
        kind="options",
        options=["retain_long_full_dates", "retain_long_modified_dates"],
    )
    assert both["ok"] is False and "one of the longitudinal" in both["error"]["message"]
    unknown = ask(panel, monkeypatch, kind="options", options=["retain_everything"])
    assert unknown["ok"] is False and "unknown option" in unknown["error"]["message"]
    missing = ask(panel, monkeypatch, kind="template", base="nope")
    assert missing["ok"] is False and "basic" in missing["error"]["message"]


def test_user_template_json_keeps_its_overrides_when_options_toggle(panel, monkeypatch):
    text = json.dumps(
        {
            "name": "mine",
            "options": ["retain_uids"],
            "overrides": [{"selector": "StudyDescription", "action": "keep"}],
        }
    )
    reply = ask(panel, monkeypatch, kind="template", base="custom", json=text)
    assert reply["template"] == {
        "name": "mine",
        "description": "",
        "options": ["retain_uids"],
        "n_overrides": 1,
    }
    ask(panel, monkeypatch, kind="options", options=["retain_long_modified_dates"])
    tpl = panel.template
    assert tpl.name == "mine+options" and [o.selector for o in tpl.overrides] == [
        "StudyDescription"
    ]
    assert tpl.uids.remap and tpl.dates.shift == "per-patient"
    ask(panel, monkeypatch, kind="options", options=["retain_uids"])
    assert panel.template.name == "mine"  # back to the base's options: the base itself

    bad_json = ask(panel, monkeypatch, kind="template", base="custom", json='{"name": "x",}')
    assert bad_json["ok"] is False and bad_json["error"]["type"] == "TemplateError"
    assert "invalid JSON at line 1, column" in bad_json["error"]["message"]
    bad_schema = ask(
        panel,
        monkeypatch,
        kind="template",
        base="custom",
        json='{"name": "x", "overrides": [{"selector": "PatientNmae", "action": "keep"}]}',
    )
    message = bad_schema["error"]["message"]
    assert "overrides[0].selector" in message and "PatientName" in message
    empty = ask(panel, monkeypatch, kind="template", base="custom", json="  ")
    assert empty["ok"] is False and "empty" in empty["error"]["message"]
    assert panel.template.name == "mine"  # a refused template changes nothing


def test_the_python_api_matches_the_buttons(panel):
    panel.template = "retain-uids"
    assert panel.template_base == "retain-uids" and panel.options == ["retain_uids"]
    tpl = panel.set_options("retain_uids", dfl.anonymize.Option.CLEAN_GRAPHICS)
    assert tpl is panel.template and panel.options == ["retain_uids", "clean_graphics"]
    panel.template = dfl.anonymize.load_template("research")
    assert panel.template_base == "custom" and panel.template_name == "research"
    with pytest.raises(ValueError, match="must not be empty"):
        panel.preview("")
    with pytest.raises(ValueError, match="must not be empty"):
        panel.run(b"")


# --------------------------------------------------------------------------- the key


@pytest.mark.parametrize("kind", ["preview", "run"])
def test_an_empty_key_is_refused_with_a_clear_message(panel, monkeypatch, kind):
    reply = ask(panel, monkeypatch, kind=kind, key="")
    assert reply["ok"] is False
    assert "key" in reply["error"]["message"] and "empty" in reply["error"]["message"]
    assert panel.job_state == "idle" and panel._job is None


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ({"kind": "preview", "id": 1}, "'key'"),
        ({"kind": "preview", "id": 1, "key": 12345678}, "'key'"),
        ({"kind": "run", "id": 1, "key": "k" * 2000}, "'key'"),
        ({"kind": "preview", "id": 1, "key": "k", "sample": -1}, "'sample'"),
        ({"kind": "preview_rows", "id": 1, "offset": 0, "limit": 9999}, "'limit'"),
        ({"kind": "options", "id": 1, "options": "retain_uids"}, "'options'"),
        ({"kind": "template", "id": 1, "base": "../../etc/x"}, "'base'"),
        ({"kind": "report", "id": 1, "section": "everything"}, "'section'"),
        ({"kind": "frame", "id": 1, "series": "s1", "index": 0}, "unknown message kind"),
    ],
)
def test_bad_requests_get_an_error_reply_that_never_echoes_the_key(
    panel, monkeypatch, content, error
):
    sent = Sent(panel, monkeypatch)
    panel._on_message(panel, content, [])
    reply, _ = sent.last
    assert reply["ok"] is False and error in reply["error"]["message"]
    assert "12345678" not in json.dumps(reply) and "kkkk" not in json.dumps(reply)


def test_the_protocol_section_validates_every_kind():
    assert set(ANONYMIZE_KINDS) == {
        "info",
        "refresh",
        "select",
        "template",
        "options",
        "preview",
        "preview_rows",
        "run",
        "cancel",
        "report",
    }
    request = parse_request({"kind": "run", "id": 3, "key": KEY}, ANONYMIZE_KINDS)
    assert request["out"] == "" and request["key"] == KEY


# --------------------------------------------------------------------------- preview


def test_preview_pages_rows_and_sends_values_only_on_request(panel, sample, monkeypatch):
    pytest.importorskip("dicomflow_lab.anonymize.engine")
    ask(panel, monkeypatch, kind="select", selection="se1")
    reply = ask(panel, monkeypatch, kind="preview", key=KEY, sample=1)
    assert reply["ok"] is True and reply["total"] > 20 and reply["sample"] == 1
    assert reply["file"] == "IM0002.dcm" and reply["n_files"] == len(sample.series[0].files)
    assert sum(reply["counts"].values()) == reply["total"] == panel.preview_total
    assert {"X", "U"} <= set(reply["counts"])

    page = ask(panel, monkeypatch, kind="preview_rows", offset=0, limit=10)
    assert len(page["rows"]) == 10 and page["total"] == reply["total"]
    assert set(page["rows"][0]) == {"path", "tag", "keyword", "vr", "action", "rule"}
    rest = ask(panel, monkeypatch, kind="preview_rows", offset=10, limit=500)
    assert len(rest["rows"]) == reply["total"] - 10
    no_values = json.dumps([page, rest])
    for value in phi_of(sample):
        assert value not in no_values

    name = ask(panel, monkeypatch, kind="preview_rows", offset=0, limit=5, query="patientname")
    assert [r["keyword"] for r in name["rows"]] == ["PatientName"]
    shown = ask(
        panel, monkeypatch, kind="preview_rows", offset=0, limit=5, query="patientname", values=True
    )
    row = shown["rows"][0]
    assert row["before"] == sample.PatientName and row["after"] != sample.PatientName
    by_value = ask(
        panel, monkeypatch, kind="preview_rows", offset=0, limit=5, query=sample.PatientID
    )
    assert by_value["total"] == 0  # the filter never searches values (they stay hidden)

    state = repr(panel.get_state())
    assert KEY not in state
    for value in phi_of(sample):
        assert value not in state
    assert len(panel.preview_frame) == reply["total"]
    out_of_range = ask(panel, monkeypatch, kind="preview", key=KEY, sample=99)
    assert out_of_range["ok"] is False and "out of range" in out_of_range["error"]["message"]
    ask(panel, monkeypatch, kind="select", selection="se2")  # a new selection drops it
    assert panel.preview_total == 0 and panel.preview_frame is None
    gone = ask(panel, monkeypatch, kind="preview_rows", offset=0, limit=5)
    assert gone["ok"] is False and "Preview" in gone["error"]["message"]


def test_the_key_never_reaches_state_messages_or_logs(ws, sample, monkeypatch, caplog, tmp_path):
    stand_in = StandIn(ws)
    panel = AnonymizePanel(stand_in)
    sent = Sent(panel, monkeypatch)
    caplog.set_level(logging.DEBUG, logger="dicomflow_lab")
    engine = True
    try:
        import dicomflow_lab.anonymize.engine  # noqa: F401
    except ImportError:
        engine = False
    if engine:
        panel._on_message(panel, {"kind": "preview", "id": 1, "key": KEY}, [])
        panel._on_message(panel, {"kind": "preview_rows", "id": 2, "offset": 0, "limit": 500}, [])
    out = tmp_path / "anon_out"
    panel._on_message(panel, {"kind": "run", "id": 3, "key": KEY, "out": str(out)}, [])
    wait_done(panel)
    assert panel.job_state == "done", panel.job_message
    panel._on_message(panel, {"kind": "report", "id": 4, "section": "warnings"}, [])
    stand_in.fail_with = f"cannot use key {KEY} here"  # an error naming the key
    panel._on_message(panel, {"kind": "run", "id": 5, "key": KEY, "out": str(tmp_path / "two")}, [])
    wait_done(panel)
    assert panel.job_state == "error" and KEY not in (panel.job_error or "")
    assert "•••" in panel.job_error

    assert all(m[0]["ok"] for m in sent.messages if m[0]["kind"].endswith(":reply"))
    everything = repr(panel.get_state()) + json.dumps([m[0] for m in sent.messages])
    everything += "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    assert KEY not in everything
    assert stand_in.calls[0]["verify"] is True and stand_in.calls[0]["progress"] is False
    state = repr(panel.get_state())
    for value in [*phi_of(sample), str(out)]:
        assert value not in state, value
    panel.close()


# --------------------------------------------------------------------------- the run


def test_a_run_reports_progress_counts_and_verification(ws, sample, monkeypatch, tmp_path):
    stand_in = StandIn(ws)
    stand_in.quarantine = {2}
    stand_in.broken = {3}
    panel = AnonymizePanel(stand_in)
    ask(panel, monkeypatch, kind="options", options=["retain_uids"])
    seen: list[int] = []
    panel.observe(lambda c: seen.append(c["new"]), names=["job_done"])
    out = tmp_path / "out"
    reply = ask(panel, monkeypatch, kind="run", key=KEY, out=str(out))
    assert reply["ok"] is True and reply["started"] is True and reply["out"] == str(out)
    wait_done(panel)
    n = len(sample.files)
    assert panel.job_state == "done" and seen[-1] == panel.job_done == panel.job_total == n
    assert stand_in.calls[0]["template"] is panel.template
    assert stand_in.calls[0]["selection"] == sorted(str(f) for f in sample.files)
    assert panel.summary == {
        "run_id": "standin-1",
        "status": "done",
        "files": n,
        "written": n - 2,
        "quarantined": 1,
        "failed": 1,
        "warnings": 2,
        "counts": {"X": 2 * (n - 2)},
        "residual": 0,
    }
    assert "verified: 0 residual" in panel.job_message
    quarantined = ask(panel, monkeypatch, kind="report", section="quarantined")
    assert quarantined["total"] == 1
    assert quarantined["rows"][0] == {
        "file": "1_CT/IM0003.dcm",
        "status": "quarantined",
        "reason": "burned-in text",
    }
    assert quarantined["out"] == str(out)
    warnings = ask(panel, monkeypatch, kind="report", section="warnings")
    assert warnings["rows"] == [
        {"file": "1_CT/IM0001.dcm", "warning": "no pixel rule"},
        {"file": "1_CT/IM0001.dcm", "warning": "odd VR"},
    ]
    failed = ask(panel, monkeypatch, kind="report", section="failed")["rows"]
    assert failed == [{"file": "2_MR/IM0001.dcm", "status": "failed", "reason": "truncated"}]
    assert "1 failed or skipped" in panel.job_message
    assert ask(panel, monkeypatch, kind="report", section="residual")["total"] == 0
    again = ask(panel, monkeypatch, kind="run", key=KEY, out=str(out))
    assert again["ok"] is False and "not empty" in again["error"]["message"]
    panel.close()


def test_cancel_stops_between_files(ws, sample, monkeypatch, tmp_path):
    stand_in = StandIn(ws)
    panel = AnonymizePanel(stand_in)
    # cancel as soon as the first file is reported: set in the job's own thread, so the
    # runner sees it before the next file (no race, no sleep)
    panel.observe(lambda c: panel.cancel() if c["new"] >= 1 else None, names=["job_done"])
    ask(panel, monkeypatch, kind="run", key=KEY, out=str(tmp_path / "c"))
    wait_done(panel)
    assert panel.job_state == "cancelled" and panel.summary["status"] == "cancelled"
    assert panel.job_message.startswith("cancelled: wrote 1 file(s)")
    assert len(list((tmp_path / "c").glob("*.dcm"))) == 1
    assert ask(panel, monkeypatch, kind="cancel")["cancelled"] is False
    panel.close()


def test_engine_errors_are_pushed_to_the_browser(ws, monkeypatch, tmp_path):
    stand_in = StandIn(ws)
    stand_in.fail_with, stand_in.fail_after = "disk full while writing", 1
    panel = AnonymizePanel(stand_in)
    sent = Sent(panel, monkeypatch)
    panel._on_message(panel, {"kind": "run", "id": 1, "key": KEY, "out": str(tmp_path / "e")}, [])
    wait_done(panel)
    assert panel.job_state == "error" and "ValueError" in panel.job_message
    # the push may come before or after the run's reply: the job starts in the handler
    pushes = [m[0] for m in sent.messages if m[0]["kind"] == "job"]
    assert pushes == [{"kind": "job", "state": "error", "message": "disk full while writing"}]
    assert panel.report is None and panel.summary == {}
    stand_in.fail_with = None
    busy_free = ask(panel, monkeypatch, kind="run", key=KEY, out=str(tmp_path / "e2"))
    assert busy_free["ok"] is True  # a failed job does not block the next one
    wait_done(panel)
    assert panel.job_state == "done" and panel.job_error is None
    panel.close()


def test_a_workspace_without_anonymize_says_so(ws, monkeypatch):
    plain = SimpleNamespace(
        studies=ws.studies,
        series=ws.series,
        instances=ws.instances,
        get_setting=ws.get_setting,
        files_dir=ws.files_dir,
    )
    panel = AnonymizePanel(plain)
    reply = ask(panel, monkeypatch, kind="run", key=KEY)
    assert reply["ok"] is False and "Workspace.anonymize" in reply["error"]["message"]
    panel.close()


def test_an_empty_output_folder_means_the_workspace_default(ws, monkeypatch):
    stand_in = StandIn(ws)
    panel = AnonymizePanel(stand_in)
    info = ask(panel, monkeypatch, kind="info")
    assert info["default_out"] == str(ws.files_dir / "anon" / "<run id>")
    assert ask(panel, monkeypatch, kind="run", key=KEY, out="  ")["out"] == ""
    wait_done(panel)
    assert stand_in.calls[0]["out"] is None
    report = ask(panel, monkeypatch, kind="report", section="warnings")
    assert report["out"] == str(ws.files_dir / "anon" / "standin-1")
    relative = ask(panel, monkeypatch, kind="run", key=KEY, out="mine/first")
    assert relative["out"] == str(ws.files_dir / "mine" / "first")
    wait_done(panel)
    panel.close()


@needs_engine
def test_the_real_workspace_run_verifies_with_zero_residual(panel, sample, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG, logger="dicomflow_lab")
    sent = Sent(panel, monkeypatch)
    seen: list[int] = []
    panel.observe(lambda c: seen.append(c["new"]), names=["job_done"])
    reply = ask(panel, monkeypatch, kind="run", key=KEY)
    assert reply["ok"] is True
    wait_done(panel)
    assert panel.job_state == "done", (panel.job_message, panel.job_error)
    n = len(sample.files)
    assert panel.summary["files"] == n and panel.summary["written"] == n
    assert panel.summary["residual"] == 0 and sum(panel.summary["counts"].values()) > n
    assert seen and seen[-1] == n
    assert reply["out"] == ""  # the workspace's default folder
    out = panel.report.out
    assert out.parent == panel.workspace.files_dir / "anon" and out.name == panel.report.run_id
    assert len(list(out.rglob("*.dcm"))) == n
    # the output was indexed as a new source: its study is offered now, the original kept
    assert [c["kind"] for c in panel.choices].count("study") == 2
    assert panel.selection_key == "st1" and panel.n_files == n
    for section in ("quarantined", "failed", "warnings", "residual"):
        panel._on_message(panel, {"kind": "report", "id": 9, "section": section}, [])
    state = repr(panel.get_state())
    for value in [KEY, *phi_of(sample), str(out)]:
        assert value not in state
    assert KEY not in json.dumps([m[0] for m in sent.messages]) + caplog.text


def test_runs_in_a_thread_and_refuses_a_second_one(ws, monkeypatch, tmp_path):
    gate = threading.Event()
    stand_in = StandIn(ws)
    original = stand_in.anonymize

    def slow(*args, **kwargs):
        gate.wait(30)
        return original(*args, **kwargs)

    stand_in.anonymize = slow  # type: ignore[method-assign]
    panel = AnonymizePanel(stand_in)
    assert ask(panel, monkeypatch, kind="run", key=KEY, out=str(tmp_path / "a"))["ok"]
    assert panel.job_state == "running"
    busy = ask(panel, monkeypatch, kind="run", key=KEY, out=str(tmp_path / "b"))
    assert busy["ok"] is False and "already" in busy["error"]["message"]
    gate.set()
    wait_done(panel)
    assert panel.job_state == "done"
    panel.close()


def test_residual_rows_of_the_real_verify_are_listed_without_values(
    ws, sample, monkeypatch, tmp_path
):
    pytest.importorskip("dicomflow_lab.anonymize.verify")
    stand_in = StandIn(ws)
    stand_in.real_verify = True  # the stand-in keeps dates, descriptions...: residual rows
    panel = AnonymizePanel(stand_in)
    ask(panel, monkeypatch, kind="select", selection="se2")
    ask(panel, monkeypatch, kind="run", key=KEY, out=str(tmp_path / "leaky"))
    wait_done(panel)
    assert panel.job_state == "done", panel.job_error
    residual = panel.summary["residual"]
    assert residual and residual == len(panel.report.verification)
    assert f"verified: {residual} residual" in panel.job_message
    reply = ask(panel, monkeypatch, kind="report", section="residual", limit=500)
    assert reply["total"] == residual and len(reply["rows"]) == min(residual, 500)
    row = reply["rows"][0]
    assert set(row) == {"check", "file", "location", "attribute", "kind", "detail"}
    assert row["file"] and not Path(row["file"]).is_absolute()  # paths stay in the kernel
    listed = json.dumps(reply, ensure_ascii=False)
    assert sample.PatientID not in listed and sample.StudyInstanceUID not in listed
    state = repr(panel.get_state())
    assert sample.PatientID not in state and KEY not in state
    panel.close()


@needs_engine
def test_cancel_stops_the_real_run_between_chunks(ws, sample, monkeypatch):
    ws.set_setting("index.workers", 1)  # one process: chunks run one after the other
    panel = AnonymizePanel(ws)
    # cancel from the first progress report, in the job's own thread: no race
    panel.observe(lambda c: panel.cancel() if c["new"] >= 1 else None, names=["job_done"])
    assert ask(panel, monkeypatch, kind="run", key=KEY)["ok"] is True
    wait_done(panel)
    n = len(sample.files)
    assert panel.job_state == "cancelled" and panel.report.status == "cancelled"
    assert 0 < panel.summary["written"] < n
    assert panel.job_message.startswith("cancelled: wrote")
    assert len(list(panel.report.out.rglob("*.dcm"))) == panel.summary["written"]
    panel.close()
