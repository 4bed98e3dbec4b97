"""The de-identification engine: PS3.15 Table E.1-1, its options and a template's overrides.

For each element the engine decides one action, in this order:

1. the template's first override that selects the tag (keep / replace / remove / hash);
2. private elements (odd group): removed, unless Retain Safe Private is chosen and the
   (creator, group, element byte) is in the safe list (``data/safe-private.json`` plus
   the template's own); private creators stay only while their block keeps an element;
3. the table row matched by tag number (:func:`.profile.row_for`), resolved under the
   template's options (:func:`.profile.resolve_action`); a combined code gives its
   :attr:`.profile.Action.default` (the last candidate: ``X/Z`` → Z, ``X/D``/``Z/D``/
   ``X/Z/D`` → D, ``X/Z/U*`` → U), as the attribute's Type in the IOD is not known here;
4. elements not in the table that pydicom's dictionary knows are kept (K), sequences
   recursed into, UIDs that are not well known remapped unless UIDs are retained;
   unknown public elements and VR UN are removed.

Values: Z empties (Patient's Name and ID get their pseudonyms, a dummy Z allows); D
writes a dummy of the VR (``ANONYMIZED``, ``19000101``, ``000000``, ``0``, zero bytes;
UIDs are remapped); U remaps UIDs with the keyed :class:`.uids.UidRemapper`; C cleans
(:mod:`.clean`).

Sequences: K and U keep the items and process each element of them by the same rules.
D keeps the structure as a dummy: the table still decides for the attributes it lists,
and the other attributes that could identify (text, names, dates, binary) get dummy
values, so that, e.g., the codes of an Institution Code Sequence do not survive. C (Clean
Structured Content, Clean Graphics, Clean Descriptors) cleans: text the table would
remove and text outside the table is cleaned, dates shifted, UIDs remapped.

Kept elements are passed through as read (no decoding, no copy of the Pixel Data bytes),
which keeps the engine fast.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydicom
from pydicom.dataelem import DataElement, RawDataElement, empty_value_for_VR
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from .._fsutil import atomic_writer
from ..errors import AnonymizationError
from ._encode import encode, encode_sequence, new_element, write_part10
from ._identity import FREE_TEXT_VRS, mask_element, patient_pattern
from ._results import (
    BINARY_VRS,
    DUMMY_TEXT,
    ActionRecord,
    InstanceResult,
    as_display_element,
    as_element,
    dict_vr,
    display,
    dummy,
    keyword,
    known,
    load_safe_private,
    path,
    raw_text,
    uid_text,
    values,
)
from .clean import TEXT_VRS, Cleaner
from .dates import patient_offset_days
from .keys import as_key, derive
from .profile import BASIC_PROFILE_CODE, Action, Option, format_tag, resolve_action, row_for
from .pseudonyms import Pseudonymizer
from .templates import Override, PixelRule, Template, load_template
from .uids import UidRemapper, is_well_known_uid

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ActionRecord",
    "Anonymizer",
    "InstanceResult",
    "encode",
    "load_safe_private",
    "write_part10",
]

logger = logging.getLogger(__name__)

_MAX_DEPTH = 32
_PATIENT_NAME = 0x00100010
_PATIENT_ID = 0x00100020
_SOP_INSTANCE_UID = 0x00080018
_SOP_CLASS_UID = 0x00080016
_PIXEL_DATA = 0x7FE00010
_CLEAN_PIXEL_CODE = ("113101", "Clean Pixel Data Option")
#: VRs that can identify when they sit in a sequence being cleaned or dummied.
_IDENTIFYING_VRS = TEXT_VRS | BINARY_VRS | {"PN", "DA", "DT", "TM", "AE", "AS"}


@dataclass(frozen=True)
class _Plan:
    code: str
    rule: str
    in_table: bool
    override: Override | None = None


# -- the engine -------------------------------------------------------------------------


class _State:
    """Per-instance working state."""

    __slots__ = (
        "cleaner",
        "identity",
        "implicit",
        "kept_unrecorded",
        "little",
        "offset",
        "record_values",
        "records",
        "source",
        "src",
        "uid_map",
        "warnings",
    )

    def __init__(self, src: Dataset, source: str | None, record_values: bool) -> None:
        self.src = src
        self.source = source
        self.record_values = record_values
        self.records: list[ActionRecord] = []
        self.warnings: list[str] = []
        self.uid_map: dict[str, str] = {}
        self.offset: int | None = None
        self.cleaner: Cleaner | None = None
        self.identity = patient_pattern(src)
        self.kept_unrecorded = 0
        self.implicit, self.little = src.original_encoding


class Anonymizer:
    """De-identify DICOM instances with a template (PS3.15 Basic Profile + options).

    Parameters
    ----------
    template : Template, str or os.PathLike, optional
        A :class:`.templates.Template`, a built-in name (``basic``, ``research``,
        ``retain-uids``, ``clinical-trial``) or the path of a template JSON file.
    key : str or bytes
        The secret key (required): new UIDs, date offsets and pseudonyms derive from it.
        Make one with :func:`.keys.new_key` and keep it safe.
    patient_map : dict, pandas.DataFrame, str or os.PathLike, optional
        Original Patient ID → new ID (and name); see :class:`.pseudonyms.Pseudonymizer`.
    record_values : bool, optional
        Put display values in the action records (``before`` / ``after``); for previews
        only, as they hold the original values.

    Raises
    ------
    AnonymizationError
        If ``key`` is missing or empty, or the template cannot be loaded.

    Examples
    --------
    >>> from dicomflow_lab.anonymize import Anonymizer, new_key
    >>> anon = Anonymizer("basic", key="demo key")
    >>> anon.template.name
    'basic'
    """

    def __init__(
        self,
        template: Template | str | os.PathLike[str] = "basic",
        *,
        key: str | bytes | None = None,
        patient_map: Any = None,
        record_values: bool = False,
    ) -> None:
        if key is None:
            raise AnonymizationError(
                "a secret key is required: pass key=... (for example "
                "key=dfl.anonymize.new_key(), and keep it to reproduce or map the results)"
            )
        try:
            self._key = as_key(key)
        except (ValueError, TypeError) as exc:
            raise AnonymizationError(f"bad key: {exc}") from None
        self._template = template if isinstance(template, Template) else load_template(template)
        opts = self._template.options
        self._options = opts
        self._retain_safe = Option.RETAIN_SAFE_PRIVATE in opts
        self._retain_uids = not self._template.uids.remap
        self._shift = self._template.dates.shift == "per-patient"
        self._uids = UidRemapper(self._key)
        self._pseudo = Pseudonymizer(self._key, patient_map)
        self._audit = hmac.new(derive(self._key, "audit"), digestmod=hashlib.sha256)
        self._hash = hmac.new(derive(self._key, "hash"), digestmod=hashlib.sha256)
        self._record_values = record_values
        self._safe = set(load_safe_private()) | {
            (s.creator.strip(), s.group, s.element) for s in self._template.safe_private
        }
        self._plans: dict[int, _Plan] = {}
        self._private_plans: dict[tuple[int, str | None], _Plan] = {}
        self._offsets: dict[str, int] = {}
        self._deid_cache: dict[tuple[Any, ...], list[DataElement | RawDataElement]] = {}
        self._method = self._method_values()
        self._codes = [(BASIC_PROFILE_CODE, "Basic Application Confidentiality Profile")] + [
            (o.code, o.title.replace(" with ", " ")) for o in Option if o in opts
        ]  # CID 7050 meanings (PS3.16) have no "with"; they must fit an LO (64)

    # -- public API --------------------------------------------------------------------

    @property
    def template(self) -> Template:
        """The template in use."""
        return self._template

    @property
    def uid_map(self) -> dict[str, str]:
        """Every original → new UID pair produced so far by this anonymizer."""
        return dict(self._uids.mapping)

    def anonymize(self, ds: Dataset, *, source: str | None = None) -> InstanceResult:
        """De-identify one dataset; ``ds`` itself is never changed.

        Parameters
        ----------
        ds : pydicom.dataset.Dataset
            The instance (a ``FileDataset`` keeps its file meta and transfer syntax).
        source : str, optional
            Where it came from; named in errors and in the result.

        Returns
        -------
        InstanceResult
            The de-identified dataset (``None`` if quarantined) and the action records.

        Raises
        ------
        AnonymizationError
            If the dataset cannot be processed (the message names ``source``).
        """
        return self._run(ds, source, self._record_values)

    def anonymize_file(
        self,
        src: str | os.PathLike[str],
        dst: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        fsync: bool = False,
    ) -> InstanceResult:
        """Read ``src``, de-identify it and write the result to ``dst`` atomically.

        Parameters
        ----------
        src : str or os.PathLike
            The original file (never modified).
        dst : str or os.PathLike
            The output file; if it is an existing folder, the file is written as
            ``<dst>/<new StudyUID>/<new SeriesUID>/<new SOPInstanceUID>.dcm``.
        overwrite : bool, optional
            Replace an existing ``dst`` file (default False).
        fsync : bool, optional
            Flush the file to disk before the rename (default False: the rename is atomic
            for readers either way; set True for durability across power loss).

        Returns
        -------
        InstanceResult
            ``result.source`` is ``src``; nothing is written when the instance is
            quarantined. The transfer syntax and the Pixel Data bytes are kept.

        Raises
        ------
        AnonymizationError
            If ``src`` cannot be read as DICOM, ``dst`` is ``src`` or exists (without
            ``overwrite``).
        """
        src_path = Path(src)
        ds = self._read(src_path)
        result = self._run(ds, os.fspath(src), self._record_values)
        if result.dataset is not None:
            self.write(result, dst, overwrite=overwrite, fsync=fsync)
        return result

    def write(
        self,
        result: InstanceResult,
        dst: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        fsync: bool = False,
    ) -> Path:
        """Write a result's dataset to ``dst`` (a file, or a folder as in :meth:`anonymize_file`).

        Returns
        -------
        pathlib.Path
            The file written.

        Raises
        ------
        AnonymizationError
            If the result is quarantined, ``dst`` is the source file, or ``dst`` exists.
        """
        if result.dataset is None:
            raise AnonymizationError(
                f"{result.source or '<dataset>'}: quarantined ({result.quarantined}); "
                "nothing to write"
            )
        ds = result.dataset
        out = Path(dst)
        if out.is_dir():
            out = (
                out
                / str(ds.get("StudyInstanceUID", "unknown-study"))
                / str(ds.get("SeriesInstanceUID", "unknown-series"))
                / f"{ds.get('SOPInstanceUID', 'unknown-instance')}.dcm"
            )
        if result.source is not None:
            srcp = Path(result.source)
            if srcp.exists() and out.exists() and os.path.samefile(srcp, out):
                raise AnonymizationError(
                    f"{result.source}: refusing to write the output over the original"
                )
            if srcp.resolve() == out.resolve():
                raise AnonymizationError(
                    f"{result.source}: refusing to write the output over the original"
                )
        if out.exists() and not overwrite:
            raise AnonymizationError(f"{out}: exists; pass overwrite=True to replace it")
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            with atomic_writer(out, fsync=fsync, fsync_folder=fsync) as fh:
                write_part10(fh, ds)
        except OSError as exc:
            raise AnonymizationError(f"{out}: cannot write: {exc}") from exc
        except Exception as exc:
            raise AnonymizationError(
                f"{result.source or '<dataset>'}: cannot encode the de-identified dataset: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        return out

    def preview(self, src: str | os.PathLike[str] | Dataset) -> pd.DataFrame:
        """Return the per-element before → after table for one instance; nothing is written.

        Parameters
        ----------
        src : str, os.PathLike or pydicom.dataset.Dataset
            A file or a dataset.

        Returns
        -------
        pandas.DataFrame
            Columns ``path``, ``tag`` (``(gggg,eeee)``), ``keyword``, ``vr``, ``action``,
            ``rule``, ``before``, ``after``; one row per element of the original (kept
            elements included), then the attributes the engine adds.
        """
        import pandas as pd

        if isinstance(src, Dataset):
            ds, source = src, None
        else:
            ds, source = self._read(Path(src)), os.fspath(src)
        result = self._run(ds, source, True, preview=True)
        rows = [
            {
                "path": r.path,
                "tag": format_tag(r.tag),
                "keyword": r.keyword,
                "vr": r.vr,
                "action": r.action,
                "rule": r.rule,
                "before": r.before,
                "after": r.after,
            }
            for r in result.records
        ]
        cols = ["path", "tag", "keyword", "vr", "action", "rule", "before", "after"]
        return pd.DataFrame(rows, columns=cols)

    # -- reading -----------------------------------------------------------------------

    @staticmethod
    def _read(path: Path) -> Dataset:
        from ..core.dataset import sniff_dicom

        try:
            with path.open("rb") as fh:
                style = sniff_dicom(fh.read(132))
            if style is None:
                raise AnonymizationError(f"{path}: not a DICOM file")
            ds = pydicom.dcmread(path, force=style == "raw")
        except AnonymizationError:
            raise
        except FileNotFoundError:
            raise AnonymizationError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise AnonymizationError(f"{path}: is a directory, not a DICOM file") from None
        except Exception as exc:
            raise AnonymizationError(
                f"{path}: cannot read as DICOM ({type(exc).__name__}: {exc})"
            ) from exc
        if "SOPInstanceUID" not in ds and "DirectoryRecordSequence" not in ds:
            raise AnonymizationError(
                f"{path}: no SOP Instance UID (0008,0018): the file is truncated or is not a "
                "DICOM instance"
            )
        return ds

    # -- planning (cached per tag) -----------------------------------------------------

    def _plan(self, tag: int) -> _Plan:
        plan = self._plans.get(tag)
        if plan is None:
            plan = self._plans[tag] = self._compute_plan(tag)
        return plan

    def _compute_plan(self, tag: int) -> _Plan:
        ov = self._template.override_for(tag)
        row = row_for(tag)
        if ov is not None:
            return _Plan(ov.action.value, f"override:{ov.selector}", row is not None, ov)
        if row is not None:
            eff = resolve_action(tag, self._options)
            assert eff is not None
            simple = eff.default if eff.is_combined else eff
            if eff in (Action.K, Action.C) and eff is not row.basic:
                names = [o.value for o in Option if o in self._options and row.code_for(o) is eff]
                rule = f"option:{'+'.join(names)}:{eff.value}"
            else:
                rule = f"basic:{row.basic.value}"
            return _Plan(simple.value, rule, True)
        if tag & 0xFFFF == 0:
            return _Plan("X", "group-length", False)
        if known(tag):
            return _Plan("K", "not-in-table", False)
        return _Plan("X", "unknown", False)

    def _private_plan(self, tag: int, creator: str | None) -> _Plan:
        key = (tag, creator)
        plan = self._private_plans.get(key)
        if plan is None:
            ov = self._template.override_for(tag)
            if ov is not None:
                plan = _Plan(ov.action.value, f"override:{ov.selector}", True, ov)
            elif (
                self._retain_safe
                and creator is not None
                and (creator, tag >> 16, tag & 0xFF) in self._safe
            ):
                plan = _Plan("C", "private:safe", True)
            elif self._retain_safe:
                plan = _Plan("X", "private:not-safe", True)
            else:
                plan = _Plan("X", "private", True)
            self._private_plans[key] = plan
        return plan

    # -- running -----------------------------------------------------------------------

    def _run(
        self, ds: Dataset, source: str | None, record_values: bool, *, preview: bool = False
    ) -> InstanceResult:
        try:
            return self._run_unchecked(ds, source, record_values, preview)
        except AnonymizationError:
            raise
        except RecursionError:
            raise AnonymizationError(
                f"{source or '<dataset>'}: sequences nested too deeply"
            ) from None
        except Exception as exc:
            raise AnonymizationError(
                f"{source or '<dataset>'}: cannot de-identify: {type(exc).__name__}: {exc}"
            ) from exc

    def _run_unchecked(
        self, ds: Dataset, source: str | None, record_values: bool, preview: bool
    ) -> InstanceResult:
        st = _State(ds, source, record_values)
        orig_pid = self._orig_pid(st)
        if self._shift:
            off = self._offsets.get(orig_pid)
            if off is None:
                off = self._offsets[orig_pid] = patient_offset_days(self._key, orig_pid)
            st.offset = off
            if not orig_pid:
                st.warnings.append(
                    "no Patient ID: dates shifted by the offset shared by all instances without one"
                )
        st.cleaner = Cleaner(ds, st.offset, self._pseudonym)

        risk = self._assess(ds, st)
        rule = None
        if risk is not None:
            rule = self._match_rule(ds)
            if rule is None and self._template.burned_in == "warn":
                st.warnings.append(
                    f"{risk}; written without pixel cleaning (the template's burned_in "
                    "policy is 'warn')"
                )
            elif rule is None and not preview:
                logger.debug("quarantined %s: burned-in risk, no pixel rule", source)
                return InstanceResult(
                    source=source,
                    dataset=None,
                    records=[],
                    quarantined=f"{risk}, no pixel rule matches",
                    warnings=st.warnings,
                    patient=(orig_pid, self._pseudo.patient_id(orig_pid)),
                    date_offset_days=st.offset,
                )

        out = self._level(st, ds, "", None, 0)
        self._add_deid_attributes(st, out, pixel_rule=False)
        out.file_meta = self._file_meta(st, ds, out)
        pixel_desc = None
        if rule is not None and not preview:
            try:
                pixel_desc = self._apply_pixel_rule(st, ds, out, rule)
            except AnonymizationError as exc:
                return InstanceResult(
                    source=source,
                    dataset=None,
                    records=st.records,
                    quarantined=f"{risk}; the pixel rule could not be applied: {exc}",
                    warnings=st.warnings,
                    uid_map=st.uid_map,
                    patient=(orig_pid, self._pseudo.patient_id(orig_pid)),
                    date_offset_days=st.offset,
                )
        return InstanceResult(
            source=source,
            dataset=out,
            records=st.records,
            quarantined=None,
            warnings=st.warnings,
            uid_map=st.uid_map,
            patient=(orig_pid, self._pseudo.patient_id(orig_pid)),
            date_offset_days=st.offset,
            pixel_rule=pixel_desc,
            kept_unrecorded=st.kept_unrecorded,
        )

    # -- burned-in annotations ---------------------------------------------------------

    @staticmethod
    def _burned_in() -> Any:
        try:
            from . import burned_in
        except ImportError:  # pragma: no cover - the module ships with the package
            return None
        return burned_in

    def _assess(self, ds: Dataset, st: _State) -> str | None:
        mod = self._burned_in()
        if mod is None:  # pragma: no cover
            st.warnings.append("burned-in text not assessed: anonymize.burned_in missing")
            return None
        return mod.assess(ds)

    def _match_rule(self, ds: Dataset) -> PixelRule | None:
        if not self._template.pixel_rules:
            return None
        return self._burned_in().match_rule(self._template.pixel_rules, ds)

    def _apply_pixel_rule(self, st: _State, ds: Dataset, out: Dataset, rule: PixelRule) -> str:
        mod = self._burned_in()
        res = mod.apply_rule(out, rule, source=st.source)
        describe = getattr(mod, "describe_rule", None)
        desc = describe(rule) if describe is not None else repr(rule)
        if getattr(res, "new_instance", False):
            orig = str(ds.get("SOPInstanceUID", ""))
            new_uid = self._uids("pixel-rule:" + orig)
            st.uid_map[orig] = new_uid
            out.SOPInstanceUID = new_uid
            out.file_meta.MediaStorageSOPInstanceUID = new_uid
        self._add_deid_attributes(st, out, pixel_rule=True)
        return desc

    # -- per level ---------------------------------------------------------------------

    def _level(
        self, st: _State, src: Dataset, prefix: str, mode: str | None, depth: int
    ) -> Dataset:
        if depth > _MAX_DEPTH:
            raise AnonymizationError(
                f"{st.source or '<dataset>'}: sequences nested deeper than {_MAX_DEPTH}"
            )
        out = Dataset()
        implicit, little = src.original_encoding
        out.set_original_encoding(implicit, little, src.original_character_set)
        parent_enc = getattr(src, "_parent_encoding", None)
        if parent_enc is not None:
            out._parent_encoding = parent_enc
        odict = out._dict
        creators: dict[tuple[int, int], str] | None = None
        creator_tags: list[int] = []
        for tag in sorted(src._dict):
            group = tag >> 16
            if group == 0x0002:
                continue  # file meta in the dataset body: rebuilt separately
            if group & 1:
                elem_no = tag & 0xFFFF
                if 0x0010 <= elem_no <= 0x00FF:
                    ov = self._template.override_for(tag)
                    if ov is None:
                        creator_tags.append(tag)
                        continue
                    plan = _Plan(ov.action.value, f"override:{ov.selector}", True, ov)
                else:
                    if creators is None:
                        creators = self._creators(src)
                    creator = creators.get((group, elem_no >> 8)) if elem_no >= 0x1000 else None
                    plan = self._private_plan(tag, creator)
            else:
                plan = self._plan(int(tag))
            self._apply(st, src, odict, tag, plan, prefix, mode, depth)
        if creator_tags:
            self._resolve_creators(st, src, out, creator_tags, prefix)
        return out

    @staticmethod
    def _creators(src: Dataset) -> dict[tuple[int, int], str]:
        out = {}
        for tag in list(src.keys()):
            if tag >> 16 & 1 and 0x0010 <= (tag & 0xFFFF) <= 0x00FF:
                value = src[tag].value
                if isinstance(value, bytes):
                    value = value.decode("ascii", "replace")
                out[(tag >> 16, tag & 0xFF)] = str(value or "").strip()
        return out

    def _resolve_creators(
        self, st: _State, src: Dataset, out: Dataset, creator_tags: list[int], prefix: str
    ) -> None:
        used = {
            (t >> 16, (t >> 8) & 0xFF) for t in out._dict if t >> 16 & 1 and t & 0xFFFF >= 0x1000
        }
        for tag in creator_tags:
            raw = src.get_item(tag)
            if (tag >> 16, tag & 0xFF) in used:
                out._dict[tag] = raw if isinstance(raw, RawDataElement) else copy.copy(raw)
                self._record(st, prefix, tag, "LO", "C", "private:creator", raw, out, tag)
            else:
                self._record(st, prefix, tag, "LO", "X", "private", raw, None, tag)

    # -- per element -------------------------------------------------------------------

    def _apply(
        self,
        st: _State,
        src: Dataset,
        odict: dict,
        tag: int,
        plan: _Plan,
        prefix: str,
        mode: str | None,
        depth: int,
    ) -> None:
        """Apply ``plan`` to one element; ``mode`` is set inside cleaned/dummied sequences.

        In a sequence that is cleaned (C) or replaced by a dummy (D), the table still
        decides for the attributes it lists; text the table removes is cleaned instead
        (``clean``), and attributes outside the table that could identify (text, names,
        dates, binary) are cleaned (``clean``) or replaced by dummies (``dummy``).
        """
        raw = src._dict[tag]
        is_raw = isinstance(raw, RawDataElement)
        itag = int(tag)
        vr = raw.VR if raw.VR else dict_vr(itag)
        code = plan.code
        rule = plan.rule
        in_mode = mode is not None and plan.override is None and not itag >> 16 & 1
        if code in ("X", "remove") and not (in_mode and rule.startswith("basic:")):
            self._record(st, prefix, tag, vr, code, rule, raw)
            return
        if code == "K" and not plan.in_table and mode is None and vr not in ("SQ", "UI", "UN"):
            # the bulk of an image header: not in the table, kept as read - except the
            # patient's own name and IDs typed into free text (see _identity)
            if vr in FREE_TEXT_VRS and st.identity is not None and raw.value:
                masked = mask_element(raw, st.identity)
                if masked is not None:
                    odict[tag] = masked
                    self._record(
                        st,
                        prefix,
                        tag,
                        vr,
                        "C",
                        "not-in-table:patient-identity-masked",
                        raw,
                        odict,
                        tag,
                    )
                    return
            odict[tag] = raw if is_raw else copy.copy(raw)
            if st.record_values:
                self._record(st, prefix, tag, vr, "K", rule, raw, odict, tag)
            else:
                st.kept_unrecorded += 1
            return
        if vr == "UN" and known(itag) and is_raw:
            vr = None  # an explicit UN of a known tag: let pydicom give it its real VR
        if vr is None or vr in ("US or SS", "OB or OW", "US or OW", "US or SS or OW"):
            vr = src[tag].VR
        if vr == "UN" and plan.override is None and not plan.in_table:
            self._record(st, prefix, tag, vr, "X", "unknown-vr" if known(itag) else rule, raw)
            return

        if in_mode:
            if plan.in_table:
                if (
                    mode == "clean"
                    and code in ("X", "Z", "D")
                    and (vr in TEXT_VRS or vr == "PN")
                    and rule.startswith("basic:")
                ):
                    code, rule = "C", "clean-sequence:" + rule
            elif code == "K" and vr in _IDENTIFYING_VRS:
                if mode == "clean":
                    code, rule = "C", "clean-sequence:" + rule
                else:
                    code, rule = "D", "dummy-sequence:" + rule

        if code in ("X", "remove"):
            self._record(st, prefix, tag, vr, code, rule, raw)
            return
        if code == "K" or code == "keep":
            if vr == "SQ" and code == "K":
                odict[tag] = self._sequence(st, src[tag], prefix, tag, mode, depth)
            elif vr == "UI" and code == "K" and not plan.in_table and not self._retain_uids:
                values = uid_text(self._uid_values(src, tag, raw))
                if any(v and not is_well_known_uid(v) for v in values):
                    new_vals = [self._remap(st, v) for v in values]
                    one = new_vals[0] if len(new_vals) == 1 else new_vals
                    odict[tag] = DataElement(tag, "UI", one)
                    self._record(st, prefix, tag, vr, "U", "uid-not-in-table", raw, odict, tag)
                    return
                odict[tag] = raw if is_raw else copy.copy(raw)
            else:
                odict[tag] = raw if is_raw else copy.copy(raw)
            self._record(st, prefix, tag, vr, code, rule, raw, odict, tag)
            return

        if code == "Z":
            if depth == 0 and itag == _PATIENT_NAME:
                new_value: Any = self._pseudo.patient_name(self._orig_pid(st))
            elif depth == 0 and itag == _PATIENT_ID:
                new_value = self._pseudo.patient_id(self._orig_pid(st))
            elif vr == "SQ":
                new_value = Sequence()
            else:
                new_value = empty_value_for_VR(vr)
        elif code in ("D", "U"):
            if vr == "SQ":
                sub = "dummy" if code == "D" and mode != "clean" else mode
                odict[tag] = self._sequence(st, src[tag], prefix, tag, sub, depth)
                self._record(st, prefix, tag, vr, code, rule, raw, odict, tag)
                return
            if vr == "UI":
                new_value = self._remap_value(st, self._uid_values(src, tag, raw))
            elif code == "U":
                value = src[tag].value
                new_value = self._remap_value(st, value) if value else DUMMY_TEXT
            elif depth == 0 and itag == _PATIENT_ID:
                new_value = self._pseudo.patient_id(self._orig_pid(st))
            elif depth == 0 and itag == _PATIENT_NAME:
                new_value = self._pseudo.patient_name(self._orig_pid(st))
            elif vr in BINARY_VRS:
                new_value = dummy(vr, raw.value if is_raw else src[tag].value)
            else:
                new_value = dummy(vr, None)
        elif code == "C":
            if vr == "SQ":
                odict[tag] = self._sequence(st, src[tag], prefix, tag, "clean", depth)
                self._record(st, prefix, tag, vr, code, rule, raw, odict, tag)
                return
            if rule == "private:safe":
                odict[tag] = raw if is_raw else copy.copy(raw)
                self._record(st, prefix, tag, vr, code, rule, raw, odict, tag)
                return
            if vr == "UI":
                new_value = self._remap_value(st, self._uid_values(src, tag, raw))
            elif vr == "TM":
                odict[tag] = raw if is_raw else copy.copy(raw)  # whole-day shifts keep times
                self._record(st, prefix, tag, vr, code, rule, raw, odict, tag)
                return
            else:
                assert st.cleaner is not None
                new_value = st.cleaner.value(tag, vr, src[tag].value)
        elif code == "replace":
            assert plan.override is not None
            new_value = Sequence() if vr == "SQ" else plan.override.replacement
        elif code == "hash":
            new_value = self._hash_value(st, vr, src[tag].value)
        else:  # pragma: no cover - every code is handled above
            raise AssertionError(f"unhandled action {code}")
        odict[tag] = new_element(st.implicit, st.little, tag, vr, new_value)
        self._record(st, prefix, tag, vr, code, rule, raw, odict, tag)

    @staticmethod
    def _uid_values(src: Dataset, tag: int, raw: DataElement | RawDataElement) -> list[str]:
        if isinstance(raw, RawDataElement):
            return raw_text(raw).split("\\")
        return uid_text(raw.value)

    def _sequence(
        self, st: _State, elem: DataElement, prefix: str, tag: int, mode: str | None, depth: int
    ) -> DataElement:
        base = path(prefix, tag)
        items = [
            self._level(st, item, f"{base}[{i}].", mode, depth + 1)
            for i, item in enumerate(elem.value or ())
        ]
        return DataElement(tag, "SQ", Sequence(items))

    # -- values ------------------------------------------------------------------------

    @staticmethod
    def _orig_pid(st: _State) -> str:
        elem = st.src.get(_PATIENT_ID)
        return str(elem.value or "").strip() if elem is not None else ""

    def _remap(self, st: _State, uid: str) -> str:
        if not uid or is_well_known_uid(uid):
            return uid
        new = self._uids(uid)
        st.uid_map[uid] = new
        return new

    def _remap_value(self, st: _State, value: Any) -> Any:
        vals = [self._remap(st, v) for v in uid_text(value)]
        if not vals:
            return ""
        return vals[0] if len(vals) == 1 else vals

    def _pseudonym(self, kind: str, value: str) -> str:
        h = self._hash.copy()
        h.update(f"{kind}\x00{value}".encode())
        return h.hexdigest()[:10].upper()

    def _hash_value(self, st: _State, vr: str, value: Any) -> Any:
        if vr == "UI":
            return self._remap_value(st, value)
        if vr in ("SH", "LO", "CS", "AE", "ST", "LT", "UT", "UC", "PN", "UR"):
            n = 16 if vr in ("SH", "CS", "AE") else 32
            out = []
            for v in values(value):
                h = self._hash.copy()
                h.update(str(v).encode("utf-8"))
                out.append(h.hexdigest()[:n].upper())
            return out[0] if len(out) == 1 else out
        return dummy(vr, value)

    def _old_hash(self, raw: DataElement | RawDataElement) -> str | None:
        if raw.VR == "SQ":
            return None
        value = raw.value
        if value is None:
            return None
        if isinstance(raw, RawDataElement) or isinstance(value, bytes | bytearray):
            data = bytes(value)
        else:
            data = "\\".join(str(v) for v in values(value)).encode("utf-8")
        h = self._audit.copy()
        h.update(data)
        return h.hexdigest()[:16]

    def _record(
        self,
        st: _State,
        prefix: str,
        tag: int,
        vr: str | None,
        action: str,
        rule: str,
        raw: DataElement | RawDataElement,
        odict: dict | None = None,
        out_tag: int | None = None,
    ) -> None:
        before = after = None
        if st.record_values:
            before = display(as_display_element(raw, st.src, tag))
            if odict is not None and out_tag is not None and out_tag in odict:
                new = odict[out_tag]
                after = display(as_element(new))
        tag = int(tag)
        st.records.append(
            ActionRecord(
                path=path(prefix, tag),
                tag=tag,
                keyword=keyword(tag),
                vr=vr or "",
                action=action,
                rule=rule,
                old_hash=self._old_hash(raw),
                before=before,
                after=after,
            )
        )

    # -- de-identification attributes, file meta --------------------------------------

    def _method_values(self) -> list[str]:
        from .. import __version__

        opts = [o for o in Option if o in self._options]
        profile = "PS3.15 Basic Profile" + (f" + {len(opts)} option(s)" if opts else "")
        return [f"dicomflow_lab {__version__}", profile, self._template.name[:64]]

    def _add_deid_attributes(self, st: _State, out: Dataset, *, pixel_rule: bool) -> None:
        implicit, little = out.original_encoding
        for elem in self._deid_elements(implicit, little, pixel_rule):
            had = out._dict.get(elem.tag)
            out._dict[elem.tag] = elem
            if not pixel_rule:
                st.records.append(
                    ActionRecord(
                        path=format_tag(elem.tag),
                        tag=elem.tag,
                        keyword=keyword(elem.tag),
                        vr=dict_vr(elem.tag) or "",
                        action="replace",
                        rule="deid-attr",
                        old_hash=None if had is None else self._old_hash(had),
                        after=display(as_element(elem)) if st.record_values else None,
                    )
                )

    def _deid_elements(
        self, implicit: bool | None, little: bool | None, pixel_rule: bool
    ) -> list[DataElement | RawDataElement]:
        """Return the de-identification attributes, pre-encoded once per encoding."""
        key = (implicit, little, pixel_rule)
        hit = self._deid_cache.get(key)
        if hit is not None:
            return hit
        codes = list(self._codes) + ([_CLEAN_PIXEL_CODE] if pixel_rule else [])
        items = []
        for value, meaning in codes:
            item = Dataset()
            item.CodeValue = value
            item.CodingSchemeDesignator = "DCM"
            item.CodeMeaning = meaning
            items.append(item)
        if self._shift:
            ltim = "MODIFIED"
        elif Option.RETAIN_LONG_FULL_DATES in self._options:
            ltim = "UNMODIFIED"
        else:
            ltim = "REMOVED"
        elems: list[DataElement | RawDataElement] = [
            new_element(implicit, little, 0x00120062, "CS", "YES"),
            new_element(implicit, little, 0x00120063, "LO", list(self._method)),
            encode_sequence(implicit, little, 0x00120064, items),
            new_element(implicit, little, 0x00280303, "CS", ltim),
        ]
        self._deid_cache[key] = elems
        return elems

    def _file_meta(self, st: _State, ds: Dataset, out: Dataset) -> FileMetaDataset:
        from .. import __version__
        from ..core.sample import IMPLEMENTATION_CLASS_UID

        old = getattr(ds, "file_meta", None)
        meta = FileMetaDataset()
        meta.FileMetaInformationVersion = b"\x00\x01"
        sop_class = None
        if old is not None and "MediaStorageSOPClassUID" in old:
            sop_class = old.MediaStorageSOPClassUID
        elif _SOP_CLASS_UID in out:
            sop_class = out[_SOP_CLASS_UID].value
        if sop_class:
            meta.MediaStorageSOPClassUID = sop_class
        if _SOP_INSTANCE_UID in out._dict:
            sop_uid = out[_SOP_INSTANCE_UID].value
        elif old is not None and "MediaStorageSOPInstanceUID" in old:
            sop_uid = str(old.MediaStorageSOPInstanceUID)
            if not self._retain_uids:
                sop_uid = self._remap(st, sop_uid)
        else:
            sop_uid = None
        if sop_uid:
            meta.MediaStorageSOPInstanceUID = sop_uid
            if old is not None and "MediaStorageSOPInstanceUID" in old:
                plan = self._plan(0x00020003)
                code = "K" if plan.code in ("K", "keep") else "U"
                rule = plan.rule if code == "K" or plan.code == "U" else "file-meta"
                self._record(
                    st, "", 0x00020003, "UI", code, rule, old["MediaStorageSOPInstanceUID"]
                )
        ts = old.get("TransferSyntaxUID") if old is not None else None
        if not ts:
            implicit, little = ds.original_encoding
            ts = ImplicitVRLittleEndian if implicit or implicit is None else ExplicitVRLittleEndian
            if little is False:
                ts = UID("1.2.840.10008.1.2.2")
        meta.TransferSyntaxUID = ts
        meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
        meta.ImplementationVersionName = f"DFL_{__version__}"[:16]
        return meta
