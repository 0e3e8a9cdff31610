"""The bundled sample clips, a small local server for them, and the demo job: everything offline.

The server is an aiohttp app on 127.0.0.1 on its own thread, so it works the same from a
script, the CLI and a notebook (whose loop is busy running cells). Its paths:

``/sample.mp4``, ``/sample.webm``
    the clips, with ETag, Last-Modified and byte ranges (so downloads resume);
``/slow/<name>?rate=BYTES_PER_S``
    the same, throttled, for watching progress and cancelling;
``/status/<code>``
    an HTML error page with that status, to see how failures look;
``/page.html``
    a page that is not a video.

Examples
--------
>>> import vidnb
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
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ._progress import ProgressOption
    from ._result import DownloadResult

__all__ = [
    "SAMPLES",
    "SAMPLE_DURATION",
    "sample_path",
    "sample_sha256",
    "SampleServer",
    "sample_server",
    "run_demo",
]

#: The bundled clips.
SAMPLES = ("sample.mp4", "sample.webm")
#: Length of the bundled clips in seconds.
SAMPLE_DURATION = 3.0
# The clips never change, so one fixed date serves as their Last-Modified.
_LAST_MODIFIED = "Sat, 01 Nov 2025 12:00:00 GMT"
_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


def sample_path(name: str = "sample.mp4") -> Path:
    """Path of a bundled sample clip.

    Parameters
    ----------
    name : str
        "sample.mp4" or "sample.webm".

    Examples
    --------
    >>> from vidnb import demo
    >>> demo.sample_path("sample.webm").name
    'sample.webm'
    """
    if name not in SAMPLES:
        raise ValueError(f"no bundled sample called {name!r}; choose one of {SAMPLES}")
    return Path(str(resources.files("vidnb") / "data" / name))


def sample_sha256(name: str = "sample.mp4") -> str:
    """The hex sha256 of a bundled sample clip, to check a download of it.

    Examples
    --------
    >>> from vidnb import demo
    >>> len(demo.sample_sha256("sample.mp4"))
    64
    """
    return hashlib.sha256(sample_path(name).read_bytes()).hexdigest()


@dataclass(frozen=True)
class _Clip:
    data: bytes
    mime: str
    etag: str


class SampleServer:
    """Serves the bundled clips (with byte ranges), throttled copies, error statuses and a non-video page.

    Runs an aiohttp app on a daemon thread; ``port=0`` picks a free port.

    Parameters
    ----------
    host : str
    port : int

    Examples
    --------
    >>> from vidnb import demo
    >>> with demo.SampleServer() as server:       # or demo.sample_server(), shared and left running
    ...     url = server.url("/slow/sample.mp4?rate=100000")
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self._clips: dict[str, _Clip] = {}
        for name in SAMPLES:
            data = sample_path(name).read_bytes()
            mime = "video/webm" if name.endswith(".webm") else "video/mp4"
            self._clips[name] = _Clip(data, mime, '"' + hashlib.sha256(data).hexdigest()[:16] + '"')
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def url(self, path: str) -> str:
        """The full URL of a path on this server."""
        return f"http://{self.host}:{self.port}{path}"

    def start(self) -> SampleServer:
        """Start serving (returns once the port is open)."""
        ready = threading.Event()
        errors: list[BaseException] = []
        runner = web.AppRunner(self._app(), access_log=None)

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._open(runner))
            except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
                errors.append(exc)
                return
            finally:
                ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="vidnb-sample-server", daemon=True)
        self._thread.start()
        ready.wait()
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        """Stop serving and close the port."""
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop = None

    def __enter__(self) -> SampleServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _open(self, runner: web.AppRunner) -> None:
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(r"/{name:sample\.(?:mp4|webm)}", self._sample)
        app.router.add_get(r"/slow/{name:sample\.(?:mp4|webm)}", self._sample)
        app.router.add_get(r"/status/{code:\d{3}}", self._status)
        app.router.add_get("/page.html", self._page)
        return app

    async def _sample(self, request: web.Request) -> web.StreamResponse:
        clip = self._clips[request.match_info["name"]]
        rate = float(request.query.get("rate", 200_000)) if request.path.startswith("/slow/") else None
        return await _send(request, clip, rate)

    async def _status(self, request: web.Request) -> web.StreamResponse:
        code = int(request.match_info["code"])
        return web.Response(status=code, text=f"<html><body>error {code}</body></html>", content_type="text/html")

    async def _page(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="<!doctype html><html><body>Not a video</body></html>", content_type="text/html")


