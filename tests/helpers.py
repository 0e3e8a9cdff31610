"""What the tests share: a fault-injecting server on 127.0.0.1, test videos, polling, subprocesses.

The server is :class:`LocalServer`, an aiohttp app on a thread of its own, so async tests,
sync tests and subprocesses all talk to it the same way. Each test adds its routes under
a unique path and reads back what the server received from ``route.requests``.

Fixtures built on these live in ``conftest.py``; test modules import from here
(``from helpers import make_video, wait_until``), never from ``conftest``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from vidnb.demo import SAMPLES, sample_path

__all__ = [
    "Concurrency",
    "Route",
    "serve_route",
    "LocalServer",
    "LocalSampleServer",
    "make_video",
    "sha",
    "file_sha",
    "videos",
    "serve_many",
    "leftovers",
    "files_written",
    "wait_until",
    "until",
    "run_python",
    "spawn_python",
    "spawn_download",
    "run_cli",
]

Serve = Callable[..., "tuple[str, Route]"]
T = TypeVar("T")


# --------------------------------------------------------------------------- routes with faults


@dataclass
class Concurrency:
    """Requests being answered at once, over every route that shares this object.

    Give one to several routes (``Route(..., concurrency=c)``) to see how many of their
    requests a client had open together, and over how many connections.
    """

    now: int = 0
    peak: int = 0
    #: Client ports the requests came from: one per connection the client opened.
    ports: set[int] = field(default_factory=set)


@dataclass
class Route:
    """One URL of the local server, with faults to inject.

    Parameters
    ----------
    data : bytes
        The body.
    content_type : str
    etag, last_modified : str or None
        Validators; by default a strong ETag from the data's hash and a fixed date.
    ranges : bool
        Honour ``Range`` (and ``If-Range``); False answers every request with the full body.
    rate : float, optional
        Bytes per second, to make downloads slow.
    statuses : list of int
        Answer the first requests with these statuses (e.g. ``[503, 429]``) before serving.
    retry_after : str, optional
        ``Retry-After`` sent with those statuses.
    drops : dict
        Request number (1-based, counting every request) -> body bytes after which the
        connection is cut.
    declared_length : int, optional
        A Content-Length that differs from the body (a lying server).
    chunked : bool
        Send no Content-Length at all.
    pause_after : int, optional
        Hold the rest of every body back after this many bytes (a server that hangs
        mid-body), until this is set to None again or the client goes away.
    content_disposition : str, optional
    redirect : str, optional
        Answer 302 to this location instead.
    concurrency : Concurrency, optional
        Counts this route's requests in flight (shared with other routes).
    ignore_if_range : bool
        Serve a range whatever If-Range says (tornado does).
    open_ended_ranges : bool
        False answers an open-ended range (``bytes=N-``) with the whole file, 200, while
        bounded ranges get their 206 (tornado and Jupyter's ``/files/`` do).
    if_range_dates : bool
        False answers a Last-Modified date in If-Range with the whole file (Apache does,
        until a file is a minute old).

    Examples
    --------
    >>> route = Route(make_video(100_000), statuses=[503], drops={2: 50_000})
    """

    data: bytes = b""
    content_type: str = "video/mp4"
    etag: str | None = "auto"
    last_modified: str | None = "Sat, 01 Nov 2025 12:00:00 GMT"
    ranges: bool = True
    rate: float | None = None
    statuses: list[int] = field(default_factory=list)
    retry_after: str | None = None
    drops: dict[int, int] = field(default_factory=dict)
    declared_length: int | None = None
    chunked: bool = False
    pause_after: int | None = None
    content_disposition: str | None = None
    redirect: str | None = None
    concurrency: Concurrency | None = None
    ignore_if_range: bool = False
    open_ended_ranges: bool = True
    if_range_dates: bool = True
    #: Body bytes written to the socket, over every request (what crossed the wire).
    sent: int = 0
    #: Headers of every request received, in order.
    requests: list[dict[str, str]] = field(default_factory=list)
    #: Called with each request number before answering (tests use it to react mid-stream).
    on_request: Callable[[int], Any] | None = None

    def __post_init__(self) -> None:
        if self.etag == "auto":
            self.etag = '"' + hashlib.sha256(self.data).hexdigest()[:16] + '"'

    @property
    def full_bodies(self) -> int:
        """How many requests asked for the whole body (no Range)."""
        return sum(1 for h in self.requests if "Range" not in h)


_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


async def serve_route(request: web.Request, route: Route) -> web.StreamResponse:
    """Answer ``request`` as ``route`` says (its faults included), recording its headers."""
    gauge = route.concurrency
    if gauge is None:
        return await _answer(request, route)
    gauge.now += 1
    gauge.peak = max(gauge.peak, gauge.now)
    if request.transport is not None:
        gauge.ports.add(request.transport.get_extra_info("peername")[1])
    try:
        return await _answer(request, route)
    finally:
        gauge.now -= 1


async def _answer(request: web.Request, route: Route) -> web.StreamResponse:
    route.requests.append(dict(request.headers))
    n = len(route.requests)
    if route.on_request is not None:
        route.on_request(n)
    if route.redirect:
        raise web.HTTPFound(route.redirect)
    if n <= len(route.statuses):
        status = route.statuses[n - 1]
        return web.Response(
            status=status,
            text=f"<html><body>error {status}</body></html>",
            headers={"Retry-After": route.retry_after} if route.retry_after else {},
            content_type="text/html",
        )

    data = route.data
    size = len(data)
    start, end = 0, size
    status = 200
    headers: dict[str, str] = {"Content-Type": route.content_type}
    if route.ranges:
        headers["Accept-Ranges"] = "bytes"
    if route.etag:
        headers["ETag"] = route.etag
    if route.last_modified:
        headers["Last-Modified"] = route.last_modified
    if route.content_disposition:
        headers["Content-Disposition"] = route.content_disposition
    rng = request.headers.get("Range")
    if rng and route.ranges and _if_range_holds(route, request.headers.get("If-Range")):
        m = _RANGE.match(rng.strip())
        if m and (m.group(2) or route.open_ended_ranges):
            start = int(m.group(1))
            end = min(int(m.group(2)) + 1, size) if m.group(2) else size
            if start >= size:
                return web.Response(status=416, headers={"Content-Range": f"bytes */{size}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    resp = web.StreamResponse(status=status, headers=headers)
    if route.chunked:
        resp.enable_chunked_encoding()
    else:
        resp.content_length = route.declared_length if route.declared_length is not None else end - start
    await resp.prepare(request)
    if request.method == "HEAD":
        await resp.write_eof()
        return resp

    try:
        return await _send_body(request, resp, route, data[start:end], route.drops.get(n))
    except ConnectionResetError:
        return resp  # the client went away; nothing to report


def _if_range_holds(route: Route, if_range: str | None) -> bool:
    """Whether a ranged request may have its range (RFC 9110 13.1.5: a strong comparison)."""
    if if_range is None or route.ignore_if_range:
        return True
    if if_range.startswith('"'):
        return route.etag is not None and not route.etag.startswith("W/") and if_range == route.etag
    return route.if_range_dates and if_range == route.last_modified


async def _send_body(
    request: web.Request, resp: web.StreamResponse, route: Route, body: bytes, drop_at: int | None
) -> web.StreamResponse:
    step = 256 * 1024 if route.rate is None else max(1024, int(route.rate / 20))
    sent = 0
    t0 = time.monotonic()
    while sent < len(body):
        piece = body[sent : sent + step]
        if route.pause_after is not None and sent < route.pause_after < sent + len(piece):
            piece = piece[: route.pause_after - sent]
        if drop_at is not None and sent + len(piece) >= drop_at:
            piece = piece[: max(drop_at - sent, 0)]
            if piece:
                route.sent += len(piece)
                await resp.write(piece)
            # Cut the connection mid-body: the client sees a short read.
            assert request.transport is not None
            request.transport.close()
            return resp
        route.sent += len(piece)
        await resp.write(piece)
        sent += len(piece)
        while route.pause_after is not None and sent >= route.pause_after:
            if request.transport is None or request.transport.is_closing():
                return resp
            await asyncio.sleep(0.02)  # polled: the pause is lifted from another thread
        if route.rate is not None:
            # Pace to the rate measured from the start, so timing jitter does not accumulate.
            ahead = sent / route.rate - (time.monotonic() - t0)
            if ahead > 0:
                await asyncio.sleep(ahead)
    await resp.write_eof()
    return resp


class LocalServer:
    """An aiohttp app served from a daemon thread on 127.0.0.1 (a free port unless given).

    Routes added with :meth:`add` answer through :func:`serve_route`.

    Examples
    --------
    >>> with LocalServer() as server:
    ...     url = server.add("/a/clip.mp4", Route(make_video(1000)))
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self.routes: dict[str, Route] = {}
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    def add(self, path: str, route: Route) -> str:
        """Serve ``route`` at ``path``; return its full URL."""
        self.routes[path] = route
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        route = self.routes.get(request.path) or self.routes.get(request.rel_url.raw_path)
        if route is None:
            handler = self.fallback(request)
            if handler is None:
                return web.Response(
                    status=404, text="<html><body>404 Not Found</body></html>", content_type="text/html"
                )
            return await handler
        return await serve_route(request, route)

    def fallback(self, request: web.Request) -> Awaitable[web.StreamResponse] | None:
        """Handle paths without a registered route; return an awaitable response or None."""
        return None

    def start(self) -> LocalServer:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._start_site())
            except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            assert self._runner is not None
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="vidnb-test-server", daemon=True)
        self._thread.start()
        ready.wait()
        if errors:
            raise errors[0]
        return self

    async def _start_site(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LocalSampleServer(LocalServer):
    """The bundled samples on the fault server, as ``vidnb.demo.SampleServer`` lays them out.

    Same paths (``/sample.mp4``, ``/slow/<name>?rate=``, ``/status/<code>``, ``/page.html``),
    but every sample is a :class:`Route`: tests read its requests and add throttled copies.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.samples = {name: sample_path(name).read_bytes() for name in SAMPLES}
        for name, data in self.samples.items():
            self.add("/" + name, Route(data, content_type=_mime(name)))
        self.add("/page.html", Route(b"<!doctype html><html><body>Not a video</body></html>", content_type="text/html"))

    def fallback(self, request: web.Request) -> Awaitable[web.StreamResponse] | None:
        m = re.fullmatch(r"/slow/(sample\.(?:mp4|webm))", request.path)
        if m:
            rate = float(request.query.get("rate", 200_000))
            return serve_route(request, Route(self.samples[m.group(1)], content_type=_mime(m.group(1)), rate=rate))
        m = re.fullmatch(r"/status/(\d{3})", request.path)
        if m:
            return serve_route(request, Route(statuses=[int(m.group(1))] * 1000))
        return None


def _mime(name: str) -> str:
    return "video/webm" if name.endswith(".webm") else "video/mp4"


# --------------------------------------------------------------------------- test videos and files


def make_video(size: int, *, seed: int = 0, kind: str = "mp4") -> bytes:
    """Bytes that sniff as a video container, followed by pseudo-random data."""
    head = {
        "mp4": b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41",
        "webm": b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08\x42\x82\x84webm",
    }[kind]
    # Random (not repeating) bytes: a range written at the wrong offset changes the hash.
    body = random.Random(seed).randbytes(max(size - len(head), 0))
    return (head + body)[:size]


def sha(data: bytes) -> str:
    """The hex sha256 of some bytes."""
    return hashlib.sha256(data).hexdigest()


def file_sha(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    return sha(path.read_bytes())


def videos(n: int, size: int = 40_000, *, seed: int = 0) -> list[bytes]:
    """``n`` different videos of slightly different sizes."""
    return [make_video(size + 97 * i, seed=seed + i) for i in range(n)]


def serve_many(serve: Serve, datas: list[bytes], **faults: Any) -> tuple[list[str], list[Route]]:
    """Serve each video as ``v<i>.mp4``; return the URLs and the routes."""
    pairs = [serve(d, name=f"v{i}.mp4", **faults) for i, d in enumerate(datas)]
    return [u for u, _ in pairs], [r for _, r in pairs]


def leftovers(folder: Path) -> list[str]:
    """Names vidnb left in a folder (to assert nothing half-written stays behind)."""
    return sorted(os.listdir(folder)) if folder.exists() else []


# Paths written or created while a files_written() block runs. Audit hooks cannot be
# removed, so this one is installed once (this module is imported once) and stays idle otherwise.
_written: list[Path] | None = None
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _written is None:
        return
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)) and (args[2] or 0) & _WRITE_FLAGS:
        _written.append(Path(os.fsdecode(args[0])))
    elif event in ("os.link", "os.rename", "os.replace"):
        _written.append(Path(os.fsdecode(args[1])))


sys.addaudithook(_audit)


@contextlib.contextmanager
def files_written() -> Iterator[list[Path]]:
    """Collect every path opened for writing, created, linked or renamed to, in any thread."""
    global _written
    found: list[Path] = []
    _written = found
    try:
        yield found
    finally:
        _written = None


# --------------------------------------------------------------------------- polling with a deadline


def wait_until(
    cond: Callable[[], T],
    *,
    timeout: float = 30.0,
    what: str = "the condition",
    unless: Callable[[], object] | None = None,
    interval: float = 0.02,
) -> T:
    """Poll ``cond`` until it returns something true, and return that; fail (AssertionError)
    after ``timeout`` seconds, or at once when ``unless`` is true.

    ``unless`` tells when waiting is pointless (the process or task doing the work ended).

    Examples
    --------
    >>> wait_until(lambda: part.exists(), what="the .part", unless=lambda: proc.poll() is not None)  # doctest: +SKIP
    """
    deadline = time.monotonic() + timeout
    while not (value := cond()):
        _check(deadline, timeout, what, unless)
        time.sleep(interval)  # polling a condition with a deadline, not synchronising on time
    return value


async def until(
    cond: Callable[[], T],
    *,
    timeout: float = 15.0,
    what: str = "the condition",
    unless: Callable[[], object] | None = None,
    interval: float = 0.01,
) -> T:
    """:func:`wait_until` for async tests: the loop keeps running between polls.

    Examples
    --------
    >>> await until(lambda: row.state == "downloading", unless=task.done)  # doctest: +SKIP
    """
    deadline = time.monotonic() + timeout
    while not (value := cond()):
        _check(deadline, timeout, what, unless)
        await asyncio.sleep(interval)
    return value


def _check(deadline: float, timeout: float, what: str, unless: Callable[[], object] | None) -> None:
    if unless is not None and unless():
        raise AssertionError(f"gave up waiting for {what}: the work it depends on ended")
    if time.monotonic() > deadline:
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


# --------------------------------------------------------------------------- other processes


def run_python(
    code: str, *args: str | Path, check: bool = False, timeout: float = 120, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code args...`` in a fresh interpreter; its output as text."""
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True, text=True, check=check, timeout=timeout, cwd=cwd,
    )  # fmt: skip


