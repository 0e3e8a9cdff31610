"""Real HTTP servers, none written for vidnb, started by the tests on 127.0.0.1.

nginx, Apache 2.4, lighttpd and Jupyter server's ``/files/`` route, each on a free port of
127.0.0.1 with a document root, configuration, pid file and logs in a temporary folder of
its own (removed when the server stops). Nothing outside that folder is read or written
apart from the server binaries and their modules; the system's configuration is never used.

>>> with start("nginx") as srv:               # doctest: +SKIP
...     srv.put("clip.mp4", data)
...     url = srv.url("clip.mp4")
...     srv.settle()                          # every request answered and logged
...     srv.entries("clip.mp4")               # [LogEntry(status=200, sent=..., ...)]

Throttling is per request, not per URL, so that an interrupted download and its resume
use the same URL (the resume record is tied to it): a request carrying
:data:`THROTTLE_HEADER` is answered at :data:`THROTTLE_KIB` KiB/s (nginx ``limit_rate``,
Apache's mod_ratelimit, lighttpd ``connection.kbytes-per-second``); others at full speed.
Jupyter has no throttle.

A missing binary skips the test, naming the Debian package that provides it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import grp
import importlib.util
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

__all__ = [
    "THROTTLE_HEADER",
    "THROTTLE_KIB",
    "SERVERS",
    "HTTP_SERVERS",
    "LogEntry",
    "Server",
    "start",
    "nginx",
    "apache",
    "lighttpd",
    "jupyter",
    "free_port",
]

#: Send this header (value "1") to have the request throttled.
THROTTLE_HEADER = "X-Vidnb-Throttle"
#: The throttled rate, KiB/s.
THROTTLE_KIB = 128

#: Seconds a server gets to start listening (Jupyter more: its imports alone take seconds,
#: many more on a busy machine), and its log to catch up.
START_TIMEOUT = 20.0
JUPYTER_START_TIMEOUT = 60.0
SETTLE_TIMEOUT = 10.0

# One access-log line per request, the same fields in the same order on every server,
# tab-separated (a tab is escaped inside a logged header, a quote is not everywhere):
# status, bytes sent (headers included: what went to the socket, an upper bound of the
# body), Range, If-Range, path. Absent headers are logged as "-".
_NGINX_FORMAT = "$status\t$bytes_sent\t$http_range\t$http_if_range\t$uri"
_APACHE_FORMAT = "%>s\\t%O\\t%{Range}i\\t%{If-Range}i\\t%U"
_LIGHTTPD_FORMAT = "%>s\t%O\t%{Range}i\t%{If-Range}i\t%U"
# How the servers escape a logged header: nginx and lighttpd as \xHH, Apache a quote as \".
_ESCAPE = re.compile(r"\\x([0-9A-Fa-f]{2})|\\([\"\\])")

# Jupyter (tornado) logs each request, successes only at DEBUG:
# "[D 2025-12-01 12:00:00.000 ServerApp] 206 GET /files/clip.mp4?token=[secret] (@127.0.0.1) 1.20ms"
_JUPYTER_LINE = re.compile(r"\] (\d{3}) (GET|HEAD) (/files/[^?\s]*)")


@dataclasses.dataclass(frozen=True)
class LogEntry:
    """One answered request, as the server logged it."""

    status: int
    #: Bytes written to the socket, headers included (-1 where the server does not say: Jupyter).
    sent: int
    range: str | None
    if_range: str | None
    path: str


@dataclasses.dataclass
class Server:
    """A running server: files go in ``root``, requests are read back with :meth:`entries`."""

    name: str
    port: int
    root: Path
    proc: subprocess.Popen[bytes]
    log_file: Path
    #: Reads one line of ``log_file``: a LogEntry, or None for a line about something else.
    parse: Callable[[str], LogEntry | None] = dataclasses.field(repr=False)
    #: Where files are served under (``/`` or ``/files/``) and the query every URL needs.
    prefix: str = "/"
    query: str = ""
    _markers: int = dataclasses.field(default=0, repr=False)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, name: str) -> str:
        return f"{self.base}{self.prefix}{name}{self.query}"

    def put(self, name: str, data: bytes) -> Path:
        """Write a file into the document root (readable by a server that dropped root)."""
        path = self.root / name
        path.write_bytes(data)
        path.chmod(0o644)
        return path

    def entries(self, name: str | None = None) -> list[LogEntry]:
        """The logged requests, in the order the server finished them; only ``name``'s if given."""
        text = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        found = [e for e in map(self.parse, text.splitlines()) if e is not None]
        if name is None:
            return found
        return [e for e in found if e.path == self.prefix + name]

    def settle(self, timeout: float = SETTLE_TIMEOUT) -> None:
        """Wait until every request the server received so far is in its log.

        A server logs a request when it finishes it (a cut one once it notices the cut),
        before it closes the connection. So: first wait until the server's processes hold
        no connection (call this after the client closed its own: ``vidnb.download``
        returns with its session closed); then request a marker URL and wait for its line,
        so that whatever still sat between the server and the log file (lighttpd's log goes
        through a pipe) is written too. The sockets are read from /proc, as the kernel's
        table can drop a connection (a reset one) that a server thread is still finishing
        (and has not logged yet: Apache's).
        """
        deadline = time.monotonic() + timeout
        while _held_connections(self.proc.pid):
            self._check(deadline, timeout, "its connections to close")
            time.sleep(0.01)  # polling the process's open sockets with a deadline
        self._markers += 1
        marker = f"vidnb-settle-{self._markers}"
        with contextlib.suppress(urllib.error.HTTPError):  # a 404, as it should
            urllib.request.urlopen(self.url(marker), timeout=timeout).close()
        while not self.entries(marker):
            self._check(deadline, timeout, "its log")
            time.sleep(0.01)  # polling the log file with a deadline

    def _check(self, deadline: float, timeout: float, what: str) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {self.name}'s {what}")


