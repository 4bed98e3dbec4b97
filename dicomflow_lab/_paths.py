"""Where dicomflow_lab keeps its files by default."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["HOME_ENV", "default_home"]

HOME_ENV = "DICOMFLOW_HOME"


def default_home() -> Path:
    """Return the default workspace folder: ``$DICOMFLOW_HOME`` or ``~/.dicomflow_lab``."""
    env = os.environ.get(HOME_ENV)
    return Path(env).expanduser() if env else Path.home() / ".dicomflow_lab"
