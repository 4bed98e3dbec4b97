"""PS3.15 Table E.1-1 as package data: counts, tag-number matching, options."""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

import pytest
from pydicom.datadict import keyword_for_tag

from dicomflow_lab.anonymize import (
    Action,
    MatchKind,
    Option,
    profile_counts,
    profile_rows,
    resolve_action,
    row_for,
)
from dicomflow_lab.anonymize.profile import format_tag, parse_tag

DATA = resources.files("dicomflow_lab.anonymize").joinpath("data")
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"

SHA256 = {
    "ps3.15-table-e1-1.json": "890b8baba9072dad6db87547e2584e8113f4fb82d6c5c43a4963250060d56e6b",
    "ps3.15-table-e1-1.additions-2026c.json": (
        "3b70e7bd9331df9ab3d8ca65c000de3a8484dd8aadb2eb254f3dbe6c64cb6d53"
    ),
}


@pytest.mark.parametrize("name", sorted(SHA256))
def test_packaged_files_are_the_published_bytes(name):
    assert hashlib.sha256(DATA.joinpath(name).read_bytes()).hexdigest() == SHA256[name]


def test_data_readme_carries_both_licences():
    text = DATA.joinpath("README.md").read_text(encoding="utf-8")
    assert "Copyright (c) 2017 Innolitics, LLC." in text
    assert "Copyright 2020, Kitware Europe" in text
    assert "Known gaps" in text


def test_2024b_counts_match_the_readme():
    counts = profile_counts("2024b")
    assert counts.rows == 621
    assert counts.basic == {
        "X": 384, "D": 92, "U": 54, "Z": 42, "X/D": 22, "X/Z": 11,
        "X/Z/D": 8, "Z/D": 6, "X/Z/U*": 2,
    }  # fmt: skip
    assert {o.value: n for o, n in counts.options.items()} == {
        "retain_safe_private": 1,
        "retain_uids": 59,
        "retain_device_identity": 57,
        "retain_institution_identity": 10,
        "retain_patient_characteristics": 13,
        "retain_long_full_dates": 165,
        "retain_long_modified_dates": 165,
        "clean_descriptors": 125,
        "clean_structured_content": 3,
        "clean_graphics": 4,
    }


def test_match_kinds():
    rows = profile_rows("2024b")
    kinds = [r.match for r in rows]
    assert kinds.count(MatchKind.EXACT) == 617
    assert kinds.count(MatchKind.MASK) == 3
    assert kinds.count(MatchKind.PRIVATE) == 1


def test_2026c_additions():
    rows = profile_rows("2026c")
    assert len(rows) == 35
    assert all(not r.options_known for r in rows)
    assert all(r.option_codes == (None,) * 10 for r in rows)
    assert all(r.options_known for r in profile_rows("2024b"))
    assert len(profile_rows()) == 656
    assert sum(r.keyword is None for r in rows) == 25
    # no tag is listed twice across the two files
    exact = [r.value for r in profile_rows() if r.match is MatchKind.EXACT]
    assert len(exact) == len(set(exact)) == 652


def test_every_row_tag_parses_and_round_trips():
    for row in profile_rows():
        if row.match is MatchKind.EXACT:
            assert parse_tag(row.tag) == (row.value, 0xFFFFFFFF)
            assert format_tag(row.value) == row.tag
            assert not (row.value >> 16) & 1, f"{row.tag} is in an odd (private) group"
            assert row_for(row.value) is row
        elif row.match is MatchKind.MASK:
            assert parse_tag(row.tag, allow_mask=True) == (row.value, row.mask)
        else:
            assert row.tag == "(gggg,eeee)"


def test_keywords_agree_with_pydicom_where_known():
    for row in profile_rows():
        if row.match is MatchKind.EXACT and row.keyword:
            assert keyword_for_tag(row.value) in (row.keyword, ""), row.tag


def test_rows_match_the_shared_copy_when_present():
    if not SHARED.is_dir():
        pytest.skip("shared/data not beside the checkout")
    src = json.loads((SHARED / "ps3.15-table-e1-1.json").read_text())
    assert [r["tag"] for r in src] == [r.tag for r in profile_rows("2024b")]


# -- spot checks against the table -----------------------------------------------------


def test_patient_name_is_z():
    assert resolve_action(0x00100010) is Action.Z
    assert row_for(0x00100010).keyword == "PatientName"


def test_study_instance_uid_u_then_k_under_retain_uids():
    assert resolve_action(0x0020000D) is Action.U
    assert resolve_action(0x0020000D, [Option.RETAIN_UIDS]) is Action.K
    assert resolve_action(0x0020000D, ["retain_uids"]) is Action.K
    # an option that says nothing about the attribute leaves the Basic Profile code
    assert resolve_action(0x0020000D, [Option.CLEAN_GRAPHICS]) is Action.U


def test_2026c_addition_resolves_by_tag_number_without_a_keyword():
    # (0040,A034) Effective Start DateTime: pydicom 3.0.2 has no keyword for it.
    assert keyword_for_tag(0x0040A034) == ""
    row = row_for(0x0040A034)
    assert row is not None and row.edition == "2026c" and row.keyword is None
    assert row.name == "Effective Start DateTime"
    assert resolve_action(0x0040A034) is Action.X
    # its option columns are unknown: options never weaken it
    assert resolve_action(0x0040A034, list(Option)) is Action.X


