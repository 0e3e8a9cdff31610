"""A real Jupyter kernel driven through jupyter_client, for the kernel-loop tests.

Every IOPub message is read by one thread and kept with the time it arrived, so a test can
ask what the "browser" saw while a cell was busy, after it ended, or between two moments.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers import wait_until
from jupyter_client.manager import KernelManager

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Execution:
    """One executed cell: its reply and the moments it went busy and idle."""

    msg_id: str
    reply: dict[str, Any]
    sent: float
    replied: float
    idle: float
    outputs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.reply["content"]["status"]

    @property
    def ename(self) -> str | None:
        return self.reply["content"].get("ename")

    def stdout(self) -> str:
        """What the cell printed."""
        return "".join(m["content"]["text"] for m in self.outputs
                       if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")

    def text(self) -> str:
        """stdout, stderr and text/plain results of the cell, joined."""
        parts = []
        for m in self.outputs:
            c = m["content"]
            if m["msg_type"] == "stream":
                parts.append(c["text"])
            elif m["msg_type"] in ("execute_result", "display_data"):
                parts.append(c["data"].get("text/plain", ""))
            elif m["msg_type"] == "error":
                parts.append(f"{c['ename']}: {c['evalue']}")
        return "".join(parts)


class Kernel:
    """A started kernel with a thread recording every IOPub message as ``(arrival, msg)``."""

    def __init__(self, cwd: Path, kernel_name: str = "python3", argv: list[str] | None = None) -> None:
        self.km = KernelManager(kernel_name=kernel_name)
        if argv is not None:
            self.km.kernel_spec.argv = argv
        env = dict(os.environ)
        # The kernel imports this checkout, whatever is installed.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        self.km.start_kernel(cwd=str(cwd), env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.messages: list[tuple[float, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._idle: dict[str, float] = {}
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, name="iopub-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            self._read_until_stopped()
        finally:
            close_jupyter_loop()

    def _read_until_stopped(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self.kc.get_iopub_msg(timeout=0.2)
            except queue.Empty:
                continue
            except Exception:  # the channel closed at shutdown
                return
            now = time.monotonic()
            with self._lock:
                self.messages.append((now, msg))
                if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    self._idle[msg["parent_header"].get("msg_id", "")] = now

    def execute(self, code: str, timeout: float = 60, during: Callable[[], None] | None = None) -> Execution:
        """Run a cell and wait until its reply and its idle status arrived.

        ``during`` runs in this thread right after the request is sent (to interrupt, say).
        """
        sent = time.monotonic()
        msg_id = self.kc.execute(code, allow_stdin=False)
        if during is not None:
            during()
        reply = self.kc.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.kc.get_shell_msg(timeout=timeout)
        replied = time.monotonic()
        wait_until(lambda: msg_id in self._idle, timeout=timeout, interval=0.01, what=f"the idle status of {code!r}")
        with self._lock:
            outputs = [m for _, m in self.messages if m["parent_header"].get("msg_id") == msg_id
                       and m["msg_type"] in ("stream", "execute_result", "display_data", "error")]
        return Execution(msg_id, reply, sent, replied, self._idle[msg_id], outputs)

    def ok(self, code: str, timeout: float = 60) -> Execution:
        """Run a cell that must succeed; fail with its traceback otherwise."""
        ex = self.execute(code, timeout)
        if ex.status != "ok":
            tb = "\n".join(ex.reply["content"].get("traceback", []))
            raise AssertionError(f"cell failed: {code}\n{tb}\n{ex.text()}")
        return ex

    def wait_for(self, cond: Callable[[], bool], timeout: float = 30, what: str = "condition") -> None:
        wait_until(cond, timeout=timeout, what=what)

    def comm_updates(self, start: float = 0.0, end: float = float("inf")) -> list[tuple[float, dict[str, Any]]]:
        """``comm_msg`` widget state updates that arrived in ``[start, end)``."""
        with self._lock:
            return [
                (t, m) for t, m in self.messages
                if start <= t < end and m["msg_type"] == "comm_msg"
                and m["content"].get("data", {}).get("method") == "update"
            ]

    def progress_values(self, start: float = 0.0, end: float = float("inf")) -> list[tuple[float, Any]]:
        """``(arrival, value)`` of integer progress values sent to the frontend in ``[start, end)``."""
        out = []
        for t, m in self.comm_updates(start, end):
            state = m["content"]["data"].get("state", {})
            if "value" in state and isinstance(state["value"], (int, float)) and not isinstance(state["value"], bool):
                out.append((t, state["value"]))
        return out

    def shutdown(self) -> None:
        self._stop.set()
        self._reader.join(timeout=5)
        try:
            self.kc.stop_channels()
        finally:
            self.km.shutdown_kernel(now=True)
            close_jupyter_loop()


def close_jupyter_loop() -> None:
    """Close the event loop jupyter_client's blocking calls made for this thread.

    Its sync wrappers create a loop per thread and never close it; pytest would report it
    (and its self-pipe socket) as a ResourceWarning.
    """
    import asyncio

    from jupyter_core import utils

    loop = utils._loop.get(None)
    if loop is not None and not loop.is_closed() and not loop.is_running():
        loop.close()
        utils._loop.set(None)
        asyncio.set_event_loop(None)


def python_has(python: str, module: str) -> str | None:
    """The version of ``module`` importable by ``python``, or None."""
    import subprocess

    if not Path(python).exists():
        return None
    code = f"import importlib.metadata as m; print(m.version({module!r}))"
    res = subprocess.run([python, "-c", code], capture_output=True, text=True)
    return res.stdout.strip() if res.returncode == 0 else None


def kernel_argv(python: str) -> list[str]:
    return [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"]


PYTHON = sys.executable
