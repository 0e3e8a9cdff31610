"""``vidnb.download``: one URL to one verified file.

The front door of the engine: it checks the options once (:func:`~vidnb._options.make_options`),
works out the destination, and hands the work to the download lifecycle with the fetcher
that fits the URL.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from . import _http
from ._errors import DestinationError, VidnbError, raise_translated
from ._fetch import HandOff
from ._fetch_stream import FileFetcher, FirstAnswer
from ._http import Session
from ._options import Connections, Options, Retry, make_options
from ._progress import ProgressOption, Tracker, make_reporter
from ._remote import download_remote
from ._result import DownloadResult
from ._retry import Retries
from ._sniff import is_hls_playlist, is_web_page, sniff
from ._storage import local_path, remote_url
from ._strategy import PROBE, choose
from ._transfer import existing_result, transfer
from ._urls import (
    LONGEST_SIDE_SUFFIX,
    NAME_MAX_BYTES,
    SERVER_NAME_MAX_BYTES,
    redact_url,
    server_filename,
    validate_url,
)

if TYPE_CHECKING:
    import aiohttp

__all__ = ["download", "download_with", "save_video_from_url", "resolve_dest", "PathLike"]

log = logging.getLogger("vidnb")

PathLike = Union[str, "os.PathLike[str]"]


async def download(
    url: str,
    dest: PathLike | None = None,
    *,
    overwrite: bool = False,
    resume: bool = True,
    retries: int | Retry = 5,
    timeout: float | aiohttp.ClientTimeout | None = None,
    chunk_size: int | None = None,
    headers: Mapping[str, str] | None = None,
    sha256: str | None = None,
    max_bytes: int | None = None,
    require_video: bool = True,
    progress: ProgressOption = "auto",
    session: aiohttp.ClientSession | None = None,
    connections: Connections = 1,
    quality: str | int | None = None,
    variant: str | int | None = None,
    format: str | None = None,
    item: int | None = None,
    live_duration: float | None = None,
    remux: bool = True,
    max_rate: int | str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    tmp_dir: PathLike | None = None,
) -> DownloadResult:
    """Download one video to disk, safely.

    Bytes go to ``<dest>.part`` and are renamed onto ``dest`` only once complete and
    verified. An interrupted download resumes from the bytes on disk, in this call (after a
    dropped connection), the next call, or another process.

    Parameters
    ----------
    url : str
        An http:// or https:// URL.
    dest : str or Path, optional
        A file path, or an existing folder (the name then comes from the server's
        Content-Disposition, else the URL, else ``video`` plus the sniffed extension).
        Default: the current folder.
    overwrite : bool
        Replace an existing file. The old file stays until the new one is complete.
        Without it, an existing file is returned as it is (``skipped=True``).
    resume : bool
        Continue a ``.part`` left by an earlier attempt, when the server still has the same file.
    retries : int or Retry
        Retries on connection errors, timeouts and 408/429/5xx answers.
    timeout : float or aiohttp.ClientTimeout, optional
        Seconds allowed to connect and for each read. There is no limit on the total time.
    chunk_size : int, optional
        Largest piece read at once. The default takes whatever has arrived, which is fastest.
    headers : mapping, optional
        Extra request headers (cookies, authorisation, a user agent).
    sha256 : str, optional
        Expected hex digest; a mismatch raises :class:`ChecksumError` and keeps nothing.
    max_bytes : int, optional
        Refuse videos larger than this (:class:`TooLargeError`).
    require_video : bool
        Refuse bodies that are not a known video container (an HTML error page, say).
    progress : "auto", bool or callable
        "auto" shows a bar in a notebook or a terminal; a callable receives
        :class:`ProgressEvent` objects.
    session : aiohttp.ClientSession, optional
        Reuse a session (and its connections); it is not closed.
    connections : int or "auto"
        Parallel connections for one file (1 to 32), or segments at once for HLS. With more
        than one, the first request asks for its first MiB; when the server answers 206 with
        the size, the file is preallocated and fetched as byte ranges at once, each range
        retried on its own, and an interruption resumes only the missing ranges (a server
        without ranges gets one stream). Pays off when the server caps each connection;
        on a fast link one stream is as fast. ``"auto"`` starts with one connection and
        adds more (up to 16) only while each one is slower than 64 MiB/s and they keep
        their speed as more open.
    quality : "best", "worst", int or str, optional
        Which stream of an HLS master playlist, or which format of a web page: "best"
        (the default), "worst", the tallest not above a height (``720`` or ``"720p"``), or
        the highest bandwidth not above a rate (``"2.5M"``). ``variant=`` is its older name.
    format : str, optional
        For web pages: a yt-dlp format selector (``"bv*[height<=480]+ba/b"``), instead of
        ``quality``.
    item : int, optional
        For a web page showing several videos: which one, 1 for the first (the error raised
        without it lists them). ``download_many(page_url, ...)`` takes them all.
    live_duration : float, optional
        For live HLS playlists: record this many seconds (live streams are refused otherwise).
    remux : bool
        Make one file that plays in browsers where the stream does not come as one: HLS from
        MPEG-TS segments, or with a separate audio rendition, becomes one MP4 (no
        re-encoding). False keeps the bytes exactly as served (a ``.ts``, and the audio in a
        file of its own, ``result.audio``).
    max_rate : int or str, optional
        Most bytes per second, all connections of this download together: a number or a
        size per second (``"5M"``), as curl's ``--limit-rate``.
    storage_options : mapping, optional
        For a destination on object storage (``"s3://bucket/videos/"``): passed to fsspec
        (endpoint, credentials).
    tmp_dir : str or Path, optional
        For a destination on object storage: the local folder the ``.part`` is written to
        before the upload (default: the system's temp folder).

    Returns
    -------
    DownloadResult

    Examples
    --------
    >>> result = await vidnb.download("https://example.com/clip.mp4", "videos/")  # doctest: +SKIP
    >>> result.path, result.format
    (PosixPath('videos/clip.mp4'), 'mp4')
    """
    opts = make_options(
        overwrite=overwrite, resume=resume, retries=retries, timeout=timeout, chunk_size=chunk_size, headers=headers,
        sha256=sha256, max_bytes=max_bytes, require_video=require_video, progress=progress, connections=connections,
        quality=quality, variant=variant, format=format, item=item, live_duration=live_duration, remux=remux,
        max_rate=max_rate, storage_options=storage_options, tmp_dir=tmp_dir,
    )
    return await download_with(url, dest, opts, session)


async def download_with(
    url: str, dest: PathLike | None, opts: Options, session: Session | aiohttp.ClientSession | None = None
) -> DownloadResult:
    """:func:`download` with options already checked (what batches and the panel call per item).

    ``session``: a batch's shared :class:`~vidnb._http.Session`, or a user's aiohttp session
    (wrapped here, the one place that does it).
    """
    t0 = time.monotonic()
    if session is not None and not isinstance(session, Session):
        session = Session(session)
    url = validate_url(url)
    target = remote_url(dest)
    if target is not None:
        # Object storage: the same download into a local staging file, then one whole upload.
        async def fetch_local(staged: str) -> DownloadResult:
            return await download_with(url, staged, opts, session)

        return await download_remote(url, target, opts, fetch_local, t0)
    if isinstance(dest, str):
        dest = local_path(dest)  # file:// is the local disk
    folder, path, exists = resolve_dest(dest)
    if session is not None:
        return await _download(url, folder, path, exists, opts, session, t0)
    own = Session(lean=True)
    try:
        return await _download(url, folder, path, exists, opts, own, t0)
    finally:
        await own.close()


async def _download(
    url: str, folder: Path, path: Path | None, exists: bool, opts: Options, session: Session, t0: float
) -> DownloadResult:
    first = choose(url=url, record=None, answer=None, connections=opts.connections)
    if exists and not opts.overwrite:
        assert path is not None
        return await existing_result(path, url, opts.sha256, t0, Tracker(make_reporter(opts.progress), path.name))
    if first.step == "hls":
        return await _hls(url, folder, path, opts, session, t0)
    if first.step == "page":
        return await _page(url, folder, path, opts, session, t0)
    tracker = Tracker(make_reporter(opts.progress), path.name if path else "")
    shown = redact_url(url)
    if path is not None:
        outcome = await transfer(path, FileFetcher(url, session, opts), opts, tracker, url=url, shown_url=shown, t0=t0)
    else:
        outcome = await _into_folder(url, folder, opts, session, tracker, t0, probe=first.probe)
    if isinstance(outcome, HandOff):
        if outcome.kind == "page":
            # A web page (or a DASH manifest): the video it shows, found by yt-dlp's extractors.
            return await _page(url, folder, path, opts, session, t0)
        # The body was a playlist (a URL without .m3u8): fetch the stream it lists.
        return await _hls(outcome.url, folder, path, opts, session, t0)
    return outcome


async def _into_folder(
    url: str, folder: Path, opts: Options, session: Session, tracker: Tracker, t0: float, *, probe: bool
) -> DownloadResult | HandOff:
    """A download whose file is named by the server: the first answer names it, then the lifecycle runs."""
    shown = redact_url(url)
    retries = Retries(opts.retry)
    failures = 0
    while True:
        async with contextlib.AsyncExitStack() as stack:
            try:
                resp = await stack.enter_async_context(
                    _http.get(session, url, opts.headers, opts.timeout, byte_range=(0, PROBE - 1) if probe else None)
                )
                # The name may depend on the first bytes (the extension), so read them now.
                head = await _http.read_head(resp, opts.limiter)
            except Exception as exc:
                failures += 1
                await retries.wait(exc, failures, what="the download", url=shown)
                continue
            fmt = sniff(head)
            if fmt is None and is_hls_playlist(head):
                return HandOff(str(resp.url))
            if fmt is None and opts.require_video and is_web_page(head, resp.headers.get("Content-Type")):
                return HandOff(str(resp.url), "page")
            ext = fmt.extension if fmt else None
            name = server_filename(str(resp.url), resp.headers.get("Content-Disposition"), ext)
            fetcher = FileFetcher(url, session, opts, FirstAnswer(resp, head, 0 if probe else None))
            return await transfer(
                folder / name, fetcher, opts, tracker, url=url, shown_url=shown, t0=t0, retries=retries
            )


async def _hls(
    url: str, folder: Path, path: Path | None, opts: Options, session: Session, t0: float
) -> DownloadResult:
    # Imported on first use: HLS pulls in m3u8 and cryptography (~50 ms), which a plain
    # video download never needs.
    from ._hls_download import download_hls

    return await download_hls(url, folder, path, opts, session, t0)


async def _page(
    url: str, folder: Path, path: Path | None, opts: Options, session: Session, t0: float
) -> DownloadResult:
    # Imported on first use: a page needs yt-dlp, the muxer and the DASH fetcher.
    from ._page_download import download_page

    return await download_page(url, folder, path, opts, session, t0)


def _check_name_fits(path: Path) -> None:
    """Refuse a file name that leaves no room for the files vidnb keeps beside it."""
    size = len(os.fsencode(path.name))
    if size > SERVER_NAME_MAX_BYTES:
        raise DestinationError(
            f"The file name {path.name[:40]}... is too long: {size} bytes, and vidnb keeps "
            f"{path.name[:20]}...{LONGEST_SIDE_SUFFIX} beside it while it downloads, which must fit "
            f"{NAME_MAX_BYTES} bytes. Choose a name of at most {SERVER_NAME_MAX_BYTES} bytes.",
            path,
        )


def resolve_dest(dest: PathLike | None) -> tuple[Path, Path | None, bool]:
    """Return (folder, file path or None when the name comes from the server, whether that file exists)."""
    if dest is None:
        return Path.cwd(), None, False
    raw = os.fspath(dest)
    if not raw:
        raise DestinationError("dest is empty; give a file path or a folder.", raw)
    p = Path(raw).expanduser()
    parent = p.parent
    try:
        try:
            st = os.stat(p)
        except (FileNotFoundError, NotADirectoryError):
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode):
            return p, None, False
        if raw.endswith(("/", os.sep)):
            p.mkdir(parents=True, exist_ok=True)
            return p, None, False
        _check_name_fits(p)
        if st is not None or parent.is_dir():  # the usual case: one or two stats, no mkdir
            return parent, p, st is not None
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise_translated(exc, path=p)
    if not parent.is_dir():
        raise DestinationError(f"{parent} is not a folder; choose a path inside a folder.", p)
    return parent, p, False


async def save_video_from_url(url: str, save_path: PathLike) -> Path | str | None:
    """Download ``url`` to ``save_path``; return the path, or None after logging the error.

    Kept for code written against the original notebook helper, which never raised.
    New code should call :func:`download`, which raises typed errors.

    Examples
    --------
    >>> path = await vidnb.save_video_from_url("https://example.com/a.mp4", "a.mp4")  # doctest: +SKIP
    """
    try:
        result = await download(url, save_path, progress="auto")
    except (VidnbError, ValueError) as exc:
        log.error("could not download %s: %s", redact_url(url), exc)
        return None
    return result.path
