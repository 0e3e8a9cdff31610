"""HLS (.m3u8) streams into one playable file, without ffmpeg, the way yt-dlp's native downloader does.

Two parts:

- :class:`HlsSource` reads the playlists: from a master playlist it chooses a variant (and its
  default audio rendition when the audio is not in the video segments), refuses what cannot
  give a playable file before anything is written (SAMPLE-AES and other encryption, live
  streams unless ``live_duration`` says how much to record), fetches keys once, and fetches
  any one resource (playlist, key, segment) with retries. :meth:`HlsSource.plan` says which
  media playlist goes to which destination.
- :class:`HlsFetcher` is the fetcher of one media playlist: up to ``connections`` segments at
  once, each retried on its own, AES-128 decrypted, appended *in order* to the ``.part``
  (MPEG-TS segments concatenate into a ``.ts``, fMP4 init section + fragments into an
  ``.mp4``). The resume record (kind ``"hls"``) lists the items on disk and where they end
  (at most once a second, and whenever the download stops), so an interrupted download
  resumes at the first missing segment.

The lock, the final check and the rename are the lifecycle's (:mod:`vidnb._transfer`).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from . import _files, _http
from . import _hls_playlist as pl
from ._errors import IncompleteDownloadError, LiveStreamError, NotAVideoError, TooLargeError, UnsupportedEncryptionError
from ._fetch import Fetched, Part
from ._fetch_ranges import SAVE_EVERY
from ._fmt import human_bytes
from ._options import Options
from ._retry import Retries
from ._sniff import describe_non_video, sniff
from ._urls import redact_url
from ._writer import PartWriter

__all__ = ["HlsSource", "HlsPlan", "HlsFetcher", "MAX_PLAYLIST_BYTES"]

log = logging.getLogger("vidnb")

#: A playlist larger than this is not a playlist (a video served with the wrong name, say).
MAX_PLAYLIST_BYTES = 16 << 20
#: A live playlist that brings nothing new for this many target durations has stalled.
LIVE_STALL_TARGETS = 6

_MIME = {"ts": "video/mp2t", "mp4": "video/mp4"}
_ISO_BOXES = {b"ftyp", b"styp", b"moof", b"moov", b"sidx", b"emsg", b"prft", b"free", b"skip", b"mdat"}


@dataclass(frozen=True)
class HlsPlan:
    """Which media playlist goes where: the video, and the separate audio rendition if any."""

    playlist_url: str
    video: HlsFetcher
    audio: HlsFetcher | None


class HlsSource:
    """The playlists, keys and resources of one HLS download, fetched with the download's retries."""

    def __init__(self, session: _http.Session, opts: Options) -> None:
        self.session = session
        self.opts = opts
        self.retries = Retries(opts.retry)
        self._keys: dict[str, asyncio.Task[bytes]] = {}

    # ------------------------------------------------------------------ playlists

    async def plan(self, url: str, folder: Path, path: Path | None) -> HlsPlan:
        """Read the playlist at ``url`` (master or media) and say what to fetch into which file.

        Without ``path`` the file is named after the playlist (``talk.m3u8`` -> ``talk.ts``
        in ``folder``); a path given is kept whatever its extension.
        """
        shown = redact_url(url)
        log.info("downloading HLS stream %s -> %s", shown, path or f"{folder}/")
        text, final_url = await self.fetch_text(url)
        playlist = pl.parse(text, final_url)
        media, media_url = playlist, final_url
        bandwidth = 0
        audio_url: str | None = None
        if playlist.is_variant:
            chosen, warning = pl.choose_variant(playlist, self.opts.quality)
            self._report_renditions(playlist, chosen, final_url)
            if warning:
                log.warning("%s: %s", shown, warning)
            bandwidth = int(chosen.stream_info.bandwidth or chosen.stream_info.average_bandwidth or 0)
            audio = pl.default_audio(playlist, chosen)
            if audio is not None:
                audio_url = urljoin(final_url, audio.uri)
            text, media_url = await self.fetch_text(urljoin(final_url, chosen.uri))
            media = pl.parse(text, media_url)
            if media.is_variant:
                raise NotAVideoError(f"{redact_url(media_url)} is a master playlist inside a master playlist.")
        live = self._check_media(media, media_url, shown)
        kind = pl.container(media)
        dest = path if path is not None else folder / pl.output_name(final_url, kind)
        video = HlsFetcher(self, dest, media, media_url, kind, live, bandwidth, final_url)
        audio_fetcher = None
        if audio_url is not None:
            text, final = await self.fetch_text(audio_url)
            audio_media = pl.parse(text, final)
            audio_live = self._check_media(audio_media, final, redact_url(final), audio=True)
            audio_kind = pl.container(audio_media)
            audio_dest = dest.with_name(pl.output_name(final, audio_kind, audio=True, stem=dest.stem))
            log.info("the chosen stream's audio is a separate rendition; saving it to %s", audio_dest)
            audio_fetcher = HlsFetcher(self, audio_dest, audio_media, final, audio_kind, audio_live, 0, final_url)
        return HlsPlan(final_url, video, audio_fetcher)

    def _check_media(self, media: Any, url: str, shown: str, *, audio: bool = False) -> bool:
        """Refuse encryption vidnb cannot undo and live streams without ``live_duration``; return whether live."""
        pl.check_encryption(media, url)
        live = pl.is_live(media)
        if live and self.opts.live_duration is None:
            if audio:
                raise LiveStreamError(
                    f"The audio of this stream ({shown}) is live; pass live_duration=SECONDS to record it."
                )
            raise LiveStreamError(
                f"{shown} is a live HLS stream (its playlist has no EXT-X-ENDLIST), so there is no whole video "
                "to save. Pass live_duration=SECONDS to record that much of it."
            )
        return live

    def drop_keys(self) -> None:
        """Cancel key fetches nobody needs any more; mark failures as seen."""
        for task in self._keys.values():
            if not task.done():
                task.cancel()
            elif not task.cancelled():
                task.exception()  # mark a failure as seen: every segment that needed it has reported it

    def _report_renditions(self, master: Any, chosen: Any, url: str) -> None:
        variants = ", ".join(pl.describe_variant(v) for v in master.playlists)
        n = len(master.playlists)
        log.info("%s offers %d stream%s: %s; chose %s", redact_url(url), n, "" if n == 1 else "s", variants,
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
        failures = 0
        counted = [0]

        def count(k: int) -> None:
            counted[0] += k
            if on_bytes is not None:
                on_bytes(k)

        while True:
            counted[0] = 0
            try:
                return await self._get(url, byterange, count)
            except Exception as exc:
                if on_bytes is not None and counted[0]:
                    on_bytes(-counted[0])  # those bytes will come again
                # A resource is fetched whole each time, so a failure keeps nothing: they all count.
                failures += 1
                await self.retries.wait(exc, failures, what=what, url=redact_url(url))

    async def _get(
        self, url: str, byterange: tuple[int, int] | None, count: Callable[[int], None]
    ) -> tuple[bytes, str, str | None]:
        asked = None if byterange is None else (byterange[0], byterange[0] + byterange[1] - 1)
        async with _http.get(self.session, url, self.opts.headers, self.opts.timeout, byte_range=asked) as resp:
            final = str(resp.url)
            body = bytearray()
            async for chunk in _http.body(resp, self.opts.limiter):
                body += chunk
                count(len(chunk))
                # One resource larger than the whole limit: stop now rather than hold it in memory.
                # (A server ignoring Range may send a big file legitimately; the range is cut below.)
                if self.opts.max_bytes is not None and byterange is None and len(body) > self.opts.max_bytes:
                    raise TooLargeError(
                        f"{redact_url(final)} alone is more than max_bytes={self.opts.max_bytes} "
                        f"({human_bytes(self.opts.max_bytes)}); stopped. Raise max_bytes to download it.",
                        limit=self.opts.max_bytes,
                    )
            expected = resp.content_length
            if expected is not None and len(body) != expected:
                raise IncompleteDownloadError(
                    f"{redact_url(final)} sent {len(body)} of {expected} bytes.", len(body), expected
                )
            if byterange is not None:
                body = _cut_range(body, byterange, resp, final)
            return bytes(body), final, resp.headers.get("Content-Type")


def _cut_range(body: bytearray, byterange: tuple[int, int], resp: _http.Response, url: str) -> bytearray:
    """The requested range out of a 206 (checked) or a 200 with the whole file (a server ignoring Range)."""
    offset, length = byterange
    if resp.status == 206:
        if not _http.continues(resp, offset).ok:
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


# --------------------------------------------------------------------------- one media playlist


class HlsFetcher:
    """The fetcher of one media playlist into one destination file."""

    def __init__(
        self,
        source: HlsSource,
        dest: Path,
        media: Any,
        media_url: str,
        kind: str,
        live: bool,
        bandwidth: int,
        playlist_url: str,
        items: list[pl.Item] | None = None,
    ) -> None:
        self.source = source
        self.items = items  # DASH fragments, instead of the playlist's segments
        #: The URL the download was asked for, after redirects (the master playlist's, if any).
        self.playlist_url = playlist_url
        self.opts = source.opts
        self.dest = dest
        self.media = media
        self.media_url = media_url
        self.kind = kind
        self.live = live
        self.bandwidth = bandwidth
        self.shown = redact_url(media_url)
        self.part: Part | None = None
        self.pos = 0  # bytes of the .part that are in order and complete
        self.records: list[list[int]] = []  # [start, end, length] per item on disk
        #: Records appended since the record file was last written, and when it is next due.
        self._unsaved = False
        self._next_save = 0.0
        self.fingerprint: str | None = None
        self.seconds = 0.0  # media seconds on disk
        self.total_seconds = 0.0
        self.segments_done = 0
        self.exact = False  # the total size is known up front (every item has a byte range)
        self.hasher: Any = None
        self.resumed = False

    @property
    def tracker(self) -> Any:
        assert self.part is not None
        return self.part.tracker

    async def fetch(self, part: Part) -> Fetched:
        self.part = part
        writer: PartWriter | None = None
        try:
            if self.live:
                items: list[pl.Item] = []
                part.discard()
            else:
                items = self.items or list(pl.with_init_sections(pl.segments(self.media, self.media_url)))
                if not items:
                    raise NotAVideoError(f"The HLS playlist {self.shown} lists no segments.")
                await self._resume_or_start(part, items)
            self.total_seconds = (self.opts.live_duration or 0.0) if self.live else sum(i.duration for i in items)
            known = [i.byterange[1] for i in items if i.byterange is not None]
            # Encrypted segments shrink by their padding, so only plain byte ranges give exact sizes.
            self.exact = bool(items) and len(known) == len(items) and not any(i.key for i in items)
            if self.exact:
                self._check_size(sum(known))
                _files.check_free_space(self.dest, sum(known) - self.pos)
            self.tracker.begin(self.dest.name, sum(known) if self.exact else self._estimate(), self.pos)
            if self.opts.sha256 is not None:
                self.hasher = hashlib.sha256()
                if self.pos:
                    await asyncio.to_thread(_files.hash_file, part.path, self.pos, self.hasher)
            writer = PartWriter(part.path, truncate=self.pos == 0, hasher=self.hasher)
            source = self._live_items() if self.live else _aiter(items[len(self.records) :])
            await self._pipeline(source, writer)
            w, writer = writer, None
            await w.close()
            self._unsaved = False  # the records go with the finished file
            if self.pos == 0:
                raise NotAVideoError(f"{self.shown} gave no media bytes.")
            # The bar counted bytes fetched (padding, whole files from servers ignoring Range);
            # it ends on the bytes written.
            self.tracker.done = self.tracker.total = self.pos
            log.info("%s: %d segments, %.1f s of media", self.dest.name, self.segments_done, self.seconds)
            return Fetched(
                self.pos, self.playlist_url, _MIME[self.kind], self.kind, resumed=self.resumed,
                sha256=self.hasher.hexdigest() if self.hasher is not None else None,
            )
        except BaseException as exc:
            if writer is not None:
                w, writer = writer, None
                await _close_quietly(w)
            if isinstance(exc, TooLargeError):
                self._unsaved = False
                part.discard()  # over the limit: nothing worth resuming
            raise
        finally:
            if writer is not None:
                await _close_quietly(writer)
            if self._unsaved:
                # Stopped early (error, cancel): the segments on disk stay resumable. Written
                # after the writer closed, and only for segments the file holds: a close cut
                # short by a second cancel leaves queued bytes unwritten.
                part.save_record(self._state(upto=part.size()))

    # ------------------------------------------------------------------ resume

    async def _resume_or_start(self, part: Part, items: list[pl.Item]) -> None:
        """Keep the in-order prefix of segments an earlier run left on disk, if it is the same stream."""
        fp = pl.fingerprint(items)
        kept: list[list[int]] = []
        state = await part.load_record()
        size = part.size()
        if state is not None and state.kind == "hls" and state.url == self.media_url and state.fingerprint == fp:
            # The record may be ahead of the disk (the writer thread had not written yet when
            # the process died): keep only records the file really holds.
            for rec in (state.segments or [])[: len(items)]:
                if rec[0] == (kept[-1][1] if kept else 0) and rec[1] <= size:
                    kept.append(list(rec))
                else:
                    break
        if kept and not await self._same_as_on_disk(part, items[len(kept) - 1], kept[-1]):
            log.info("%s: its last segment on disk differs from the server's now; starting again", self.dest.name)
            kept = []
        if kept:
            self.pos = kept[-1][1]
            os.truncate(part.path, self.pos)
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
            part.discard()
        self.fingerprint = fp
        await part.save_record_async(self._state())
        self._next_save = time.monotonic() + SAVE_EVERY

    async def _same_as_on_disk(self, part: Part, item: pl.Item, rec: list[int]) -> bool:
        """Fetch the last item kept from an earlier run again and compare it with the disk: the
        playlist's fingerprint says the list is the same, this says the bytes are."""
        fetched = await self._fetch_item(item, asyncio.Semaphore(1))
        start, end = rec[0], rec[1]
        return fetched == await asyncio.to_thread(_files.read_at, part.path, start, end - start)

    def _state(self, upto: int | None = None) -> _files.PartState:
        kept = self.records if upto is None else [r for r in self.records if r[1] <= upto]
        return _files.PartState(url=self.media_url, kind="hls", segments=kept, fingerprint=self.fingerprint)

    # ------------------------------------------------------------------ fetching in order

    async def _pipeline(self, source: AsyncIterator[pl.Item], writer: PartWriter) -> None:
        """Fetch up to ``connections`` items at once; append them strictly in playlist order.

        At most twice ``connections`` items are in flight or waiting in memory, so a slow
        segment holds back only a bounded amount of finished ones.
        """
        sem = asyncio.Semaphore(self.opts.segments_at_once)
        window = 2 * self.opts.segments_at_once
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
            data, _, ctype = await self.source.fetch(item.url, item.byterange, what=what, on_bytes=self.tracker.advance)
        if item.key is not None and not (item.kind == "init" and _looks_iso(data)):
            data = _decrypt(data, await self.source.key(item.key.uri), item, self.shown)
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
                assert self.part is not None
                await self.part.save_record_async(self._state())
                self._unsaved, self._next_save = False, time.monotonic() + SAVE_EVERY
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
        limit = self.opts.max_bytes
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
        target = float(self.media.target_duration or 6)
        wanted = self.opts.live_duration or 0.0
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
                        "%s: segments %d to %d left the live playlist before they were fetched; "
                        "the recording skips them",
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
            text, _ = await self.source.fetch_text(self.media_url)
            media = pl.parse(text, self.media_url)
            pl.check_encryption(media, self.media_url)

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
