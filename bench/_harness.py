"""Shared pieces for the vidnb benchmarks.

Everything here is deliberately small and dependency-free (stdlib only) so that
each benchmark script can be run with a bare ``python bench/<name>.py`` and so
that later benchmarks (throttled multi-connection, many small files, aria2c,
wget) can reuse the same local nginx, timing and reporting code.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024
MB = 1_000_000

#: The /paced/ location's rate, bytes per second per connection, and the most nginx sends
#: at once under it. nginx's ``limit_rate`` pauses for (bytes sent / rate) after each send,
#: and one send may be up to ``sendfile_max_chunk`` (2 MiB by default, and the socket takes
#: that much on loopback): a file of 2 MB, an HLS segment, goes out in one send, unthrottled
#: (it took 2 ms under ``limit_rate 5m``). Here ``sendfile_max_chunk`` cuts every send to
#: PACED_CHUNK, after which nginx waits PACED_CHUNK / PACED_RATE = 32 ms exactly (its timers
#: count whole milliseconds), so a file of any size arrives at the rate: 2 MB took 0.97 s,
#: 8 MB 4.00 s, against 0.977 s and 3.91 s for size / PACED_RATE.
PACED_CHUNK = 64 * 1024
PACED_RATE = PACED_CHUNK * 1000 // 32  # 2,048,000 B/s, about 1.95 MiB/s

# --------------------------------------------------------------------------
# tools


def require_tool(name: str, package: str, candidates: Sequence[str] = ()) -> str:
    """Return the path of executable *name* or exit naming the Debian *package*.

    *candidates* are absolute paths tried first, because e.g. nginx lives in
    /usr/sbin, which is often not on a normal user's PATH.
    """
    for cand in candidates:
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    found = shutil.which(name)
    if found:
        return found
    sys.exit(f"error: '{name}' not found; install the Debian package '{package}' "
             f"(apt-get install {package})")


def optional_tool(name: str, candidates: Sequence[str] = ()) -> str | None:
    """Like :func:`require_tool` but return None instead of exiting."""
    for cand in candidates:
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return shutil.which(name)


def tool_version(argv: Sequence[str]) -> str:
    """First line a ``--version``-style command prints (stdout or stderr)."""
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    # nginx -v writes to stderr, curl --version to stdout.
    text = (res.stdout or res.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def machine_info(extra: Mapping[str, str] | None = None) -> str:
    """One-line description of the machine for the report header."""
    parts = [f"nproc={os.cpu_count()}",
             f"python={platform.python_version()}",
             f"{platform.system()} {platform.release()}"]
    parts += [f"{k}={v}" for k, v in (extra or {}).items()]
    return ", ".join(parts)


# --------------------------------------------------------------------------
# data


# A 24-byte ISO BMFF `ftyp` box: vidnb sniffs the first bytes and refuses
# bodies that are not video, so benchmark payloads must look like an MP4.
MP4_HEADER = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"


def make_data_file(path: Path, size: int, *, header: bytes = MP4_HEADER,
                   block: int = MIB) -> Path:
    """Write *size* bytes of incompressible data starting with *header*.

    One random block is reused for speed, but every block gets its offset
    stamped into its first 8 bytes so that no two blocks are identical
    (defeats any dedup/caching layer that might flatter a repeated pattern).
    """
    if len(header) > min(size, block):
        raise ValueError("header longer than the file or block")
    path.parent.mkdir(parents=True, exist_ok=True)
    base = bytearray(os.urandom(block))
    with open(path, "wb") as fh:
        written = 0
        while written < size:
            n = min(block, size - written)
            base[:8] = written.to_bytes(8, "little")
            chunk = bytearray(base[:n]) if written == 0 else memoryview(base)[:n]
            if written == 0:
                chunk[:len(header)] = header
            fh.write(chunk)
            written += n
    return path


def sha256_file(path: Path, chunk: int = 4 * MIB) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while data := fh.read(chunk):
            h.update(data)
    return h.hexdigest()


# --------------------------------------------------------------------------
# nginx


@dataclass
class Nginx:
    """A running nginx serving *data_dir* on 127.0.0.1:*port*."""

    proc: subprocess.Popen[bytes]
    prefix: Path
    data_dir: Path
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, name: str, *, throttled: bool = False, paced: bool = False) -> str:
        """URL for file *name* in the data dir, optionally via /throttled/ or /paced/."""
        where = "throttled/" if throttled else "paced/" if paced else ""
        return f"{self.base_url}/{where}{name}"


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the kernel for a currently unused TCP port.

    There is a small race until nginx binds it, acceptable on loopback.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def write_nginx_conf(prefix: Path, data_dir: Path, port: int, *,
                     throttle_rate: str = "20m", paced_rate: int = PACED_RATE,
                     paced_chunk: int = PACED_CHUNK) -> Path:
    """Write a minimal self-contained nginx.conf into *prefix*.

    Every path nginx may touch (pid, logs, temp dirs) points inside *prefix*,
    so nothing outside the temp dir is read or written.
    """
    p = prefix.resolve()
    d = data_dir.resolve()
    for sub in ("logs", "tmp"):
        (p / sub).mkdir(parents=True, exist_ok=True)
    conf = f"""\
