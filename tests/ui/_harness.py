"""Real-browser harness: a JupyterLab server and headless Chromium driven by Playwright.

Imported by ``tests/ui/conftest.py`` (fixtures) and by the tests (helpers).

Fixtures
--------
jupyterlab
    Session-wide JupyterLab on 127.0.0.1 with a random token, isolated Jupyter dirs, a
    ``python3`` kernelspec that runs this interpreter, and pop-ups (news, update check) off.
    ``running_jupyterlab(base, app="notebook")`` starts Notebook 7 the same way.
browser_context
    Session-wide persistent Chromium context (Debian's ``/usr/bin/chromium``), logged in
    to the server by cookie, so no URL ever carries the token.
page
    A fresh tab per test; the test's kernels are shut down afterwards.

Helpers
-------
run_notebook(page, lab, cells, name)
    Write a notebook, open it (in JupyterLab, or in Notebook 7's own UI for a server
    started with ``app="notebook"``), wait for its kernel, run all cells and wait until done.
wait_for(page, selector, timeout)
    Wait for a selector; on timeout save a screenshot and report cell errors.
screenshot(page, name)
    Save ``tests/ui/artifacts/<name>.png``.

Every test under ``tests/ui`` is marked ``ui`` (and ``peer``: it needs Chromium).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests._peers import free_port, log_tail, require_module, require_program, stop_process

UI_DIR = Path(__file__).resolve().parent
ARTIFACTS_DIR = UI_DIR / "artifacts"

SERVER_START_TIMEOUT_S = 60.0
SERVER_STOP_GRACE_S = 10.0
KERNEL_IDLE_TIMEOUT_S = 60.0
RUN_TIMEOUT_S = 120.0

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
VIEWPORT = {"width": 1400, "height": 1000}

# User settings that keep JupyterLab quiet and deterministic in tests.
LAB_USER_SETTINGS: dict[str, dict[str, Any]] = {
    "@jupyterlab/apputils-extension/notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    # Every cell stays in the DOM, so selectors find cells below the fold.
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


# --------------------------------------------------------------------------- server


@dataclass(frozen=True)
class JupyterLab:
    """A running JupyterLab (or Notebook 7) server.

    Attributes
    ----------
    base_url : str
        ``http://127.0.0.1:<port>``, no trailing slash.
    token : str
        The server's token (kept out of ``repr`` so failures never print it).
    root_dir : pathlib.Path
        The server's root directory: notebooks written here can be opened.
    log_path : pathlib.Path
        File receiving the server's and its kernels' stdout and stderr.
    process : subprocess.Popen
        The server process.
    app : {"lab", "notebook"}
        Which front end the server runs: JupyterLab, or Notebook 7 (``jupyter notebook``).
    """

    base_url: str
    token: str = field(repr=False)
    root_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    app: str = "lab"

    @property
    def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate a request to the server."""
        return {"Authorization": f"token {self.token}"}

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Call the server's REST API with the token in a header, never in the URL."""
        with httpx.Client(base_url=self.base_url, trust_env=False, timeout=30.0) as client:
            return client.request(method, path, headers=self.auth_headers, **kwargs)

    def shutdown_kernels(self) -> None:
        """Shut down every session and kernel, so each test starts from none."""
        with contextlib.suppress(httpx.HTTPError):
            for session in self.api("GET", "/api/sessions").json():
                self.api("DELETE", f"/api/sessions/{session['id']}")
            for kernel in self.api("GET", "/api/kernels").json():
                self.api("DELETE", f"/api/kernels/{kernel['id']}")

    def redact(self, text: str) -> str:
        """Replace the token in ``text`` so it can be shown in a failure message."""
        return text.replace(self.token, "<token>")


def _write_user_settings(settings_dir: Path) -> None:
    for plugin, values in LAB_USER_SETTINGS.items():
        path = settings_dir / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values, indent=2), encoding="utf-8")


