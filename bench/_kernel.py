"""A warm interpreter standing in for a Jupyter kernel: the bench's "in a notebook" column.

A notebook user has vidnb imported in a running kernel and compares it with ``!curl`` run
from a cell. This module is both sides of that:

- run as a script (``python bench/_kernel.py``), it is the kernel: it imports vidnb once,
  keeps one asyncio event loop, and then serves requests, one JSON line each on stdin,
  answered by one JSON line on its own copy of stdout (fd 1 itself goes to /dev/null, so
  nothing a download prints can garble the answers):

  - ``{"op": "cell", "code": ..., "timeout": s}`` runs ``code`` as a cell (top-level
    ``await`` allowed, on the kernel's loop) and answers its wall and CPU seconds (this
    process, all threads), the peak RSS during the cell and the RSS before it;
  - ``{"op": "run", "argv": [...], "env": {...}, "cwd": ..., "timeout": s, ...}`` starts a
    command as a child, as ``!cmd`` in a cell does, timed by :func:`_harness.time_command`;
  - ``{"op": "eval", "expr": ...}`` answers the value of an expression (JSON-able);
  - ``{"op": "modules"}`` answers the file of every loaded ``vidnb`` module;
  - ``{"op": "exit"}``.

- imported, :class:`Kernel` starts one and talks to it.

The kernel's own start-up (Python, ``import vidnb``) is not in any figure: that is paid
once per notebook, not per download.
"""

from __future__ import annotations

import ast
import asyncio
import gc
import inspect
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h  # noqa: E402

KERNEL_PY = str(Path(__file__).resolve())


@dataclass
class CellResult:
    """What one cell cost the kernel; ``error`` is ``"ExceptionType: message"`` or None."""

    wall_s: float
    cpu_s: float
    peak_rss_mib: float
    base_rss_mib: float
    error: str | None = None
    error_type: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


# ---------------------------------------------------------------------------- kernel side


def _cpu_self() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _run_cell(code: str, ns: dict[str, Any], loop: asyncio.AbstractEventLoop, timeout: float | None) -> dict[str, Any]:
    compiled = compile(code, "<cell>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    gc.collect()
    base = h.rss_mib()
    h.reset_peak_rss()
    error: BaseException | None = None
    cpu0 = _cpu_self()
    t0 = time.perf_counter()
    try:
        result = eval(compiled, ns)  # noqa: S307 - the bench's own cells
        if inspect.iscoroutine(result):
            loop.run_until_complete(asyncio.wait_for(result, timeout))
    except BaseException as exc:  # noqa: BLE001 - reported, the kernel carries on
        if isinstance(exc, KeyboardInterrupt):
            raise
        error = exc
    wall = time.perf_counter() - t0
    cpu = _cpu_self() - cpu0
    answer: dict[str, Any] = {"wall_s": wall, "cpu_s": cpu, "peak_rss_mib": max(h.peak_rss_mib(), base),
                              "base_rss_mib": base, "error": None, "error_type": None}
    if error is not None:
        text = str(error).strip().splitlines()
        answer["error"] = f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")
        answer["error_type"] = type(error).__name__
        if isinstance(error, asyncio.TimeoutError):
            answer["error"] = "timed out"
    return answer


def _run_command(req: Mapping[str, Any]) -> dict[str, Any]:
    res = h.time_command(req["argv"], capture_stderr=req.get("capture_stderr", True), env=req.get("env"),
                         cwd=Path(req["cwd"]) if req.get("cwd") else None, timeout=req.get("timeout"),
                         exact_rss=req.get("exact_rss", True))
    return {"returncode": res.returncode, "wall_s": res.wall_s, "cpu_s": res.cpu_s, "maxrss_mib": res.maxrss_mib,
            "rss_exact": res.rss_exact, "stderr": res.stderr[-4000:]}


def serve(requests: IO[str], answers: IO[str]) -> None:
    import vidnb

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    ns: dict[str, Any] = {"vidnb": vidnb, "asyncio": asyncio, "__name__": "__main__"}
    answers.write(json.dumps({"vidnb": vidnb.__file__, "pid": os.getpid()}) + "\n")
    answers.flush()
    for line in requests:
        req = json.loads(line)
        op = req["op"]
        if op == "exit":
            break
        try:
            if op == "cell":
                answer = _run_cell(req["code"], ns, loop, req.get("timeout"))
            elif op == "run":
                answer = _run_command(req)
            elif op == "eval":
                answer = {"value": eval(req["expr"], ns)}  # noqa: S307
            elif op == "modules":
                answer = {"files": sorted({getattr(m, "__file__", None) or "" for n, m in list(sys.modules.items())
                                           if n.partition(".")[0] == "vidnb"})}
            else:
                answer = {"fatal": f"unknown op {op!r}"}
        except Exception as exc:  # noqa: BLE001 - the bench reports it
            answer = {"fatal": f"{type(exc).__name__}: {exc}"}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()
    loop.close()


def main() -> None:
    # Answers go to a private copy of stdout; fd 1 (what print() and children would use) to /dev/null.
    answers = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the kernel's whole life
    serve(sys.stdin, answers)


# ---------------------------------------------------------------------------- bench side


class KernelError(RuntimeError):
    """The kernel died or could not run a request."""


class Kernel:
    """A running :func:`serve` process for one vidnb tree (``env`` sets its PYTHONPATH)."""

    def __init__(self, env: Mapping[str, str], cwd: Path, log: Path) -> None:
        self.log = log
        self._logf = open(log, "ab")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen([sys.executable, KERNEL_PY], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._logf, env=dict(env), cwd=cwd, text=True, bufsize=1)
        hello = self._read()
        self.vidnb_file: str = hello["vidnb"]

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            tail = self.log.read_text(errors="replace").strip().splitlines()[-3:] if self.log.exists() else []
            raise KernelError("the kernel process exited: " + (" / ".join(tail) or f"status {self.proc.poll()}"))
        answer: dict[str, Any] = json.loads(line)
        if "fatal" in answer:
            raise KernelError(answer["fatal"])
        return answer

    def request(self, **req: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise KernelError("the kernel process exited") from None
        return self._read()

    def cell(self, code: str, timeout: float | None = None) -> CellResult:
        return CellResult(**self.request(op="cell", code=code, timeout=timeout))

    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
            timeout: float | None = None, capture_stderr: bool = True, exact_rss: bool = True) -> h.RunResult:
        a = self.request(op="run", argv=list(argv), env=dict(env) if env is not None else None,
                         cwd=str(cwd) if cwd else None, timeout=timeout, capture_stderr=capture_stderr,
                         exact_rss=exact_rss)
        return h.RunResult(a["returncode"], a["wall_s"], a["cpu_s"], a["maxrss_mib"], a["rss_exact"], a["stderr"])

    def eval(self, expr: str) -> Any:
        return self.request(op="eval", expr=expr)["value"]

    def modules(self) -> list[str]:
        files: list[str] = self.request(op="modules")["files"]
        return files

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"op": "exit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self._logf.close()


if __name__ == "__main__":
    main()
