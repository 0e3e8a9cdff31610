"""The download lifecycle, the same for every kind of download.

``exists? -> lock -> fetch (resume record and bytes, by the fetcher) -> verify -> rename -> result``

Like pooch's download-to-a-temp-file-then-move: bytes go to ``<dest>.part`` beside the
destination, are checked (byte count, optional sha256), and only then moved onto ``dest``
with one rename, so ``dest`` never holds a partial or unverified file. The ``.part`` and its
record stay after a failure, so the next attempt, call or process resumes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from . import _files
from ._errors import ChecksumError, IncompleteDownloadError, raise_translated
from ._fetch import Fetched, Fetcher, HandOff, Part
from ._fmt import human_bytes, human_rate
from ._options import Options
from ._progress import Tracker
from ._result import DownloadResult
from ._retry import Retries
from ._sniff import format_from_name, sniff

__all__ = ["transfer", "existing_result"]

log = logging.getLogger("vidnb")


async def transfer(
    dest: Path,
    fetcher: Fetcher,
    opts: Options,
    tracker: Tracker,
    *,
    url: str,
    shown_url: str,
    t0: float,
    retries: Retries | None = None,
) -> DownloadResult | HandOff:
    """Run one download of ``dest`` with ``fetcher``, from the lock to the result.

    Returns a :class:`HandOff` when the fetcher found the body is for another fetcher (the
    lock is released first, so that one can take it). ``retries`` counts the requests tried
    again for ``DownloadResult.attempts`` (pass the one that also counted requests made
    before this call, such as a playlist's).
    """
    log.info("downloading %s -> %s", shown_url, dest)
    tracker.name = dest.name
    lock = _files.DestinationLock(dest)
    retries = retries if retries is not None else Retries(opts.retry)
    try:
        exists = await lock.acquire()
        if exists and not opts.overwrite:
            return await existing_result(dest, url, opts.sha256, t0, tracker)
        part = Part(dest, lock, opts, tracker, retries)
        outcome = await fetcher.fetch(part)
        if isinstance(outcome, HandOff):
            return outcome
        digest = await _verify(part, outcome, shown_url)
        record = _files.sidecar_path(dest) if part.recorded else None
        try:
            await _files.fs_call(dest.parent, _files.finish_part, part.path, dest, opts.overwrite, record)
        except OSError as exc:
            raise_translated(exc, path=dest)
        lock.moved = True
        result = DownloadResult(
            path=dest,
            url=outcome.url,
            size=outcome.size,
            content_type=outcome.content_type,
            format=outcome.format,
            elapsed=time.monotonic() - t0,
            attempts=1 + retries.retried,
            resumed=outcome.resumed,
            sha256=digest,
        )
        tracker.end("done")
        _log_done(result)
        return result
    except (asyncio.CancelledError, KeyboardInterrupt):
        tracker.end("cancelled")
        log.info("download of %s cancelled; %s kept for resuming", shown_url, _files.part_path(dest))
        raise
    except BaseException as exc:
        tracker.end("failed", str(exc))
        # INFO, not ERROR: the caller gets the exception; DownloadTask logs unobserved failures.
        log.info("download of %s failed: %s", shown_url, exc)
        raise
    finally:
        lock.release()


async def _verify(part: Part, fetched: Fetched, shown_url: str) -> str | None:
    """Check the byte count and the sha256; a mismatch discards the ``.part``."""
    if fetched.expected_size is not None and fetched.size != fetched.expected_size:
        raise IncompleteDownloadError(
            f"{shown_url} sent {fetched.size} of {fetched.expected_size} bytes. "
            "The partial file is kept; run the same call again to resume.",
            received=fetched.size,
            expected=fetched.expected_size,
        )
    expected = part.opts.sha256
    if expected is None:
        return None
    digest = fetched.sha256
    if digest is None:
        # Pieces that arrived out of order, or a fetcher that does not hash: from the file, off the loop.
        digest = await asyncio.to_thread(_files.hash_file, part.path, None)
    if digest != expected:
        part.discard()
        raise ChecksumError(
            f"{shown_url}: sha256 is {digest}, expected {expected}. The download was discarded; "
            "check the expected hash, or the server sent different bytes.",
            expected=expected,
            actual=digest,
        )
    return digest


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
    fmt = sniff(_files.read_head(path)) or format_from_name(path.name)
    log.info("%s is already there (%s); not downloading again", path, human_bytes(size))
    if tracker is not None:
        tracker.begin(path.name, size, size)
        tracker.end("done")
    return DownloadResult(
        path, url, size, None, fmt.name if fmt else None, time.monotonic() - t0, attempts=0, skipped=True, sha256=digest
    )


def _log_done(result: DownloadResult) -> None:
    if not log.isEnabledFor(logging.INFO):
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
