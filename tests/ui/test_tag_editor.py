"""The tag editor panel in a real JupyterLab: edit, live validation, save-as, re-read."""

from __future__ import annotations

import time
from typing import Any

from tests.ui._harness import JupyterLab, cell_errors, run_notebook, screenshot, wait_for

READY = '.dfl-tag-editor[data-dfl-ready="1"]'

_ADD_AND_RUN_CELL_JS = """async (source) => {
  const app = window.jupyterapp;
  const panel = app.shell.currentWidget;
  const notebook = panel.content;
  const cells = notebook.model.sharedModel;
  cells.insertCell(notebook.model.cells.length, { cell_type: 'code', source });
  notebook.activeCellIndex = notebook.model.cells.length - 1;
  await app.commands.execute('notebook:run-cell');
  return notebook.model.cells.length - 1;
}"""

_CELL_OUTPUT_JS = """(index) => {
  const cell = window.jupyterapp.shell.currentWidget.content.model.cells.get(index);
  const json = cell.toJSON();
  if (json.execution_count === null) { return null; }
  const text = (o) => o.text || (o.evalue ? `${o.ename}: ${o.evalue}` : '');
  return (json.outputs || []).map(text).join('');
}"""


def run_cell(page: Any, source: str, timeout: float = 30.0) -> str:
    """Append a code cell to the open notebook, run it and return its text output."""
    index = page.evaluate(_ADD_AND_RUN_CELL_JS, source)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = page.evaluate(_CELL_OUTPUT_JS, index)
        if out:
            return str(out)
        time.sleep(0.1)
    raise AssertionError(f"cell {index} gave no output in {timeout:g} s: {cell_errors(page)}")


def filter_rows(editor: Any, text: str, keyword: str) -> Any:
    editor.locator(".dfl-te-search").fill(text)
    row = editor.locator(f'.dfl-te-row[data-keyword="{keyword}"]').first
    row.wait_for(state="visible", timeout=10_000)
    return row


