"""The download engine: one HTTP stream into a ``.part`` file, resumed, retried, verified.

One call of :func:`download` goes through these steps, each of which may end it:

1. validate the URL and options (no network yet);
2. if the destination is a file that exists and ``overwrite`` is off: return at once (``skipped``);
3. lock the destination (across processes), then per attempt: ask for the bytes not yet on
   disk (``Range`` + ``If-Range``), check the answer really continues them, sniff the first
   bytes, stream the body into the ``.part`` through a writer thread;
4. check the byte count and the optional sha256, rename the ``.part`` onto the destination.

Errors that may pass (connection drops, timeouts, 408/429/5xx) are retried with backoff;
the ``.part`` and its sidecar stay, so the next attempt, the next call or the next process
continues where this one stopped.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import os
import random
import re
import ssl
import stat
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Union

import aiohttp

from ._writer import PartWriter
from . import _files, _segments
from ._errors import (
    ChecksumError,
    DestinationError,
    IncompleteDownloadError,
    NotAVideoError,
    TooLargeError,
    VidnbError,
    translate,
    wait_or_raise,
)
from ._fmt import human_bytes, human_rate
from ._options import Retry, check_sha256 as _check_sha256
from ._result import DownloadResult
from ._http import new_session, ssl_context
from ._headers import MAX_REDIRECTS, content_range, raise_for_status
from ._progress import ProgressOption, Tracker, make_reporter
from ._sniff import SNIFF_BYTES, describe_non_video, format_from_name, is_hls_playlist, sniff
from ._urls import redact_url, server_filename, validate_url

log = logging.getLogger("vidnb")

#: Seconds to wait for a connection, and for each read of the body.
CONNECT_TIMEOUT = 30.0
READ_TIMEOUT = 60.0
#: Seconds of body after which a fresh single-stream download writes its resume record.
RECORD_AFTER = 1.0
#: The first bytes of a stream are written by the loop itself (see PartWriter): measured on
#: a batch of 1 MiB files, 1.1-1.2x plain aiohttp this way against 1.4x through the thread.
INLINE_BYTES = 4 << 20

PathLike = Union[str, "os.PathLike[str]"]


class _Again(Exception):
    """Start the attempt over at once (not a failure: e.g. a resumable .part turned up)."""


class _IsHLS(Exception):
    """The body is an HLS playlist: hand the URL to the HLS downloader."""


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
    connections: int | str = 1,
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
    t0 = time.monotonic()
    url = validate_url(url)
    retry = _retry_policy(retries)
    expected = _check_sha256(sha256)
    if max_bytes is not None and (not isinstance(max_bytes, int) or max_bytes <= 0):
        raise ValueError(f"max_bytes must be a positive number of bytes, not {max_bytes!r}")
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size <= 0):
        raise ValueError(f"chunk_size must be a positive number of bytes, not {chunk_size!r}")
    connections = _segments.check_connections(connections)
    if live_duration is not None and (
        isinstance(live_duration, bool) or not isinstance(live_duration, (int, float)) or live_duration <= 0
    ):
        # Checked here, not when a body turns out to be a playlist: bad input fails before any request.
        raise ValueError(f"live_duration must be a positive number of seconds, not {live_duration!r}")
    folder, path, exists = _resolve_dest(dest)
    # What single files and HLS streams share; each adds its own options.
    common: dict[str, Any] = dict(
        overwrite=overwrite,
        resume=resume,
        retry=retry,
        timeout=_client_timeout(timeout),
        headers=dict(headers or {}),
        sha256=expected,
        max_bytes=max_bytes,
        connections=connections,
    )
    hls_options = dict(common, progress=progress, variant=variant, live_duration=live_duration)
    if _maybe_hls_url(url) and _hls().is_hls_url(url):
        return await _with_session(session, lambda s: _hls().download_hls(url, folder, path, session=s, **hls_options))
    if exists and not overwrite:
        return await existing_result(path, url, expected, t0, Tracker(make_reporter(progress), path.name))  # type: ignore[union-attr]

    job = _Download(
        url=url,
        folder=folder,
        path=path,
        chunk_size=chunk_size,
        require_video=require_video,
        tracker=Tracker(make_reporter(progress), path.name if path else ""),
        t0=t0,
        **common,
    )

    async def run(s: aiohttp.ClientSession) -> DownloadResult:
        try:
            return await job.run(s)
        except _IsHLS:
            # The body turned out to be a playlist (a URL without .m3u8): fetch the stream it lists.
            return await _hls().download_hls(job.final_url, folder, path, session=s, **hls_options)

    return await _with_session(session, run)


def _hls() -> Any:
    # Imported on first use: the HLS module pulls in m3u8 and cryptography (~50 ms), which a
    # plain video download never needs.
    from . import _hls

    return _hls


def _maybe_hls_url(url: str) -> bool:
    """A cheap pre-check, so ``_hls`` is imported only for URLs it may claim (it decides)."""
    return ".m3u" in url.lower()


async def _with_session(session: aiohttp.ClientSession | None, fn: Any) -> DownloadResult:
    if session is not None:
        return await fn(session)
    async with new_session() as own:
        return await fn(own)


def _client_timeout(timeout: float | aiohttp.ClientTimeout | None) -> aiohttp.ClientTimeout:
    if isinstance(timeout, aiohttp.ClientTimeout):
        return timeout
    if timeout is None:
        return aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT)
    if not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    # A number bounds connecting and each read, never the whole download: long videos take long.
    return aiohttp.ClientTimeout(total=None, sock_connect=float(timeout), sock_read=float(timeout))


def _retry_policy(retries: int | Retry) -> Retry:
    if isinstance(retries, Retry):
        return retries
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be a whole number >= 0 or a vidnb.Retry, not {retries!r}")
    return Retry(total=retries)


def _resolve_dest(dest: PathLike | None) -> tuple[Path, Path | None, bool]:
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
        if st is not None or parent.is_dir():  # the usual case: one or two stats, no mkdir
            return parent, p, st is not None
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise translate(exc, path=p) from exc
    if not parent.is_dir():
        raise DestinationError(f"{parent} is not a folder; choose a path inside a folder.", p)
    return parent, p, False


async def existing_result(
    path: Path, url: str, sha256: str | None, t0: float, tracker: Tracker | None = None
) -> DownloadResult:
    """Describe a file that is already there (re-run cells land here), checking its hash if given.

    ``tracker`` hears of it like of a finished download, so a bar drawn early (``start()``,
    the panel) closes and a progress callable gets its last event.
    """
    size = path.stat().st_size
    digest = None
    if sha256 is not None:
        digest = await asyncio.to_thread(_files.hash_file, path, None)
        if digest != sha256:
            raise ChecksumError(
                f"{path} already exists but its sha256 is {digest}, not {sha256}. "
                "Pass overwrite=True to download it again.",
                expected=sha256,
                actual=digest,
            )
    fmt = sniff(_read_head(path)) or format_from_name(path.name)
    log.info("%s is already there (%s); not downloading again", path, human_bytes(size))
    if tracker is not None:
        tracker.begin(path.name, size, size)
        tracker.end("done")
    return DownloadResult(
        path, url, size, None, fmt.name if fmt else None, time.monotonic() - t0, attempts=0, skipped=True, sha256=digest
    )


def _read_head(path: Path, n: int = SNIFF_BYTES) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


class _Download:
    """One call of :func:`download`: the state that lives across its attempts."""

    def __init__(
        self,
        *,
        url: str,
        folder: Path,
        path: Path | None,
        overwrite: bool,
        resume: bool,
        retry: Retry,
        timeout: aiohttp.ClientTimeout,
        chunk_size: int | None,
        headers: dict[str, str],
        sha256: str | None,
        max_bytes: int | None,
        require_video: bool,
        tracker: Tracker,
        t0: float,
        connections: int | str = 1,
    ) -> None:
        self.url = url
        self.shown_url = redact_url(url)
        self.final_url = url
        self.folder = folder
        self.path = path
        self.overwrite = overwrite
        self.resume = resume
        self.retry = retry
        self.timeout = timeout
        self.chunk_size = chunk_size
        self.headers = headers
        self.sha256 = sha256
        self.max_bytes = max_bytes
        self.require_video = require_video
        self.tracker = tracker
        self.t0 = t0
        self.attempts = 0
        self.resumed = False
        self.lock: _files.DestinationLock | None = None
        self.total: int | None = None
        self.done = 0
        self.connections = connections
        self.restarts = 0
        #: Whether a resume record may be on disk (so the end must remove it).
        self.recorded = False

    # ------------------------------------------------------------------ attempts

    async def run(self, session: aiohttp.ClientSession) -> DownloadResult:
        log.info("downloading %s -> %s", self.shown_url, self.path or f"{self.folder}/")
        try:
            if self.path is not None:
                skipped = await self._lock()
                if skipped is not None:
                    return skipped
            while True:
                self.attempts += 1
                try:
                    result = await self._attempt(session)
                except _Again:
                    self.attempts -= 1
                    continue
                except _IsHLS:
                    raise
                except Exception as exc:
                    err, wait = wait_or_raise(
                        self.retry, exc, self.attempts, url=self.shown_url, path=self.path, needed=self._needed()
                    )
                    log.warning(
                        "attempt %d of %d for %s failed (%s: %s); retrying in %.1f s",
                        self.attempts,
                        self.retry.total + 1,
                        self.shown_url,
                        type(err).__name__,
                        err,
                        wait,
                    )
                    await asyncio.sleep(wait)
                    continue
                if not result.skipped:
                    self.tracker.end("done")
                self._log_done(result)
                return result
        except _IsHLS:
            raise
        except (asyncio.CancelledError, KeyboardInterrupt):
            self.tracker.end("cancelled")
            log.info("download of %s cancelled; %s kept for resuming", self.shown_url, self._part_name())
            raise
        except BaseException as exc:
            self.tracker.end("failed", str(exc))
            # INFO, not ERROR: the caller gets the exception; DownloadTask logs unobserved failures.
            log.info("download of %s failed: %s", self.shown_url, exc)
            raise
        finally:
            if self.lock is not None:
                self.lock.release()

    def _needed(self) -> int | None:
        return None if self.total is None else self.total - self.done

    def _part_name(self) -> str:
        return str(_files.part_path(self.path)) if self.path else "the partial file"

    def _log_done(self, result: DownloadResult) -> None:
        if result.skipped or not log.isEnabledFor(logging.INFO):
            return
        log.info(
            "saved %s (%s in %.2f s, %s, %d attempt%s%s)",
            result.path,
            human_bytes(result.size),
            result.elapsed,
            human_rate(result.speed),
            result.attempts,
            "" if result.attempts == 1 else "s",
            ", resumed" if result.resumed else "",
        )

    async def _lock(self) -> DownloadResult | None:
        """Take the destination's lock; if another download finished it meanwhile, describe that file."""
        assert self.path is not None
        self.lock = _files.DestinationLock(self.path)
        exists = await self.lock.acquire()
        if exists and not self.overwrite:
            return await existing_result(self.path, self.url, self.sha256, self.t0, self.tracker)
        return None

    async def _resumable(self) -> tuple[_files.PartState | None, int]:
        assert self.path is not None and self.lock is not None
        if not self.lock.created:
            # An older .part: a record may be there, and must go before new bytes go in.
            self.recorded = True
        size = self.lock.part_size()
        if size == 0 or not self.resume:
            return None, 0
        state = await _files.load_state(self.path)
        if (
            state is None
            or state.url != self.url
            or not state.validator
            or (state.total is not None and size > state.total)
        ):
            return None, 0
        if state.segments:
            # A multi-connection .part: resumable only piece by piece, never as one stream.
            return (state, 0) if _segments.from_state(state, size) is not None else (None, 0)
        return state, size

    async def _attempt(self, session: aiohttp.ClientSession) -> DownloadResult:
        state, offset = (None, 0) if self.path is None else await self._resumable()
        if state is not None and state.segments:
            return await self._resume_segments(session, state, _segments.from_state(state, state.total or 0) or [])
        if state is not None and offset and self.connections != 1 and state.total:
            # A single-stream .part, and more connections asked for: the rest is one piece to share.
            return await self._resume_segments(session, state, _segments.from_single(state.total, offset))
        headers = {**self.headers, "Accept-Encoding": "identity"}
        probing = False
        if state is not None and offset:
            headers["Range"] = f"bytes={offset}-"
            headers["If-Range"] = state.validator or ""
        elif self.connections != 1:
            # A 206 to this proves the server does ranges and tells the size; a 200 means one stream.
            headers["Range"] = "bytes=0-"
            probing = True
        async with session.get(
            self.url,
            headers=headers,
            timeout=self.timeout,
            max_redirects=MAX_REDIRECTS,
            auto_decompress=False,
        ) as resp:
            self.final_url = str(resp.url)
            if offset and resp.status == 416:
                return await self._range_not_satisfiable(resp, state, offset)
            raise_for_status(resp, redact_url(self.final_url))

            head = b""
            if self.path is None:
                # The name may depend on the first bytes (the extension), so read them now.
                head = await _read_head_from(resp)
                skipped = await self._name_from_response(resp, head)
                if skipped is not None:
                    return skipped
                state, offset = await self._resumable()
                if offset or (state is not None and state.segments):
                    raise _Again  # a .part of this file is there: ask again, for the missing bytes only

            range_start, range_total = content_range(resp.headers.get("Content-Range"))
            if offset:
                same_file = (
                    resp.status == 206
                    and range_start == offset
                    and range_total == state.total  # type: ignore[union-attr]
                    and _segments.same_validators(state, resp.headers)  # type: ignore[arg-type]
                )
                if not same_file and resp.status == 206:
                    # Some other range came back: this body is useless; ask for the whole file.
                    log.info(
                        "%s answered the range from byte %d with Content-Range %s; starting again from zero",
                        self.shown_url,
                        offset,
                        resp.headers.get("Content-Range"),
                    )
                    _files.discard_part(self.path)  # type: ignore[arg-type]
                    raise _Again
                if not same_file:
                    log.info(
                        "%s did not continue at byte %d (status %d, Content-Range %s); starting again from zero",
                        self.shown_url,
                        offset,
                        resp.status,
                        resp.headers.get("Content-Range"),
                    )
                    offset = 0
            elif resp.status == 206 and not (probing and range_start == 0 and range_total is not None):
                # We did not ask for a range; a 206 here cannot be trusted to be the whole file.
                raise IncompleteDownloadError(f"{self.shown_url} answered a plain request with a partial body (206).")
            total = range_total if resp.status == 206 else resp.content_length
            self.total, self.done = total, offset
            self._check_size(total)
            _files.check_free_space(self.path, None if total is None else total - offset)  # type: ignore[arg-type]

            if offset == 0 and not head:
                head = await _read_head_from(resp)
            fmt = self._check_video(head if offset == 0 else _read_head(_files.part_path(self.path)), resp)  # type: ignore[arg-type]

            self.tracker.begin(self.path.name, total, offset)  # type: ignore[union-attr]
            new_state = _files.PartState(
                url=self.url,
                etag=resp.headers.get("ETag"),
                last_modified=resp.headers.get("Last-Modified"),
                total=total,
            )
            if probing and resp.status == 206:
                return await self._segmented(session, new_state, resp, head, fmt)
            if offset == 0 and self.recorded:
                # Starting over: an old record describes bytes that are about to be replaced.
                # It must go first, or a process killed before writing the new record would
                # leave new bytes under the old record (another URL's, say), which the next
                # run would resume from.
                _files.remove_quietly(_files.sidecar_path(self.path))  # type: ignore[arg-type]
            hasher = None
            if self.sha256 is not None:
                hasher = hashlib.sha256()
                if offset:
                    await asyncio.to_thread(_files.hash_file, _files.part_path(self.path), offset, hasher)  # type: ignore[arg-type]
            if offset:
                self.resumed = True
            # A resumed .part already has its record (it was resumable because of it).
            record = None if offset else new_state
            size = await self._stream(resp, head if offset == 0 else b"", offset, hasher, record)
            content_type = resp.headers.get("Content-Type")

        if total is not None and size != total:
            raise IncompleteDownloadError(
                f"{self.shown_url} sent {size} of {total} bytes. "
                "The partial file is kept; run the same call again to resume.",
                received=size,
                expected=total,
            )
        return await self._finish(size, content_type, fmt.name if fmt else None, hasher)

    # ------------------------------------------------------------------ several connections

    async def _segmented(
        self, session: aiohttp.ClientSession, state: _files.PartState, resp: aiohttp.ClientResponse, head: bytes, fmt: Any
    ) -> DownloadResult:
        """A fresh multi-connection download; ``resp`` is the open 206 for ``bytes=0-``."""
        assert state.total is not None
        first = 1 if self.connections == "auto" else int(self.connections)
        segments = _segments.plan(state.total, first)
        return await self._run_segments(session, state, segments, resp, head, fmt, fresh=True)

    async def _resume_segments(
        self, session: aiohttp.ClientSession, state: _files.PartState, segments: list[_segments.Segment]
    ) -> DownloadResult:
        """Fetch only the missing pieces of a ``.part`` left by an earlier attempt, call or process."""
        assert self.path is not None and state.total is not None
        done = sum(s.done for s in segments)
        self.total, self.done = state.total, done
        self._check_size(state.total)
        _files.check_free_space(self.path, state.total - done)
        self.tracker.begin(self.path.name, state.total, done)
        if done:
            self.resumed = True
        return await self._run_segments(session, state, segments, None, b"", None, fresh=False)

    async def _run_segments(
        self,
        session: aiohttp.ClientSession,
        state: _files.PartState,
        segments: list[_segments.Segment],
        resp: aiohttp.ClientResponse | None,
        head: bytes,
        fmt: Any,
        *,
        fresh: bool,
    ) -> DownloadResult:
        assert self.path is not None and state.total is not None
        self.recorded = True  # pieces keep their progress in the record as they go
        fetch = _segments.SegmentedFetch(
            session,
            url=self.final_url if resp is not None else self.url,
            headers=self.headers,
            timeout=self.timeout,
            dest=self.path,
            state=state,
            segments=segments,
            connections=self.connections,
            tracker=self.tracker,
            retry=self.retry,
            shown_url=self.shown_url,
            fresh=fresh,
        )
        try:
            info = await fetch.run(resp, head)
        except (_segments.RangeMismatch, _segments.FileChanged) as exc:
            self.restarts += 1
            if isinstance(exc, _segments.RangeMismatch) or self.restarts > 2:
                # Its ranges cannot be trusted: one stream is the safe way to get this file.
                self.connections = 1
            log.info("%s; starting again from zero", exc)
            _files.discard_part(self.path)
            self.resumed = False
            raise _Again from None
        finally:
            self.done = sum(s.done for s in segments)
            self.attempts += fetch.retries
        self.final_url = info.final_url
        part = _files.part_path(self.path)
        if fmt is None:
            # Resumed: the first bytes passed the video check when the sidecar was first written.
            fmt = sniff(await asyncio.to_thread(_read_head, part))
        hasher = None
        if self.sha256 is not None:
            # The pieces arrived out of order, so the hash is taken from the finished file, off the loop.
            hasher = hashlib.sha256()
            await asyncio.to_thread(_files.hash_file, part, None, hasher)
        return await self._finish(state.total, info.content_type, fmt.name if fmt else None, hasher)

    async def _name_from_response(self, resp: aiohttp.ClientResponse, head: bytes) -> DownloadResult | None:
        fmt = sniff(head)
        name = server_filename(self.final_url, resp.headers.get("Content-Disposition"), fmt and fmt.extension)
        self.path = self.folder / name
        self.tracker.name = name
        return await self._lock()

    async def _range_not_satisfiable(
        self, resp: aiohttp.ClientResponse, state: _files.PartState | None, offset: int
    ) -> DownloadResult:
        _, total = content_range(resp.headers.get("Content-Range"))
        if state is None or total is None or total != offset or total != state.total:
            # Our .part does not fit what the server has now: it is not worth keeping.
            _files.discard_part(self.path)  # type: ignore[arg-type]
            raise _Again
        # Everything was already on disk; an earlier run stopped just before the rename.
        self.total, self.done = total, offset
        part = _files.part_path(self.path)  # type: ignore[arg-type]
        fmt = self._check_video(_read_head(part), resp)
        self.tracker.begin(self.path.name, total, offset)  # type: ignore[union-attr]
        self.resumed = True
        hasher = None
        if self.sha256 is not None:
            hasher = hashlib.sha256()
            await asyncio.to_thread(_files.hash_file, part, offset, hasher)
        return await self._finish(offset, resp.headers.get("Content-Type"), fmt.name if fmt else None, hasher)

    def _check_size(self, total: int | None) -> None:
        if self.max_bytes is not None and total is not None and total > self.max_bytes:
            _files.discard_part(self.path)  # type: ignore[arg-type]
            raise TooLargeError(
                f"{self.shown_url} is {human_bytes(total)}, more than max_bytes={self.max_bytes} "
                f"({human_bytes(self.max_bytes)}). Raise max_bytes to download it.",
                limit=self.max_bytes,
                size=total,
            )

    def _check_video(self, head: bytes, resp: aiohttp.ClientResponse) -> Any:
        fmt = sniff(head)
        if fmt is None and is_hls_playlist(head):
            # Keep any .part: it may be an HLS download of this destination, which _hls resumes.
            raise _IsHLS
        if fmt is None and self.require_video:
            _files.discard_part(self.path)  # type: ignore[arg-type]
            what = describe_non_video(head, resp.headers.get("Content-Type"))
            raise NotAVideoError(
                f"{self.shown_url} is not a video: it is {what}. Check the URL (a login or error page is "
                "a common cause), or pass require_video=False to save it anyway."
            )
        return fmt

    async def _stream(
        self, resp: aiohttp.ClientResponse, head: bytes, offset: int, hasher: Any, record: _files.PartState | None
    ) -> int:
        """Copy the body into the .part from ``offset``; return the file's size afterwards.

        ``record`` (the resume record of a fresh .part) is written :data:`RECORD_AFTER`
        seconds after the body starts (by a timer, so a stalled body gets it too), or when
        the copy stops early for any reason. A quick download never writes it: creating a
        file took 1-1.5 ms during a batch here, as much as fetching a 1 MiB file. The price is
        that a process killed outright (SIGKILL, power) in a download's first second leaves
        a .part without a record, which the next run starts again from zero.
        """
        part = self.lock.part  # type: ignore[union-attr]
        writer = PartWriter(
            part, truncate=offset == 0, hasher=hasher, fd=self.lock.part_fd, inline_below=INLINE_BYTES  # type: ignore[union-attr]
        )
        pos = offset
        limit = self.max_bytes
        tracker = self.tracker
        timer = None
        if record is not None:
            timer = asyncio.get_running_loop().call_later(RECORD_AFTER, self._keep_resumable, record)
        complete = False
        try:
            if head:
                await writer.write(pos, head)
                pos += len(head)
                tracker.advance(len(head))
            body = resp.content.iter_chunked(self.chunk_size) if self.chunk_size else resp.content.iter_any()
            async for chunk in body:
                await writer.write(pos, chunk)
                pos += len(chunk)
                tracker.advance(len(chunk))
                if limit is not None and pos > limit:
                    raise TooLargeError(
                        f"{self.shown_url} sent more than max_bytes={limit} ({human_bytes(limit)}); stopped. "
                        "Raise max_bytes to download it.",
                        limit=limit,
                    )
            complete = self.total is None or pos == self.total
        except TooLargeError:
            record = None
            writer.close_now()
            _files.discard_part(self.path)  # type: ignore[arg-type]
            raise
        finally:
            self.done = pos
            if timer is not None:
                timer.cancel()
            if record is not None and not self.recorded and not complete and pos > offset:
                self._keep_resumable(record)
            await writer.close()
        return pos

    def _keep_resumable(self, record: _files.PartState) -> None:
        """Write the resume record of the .part (a download past its first second, or stopped early)."""
        try:
            _files.write_state(self.path, record)  # type: ignore[arg-type]
            self.recorded = True
        except OSError as exc:
            # Not worth failing the download, or hiding the error that stopped it, for this:
            # without the record an interrupted download starts over.
            log.warning("could not save the resume record for %s: %s", self._part_name(), exc)

    async def _finish(self, size: int, content_type: str | None, fmt: str | None, hasher: Any) -> DownloadResult:
        assert self.path is not None and self.lock is not None
        part = self.lock.part
        digest = None
        if hasher is not None:
            digest = hasher.hexdigest()
            if digest != self.sha256:
                _files.discard_part(self.path)
                raise ChecksumError(
                    f"{self.shown_url}: sha256 is {digest}, expected {self.sha256}. The download was discarded; "
                    "check the expected hash, or the server sent different bytes.",
                    expected=self.sha256 or "",
                    actual=digest,
                )
        record = _files.sidecar_path(self.path) if self.recorded else None
        try:
            await _files.off_loop(_files.finish_part, part, self.path, self.overwrite, record)
        except VidnbError:
            raise
        except OSError as exc:
            raise translate(exc, path=self.path) from exc
        return DownloadResult(
            path=self.path,
            url=self.final_url,
            size=size,
            content_type=content_type,
            format=fmt,
            elapsed=time.monotonic() - self.t0,
            attempts=self.attempts,
            resumed=self.resumed,
            skipped=False,
            sha256=digest,
        )


async def _read_head_from(resp: aiohttp.ClientResponse) -> bytes:
    """The first :data:`SNIFF_BYTES` or so of a body (more when a chunk overshoots)."""
    buf = bytearray()
    while len(buf) < SNIFF_BYTES:
        chunk = await resp.content.readany()
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


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


async def run(url: str, dest: Any, opts: Any, session: Any) -> DownloadResult:
    return await download(
        url, dest, overwrite=opts.overwrite, resume=opts.resume, retries=opts.retry, timeout=opts.timeout,
        chunk_size=opts.chunk_size, headers=dict(opts.headers), sha256=opts.sha256, max_bytes=opts.max_bytes,
        require_video=opts.require_video, progress=opts.progress, session=session, connections=opts.connections,
        variant=opts.variant, live_duration=opts.live_duration,
    )
