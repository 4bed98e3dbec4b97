"""Anonymization templates: built-ins, any option combination, validation messages."""

from __future__ import annotations

import json
import re

import pytest
from pydicom.datadict import tag_for_keyword

from dicomflow_lab.anonymize import (
    Option,
    OverrideAction,
    Template,
    TemplateError,
    list_templates,
    load_template,
    template_from_dict,
    template_from_options,
)
from dicomflow_lab.errors import AnonymizationError

BUILTINS = {
    "basic": set(),
    "research": {
        Option.RETAIN_LONG_MODIFIED_DATES,
        Option.RETAIN_PATIENT_CHARACTERISTICS,
        Option.RETAIN_DEVICE_IDENTITY,
        Option.CLEAN_DESCRIPTORS,
    },
    "retain-uids": {Option.RETAIN_UIDS},
    "clinical-trial": {
        Option.RETAIN_LONG_MODIFIED_DATES,
        Option.RETAIN_PATIENT_CHARACTERISTICS,
        Option.CLEAN_DESCRIPTORS,
    },
}


def test_builtins_are_listed():
    assert list_templates() == sorted(BUILTINS)


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_every_builtin_loads(name):
    t = load_template(name)
    assert isinstance(t, Template)
    assert t.name == name
    assert t.options == BUILTINS[name]
    assert t.description
    assert t.source == f"builtin:{name}"
    assert t.dates.shift == (
        "per-patient" if Option.RETAIN_LONG_MODIFIED_DATES in t.options else "none"
    )
    assert t.uids.remap is (Option.RETAIN_UIDS not in t.options)
    # JSON form round-trips
    again = template_from_dict(t.to_dict(), source=t.source)
    assert again == t


def test_template_from_options_any_combination():
    assert template_from_options().name == "basic"
    assert template_from_options().options == frozenset()
    t = template_from_options("clean_graphics", Option.RETAIN_UIDS)
    assert t.options == {Option.CLEAN_GRAPHICS, Option.RETAIN_UIDS}
    assert t.name == "basic+retain_uids+clean_graphics"
    everything = template_from_options(*Option)
    assert everything.options == frozenset(Option)
    assert everything.dates.shift == "per-patient"
    assert everything.uids.remap is False


def test_template_from_options_unknown_option():
    with pytest.raises(ValueError, match=r"unknown option 'keep_all'; valid options: "):
        template_from_options("keep_all")


def test_overrides_resolve_selectors():
    t = template_from_dict(
        {
            "name": "t",
            "options": [],
            "overrides": [
                {"selector": "(0010,0010)", "action": "replace", "value": "ANON^PATIENT"},
                {"selector": "StudyDescription", "action": "keep"},
                {"selector": "(0019,XXXX)", "action": "remove"},
                {"selector": "PatientID", "action": "hash"},
                {"selector": "00081030", "action": "remove"},
            ],
        }
    )
    name, desc, mask, pid, hexsel = t.overrides
    assert (name.kind, name.tag, name.action) == ("tag", 0x00100010, OverrideAction.REPLACE)
    assert name.replacement == "ANON^PATIENT"
    assert desc.kind == "keyword"
    assert desc.tag == tag_for_keyword("StudyDescription") == 0x00081030
    assert mask.kind == "mask" and mask.tag is None
    assert mask.matches(0x00191001) and not mask.matches(0x00211001)
    assert pid.tag == 0x00100020 and pid.action is OverrideAction.HASH
    assert hexsel.tag == 0x00081030
    assert t.override_for(0x00081030) is desc  # first match wins
    assert t.override_for(0x00280010) is None


def test_safe_private_and_pixel_rules_schema():
    t = template_from_dict(
        {
            "name": "t",
            "options": ["retain_safe_private"],
            "safe_private": [{"creator": "GEMS_ACQU_01", "tag": "(0019,xx10)", "note": "x"}],
            "pixel_rules": [
                {
                    "manufacturer": "ACME",
                    "model": "US-1",
                    "rows": 480,
                    "columns": 640,
                    "rectangles": [[0, 0, 640, 40], [600, 440, 40, 40]],
                }
            ],
        }
    )
    (sp,) = t.safe_private
    assert (sp.creator, sp.group, sp.element, sp.tag) == ("GEMS_ACQU_01", 0x19, 0x10, "(0019,xx10)")
    (rule,) = t.pixel_rules
    assert rule.rows == 480 and rule.rectangles[1].x == 600
    assert template_from_dict(t.to_dict()) == t


def test_user_file_loads_with_stem_as_default_name(tmp_path):
    path = tmp_path / "my-site.json"
    path.write_text(json.dumps({"options": ["retain_uids"]}))
    t = load_template(path)
    assert t.name == "my-site" and t.source == str(path)
    assert load_template(str(path)) == t


def test_error_tree():
    assert issubclass(TemplateError, AnonymizationError)
    assert issubclass(TemplateError, ValueError)


def _ov(**item):
    return {"name": "t", "overrides": [item]}


