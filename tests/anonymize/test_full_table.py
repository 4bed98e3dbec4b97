"""The 656-attribute dataset: zero misses and only permitted actions, for every option.

For the Basic Profile, each of the ten options alone and the four built-in templates,
the generated dataset holding every attribute of PS3.15 Table E.1-1 is de-identified,
written, read back, and checked row by row.
"""

from __future__ import annotations

import io
import warnings

import pydicom
import pytest
from pydicom.sequence import Sequence

from dicomflow_lab.anonymize import (
    Action,
    Anonymizer,
    Option,
    load_template,
    profile_rows,
    resolve_action,
    table_dataset,
    template_from_options,
)
from dicomflow_lab.anonymize.engine import encode

TEMPLATES = (
    [template_from_options()]
    + [template_from_options(o) for o in Option]
    + [load_template(n) for n in ("basic", "research", "retain-uids", "clinical-trial")]
)
IDS = [f"{t.name}@{t.source.split(':')[0]}" for t in TEMPLATES]


@pytest.fixture(scope="module")
def original():
    return table_dataset.build()


def _roundtrip(ds):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom guesses the command group's VR encoding
        return pydicom.dcmread(io.BytesIO(encode(ds)))


def _permitted(rec, options) -> set[str]:
    if rec.tag >> 16 & 1:  # the private-attributes row: X, or C under Retain Safe Private
        if Option.RETAIN_SAFE_PRIVATE in options:
            return {"C", "X"}  # C keeps the safe ones and removes the rest (PS3.15 E.3.10)
        return {"X"}
    eff = resolve_action(rec.tag, options)
    assert eff is not None, rec
    allowed = {c.value for c in eff.candidates}
    if rec.rule.startswith("clean-sequence:"):
        allowed.add("C")  # text the table removes, cleaned inside a cleaned sequence
    return allowed


@pytest.mark.parametrize("template", TEMPLATES, ids=IDS)
def test_no_attribute_keeps_a_forbidden_original_value(original, template):
    result = Anonymizer(template, key="full-table").anonymize(original)
    assert result.quarantined is None
    out = _roundtrip(result.dataset)
    assert table_dataset.unchanged_attributes(original, out, template) == []


@pytest.mark.parametrize("template", TEMPLATES, ids=IDS)
def test_only_actions_the_table_permits(original, template):
    result = Anonymizer(template, key="full-table").anonymize(original)
    table_records = [
        r
        for r in result.records
        if r.rule != "deid-attr" and "not-in-table" not in r.rule and r.rule != "unknown"
    ]
    bad = [
        (r.path, r.action, r.rule, sorted(_permitted(r, template.options)))
        for r in table_records
        if r.action not in _permitted(r, template.options)
    ]
    assert bad == []
    # every row of the table got an action at the top level
    seen = {r.tag for r in table_records if "[" not in r.path}
    for row in profile_rows():
        for tag in table_dataset.row_elements(row):
            if row.match.value == "private" and tag & 0xFFFF < 0x1000:
                continue  # the creator is recorded as well, checked below
            assert tag in seen, row.tag


@pytest.mark.parametrize("template", TEMPLATES, ids=IDS)
def test_d_gives_non_empty_dummies_and_z_empties(original, template):
    result = Anonymizer(template, key="full-table").anonymize(original)
    out = _roundtrip(result.dataset)
    for rec in result.records:
        if "[" in rec.path or rec.tag >> 16 == 0x0002 or rec.rule == "deid-attr":
            continue
        if rec.action == "D" and rec.vr != "SQ":
            assert rec.tag in out, rec
            assert out[rec.tag].value not in (None, "", b""), rec
        elif rec.action == "X":
            assert rec.tag not in out, rec
        elif rec.action == "Z" and rec.tag not in (0x00100010, 0x00100020):
            value = out[rec.tag].value
            assert value in (None, "", b"") or (isinstance(value, Sequence) and not value), rec


@pytest.mark.parametrize("template", TEMPLATES, ids=IDS)
def test_every_sequence_is_recursed_into(original, template):
    result = Anonymizer(template, key="full-table").anonymize(original)
    out = _roundtrip(result.dataset)
    retain_uids = Option.RETAIN_UIDS in template.options
    checked = 0
    for elem in original:
        if elem.VR != "SQ" or elem.tag not in out:
            continue
        before_item = elem.value[0]
        after = out[elem.tag].value
        if not after:
            continue
        item = after[0]
        action = resolve_action(elem.tag, template.options)
        checked += 1
        if not retain_uids:
            assert item.ReferencedSOPInstanceUID != before_item.ReferencedSOPInstanceUID
            assert item.ReferencedSOPInstanceUID.startswith("2.25.")
        assert item.ReferencedSOPClassUID == before_item.ReferencedSOPClassUID  # well known
        text = item.get(0x0040A160)
        simple = action.default if action.is_combined else action
        if simple in (Action.D, Action.C):
            # dummied or cleaned: the free text in the item no longer names the patient
            assert text is None or "Mustermann" not in str(text.value), elem.tag
    assert checked > 0


@pytest.mark.parametrize("template", TEMPLATES, ids=IDS)
def test_deidentification_attributes(original, template):
    out = Anonymizer(template, key="full-table").anonymize(original).dataset
    assert out.PatientIdentityRemoved == "YES"
    methods = list(out.DeidentificationMethod)
    assert all(len(m) <= 64 for m in methods) and methods[0].startswith("dicomflow_lab ")
    codes = [
        (i.CodeValue, i.CodingSchemeDesignator) for i in out.DeidentificationMethodCodeSequence
    ]
    expected = ["113100"] + [o.code for o in Option if o in template.options]
    assert [c for c, _ in codes] == expected
    assert {s for _, s in codes} == {"DCM"}
    opts = template.options
    ltim = (
        "MODIFIED"
        if Option.RETAIN_LONG_MODIFIED_DATES in opts
        else "UNMODIFIED"
        if Option.RETAIN_LONG_FULL_DATES in opts
        else "REMOVED"
    )
    assert out.LongitudinalTemporalInformationModified == ltim


def test_the_26_attributes_without_keyword_are_handled_by_tag(original):
    rows = [r for r in profile_rows() if r.keyword is None and r.match.value == "exact"]
    assert len(rows) == 25
    out = Anonymizer("basic", key="k").anonymize(original).dataset
    for row in rows:
        assert row.basic is Action.X
        assert row.value not in out, row.tag


def test_masked_rows_are_matched_in_any_repeating_group(original):
    ds = table_dataset.build()
    ds.add_new(0x601E3000, "OW", b"\x01\x02" * 8)  # overlay data, last repeating group
    ds.add_new(0x50FE0022, "LO", "MUSTERMANN curve")  # curve description
    out = Anonymizer("basic", key="k").anonymize(ds).dataset
    for tag in (0x601E3000, 0x50FE0022, 0x60003000, 0x60004000, 0x50100022):
        assert tag not in out
    cleaned = Anonymizer(template_from_options("clean_graphics"), key="k").anonymize(ds).dataset
    assert cleaned[0x601E3000].value == b"\x00" * 16  # overlay bits cleared
    assert "MUSTERMANN" not in cleaned[0x50FE0022].value


def test_the_original_is_not_changed(original):
    before = table_dataset.to_bytes(original)
    for template in TEMPLATES:
        Anonymizer(template, key="k").anonymize(original)
    assert table_dataset.to_bytes(original) == before
