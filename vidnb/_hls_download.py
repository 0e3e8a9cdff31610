"""An HLS download from playlist to one playable file.

The stream's media playlists are fetched by :class:`vidnb._fetch_hls.HlsFetcher`, each
through the download lifecycle into a file of its own. When that is not one file a browser
plays (MPEG-TS segments, or audio in a rendition of its own) and ``remux`` is on, those
files are working files beside the destination, ``<name>.hls.ts`` (and ``<name>.hls.m4a``
or ``.hls.audio.ts``), joined without re-encoding into one MP4 with its index at the front,
which is then moved onto the destination; the working files go only once it is in place.
An interrupted download resumes its segments, then joins.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from . import _files
from ._fetch_hls import HlsFetcher, HlsPlan, HlsSource
from ._options import Options
from ._progress import Tracker, make_reporter
from ._result import DownloadResult, local_file
from ._transfer import existing_result, transfer
from ._urls import name_beside

if TYPE_CHECKING:
    from ._http import Session

__all__ = ["download_hls"]

log = logging.getLogger("vidnb")


async def download_hls(
    url: str, folder: Path, path: Path | None, opts: Options, session: Session, t0: float
) -> DownloadResult:
    """Download the HLS stream at ``url`` into ``path`` (or a file named after it in ``folder``)."""
    if path is not None and path.suffix.lower() in (".m3u8", ".m3u"):
        # A name taken from the playlist's URL (a batch names items that way): the video is
        # named after the playlist, with the extension of what it holds.
        folder, path = path.parent, None
    source = HlsSource(session, opts)
    try:
        plan = await source.plan(url, folder, path)
        final = _joined_name(plan, path, opts)
        if final is None:
            return await _as_served(plan, source, opts, t0)
        return await _joined(plan, final, source, opts, t0)
    finally:
        source.drop_keys()


def _joined_name(plan: HlsPlan, path: Path | None, opts: Options) -> Path | None:
    """Where the joined MP4 goes, or None when the stream's own file is what is wanted."""
    needs_join = plan.video.kind == "ts" or plan.audio is not None
    if not opts.remux or not needs_join:
        return None
    if path is not None and path.suffix.lower() == ".ts":
        return None  # a .ts asked for by name: the bytes as served
    return path if path is not None else name_beside(plan.video.dest, plan.video.dest.stem, ".mp4")


async def _fetch(fetcher: HlsFetcher, plan: HlsPlan, source: HlsSource, opts: Options, t0: float) -> DownloadResult:
    tracker = Tracker(make_reporter(opts.progress), fetcher.dest.name)
    outcome = await transfer(
        fetcher.dest, fetcher, opts, tracker, url=plan.playlist_url, shown_url=fetcher.shown, t0=t0,
        retries=source.retries,
    )
    assert isinstance(outcome, DownloadResult)  # an HLS fetcher never hands off
    return outcome


async def _fetch_all(plan: HlsPlan, source: HlsSource, opts: Options, t0: float) -> tuple[DownloadResult, Path | None]:
    """The video's file and, when the audio comes apart, the audio's."""
    audio = plan.audio
    if audio is None:
        return await _fetch(plan.video, plan, source, opts, t0), None
    if plan.video.live:
        # Both recordings must cover the same minutes of the broadcast: run them side by side.
        _, video = await asyncio.gather(
            _fetch(audio, plan, source, opts, t0), _fetch(plan.video, plan, source, opts, t0)
        )
    else:
        # Audio first: the video appears only once everything it needs is on disk, so a
        # complete video file means a complete pair and a re-run can skip at once.
        await _fetch(audio, plan, source, opts, t0)
        video = await _fetch(plan.video, plan, source, opts, t0)
    return video, audio.dest


async def _as_served(plan: HlsPlan, source: HlsSource, opts: Options, t0: float) -> DownloadResult:
    video, audio = await _fetch_all(plan, source, opts, t0)
    if audio is None:
        return video
    log.info("%s has no audio of its own; its audio is in %s (remux=True joins them into one MP4)", video.path, audio)
    return dataclasses.replace(video, audio=audio)


async def _joined(plan: HlsPlan, final: Path, source: HlsSource, opts: Options, t0: float) -> DownloadResult:
    # The destination's lock is held from the first segment to the move: a second download of
    # the same file waits, then finds it done, and two joins never write one .part.
    lock = _files.DestinationLock(final)
    try:
        if await lock.acquire() and not opts.overwrite:
            return await existing_result(final, plan.playlist_url, None, t0, Tracker(make_reporter(opts.progress)))
        plan.video.dest = name_beside(final, final.stem, f".hls.{plan.video.kind}")
        if plan.audio is not None:
            plan.audio.dest = name_beside(final, final.stem, ".hls" + _audio_suffix(plan.audio.dest))
        video, audio = await _fetch_all(plan, source, opts, t0)
        from ._playable import remux  # PyAV, imported only for what needs it

        started = time.monotonic()
        joined = local_file(video.path)  # the lifecycle's result: always on this disk
        await asyncio.to_thread(remux, joined, final, audio=audio)
        log.info("joined %s%s into %s in %.2f s", joined.name, f" and {audio.name}" if audio else "", final,
                 time.monotonic() - started)
        # The working files go only now that the joined file is in place.
        _files.remove_quietly(joined, *([audio] if audio else []))
    finally:
        lock.release()
    return DownloadResult(
        path=final,
        url=plan.playlist_url,
        size=final.stat().st_size,
        content_type="video/mp4",
        format="mp4",
        elapsed=time.monotonic() - t0,
        attempts=1 + source.retries.retried,
        resumed=video.resumed,
        sha256=video.sha256,
    )


def _audio_suffix(dest: Path) -> str:
    """``.m4a`` or ``.audio.ts``: the audio rendition's own suffixes, kept for the working file."""
    return ".audio.ts" if dest.name.endswith(".audio.ts") else dest.suffix