async def _send(request: web.Request, clip: _Clip, rate: float | None) -> web.StreamResponse:
    """The clip, or the part a ``Range`` asks for (unless an ``If-Range`` shows it changed)."""
    size = len(clip.data)
    start, end, status = 0, size, 200
    headers = {"Content-Type": clip.mime, "Accept-Ranges": "bytes", "ETag": clip.etag, "Last-Modified": _LAST_MODIFIED}
    wanted = _RANGE.match(request.headers.get("Range", "").strip())
    if wanted and request.headers.get("If-Range", clip.etag) in (clip.etag, _LAST_MODIFIED):
        start = int(wanted.group(1))
        end = min(int(wanted.group(2)) + 1, size) if wanted.group(2) else size
        if start >= size:
            return web.Response(status=416, headers={"Content-Range": f"bytes */{size}"})
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    resp = web.StreamResponse(status=status, headers=headers)
    resp.content_length = end - start
    await resp.prepare(request)
    if request.method != "HEAD":
        try:
            await _write(resp, clip.data[start:end], rate)
        except ConnectionResetError:
            return resp  # the client went away (a cancelled download)
    await resp.write_eof()
    return resp


async def _write(resp: web.StreamResponse, body: bytes, rate: float | None) -> None:
    step = 256 * 1024 if rate is None else max(1024, int(rate / 20))
    t0 = time.monotonic()
    for first in range(0, len(body), step):
        piece = body[first : first + step]
        await resp.write(piece)
        if rate is not None:
            # Pace to the rate measured from the start, so timing jitter does not add up.
            ahead = (first + len(piece)) / rate - (time.monotonic() - t0)
            if ahead > 0:
                await asyncio.sleep(ahead)


_server: SampleServer | None = None
_server_lock = threading.Lock()


def sample_server() -> SampleServer:
    """The process's sample server, started on first use and left running.

    Examples
    --------
    >>> from vidnb import demo
    >>> demo.sample_server().url("/sample.webm")  # doctest: +ELLIPSIS
    'http://127.0.0.1:.../sample.webm'
    """
    global _server
    with _server_lock:
        if _server is None:
            _server = SampleServer().start()
        return _server


def run_demo(
    dest_dir: str | Path = "vidnb-demo", *, progress: ProgressOption = True, name: str = "sample.mp4"
) -> DownloadResult:
    """The demo job: serve the bundled sample locally, download it with the real engine, verify it.

    Prints where the file is and how to preview it in a notebook.

    Parameters
    ----------
    dest_dir : str or Path
        The folder to save into.
    progress : "auto", bool or callable
        As for :func:`vidnb.download`.
    name : str
        "sample.mp4" or "sample.webm".

    Returns
    -------
    DownloadResult

    Examples
    --------
    >>> from vidnb import demo
    >>> result = demo.run_demo("vidnb-demo", progress=False)  # doctest: +SKIP
    Serving the bundled sample at http://127.0.0.1:.../sample.mp4
    """
    from ._result import local_file
    from ._runner import download_sync

    url = sample_server().url("/" + name)
    print(f"Serving the bundled sample at {url}")
    result = download_sync(url, Path(dest_dir) / name, overwrite=True, sha256=sample_sha256(name), progress=progress)
    print(f"Saved {local_file(result.path).resolve()} ({result.size:,} bytes, {result.format}, sha256 verified) "
          f"in {result.elapsed:.2f} s")
    print("Preview it in a notebook cell with:")
    print(f"    import vidnb; vidnb.preview({str(result.path)!r})")
    return result
