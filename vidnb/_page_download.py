"""A web page's video: found by yt-dlp's extractors, fetched and muxed by vidnb.

:func:`vidnb._extract.extract` says what the page shows and which format(s) to take. Each
format is then fetched into a working file beside the destination (``<name>.f<format>.<ext>``)
by the fetcher for its protocol, through the same download lifecycle as any URL (``.part``,
resume, retries, locks):

- a plain file: :class:`~vidnb._fetch_stream.FileFetcher` (one stream or several connections);
- ``m3u8_native``: vidnb's HLS fetcher on the format's media playlist;
- ``http_dash_segments``: :func:`~vidnb._fetch_dash.dash_fetcher`, fragments in order.

Video and audio that come apart are fetched side by side and joined without re-encoding into
one MP4 (PyAV); an HLS or DASH stream on its own is remuxed the same way into an MP4 with its
index at the front; a plain file is moved as it is. The result is verified (``sha256=``) and
moved onto the destination; the working files go once it is in place. The destination's lock
is held from the first byte to the move, and the destination's own ``.part`` is never the
page's: the page's URL and the media's each keep their own resume record.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _files
from ._errors import ChecksumError, NotAVideoError, TooLargeError
from ._extract import MediaFormat, PageMedia, extract
from ._fetch import HandOff
from ._fetch_dash import dash_fetcher
from ._fetch_hls import HlsSource
from ._fetch_stream import FileFetcher
from ._options import Options
from ._progress import ProgressEvent, ProgressReporter, Tracker, make_reporter
from ._result import DownloadResult
from ._transfer import existing_result, transfer
from ._urls import name_beside, redact_url, safe_filename

if TYPE_CHECKING:
    from ._http import Session

__all__ = ["download_page", "file_name"]

log = logging.getLogger("vidnb")

#: What the bar says while yt-dlp reads the page.
FINDING = "finding the video"
_HLS = ("m3u8", "m3u8_native")
_DASH = "http_dash_segments"
#: Extensions of web pages and manifests: never the name of the video saved from one.
_PAGE_SUFFIXES = {".html", ".htm", ".xhtml", ".php", ".asp", ".aspx", ".jsp", ".cgi", ".mpd", ".xml"}


async def download_page(
    url: str, folder: Path, path: Path | None, opts: Options, session: Session, t0: float
) -> DownloadResult:
    """Download the video the page at ``url`` shows into ``path`` (or a file named after its title)."""
    if path is not None and path.suffix.lower() in _PAGE_SUFFIXES:
        # A name taken from the page's URL (a batch names items that way): the video is
        # named after the page's title, with the extension of what it holds.
        folder, path = path.parent, None
    reporter = make_reporter(opts.progress)
    finding = Tracker(reporter, path.name if path is not None else "")
    finding.stage(FINDING)
    try:
        media = await extract(url, opts)
    except BaseException as exc:
        finding.end("cancelled" if isinstance(exc, asyncio.CancelledError) else "failed", str(exc))
        raise
    final = path if path is not None else folder / file_name(media, opts)
    bar = _Combined(reporter, final.name, media.title, len(media.chosen))
    try:
        result = await _fetch_and_join(media, final, opts, session, bar, t0)
    except BaseException as exc:
        bar.end("cancelled" if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt)) else "failed", str(exc))
        raise
    bar.end("done", size=result.size)
    return dataclasses.replace(
        result, page_url=media.page_url, title=media.title, duration=media.duration,
        thumbnail_url=media.thumbnail_url,
    )


def file_name(media: PageMedia, opts: Options) -> str:
    """The page's title, cut and cleaned like a server's file name, with the extension of what is saved."""
    ext = _extension(media, opts)
    return safe_filename((media.title or "video") + ext) or "video" + ext


def _extension(media: PageMedia, opts: Options) -> str:
    if _needs_join(media, opts):
        return ".mp4"
    if media.chosen[0].protocol in _HLS:
        return ".ts"
    ext = media.chosen[0].ext
    return f".{ext}" if ext and ext.isalnum() and len(ext) <= 5 else ".mp4"


def _needs_join(media: PageMedia, opts: Options) -> bool:
    """Whether vidnb writes the file (joins or remuxes) rather than keeping the bytes as served."""
    return opts.remux and (len(media.chosen) > 1 or media.chosen[0].protocol in (*_HLS, _DASH))


async def _fetch_and_join(
    media: PageMedia, final: Path, opts: Options, session: Session, bar: _Combined, t0: float
) -> DownloadResult:
    lock = _files.DestinationLock(final)
    try:
        if await lock.acquire() and not opts.overwrite:
            return await existing_result(final, media.page_url, opts.sha256, t0)
        join = _needs_join(media, opts)
        formats = sorted(media.chosen, key=lambda f: not f.has_video)  # the video first
        works = [_working_file(final, f) for f in formats]
        # The sha256 asked for is the final file's, checked below, not a working file's.
        wopts = dataclasses.replace(opts, sha256=None, overwrite=False)
        try:
            results = await _side_by_side(*(
                _fetch_one(f, w, _options_for(f, wopts), session, Tracker(bar.part(i), w.name), t0, media.page_url)
                for i, (f, w) in enumerate(zip(formats, works, strict=True))
            ))
        except TooLargeError:
            # Over the limit: nothing worth resuming, of any of the formats.
            # Their locks are released by now, and the final file's lock keeps other downloads away.
            for w in works:
                _files.remove_quietly(_files.sidecar_path(w), _files.part_path(w))
            raise
        works = [Path(r.path) for r in results]  # an HLS fetcher may have named its file
        if join:
            from ._playable import remux  # PyAV, imported only for what needs it

            started = time.monotonic()
            # Joined under a working name and checked there: an earlier file at ``final`` stays
            # until the new one is whole and verified.
            joined = name_beside(final, final.stem, ".joined.mp4")
            await asyncio.to_thread(remux, works[0], joined, audio=works[1] if len(works) > 1 else None)
            digest = await _check_sha256(joined, opts)
            await _files.off_loop(os.replace, joined, final)
            log.info("joined %s into %s in %.2f s", " and ".join(w.name for w in works), final.name,
                     time.monotonic() - started)
            _files.remove_quietly(*works)
            kind: tuple[str | None, str | None] = ("video/mp4", "mp4")
        else:
            digest = await _check_sha256(works[0], opts)
            await _files.off_loop(os.replace, works[0], final)
            kind = (results[0].content_type, results[0].format)
    finally:
        lock.release()
    return DownloadResult(
        path=final,
        url=results[0].url,
        size=final.stat().st_size,
        content_type=kind[0],
        format=kind[1],
        elapsed=time.monotonic() - t0,
        attempts=max(r.attempts for r in results),
        resumed=any(r.resumed for r in results),
        sha256=digest,
        audio=works[1] if len(works) > 1 and not join else None,
    )


def _options_for(fmt: MediaFormat, opts: Options) -> Options:
    """The download's options with the headers yt-dlp gives for the format (the caller's win)."""
    return dataclasses.replace(opts, headers={**fmt.headers, **opts.headers})


async def _fetch_one(
    fmt: MediaFormat, dest: Path, fopts: Options, session: Session, tracker: Tracker, t0: float,
    page_url: str,
) -> DownloadResult:
    """One format into the working file ``dest`` through the lifecycle."""
    shown = redact_url(fmt.url)
    if fmt.protocol in _HLS or fmt.protocol == _DASH:
        source = HlsSource(session, fopts)
        try:
            if fmt.protocol == _DASH:
                fetcher = dash_fetcher(source, dest, fmt, page_url)
            else:
                plan = await source.plan(fmt.url, dest.parent, dest)
                fetcher = plan.video
            outcome = await transfer(dest, fetcher, fopts, tracker, url=fmt.url, shown_url=shown, t0=t0,
                                     retries=source.retries)
        finally:
            source.drop_keys()
    else:
        outcome = await transfer(dest, FileFetcher(fmt.url, session, fopts), fopts, tracker, url=fmt.url,
                                 shown_url=shown, t0=t0)
    if isinstance(outcome, HandOff):
        raise NotAVideoError(f"{redact_url(page_url)} points to its video at {shown}, which is not a video file "
                             "but a playlist or a page.")
    return outcome


async def _side_by_side(*coros: Coroutine[Any, Any, DownloadResult]) -> list[DownloadResult]:
    """Run the fetches at once; the first failure cancels the others, and is what is raised."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for t in tasks:
            if t.done() and not t.cancelled() and t.exception() is not None:
                raise t.exception()  # type: ignore[misc]
        return [t.result() for t in tasks]
    finally:
        for t in tasks:
            t.cancel()
        # Each one ends its own way (records saved, writers closed) before this returns.
        await asyncio.gather(*tasks, return_exceptions=True)