# --------------------------------------------------------------------------- plumbing


def free_port() -> int:
    """A port of 127.0.0.1 nothing listens on now (another process could take it before the
    server binds it; on loopback in a test run that is rare, and shows as a failed start)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _held_connections(pid: int) -> int:
    """Connections the process ``pid`` and its children still have open (Linux's /proc).

    A socket of theirs that is not a listening TCP socket nor one of the tables' other kinds
    (Unix, UDP, netlink: their own plumbing) is a client's connection. One the client reset
    has left the TCP table while the server holds it, so it counts by not being listed.
    """
    ours: set[str] = set()
    for p in _tree(pid):
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{p}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{p}/fd/{fd}")
                    if link.startswith("socket:["):
                        ours.add(link[8:-1])
    plumbing: set[str] = set()
    for table in ("tcp", "tcp6", "udp", "udp6", "unix", "netlink", "raw", "raw6", "packet"):
        with contextlib.suppress(OSError), open(f"/proc/net/{table}") as f:
            header, *rows = f.read().splitlines()
        column = header.split().index("Inode") if table in ("unix", "netlink", "packet") else 9
        for row in rows:
            fields = row.split()
            if len(fields) > column and not (table.startswith("tcp") and fields[3] != "0A"):
                plumbing.add(fields[column])
    return len(ours - plumbing)


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (nginx's workers)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
    return found


def _binary(names: list[str], package: str) -> str:
    for name in names:
        # /usr/sbin is not on every user's PATH.
        for found in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
            if found and os.access(found, os.X_OK):
                return found
    pytest.skip(f"{names[0]} not found: install the Debian package {package}")


def _wait_listening(proc: subprocess.Popen[bytes], port: int, name: str, logs: list[Path], timeout: float) -> None:
    """Poll the port until it accepts a connection; fail, with the server's logs, when the
    server exits first or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} before listening\n{_tails(logs)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} not listening on 127.0.0.1:{port} after {timeout:g} s\n{_tails(logs)}")
        time.sleep(0.02)  # polling the port with a deadline


def _tails(logs: list[Path]) -> str:
    return "\n".join(f"--- {p}:\n{p.read_text(errors='replace')[-3000:]}" for p in logs if p.exists())


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def _workdir(name: str) -> Iterator[tuple[Path, Path]]:
    """A temporary folder (removed afterwards) and the document root inside it.

    Both world-readable: nginx's workers and Apache's children drop root (to nobody), and
    still have to read the files.
    """
    work = Path(tempfile.mkdtemp(prefix=f"vidnb-{name}-"))
    try:
        work.chmod(0o755)
        root = work / "www"
        root.mkdir(mode=0o755)
        root.chmod(0o755)
        yield work, root
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def _running(argv: list[str], name: str, port: int, logs: list[Path], env: dict[str, str] | None = None,
             stderr: Path | None = None, timeout: float = START_TIMEOUT) -> Iterator[subprocess.Popen[bytes]]:
    err = stderr or logs[0].with_name(f"{name}.stderr")
    with open(err, "wb") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env)
    try:
        _wait_listening(proc, port, name, list(dict.fromkeys([*logs, err])), timeout)
        yield proc
    finally:
        _stop(proc)


