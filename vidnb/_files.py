"""Everything vidnb keeps on disk beside a destination while it downloads.

For ``clip.mp4`` these are ``clip.mp4.part`` (the bytes so far, and the lock that one
download of that destination holds while it runs, in any process) and, once a download
has run for a moment or stopped early, ``clip.mp4.part.json`` (what is needed to resume
the bytes safely: URL, validators, size). A quick download creates no file but its
``.part``: creating files is the slowest step of a batch of small files on some
filesystems. Bytes reach the ``.part`` through :class:`PartWriter`, whose thread writes
while the event loop reads the network; the finished file is moved into place with one
rename.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import errno
import hashlib
import json
import logging
import os
import queue
import shutil
import threading
from pathlib import Path
from typing import Any, Callable, TypeVar

from ._errors import DestinationError
from ._fmt import human_bytes

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("vidnb")
_T = TypeVar("_T")

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
    #: For multi-connection downloads: ``[start, end_exclusive, done]`` per segment; for HLS,
    #: ``[start, end, length]`` per playlist item on disk.
    segments: list[list[int]] | None = None
    #: For HLS: a hash of the playlist's items, so only the same stream is resumed.
    fingerprint: str | None = None

    @property
    def validator(self) -> str | None:
        """The value for ``If-Range``: a strong ETag, else Last-Modified (weak ETags are not allowed there)."""
        if self.etag and not self.etag.startswith("W/"):
            return self.etag
        return self.last_modified


async def load_state(dest: Path) -> PartState | None:
    # A thread, not aiofiles: the file is tiny, and importing aiofiles cost ~15 ms of `import vidnb`.
    return await asyncio.to_thread(_load_state, sidecar_path(dest))


def _load_state(path: Path) -> PartState | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return PartState(**{k: raw.get(k) for k in ("url", "etag", "last_modified", "total", "segments", "fingerprint")})
    except (OSError, ValueError, TypeError, AttributeError):
        # A missing or damaged sidecar only means we cannot resume: start again.
        return None


async def save_state(dest: Path, state: PartState) -> None:
    await asyncio.to_thread(write_state, dest, state)


def write_state(dest: Path, state: PartState) -> None:
    """Blocking :func:`save_state`: for the one record a single-stream download writes, at a
    moment when the loop would otherwise wait for the thread hop (see ``_download._stream``)."""
    _save_state(sidecar_path(dest), json.dumps(dataclasses.asdict(state)))


def _save_state(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    # The rename makes the update atomic: a reader sees the old state or the new one, never half.
    os.replace(tmp, path)


def hash_file(path: Path, limit: int | None = None, hasher: Any = None) -> str:
    """Feed the first ``limit`` bytes of ``path`` (all when None) to ``hasher`` (a new sha256
    by default) and return its hex digest. Blocking: call it in a thread."""
    h = hasher if hasher is not None else hashlib.sha256()
    left = limit
    with open(path, "rb") as f:
        while left is None or left > 0:
            block = f.read(1 << 20 if left is None else min(1 << 20, left))
            if not block:
                break
            h.update(block)
            if left is not None:
                left -= len(block)
    return h.hexdigest()


def remove_quietly(*paths: Path) -> None:
    for p in paths:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def discard_part(dest: Path) -> None:
    """Forget the bytes of a ``.part`` that must not be resumed (wrong bytes, refused content).

    The file is emptied, not removed: the download holding the destination's lock holds it
    on this very file (see :class:`DestinationLock`), and releasing the lock removes it.
    """
    remove_quietly(sidecar_path(dest))  # first: a record never outlives the bytes it describes
    try:
        os.truncate(part_path(dest), 0)
    except FileNotFoundError:
        pass


# --------------------------------------------------------------------------- lock


class DestinationLock:
    """An exclusive lock on one destination, held across processes.

    The lock is a ``flock`` on the ``.part`` file itself (created empty if need be), so a
    download makes no lock file of its own. ``flock`` locks belong to an open file
    description, so two downloads in one process exclude each other exactly like two
    processes do. While it holds the lock a download never removes the ``.part``
    (:func:`discard_part` empties it); only moving it into place or releasing the lock
    does. A waiter that then locks the removed inode notices (its inode differs from the
    path's) and tries again. On Windows, whose byte-range locks would stop the writer's
    own handle, a separate ``.part.lock`` file is locked instead.
    """

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.part = part_path(dest)
        self.path = self.part if fcntl is not None else lock_path(dest)
        self._fd: int | None = None
        #: Whether taking the lock created the ``.part`` (then there are no bytes and no record).
        self.created = False

    async def acquire(self, poll: float = 0.05) -> bool:
        """Wait for the lock; return whether the destination file exists (checked under it)."""
        told = False
        while True:
            # Off the loop: creating the file is the slowest step of a small download on some
            # filesystems (a millisecond and more on ext4 after many deletions), and the
            # loop meanwhile keeps reading the other downloads of a batch.
            try:
                got = await off_loop(self._try_once)
            except asyncio.CancelledError as exc:
                # Cancelled while the thread held the new lock: let it go again.
                got = getattr(exc, "vidnb_result", None)
                if got is not None:
                    os.close(got[0])
                raise
            if got is not None:
                self._fd, exists, self.created = got
                return exists
            if not told:
                log.info("waiting for another download of %s to finish", self.dest.name)
                told = True
            # Another download holds it; it may take minutes, so poll gently.
            await asyncio.sleep(poll)
            poll = min(poll * 2, 0.5)

    def _try_once(self) -> tuple[int, bool, bool] | None:
        """Open and lock the file; return the descriptor, whether the destination exists and
        whether this call created the ``.part``; or None when someone else holds the lock."""
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0)
        try:
            fd, created = os.open(self.path, flags | os.O_EXCL, 0o644), self.path == self.part
        except FileExistsError:
            fd, created = os.open(self.path, flags, 0o644), False
        try:
            if _try_lock(fd) and os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                if created:
                    # A record without its .part (removed by hand, say) must not come to
                    # describe the new bytes: with it gone, a created .part has no record.
                    remove_quietly(sidecar_path(self.dest))
                return fd, os.path.exists(self.dest), created
        except FileNotFoundError:
            pass  # removed by the holder that just finished: try again
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
        return None

    @property
    def part_fd(self) -> int | None:
        """The locked ``.part``'s descriptor (open for reading and writing), or None on Windows."""
        return self._fd if self.path == self.part else None

    def part_size(self) -> int:
        """The size of the ``.part`` (through the held descriptor: no path lookup)."""
        fd = self.part_fd
        if fd is not None:
            return os.fstat(fd).st_size
        try:
            return self.part.stat().st_size
        except FileNotFoundError:
            return 0

    def release(self) -> None:
        """Drop the lock; an empty ``.part`` still at its path (nothing to resume) goes too."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if self.path == self.part:
                held = os.fstat(fd)
                empty = held.st_size == 0 and os.stat(self.part).st_ino == held.st_ino
            else:
                empty = os.stat(self.part).st_size == 0
            if empty:
                # Nobody else can put a file at this path while the lock is held, so this
                # removes our own empty file (failed before any byte, or discarded).
                remove_quietly(sidecar_path(self.dest), self.part)
        except FileNotFoundError:
            pass  # moved into place, or never made
        finally:
            if self.path != self.part:
                remove_quietly(self.path)
            os.close(fd)  # closing drops the lock


async def off_loop(fn: Callable[..., _T], *args: Any) -> _T:
    """Run a blocking file-system call on vidnb's file thread.

    If the caller is cancelled meanwhile, the call is not abandoned half way: a call that
    has started is waited for (a moment), and its result rides on the CancelledError as
    ``vidnb_result`` so the caller can undo it.
    """
    job = _file_ops().submit(fn, *args)
    try:
        return await asyncio.wrap_future(job)
    except asyncio.CancelledError as exc:
        if not job.cancel():
            concurrent.futures.wait([job])
            if job.exception() is None:
                exc.vidnb_result = job.result()  # type: ignore[attr-defined]
        raise


_ops: concurrent.futures.ThreadPoolExecutor | None = None


def _file_ops() -> concurrent.futures.ThreadPoolExecutor:
    """One thread for slow file-system calls (creating files): one at a time is fastest, since
    creations in one folder take turns in the kernel anyway."""
    global _ops
    with _threads_lock:
        if _ops is None:
            _ops = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="vidnb-files")
        return _ops


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


#: Smaller downloads skip the free-space check: a full disk still stops them, as a write
#: error that keeps the ``.part``, and a batch of small files saves a ``statvfs`` per file.
FREE_SPACE_CHECK_FROM = 16 << 20


def check_free_space(dest: Path, needed: int | None) -> None:
    """Fail before downloading when the disk clearly cannot hold ``needed`` more bytes."""
    if not needed or needed < FREE_SPACE_CHECK_FROM:
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


def finish_part(part: Path, dest: Path, overwrite: bool, record: Path | None) -> None:
    """Drop the resume record, if any, and move the finished ``.part`` into place (blocking).

    In that order, so a crash in between leaves a complete ``.part`` without a record
    (fetched again) rather than a record without its ``.part``.
    """
    if record is not None:
        remove_quietly(record)
    move_into_place(part, dest, overwrite=overwrite)


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


class _Done:
    """A marker in a writer thread's queue: signalled once everything queued before it is written."""

    __slots__ = ("future", "event")

    def __init__(self, future: asyncio.Future[None] | None = None) -> None:
        self.future = future
        self.event = threading.Event() if future is None else None

    def fire(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.event is not None:
            self.event.set()
            return
        fut = self.future
        try:
            loop.call_soon_threadsafe(lambda: fut.done() or fut.set_result(None))  # type: ignore[union-attr]
        except RuntimeError:
            pass  # the loop has closed: nobody is waiting any more


class _WriterThread:
    """A long-lived thread that writes chunks for any number of :class:`PartWriter` objects.

    Threads are shared because a batch of small files would otherwise pay a thread start
    and join per file (about half a millisecond each on a busy 2-core machine).
    """

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[tuple[PartWriter, int, bytes] | tuple[PartWriter, _Done]] = queue.SimpleQueue()
        threading.Thread(target=self._run, name="vidnb-writer", daemon=True).start()

    def _run(self) -> None:
        q = self.queue
        run: PartWriter | None = None
        bufs: list[bytes] = []
        start = end = 0
        while True:
            try:
                # Block only with nothing pending; otherwise write as soon as the queue runs dry.
                item = q.get_nowait() if bufs else q.get()
            except queue.Empty:
                run._flush(start, bufs)  # type: ignore[union-attr]
                bufs = []
                continue
            writer = item[0]
            if len(item) == 2:
                if bufs:
                    run._flush(start, bufs)  # type: ignore[union-attr]
                    bufs = []
                item[1].fire(writer._loop)  # type: ignore[misc]
                continue
            offset, data = item[1], item[2]  # type: ignore[misc]
            if bufs and (writer is not run or offset != end or len(bufs) >= 64):
                run._flush(start, bufs)  # type: ignore[union-attr]
                bufs = []
            if not bufs:
                run, start, end = writer, offset, offset
            # Gather contiguous chunks of one file into one syscall.
            bufs.append(data)
            end += len(data)


_threads: list[_WriterThread] = []
_threads_lock = threading.Lock()
_next_thread = 0
#: Writer threads shared by all downloads; a few, so one slow disk does not stall every file.
WRITER_THREADS = 4


def _writer_thread() -> _WriterThread:
    global _next_thread
    with _threads_lock:
        if len(_threads) < WRITER_THREADS:
            _threads.append(_WriterThread())
            return _threads[-1]
        _next_thread = (_next_thread + 1) % len(_threads)
        return _threads[_next_thread]


def _forget_threads() -> None:
    # A forked child has none of the parent's threads; start its own when needed.
    global _threads_lock, _ops
    _threads.clear()
    _threads_lock = threading.Lock()
    _ops = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_threads)


class PartWriter:
    """Writes byte chunks at given offsets of one file from a writer thread.

    The event loop hands over each chunk (no copy, no await) and goes back to the
    network while the thread writes: on a 2-core machine reading and writing then
    overlap instead of taking turns. Contiguous chunks are written with one
    ``pwritev``. Writers wait only when more than ``max_backlog`` bytes are queued,
    so memory stays flat whatever the file size; several coroutines (one per
    connection) may write at once. An optional hash object is fed the chunks in
    order (``hashlib`` releases the GIL, so this is nearly free); it only makes sense
    for a single stream written front to back. Chunks below ``inline_below`` are written
    at once by the caller instead: for a small file the hand-off costs more than the
    overlap saves.
    """

    #: Enough for the disk to keep busy while the loop reads (8 chunks of 256 KiB). The
    #: backlog fills only while the kernel throttles page-cache writes, which is more
    #: often the bigger the file; 32 MiB was no faster, but its size showed up in the peak
    #: RSS of large downloads only (73 MiB for 1 GiB against about 45 for 100 MiB).
    DEFAULT_BACKLOG = 2 << 20

    def __init__(
        self,
        path: Path,
        *,
        truncate: bool,
        hasher: Any = None,
        fd: int | None = None,
        inline_below: int = 0,
    ) -> None:
        self.path = path
        self.hasher = hasher
        #: Chunks starting below this offset are written at once, on the caller's thread.
        self.inline_below = inline_below
        self.max_backlog = self.DEFAULT_BACKLOG
        # A descriptor passed in (the destination lock's) is borrowed: written, never closed.
        self._own_fd = fd is None
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644) if fd is None else fd
        # Usually the file is the empty one the destination's lock created: no truncation then.
        if truncate and os.fstat(self._fd).st_size:
            os.ftruncate(self._fd, 0)
        self._queued = 0
        self._written = 0
        self._error: BaseException | None = None
        self._loop = asyncio.get_running_loop()
        self._waiters: list[asyncio.Future[None]] = []
        # Picked at the first queued chunk: a file written inline never touches a thread.
        self._queue: queue.SimpleQueue[Any] | None = None

    def preallocate(self, size: int) -> None:
        """Give the file its final size up front (for writes at scattered offsets).

        ``ftruncate`` makes a sparse file: instant, and blocks are allocated as they are
        written, so a full disk still shows up as a write error, never as a wrong file.
        """
        if os.fstat(self._fd).st_size != size:
            os.ftruncate(self._fd, size)

    async def write(self, offset: int, data: bytes) -> None:
        """Queue ``data`` for ``offset``; wait only if the backlog is full.

        The chunk is queued before this coroutine first yields, so a caller may count it
        as handed over as soon as it has called ``write``.
        """
        if self._error is not None:
            raise self._error
        if offset < self.inline_below and self._queued == self._written:
            # Small files: a thread hand-off per chunk costs more than the write it saves
            # the loop, and the writer thread competes for a core with everything else.
            self._write_inline(offset, data)
            return
        if self._queue is None:
            self._queue = _writer_thread().queue
        self._queue.put((self, offset, data))
        self._queued += len(data)
        if self._queued - self._written > self.max_backlog:
            await self._wait_for_room()

    def _write_inline(self, offset: int, data: bytes) -> None:
        try:
            if self.hasher is not None:
                self.hasher.update(data)
            _pwrite_all(self._fd, data, offset)
        except BaseException as exc:
            self._error = exc
            raise
        self._queued += len(data)
        self._written += len(data)

    def _full(self) -> bool:
        return self._queued - self._written > self.max_backlog // 2 and self._error is None

    async def _wait_for_room(self) -> None:
        while self._full():
            w = self._loop.create_future()
            self._waiters.append(w)
            # Re-check after publishing the waiter: the thread may have caught up in between.
            if not self._full():
                break
            await w
        if self._error is not None:
            raise self._error

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    async def flush(self) -> None:
        """Wait until every chunk queued so far is in the file (the page cache, not the platter)."""
        if self._fd < 0:
            return
        if self._queued != self._written:
            done = _Done(self._loop.create_future())
            self._queue.put((self, done))  # type: ignore[union-attr]
            await done.future  # type: ignore[misc]
        if self._error is not None:
            raise self._error

    def _flush(self, offset: int, bufs: list[bytes]) -> None:
        """Called on the writer thread."""
        if self._error is None:
            try:
                if self.hasher is not None:
                    for b in bufs:
                        self.hasher.update(b)
                _pwritev_all(self._fd, bufs, offset)
            except BaseException as exc:  # noqa: BLE001 - handed to the loop thread, which raises it
                self._error = exc
        self._written += sum(len(b) for b in bufs)
        if self._waiters and not self._full():
            try:
                self._loop.call_soon_threadsafe(self._wake)
            except RuntimeError:
                pass  # the loop has closed

    async def close(self) -> None:
        """Write everything queued and close the file; raise a write error if one happened."""
        if self._fd < 0:
            return
        try:
            await self.flush()
        finally:
            self._close_fd()

    def close_now(self) -> None:
        """Blocking close for cleanup paths that cannot await (what is queued is still written)."""
        if self._fd < 0:
            return
        if self._queued != self._written:
            done = _Done()
            self._queue.put((self, done))  # type: ignore[union-attr]
            done.event.wait()  # type: ignore[union-attr]
        self._close_fd()

    def _close_fd(self) -> None:
        if self._fd >= 0:
            if self._own_fd:
                os.close(self._fd)
            self._fd = -1
            self._wake()


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
    "write_state",
    "hash_file",
    "discard_part",
    "remove_quietly",
    "check_free_space",
    "move_into_place",
    "finish_part",
    "off_loop",
]