def _write_kernelspec(data_dir: Path) -> None:
    # The user data dir comes first in Jupyter's search path, so this spec wins over any
    # ``python3`` kernelspec elsewhere: kernels run exactly this interpreter.
    kernel_dir = data_dir / "kernels" / KERNELSPEC["name"]
    kernel_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": KERNELSPEC["display_name"],
        "language": KERNELSPEC["language"],
        "metadata": {"debugger": False},
    }
    (kernel_dir / "kernel.json").write_text(json.dumps(spec, indent=2), encoding="utf-8")


def _wait_for_server(process: subprocess.Popen[bytes], lab: JupyterLab) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"JupyterLab exited with status {process.returncode} while starting; "
                f"log tail ({lab.log_path}):\n{lab.redact(log_tail(lab.log_path))}"
            )
        with contextlib.suppress(httpx.TransportError):
            if lab.api("GET", "/api/status").status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(
        f"JupyterLab did not answer /api/status within {SERVER_START_TIMEOUT_S:.0f} s; "
        f"log tail ({lab.log_path}):\n{lab.redact(log_tail(lab.log_path))}"
    )


@pytest.fixture(scope="session")
def jupyterlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterLab]:
    """Start a JupyterLab server for the session, isolated from the user's Jupyter setup."""
    require_module("jupyterlab")
    with running_jupyterlab(tmp_path_factory.mktemp("jupyterlab")) as lab:
        yield lab


@contextlib.contextmanager
def running_jupyterlab(base: Path, app: str = "lab") -> Iterator[JupyterLab]:
    """Run an isolated JupyterLab server with its files under `base` (also for benchmarks).

    Parameters
    ----------
    base : pathlib.Path
        An empty folder for the server's root, settings, config, data and log.
    app : {"lab", "notebook"}, optional
        ``"lab"`` (the default) runs ``jupyter lab``; ``"notebook"`` runs Notebook 7
        (``jupyter notebook``) with the same isolation, settings and kernelspec.

    Yields
    ------
    JupyterLab
        The running server; it is stopped, with its kernels, on exit.
    """
    if app not in ("lab", "notebook"):
        raise ValueError(f"app must be 'lab' or 'notebook', not {app!r}")
    dirs = {
        name: base / name
        for name in ("root", "settings", "config", "data", "runtime", "ipython", "home")
    }
    for directory in dirs.values():
        directory.mkdir()
    _write_user_settings(dirs["settings"])
    _write_kernelspec(dirs["data"])

    token = secrets.token_hex(24)
    port = free_port()
    env = {
        **os.environ,
        # The token goes through the environment, not argv, so `ps` does not show it and
        # the server logs "?token=..." instead of the value.
        "JUPYTER_TOKEN": token,
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
        "JUPYTER_PLATFORM_DIRS": "0",
        "IPYTHONDIR": str(dirs["ipython"]),
        "DICOMFLOW_HOME": str(dirs["home"]),
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "PYTHONUNBUFFERED": "1",
    }
    for var in ("JUPYTER_TOKEN_FILE", "JUPYTER_PATH", "JUPYTER_CONFIG_PATH"):
        env.pop(var, None)
    # Notebook 7 is configured through its own application class; the news and update
    # checks are JupyterLab's only.
    cls = "LabApp" if app == "lab" else "JupyterNotebookApp"
    argv = [
        sys.executable,
        "-m",
        "jupyter",
        app,
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={dirs['root']}",
        "--ServerApp.terminals_enabled=False",
        f"--{cls}.user_settings_dir={dirs['settings']}",
        f"--{cls}.workspaces_dir={dirs['data'] / 'workspaces'}",
        # window.jupyterapp: run commands and read models the way JupyterLab's own
        # UI tests (galata) do.
        f"--{cls}.expose_app_in_browser=True",
    ]
    if app == "lab":
        argv += [
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class="
            "jupyterlab.handlers.announcements.NeverCheckForUpdate",
        ]
    argv.append("--KernelSpecManager.ensure_native_kernel=False")
    log_path = base / ("jupyterlab.log" if app == "lab" else "notebook.log")
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            argv,
            cwd=dirs["root"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    lab = JupyterLab(
        base_url=f"http://127.0.0.1:{port}",
        token=token,
        root_dir=dirs["root"],
        log_path=log_path,
        process=process,
        app=app,
    )
    try:
        _wait_for_server(process, lab)
        yield lab
    finally:
        lab.shutdown_kernels()
        stop_process(process, SERVER_STOP_GRACE_S)


# --------------------------------------------------------------------------- browser


@pytest.fixture(scope="session")
def browser_context(
    jupyterlab: JupyterLab, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """Start headless Chromium for the session, logged in to ``jupyterlab`` by cookie."""
    chromium = require_program("chromium")
    require_module("playwright.sync_api")
    with chromium_context(jupyterlab, tmp_path_factory.mktemp("chromium-profile"), chromium) as ctx:
        yield ctx


@contextlib.contextmanager
def chromium_context(jupyterlab: JupyterLab, profile: Path, chromium: str) -> Iterator[Any]:
    """Headless Chromium (a persistent context in `profile`) logged in to `jupyterlab`."""
    sync_api = require_module("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            user_data_dir=str(profile),
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=VIEWPORT,
        )
        try:
            # The context's request client shares the browser's cookie jar: one token-
            # authenticated call sets the login cookie, and pages load without the token.
            status = context.request.get(
                f"{jupyterlab.base_url}/api/status", headers=jupyterlab.auth_headers
            )
            assert status.ok, f"login to JupyterLab failed: HTTP {status.status}"
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser_context: Any, jupyterlab: JupyterLab) -> Iterator[Any]:
    """Open a fresh tab; close it and shut the test's kernels down afterwards."""
    tab = browser_context.new_page()
    try:
        yield tab
    finally:
        tab.close()
        jupyterlab.shutdown_kernels()


# --------------------------------------------------------------------------- helpers


def screenshot(page: Any, name: str) -> Path:
    """Save a screenshot of the page to ``tests/ui/artifacts/<name>.png``.

    Parameters
    ----------
    page : playwright.sync_api.Page
        The page.
    name : str
        File stem; characters other than letters, digits, ``-``, ``_`` and ``.`` become ``_``.

    Returns
    -------
    pathlib.Path
        The PNG written.
    """
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^\w.-]", "_", name)
    path = ARTIFACTS_DIR / f"{stem}.png"
    page.screenshot(path=str(path))
    return path