worker_processes 1;
pid {p}/nginx.pid;
error_log {p}/logs/error.log warn;

events {{
    worker_connections 1024;
}}

http {{
    access_log {p}/logs/access.log;
    client_body_temp_path {p}/tmp/client_body;
    proxy_temp_path {p}/tmp/proxy;
    fastcgi_temp_path {p}/tmp/fastcgi;
    uwsgi_temp_path {p}/tmp/uwsgi;
    scgi_temp_path {p}/tmp/scgi;

    # Real video Content-Types, as a CDN would send them.
    types {{
        video/mp4 mp4;
        video/webm webm;
        application/vnd.apple.mpegurl m3u8;
        video/mp2t ts;
        video/iso.segment m4s;
        audio/mp4 m4a;
        audio/aac aac;
        application/dash+xml mpd;
        text/html html;
    }}
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;

    server {{
        listen 127.0.0.1:{port};
        root {d};

        location / {{
        }}

        # Used by later benchmarks to emulate a per-connection-limited CDN.
        location /throttled/ {{
            alias {d}/;
            limit_rate {throttle_rate};
        }}

        # A per-connection limit that binds on small files too (see PACED_RATE).
        location /paced/ {{
            alias {d}/;
            limit_rate {paced_rate};
            sendfile_max_chunk {paced_chunk};
        }}
    }}
}}
"""
    path = p / "nginx.conf"
    path.write_text(conf)
    return path


def wait_for_port(port: int, *, host: str = "127.0.0.1", timeout: float = 10.0,
                  proc: subprocess.Popen[bytes] | None = None) -> None:
    """Poll until something accepts TCP connections on host:port.

    Raises RuntimeError on timeout or if *proc* exits first (e.g. bad config).
    """
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before "
                               f"listening on {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            raise RuntimeError(f"nothing listening on {host}:{port} after {timeout}s")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def start_nginx(data_dir: Path, *, prefix: Path | None = None,
                nginx: str | None = None, throttle_rate: str = "20m",
                paced_rate: int = PACED_RATE, timeout: float = 10.0) -> Nginx:
    """Start nginx in the foreground serving *data_dir*; return once it listens.

    When run as root the worker drops to nginx's default unprivileged user,
    so *data_dir* and its parents must be world-readable/traversable.
    """
    nginx = nginx or require_tool("nginx", "nginx-light", ["/usr/sbin/nginx"])
    prefix = Path(prefix or tempfile.mkdtemp(prefix="vidnb-nginx-"))
    port = free_port()
    conf = write_nginx_conf(prefix, data_dir, port, throttle_rate=throttle_rate, paced_rate=paced_rate)
    proc = subprocess.Popen(
        [nginx, "-p", f"{prefix}/", "-c", str(conf), "-g", "daemon off;"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    server = Nginx(proc=proc, prefix=prefix, data_dir=data_dir, port=port)
    try:
        wait_for_port(port, timeout=timeout, proc=proc)
    except RuntimeError as exc:
        stop_nginx(server)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        log = prefix / "logs" / "error.log"
        if log.exists():
            err += log.read_text(errors="replace")
        raise RuntimeError(f"nginx failed to start: {exc}\n{err.strip()}") from None
    return server


def stop_nginx(server: Nginx, timeout: float = 10.0) -> None:
    """Stop nginx (SIGTERM = fast shutdown), killing it if it hangs."""
    proc = server.proc
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stderr:
        proc.stderr.close()


@contextlib.contextmanager
def running_nginx(data_dir: Path, **kwargs: object) -> Iterator[Nginx]:
    """Context manager around :func:`start_nginx` / :func:`stop_nginx`."""
    server = start_nginx(data_dir, **kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        stop_nginx(server)


# --------------------------------------------------------------------------
# timing


@dataclass
class RunResult:
    """Cost of one child process (including the processes it waited for)."""

    returncode: int
    wall_s: float
    cpu_s: float       # user + sys
    maxrss_mib: float  # peak RSS of the command itself, see time_command
    rss_exact: bool    # False: maxrss_mib is inflated to at least our own peak
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0


_gnu_time: str | None | bool = False  # False = not probed yet


def gnu_time() -> str | None:
    """Path of a working GNU time (Debian package 'time'), or None.

    Probed once, because BusyBox and shell-builtin `time` lack -f/-o.
    """
    global _gnu_time
    if _gnu_time is False:
        _gnu_time = None
        exe = optional_tool("time", ["/usr/bin/time"])
        if exe:
            with tempfile.NamedTemporaryFile("r") as out:
                res = subprocess.run([exe, "-f", "%M", "-o", out.name, "true"],
                                     capture_output=True)
                if res.returncode == 0 and _parse_time_output(out.read()) is not None:
                    _gnu_time = exe
    return _gnu_time  # type: ignore[return-value]


def _parse_time_output(text: str) -> float | None:
    """KiB from GNU time's -o file.

    The last line is %M; earlier lines are notes such as
    "Command exited with non-zero status 1".
    """
    lines = text.strip().splitlines()
    return float(lines[-1]) if lines and lines[-1].strip().isdigit() else None


def _wait_until_exit(pid: int, timeout: float | None) -> bool:
    """Block until *pid* exits without reaping it; False if *timeout* hit first.

    A pidfd lets us wait with a timeout while leaving the exit status for
    os.wait4, which is what yields this child's rusage.
    """
    if timeout is None or not hasattr(os, "pidfd_open"):
        return True
    fd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        return bool(ready)
    finally:
        os.close(fd)


def time_command(argv: Sequence[str], *, stdout: int | None = subprocess.DEVNULL,
                 capture_stderr: bool = True, env: Mapping[str, str] | None = None,
                 cwd: Path | None = None, timeout: float | None = None,
                 exact_rss: bool = True) -> RunResult:
    """Run *argv*, returning wall time, CPU time and peak RSS of that child.

    Wall and CPU come from os.wait4 on the child, i.e. exactly this run (and
    whatever it waited for), unlike getrusage(RUSAGE_CHILDREN) deltas.

    Peak RSS is subtler: Linux carries ru_maxrss across fork+exec, so any
    child of this Python process reports at least *our* peak RSS (~20-30 MiB,
    more after hashing big files). With *exact_rss* and GNU time available,
    the command is therefore started by `time -f %M`, a ~1 MiB process, and
    its report is used; otherwise wait4's inflated value is returned with
    rss_exact=False.

    The child gets its own session so a timeout or Ctrl-C kills the whole
    tree (GNU time and the command under it). stderr goes to a temp file, not
    a pipe, so a chatty child can never block while we sit in wait4.
    """
    timer = gnu_time() if exact_rss else None
    with tempfile.TemporaryFile() as errf, tempfile.NamedTemporaryFile("r") as rssf:
        cmd = [timer, "-f", "%M", "-o", rssf.name, *argv] if timer else list(argv)
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=stdout,
            stderr=errf if capture_stderr else subprocess.DEVNULL,
            env=dict(env) if env is not None else None, cwd=cwd,
            start_new_session=True)
        try:
            if not _wait_until_exit(proc.pid, timeout):
                os.killpg(proc.pid, signal.SIGKILL)
            _, status, ru = os.wait4(proc.pid, 0)
        except BaseException:
            # Ctrl-C etc.: don't leave a download running in the background.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        wall = time.perf_counter() - t0
        # Tell Popen the child is reaped so it never signals a reused pid.
        proc.returncode = os.waitstatus_to_exitcode(status)
        errf.seek(0)
        err = errf.read().decode(errors="replace")
        rss_kib = _parse_time_output(rssf.read()) if timer else None
    exact = rss_kib is not None
    if rss_kib is None:
        rss_kib = ru.ru_maxrss  # KiB on Linux
    return RunResult(returncode=proc.returncode, wall_s=wall,
                     cpu_s=ru.ru_utime + ru.ru_stime, maxrss_mib=rss_kib / 1024,
                     rss_exact=exact, stderr=err)


def _proc_status_kib(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Start this process's peak-RSS count again from its current RSS (Linux >= 4.0).

    False when that is not possible: :func:`peak_rss_mib` then gives the peak of the
    process's whole life.
    """
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def rss_mib() -> float:
    """This process's resident set size now, MiB (0 where /proc is missing)."""
    return (_proc_status_kib("VmRSS") or 0.0) / 1024


