"""The panels' browser code: one self-contained ES module per panel.

Panels share the request/reply client and small DOM helpers (``static/_panel_base.js``);
:func:`panel_module` prepends that file to a panel's own module, so the browser still
receives one module without imports (nothing is fetched at run time: clinical networks
are often offline).
"""

from __future__ import annotations

import functools
from pathlib import Path

__all__ = ["STATIC", "panel_module"]

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