@pytest.mark.parametrize(
    ("tag", "name"),
    [
        (0x50120000, "Curve Data"),
        (0x50003000, "Curve Data"),
        (0x50FE0010, "Curve Data"),
        (0x60023000, "Overlay Data"),
        (0x60003000, "Overlay Data"),
        (0x601E4000, "Overlay Comments"),
    ],
)
def test_masked_rows_match_even_repeating_groups(tag, name):
    assert row_for(tag).name == name
    assert resolve_action(tag) is Action.X
    assert resolve_action(tag, [Option.CLEAN_GRAPHICS]) is Action.C


@pytest.mark.parametrize("tag", [0x60023001, 0x60020010, 0x60023002, 0x51000000])
def test_masked_rows_do_not_match_other_elements(tag):
    assert row_for(tag) is None
    assert resolve_action(tag) is None


@pytest.mark.parametrize("tag", [0x00091001, 0x00190010, 0x60013000, 0x50110000, 0x00290000])
def test_odd_groups_get_the_private_row(tag):
    row = row_for(tag)
    assert row.match is MatchKind.PRIVATE and row.name == "Private Attributes"
    assert resolve_action(tag) is Action.X
    assert resolve_action(tag, [Option.RETAIN_SAFE_PRIVATE]) is Action.C


def test_unlisted_standard_tag_is_none():
    assert row_for(0x00280010) is None  # Rows
    assert resolve_action(0x00280010, [Option.RETAIN_UIDS]) is None


def test_c_wins_over_k():
    # Date of Last Calibration: device identity K, full dates K, modified dates C.
    tag = 0x00181200
    assert resolve_action(tag) is Action.X
    assert resolve_action(tag, [Option.RETAIN_DEVICE_IDENTITY]) is Action.K
    assert resolve_action(tag, [Option.RETAIN_LONG_FULL_DATES]) is Action.K
    assert (
        resolve_action(tag, [Option.RETAIN_DEVICE_IDENTITY, Option.RETAIN_LONG_MODIFIED_DATES])
        is Action.C
    )
    assert (
        resolve_action(tag, [Option.RETAIN_LONG_FULL_DATES, Option.RETAIN_LONG_MODIFIED_DATES])
        is Action.C
    )


def test_unknown_option_lists_valid_ones():
    with pytest.raises(ValueError, match=r"unknown option 'retain_everything'.*retain_uids"):
        resolve_action(0x00100010, ["retain_everything"])


# -- combined codes --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "candidates", "default", "t1", "t2", "t3"),
    [
        ("Z/D", "ZD", "D", "D", "Z", "Z"),
        ("X/Z", "XZ", "Z", "Z", "Z", "X"),
        ("X/D", "XD", "D", "D", "D", "X"),
        ("X/Z/D", "XZD", "D", "D", "Z", "X"),
        ("X/Z/U*", "XZU", "U", "U", "Z", "X"),
    ],
)
def test_combined_codes(code, candidates, default, t1, t2, t3):
    action = Action(code)
    assert action.is_combined
    assert action.candidates == tuple(Action(c) for c in candidates)
    assert action.default is Action(default)
    assert action.for_type(None) is Action(default)
    assert action.for_type("1") is action.for_type("1C") is Action(t1)
    assert action.for_type("2") is action.for_type("2C") is Action(t2)
    assert action.for_type("3") is Action(t3)
    assert all(not c.is_combined for c in action.candidates)


def test_simple_codes_are_their_own_candidates():
    for code in "XZDUKC":
        action = Action(code)
        assert action.candidates == (action,)
        assert action.default is action and action.for_type("1") is action


def test_for_type_rejects_unknown_type():
    with pytest.raises(ValueError, match="unknown attribute Type '4'"):
        Action.X_Z.for_type("4")


def test_every_combined_row_resolves_to_a_permitted_simple_code():
    for row in profile_rows():
        for t in (None, "1", "2", "3"):
            assert row.basic.for_type(t) in row.basic.candidates


def test_option_metadata():
    assert [o.value for o in Option][:2] == ["retain_safe_private", "retain_uids"]
    assert len(Option) == 10
    assert len({o.code for o in Option}) == 10
    assert Option.RETAIN_UIDS.title == "Retain UIDs Option"
    assert row_for(0x00100010).options == {}
    assert row_for(0x0020000D).options == {Option.RETAIN_UIDS: Action.K}


@pytest.mark.parametrize(
    "text", ["(0010,001)", "0010,00100", "(GGGG,0010)", "PatientName", "", "(0010;0010)"]
)
def test_parse_tag_rejects_bad_syntax(text):
    with pytest.raises(ValueError, match="bad tag syntax"):
        parse_tag(text)


def test_parse_tag_mask_only_when_allowed():
    assert parse_tag("(0019,XXXX)", allow_mask=True) == (0x00190000, 0xFFFF0000)
    assert parse_tag("00100010") == (0x00100010, 0xFFFFFFFF)
    with pytest.raises(ValueError, match="mask"):
        parse_tag("(0019,XXXX)")
