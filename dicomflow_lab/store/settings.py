"""Workspace settings: typed defaults in code, the user's overrides in the ``settings`` table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
import orjson
import pandas as pd

__all__ = ["SETTINGS", "SettingSpec", "all_settings", "get_setting", "reset_setting", "set_setting"]


@dataclass(frozen=True)
class SettingSpec:
    """One setting: its name, default, accepted type and a sentence for people."""

    name: str
    default: Any
    kind: type | tuple[type, ...]
    doc: str
    check: Callable[[Any], bool] | None = None
    rule: str = ""


def _positive(value: Any) -> bool:
    return value is None or value > 0


def _presets(value: Any) -> bool:
    return all(
        isinstance(p, dict)
        and set(p) == {"name", "center", "width"}
        and isinstance(p["name"], str)
        and p["name"].strip()
        and all(
            isinstance(p[k], int | float) and not isinstance(p[k], bool)
            for k in ("center", "width")
        )
        and p["width"] > 0
        for p in value
    )


SETTINGS: dict[str, SettingSpec] = {
    spec.name: spec
    for spec in [
        SettingSpec(
            "index.workers",
            None,
            (int, type(None)),
            "Worker processes for header parsing (None: one per CPU core).",
            _positive,
            "a positive whole number or None",
        ),
        SettingSpec(
            "index.include_hidden",
            False,
            bool,
            "Also index files and folders whose names start with a dot.",
        ),
        SettingSpec(
            "index.max_inflate_ratio",
            100,
            int,
            "A Deflated Explicit VR file may inflate to at most this many times its size.",
            _positive,
            "a positive whole number",
        ),
        SettingSpec(
            "viewer.frame_cache_mb",
            512,
            int,
            "Byte limit of the kernel-side decoded-frame cache, in MiB.",
            _positive,
            "a positive whole number",
        ),
        SettingSpec(
            "viewer.presets",
            [],
            list,
            "Your own window presets, offered in every viewer: "
            '[{"name": "Liver narrow", "center": 80, "width": 120}, ...].',
            _presets,
            'a list of {"name": str, "center": number, "width": number > 0}',
        ),
        SettingSpec(
            "display.show_phi",
            False,
            bool,
            "Show identifying values (names, IDs, dates, UIDs) in summaries and saved outputs.",
        ),
    ]
}


def _spec(name: str) -> SettingSpec:
    try:
        return SETTINGS[name]
    except KeyError:
        known = ", ".join(sorted(SETTINGS))
        raise KeyError(f"unknown setting {name!r}; known settings: {known}") from None


def get_setting(con: duckdb.DuckDBPyConnection, name: str) -> Any:
    """Return a setting's value: the stored override, else the default.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A connection.
    name : str
        The setting's name, e.g. ``"index.workers"``.

    Returns
    -------
    Any
        The value.
    """
    spec = _spec(name)
    row = con.execute("SELECT value FROM settings WHERE key = ?", [name]).fetchone()
    return orjson.loads(row[0]) if row else spec.default


def set_setting(con: duckdb.DuckDBPyConnection, name: str, value: Any) -> None:
    """Validate and store a setting.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A connection.
    name : str
        The setting's name.
    value : Any
        The new value; it must have the setting's type and pass its rule.

    Raises
    ------
    KeyError
        For an unknown setting name.
    TypeError, ValueError
        For a value of the wrong type or out of range.
    """
    spec = _spec(name)
    if isinstance(value, bool) and spec.kind is not bool and bool not in _kinds(spec):
        raise TypeError(f"setting {name!r} takes {spec.rule or _type_names(spec)}, not a bool")
    if not isinstance(value, spec.kind):
        raise TypeError(
            f"setting {name!r} takes {spec.rule or _type_names(spec)}, not {type(value).__name__}"
        )
    if spec.check is not None and not spec.check(value):
        raise ValueError(f"setting {name!r} takes {spec.rule}; got {value!r}")
    con.execute(
        "INSERT OR REPLACE INTO settings (key, value, updated_at) VALUES (?, ?, current_timestamp)",
        [name, orjson.dumps(value).decode()],
    )


def reset_setting(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Forget a stored override, so the default applies again."""
    _spec(name)
    con.execute("DELETE FROM settings WHERE key = ?", [name])


def all_settings(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Return every setting: name, value, default, whether it is overridden, and its doc."""
    stored = {
        k: orjson.loads(v) for k, v in con.execute("SELECT key, value FROM settings").fetchall()
    }
    rows = [
        {
            "name": spec.name,
            "value": stored.get(spec.name, spec.default),
            "default": spec.default,
            "overridden": spec.name in stored,
            "doc": spec.doc,
        }
        for spec in SETTINGS.values()
    ]
    return pd.DataFrame(rows)


def _kinds(spec: SettingSpec) -> tuple[type, ...]:
    return spec.kind if isinstance(spec.kind, tuple) else (spec.kind,)


def _type_names(spec: SettingSpec) -> str:
    return " or ".join(k.__name__ for k in _kinds(spec))
