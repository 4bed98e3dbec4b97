"""PS3.15 Table E.1-1 (Application Level Confidentiality Profile Attributes) as data.

The table ships as package data (``data/ps3.15-table-e1-1.json``, edition 2024b, 621 rows
with all 11 action columns, and ``data/ps3.15-table-e1-1.additions-2026c.json``, 35 rows
new in 2026c with the Basic Profile action only). See ``data/README.md`` for provenance.

Matching is **by tag number**, never by keyword: pydicom 3.0.2 has no keyword for 25 of
the 2026c additions. :func:`row_for` looks a tag up in this order:

1. an exact row ``(GGGG,EEEE)``;
2. if the group is odd, the "Private Attributes" row (PS3.5 7.8.1: odd groups are private);
3. the masked rows ``(50XX,XXXX)`` Curve Data, ``(60XX,3000)`` Overlay Data and
   ``(60XX,4000)`` Overlay Comments, where each ``X`` is any hex nibble.

Masked rows therefore only ever match *even* groups. PS3.5 7.6 defines the repeating
groups as the even groups 5000-501E and 6000-601E; we match every even group 5000-50FE and
6000-60FE as the table's mask is written (wider, so more is removed, never less). An odd
group such as 6001 is private, so ``(6001,3000)`` gets the private row, not Overlay Data.

Options and precedence
----------------------
:func:`resolve_action` starts from the Basic Profile code and applies the chosen options.
An option column holding ``K`` or ``C`` replaces the Basic Profile code when that option is
chosen (PS3.15 E.1.1 and E.3: the option columns of Table E.1-1 give the action that the
option requires instead of the Basic Profile's); a blank cell leaves it unchanged. When
several chosen options give a code for one attribute and they disagree, **C wins over K**.
In 2024b this can happen on 165 rows, always the pair
"Retain Longitudinal Temporal Information with Full Dates" (K) versus "... with Modified
Dates" (C), 11 of them also with Retain Device Identity (K) on calibration, manufacture and
installation dates. Our rule (evidence: B, the standard gives no precedence text that we
could verify here) is that the more protective code wins: a date kept unshifted next to
shifted dates would reveal the shift, so when Modified Dates is chosen every date it lists
is modified, device dates included.

The 35 additions of 2026c have ``options_known = False``: their option columns are
unknown here, so options never change them and the Basic Profile code stands (more
protective than guessing a ``K``).
"""

from __future__ import annotations

import enum
import functools
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Literal

from pydicom.datadict import dictionary_VR

from ..errors import AnonymizationError

__all__ = [
    "Action",
    "MatchKind",
    "Option",
    "ProfileCounts",
    "ProfileRow",
    "format_tag",
    "parse_tag",
    "profile_counts",
    "profile_rows",
    "resolve_action",
    "row_for",
]

MAIN_FILE = "ps3.15-table-e1-1.json"
ADDITIONS_FILE = "ps3.15-table-e1-1.additions-2026c.json"

Edition = Literal["2024b", "2026c"]
AttributeType = Literal["1", "1C", "2", "2C", "3"]


class Option(enum.Enum):
    """The ten options of the Application Level Confidentiality Profile (PS3.15 E.3).

    Values are the JSON keys of the packaged table (and of template files), in the
    table's column order.
    """

    RETAIN_SAFE_PRIVATE = "retain_safe_private"
    RETAIN_UIDS = "retain_uids"
    RETAIN_DEVICE_IDENTITY = "retain_device_identity"
    RETAIN_INSTITUTION_IDENTITY = "retain_institution_identity"
    RETAIN_PATIENT_CHARACTERISTICS = "retain_patient_characteristics"
    RETAIN_LONG_FULL_DATES = "retain_long_full_dates"
    RETAIN_LONG_MODIFIED_DATES = "retain_long_modified_dates"
    CLEAN_DESCRIPTORS = "clean_descriptors"
    CLEAN_STRUCTURED_CONTENT = "clean_structured_content"
    CLEAN_GRAPHICS = "clean_graphics"

    @property
    def title(self) -> str:
        """The option's name as PS3.15 E.3 writes it."""
        return _OPTION_INFO[self][0]

    @property
    def code(self) -> str:
        """The DCM code of the option in CID 7050 (De-identification Method Code Sequence)."""
        return _OPTION_INFO[self][1]

    @classmethod
    def parse(cls, value: Option | str) -> Option:
        """Return the option named by ``value`` (an :class:`Option` or its JSON key).

        Raises
        ------
        ValueError
            If ``value`` names no option; the message lists the valid names.
        """
        if isinstance(value, Option):
            return value
        try:
            return cls(value)
        except ValueError:
            valid = ", ".join(o.value for o in cls)
            raise ValueError(f"unknown option {value!r}; valid options: {valid}") from None


