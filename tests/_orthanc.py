"""A real Orthanc (with its DICOMweb plugin) for tests, started as a subprocess.

Debian's Orthanc 1.10 has no listen-address option, so HTTP and DICOM bind all interfaces:
the config keeps ``RemoteAccessAllowed: false``, the ports are free ephemeral ones, and the
context manager always stops the process.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests._peers import free_port, log_tail, missing_peer, require_program, stop_process

__all__ = ["OrthancPeer", "dicomweb_plugin", "running_orthanc"]

START_TIMEOUT_S = 30.0
STOP_GRACE_S = 5.0

_PLUGIN_DIRS = ("/usr/share/orthanc/plugins", "/usr/lib/orthanc")


@dataclass(frozen=True)
class OrthancPeer:
    """A running Orthanc instance.

    Attributes
    ----------
    http_url : str
        Base URL of the REST API, e.g. ``http://127.0.0.1:41234`` (no trailing slash).
    dicom_port : int
        Port of its DICOM (DIMSE) server on 127.0.0.1.
    aet : str
        Its application entity title.
    process : subprocess.Popen
        The Orthanc process.
    log_path : pathlib.Path
        File receiving Orthanc's stdout and stderr.
    """

    http_url: str
    dicom_port: int
    aet: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def dicomweb_url(self) -> str:
        """Root of the DICOMweb API (QIDO-RS, WADO-RS, STOW-RS), without trailing slash."""
        return f"{self.http_url}/dicom-web"


def dicomweb_plugin() -> Path | None:
    """Return the path of Orthanc's DICOMweb plugin shared library, if installed."""
    for directory in _PLUGIN_DIRS:
        candidates = sorted(Path(directory).glob("libOrthancDicomWeb.so*"))
        if candidates:
            return candidates[0]
    try:
        listing = subprocess.run(
            ["dpkg", "-L", "orthanc-dicomweb"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    for line in listing.splitlines():
        if "libOrthancDicomWeb.so" in line and Path(line).is_file():
            return Path(line)
    return None


def _write_config(workdir: Path, http_port: int, dicom_port: int, aet: str, plugin: Path) -> Path:
    config = {
        "Name": "dicomflow-test",
        "StorageDirectory": str(workdir / "storage"),
        "IndexDirectory": str(workdir / "index"),
        "HttpServerEnabled": True,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomServerEnabled": True,
        "DicomAet": aet,
        "DicomPort": dicom_port,
        "DicomModalities": {},
        "SaveJobs": False,
        "Plugins": [str(plugin)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    path = workdir / "orthanc.json"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


def _wait_until_up(process: subprocess.Popen[bytes], http_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"Orthanc exited with status {process.returncode} while starting; "
                    f"log tail ({log_path}):\n{log_tail(log_path)}"
                )
            with contextlib.suppress(httpx.TransportError):
                if client.get(f"{http_url}/system").status_code == 200:
                    return
            time.sleep(0.1)
    raise RuntimeError(
        f"Orthanc did not answer GET /system within {START_TIMEOUT_S:.0f} s; "
        f"log tail ({log_path}):\n{log_tail(log_path)}"
    )


@contextlib.contextmanager
def running_orthanc(tmp_path: Path, aet: str = "ORTHANC") -> Iterator[OrthancPeer]:
    """Start an Orthanc with DICOMweb in ``tmp_path`` and stop it on exit.

    Skips the test (or fails it under ``DICOMFLOW_REQUIRE_PEERS=1``) when Orthanc or its
    DICOMweb plugin is not installed.

    Parameters
    ----------
    tmp_path : pathlib.Path
        Directory for the config, the storage, the index and the log.
    aet : str, optional
        Orthanc's AE title.

    Yields
    ------
    OrthancPeer
        The running peer, answering ``GET /system``.

    Raises
    ------
    RuntimeError
        If Orthanc exits or does not answer within ``START_TIMEOUT_S``; the message
        carries the tail of its log.
    """
    orthanc = require_program("Orthanc")
    plugin = dicomweb_plugin()
    if plugin is None:
        missing_peer("orthanc-dicomweb not installed (install with: bash .ci/setup --peers)")

    workdir = Path(tmp_path) / "orthanc"
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "orthanc.log"
    http_port, dicom_port = free_port(), free_port()
    while dicom_port == http_port:
        dicom_port = free_port()
    config_path = _write_config(workdir, http_port, dicom_port, aet, plugin)
    http_url = f"http://127.0.0.1:{http_port}"

    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [orthanc, str(config_path)],
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(process, http_url, log_path)
        yield OrthancPeer(
            http_url=http_url,
            dicom_port=dicom_port,
            aet=aet,
            process=process,
            log_path=log_path,
        )
    finally:
        stop_process(process, STOP_GRACE_S)
