"""Everything vidnb keeps on disk beside a destination while it downloads.

For ``clip.mp4`` these are ``clip.mp4.part`` (the bytes so far), ``clip.mp4.part.json``
(what is needed to resume them safely: URL, validators, size) and ``clip.mp4.part.lock``
(held while a download of that destination runs, by any process). Bytes reach the
``.part`` through :class:`PartWriter`, whose thread writes while the event loop reads the
network; the finished file is moved into place with one rename.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import json
import logging
import os
import queue
import shutil
import threading
from pathlib import Path
from typing import Any

import aiofiles
import aiofiles.os

from ._errors import DestinationError
from ._fmt import human_bytes

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("vidnb")

PART_SUFFIX = ".part"


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + PART_SUFFIX)


def sidecar_path(dest: Path) -> Path:
    return dest.with_name(dest.name + PART_SUFFIX + ".json")


def lock_path(dest: Path) -> Path:
    return dest.with_name(dest.name + PART_SUFFIX + ".lock")


# --------------------------------------------------------------------------- sidecar


@dataclasses.dataclass
class PartState:
    """What a ``.part`` file holds and how to check the server still has the same bytes."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    total: int | None = None
    #: For multi-connection downloads: ``[start, end_exclusive, done]`` per segment.
    segments: list[list[int]] | None = None

    @property
    def validator(self) -> str | None:
        """The value for ``If-Range``: a strong ETag, else Last-Modified (weak ETags are not allowed there)."""
        if self.etag and not self.etag.startswith("W/"):
            return self.etag
        return self.last_modified


async def load_state(dest: Path) -> PartState | None:
    try:
        async with aiofiles.open(sidecar_path(dest), "r", encoding="utf-8") as f:
            raw = json.loads(await f.read())
        return PartState(**{k: raw.get(k) for k in ("url", "etag", "last_modified", "total", "segments")})
    except (OSError, ValueError, TypeError):
        # A missing or damaged sidecar only means we cannot resume: start again.
        return None


async def save_state(dest: Path, state: PartState) -> None:
    path = sidecar_path(dest)
    tmp = path.with_name(path.name + ".tmp")
    async with aiofiles.open(tmp, "w", encoding="utf-8") as f:
        await f.write(json.dumps(dataclasses.asdict(state)))
    await aiofiles.os.replace(tmp, path)


def remove_quietly(*paths: Path) -> None:
    for p in paths:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def discard_part(dest: Path) -> None:
    """Forget a ``.part`` that must not be resumed (wrong bytes, refused content)."""
    remove_quietly(part_path(dest), sidecar_path(dest))


# --------------------------------------------------------------------------- lock


class DestinationLock:
    """An exclusive lock on one destination, held across processes.

    ``flock`` locks belong to an open file description, so two downloads in one
    process exclude each other exactly like two processes do. The lock file is
    removed on release; a waiter that then locks the removed inode notices (its
    inode differs from the path's) and tries again.
    """

    def __init__(self, dest: Path) -> None:
        self.path = lock_path(dest)
        self._fd: int | None = None

    async def acquire(self, poll: float = 0.05) -> None:
        told = False
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            if _try_lock(fd):
                try:
                    same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
                except FileNotFoundError:
                    same = False
                if same:
                    self._fd = fd
                    return
            os.close(fd)
            if not told:
                log.info("waiting for another download of %s to finish", self.path.name[: -len(".part.lock")])
                told = True
            # Another download holds it; it may take minutes, so poll gently.
            await asyncio.sleep(poll)
            poll = min(poll * 2, 0.5)

    def release(self) -> None:
        if self._fd is None:
            return
        remove_quietly(self.path)
        os.close(self._fd)  # closing drops the flock
        self._fd = None


def _try_lock(fd: int) -> bool:
    if fcntl is None:
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


# --------------------------------------------------------------------------- space and moves


def check_free_space(dest: Path, needed: int | None) -> None:
    """Fail before downloading when the disk clearly cannot hold ``needed`` more bytes."""
    if not needed:
        return
    try:
        free = shutil.disk_usage(dest.parent).free
    except OSError:
        return
    if needed > free:
        raise DestinationError(
            f"Not enough space for {dest}: it needs {human_bytes(needed)} more, "
            f"the disk has {human_bytes(free)} free. Free some space or choose another folder.",
            dest,
            needed,
        )


def move_into_place(part: Path, dest: Path, *, overwrite: bool) -> None:
    """Rename the finished ``.part`` to ``dest`` in one step, never clobbering unless asked."""
    if overwrite:
        os.replace(part, dest)
        return
    try:
        # link() fails if dest exists, so nothing that appeared meanwhile is replaced.
        os.link(part, dest)
    except FileExistsError:
        raise DestinationError(
            f"{dest} appeared while downloading and overwrite=False; the download is kept in {part}. "
            "Remove the file or pass overwrite=True.",
            dest,
        ) from None
    except OSError:
        # Filesystems without hard links: check, then rename (a small window, but no partial file).
        if dest.exists():
            raise DestinationError(f"{dest} already exists; pass overwrite=True to replace it.", dest) from None
        os.replace(part, dest)
        return
    os.unlink(part)