_CELL_ERRORS_JS = """() => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!panel || !panel.content || !panel.content.model) { return []; }
  const errors = [];
  const cells = panel.content.model.cells;
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    if (cell.type !== 'code') { continue; }
    for (const out of cell.toJSON().outputs || []) {
      if (out.output_type === 'error') { errors.push(`cell ${i}: ${out.ename}: ${out.evalue}`); }
    }
  }
  return errors;
}"""


def cell_errors(page: Any) -> list[str]:
    """Return ``"cell i: Name: message"`` for every error output of the current notebook."""
    return list(page.evaluate(_CELL_ERRORS_JS))


def wait_for(page: Any, selector: str, timeout: float = 30.0, state: str = "attached") -> Any:
    """Wait for ``selector`` to reach ``state`` and return its locator.

    Parameters
    ----------
    page : playwright.sync_api.Page
        The page.
    selector : str
        A Playwright selector, e.g. ``'.dfl-viewer[data-dfl-ready="1"]'``.
    timeout : float, optional
        Seconds to wait.
    state : {"attached", "visible", "hidden", "detached"}, optional
        The state to wait for.

    Returns
    -------
    playwright.sync_api.Locator
        The first matching element.

    Raises
    ------
    AssertionError
        On timeout, naming the selector and any cell errors; a screenshot
        ``timeout-<selector>.png`` is saved in the artifacts directory.
    """
    sync_api = require_module("playwright.sync_api")
    locator = page.locator(selector).first
    try:
        locator.wait_for(state=state, timeout=timeout * 1000)
    except sync_api.TimeoutError:
        shot = screenshot(page, f"timeout-{selector}"[:80])
        errors = cell_errors(page)
        raise AssertionError(
            f"{selector!r} not {state} after {timeout:g} s (screenshot: {shot}); "
            f"cell errors: {errors or 'none'}"
        ) from None
    return locator