#: DCM code of the Basic Application Confidentiality Profile (CID 7050).
BASIC_PROFILE_CODE = "113100"

_OPTION_INFO: dict[Option, tuple[str, str]] = {
    Option.RETAIN_SAFE_PRIVATE: ("Retain Safe Private Option", "113111"),
    Option.RETAIN_UIDS: ("Retain UIDs Option", "113110"),
    Option.RETAIN_DEVICE_IDENTITY: ("Retain Device Identity Option", "113109"),
    Option.RETAIN_INSTITUTION_IDENTITY: ("Retain Institution Identity Option", "113112"),
    Option.RETAIN_PATIENT_CHARACTERISTICS: ("Retain Patient Characteristics Option", "113108"),
    Option.RETAIN_LONG_FULL_DATES: (
        "Retain Longitudinal Temporal Information with Full Dates Option",
        "113106",
    ),
    Option.RETAIN_LONG_MODIFIED_DATES: (
        "Retain Longitudinal Temporal Information with Modified Dates Option",
        "113107",
    ),
    Option.CLEAN_DESCRIPTORS: ("Clean Descriptors Option", "113105"),
    Option.CLEAN_STRUCTURED_CONTENT: ("Clean Structured Content Option", "113104"),
    Option.CLEAN_GRAPHICS: ("Clean Graphics Option", "113103"),
}


class Action(enum.Enum):
    """An action code of PS3.15 E.1.1 (Table E.1-1a), simple or combined.

    Simple codes: ``X`` remove; ``Z`` replace with a zero-length value (or a dummy value
    consistent with the VR); ``D`` replace with a non-zero-length dummy value consistent
    with the VR; ``U`` replace with a non-zero-length UID, consistent within the set of
    instances; ``K`` keep (sequences are kept and their items cleaned); ``C`` clean:
    replace with values of similar meaning known not to identify.

    Combined codes name alternatives chosen by the attribute's Type in the IOD:
    ``Z/D`` (Z unless D is required: Type 2 vs 1), ``X/Z`` (Type 3 vs 2), ``X/D``
    (Type 3 vs 1), ``X/Z/D`` (Type 3 vs 2 vs 1) and ``X/Z/U*`` (Type 3 vs 2 vs 1 for
    sequences holding UID references; U* replaces the contained instance UIDs).
    """

    X = "X"
    Z = "Z"
    D = "D"
    U = "U"
    K = "K"
    C = "C"
    Z_D = "Z/D"
    X_Z = "X/Z"
    X_D = "X/D"
    X_Z_D = "X/Z/D"
    X_Z_U = "X/Z/U*"

    @property
    def is_combined(self) -> bool:
        """True for the codes that name alternatives (``Z/D``, ``X/Z`` ...)."""
        return "/" in self.value

    @property
    def candidates(self) -> tuple[Action, ...]:
        """The simple codes this code allows, in the standard's order (a simple code: itself).

        ``X/Z/U*`` gives ``(X, Z, U)``: ``U`` there means keep the sequence and replace the
        instance UIDs it contains.
        """
        if not self.is_combined:
            return (self,)
        return tuple(Action(part.rstrip("*")) for part in self.value.split("/"))

    @property
    def default(self) -> Action:
        """The simple code to apply when the attribute's Type in the IOD is unknown.

        Rule: the **last** candidate (``Z/D`` → D, ``X/Z`` → Z, ``X/D`` → D, ``X/Z/D`` → D,
        ``X/Z/U*`` → U). No candidate of a combined code keeps the original value, so the
        choice only trades conformance against the mere presence of the attribute; the
        last candidate is the one that keeps the strictest Type the code anticipates
        conformant (Z allows a dummy value, PS3.15 E.1.1, so it also serves Type 3), and
        an output that a PACS rejects is a failure the user sees, while an empty or dummy
        value tells nothing. Use :meth:`for_type` when the Type is known.
        """
        return self.candidates[-1]

    def for_type(self, attr_type: str | None) -> Action:
        """Return the simple code for an attribute of the given Type in its IOD.

        Parameters
        ----------
        attr_type : {"1", "1C", "2", "2C", "3"} or None
            The attribute's Type in the IOD (PS3.3); ``None`` if unknown, which gives
            :attr:`default`.

        Returns
        -------
        Action
            Type 3 → the first candidate (X where allowed); Type 2/2C → Z, else the
            nearest stricter candidate; Type 1/1C → D (or U for ``X/Z/U*``), else Z (which
            then must be filled with a dummy value). A simple code returns itself.

        Raises
        ------
        ValueError
            If ``attr_type`` is not one of the Types above.
        """
        if not self.is_combined:
            return self
        if attr_type is None:
            return self.default
        cands = self.candidates
        if attr_type == "3":
            return cands[0]
        if attr_type in ("2", "2C"):
            return Action.Z if Action.Z in cands else cands[-1]
        if attr_type in ("1", "1C"):
            for code in (Action.D, Action.U, Action.Z):
                if code in cands:
                    return code
        raise ValueError(f"unknown attribute Type {attr_type!r}; expected 1, 1C, 2, 2C or 3")