def _access_entry(line: str) -> LogEntry | None:
    fields = line.rstrip("\n").split("\t")
    if len(fields) != 5 or not fields[0].isdigit():
        return None
    status, sent, rng, if_range, path = fields
    return LogEntry(int(status), int(sent) if sent.isdigit() else 0, _header(rng), _header(if_range), path)


def _header(logged: str) -> str | None:
    if logged == "-":
        return None
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)) if m.group(1) else m.group(2), logged)


def _jupyter_entry(line: str) -> LogEntry | None:
    m = _JUPYTER_LINE.search(line)
    return LogEntry(int(m.group(1)), -1, None, None, m.group(3)) if m else None


def _unprivileged() -> tuple[str, str]:
    """The user and group a server started as root drops to: nobody and its group."""
    user = pwd.getpwnam("nobody")
    return user.pw_name, grp.getgrgid(user.pw_gid).gr_name


# --------------------------------------------------------------------------- the servers


@contextlib.contextmanager
def nginx() -> Iterator[Server]:
    """nginx (``nginx-light``) in the foreground, one worker."""
    binary = _binary(["nginx"], "nginx-light")
    with _workdir("nginx") as (work, root):
        port = free_port()
        access, error = work / "access.log", work / "error.log"
        # limit_rate takes a variable (nginx >= 1.17): 0, no limit, unless the header is sent.
        conf = f"""
worker_processes 1;
pid {work}/nginx.pid;
error_log {error} warn;
events {{ worker_connections 256; }}
http {{
    log_format interop '{_NGINX_FORMAT}';
    access_log {access} interop;
    client_body_temp_path {work}/client_body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    types {{ video/mp4 mp4; video/webm webm; }}
    default_type application/octet-stream;
    sendfile on;
    map $http_{THROTTLE_HEADER.lower().replace("-", "_")} $interop_rate {{ default 0; "1" {THROTTLE_KIB}k; }}
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ limit_rate $interop_rate; }}
    }}
}}
"""
        (work / "nginx.conf").write_text(conf)
        argv = [binary, "-p", f"{work}/", "-c", str(work / "nginx.conf"), "-g", "daemon off;"]
        with _running(argv, "nginx", port, [error]) as proc:
            yield Server("nginx", port, root, proc, access, _access_entry)


_APACHE_MODULE_DIRS = ["/usr/lib/apache2/modules", "/usr/lib64/httpd/modules", "/usr/lib/httpd/modules"]


@contextlib.contextmanager
def apache() -> Iterator[Server]:
    """Apache 2.4 (``apache2``), ``-X``: one process, in the foreground.

    Without apache2ctl, which reads /etc/apache2/envvars: only the system's configuration
    uses those variables. Started as root, it serves as nobody.
    """
    binary = _binary(["apache2", "httpd"], "apache2")
    modules = next((Path(d) for d in _APACHE_MODULE_DIRS if (Path(d) / "mod_mpm_event.so").exists()), None)
    if modules is None:
        pytest.skip("Apache's modules (mod_mpm_event.so) not found: install the Debian package apache2")
    with _workdir("apache") as (work, root):
        port = free_port()
        access, error = work / "access.log", work / "error.log"
        user, group = _unprivileged()
        load = "\n".join(
            f"LoadModule {m}_module {modules}/mod_{m}.so"
            for m in ("mpm_event", "authz_core", "mime", "dir", "setenvif", "ratelimit")
        )
        # mod_ratelimit's filter throttles a response only when the rate-limit variable is set
        # (KiB/s); without it the filter removes itself. The variable comes from the header;
        # the initial burst, a second's worth, is what nginx's limit_rate and lighttpd send at once.
        conf = f"""
ServerRoot "{work}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
{load}
User {user}
Group {group}
PidFile "{work}/httpd.pid"
DefaultRuntimeDir "{work}"
Mutex file:{work} default
ErrorLog "{error}"
LogLevel warn
TypesConfig /dev/null
AddType video/mp4 .mp4
AddType video/webm .webm
LogFormat "{_APACHE_FORMAT}" interop
CustomLog "{access}" interop
DocumentRoot "{root}"
<Directory "{root}">
    Require all granted
    SetEnvIf {THROTTLE_HEADER} ^1$ rate-limit={THROTTLE_KIB} rate-initial-burst={THROTTLE_KIB}
    SetOutputFilter RATE_LIMIT
</Directory>
"""
        (work / "httpd.conf").write_text(conf)
        argv = [binary, "-X", "-f", str(work / "httpd.conf")]
        with _running(argv, "apache", port, [error]) as proc:
            yield Server("apache", port, root, proc, access, _access_entry)