async def _check_sha256(path: Path, opts: Options) -> str | None:
    if opts.sha256 is None:
        return None
    digest = await asyncio.to_thread(_files.hash_file, path, None)
    if digest != opts.sha256:
        _files.remove_quietly(path)
        raise ChecksumError(
            f"{path.name}: sha256 is {digest}, expected {opts.sha256}. The download was discarded; check the "
            "expected hash, or the page now serves another video.",
            expected=opts.sha256, actual=digest,
        )
    return digest


def _working_file(final: Path, fmt: MediaFormat) -> Path:
    """The working file of one format: ``<name>.f<format id>.<ext>`` beside ``final``."""
    if fmt.protocol in _HLS:
        ext = "ts"
    elif fmt.protocol == _DASH:
        ext = "mp4" if fmt.has_video else "m4a"
    else:
        ext = fmt.ext if fmt.ext and fmt.ext.isalnum() and len(fmt.ext) <= 5 else "mp4"
    return name_beside(final, final.stem, f".f{fmt.format_id}.{ext}")


class _Combined:
    """One bar for a page's video: its formats' bytes summed, under the final file's name and the page's title."""

    def __init__(self, reporter: ProgressReporter | None, name: str, title: str | None, parts: int) -> None:
        self.reporter = reporter
        self.name = name
        self.title = title
        self.done = [0] * parts
        self.total: list[int | None] = [None] * parts
        self.speed = [0.0] * parts
        self.t0 = time.monotonic()
        self.closed = False

    def part(self, i: int) -> ProgressReporter | None:
        return None if self.reporter is None else _Part(self, i)

    def event(self, state: Any = "running", error: str | None = None) -> ProgressEvent:
        total = None if None in self.total else sum(t for t in self.total if t is not None)
        return ProgressEvent(self.name, sum(self.done), total, sum(self.speed), time.monotonic() - self.t0,
                             state, error, title=self.title)

    def end(self, state: Any, error: str | None = None, size: int | None = None) -> None:
        if self.reporter is None or self.closed:
            return
        self.closed = True
        ev = self.event(state, error)
        if size is not None:
            elapsed = max(ev.elapsed, 1e-9)
            ev = dataclasses.replace(ev, done=size, total=size, speed=size / elapsed)
        self.reporter.close(ev)


class _Part:
    """What one format's tracker reports to: its share of the :class:`_Combined` bar."""

    def __init__(self, bar: _Combined, i: int) -> None:
        self.bar, self.i = bar, i

    def start(self, name: str, total: int | None, initial: int) -> None:
        bar = self.bar
        bar.total[self.i], bar.done[self.i] = total, initial
        assert bar.reporter is not None
        ev = bar.event()
        bar.reporter.start(bar.name, ev.total, ev.done)

    def update(self, event: ProgressEvent) -> None:
        bar = self.bar
        bar.done[self.i], bar.total[self.i], bar.speed[self.i] = event.done, event.total, event.speed
        assert bar.reporter is not None
        bar.reporter.update(bar.event())

    def close(self, event: ProgressEvent) -> None:
        bar = self.bar
        bar.done[self.i], bar.total[self.i], bar.speed[self.i] = event.done, event.total or event.done, 0.0
        if event.state != "done":
            bar.end(event.state, event.error)
