"""A local video server and the demo job, so everything runs offline.

The bundled sample clips are served from 127.0.0.1 by an aiohttp app on its own thread,
which works the same from a script, the CLI, a notebook (whose loop is busy running
cells) and the tests. Routes:

``/sample.mp4``, ``/sample.webm``
    the clips, with ETag, Last-Modified and byte ranges;
``/slow/<name>?rate=BYTES_PER_S``
    the same, throttled, for watching progress and cancelling;
``/status/<code>``
    an HTML error page with that status;
``/page.html``
    a page that is not a video.

The fault-injecting :class:`Route` behind them is what the test suite uses as well.

Examples
--------
>>> from vidnb import demo
>>> server = demo.sample_server()                  # started once, on a free port
>>> url = server.url("/sample.mp4")
>>> result = vidnb.download_sync(url, "downloads/")  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from aiohttp import web

SAMPLES = ("sample.mp4", "sample.webm")
#: Length of the bundled clips in seconds.
SAMPLE_DURATION = 3.0


def sample_path(name: str = "sample.mp4") -> Path:
    """Path of a bundled sample clip ("sample.mp4" or "sample.webm")."""
    if name not in SAMPLES:
        raise ValueError(f"no bundled sample called {name!r}; choose one of {SAMPLES}")
    return Path(str(resources.files("vidnb") / "data" / name))


def sample_sha256(name: str = "sample.mp4") -> str:
    return hashlib.sha256(sample_path(name).read_bytes()).hexdigest()


# --------------------------------------------------------------------------- routes with faults


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
    route.requests.append(dict(request.headers))
    n = len(route.requests)
    if route.on_request is not None:
        route.on_request(n)
    if route.redirect:
        raise web.HTTPFound(route.redirect)
    if n <= len(route.statuses):
        headers = {"Retry-After": route.retry_after} if route.retry_after else {}
        status = route.statuses[n - 1]
        return web.Response(status=status, text=f"<html><body>error {status}</body></html>", headers=headers,
                            content_type="text/html")

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
    if_range = request.headers.get("If-Range")
    if rng and route.ranges and (if_range is None or if_range in (route.etag, route.last_modified)):
        m = _RANGE.match(rng.strip())
        if m:
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
                await resp.write(piece)
            # Cut the connection mid-body: the client sees a short read.
            assert request.transport is not None
            request.transport.close()
            return resp
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
                return web.Response(status=404, text="<html><body>404 Not Found</body></html>", content_type="text/html")
            return await handler
        return await serve_route(request, route)

    def fallback(self, request: web.Request) -> Any:
        """Handle paths without a registered route; return an awaitable response or None."""
        return None

    def start(self) -> "LocalServer":
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
            loop.run_until_complete(self._runner.cleanup())  # type: ignore[union-attr]
            loop.close()

        self._thread = threading.Thread(target=run, name="vidnb-local-server", daemon=True)
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

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class SampleServer(LocalServer):
    """Serves the bundled samples, throttled copies of them, error statuses and a non-video page."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.samples = {name: sample_path(name).read_bytes() for name in SAMPLES}
        for name, data in self.samples.items():
            self.add("/" + name, Route(data, content_type=_mime(name)))
        self.add("/page.html", Route(b"<!doctype html><html><body>Not a video</body></html>", content_type="text/html"))

    def fallback(self, request: web.Request) -> Any:
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


_server: SampleServer | None = None
_server_lock = threading.Lock()


def sample_server() -> SampleServer:
    """The process's sample server, started on first use."""
    global _server
    with _server_lock:
        if _server is None:
            _server = SampleServer().start()
        return _server


def run_demo(dest_dir: str | Path = "vidnb-demo", *, progress: Any = True, name: str = "sample.mp4") -> Any:
    """The demo job: serve the bundled sample locally, download it with the real engine, verify it.

    Prints where the file is and how to preview it in a notebook; returns the DownloadResult.
    """
    from ._runner import download_sync

    server = sample_server()
    url = server.url("/" + name)
    print(f"Serving the bundled sample at {url}")
    result = download_sync(url, Path(dest_dir) / name, overwrite=True, sha256=sample_sha256(name), progress=progress)
    print(f"Saved {result.path.resolve()} ({result.size:,} bytes, {result.format}, sha256 verified) in {result.elapsed:.2f} s")
    print("Preview it in a notebook cell with:")
    print(f"    import vidnb; vidnb.preview({str(result.path)!r})")
    return result


__all__ = [
    "SAMPLES",
    "SAMPLE_DURATION",
    "sample_path",
    "sample_sha256",
    "Route",
    "serve_route",
    "LocalServer",
    "SampleServer",
    "sample_server",
    "run_demo",
]
