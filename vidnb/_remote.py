"""A download whose destination is on object storage: local ``.part`` first, verified, then one whole upload.

``download(url, "s3://bucket/videos/a.mp4")`` runs the ordinary download into a staging
file on the local disk (``tmp_dir``, else the system's temp folder; free space is checked
there as for any download), so resume, retries, locking and the sha256 check are the
engine's own. The staging path is derived from the destination URL, so a rerun on the same
machine resumes the same ``.part``. The verified file is then uploaded so that the object
appears whole or not at all (:mod:`vidnb._storage`, :mod:`vidnb._storage_s3`), with its
sha256 in the object's metadata, and removed locally. If the upload fails, the local file
stays and the next run uploads it without fetching anything.

An existing object is returned as it is (``skipped=True``) without any request to the video
server, unless ``overwrite=True``; then the old object stays until the new one is whole.
A batch lists each destination folder once (:func:`prepare_batch`) instead of asking for
every object.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import _files
from ._errors import ChecksumError
from ._fmt import human_bytes, human_rate
from ._options import Options
from ._progress import Tracker, make_reporter
from ._result import DownloadResult
from ._sniff import format_from_name
from ._storage import FsspecStorage, Storage, filesystem, is_folder_url, join_url, protocol_of, storage_error
from ._storage_s3 import S3_PROTOCOLS, S3Storage

__all__ = [
    "open_storage",
    "staging_folder",
    "download_remote",
    "listed_result",
    "prepare_batch",
    "check_writable",
    "STAGING",
]

log = logging.getLogger("vidnb")

#: The folder, inside ``tmp_dir`` or the system's temp folder, that holds the local files of remote destinations.
STAGING = "vidnb-staging"

#: Fetches the video to the local path or folder it is given (the engine, bound to the URL and options).
FetchLocal = Callable[[str], Awaitable[DownloadResult]]


def open_storage(url: str, options: Mapping[str, Any]) -> tuple[Storage, str]:
    """The :class:`~vidnb._storage.Storage` for ``url`` and the path in it (importing fsspec and s3fs now)."""
    fs, path = filesystem(url, options)
    storage: Storage = S3Storage(fs) if protocol_of(url) in S3_PROTOCOLS else FsspecStorage(fs)
    return storage, str(path)


def staging_folder(folder_url: str, opts: Options) -> Path:
    """The local folder for the files of ``folder_url``: the same on every run, one per folder URL.

    Only the URL counts, not the storage options: a rotated key, or the same store reached through
    another endpoint, must still find its ``.part``.
    """
    digest = hashlib.sha256(folder_url.rstrip("/").encode()).hexdigest()[:16]
    return Path(opts.tmp_dir or tempfile.gettempdir()).expanduser() / STAGING / digest


async def download_remote(
    url: str, target: str, opts: Options, fetch_local: FetchLocal, t0: float, *, absent: bool = False
) -> DownloadResult:
    """Download ``url`` to the object ``target`` (or into the folder URL ``target``), as described above.

    ``absent``: a listing has just shown there is no such object (a batch), so it is not asked again.

    Examples
    --------
    >>> result = await download_remote(url, "s3://bucket/videos/", make_options(),
    ...                                lambda p: download_with(url, p, opts), time.monotonic())  # doctest: +SKIP
    """
    storage, root = await asyncio.to_thread(open_storage, target, opts.storage_options)
    if is_folder_url(target):
        # The server names the file: it is known only once the download has answered.
        local = await fetch_local(str(staging_folder(target, opts)) + "/")
        name = Path(local.path).name
        dest, path = join_url(target, name), f"{root.rstrip('/')}/{name}"
        if not opts.overwrite:
            found = await _existing(storage, path, dest, url, opts, t0)
            if found is not None:
                _files.remove_quietly(Path(local.path))
                return found
    else:
        dest, path = target, root
        if not opts.overwrite and not absent:
            found = await _existing(storage, path, dest, url, opts, t0)
            if found is not None:
                return found
        parent, _, name = target.rpartition("/")
        local = await fetch_local(str(staging_folder(parent, opts) / name))
    return await _upload(storage, local, dest, path, opts, t0)


async def _existing(
    storage: Storage, path: str, dest: str, url: str, opts: Options, t0: float
) -> DownloadResult | None:
    """The result for an object that is already there (checked against ``sha256=``), or None."""
    found = await asyncio.to_thread(storage.info, path)
    if found is None:
        return None
    digest: str | None = None
    if opts.sha256 is not None:
        # Recorded by vidnb when it wrote the object; else read the object (no request to the video server).
        actual = found.sha256
        if actual is None:
            actual = await asyncio.to_thread(storage.sha256, path)
        if actual != opts.sha256:
            raise ChecksumError(
                f"{dest} already exists but its sha256 is {actual}, not {opts.sha256}. "
                "Pass overwrite=True to download it again.",
                expected=opts.sha256,
                actual=actual,
            )
        digest = actual
    log.info("%s is already there (%s); not downloading again", dest, human_bytes(found.size))
    name = dest.rpartition("/")[2]
    tracker = Tracker(make_reporter(opts.progress), name)
    tracker.begin(name, found.size, found.size)
    tracker.end("done")
    result = listed_result(url, dest, found.size, t0, opts.storage_options, fmt=found.format)
    return replace(result, sha256=digest)


async def _upload(
    storage: Storage, local: DownloadResult, dest: str, path: str, opts: Options, t0: float
) -> DownloadResult:
    staged = Path(local.path)
    t_up = time.monotonic()
    # The engine hashes only when sha256= was given; the object's metadata always gets one.
    digest = local.sha256
    if digest is None:
        digest = await asyncio.to_thread(_files.hash_file, staged, None)
    log.info("uploading %s (%s) -> %s", staged.name, human_bytes(local.size), dest)
    try:
        await asyncio.to_thread(storage.upload, staged, path, digest, local.format)
        audio: Path | str | None = local.audio
        if local.audio is not None:
            extra = Path(local.audio)
            audio_path = f"{path.rpartition('/')[0]}/{extra.name}"
            extra_digest = await asyncio.to_thread(_files.hash_file, extra, None)
            await asyncio.to_thread(storage.upload, extra, audio_path, extra_digest, None)
            audio = join_url(dest.rpartition("/")[0], extra.name)
            _files.remove_quietly(extra)
    except Exception as exc:
        err = storage_error(exc, dest, "write")
        log.info("upload of %s failed (%s); %s is kept, so the next run uploads it without downloading", dest,
                 exc, staged)  # fmt: skip
        if err is None or err is exc:
            raise
        raise err from exc
    _files.remove_quietly(staged)
    elapsed = time.monotonic() - t_up
    log.info("uploaded %s in %.2f s (%s)", dest, elapsed, human_rate(local.size / max(elapsed, 1e-9)))
    return replace(
        local,
        path=dest,
        audio=audio,
        elapsed=time.monotonic() - t0,
        # A staged file finished by an earlier run is uploaded now: kept bytes, not a skip.
        resumed=local.resumed or local.skipped,
        skipped=False,
        storage_options=dict(opts.storage_options),
    )


def listed_result(
    url: str, dest: str, size: int, t0: float, options: Mapping[str, Any], fmt: str | None = None
) -> DownloadResult:
    """The result of an object found already there (``skipped=True``, nothing fetched).

    Examples
    --------
    >>> listed_result("https://example.com/a.mp4", "s3://b/a.mp4", 10, time.monotonic(), {}).skipped
    True
    """
    if fmt is None:
        known = format_from_name(dest.rpartition("/")[2])
        fmt = known.name if known else None
    return DownloadResult(
        dest, url, size, None, fmt, time.monotonic() - t0, attempts=0, skipped=True, storage_options=dict(options)
    )


def prepare_batch(folder_url: str, opts: Options, dests: list[str]) -> dict[str, int]:
    """Before a batch into ``folder_url``: one listing of it (URL -> size of every object there), and the
    multipart uploads that crashed runs left for the batch's objects aborted.

    Blocking (call it in a thread). Examples
    --------
    >>> done = prepare_batch("s3://bucket/videos/", make_options(), ["s3://bucket/videos/a.mp4"])  # doctest: +SKIP
    """
    storage, root = open_storage(folder_url, opts.storage_options)
    listed = storage.listing(root)
    base = root.rstrip("/")
    paths = [f"{base}/{d[len(folder_url.rstrip('/')) :].lstrip('/')}" for d in dests]
    aborted = storage.abort_orphans(base, paths)
    if aborted:
        log.info("aborted %d unfinished upload%s left in %s", aborted, "" if aborted == 1 else "s", folder_url)
    return {join_url(folder_url, rel): size for rel, size in listed.items()}


def check_writable(folder_url: str, options: Mapping[str, Any]) -> str | None:
    """None when a small object can be written under ``folder_url`` and deleted, else why not (for messages)."""
    try:
        storage, root = open_storage(folder_url, options)
        storage.check_writable(root)
    except Exception as exc:  # noqa: BLE001 - reported per worker, with its type
        return f"{type(exc).__name__}: {exc}"
    return None
