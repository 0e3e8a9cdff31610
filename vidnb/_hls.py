"""HLS (.m3u8) streams into one playable file, without ffmpeg, the way yt-dlp's native downloader does.

One call of :func:`download_hls`:

1. fetch and parse the playlist; from a master playlist choose a variant (and fetch its
   default audio rendition to a sibling file when the audio is not in the video segments);
2. refuse what cannot give a playable file before writing anything: SAMPLE-AES and other
   encryption, live streams unless ``live_duration`` says how much to record;
3. fetch up to ``connections`` segments at once, each retried on its own, decrypt AES-128,
   and append them *in order* to ``<dest>.part`` (MPEG-TS segments concatenate into a ``.ts``,
   fMP4 init section + fragments into an ``.mp4``). The sidecar records which segments are
   on disk and where they end (at most once a second, and whenever the download stops), so
   an interrupted download resumes at the first missing segment;
4. check the optional sha256 and rename the ``.part`` onto the destination.

The safety rules are those of single files (``_download``): lock, ``.part``, atomic rename,
skip a complete destination unless ``overwrite``, ``max_bytes``, typed errors.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import hashlib
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable
from urllib.parse import urlsplit

import aiohttp
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ._writer import PartWriter
from . import _files, _segments
from . import _hls_playlist as pl
from ._errors import (
    ChecksumError,
    IncompleteDownloadError,
    NotAVideoError,
    TooLargeError,
    VidnbError,
    translate,
    wait_or_raise,
)
from ._fmt import human_bytes, human_rate
from ._headers import MAX_REDIRECTS, content_range, raise_for_status
from ._hls_playlist import LiveStreamError, UnsupportedEncryptionError
from ._progress import ProgressOption, Tracker, make_reporter
from ._sniff import describe_non_video, sniff
from ._urls import redact_url

if TYPE_CHECKING:
    from ._download import DownloadResult, Retry

__all__ = ["is_hls_url", "download_hls", "LiveStreamError", "UnsupportedEncryptionError", "DEFAULT_CONNECTIONS"]

log = logging.getLogger("vidnb")

#: Segments fetched at once when the caller leaves ``connections`` at its default.
DEFAULT_CONNECTIONS = _segments.HLS_SEGMENTS
#: A playlist larger than this is not a playlist (a video served with the wrong name, say).
MAX_PLAYLIST_BYTES = 16 << 20
#: A live playlist that brings nothing new for this many target durations has stalled.
LIVE_STALL_TARGETS = 6

_MIME = {"ts": "video/mp2t", "mp4": "video/mp4"}
_ISO_BOXES = {b"ftyp", b"styp", b"moof", b"moov", b"sidx", b"emsg", b"prft", b"free", b"skip", b"mdat"}


def is_hls_url(url: str) -> bool:
    """True for URLs whose path names a playlist (``.m3u8``)."""
    return urlsplit(url).path.lower().endswith((".m3u8", ".m3u"))


async def download_hls(
    url: str,
    folder: Path,
    path: Path | None,
    *,
    session: aiohttp.ClientSession,
    overwrite: bool = False,
    resume: bool = True,
    retry: "Retry | None" = None,
    timeout: aiohttp.ClientTimeout | None = None,
    headers: dict[str, str] | None = None,
    sha256: str | None = None,
    max_bytes: int | None = None,
    progress: ProgressOption = "auto",
    connections: int | str = "auto",
    variant: str | int = "best",
    live_duration: float | None = None,
) -> "DownloadResult":
    """Download the stream an HLS playlist describes into one file.

    Called by :func:`vidnb.download` for ``.m3u8`` URLs and for bodies that turn out to be
    playlists; the options are those of ``download`` (already checked there).

    Parameters
    ----------
    url : str
        The playlist (master or media) URL.
    folder : Path
        Where to save when ``path`` is None; the name is then the playlist URL's stem plus
        ``.ts`` (MPEG-TS segments) or ``.mp4`` (fMP4 segments).
    path : Path or None
        The file to write; its name is kept whatever its extension.
    connections : int or "auto"
        Segments fetched at once; "auto" and 1 (``download``'s default) mean 4.
    variant : "best", "worst", int or str
        For master playlists: "best" (highest bandwidth, then resolution), "worst", a maximum
        height (``720`` or ``"720p"``) or a maximum bandwidth (``"800k"``, ``"2.5M"``).
    live_duration : float, optional
        Record this many seconds of a live playlist (refused with :class:`LiveStreamError` otherwise).

    Returns
    -------
    DownloadResult
        ``format`` is "ts" or "mp4"; ``size`` the bytes written; ``url`` the playlist URL after
        redirects; ``attempts`` is 1 plus the number of requests (playlists, keys, segments)
        that were retried, so a clean run reports 1; ``resumed`` is True when segments from an
        earlier run were kept.
    """
    from ._download import Retry, existing_result

    t0 = time.monotonic()
    choice = pl.parse_variant(variant)
    n = _segment_connections(connections)
    if path is not None and path.exists() and not overwrite:
        return await existing_result(path, url, sha256, t0, Tracker(make_reporter(progress), path.name))
    job = _HLSJob(
        session=session,
        overwrite=overwrite,
        resume=resume,
        retry=retry if retry is not None else Retry(),
        timeout=timeout,
        headers=dict(headers or {}),
        sha256=sha256,
        max_bytes=max_bytes,
        progress=progress,
        connections=n,
        live_duration=float(live_duration) if live_duration is not None else None,
        t0=t0,
    )
    return await job.run(url, folder, path, choice)


def _segment_connections(connections: int | str) -> int:
    # download() checked the value; its default of 1 is about byte ranges of one file.
    return DEFAULT_CONNECTIONS if connections in (1, "auto") else int(connections)


class _HLSJob:
    """One call of :func:`download_hls`: options, counters and the HTTP helpers they share."""

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        overwrite: bool,
        resume: bool,
        retry: "Retry",
        timeout: aiohttp.ClientTimeout | None,
        headers: dict[str, str],
        sha256: str | None,
        max_bytes: int | None,
        progress: ProgressOption,
        connections: int,
        live_duration: float | None,
        t0: float,
    ) -> None:
        self.session = session
        self.overwrite = overwrite
        self.resume = resume
        self.retry = retry
        self.timeout = timeout
        self.headers = headers
        self.sha256 = sha256
        self.max_bytes = max_bytes
        self.progress = progress
        self.connections = connections
        self.live_duration = live_duration
        self.t0 = t0
        self.retries = 0  # requests tried again, over the whole call
        self._keys: dict[str, asyncio.Task[bytes]] = {}

    # ------------------------------------------------------------------ playlists

    async def run(self, url: str, folder: Path, path: Path | None, choice: pl.VariantChoice) -> "DownloadResult":
        shown = redact_url(url)
        log.info("downloading HLS stream %s -> %s", shown, path or f"{folder}/")
        text, final_url = await self.fetch_text(url)
        playlist = pl.parse(text, final_url)
        media, media_url = playlist, final_url
        bandwidth = 0
        audio_url: str | None = None
        if playlist.is_variant:
            chosen, warning = pl.choose_variant(playlist, choice)
            self._report_renditions(playlist, chosen, final_url)
            if warning:
                log.warning("%s: %s", shown, warning)
            bandwidth = int(chosen.stream_info.bandwidth or chosen.stream_info.average_bandwidth or 0)
            audio = pl.default_audio(playlist, chosen)
            if audio is not None:
                audio_url = _join(final_url, audio.uri)
            text, media_url = await self.fetch_text(_join(final_url, chosen.uri))
            media = pl.parse(text, media_url)
            if media.is_variant:
                raise NotAVideoError(f"{redact_url(media_url)} is a master playlist inside a master playlist.")
        pl.check_encryption(media, media_url)
        live = pl.is_live(media)
        if live and self.live_duration is None:
            raise LiveStreamError(
                f"{shown} is a live HLS stream (its playlist has no EXT-X-ENDLIST), so there is no whole video "
                "to save. Pass live_duration=SECONDS to record that much of it."
            )
        kind = pl.container(media)
        dest = path if path is not None else folder / pl.output_name(final_url, kind)
        video = _Stream(self, dest, media, media_url, kind, live, bandwidth)
        audio = None if audio_url is None else await self._audio_stream(audio_url, dest)
        try:
            if audio is None:
                result = await video.run(final_url)
            elif live:
                # Both recordings must cover the same minutes of the broadcast: run them side by side.
                _, result = await asyncio.gather(audio.run(final_url), video.run(final_url))
            else:
                # Audio first: the video appears at dest only once everything it needs is on disk,
                # so a complete dest means a complete pair and a re-run can skip at once.
                await audio.run(final_url)
                result = await video.run(final_url)
        finally:
            self._drop_keys()
        if audio is not None:
            log.info(
                "%s has no audio of its own; its audio is in %s. To make one file: "
                "ffmpeg -i %s -i %s -c copy out.mp4",
                result.path,
                audio.dest,
                result.path,
                audio.dest,
            )
            result = dataclasses.replace(result, audio=audio.dest)
        return result

    async def _audio_stream(self, audio_url: str, dest: Path) -> "_Stream":
        """The variant's default audio rendition, to be saved beside ``dest`` (vidnb does not mux)."""
        text, final = await self.fetch_text(audio_url)
        media = pl.parse(text, final)
        pl.check_encryption(media, final)
        live = pl.is_live(media)
        if live and self.live_duration is None:
            raise LiveStreamError(
                f"The audio of this stream ({redact_url(final)}) is live; pass live_duration=SECONDS to record it."
            )
        kind = pl.container(media)
        audio_dest = dest.with_name(pl.output_name(final, kind, audio=True, stem=dest.stem))
        log.info("the chosen stream's audio is a separate rendition; saving it to %s", audio_dest)
        return _Stream(self, audio_dest, media, final, kind, live, 0)

    def _drop_keys(self) -> None:
        for task in self._keys.values():
            if not task.done():
                task.cancel()
            elif not task.cancelled():
                task.exception()  # mark a failure as seen: every segment that needed it has reported it

    def _report_renditions(self, master: Any, chosen: Any, url: str) -> None:
        variants = ", ".join(pl.describe_variant(v) for v in master.playlists)
        log.info("%s offers %d stream%s: %s; chose %s", redact_url(url), len(master.playlists),
                 "" if len(master.playlists) == 1 else "s", variants,
                 pl.describe_variant(chosen))
        audio = pl.audio_renditions(master)
        if audio:
            described = ", ".join(
                f"{m.name or m.group_id}"
                + (f" ({m.language})" if m.language else "")
                + (" [default]" if (m.default or "").upper() == "YES" else "")
                + ("" if m.uri else " [in the video]")
                for m in audio
            )
            log.info("%s audio renditions: %s", redact_url(url), described)

    # ------------------------------------------------------------------ HTTP

    async def fetch_text(self, url: str) -> tuple[str, str]:
        """A playlist's text and its URL after redirects."""
        data, final, _ = await self.fetch(url, None, what="playlist")
        if len(data) > MAX_PLAYLIST_BYTES:
            raise NotAVideoError(f"{redact_url(url)} is {human_bytes(len(data))}: too large to be a playlist.")
        return data.decode("utf-8-sig", errors="replace"), final

    async def key(self, uri: str) -> bytes:
        """The AES-128 key at ``uri``, fetched once however many segments use it."""
        task = self._keys.get(uri)
        if task is None:
            task = asyncio.ensure_future(self._fetch_key(uri))
            self._keys[uri] = task
        return await asyncio.shield(task)

    async def _fetch_key(self, uri: str) -> bytes:
        scheme = urlsplit(uri).scheme.lower()
        if scheme not in ("http", "https"):
            raise UnsupportedEncryptionError(
                f"The AES-128 key is at {redact_url(uri)}, a {scheme or 'relative'}: URI vidnb cannot fetch "
                "(such key URIs usually mean DRM).",
                "AES-128",
            )
        data, _, _ = await self.fetch(uri, None, what="key")
        if len(data) != 16:
            raise NotAVideoError(
                f"The AES-128 key at {redact_url(uri)} is {len(data)} bytes, not 16: the server sent something "
                "else (a login page?). Check headers= (cookies, authorisation)."
            )
        return data

    async def fetch(
        self,
        url: str,
        byterange: tuple[int, int] | None,
        *,
        what: str,
        on_bytes: Callable[[int], None] | None = None,
    ) -> tuple[bytes, str, str | None]:
        """GET one resource whole (a playlist, key or segment), retrying transient failures.

        Returns the body, the URL after redirects and the Content-Type.
        """
        attempt = 0
        while True:
            attempt += 1
            counted = [0]

            def count(k: int) -> None:
                counted[0] += k
                if on_bytes is not None:
                    on_bytes(k)

            try:
                return await self._get(url, byterange, count)
            except Exception as exc:
                if on_bytes is not None and counted[0]:
                    on_bytes(-counted[0])  # those bytes will come again
                err, wait = wait_or_raise(self.retry, exc, attempt, url=redact_url(url))
                self.retries += 1
                log.warning(
                    "attempt %d of %d for %s %s failed (%s: %s); retrying in %.1f s",
                    attempt,
                    self.retry.total + 1,
                    what,
                    redact_url(url),
                    type(err).__name__,
                    err,
                    wait,
                )
                await asyncio.sleep(wait)

    async def _get(
        self, url: str, byterange: tuple[int, int] | None, count: Callable[[int], None]
    ) -> tuple[bytes, str, str | None]:
        headers = {**self.headers, "Accept-Encoding": "identity"}
        if byterange is not None:
            headers["Range"] = f"bytes={byterange[0]}-{byterange[0] + byterange[1] - 1}"
        async with self.session.get(
            url, headers=headers, timeout=self.timeout, max_redirects=MAX_REDIRECTS, auto_decompress=False
        ) as resp:
            final = str(resp.url)
            raise_for_status(resp, redact_url(final))
            body = bytearray()
            async for chunk in resp.content.iter_any():
                body += chunk
                count(len(chunk))
                # One resource larger than the whole limit: stop now rather than hold it in memory.
                # (A server ignoring Range may send a big file legitimately; the range is cut below.)
                if self.max_bytes is not None and byterange is None and len(body) > self.max_bytes:
                    raise TooLargeError(
                        f"{redact_url(final)} alone is more than max_bytes={self.max_bytes} "
                        f"({human_bytes(self.max_bytes)}); stopped. Raise max_bytes to download it.",
                        limit=self.max_bytes,
                    )
            expected = resp.content_length
            if expected is not None and len(body) != expected:
                raise IncompleteDownloadError(
                    f"{redact_url(final)} sent {len(body)} of {expected} bytes.", len(body), expected
                )
            if byterange is not None:
                body = _cut_range(body, byterange, resp, final)
            return bytes(body), final, resp.headers.get("Content-Type")


def _cut_range(body: bytearray, byterange: tuple[int, int], resp: aiohttp.ClientResponse, url: str) -> bytearray:
    """The requested range out of a 206 (checked) or a 200 with the whole file (a server ignoring Range)."""
    offset, length = byterange
    if resp.status == 206:
        start, _ = content_range(resp.headers.get("Content-Range"))
        if start != offset:
            raise IncompleteDownloadError(
                f"{redact_url(url)} answered the range from byte {offset} with "
                f"Content-Range {resp.headers.get('Content-Range')!r}."
            )
        if len(body) != length:
            raise IncompleteDownloadError(
                f"{redact_url(url)} sent {len(body)} of the {length} bytes asked for.", len(body), length
            )
        return body
    if len(body) < offset + length:
        raise IncompleteDownloadError(
            f"{redact_url(url)} ignored the range and its whole body ({len(body)} bytes) ends before "
            f"byte {offset + length}.",
            len(body),
            offset + length,
        )
    return body[offset : offset + length]


def _join(base: str, uri: str) -> str:
    from urllib.parse import urljoin

    return urljoin(base, uri)


# --------------------------------------------------------------------------- one media playlist


class _Stream:
    """One media playlist into one destination file."""

    def __init__(
        self, job: _HLSJob, dest: Path, media: Any, media_url: str, kind: str, live: bool, bandwidth: int
    ) -> None:
        self.job = job
        self.dest = dest
        self.media = media
        self.media_url = media_url
        self.kind = kind
        self.live = live
        self.bandwidth = bandwidth
        self.shown = redact_url(media_url)
        self.tracker = Tracker(make_reporter(job.progress), dest.name)
        self.pos = 0  # bytes of the .part that are in order and complete
        self.records: list[list[int]] = []  # [start, end, length] per item on disk
        #: Records appended since the sidecar was last written, and when it is next due.
        self._unsaved = False
        self._next_save = 0.0
        self.fingerprint: str | None = None
        self.seconds = 0.0  # media seconds on disk
        self.total_seconds = 0.0
        self.segments_done = 0
        self.exact = False  # the total size is known up front (every item has a byte range)
        self.hasher: Any = None
        self.resumed = False

    async def run(self, playlist_url: str) -> "DownloadResult":
        from ._download import existing_result

        job = self.job
        lock = _files.DestinationLock(self.dest)
        exists = await lock.acquire()
        writer: PartWriter | None = None
        try:
            if exists and not job.overwrite:
                return await existing_result(self.dest, playlist_url, job.sha256, job.t0, self.tracker)
            if self.live:
                items: list[pl.Item] = []
                _files.discard_part(self.dest)
            else:
                items = list(pl.with_init_sections(pl.segments(self.media, self.media_url)))
                if not items:
                    raise NotAVideoError(f"The HLS playlist {self.shown} lists no segments.")
                await self._resume_or_start(items)
            self.total_seconds = job.live_duration if self.live else sum(i.duration for i in items)  # type: ignore[assignment]
            known = [i.byterange[1] for i in items if i.byterange is not None]
            # Encrypted segments shrink by their padding, so only plain byte ranges give exact sizes.
            self.exact = bool(items) and len(known) == len(items) and not any(i.key for i in items)
            if self.exact:
                self._check_size(sum(known))
                _files.check_free_space(self.dest, sum(known) - self.pos)
            self.tracker.begin(self.dest.name, sum(known) if self.exact else self._estimate(), self.pos)

            part = _files.part_path(self.dest)
            if job.sha256 is not None:
                self.hasher = hashlib.sha256()
                if self.pos:
                    await asyncio.to_thread(_files.hash_file, part, self.pos, self.hasher)
            writer = PartWriter(part, truncate=self.pos == 0, hasher=self.hasher)
            source = self._live_items() if self.live else _aiter(items[len(self.records) :])
            await self._pipeline(source, writer)
            w, writer = writer, None
            await w.close()
            self._unsaved = False  # the records go with the finished file
            result = await self._finish(playlist_url)
            # The bar counted bytes fetched (padding, whole files from servers ignoring Range);
            # it ends on the bytes written.
            self.tracker.done = self.tracker.total = self.pos
            self.tracker.end("done")
            self._log_done(result)
            return result
        except (asyncio.CancelledError, KeyboardInterrupt):
            self.tracker.end("cancelled")
            log.info("download of %s cancelled; %s kept for resuming", self.shown, _files.part_path(self.dest))
            raise
        except BaseException as exc:
            if writer is not None:
                w, writer = writer, None
                await _close_quietly(w)
            if isinstance(exc, TooLargeError):
                self._unsaved = False
                _files.discard_part(self.dest)  # over the limit: nothing worth resuming
            self.tracker.end("failed", str(exc))
            log.info("download of %s failed: %s", self.shown, exc)
            raise
        finally:
            if writer is not None:
                await _close_quietly(writer)
            if self._unsaved:
                # Stopped early (error, cancel): the segments on disk stay resumable. Written
                # after the writer closed, so the record is not ahead of the bytes.
                try:
                    _files.write_state(self.dest, self._state())
                except OSError as exc:
                    log.warning("could not save the resume record for %s: %s", _files.part_path(self.dest), exc)
            lock.release()

    # ------------------------------------------------------------------ resume

    async def _resume_or_start(self, items: list[pl.Item]) -> None:
        """Keep the in-order prefix of segments an earlier run left on disk, if it is the same stream."""
        fp = pl.fingerprint(items)
        part = _files.part_path(self.dest)
        kept: list[list[int]] = []
        if self.job.resume:
            state = await _files.load_state(self.dest)
            try:
                size = part.stat().st_size
            except FileNotFoundError:
                size = -1
            if (
                state is not None
                and state.url == self.media_url
                and state.fingerprint == fp
                and state.segments
                and size >= 0
            ):
                # The sidecar may be ahead of the disk (the writer thread had not written yet
                # when the process died): keep only records the file really holds.
                for rec in state.segments[: len(items)]:
                    if len(rec) == 3 and rec[0] == (kept[-1][1] if kept else 0) and rec[1] <= size:
                        kept.append(list(rec))
                    else:
                        break
        if kept:
            self.pos = kept[-1][1]
            os.truncate(part, self.pos)
            self.records = kept
            self.seconds = sum(i.duration for i in items[: len(kept)])
            self.resumed = True
            self.segments_done = sum(1 for i in items[: len(kept)] if i.kind == "segment")
            log.info(
                "resuming %s at segment %d of %d (%s on disk)",
                self.dest.name,
                len(kept) + 1,
                len(items),
                human_bytes(self.pos),
            )
        else:
            _files.discard_part(self.dest)
        self.fingerprint = fp
        await _files.save_state(self.dest, self._state())
        self._next_save = time.monotonic() + _segments.SAVE_EVERY

    def _state(self) -> _files.PartState:
        return _files.PartState(url=self.media_url, segments=self.records, fingerprint=self.fingerprint)

    # ------------------------------------------------------------------ fetching in order

    async def _pipeline(self, source: AsyncIterator[pl.Item], writer: PartWriter) -> None:
        """Fetch up to ``connections`` items at once; append them strictly in playlist order.

        At most twice ``connections`` items are in flight or waiting in memory, so a slow
        segment holds back only a bounded amount of finished ones.
        """
        sem = asyncio.Semaphore(self.job.connections)
        window = 2 * self.job.connections
        pending: collections.deque[tuple[pl.Item, asyncio.Task[bytes]]] = collections.deque()
        more = True
        try:
            while True:
                while more and len(pending) < window:
                    try:
                        item = await source.__anext__()
                    except StopAsyncIteration:
                        more = False
                        break
                    pending.append((item, asyncio.ensure_future(self._fetch_item(item, sem))))
                if not pending:
                    return
                item, task = pending.popleft()
                await self._append(writer, item, await task)
        finally:
            for _, task in pending:
                task.cancel()
            await asyncio.gather(*(t for _, t in pending), return_exceptions=True)
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _fetch_item(self, item: pl.Item, sem: asyncio.Semaphore) -> bytes:
        what = "init section" if item.kind == "init" else f"segment {item.sequence}"
        async with sem:
            data, _, ctype = await self.job.fetch(item.url, item.byterange, what=what, on_bytes=self.tracker.advance)
        if item.key is not None and not (item.kind == "init" and _looks_iso(data)):
            data = _decrypt(data, await self.job.key(item.key.uri), item, self.shown)
        if not _looks_like_media(data):
            raise NotAVideoError(
                f"The {what} of {self.shown} ({redact_url(item.url)}) is not media: it is "
                f"{describe_non_video(data, ctype)}. Check the URL, or pass headers= if the server wants a login."
            )
        return data

    async def _append(self, writer: PartWriter, item: pl.Item, data: bytes) -> None:
        self._check_size(self.pos + len(data))
        await writer.write(self.pos, data)
        self.records.append([self.pos, self.pos + len(data), len(data)])
        self.pos += len(data)
        self.seconds += item.duration
        if item.kind == "segment":
            self.segments_done += 1
        if not self.live:
            # At most once a second, not per segment: each save writes a file, which can take
            # a millisecond, and the record grows with the stream. A stop saves it at once.
            self._unsaved = True
            if time.monotonic() >= self._next_save:
                await _files.save_state(self.dest, self._state())
                self._unsaved, self._next_save = False, time.monotonic() + _segments.SAVE_EVERY
        if not self.exact:
            self._refine_total()

    def _refine_total(self) -> None:
        # Change the bar's total only when the estimate moved by more than a tenth (or was
        # overtaken): a bar restarts its rate and ETA on every new total.
        est = self._estimate()
        if est is None:
            return
        est = max(est, self.tracker.done)
        cur = self.tracker.total
        if cur is None or cur < self.tracker.done or abs(est - cur) > cur / 10:
            self.tracker.total = est

    def _estimate(self) -> int | None:
        """Bytes the whole stream will take: from what is on disk per second, else the variant's bandwidth."""
        if self.seconds > 0 and self.pos:
            return max(self.pos, round(self.pos / self.seconds * self.total_seconds))
        if self.bandwidth and self.total_seconds:
            return round(self.bandwidth / 8 * self.total_seconds)
        return None

    def _check_size(self, size: int) -> None:
        limit = self.job.max_bytes
        if limit is not None and size > limit:
            raise TooLargeError(
                f"{self.shown} is more than max_bytes={limit} ({human_bytes(limit)}); stopped. "
                "Raise max_bytes to download it.",
                limit=limit,
                size=size,
            )

    # ------------------------------------------------------------------ live

    async def _live_items(self) -> AsyncIterator[pl.Item]:
        """Segments of a live playlist as they appear, until ``live_duration`` seconds are queued."""
        job = self.job
        target = float(self.media.target_duration or 6)
        wanted = job.live_duration or 0.0
        queued = 0.0
        last_seq: int | None = None
        current_init = None
        quiet_since = time.monotonic()
        media = self.media
        while True:
            segs = pl.segments(media, self.media_url)
            if last_seq is None:
                new = segs[pl.live_start(segs, target) :]
                log.info("recording %.0f s of the live stream %s", wanted, self.shown)
            else:
                new = [s for s in segs if s.sequence > last_seq]
                if new and new[0].sequence > last_seq + 1:
                    log.warning(
                        "%s: segments %d to %d left the live playlist before they were fetched; the recording skips them",
                        self.shown,
                        last_seq + 1,
                        new[0].sequence - 1,
                    )
            for item in pl.with_init_sections(new, current_init):
                if item.kind == "init":
                    current_init = (item.url, item.byterange)
                else:
                    last_seq = item.sequence
                    queued += item.duration
                yield item
                if queued >= wanted:
                    return
            if not pl.is_live(media):
                log.info("%s ended after %.1f s of the %.0f s asked for", self.shown, queued, wanted)
                return
            now = time.monotonic()
            if new:
                quiet_since = now
            elif now - quiet_since > LIVE_STALL_TARGETS * target:
                log.warning(
                    "%s brought no new segment for %.0f s; stopping the recording at %.1f s", self.shown,
                    now - quiet_since, queued,
                )
                return
            # RFC 8216 6.3.4: reload after a target duration, or half of one when nothing changed.
            await asyncio.sleep(target if new else target / 2)
            text, _ = await job.fetch_text(self.media_url)
            media = pl.parse(text, self.media_url)
            pl.check_encryption(media, self.media_url)

    # ------------------------------------------------------------------ the end

    async def _finish(self, playlist_url: str) -> "DownloadResult":
        from ._download import DownloadResult

        job = self.job
        part = _files.part_path(self.dest)
        digest = None
        if self.hasher is not None:
            digest = self.hasher.hexdigest()
            if digest != job.sha256:
                _files.discard_part(self.dest)
                raise ChecksumError(
                    f"{self.shown}: sha256 of the joined stream is {digest}, expected {job.sha256}. The download "
                    "was discarded; check the expected hash, or the server sent different bytes.",
                    expected=job.sha256 or "",
                    actual=digest,
                )
        if self.pos == 0:
            raise NotAVideoError(f"{self.shown} gave no media bytes.")
        try:
            await _files.off_loop(_files.finish_part, part, self.dest, job.overwrite, _files.sidecar_path(self.dest))
        except VidnbError:
            raise
        except OSError as exc:
            raise translate(exc, path=self.dest) from exc
        return DownloadResult(
            path=self.dest,
            url=playlist_url,
            size=self.pos,
            content_type=_MIME[self.kind],
            format=self.kind,
            elapsed=time.monotonic() - job.t0,
            attempts=1 + job.retries,
            resumed=self.resumed,
            skipped=False,
            sha256=digest,
        )

    def _log_done(self, result: "DownloadResult") -> None:
        log.info(
            "saved %s (%d segments, %.1f s of media, %s in %.2f s, %s, %d attempt%s%s)",
            result.path,
            self.segments_done,
            self.seconds,
            human_bytes(result.size),
            result.elapsed,
            human_rate(result.speed),
            result.attempts,
            "" if result.attempts == 1 else "s",
            ", resumed" if result.resumed else "",
        )


# --------------------------------------------------------------------------- helpers


async def _close_quietly(writer: PartWriter) -> None:
    try:
        await writer.close()
    except Exception:  # the error that got us here is the one to report
        log.debug("closing %s after an error failed", writer.path, exc_info=True)


async def _aiter(items: list[pl.Item]) -> AsyncIterator[pl.Item]:
    for item in items:
        yield item


def _decrypt(data: bytes, key: bytes, item: pl.Item, shown: str) -> bytes:
    """AES-128-CBC with PKCS7 padding over the whole segment (RFC 8216, 5.2)."""
    iv = item.key.iv if item.key is not None and item.key.iv is not None else item.sequence.to_bytes(16, "big")
    try:
        decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        return unpadder.update(plain) + unpadder.finalize()
    except ValueError as exc:
        raise NotAVideoError(
            f"Segment {item.sequence} of {shown} ({len(data)} bytes) does not decrypt with its AES-128 key and IV "
            f"({exc}); the key or the playlist is wrong. Nothing undecryptable was saved."
        ) from exc


def _looks_iso(data: bytes) -> bool:
    return data[4:8] in _ISO_BOXES


def _looks_like_media(data: bytes) -> bool:
    """MPEG-TS, ISO BMFF boxes, packed audio (ID3 / ADTS) or any container vidnb sniffs; not a web page."""
    if not data:
        return False
    if data[0] == 0x47 or _looks_iso(data) or data[:3] == b"ID3":
        return True
    if len(data) > 1 and data[0] == 0xFF and data[1] & 0xF0 == 0xF0:
        return True
    return sniff(data) is not None
