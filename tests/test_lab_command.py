"""`dicomflow-lab lab` starts JupyterLab on the quickstart notebook with the sample data."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time

import httpx

from tests._peers import free_port


def test_lab_serves_the_quickstart_notebook(tmp_path):
    port = free_port()
    token = secrets.token_hex(16)
    env = dict(
        os.environ,
        DICOMFLOW_HOME=str(tmp_path / "home"),
        JUPYTER_TOKEN=token,
        JUPYTER_CONFIG_DIR=str(tmp_path / "jcfg"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jrt"),
    )
    log = (tmp_path / "lab.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dicomflow_lab.cli", "lab", "--no-browser", f"--port={port}"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        reply = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                reply = httpx.get(
                    f"http://127.0.0.1:{port}/api/contents/quickstart.ipynb",
                    headers={"Authorization": f"token {token}"},
                    params={"content": "0"},
                    timeout=2,
                )
                break
            except httpx.TransportError:
                time.sleep(0.2)  # polling a server that is starting, bounded by the deadline
        assert proc.poll() is None, (tmp_path / "lab.log").read_text()[-2000:]
        assert reply is not None and reply.status_code == 200
        assert reply.json()["name"] == "quickstart.ipynb"
        # the sample study was prepared before the server started
        assert (tmp_path / "home" / "samples" / "study-seed0" / "1_CT").is_dir()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