BAD = [
    pytest.param(
        {"name": "t", "options": ["retain_uid"]},
        r"^<dict>: options\[0\]: unknown option 'retain_uid'; valid options: "
        r"retain_safe_private, retain_uids, .*clean_graphics$",
        id="unknown-option",
    ),
    pytest.param(
        {"name": "t", "options": "retain_uids"},
        r"^<dict>: options: expected an array of option names, got string 'retain_uids'$",
        id="options-not-array",
    ),
    pytest.param(
        _ov(selector="(0010,001)", action="remove"),
        r"^<dict>: overrides\[0\]\.selector: bad tag syntax '\(0010,001\)'; expected a tag "
        r"\(GGGG,EEEE\)",
        id="bad-tag",
    ),
    pytest.param(
        _ov(selector="(0010,GGGG)", action="remove"),
        r"overrides\[0\]\.selector: bad tag syntax '\(0010,GGGG\)'",
        id="bad-tag-nibble",
    ),
    pytest.param(
        _ov(selector="PatientNmae", action="remove"),
        r"^<dict>: overrides\[0\]\.selector: unknown DICOM keyword 'PatientNmae' "
        r"\(not in pydicom's dictionary\); did you mean PatientName",
        id="unknown-keyword",
    ),
    pytest.param(
        _ov(selector="PatientName", action="delete"),
        r"^<dict>: overrides\[0\]\.action: unknown override action 'delete'; "
        r"valid: keep, replace, remove, hash$",
        id="unknown-action",
    ),
    pytest.param(
        _ov(selector="PatientName", action="replace"),
        r"^<dict>: overrides\[0\]: action 'replace' needs a 'value' \(the new value\)$",
        id="replace-without-value",
    ),
    pytest.param(
        _ov(selector="PatientName", action="keep", value="x"),
        r"^<dict>: overrides\[0\]: 'value' is only allowed with action 'replace', not 'keep'$",
        id="value-without-replace",
    ),
    pytest.param(
        _ov(action="keep"),
        r"^<dict>: overrides\[0\]: missing 'selector'$",
        id="missing-selector",
    ),
    pytest.param(
        {"name": "t", "option": []},
        r"^<dict>: unknown key\(s\) \['option'\]; allowed: name, description, options",
        id="unknown-top-key",
    ),
    pytest.param(
        {"name": "t", "safe_private": [{"creator": "X", "tag": "(0018,xx10)"}]},
        r"^<dict>: safe_private\[0\]\.tag: group 0018 is even, so not private$",
        id="safe-private-even-group",
    ),
    pytest.param(
        {"name": "t", "pixel_rules": [{"columns": 100, "rectangles": [[90, 0, 20, 5]]}]},
        r"^<dict>: pixel_rules\[0\]\.rectangles\[0\]: x \+ width = 110 exceeds columns = 100$",
        id="rectangle-outside",
    ),
    pytest.param(
        {"name": "t", "dates": {"shift": "per-patient"}},
        r"^<dict>: dates\.shift: 'per-patient' needs the option retain_long_modified_dates",
        id="shift-without-option",
    ),
    pytest.param(
        {"name": "t", "options": ["retain_long_modified_dates"], "dates": {"shift": "none"}},
        r"^<dict>: dates\.shift: the option retain_long_modified_dates requires dates to be "
        r"modified",
        id="option-without-shift",
    ),
    pytest.param(
        {"name": "t", "options": ["retain_uids"], "uids": {"remap": True}},
        r"^<dict>: uids\.remap: true contradicts the option retain_uids",
        id="remap-with-retain-uids",
    ),
    pytest.param(
        {"options": []},
        r"^<dict>: missing 'name'$",
        id="missing-name",
    ),
]


@pytest.mark.parametrize(("data", "message"), BAD)
def test_validation_errors_are_precise(data, message):
    with pytest.raises(TemplateError, match=message):
        template_from_dict(data)


def test_json_syntax_error_gives_line_and_column(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "name": "x",\n  "options": ["retain_uids",]\n}\n')
    with pytest.raises(TemplateError) as info:
        load_template(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: invalid JSON at line 3, column ")
    assert isinstance(info.value.__cause__, json.JSONDecodeError)


def test_errors_in_files_name_the_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"options": ["retain_everything"]}))
    with pytest.raises(TemplateError, match=rf"^{re.escape(str(path))}: options\[0\]: unknown"):
        load_template(path)


def test_unknown_template_lists_builtins(tmp_path):
    with pytest.raises(
        TemplateError,
        match=r"no template 'reserch': not a built-in "
        r"\(basic, clinical-trial, research, retain-uids\)",
    ):
        load_template("reserch")


def test_top_level_must_be_object(tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[]")
    with pytest.raises(TemplateError, match=r"expected a JSON object at the top level"):
        load_template(path)


def test_burned_in_policy_defaults_to_quarantine_and_round_trips():
    assert load_template("basic").burned_in == "quarantine"
    t = template_from_dict({"name": "reviewed", "options": [], "burned_in": "warn"})
    assert t.burned_in == "warn"
    assert template_from_dict(t.to_dict()).burned_in == "warn"
    with pytest.raises(TemplateError, match=r"burned_in.*'quarantine'.*'warn'"):
        template_from_dict({"name": "x", "options": [], "burned_in": "ignore"})
