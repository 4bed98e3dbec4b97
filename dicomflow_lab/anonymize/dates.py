"""Per-patient date shifting (Retain Longitudinal Temporal Information with Modified Dates).

Every date of one patient is shifted by the same whole number of days, derived from the
secret key and the patient's original ID, so intervals and order between dates of that
patient are kept while the calendar dates are not revealed (PS3.15 E.3.6). Whole days
keep the time of day, so TM values stay consistent with the shifted DA and DT values.

A value that cannot be parsed as a date is replaced by the dummy date, never left as is.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import re

from .keys import derive

__all__ = [
    "DUMMY_DA",
    "DUMMY_DT",
    "DUMMY_TM",
    "MAX_OFFSET_DAYS",
    "patient_offset_days",
    "shift_da",
    "shift_dt",
]

#: Dummy values for the D action on dates and times (PS3.15 E.1.1: consistent with the VR).
DUMMY_DA = "19000101"
DUMMY_TM = "000000"
DUMMY_DT = "19000101000000"

#: Offsets lie in [-MAX_OFFSET_DAYS, -1].
MAX_OFFSET_DAYS = 3650

_DA = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_DA_OLD = re.compile(r"^(\d{4})\.(\d{2})\.(\d{2})$")  # ACR-NEMA style YYYY.MM.DD
_DT = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,6})?)?)?)?([+-]\d{4})?$")


def patient_offset_days(key: str | bytes, patient_key: str) -> int:
    """Return the date offset for one patient: an integer in [-3650, -1], never 0.

    Parameters
    ----------
    key : str or bytes
        The user's secret key.
    patient_key : str
        What identifies the patient in the originals (the original Patient ID).
    """
    digest = hmac.new(derive(key, "date"), patient_key.encode("utf-8"), hashlib.sha256).digest()
    return -(int.from_bytes(digest[:8], "big") % MAX_OFFSET_DAYS + 1)


def _shift_date(year: int, month: int, day: int, days: int) -> _dt.date | None:
    try:
        d = _dt.date(year, month, day) + _dt.timedelta(days=days)
    except (ValueError, OverflowError):
        return None
    return d if d.year >= 1 else None


def _shift_one_da(value: str, days: int) -> str:
    v = value.strip()
    if not v:
        return v
    if "-" in v:  # a date range (query form) "A-B", "-B", "A-"
        a, _, b = v.partition("-")
        return "-".join(_shift_one_da(p, days) if p else "" for p in (a, b))
    m = _DA.match(v) or _DA_OLD.match(v)
    if m is None:
        return DUMMY_DA
    d = _shift_date(int(m[1]), int(m[2]), int(m[3]), days)
    return DUMMY_DA if d is None else d.strftime("%Y%m%d").zfill(8)


def shift_da(value: str | None, days: int) -> str:
    r"""Shift a DA value (possibly multi-valued with backslashes) by ``days``.

    Parameters
    ----------
    value : str or None
        ``YYYYMMDD`` (also ACR-NEMA ``YYYY.MM.DD``, written back as ``YYYYMMDD``), several
        separated by ``\``, or a range ``A-B``. ``None`` or empty gives ``""``.
    days : int
        The offset in days.

    Returns
    -------
    str
        The shifted value; each part that is not a valid date becomes ``19000101``.

    Examples
    --------
    >>> shift_da("20240301", -1)
    '20240229'
    >>> shift_da("20240301\\garbage", -1)
    '20240229\\19000101'
    """
    if not value:
        return ""
    return "\\".join(_shift_one_da(p, days) for p in str(value).split("\\"))


def _shift_one_dt(value: str, days: int) -> str:
    v = value.strip()
    if not v:
        return v
    if "-" in v[1:] and not re.search(r"[+-]\d{4}$", v):
        a, _, b = v.partition("-")
        return "-".join(_shift_one_dt(p, days) if p else "" for p in (a, b))
    m = _DT.match(v)
    if m is None:
        return DUMMY_DT
    year, month, day, rest, tz = m.groups()
    d = _shift_date(int(year), int(month or 1), int(day or 1), days)
    if d is None:
        return DUMMY_DT
    text = d.strftime("%Y%m%d").zfill(8)
    text = text[:4] + (text[4:6] if month else "") + (text[6:8] if day else "")
    return text + (rest or "") + (tz or "")


def shift_dt(value: str | None, days: int) -> str:
    """Shift a DT value (possibly multi-valued) by ``days``, keeping the time part.

    The date part is shifted; the time, its fraction and a UTC offset suffix are kept,
    and partial precision (``YYYY``, ``YYYYMM``) is kept: the missing month and day count
    as the 1st for the shift and are left out again. An unparsable part becomes
    ``19000101000000``.

    Examples
    --------
    >>> shift_dt("20240301120000.5+0100", -1)
    '20240229120000.5+0100'
    >>> shift_dt("2024", -1)
    '2023'
    """
    if not value:
        return ""
    return "\\".join(_shift_one_dt(p, days) for p in str(value).split("\\"))