def spawn_python(*argv: str | Path, cwd: Path | None = None) -> subprocess.Popen[str]:
    """Start ``python argv...`` without waiting, its output piped; SIGINT reaches it as Ctrl-C would.

    A child inherits an ignored SIGINT (a test run started from a background job, say), and
    Python then never raises KeyboardInterrupt in it: it gets the default handler instead.
    """
    in_main = threading.current_thread() is threading.main_thread()
    ignored = in_main and signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(
            [sys.executable, *map(str, argv)], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


_DOWNLOAD = (
    "import sys, vidnb\n"
    "r = vidnb.download_sync(sys.argv[1], sys.argv[2], progress=False)\n"
    "print('skipped' if r.skipped else 'downloaded', r.size)\n"
)


def spawn_download(url: str, dest: Path, *extra: str) -> subprocess.Popen[str]:
    """Start ``download_sync(url, dest)`` in another process; it prints "downloaded N" or "skipped N"."""
    return spawn_python("-c", _DOWNLOAD, url, dest, *extra)


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the ``vidnb`` command (``python -m vidnb args...``) to completion."""
    return subprocess.run(
        [sys.executable, "-m", "vidnb", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def resume_from(offset: int) -> str:
    """The Range header of a resume from byte ``offset``: it asks again for the overlap
    before it, which vidnb compares with the bytes on disk before appending.

    >>> resume_from(1_000_000)
    'bytes=934464-'
    """
    from vidnb._strategy import OVERLAP

    return f"bytes={offset - min(OVERLAP, offset)}-"
