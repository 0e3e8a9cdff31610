"""``vidnb.download``: one URL to one verified file.

The front door of the engine: it checks the options once (:func:`~vidnb._options.make_options`),
works out the destination, and hands the work to the download lifecycle with the fetcher
that fits the URL.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Mapping, Union

import aiohttp

from ._errors import VidnbError
from ._options import Connections, Options, Retry, make_options
from ._progress import ProgressOption
from ._result import DownloadResult
from ._urls import redact_url

__all__ = ["download", "download_with", "save_video_from_url", "PathLike"]

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
    variant: str | int = "best",
    live_duration: float | None = None,
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
        than one, the first request asks for ``bytes=0-``; when the server answers 206 with
        the size, the file is preallocated and fetched as byte ranges at once, each range
        retried on its own, and an interruption resumes only the missing ranges (a server
        without ranges gets one stream). Pays off when the server caps each connection;
        on a fast link one stream is as fast. ``"auto"`` starts with one connection and
        adds more (up to 16) only while each one is slower than 64 MiB/s and they keep
        their speed as more open.
    variant : "best", "worst" or int
        For HLS master playlists: which stream to fetch ("best" bandwidth, "worst", or
        the highest stream not taller than this many pixels).
    live_duration : float, optional
        For live HLS playlists: record this many seconds (live streams are refused otherwise).

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
        overwrite=overwrite,
        resume=resume,
        retries=retries,
        timeout=timeout,
        chunk_size=chunk_size,
        headers=headers,
        sha256=sha256,
        max_bytes=max_bytes,
        require_video=require_video,
        progress=progress,
        connections=connections,
        variant=variant,
        live_duration=live_duration,
    )
    return await download_with(url, dest, opts, session)


async def download_with(
    url: str, dest: PathLike | None, opts: Options, session: aiohttp.ClientSession | None = None
) -> DownloadResult:
    """:func:`download` with options already checked (what batches and the panel call per item)."""
    from . import _download

    return await _download.run(url, dest, opts, session)


async def save_video_from_url(url: str, save_path: PathLike) -> Path | None:
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
