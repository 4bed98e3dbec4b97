"""Anonymization templates: PS3.15 options plus per-tag overrides, as JSON data.

A template file is a JSON object::

    {
      "name": "research",
      "description": "...",
      "options": ["retain_long_modified_dates", "clean_descriptors"],
      "overrides": [
        {"selector": "(0010,0010)", "action": "replace", "value": "ANON"},
        {"selector": "StudyDescription", "action": "keep"},
        {"selector": "(0019,XXXX)", "action": "remove"},
        {"selector": "PatientID", "action": "hash"}
      ],
      "safe_private": [{"creator": "GEMS_ACQU_01", "tag": "(0019,xx10)"}],
      "pixel_rules": [{"manufacturer": "ACME", "model": "US-1", "rows": 480, "columns": 640,
                       "rectangles": [[0, 0, 640, 40]]}],
      "dates": {"shift": "per-patient"},
      "uids": {"remap": true},
      "burned_in": "quarantine"
    }

Every key but ``options`` is optional. ``selector`` is a tag ``(GGGG,EEEE)``, a PS3.6
keyword (resolved to its tag number through pydicom's dictionary) or a group mask with
``X`` nibbles. ``dates.shift`` defaults to ``"per-patient"`` when the Retain Longitudinal
Temporal Information with Modified Dates option is chosen and ``"none"`` otherwise;
``uids.remap`` defaults to true unless Retain UIDs is chosen. A value contradicting the
options is an error. ``pixel_rules`` black out burned-in text (see
:mod:`dicomflow_lab.anonymize.burned_in`). ``burned_in`` says what happens to an instance
at risk of burned-in text that no pixel rule covers: ``"quarantine"`` (default: not
written, reported) or ``"warn"`` (written, with a warning in the report — for data whose
pixels someone has reviewed, e.g. secondary captures known to hold no text).

Built-in templates live in ``templates/*.json`` beside this module:

- ``basic``: the Basic Profile, no option.
- ``research``: Retain Longitudinal Temporal Information with Modified Dates, Retain
  Patient Characteristics, Retain Device Identity, Clean Descriptors.
- ``retain-uids``: the Basic Profile with Retain UIDs (for data that must stay linked to
  the originals by UID, e.g. re-import into the same archive).
- ``clinical-trial``: Retain Longitudinal Temporal Information with Modified Dates,
  Retain Patient Characteristics, Clean Descriptors; UIDs remapped. Device identity is
  *not* retained: trials pool data from several sites and station names or serial numbers
  identify the site (evidence: B).
"""

from __future__ import annotations

import difflib
import enum
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydicom.datadict import keyword_dict, tag_for_keyword

from ..errors import AnonymizationError
from .profile import Option, parse_tag

__all__ = [
    "DatePolicy",
    "Override",
    "OverrideAction",
    "PixelRule",
    "Rectangle",
    "SafePrivate",
    "Template",
    "TemplateError",
    "UidPolicy",
    "list_templates",
    "load_template",
    "template_from_dict",
    "template_from_options",
]

_KEYS = (
    "name",
    "description",
    "options",
    "overrides",
    "safe_private",
    "pixel_rules",
    "dates",
    "uids",
    "burned_in",
)


class TemplateError(AnonymizationError, ValueError):
    """A template is missing, is not valid JSON, or does not follow the template schema.

    The message names the source, the JSON location (``overrides[2].action``) and what
    would be valid.
    """


class OverrideAction(enum.Enum):
    """What a per-tag override does, whatever the profile says."""

    KEEP = "keep"
    REPLACE = "replace"
    REMOVE = "remove"
    HASH = "hash"


@dataclass(frozen=True)
class Override:
    """A per-tag override.

    Attributes
    ----------
    selector : str
        As written in the template: ``(0010,0010)``, ``PatientName`` or ``(0019,XXXX)``.
    kind : {"tag", "keyword", "mask"}
        How the selector was written.
    value, mask : int
        The tag number and its match mask; a tag ``t`` is selected when
        ``t & mask == value`` (``mask`` is ``0xFFFFFFFF`` for a tag or keyword).
    action : OverrideAction
        keep, replace (with :attr:`replacement`), remove or hash.
    replacement : str, int, float, list or None
        The new value for ``replace``; ``None`` otherwise.
    """

    selector: str
    kind: Literal["tag", "keyword", "mask"]
    value: int
    mask: int
    action: OverrideAction
    replacement: Any = None

    @property
    def tag(self) -> int | None:
        """The tag number for a tag or keyword selector, ``None`` for a mask."""
        return None if self.kind == "mask" else self.value

    def matches(self, tag: int) -> bool:
        """Return True if this override selects ``tag``."""
        return (int(tag) & self.mask) == self.value