@contextlib.contextmanager
def lighttpd() -> Iterator[Server]:
    """lighttpd (``lighttpd``), ``-D``: in the foreground."""
    binary = _binary(["lighttpd"], "lighttpd")
    with _workdir("lighttpd") as (work, root):
        port = free_port()
        access, error = work / "access.log", work / "error.log"
        conf = f"""
server.document-root = "{root}"
server.bind = "127.0.0.1"
server.port = {port}
server.pid-file = "{work}/lighttpd.pid"
server.errorlog = "{error}"
server.modules = ("mod_accesslog")
# To a pipe: lighttpd writes a file log only every 4 s (or 8 KiB), a piped one per request.
accesslog.filename = "|exec cat >> '{access}'"
accesslog.format = "{_LIGHTTPD_FORMAT}"
mimetype.assign = (".mp4" => "video/mp4", ".webm" => "video/webm")
$REQUEST_HEADER["{THROTTLE_HEADER}"] == "1" {{
    connection.kbytes-per-second = {THROTTLE_KIB}
}}
"""
        (work / "lighttpd.conf").write_text(conf)
        argv = [binary, "-D", "-f", str(work / "lighttpd.conf")]
        with _running(argv, "lighttpd", port, [error]) as proc:
            yield Server("lighttpd", port, root, proc, access, _access_entry)


@contextlib.contextmanager
def jupyter() -> Iterator[Server]:
    """Jupyter server, its ``/files/`` route, with a token.

    Its own config, data and runtime folders (in the temporary folder) keep it off the
    user's; its request log is its stderr, at DEBUG because that is where it logs the
    successful requests (status, method, path; not Range or bytes sent).
    """
    if importlib.util.find_spec("jupyter_server") is None:
        pytest.skip("jupyter_server not installed: pip install -e '.[test]' (jupyterlab brings it)")
    with _workdir("jupyter") as (work, root):
        port = free_port()
        token = secrets.token_hex(16)
        log = work / "jupyter.log"
        env = dict(os.environ)
        for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                         ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython")):
            (work / sub).mkdir()
            env[var] = str(work / sub)
        # No configuration but the command line's: no server extensions (JupyterLab's take
        # seconds to load, and /files/ is jupyter_server's own), nothing of the user's.
        env["JUPYTER_NO_CONFIG"] = "1"
        env.pop("JUPYTER_CONFIG_PATH", None)
        # Where that blank configuration goes (a mkdtemp, never removed by Jupyter).
        (work / "tmp").mkdir()
        env["TMPDIR"] = str(work / "tmp")
        argv = [
            sys.executable, "-m", "jupyter_server", "--no-browser",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={token}",
            "--allow-root", "--log-level=DEBUG",
        ]
        with _running(argv, "jupyter", port, [log], env=env, stderr=log, timeout=JUPYTER_START_TIMEOUT) as proc:
            yield Server("jupyter", port, root, proc, log, _jupyter_entry, prefix="/files/", query=f"?token={token}")


SERVERS: dict[str, Callable[[], contextlib.AbstractContextManager[Server]]] = {
    "nginx": nginx,
    "apache": apache,
    "lighttpd": lighttpd,
    "jupyter": jupyter,
}
#: The servers with an access log of bytes sent and a throttle.
HTTP_SERVERS = ["nginx", "apache", "lighttpd"]


def start(name: str) -> contextlib.AbstractContextManager[Server]:
    """``with start("nginx") as srv:``: one of :data:`SERVERS`, stopped and removed at the end."""
    return SERVERS[name]()
