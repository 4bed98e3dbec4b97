"""The anonymization panel in a real JupyterLab: option, key, preview, run, report.

The saved notebook (with the widget state saved in it) must hold neither the key nor any
original patient value of the sample study.
"""

from __future__ import annotations

import json
from typing import Any

import pydicom

from tests.ui._harness import JupyterLab, run_notebook, screenshot, wait_for

READY = '.dfl-anonymize[data-dfl-ready="1"]'
KEY = "ui-panel-key-Zx81-0f0f0f0f0f0f0f0f"
WIDGETS_SETTINGS = "/lab/api/settings/@jupyter-widgets/jupyterlab-manager:plugin"

_SAVE_JS = """async () => {
  const app = window.jupyterapp;
  await app.commands.execute('docmanager:save');
  return app.shell.currentWidget.context.model.dirty;
}"""


def _engine_available() -> bool:
    try:
        import dicomflow_lab.anonymize.engine  # noqa: F401
    except ImportError:
        return False
    return True


def _save_widget_state(lab: JupyterLab, on: bool) -> None:
    reply = lab.api("PUT", WIDGETS_SETTINGS, json={"raw": json.dumps({"saveState": on})})
    assert reply.status_code in (200, 204), reply.status_code


def test_preview_run_and_report_leave_no_key_or_phi_in_the_notebook(
    page: Any, jupyterlab: JupyterLab
) -> None:
    root = jupyterlab.root_dir
    data, ws_dir = root / "anon_sample", root / "anon_ws"
    engine = _engine_available()
    _save_widget_state(jupyterlab, True)  # so the saved notebook carries the widget state
    try:
        run_notebook(
            page,
            jupyterlab,
            [
                "import dicomflow_lab as dfl\n"
                "from dicomflow_lab.widgets.anonymize_panel import AnonymizePanel\n"
                f"folder = dfl.data.sample_study({str(data)!r}, ct_slices=4, ct_size=64,"
                " mr_slices=2, mr_size=64)\n"
                f"ws = dfl.Workspace({str(ws_dir)!r})\n"
                "_ = ws.index(folder, progress=False)",
                "panel = AnonymizePanel(ws)\npanel",
            ],
            "anonymize_panel",
        )
        panel = wait_for(page, READY, state="visible")
        first = pydicom.dcmread(sorted((data / "1_CT").glob("*.dcm"))[0])
        options = panel.locator(".dfl-an-opt")
        assert options.count() == 10
        assert panel.locator(".dfl-an-selection option").count() == 3  # a study, two series

        # a bad user template: the kernel's TemplateError under the panel
        error = panel.locator(".dfl-an-error")
        panel.locator("select.dfl-an-template").select_option("custom")
        panel.locator("textarea.dfl-an-json").fill('{"name": "mine", "options": [}')
        panel.locator(".dfl-an-json-apply").click()
        error.wait_for(state="visible", timeout=10_000)
        assert "invalid JSON at line 1" in error.inner_text()
        panel.locator("textarea.dfl-an-json").fill(
            '{"name": "mine", "overrides": [{"selector": "PatientNmae", "action": "keep"}]}'
        )
        panel.locator(".dfl-an-json-apply").click()
        page.wait_for_function(
            "(el) => el.textContent.includes('overrides[0].selector')",
            arg=error.element_handle(),
            timeout=10_000,
        )
        assert "did you mean PatientName" in error.inner_text()
        screenshot(page, "anonymize_panel_template_error")
        panel.locator("select.dfl-an-template").select_option("basic")
        error.wait_for(state="hidden", timeout=10_000)

        # toggle an option: the kernel builds the template and the chip lights up
        option = panel.locator('.dfl-an-opt[data-option="retain_device_identity"]')
        option.click()
        page.wait_for_function(
            "(el) => el.querySelector('.dfl-an-tinfo').textContent"
            ".startsWith('in use: basic+retain_device_identity')",
            arg=panel.element_handle(),
            timeout=10_000,
        )
        assert "dfl-an-on" in (option.get_attribute("class") or "")

        # no key: a clear message, nothing runs
        key = panel.locator("input.dfl-an-key")
        assert key.get_attribute("type") == "password"
        panel.locator(".dfl-an-preview").click()
        error.wait_for(state="visible", timeout=10_000)
        assert "must not be empty" in error.inner_text()

        key.fill(KEY)
        if engine:
            panel.locator(".dfl-an-preview").click()
            page.wait_for_function(
                "(el) => Number(el.dataset.dflPreview) > 0",
                arg=panel.element_handle(),
                timeout=30_000,
            )
            assert error.is_hidden()
            assert panel.locator(".dfl-an-table tbody tr").count() > 10
            assert panel.locator(".dfl-an-table th").count() == 5  # no values unless asked
            total = int(panel.get_attribute("data-dfl-rows") or 0)
            panel.locator(".dfl-an-filter").fill("Patient")
            page.wait_for_function(
                "([el, total]) => Number(el.dataset.dflRows) < total",
                arg=[panel.element_handle(), total],
                timeout=10_000,
            )
            keywords = panel.locator(".dfl-an-table tbody tr").evaluate_all(
                "(rows) => rows.map((r) => r.dataset.keyword)"
            )
            assert "PatientName" in keywords and all("Patient" in k for k in keywords)
            panel.locator(".dfl-an-values").check()
            page.wait_for_selector('.dfl-anonymize[data-dfl-values="1"]', timeout=10_000)
            before = panel.locator('tr[data-keyword="PatientName"] .dfl-an-before').inner_text()
            assert before == str(first.PatientName)  # shown on request, never saved
            screenshot(page, "anonymize_panel_preview")
            panel.locator(".dfl-an-values").uncheck()
            page.wait_for_selector('.dfl-anonymize[data-dfl-values="0"]', timeout=10_000)
            assert panel.locator(".dfl-an-before").count() == 0
            panel.locator(".dfl-an-filter").fill("")

        panel.locator(".dfl-an-run").click()
        page.wait_for_selector('.dfl-anonymize[data-dfl-job="done"]', timeout=60_000)
        page.wait_for_selector('.dfl-anonymize[data-dfl-report="1"]', timeout=20_000)
        verdict = panel.locator(".dfl-an-verdict")
        assert verdict.inner_text().strip() == "✓ verified: 0 residual"
        assert "dfl-an-ok" in (verdict.get_attribute("class") or "")
        progress = panel.locator(".dfl-an-progress")
        assert progress.is_visible() and progress.evaluate("(el) => el.value === el.max")
        assert panel.locator(".dfl-an-report-counts .dfl-an-chip").count() >= 1
        assert error.is_hidden(), error.inner_text()
        # the output went to the workspace's default folder, named after the run
        assert panel.locator(".dfl-an-out").input_value() == ""
        out_line = panel.locator(".dfl-an-outline").inner_text()
        assert out_line.startswith(f"Output folder: {ws_dir / 'files' / 'anon'}/"), out_line
        panel.evaluate("(el) => el.scrollIntoView({block: 'end'})")  # report at the bottom
        shot = screenshot(page, "anonymize_panel")
        assert shot.stat().st_size > 10_000

        assert page.evaluate(_SAVE_JS) is False
    finally:
        _save_widget_state(jupyterlab, False)

    saved = json.loads((root / "anonymize_panel.ipynb").read_text(encoding="utf-8"))
    widgets = saved["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]
    states = [m["state"] for m in widgets["state"].values()]
    assert any(s.get("template_name") == "basic+retain_device_identity" for s in states)
    assert any(s.get("job_state") == "done" for s in states)
    text = json.dumps(saved, ensure_ascii=False)
    phi = [
        KEY,
        str(first.PatientName),
        str(first.PatientName).split("^")[0],
        first.PatientID,
        first.StudyInstanceUID,
        first.SeriesInstanceUID,
        first.SOPInstanceUID,
        str(first.get("AccessionNumber") or "") or KEY,
        str(first.get("PatientBirthDate") or "") or KEY,
    ]
    for value in phi:
        assert value not in text, f"{value[:3]}… found in the saved notebook"