def test_edit_validate_and_save_as(page: Any, jupyterlab: JupyterLab) -> None:
    data = jupyterlab.root_dir / "tag_editor_data"
    out = jupyterlab.root_dir / "tag_editor_out"
    series_out = jupyterlab.root_dir / "tag_editor_series"
    run_notebook(
        page,
        jupyterlab,
        [
            "import pathlib, pydicom\n"
            "from pydicom.data import get_testdata_file\n"
            "from pydicom.dataset import Dataset\n"
            "from dicomflow_lab.widgets import TagEditorPanel\n"
            f"folder = pathlib.Path({str(data)!r}); folder.mkdir(exist_ok=True)\n"
            "ds = pydicom.dcmread(get_testdata_file('CT_small.dcm'))\n"
            "ds.private_block(0x0009, 'DFL TEST', create=True).add_new(0x01, 'LO', 'x')\n"
            "ds.ReferencedSeriesSequence = [Dataset(), Dataset()]\n"
            "for i, item in enumerate(ds.ReferencedSeriesSequence):\n"
            "    item.SeriesInstanceUID = f'1.2.3.{i}'\n"
            "src = folder / 'ct.dcm'\nds.save_as(src)\n"
            "panel = TagEditorPanel(src)\npanel",
        ],
        "tag_editor",
    )
    editor = wait_for(page, READY, state="visible")
    assert int(editor.get_attribute("data-dfl-total")) > 100
    assert editor.locator(".dfl-te-meta").count() > 0  # group 0002 shown, read-only
    assert editor.locator('.dfl-te-meta [data-act="edit"]').count() == 0
    # sequences with their items, indented; a private element with its creator
    seq = filter_rows(editor, "1.2.3.", "ReferencedSeriesSequence")
    assert editor.locator(".dfl-te-item").count() == 2
    seq.locator(".dfl-te-twisty").click()
    page.wait_for_function(
        "(el) => el.querySelectorAll('.dfl-te-item').length === 0", arg=editor.element_handle()
    )
    seq.locator(".dfl-te-twisty").click()
    editor.locator(".dfl-te-search").fill("DFL TEST")
    creator = editor.locator(".dfl-te-private .dfl-te-creator").first
    creator.wait_for(state="visible", timeout=10_000)
    assert creator.inner_text() == "DFL TEST"
    editor.locator(".dfl-te-search").fill("")
    page.wait_for_function(
        "(el) => el.querySelectorAll('.dfl-te-meta').length > 3", arg=editor.element_handle()
    )
    screenshot(page, "tag_editor_table")

    # edit PatientName inline: live validation says it is valid, Enter applies it
    row = filter_rows(editor, "PatientName", "PatientName")
    row.locator(".dfl-te-c-value").click()
    field = editor.locator("input.dfl-te-edit")
    field.fill("Doe^Jane")
    validation = editor.locator(".dfl-te-validation")
    validation.filter(has_text="valid").wait_for(state="visible", timeout=10_000)
    field.press("Enter")
    page.wait_for_selector('.dfl-tag-editor[data-dfl-pending="1"]', timeout=10_000)
    row = filter_rows(editor, "PatientName", "PatientName")
    page.wait_for_function(
        "(el) => el.querySelector('.dfl-te-changed .dfl-te-c-value')?.textContent === 'Doe^Jane'",
        arg=editor.element_handle(),
        timeout=10_000,
    )

    # a bad StudyDate: the kernel's message names the tag, the VR and the rule
    row = filter_rows(editor, "StudyDate", "StudyDate")
    row.locator(".dfl-te-c-value").click()
    editor.locator("input.dfl-te-edit").fill("2024-13-45")
    invalid = editor.locator(".dfl-te-validation.dfl-te-invalid")
    invalid.wait_for(state="visible", timeout=10_000)
    page.wait_for_function(
        "(el) => el.textContent.includes('2024-13-45')", arg=invalid.element_handle()
    )
    message = invalid.inner_text()
    assert "StudyDate" in message and "(0008,0020)" in message and "DA" in message

    editor.locator(".dfl-te-changes-btn").click()
    editor.locator(".dfl-te-diff").filter(has_text="Doe^Jane").wait_for(timeout=10_000)
    shot = screenshot(page, "tag_editor")
    editor.locator("input.dfl-te-edit").press("Escape")
    assert editor.get_attribute("data-dfl-pending") == "1"  # the bad date was not applied

    # save as: a new folder, the original untouched
    default_out = editor.locator(".dfl-te-out").input_value()
    assert default_out == str(data.parent / "tag_editor_data_edited")
    editor.locator(".dfl-te-out").fill(str(out))
    editor.locator(".dfl-te-save").click()
    page.wait_for_selector('.dfl-tag-editor[data-dfl-saved="1"]', timeout=15_000)
    assert editor.locator(".dfl-te-error").is_hidden()
    assert editor.get_attribute("data-dfl-pending") == "0"

    printed = run_cell(
        page,
        "import pydicom\n"
        f"print(pydicom.dcmread({str(out / 'ct.dcm')!r}).PatientName, "
        f"pydicom.dcmread({str(data / 'ct.dcm')!r}).PatientName)",
    )
    assert printed.split() == ["Doe^Jane", "CompressedSamples^CT1"], printed

    # add an element with the form, then apply it to the series with a progress bar
    editor.locator(".dfl-te-add-tag").fill("SeriesDescription")
    editor.locator(".dfl-te-add-value").fill("BATCH")
    editor.locator(".dfl-te-add-btn").click()
    page.wait_for_selector('.dfl-tag-editor[data-dfl-pending="1"]', timeout=10_000)
    editor.locator(".dfl-te-out").fill(str(series_out))
    editor.locator(".dfl-te-apply-series").click()
    page.wait_for_selector('.dfl-tag-editor[data-dfl-job="done"]', timeout=20_000)
    progress = editor.locator(".dfl-te-progress")
    assert progress.is_visible() and progress.evaluate("(el) => el.value === el.max")
    assert "wrote 1 file" in editor.locator(".dfl-te-status").inner_text()
    printed = run_cell(
        page,
        f"print(pydicom.dcmread({str(series_out / 'ct.dcm')!r}).SeriesDescription)",
    )
    assert printed.strip() == "BATCH", printed
    assert shot.is_file()