class MatchKind(enum.Enum):
    """How a row's tag is compared with an element's tag."""

    EXACT = "exact"
    MASK = "mask"
    PRIVATE = "private"


@dataclass(frozen=True)
class ProfileRow:
    """One row of Table E.1-1.

    Attributes
    ----------
    tag : str
        The tag as the table writes it: ``(0010,0010)``, ``(60XX,3000)`` or ``(gggg,eeee)``.
    match : MatchKind
        Exact tag, nibble mask or the private-attributes row.
    keyword, name, vr : str or None
        PS3.6 keyword (``None`` where no dictionary has one), the table's name, the VR.
    retired, in_std_comp_iod : bool or None
        The table's "Retired" and "In Std. Comp. IOD" columns (``None`` if unknown).
    basic : Action
        The Basic Profile action.
    option_codes : tuple of (Action or None)
        The 10 option columns in :class:`Option` order; ``None`` is a blank cell.
    options_known : bool
        False for the 2026c additions, whose option columns are unknown.
    edition : {"2024b", "2026c"}
        The edition the row comes from.
    note : str or None
        The table's note, if any.
    value, mask : int
        An element tag ``t`` matches when ``t & mask == value``.
    """

    tag: str
    match: MatchKind
    keyword: str | None
    name: str
    vr: str | None
    retired: bool | None
    in_std_comp_iod: bool | None
    basic: Action
    option_codes: tuple[Action | None, ...]
    options_known: bool
    edition: Edition
    note: str | None
    value: int
    mask: int

    def code_for(self, option: Option | str) -> Action | None:
        """Return the row's code under ``option`` (``None`` where the cell is blank)."""
        return self.option_codes[_OPTION_INDEX[Option.parse(option)]]

    @property
    def options(self) -> Mapping[Option, Action]:
        """The non-blank option cells as a mapping."""
        return {o: c for o, c in zip(Option, self.option_codes, strict=True) if c is not None}

    def matches(self, tag: int) -> bool:
        """Return True if this row's pattern covers ``tag`` (ignores private-group precedence)."""
        return (int(tag) & self.mask) == self.value


