"""The panels' browser code and styles: one self-contained module and sheet per panel.

Panels share the request/reply client and small DOM helpers (``static/_panel_base.js``)
and one look (``static/_theme.css``). :func:`panel_module` and :func:`panel_style`
prepend the shared file to a panel's own, so the browser still receives one module
without imports and one stylesheet (nothing is fetched at run time: clinical networks
are often offline).
"""

from __future__ import annotations

import functools
from pathlib import Path

__all__ = ["STATIC", "panel_module", "panel_style"]

STATIC = Path(__file__).parent / "static"


@functools.cache
def panel_module(name: str) -> str:
    """Return ``static/_panel_base.js`` followed by ``static/<name>``.

    Parameters
    ----------
    name : str
        The panel's module file, e.g. ``"tag_editor.js"``.
    """
    base = (STATIC / "_panel_base.js").read_text("utf-8")
    return base + "\n" + (STATIC / name).read_text("utf-8")


@functools.cache
def panel_style(name: str) -> str:
    """Return ``static/_theme.css`` followed by ``static/<name>``.

    Parameters
    ----------
    name : str
        The panel's stylesheet, e.g. ``"viewer.css"``.
    """
    base = (STATIC / "_theme.css").read_text("utf-8")
    return base + "\n" + (STATIC / name).read_text("utf-8")