def test_five_thousand_elements_scroll_in_pages(page: Any, jupyterlab: JupyterLab) -> None:
    big = jupyterlab.root_dir / "tag_editor_big.dcm"
    run_notebook(
        page,
        jupyterlab,
        [
            "import pydicom\n"
            "from pydicom.data import get_testdata_file\n"
            "from pydicom.dataset import Dataset\n"
            "from dicomflow_lab.widgets import TagEditorPanel\n"
            "ds = pydicom.dcmread(get_testdata_file('CT_small.dcm'))\n"
            "items = []\n"
            "for i in range(600):\n"
            "    item = Dataset()\n"
            "    item.ReferencedSOPClassUID = '1.2.840.10008.5.1.4.1.1.2'\n"
            "    item.ReferencedSOPInstanceUID = f'1.2.3.{i}'\n"
            "    item.CodeValue, item.CodeMeaning = f'C{i}', f'meaning {i}'\n"
            "    item.CodingSchemeDesignator, item.TextValue = 'DCM', f'text {i}'\n"
            "    items.append(item)\n"
            "ds.ReferencedImageSequence = items\n"
            f"ds.save_as({str(big)!r})\n"
            f"panel = TagEditorPanel({str(big)!r})\npanel",
        ],
        "tag_editor_big",
    )
    editor = wait_for(page, READY, state="visible")
    total = int(editor.get_attribute("data-dfl-total"))
    assert total > 4000
    assert editor.locator(".dfl-te-rows .dfl-te-row").count() < 40  # only the visible rows
    scroller = editor.locator(".dfl-te-scroll")
    scroller.evaluate("(el) => { el.scrollTop = el.scrollHeight; }")
    last = editor.locator('.dfl-te-row[data-keyword="PixelData"]')  # the last element
    last.wait_for(state="visible", timeout=10_000)
    state = editor.evaluate("(el) => el.dflTagEditor.state()")
    assert state["total"] == total and len(state["pages"]) <= 3, state
    scroller.evaluate("(el) => { el.scrollTop = el.scrollHeight / 2; }")
    editor.locator(".dfl-te-row", has_text="meaning ").first.wait_for(timeout=10_000)
    first_shown = editor.evaluate(
        "(el) => [Number(el.querySelector('.dfl-te-rows .dfl-te-row').dataset.index),"
        " Math.floor(el.querySelector('.dfl-te-scroll').scrollTop / 24)]"
    )
    assert first_shown[0] == first_shown[1] > 1000
    screenshot(page, "tag_editor_big")
    state = editor.evaluate("(el) => el.dflTagEditor.state()")
    assert len(state["pages"]) <= 3, state


def test_keyboard_moves_edits_expands_and_deletes(page: Any, jupyterlab: JupyterLab) -> None:
    data = jupyterlab.root_dir / "tag_editor_keys"
    run_notebook(
        page,
        jupyterlab,
        [
            "import pathlib, pydicom\n"
            "from pydicom.data import get_testdata_file\n"
            "from pydicom.dataset import Dataset\n"
            "from dicomflow_lab.widgets import TagEditorPanel\n"
            f"folder = pathlib.Path({str(data)!r}); folder.mkdir(exist_ok=True)\n"
            "ds = pydicom.dcmread(get_testdata_file('CT_small.dcm'))\n"
            "ds.ReferencedSeriesSequence = [Dataset()]\n"
            "ds.ReferencedSeriesSequence[0].SeriesInstanceUID = '1.2.3.4'\n"
            "src = folder / 'ct.dcm'\nds.save_as(src)\n"
            "panel = TagEditorPanel(src)\npanel",
        ],
        "tag_editor_keys",
    )
    editor = wait_for(page, READY, state="visible")
    table = editor.locator(".dfl-te-scroll")
    # move with the keyboard alone: the current row follows, and scrolls into view
    table.focus()
    table.press("ArrowDown")
    page.wait_for_selector('.dfl-tag-editor[data-dfl-cursor="0"]', timeout=10_000)
    table.press("PageDown")
    table.press("ArrowDown")
    page.wait_for_selector(f'.dfl-tag-editor[data-dfl-cursor="{18}"]', timeout=10_000)
    editor.locator('.dfl-te-row.dfl-te-cursor[data-index="18"]').wait_for(state="visible")
    table.press("End")
    total = int(editor.get_attribute("data-dfl-total"))
    page.wait_for_selector(f'.dfl-tag-editor[data-dfl-cursor="{total - 1}"]', timeout=10_000)
    # Enter edits the current row; Enter in the box applies and gives the focus back
    filter_rows(editor, "PatientName", "PatientName")
    table.focus()
    table.press("Home")
    table.press("Enter")
    field = editor.locator("input.dfl-te-edit")
    field.wait_for(state="visible", timeout=10_000)
    field.fill("Key^Board")
    field.press("Enter")
    page.wait_for_selector('.dfl-tag-editor[data-dfl-pending="1"]', timeout=10_000)
    page.wait_for_function("(el) => document.activeElement === el", arg=table.element_handle())
    # Left/Right collapse and expand a sequence; Delete deletes the current element
    filter_rows(editor, "1.2.3.4", "ReferencedSeriesSequence")
    table.focus()
    table.press("Home")
    table.press("ArrowLeft")
    page.wait_for_function(
        "(el) => el.querySelectorAll('.dfl-te-item').length === 0", arg=editor.element_handle()
    )
    table.press("ArrowRight")
    editor.locator(".dfl-te-item").first.wait_for(state="visible", timeout=10_000)
    screenshot(page, "tag_editor_keyboard")
    table.press("Delete")
    page.wait_for_selector('.dfl-tag-editor[data-dfl-pending="2"]', timeout=10_000)
