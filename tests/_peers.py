"""Peer policy for tests that need programs outside the virtualenv.

A test that needs a peer (Orthanc, dcmtk, Chromium, Playwright…) asks for it through
:func:`require_program` or :func:`require_module`. When the peer is missing the test is
skipped with a message naming the setup command, except under ``DICOMFLOW_REQUIRE_PEERS=1``
(set by ``.ci/run``), where a missing peer fails the test so CI cannot go green by skipping.
"""

from __future__ import annotations

import importlib
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest

__all__ = ["free_port", "missing_peer", "peers_required", "require_module", "require_program"]

INSTALL_HINT = "install with: bash .ci/setup --peers"

# Debian puts daemons such as Orthanc in /usr/sbin, which is not on every user's PATH.
_FALLBACK_DIRS = ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin")


def peers_required() -> bool:
    """Return whether a missing peer must fail the test instead of skipping it."""
    return os.environ.get("DICOMFLOW_REQUIRE_PEERS") == "1"


def missing_peer(reason: str) -> NoReturn:
    """Skip the running test, or fail it when peers are required.

    Parameters
    ----------
    reason : str
        What is missing and how to install it.
    """
    if peers_required():
        pytest.fail(f"{reason} [DICOMFLOW_REQUIRE_PEERS=1]", pytrace=False)
    pytest.skip(reason)


def _venv_bin() -> Path:
    return Path(sys.prefix, "Scripts" if os.name == "nt" else "bin").resolve()


def _find_program(name: str) -> str | None:
    venv_bin = _venv_bin()
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    for directory in [*dirs, *_FALLBACK_DIRS]:
        # pynetdicom installs console scripts named like dcmtk's tools (echoscu, storescp…)
        # into the virtualenv: a peer must be the real outside program, never those.
        if Path(directory).resolve() == venv_bin:
            continue
        found = shutil.which(name, path=directory)
        if found:
            return str(Path(found).absolute())
    return None


def require_program(name: str) -> str:
    """Return the absolute path of an external program, or skip/fail the test.

    The virtualenv's own ``bin`` directory is not searched, because pynetdicom installs
    scripts that shadow dcmtk's (``echoscu``, ``storescu``, ``storescp``…).

    Parameters
    ----------
    name : str
        Executable name, e.g. ``"dcmdump"``, ``"Orthanc"``, ``"chromium"``.

    Returns
    -------
    str
        Absolute path of the executable.
    """
    path = _find_program(name)
    if path is None:
        missing_peer(f"{name} not installed ({INSTALL_HINT})")
    return path


def require_module(name: str) -> ModuleType:
    """Import a Python module a peer test needs, or skip/fail the test.

    Parameters
    ----------
    name : str
        Dotted module name, e.g. ``"playwright.sync_api"``.

    Returns
    -------
    types.ModuleType
        The imported module.
    """
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        missing_peer(f"{name} not installed ({INSTALL_HINT}): {exc}")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago.

    Returns
    -------
    int
        The port number.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = 30) -> str:
    """Return the last `lines` lines of a log file (for failure messages)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def stop_process(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Terminate a peer process, killing it if it does not exit within `grace` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace)
