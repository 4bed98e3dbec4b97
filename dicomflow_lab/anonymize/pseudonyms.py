"""Patient pseudonyms: from a user mapping table, else derived from the secret key."""

from __future__ import annotations

import csv
import hashlib
import hmac
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import AnonymizationError
from .keys import derive

__all__ = ["Pseudonymizer"]

_COLUMNS = ("PatientID", "new_PatientID")


class Pseudonymizer:
    """Give each original Patient ID a new ID and name.

    Parameters
    ----------
    key : str or bytes
        The user's secret key.
    mapping : dict, pandas.DataFrame, str or os.PathLike, optional
        Original PatientID → new ID, or → ``(new ID, new name)``; or a DataFrame / CSV file
        with columns ``PatientID``, ``new_PatientID`` and optionally ``new_PatientName``.
        Patients not in the mapping get a keyed pseudonym.

    Raises
    ------
    AnonymizationError
        If the mapping table lacks the required columns or cannot be read.

    Examples
    --------
    >>> p = Pseudonymizer("demo", {"123": "SUBJ-01"})
    >>> p.patient_id("123")
    'SUBJ-01'
    >>> p.patient_id("456").startswith("ANON")
    True
    """

    def __init__(self, key: str | bytes, mapping: Any = None) -> None:
        self._subkey = derive(key, "pid")
        self._map: dict[str, tuple[str, str | None]] = _load_mapping(mapping)

    def _token(self, orig_id: str) -> str:
        digest = hmac.new(self._subkey, orig_id.encode("utf-8"), hashlib.sha256).hexdigest()
        return digest[:10].upper()

    def patient_id(self, orig_id: str) -> str:
        """Return the new Patient ID for ``orig_id``: the mapping's, else ``ANON<10 hex>``."""
        orig_id = str(orig_id or "").strip()
        hit = self._map.get(orig_id)
        if hit is not None:
            return hit[0]
        return "ANON" + self._token(orig_id)

    def patient_name(self, orig_id: str) -> str:
        """Return the new Patient's Name: the mapping's, else ``ANON^<10 hex>``."""
        orig_id = str(orig_id or "").strip()
        hit = self._map.get(orig_id)
        if hit is not None and hit[1]:
            return hit[1]
        return "ANON^" + self._token(orig_id)

    def __contains__(self, orig_id: object) -> bool:
        return str(orig_id or "").strip() in self._map


def _load_mapping(mapping: Any) -> dict[str, tuple[str, str | None]]:
    if mapping is None:
        return {}
    if isinstance(mapping, str | os.PathLike):
        return _from_rows(_read_csv(Path(mapping)), str(mapping))
    if isinstance(mapping, Mapping):
        out: dict[str, tuple[str, str | None]] = {}
        for orig, new in mapping.items():
            if isinstance(new, tuple | list):
                if not 1 <= len(new) <= 2:
                    raise AnonymizationError(
                        f"patient_map[{orig!r}]: expected a new ID or (new ID, new name)"
                    )
                out[str(orig).strip()] = (str(new[0]), str(new[1]) if len(new) > 1 else None)
            else:
                out[str(orig).strip()] = (str(new), None)
        return out
    if hasattr(mapping, "to_dict") and hasattr(mapping, "columns"):  # a DataFrame
        return _from_rows(mapping.to_dict("records"), "the patient_map DataFrame")
    raise AnonymizationError(
        "patient_map must be a dict, a pandas DataFrame or the path of a CSV file with "
        f"columns PatientID, new_PatientID[, new_PatientName]; got {type(mapping).__name__}"
    )


def _read_csv(path: Path) -> list[dict[str, Any]]:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise AnonymizationError(f"{path}: cannot read the patient map: {exc}") from exc


def _from_rows(rows: list[dict[str, Any]], source: str) -> dict[str, tuple[str, str | None]]:
    out: dict[str, tuple[str, str | None]] = {}
    for i, row in enumerate(rows):
        missing = [c for c in _COLUMNS if c not in row]
        if missing:
            raise AnonymizationError(
                f"{source}: missing column(s) {missing}; the patient map needs columns "
                "PatientID, new_PatientID and optionally new_PatientName"
            )
        orig, new = row["PatientID"], row["new_PatientID"]
        if new is None or str(new).strip() == "" or str(new) == "nan":
            raise AnonymizationError(f"{source}: row {i}: empty new_PatientID")
        name = row.get("new_PatientName")
        name = None if name is None or str(name) in ("", "nan") else str(name)
        out[str(orig).strip()] = (str(new).strip(), name)
    return out
