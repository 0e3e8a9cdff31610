"""A real JupyterLab (or Jupyter Notebook 7) on 127.0.0.1 driven by Debian's Chromium through Playwright.

Used by the browser tests: :class:`Lab` starts ``jupyter lab`` (or, with ``app="notebook"``,
``jupyter notebook``: Notebook 7 is built from Lab's parts, so the same page scripts drive
it) with its settings, workspaces and config inside a temp dir and stops it by its process
group; :func:`open_notebook` opens a notebook, waits for its kernel and runs all cells.
Never ``playwright install``: the browser is ``/usr/bin/chromium``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from helpers import wait_until

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    # Without these Chromium tries to reach Google's hosts at start; this machine has no internet.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]


def missing_requirements() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not Path(CHROMIUM).exists():
        return "Debian's chromium is not installed (apt-get install chromium; .ci/run does it)"
    try:
        import playwright  # noqa: F401 - only whether it is there
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    if shutil.which("jupyter-lab") is None and shutil.which("jupyter") is None:
        return "jupyterlab is not installed (pip install -e '.[test]')"
    return None


# app: (module run with -m, the class whose expose_app_in_browser puts the app on window.jupyterapp,
#       where notebooks open)
_APPS = {
    "lab": ("jupyterlab", "LabApp", "/lab/tree"),
    "notebook": ("notebook", "JupyterNotebookApp", "/notebooks"),
}


def missing_notebook7() -> str | None:
    """Why the Notebook 7 tests cannot run here, or None."""
    try:
        from importlib.metadata import version

        major = int(version("notebook").split(".")[0])
    except Exception:  # not installed, or a version string without a number first
        return "the notebook package (Jupyter Notebook 7) is not installed (pip install -e '.[test]')"
    return None if major >= 7 else f"Jupyter Notebook {major} is installed; these tests need 7 or later"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """``jupyter lab`` (or ``jupyter notebook``) serving ``root`` on a free loopback port with a random token."""

    def __init__(self, root: Path, home: Path, env: dict[str, str] | None = None, app: str = "lab") -> None:
        if app not in _APPS:
            raise ValueError(f"app must be one of {sorted(_APPS)}, not {app!r}")
        self.app = app
        self.root = root
        self.home = home
        #: Extra environment for the server and the kernels it starts (e.g. PYTHONPATH).
        self.env = dict(env or {})
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = home / "lab.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> Lab:
        env = {**os.environ, **self.env}
        for var, sub in [
            ("JUPYTER_CONFIG_DIR", "config"),
            ("JUPYTERLAB_SETTINGS_DIR", "settings"),
            ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
            ("JUPYTER_RUNTIME_DIR", "runtime"),
            ("IPYTHONDIR", "ipython"),
        ]:
            (self.home / sub).mkdir(parents=True, exist_ok=True)
            env[var] = str(self.home / sub)
        # Skip the "what's new" / news fetches: there is no internet, and they add dialogs.
        settings = self.home / "settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True, exist_ok=True)
        (settings / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False})
        )
        module, app_class, _ = _APPS[self.app]
        cmd = [
            sys.executable, "-m", module,
            "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
            f"--ServerApp.root_dir={self.root}",
            f"--IdentityProvider.token={self.token}",
            f"--{app_class}.expose_app_in_browser=True",
            "--ServerApp.port_retries=0",
            "--allow-root",
        ]  # fmt: skip
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            cmd, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        proc = self.proc
        try:
            wait_until(self._answers, timeout=timeout, interval=0.1, what="jupyter lab to answer",
                       unless=lambda: proc.poll() is not None)
        except AssertionError:
            exited = proc.poll() is not None
            self.stop()
            raise RuntimeError(
                f"jupyter {self.app} {'exited early' if exited else f'did not answer in {timeout} s'}:\n"
                f"{self.log_path.read_text()[-3000:]}"
            ) from None
        return self

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base}/api/status?token={self.token}", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=5)
        self.proc = None

    def url(self, path: str) -> str:
        """Where the notebook ``path`` opens in this app."""
        return f"{self.base}{_APPS[self.app][2]}/{path}?token={self.token}"

    def shutdown_kernels(self) -> None:
        req = urllib.request.Request(f"{self.base}/api/kernels?token={self.token}")
        with urllib.request.urlopen(req, timeout=5) as r:
            kernels = json.load(r)
        for k in kernels:
            urllib.request.urlopen(
                urllib.request.Request(f"{self.base}/api/kernels/{k['id']}?token={self.token}", method="DELETE"),
                timeout=10,
            ).close()


def open_notebook(page: Any, lab: Lab, name: str, *, run_all: bool = True, timeout: float = 60_000) -> None:
    """Open ``name`` in Lab, wait for an idle kernel, and optionally run all its cells."""
    page.goto(lab.url(name))
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget", timeout=timeout)
    # A notebook without kernelspec metadata asks which kernel to start: take the default.
    page.wait_for_function(
        """() => document.querySelector('.jp-Dialog .jp-mod-accept') ||
                 (window.jupyterapp.shell.currentWidget.sessionContext.session || {}).kernel""",
        timeout=timeout,
    )
    accept = page.locator(".jp-Dialog .jp-mod-accept")
    if accept.count():
        accept.first.click()
    # The kernel is ready when the session context reports an idle kernel.
    page.wait_for_function(
        """() => {
            const w = window.jupyterapp.shell.currentWidget;
            const s = w && w.sessionContext;
            return s && s.session && s.session.kernel && s.session.kernel.status === 'idle';
        }""",
        timeout=timeout,
    )
    if run_all:
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        wait_idle(page, timeout=timeout)


def wait_idle(page: Any, timeout: float = 60_000) -> None:
    """Wait until no cell is queued or running (their prompts show ``[*]``) and the kernel is idle."""
    page.wait_for_function(
        """() => {
            const w = window.jupyterapp.shell.currentWidget;
            const k = w && w.sessionContext.session && w.sessionContext.session.kernel;
            const busy = [...document.querySelectorAll('.jp-InputArea-prompt')]
                .some(p => p.textContent.includes('*'));
            return k && k.status === 'idle' && !busy;
        }""",
        timeout=timeout,
    )


def run_cell_code(page: Any, code: str, timeout: float = 60_000) -> None:
    """Append a code cell with ``code`` at the end of the notebook and run it."""
    page.evaluate(
        """(code) => {
            const app = window.jupyterapp;
            const panel = app.shell.currentWidget;
            const nb = panel.content;
            nb.activeCellIndex = nb.widgets.length - 1;
            return app.commands.execute('notebook:insert-cell-below').then(() => {
                nb.activeCell.model.sharedModel.setSource(code);
                return app.commands.execute('notebook:run-cell');
            });
        }""",
        code,
    )
    wait_idle(page, timeout=timeout)