@dataclass(frozen=True)
class ProfileCounts:
    """How many rows and codes a table edition holds (for checks against the README)."""

    rows: int
    basic: Mapping[str, int]
    options: Mapping[Option, int]


_OPTION_INDEX = {o: i for i, o in enumerate(Option)}

_EXACT = re.compile(r"^\(([0-9A-F]{4}),([0-9A-F]{4})\)$")
_MASKED = re.compile(r"^\(([0-9A-FX]{4}),([0-9A-FX]{4})\)$")
_LOOSE = re.compile(r"^\(?\s*([0-9A-Fa-fXx]{4})\s*,\s*([0-9A-Fa-fXx]{4})\s*\)?$|^([0-9A-Fa-f]{8})$")


def parse_tag(text: str, *, allow_mask: bool = False) -> tuple[int, int]:
    """Parse a tag written ``(GGGG,EEEE)`` into ``(value, mask)``.

    Parameters
    ----------
    text : str
        ``(0010,0010)``, also ``0010,0010`` or ``00100010``; case-insensitive. With
        ``allow_mask``, ``X`` stands for any hex nibble: ``(0019,XXXX)``, ``(60XX,3000)``.
    allow_mask : bool
        Accept ``X`` nibbles.

    Returns
    -------
    (int, int)
        ``value`` and ``mask``: a tag ``t`` matches when ``t & mask == value``. An exact tag
        has ``mask == 0xFFFFFFFF``.

    Raises
    ------
    ValueError
        If ``text`` is not a tag of that form.
    """
    m = _LOOSE.match(text.strip()) if isinstance(text, str) else None
    if m is None:
        want = "(GGGG,EEEE) with 4+4 hex digits"
        if allow_mask:
            want += ", X for any nibble as in (0019,XXXX)"
        raise ValueError(f"bad tag syntax {text!r}; expected {want}")
    digits = (m.group(3) or (m.group(1) + m.group(2))).upper()
    if "X" in digits and not allow_mask:
        raise ValueError(f"bad tag syntax {text!r}; a mask (X nibble) is not allowed here")
    value = mask = 0
    for ch in digits:
        value <<= 4
        mask <<= 4
        if ch != "X":
            value |= int(ch, 16)
            mask |= 0xF
    return value, mask


def format_tag(tag: int) -> str:
    """Format a tag number as ``(GGGG,EEEE)``."""
    tag = int(tag)
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _code(value: object, where: str) -> Action | None:
    if value is None:
        return None
    try:
        return Action(value)
    except ValueError:
        raise AnonymizationError(
            f"{where}: unknown action code {value!r}; the packaged table is damaged, "
            "reinstall dicomflow_lab"
        ) from None


def _yn(value: object) -> bool | None:
    return None if value is None else value == "Y"


def _row(obj: Mapping[str, object], edition: Edition, source: str) -> ProfileRow:
    tag = str(obj["tag"])
    where = f"{source} {tag}"
    match = MatchKind(obj["match"])
    if match is MatchKind.PRIVATE:
        value, mask = 0x00010000, 0x00010000
    else:
        pattern = _EXACT if match is MatchKind.EXACT else _MASKED
        if not pattern.match(tag):
            raise AnonymizationError(f"{where}: tag does not parse as a {match.value} tag")
        value, mask = parse_tag(tag, allow_mask=match is MatchKind.MASK)
    basic = _code(obj["basic"], where)
    if basic is None:
        raise AnonymizationError(f"{where}: no Basic Profile action")
    vr = obj.get("vr")
    if vr is None and match is MatchKind.EXACT:
        try:
            vr = dictionary_VR(value)
        except KeyError:
            vr = None
    return ProfileRow(
        tag=tag,
        match=match,
        keyword=obj.get("keyword"),  # type: ignore[arg-type]
        name=str(obj["name"]),
        vr=vr,  # type: ignore[arg-type]
        retired=_yn(obj.get("retired")),
        in_std_comp_iod=_yn(obj.get("in_std_comp_iod")),
        basic=basic,
        option_codes=tuple(_code(obj[o.value], where) for o in Option),
        options_known=bool(obj.get("options_known", True)),
        edition=edition,
        note=obj.get("note"),  # type: ignore[arg-type]
        value=value,
        mask=mask,
    )