@dataclass(frozen=True)
class SafePrivate:
    """A private element that the Retain Safe Private option may keep.

    ``tag`` is written ``(gggg,xxee)``: the odd group and the element byte within the
    block reserved by ``creator`` (PS3.5 7.8.1).
    """

    creator: str
    group: int
    element: int
    note: str = ""

    @property
    def tag(self) -> str:
        """The element as ``(GGGG,xxEE)``."""
        return f"({self.group:04X},xx{self.element:02X})"


@dataclass(frozen=True)
class Rectangle:
    """A rectangle of pixels (column ``x``, row ``y``, ``width``, ``height``)."""

    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class PixelRule:
    """Where burned-in text sits for a device: black out these rectangles.

    ``None`` in ``manufacturer``, ``model``, ``rows`` or ``columns`` matches any value.
    """

    rectangles: tuple[Rectangle, ...]
    manufacturer: str | None = None
    model: str | None = None
    rows: int | None = None
    columns: int | None = None


@dataclass(frozen=True)
class DatePolicy:
    """How dates are handled: ``per-patient`` shift (keyed offset) or ``none``."""

    shift: Literal["per-patient", "none"] = "none"


@dataclass(frozen=True)
class UidPolicy:
    """Whether UIDs are remapped (keyed hash to ``2.25.`` UIDs)."""

    remap: bool = True


BurnedInPolicy = Literal["quarantine", "warn"]


@dataclass(frozen=True)
class Template:
    """A named, validated anonymization recipe.

    Attributes
    ----------
    name, description : str
    options : frozenset of Option
        The PS3.15 options chosen (empty: the Basic Profile alone).
    overrides : tuple of Override
        Per-tag overrides, in file order; the engine applies the first that matches.
    safe_private : tuple of SafePrivate
    pixel_rules : tuple of PixelRule
    dates : DatePolicy
    uids : UidPolicy
    burned_in : {"quarantine", "warn"}
        What to do with an instance at risk of burned-in text that no pixel rule covers.
    source : str
        Where the template came from (``builtin:research``, a path, ``<dict>``).
    """

    name: str
    description: str = ""
    options: frozenset[Option] = frozenset()
    overrides: tuple[Override, ...] = ()
    safe_private: tuple[SafePrivate, ...] = ()
    pixel_rules: tuple[PixelRule, ...] = ()
    dates: DatePolicy = field(default_factory=DatePolicy)
    uids: UidPolicy = field(default_factory=UidPolicy)
    burned_in: BurnedInPolicy = "quarantine"
    source: str = "<dict>"

    def override_for(self, tag: int) -> Override | None:
        """Return the first override that selects ``tag``, or ``None``."""
        for ov in self.overrides:
            if ov.matches(tag):
                return ov
        return None

    def to_dict(self) -> dict[str, Any]:
        """Return the template in its JSON form (options in table column order)."""
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "options": [o.value for o in Option if o in self.options],
            "overrides": [],
            "safe_private": [
                {"creator": s.creator, "tag": s.tag, **({"note": s.note} if s.note else {})}
                for s in self.safe_private
            ],
            "pixel_rules": [
                {
                    "manufacturer": r.manufacturer,
                    "model": r.model,
                    "rows": r.rows,
                    "columns": r.columns,
                    "rectangles": [[q.x, q.y, q.width, q.height] for q in r.rectangles],
                }
                for r in self.pixel_rules
            ],
            "dates": {"shift": self.dates.shift},
            "uids": {"remap": self.uids.remap},
            "burned_in": self.burned_in,
        }
        for ov in self.overrides:
            item: dict[str, Any] = {"selector": ov.selector, "action": ov.action.value}
            if ov.action is OverrideAction.REPLACE:
                item["value"] = ov.replacement
            out["overrides"].append(item)
        return out


# -- validation -------------------------------------------------------------------------


class _Ctx:
    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, msg: str) -> TemplateError:
        loc = f"{self.source}: {where}: " if where else f"{self.source}: "
        return TemplateError(loc + msg)


def _typename(value: object) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


def _expect(ctx: _Ctx, where: str, value: object, kind: type | tuple[type, ...], what: str):
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        raise ctx.fail(where, f"expected {what}, got {_typename(value)} {value!r}")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _options(ctx: _Ctx, raw: object) -> frozenset[Option]:
    _expect(ctx, "options", raw, list, "an array of option names")
    out = set()
    for i, name in enumerate(raw):  # type: ignore[arg-type]
        where = f"options[{i}]"
        _expect(ctx, where, name, str, "an option name (string)")
        try:
            out.add(Option.parse(name))
        except ValueError as exc:
            raise ctx.fail(where, str(exc)) from None
    return frozenset(out)