# --------------------------------------------------------------------------- writer


class PartWriter:
    """Writes byte chunks at given offsets of one file from a dedicated thread.

    The event loop hands over each chunk (no copy, no await) and goes back to the
    network while this thread writes: on a 2-core machine reading and writing then
    overlap instead of taking turns. Contiguous chunks are written with one
    ``pwritev``. The loop waits only when more than ``max_backlog`` bytes are queued,
    so memory stays flat whatever the file size. An optional hash object is fed the
    chunks in order (``hashlib`` releases the GIL, so this is nearly free).
    """

    def __init__(self, path: Path, *, truncate: bool, hasher: Any = None, max_backlog: int = 32 << 20) -> None:
        self.path = path
        self.hasher = hasher
        self.max_backlog = max_backlog
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if truncate else 0) | getattr(os, "O_BINARY", 0)
        self._fd = os.open(path, flags, 0o644)
        self._queue: queue.SimpleQueue[tuple[int, bytes] | None] = queue.SimpleQueue()
        self._queued = 0
        self._written = 0
        self._error: BaseException | None = None
        self._loop = asyncio.get_running_loop()
        self._waiter: asyncio.Future[None] | None = None
        self._thread = threading.Thread(target=self._run, name=f"vidnb-writer-{path.name}", daemon=True)
        self._thread.start()

    def preallocate(self, size: int) -> None:
        """Give the file its final size up front (for writes at scattered offsets)."""
        os.ftruncate(self._fd, size)

    async def write(self, offset: int, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put((offset, data))
        self._queued += len(data)
        if self._queued - self._written > self.max_backlog:
            await self._wait_for_room()

    async def _wait_for_room(self) -> None:
        self._waiter = self._loop.create_future()
        # Re-check after publishing the waiter: the thread may have caught up in between.
        if self._queued - self._written <= self.max_backlog // 2 or self._error is not None:
            self._waiter = None
        else:
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self._error is not None:
            raise self._error

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _run(self) -> None:
        q = self._queue
        while True:
            item = q.get()
            if item is None:
                return
            if self._error is not None:
                continue  # drain until the sentinel; the loop raises the error
            offset, data = item
            bufs = [data]
            end = offset + len(data)
            stop = False
            # Gather what is already queued and contiguous into one syscall.
            while len(bufs) < 64:
                try:
                    nxt = q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                if nxt[0] != end:
                    self._flush(offset, bufs)
                    offset, bufs, end = nxt[0], [], nxt[0]
                bufs.append(nxt[1])
                end += len(nxt[1])
            self._flush(offset, bufs)
            if stop:
                return

    def _flush(self, offset: int, bufs: list[bytes]) -> None:
        if not bufs or self._error is not None:
            return
        try:
            if self.hasher is not None:
                for b in bufs:
                    self.hasher.update(b)
            _pwritev_all(self._fd, bufs, offset)
        except BaseException as exc:  # noqa: BLE001 - handed to the loop thread, which raises it
            self._error = exc
        self._written += sum(len(b) for b in bufs)
        if self._waiter is not None and (
            self._queued - self._written <= self.max_backlog // 2 or self._error is not None
        ):
            self._loop.call_soon_threadsafe(self._wake)

    async def close(self) -> None:
        """Write everything queued, stop the thread and close the file; raise a write error if one happened."""
        if self._fd < 0:
            return
        self._queue.put(None)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
        os.close(self._fd)
        self._fd = -1
        if self._error is not None:
            raise self._error

    def close_now(self) -> None:
        """Blocking close for cleanup paths that cannot await (the thread finishes what is queued)."""
        if self._fd < 0:
            return
        self._queue.put(None)
        self._thread.join()
        os.close(self._fd)
        self._fd = -1


def _pwritev_all(fd: int, bufs: list[bytes], offset: int) -> None:
    pwritev = getattr(os, "pwritev", None)
    if pwritev is None:  # Windows, older macOS
        for b in bufs:
            _pwrite_all(fd, b, offset)
            offset += len(b)
        return
    total = sum(len(b) for b in bufs)
    n = pwritev(fd, bufs, offset)
    if n < total:
        # Short writes are rare (signals, some filesystems); finish the rest plainly.
        _pwrite_all(fd, b"".join(bufs)[n:], offset + n)


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        if hasattr(os, "pwrite"):
            n = os.pwrite(fd, view, offset)
        else:
            os.lseek(fd, offset, os.SEEK_SET)
            n = os.write(fd, view)
        if n == 0:
            raise OSError(errno.EIO, "write returned 0 bytes")
        view = view[n:]
        offset += n


__all__ = [
    "PartState",
    "PartWriter",
    "DestinationLock",
    "part_path",
    "sidecar_path",
    "lock_path",
    "load_state",
    "save_state",
    "discard_part",
    "remove_quietly",
    "check_free_space",
    "move_into_place",
]