def _load(name: str, edition: Edition) -> tuple[ProfileRow, ...]:
    path = resources.files(__package__).joinpath("data", name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AnonymizationError(
            f"cannot read the packaged table {name}: {exc}; reinstall dicomflow_lab"
        ) from exc
    return tuple(_row(obj, edition, name) for obj in data)


@functools.cache
def _table() -> tuple[tuple[ProfileRow, ...], dict[int, ProfileRow], tuple[ProfileRow, ...]]:
    rows = _load(MAIN_FILE, "2024b") + _load(ADDITIONS_FILE, "2026c")
    exact: dict[int, ProfileRow] = {}
    for row in rows:
        if row.match is MatchKind.EXACT:
            if row.value in exact:
                raise AnonymizationError(f"{row.tag} appears twice in the packaged table")
            exact[row.value] = row
    masked = tuple(r for r in rows if r.match is MatchKind.MASK)
    return rows, exact, masked


@functools.cache
def _private_row() -> ProfileRow:
    return next(r for r in _table()[0] if r.match is MatchKind.PRIVATE)


def profile_rows(edition: Edition | None = None) -> tuple[ProfileRow, ...]:
    """Return the rows of Table E.1-1: the 621 of 2024b, then the 35 additions of 2026c.

    Parameters
    ----------
    edition : {"2024b", "2026c"} or None
        Only the rows of that file; ``None`` (default) for all 656.
    """
    rows = _table()[0]
    if edition is None:
        return rows
    if edition not in ("2024b", "2026c"):
        raise ValueError(f"unknown edition {edition!r}; expected '2024b' or '2026c'")
    return tuple(r for r in rows if r.edition == edition)


def row_for(tag: int) -> ProfileRow | None:
    """Return the row that governs ``tag``, or ``None`` if the table does not list it.

    Lookup order: exact row, then the private row for odd groups, then the masked rows
    (even groups only). See the module docstring.

    Examples
    --------
    >>> row_for(0x00100010).keyword
    'PatientName'
    >>> row_for(0x60023000).name
    'Overlay Data'
    >>> row_for(0x00091001).name
    'Private Attributes'
    """
    tag = int(tag)
    _, exact, masked = _table()
    row = exact.get(tag)
    if row is not None:
        return row
    if (tag >> 16) & 1:
        return _private_row()
    for row in masked:
        if row.matches(tag):
            return row
    return None


def resolve_action(tag: int, options: Iterable[Option | str] = ()) -> Action | None:
    """Return the effective action for ``tag`` under the chosen options.

    Parameters
    ----------
    tag : int
        The element's tag number (a pydicom ``BaseTag`` is an int).
    options : iterable of Option or str
        The chosen options (PS3.15 E.3).

    Returns
    -------
    Action or None
        The option code (K or C) if a chosen option gives one (C wins over K when they
        disagree), else the Basic Profile code, which may be combined (see
        :meth:`Action.for_type`). ``None`` if the table does not list ``tag``.

    Raises
    ------
    ValueError
        If an option name is unknown.

    Examples
    --------
    >>> resolve_action(0x0020000D)
    <Action.U: 'U'>
    >>> resolve_action(0x0020000D, ["retain_uids"])
    <Action.K: 'K'>
    """
    chosen = [Option.parse(o) for o in options]
    row = row_for(tag)
    if row is None:
        return None
    codes = {row.code_for(o) for o in chosen} - {None}
    if not codes:
        return row.basic
    return Action.C if Action.C in codes else Action.K


def profile_counts(edition: Edition | None = "2024b") -> ProfileCounts:
    """Count rows, Basic Profile codes and non-blank option cells of an edition's rows."""
    rows = profile_rows(edition)
    basic = Counter(r.basic.value for r in rows)
    opts = {o: sum(r.code_for(o) is not None for r in rows) for o in Option}
    return ProfileCounts(rows=len(rows), basic=dict(basic), options=opts)