def _notebook_json(cells: list[str]) -> str:
    nbformat = require_module("nbformat")
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(source) for source in cells],
        metadata={
            # Without a kernelspec JupyterLab opens a kernel picker dialog.
            "kernelspec": dict(KERNELSPEC),
            "language_info": {"name": "python"},
        },
    )
    nbformat.validate(notebook)
    return str(nbformat.writes(notebook))


_KERNEL_IDLE_JS = """(path) => {
  const app = window.jupyterapp;
  if (!app || !app.shell) { return false; }
  const panel = app.shell.currentWidget;
  if (!panel || !panel.context || panel.context.path !== path) { return false; }
  if (!panel.context.isReady || !panel.sessionContext.isReady) { return false; }
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return !!kernel && kernel.status === 'idle' && kernel.connectionStatus === 'connected';
}"""

_RUN_ALL_JS = """() => {
  const app = window.jupyterapp;
  if (app.shell.collapseLeft) { app.shell.collapseLeft(); }
  window.__dflRunAll = null;
  app.commands.execute('notebook:run-all-cells').then(
    (ok) => { window.__dflRunAll = { ok: ok !== false }; },
    (err) => { window.__dflRunAll = { ok: false, error: String(err) }; },
  );
}"""


def run_notebook(
    page: Any,
    lab: JupyterLab,
    cells: list[str],
    name: str,
    *,
    timeout: float = RUN_TIMEOUT_S,
    allow_errors: bool = False,
) -> None:
    """Write a notebook, open it in JupyterLab, run all its cells and wait until done.

    Parameters
    ----------
    page : playwright.sync_api.Page
        A page of the logged-in ``browser_context``.
    lab : JupyterLab
        The server.
    cells : list of str
        Source of each code cell.
    name : str
        Notebook file name in the server's root dir (``.ipynb`` is added if missing).
        Each name also gets its own JupyterLab workspace, so nothing else is reopened;
        Notebook 7 opens it alone at ``/notebooks/<name>``.
    timeout : float, optional
        Seconds allowed for the kernel to start and for all cells to run.
    allow_errors : bool, optional
        If false (the default), an error output in any cell fails the test.

    Raises
    ------
    AssertionError
        If the kernel does not become idle, the run does not finish, or a cell raised.
    """
    sync_api = require_module("playwright.sync_api")
    if not name.endswith(".ipynb"):
        name += ".ipynb"
    (lab.root_dir / name).write_text(_notebook_json(cells), encoding="utf-8")
    if lab.app == "notebook":
        page.goto(f"{lab.base_url}/notebooks/{quote(name)}")
    else:
        workspace = quote(re.sub(r"[^\w-]", "-", Path(name).stem), safe="")
        page.goto(f"{lab.base_url}/lab/workspaces/{workspace}/tree/{quote(name)}")

    step = "kernel idle"
    try:
        page.wait_for_function(_KERNEL_IDLE_JS, arg=name, timeout=timeout * 1000, polling=100)
        step = "run all cells"
        page.evaluate(_RUN_ALL_JS)
        page.wait_for_function(
            "() => window.__dflRunAll !== null", timeout=timeout * 1000, polling=100
        )
    except sync_api.TimeoutError:
        shot = screenshot(page, f"timeout-{Path(name).stem}")
        raise AssertionError(
            f"{name}: timed out waiting for {step} after {timeout:g} s (screenshot: {shot}); "
            f"server log tail:\n{lab.redact(log_tail(lab.log_path, 15))}"
        ) from None
    result = page.evaluate("() => window.__dflRunAll")
    errors = cell_errors(page)
    if not allow_errors and (errors or not result.get("ok")):
        raise AssertionError(f"{name}: run failed: {result}; cell errors: {errors or 'none'}")