def _selector(ctx: _Ctx, where: str, text: str) -> tuple[str, int, int]:
    stripped = text.strip()
    if stripped.isidentifier() and not all(c in "0123456789abcdefABCDEF" for c in stripped):
        tag = tag_for_keyword(stripped)
        if tag is None:
            close = difflib.get_close_matches(stripped, keyword_dict, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ctx.fail(
                where, f"unknown DICOM keyword {stripped!r} (not in pydicom's dictionary){hint}"
            )
        return "keyword", tag, 0xFFFFFFFF
    try:
        value, mask = parse_tag(stripped, allow_mask=True)
    except ValueError:
        raise ctx.fail(
            where,
            f"bad tag syntax {text!r}; expected a tag (GGGG,EEEE) of hex digits, a group "
            "mask such as (0019,XXXX), or a DICOM keyword such as PatientName",
        ) from None
    return ("tag" if mask == 0xFFFFFFFF else "mask"), value, mask


def _overrides(ctx: _Ctx, raw: object) -> tuple[Override, ...]:
    _expect(ctx, "overrides", raw, list, "an array of overrides")
    valid_actions = ", ".join(a.value for a in OverrideAction)
    out = []
    for i, item in enumerate(raw):  # type: ignore[arg-type]
        where = f"overrides[{i}]"
        _expect(ctx, where, item, dict, 'an object {"selector": ..., "action": ...}')
        extra = set(item) - {"selector", "action", "value"}
        if extra:
            raise ctx.fail(
                where, f"unknown key(s) {sorted(extra)}; allowed: selector, action, value"
            )
        for key in ("selector", "action"):
            if key not in item:
                raise ctx.fail(where, f"missing {key!r}")
        sel = _expect(ctx, f"{where}.selector", item["selector"], str, "a string")
        kind, value, mask = _selector(ctx, f"{where}.selector", sel)
        act = _expect(ctx, f"{where}.action", item["action"], str, "a string")
        try:
            action = OverrideAction(act)
        except ValueError:
            raise ctx.fail(
                f"{where}.action", f"unknown override action {act!r}; valid: {valid_actions}"
            ) from None
        if action is OverrideAction.REPLACE:
            if "value" not in item or item["value"] is None:
                raise ctx.fail(where, "action 'replace' needs a 'value' (the new value)")
            repl = item["value"]
            parts = repl if isinstance(repl, list) else [repl]
            for p in parts:
                _expect(ctx, f"{where}.value", p, (str, int, float), "a string, number or array")
        elif "value" in item:
            raise ctx.fail(where, f"'value' is only allowed with action 'replace', not {act!r}")
        else:
            repl = None
        out.append(Override(sel, kind, value, mask, action, repl))
    return tuple(out)


def _safe_private(ctx: _Ctx, raw: object) -> tuple[SafePrivate, ...]:
    _expect(ctx, "safe_private", raw, list, "an array")
    out = []
    for i, item in enumerate(raw):  # type: ignore[arg-type]
        where = f"safe_private[{i}]"
        _expect(ctx, where, item, dict, 'an object {"creator": ..., "tag": "(gggg,xxee)"}')
        extra = set(item) - {"creator", "tag", "note"}
        if extra:
            raise ctx.fail(where, f"unknown key(s) {sorted(extra)}; allowed: creator, tag, note")
        creator = _expect(ctx, f"{where}.creator", item.get("creator"), str, "a string")
        if not creator.strip():
            raise ctx.fail(f"{where}.creator", "the private creator must not be empty")
        tag = _expect(ctx, f"{where}.tag", item.get("tag"), str, "a string")
        t = tag.strip().upper()
        ok = (
            len(t) == 11
            and t[0] == "("
            and t[5] == ","
            and t[6:8] == "XX"
            and t[10] == ")"
            and all(c in "0123456789ABCDEF" for c in t[1:5] + t[8:10])
        )
        if not ok:
            raise ctx.fail(
                f"{where}.tag",
                f"bad private tag {tag!r}; expected (gggg,xxee) with an odd group, "
                "e.g. (0019,xx10)",
            )
        group, element = int(t[1:5], 16), int(t[8:10], 16)
        if not group & 1:
            raise ctx.fail(f"{where}.tag", f"group {group:04X} is even, so not private")
        note = _expect(ctx, f"{where}.note", item.get("note", ""), str, "a string")
        out.append(SafePrivate(creator, group, element, note))
    return tuple(out)


def _opt_int(ctx: _Ctx, where: str, value: object) -> int | None:
    if value is None:
        return None
    _expect(ctx, where, value, int, "a positive integer or null")
    if value <= 0:  # type: ignore[operator]
        raise ctx.fail(where, f"expected a positive integer, got {value}")
    return value  # type: ignore[return-value]


def _pixel_rules(ctx: _Ctx, raw: object) -> tuple[PixelRule, ...]:
    _expect(ctx, "pixel_rules", raw, list, "an array")
    allowed = {"manufacturer", "model", "rows", "columns", "rectangles"}
    out = []
    for i, item in enumerate(raw):  # type: ignore[arg-type]
        where = f"pixel_rules[{i}]"
        _expect(ctx, where, item, dict, "an object")
        extra = set(item) - allowed
        if extra:
            raise ctx.fail(where, f"unknown key(s) {sorted(extra)}; allowed: {sorted(allowed)}")
        strs = {}
        for key in ("manufacturer", "model"):
            v = item.get(key)
            if v is not None:
                _expect(ctx, f"{where}.{key}", v, str, "a string or null")
            strs[key] = v
        rows = _opt_int(ctx, f"{where}.rows", item.get("rows"))
        cols = _opt_int(ctx, f"{where}.columns", item.get("columns"))
        rects_raw = item.get("rectangles")
        _expect(ctx, f"{where}.rectangles", rects_raw, list, "an array of [x, y, width, height]")
        if not rects_raw:
            raise ctx.fail(f"{where}.rectangles", "needs at least one rectangle")
        rects = []
        for j, r in enumerate(rects_raw):
            w = f"{where}.rectangles[{j}]"
            if (
                not isinstance(r, list)
                or len(r) != 4
                or not all(isinstance(n, int) and not isinstance(n, bool) for n in r)
            ):
                raise ctx.fail(w, f"expected [x, y, width, height] of integers, got {r!r}")
            x, y, width, height = r
            if x < 0 or y < 0 or width <= 0 or height <= 0:
                raise ctx.fail(w, f"x and y must be >= 0, width and height > 0; got {r!r}")
            if cols is not None and x + width > cols:
                raise ctx.fail(w, f"x + width = {x + width} exceeds columns = {cols}")
            if rows is not None and y + height > rows:
                raise ctx.fail(w, f"y + height = {y + height} exceeds rows = {rows}")
            rects.append(Rectangle(x, y, width, height))
        out.append(PixelRule(tuple(rects), strs["manufacturer"], strs["model"], rows, cols))
    return tuple(out)


def _dates(ctx: _Ctx, raw: object, options: frozenset[Option]) -> DatePolicy:
    modified = Option.RETAIN_LONG_MODIFIED_DATES in options
    if raw is None:
        return DatePolicy("per-patient" if modified else "none")
    _expect(ctx, "dates", raw, dict, 'an object {"shift": "per-patient" | "none"}')
    extra = set(raw) - {"shift"}  # type: ignore[arg-type]
    if extra:
        raise ctx.fail("dates", f"unknown key(s) {sorted(extra)}; allowed: shift")
    shift = raw.get("shift", "per-patient" if modified else "none")  # type: ignore[union-attr]
    if shift not in ("per-patient", "none"):
        raise ctx.fail("dates.shift", f"unknown value {shift!r}; valid: per-patient, none")
    if shift == "per-patient" and not modified:
        raise ctx.fail(
            "dates.shift",
            "'per-patient' needs the option retain_long_modified_dates (without it the "
            "Basic Profile removes or blanks the dates)",
        )
    if shift == "none" and modified:
        raise ctx.fail(
            "dates.shift",
            "the option retain_long_modified_dates requires dates to be modified; use "
            "'per-patient', or choose retain_long_full_dates to keep dates unchanged",
        )
    return DatePolicy(shift)


def _uids(ctx: _Ctx, raw: object, options: frozenset[Option]) -> UidPolicy:
    retain = Option.RETAIN_UIDS in options
    if raw is None:
        return UidPolicy(remap=not retain)
    _expect(ctx, "uids", raw, dict, 'an object {"remap": true | false}')
    extra = set(raw) - {"remap"}  # type: ignore[arg-type]
    if extra:
        raise ctx.fail("uids", f"unknown key(s) {sorted(extra)}; allowed: remap")
    remap = raw.get("remap", not retain)  # type: ignore[union-attr]
    _expect(ctx, "uids.remap", remap, bool, "true or false")
    if remap and retain:
        raise ctx.fail("uids.remap", "true contradicts the option retain_uids (UIDs kept)")
    if not remap and not retain:
        raise ctx.fail(
            "uids.remap",
            "false needs the option retain_uids (the Basic Profile replaces UIDs)",
        )
    return UidPolicy(remap)


def _burned_in(ctx: _Ctx, raw: object) -> BurnedInPolicy:
    if raw not in ("quarantine", "warn"):
        raise ctx.fail(
            "burned_in",
            f"unknown value {raw!r}; valid: 'quarantine' (hold back instances at risk of "
            "burned-in text that no pixel rule covers) or 'warn' (write them, with a warning)",
        )
    return raw  # type: ignore[return-value]


def template_from_dict(
    data: Mapping[str, Any], *, source: str = "<dict>", default_name: str | None = None
) -> Template:
    """Validate a template given as a mapping (the parsed JSON) and build it.

    Parameters
    ----------
    data : mapping
        The template object (see the module docstring for the schema).
    source : str
        Named in error messages.
    default_name : str, optional
        Name to use when ``data`` has no ``"name"``.

    Raises
    ------
    TemplateError
        If anything does not follow the schema; the message gives the location and what
        would be valid.
    """
    ctx = _Ctx(source)
    _expect(ctx, "", data, dict, "a JSON object at the top level")
    extra = set(data) - set(_KEYS)
    if extra:
        raise ctx.fail("", f"unknown key(s) {sorted(extra)}; allowed: {', '.join(_KEYS)}")
    name = data.get("name", default_name)
    if name is None:
        raise ctx.fail("", "missing 'name'")
    _expect(ctx, "name", name, str, "a string")
    if not name.strip():
        raise ctx.fail("name", "must not be empty")
    desc = _expect(ctx, "description", data.get("description", ""), str, "a string")
    options = _options(ctx, data.get("options", []))
    return Template(
        name=name,
        description=desc,
        options=options,
        overrides=_overrides(ctx, data.get("overrides", [])),
        safe_private=_safe_private(ctx, data.get("safe_private", [])),
        pixel_rules=_pixel_rules(ctx, data.get("pixel_rules", [])),
        dates=_dates(ctx, data.get("dates"), options),
        uids=_uids(ctx, data.get("uids"), options),
        burned_in=_burned_in(ctx, data.get("burned_in", "quarantine")),
        source=source,
    )


def _builtin_dir():
    return resources.files(__package__).joinpath("templates")


def list_templates() -> list[str]:
    """Return the names of the built-in templates, sorted."""
    return sorted(
        p.name[: -len(".json")] for p in _builtin_dir().iterdir() if p.name.endswith(".json")
    )


def _parse_json(text: str, ctx: _Ctx) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ctx.fail(
            "", f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc


def load_template(name_or_path: str | os.PathLike[str]) -> Template:
    """Load and validate a built-in template by name, or a template JSON file by path.

    Parameters
    ----------
    name_or_path : str or os.PathLike
        A built-in name (see :func:`list_templates`), or the path of a ``.json`` file.

    Returns
    -------
    Template

    Raises
    ------
    TemplateError
        If no such template exists (the message lists the built-ins), the file is not valid
        JSON (line and column given) or does not follow the schema.

    Examples
    --------
    >>> sorted(o.value for o in load_template("research").options)[:2]
    ['clean_descriptors', 'retain_device_identity']
    """
    if isinstance(name_or_path, str) and name_or_path in list_templates():
        ctx = _Ctx(f"builtin:{name_or_path}")
        text = _builtin_dir().joinpath(f"{name_or_path}.json").read_text(encoding="utf-8")
        return template_from_dict(_parse_json(text, ctx), source=ctx.source)
    path = Path(name_or_path)
    if not path.is_file():
        raise TemplateError(
            f"no template {os.fspath(name_or_path)!r}: not a built-in "
            f"({', '.join(list_templates())}) and no such file"
        )
    ctx = _Ctx(str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ctx.fail("", f"cannot read the template: {exc}") from exc
    return template_from_dict(_parse_json(text, ctx), source=str(path), default_name=path.stem)


def template_from_options(*options: Option | str, name: str | None = None) -> Template:
    """Build a template from any combination of options, with no overrides.

    Parameters
    ----------
    *options : Option or str
        Options or their JSON names (``"retain_uids"``).
    name : str, optional
        Defaults to ``basic`` or ``basic+<option>+...`` in the table's column order.

    Raises
    ------
    ValueError
        If an option name is unknown (the message lists the valid ones).
    """
    chosen = frozenset(Option.parse(o) for o in options)
    ordered = [o.value for o in Option if o in chosen]
    return template_from_dict(
        {"name": name or "+".join(["basic", *ordered]), "options": ordered},
        source="template_from_options",
    )