def peak_rss_mib() -> float:
    """This process's peak RSS since :func:`reset_peak_rss` (or its start), MiB."""
    kib = _proc_status_kib("VmHWM")
    if kib is None:
        import resource

        kib = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return kib / 1024


def error_summary(stderr: str, returncode: int | None = None) -> str:
    """One line describing why a command failed.

    The first stderr line, except when a Python traceback is present (possibly
    after progress-bar output): then its last line, the exception, is useful.
    """
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    if not lines:
        return f"exit status {returncode}" if returncode is not None else "no output"
    if any(ln.startswith("Traceback (most recent call last)") for ln in lines):
        return lines[-1]
    return lines[0]


# --------------------------------------------------------------------------
# statistics and reporting


def median(values: Sequence[float]) -> float:
    """Median, NaN for an empty sequence (so a table cell shows 'nan')."""
    return statistics.median(values) if values else float("nan")


def paired_ratios(values: Sequence[float | None], baseline: Sequence[float | None]) -> list[float]:
    """Per-round ratios values[i] / baseline[i], leaving out rounds where either failed."""
    return [v / b for v, b in zip(values, baseline, strict=False) if v is not None and b]


def paired_ratio(values: Sequence[float | None], baseline: Sequence[float | None]) -> float:
    """Median of per-round ratios values[i] / baseline[i].

    Pairing by round cancels slow drifts (thermal, background load) that
    would skew a ratio of two independent medians.
    """
    return median(paired_ratios(values, baseline))


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Render a GitHub-flavoured markdown table with padded columns."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + " |"

    out = [line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in cells[1:]]
    return "\n".join(out)


def remove_quietly(path: Path) -> None:
    """Delete *path* (and any resume side files) if present."""
    for p in (path, *path.parent.glob(path.name + ".part*")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
