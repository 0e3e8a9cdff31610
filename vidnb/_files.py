"""Everything vidnb keeps on disk beside a destination while it downloads.

For ``clip.mp4`` these are ``clip.mp4.part`` (the bytes so far, and the lock that one
download of that destination holds while it runs, in any process) and, once a download
has run for a moment or stopped early, ``clip.mp4.part.json`` (what is needed to resume
the bytes safely: URL, validators, size). A quick download creates no file but its
``.part``: creating files is the slowest step of a batch of small files on some
filesystems. Bytes reach the ``.part`` through :class:`vidnb._writer.PartWriter`; the
finished file is moved into place with one rename.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import hashlib
import json
import logging
import os
import queue
import shutil
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar

from ._errors import DestinationError
from ._fmt import human_bytes
from ._mounts import is_local
from ._sniff import SNIFF_BYTES

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("vidnb")
_T = TypeVar("_T")
_P = ParamSpec("_P")

PART_SUFFIX = ".part"


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + PART_SUFFIX)


SIDECAR_SUFFIX = PART_SUFFIX + ".json"


def sidecar_path(dest: Path) -> Path:
    return dest.with_name(dest.name + SIDECAR_SUFFIX)


def lock_path(dest: Path) -> Path:
    return dest.with_name(dest.name + PART_SUFFIX + ".lock")


# --------------------------------------------------------------------------- sidecar


#: The resume record's format. 1 (no "version" key) was written before records were tagged.
RECORD_VERSION = 2
RecordKind = Literal["stream", "ranges", "hls"]
_KINDS: tuple[RecordKind, ...] = ("stream", "ranges", "hls")


@dataclasses.dataclass
class PartState:
    """The resume record: what a ``.part`` holds and how to check the server still has those bytes.

    ``kind`` says how the bytes were laid down, and so what ``segments`` means:

    - ``"stream"``: one stream, front to back; the ``.part``'s size is what is done.
    - ``"ranges"``: several connections into a preallocated file; ``segments`` holds
      ``[start, end_exclusive, done]`` per piece.
    - ``"hls"``: a playlist's items appended in order; ``segments`` holds
      ``[start, end_exclusive, length]`` per item on disk and ``fingerprint`` names the playlist.
    """

    url: str
    kind: RecordKind = "stream"
    etag: str | None = None
    last_modified: str | None = None
    total: int | None = None
    segments: list[list[int]] | None = None
    fingerprint: str | None = None

    @property
    def if_range(self) -> str | None:
        """The value for ``If-Range``, or None to send none.

        A strong ETag; else, without any ETag, Last-Modified. Never a weak ETag (RFC 9110
        13.1.5 forbids it), and not Last-Modified beside a weak ETag: the server that gave the
        weak one (Apache, for a file modified in the last second) also refuses a date in
        If-Range until the file is a minute old, and would send the whole file again. The
        overlap check and the validators of the answer guard those resumes instead.
        """
        if self.etag:
            return None if self.etag.startswith("W/") else self.etag
        return self.last_modified

    def to_json(self) -> str:
        return json.dumps({"version": RECORD_VERSION, **dataclasses.asdict(self)})

    @classmethod
    def from_json(cls, text: str) -> PartState | None:
        """Read a record of this version or of version 1; None for anything else (start again).

        Version 1 had no ``kind``: HLS records were the ones with a fingerprint, multi-connection
        ones those with segments. A record from a newer vidnb, or of an unknown kind, is not
        guessed at.
        """
        raw = json.loads(text)
        if not isinstance(raw, dict) or not isinstance(raw.get("url"), str):
            return None
        version = raw.get("version", 1)
        if version == 1:
            kind: object = "hls" if raw.get("fingerprint") else "ranges" if raw.get("segments") else "stream"
        elif version == RECORD_VERSION:
            kind = raw.get("kind")
        else:
            return None
        if kind not in _KINDS:
            return None
        segments = raw.get("segments")
        if segments is not None and not (
            isinstance(segments, list)
            and all(isinstance(r, list) and len(r) == 3 and all(type(x) is int for x in r) for r in segments)
        ):
            return None
        total = raw.get("total")
        return cls(
            url=raw["url"],
            kind=kind,  # narrowed by the check against _KINDS above
            etag=_str_or_none(raw.get("etag")),
            last_modified=_str_or_none(raw.get("last_modified")),
            total=total if type(total) is int else None,
            segments=segments,
            fingerprint=_str_or_none(raw.get("fingerprint")),
        )


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


async def load_state(dest: Path) -> tuple[PartState | None, bool]:
    """The resume record of ``dest``, and whether a record file was there at all.

    ``(None, True)`` is a record that cannot be read (damaged, or from a newer vidnb): its
    bytes must not be continued, since nothing says how they were laid down.
    """
    # A thread, not aiofiles: the file is tiny, and importing aiofiles cost ~15 ms of `import vidnb`.
    return await asyncio.to_thread(_load_state, sidecar_path(dest))


def _load_state(path: Path) -> tuple[PartState | None, bool]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, False
    except OSError:
        return None, True
    try:
        return PartState.from_json(text), True
    except ValueError:
        return None, True


async def save_state(dest: Path, state: PartState) -> None:
    await asyncio.to_thread(write_state, dest, state)


def write_state(dest: Path, state: PartState) -> None:
    """Blocking :func:`save_state`, for the moments when the loop would otherwise wait for the
    thread hop (the one record of a single stream, a stop)."""
    _save_state(sidecar_path(dest), state.to_json())


#: One record written at a time: a write handed to a thread goes on after the coroutine that
#: waited for it is cancelled, and the record a stop writes must not race it for the .tmp.
_record_lock = threading.Lock()


def _save_state(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with _record_lock:
        tmp.write_text(text, encoding="utf-8")
        # The rename makes the update atomic: a reader sees the old state or the new one, never half.
        os.replace(tmp, path)


def read_head(path: Path, n: int = SNIFF_BYTES) -> bytes:
    """The first bytes of a file on disk, to sniff."""
    with open(path, "rb") as f:
        return f.read(n)


def read_at(path: Path, offset: int, n: int) -> bytes:
    """``n`` bytes of a file from ``offset`` (fewer at its end). Blocking."""
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(n)


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


def remove_quietly(*paths: str | Path) -> None:
    for p in paths:
        try:
            os.unlink(p)
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
        #: Whether the lock is on the ``.part`` itself (not a separate ``.part.lock``). A flag,
        #: because comparing the two paths each time cost 3 % of a batch's loop time.
        self.on_part = fcntl is not None
        self._fd: int | None = None
        #: Whether taking the lock created the ``.part`` (then there are no bytes and no record).
        self.created = False
        #: Set once the ``.part`` was moved onto the destination: releasing then only closes the
        #: descriptor (the path is gone, so there is nothing to look up or remove).
        self.moved = False

    async def acquire(self, poll: float = 0.05) -> bool:
        """Wait for the lock; return whether the destination file exists (checked under it)."""
        told = False
        while True:
            # Creating the file is the slowest step of a small download (0.5 ms and more on
            # ext4): on a local disk the loop makes the call itself, elsewhere the file thread
            # does, so a mount that hangs cannot freeze the loop (see vidnb._mounts).
            # Cancelled while the thread takes the lock: it is let go again whenever the thread gets it.
            got = await fs_call(self.dest.parent, self._try_once, undo=_drop_taken)
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
            fd, created = os.open(self.path, flags | os.O_EXCL, 0o644), self.on_part
        except FileExistsError:
            fd, created = os.open(self.path, flags, 0o644), False
        try:
            if _try_lock(fd) and os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                if not created and self.on_part and _same_file(fd, self.dest):
                    # A run died between the link onto dest and the unlink of the .part:
                    # finish that move, and try again with a .part of our own (writing
                    # through this one would write into the finished file).
                    os.unlink(self.part)
                    os.close(fd)
                    return None
                if created:
                    # A record without its .part (removed by hand, say) must not come to
                    # describe the new bytes: with it gone, a created .part has no record.
                    # A string path: a Path object per file showed in a batch's profile.
                    remove_quietly(os.fspath(self.dest) + SIDECAR_SUFFIX)
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
        return self._fd if self.on_part else None

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
        if self.moved and self.on_part:
            # Moved into place: no empty .part to remove, and no lookup of a path that is gone
            # (two stat calls a file, on the loop's thread, in a batch of small files).
            os.close(fd)
            return
        try:
            if self.on_part:
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
            if not self.on_part:
                remove_quietly(self.path)
            os.close(fd)  # closing drops the lock


def _drop_taken(got: tuple[int, bool, bool] | None) -> None:
    """Undo a lock taken for a caller that was cancelled meanwhile."""
    if got is not None:
        os.close(got[0])


#: How long a cancelled caller waits for a file-system call that has already started.
OFF_LOOP_WAIT = 0.5


async def fs_call(
    folder: Path, fn: Callable[..., _T], *args: Any, undo: Callable[[_T], object] | None = None
) -> _T:
    """``fn(*args)``, a file-system call in ``folder``: made right here when the folder is on
    a local disk (:func:`vidnb._mounts.is_local`), else on the file thread (:func:`off_loop`)."""
    if is_local(folder):
        return fn(*args)
    return await off_loop(fn, *args, undo=undo)


async def off_loop(fn: Callable[..., _T], *args: Any, undo: Callable[[_T], object] | None = None) -> _T:
    """Run a blocking file-system call on vidnb's file thread.

    If the caller is cancelled meanwhile, a call that has not started is dropped, and one that
    has is waited for a moment, so that what the caller does next (releasing the lock) comes
    after it in the normal case. ``undo`` gets its result whenever it comes, in time or not.
    The wait was unbounded, on the loop's thread, where even a second Ctrl-C's cancel could not
    reach: one call stuck in the kernel (a hung network mount) kept a process that was asked
    to stop from ever getting there.
    """
    job = _file_ops().submit(fn, *args)
    try:
        return await asyncio.wrap_future(job)
    except asyncio.CancelledError:
        if not job.cancel():
            if undo is not None:
                job.add_done_callback(lambda done: _undo(done, undo))
            concurrent.futures.wait([job], timeout=OFF_LOOP_WAIT)
        raise


def _undo(job: concurrent.futures.Future[_T], undo: Callable[[_T], object]) -> None:
    if not job.cancelled() and job.exception() is None:
        undo(job.result())


class DaemonThreadPool(concurrent.futures.ThreadPoolExecutor):
    """A thread pool whose threads never hold up the interpreter's exit.

    A ``ThreadPoolExecutor``'s threads are joined at exit, each for as long as its call takes,
    and asyncio's ``shutdown_default_executor`` joins them without a time limit before 3.12.
    So one call that does not return (a read on a hung network mount, ``getaddrinfo`` waiting
    for a dead DNS server) kept a process that was asked to stop alive for as long as the call
    took. These threads are daemons, and :meth:`join` waits for them a bounded time. A call
    still running after that is left to the thread. That is safe for vidnb's calls, which are
    reads, renames, and small files replaced by a rename.

    It subclasses ``ThreadPoolExecutor`` only because ``loop.set_default_executor`` requires
    one. None of the base class's threads or queues are used: ``submit`` and ``shutdown``
    are the public ``Executor`` interface, reimplemented here.
    """

    def __init__(self, max_workers: int, thread_name_prefix: str) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        self._size = max_workers
        self._prefix = thread_name_prefix
        self._jobs: queue.SimpleQueue[tuple[concurrent.futures.Future[Any], Callable[[], Any]] | None]
        self._jobs = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._started = 0
        self._running = [0]  # threads still alive, counted by the threads themselves
        self._closed = False
        # Forgotten without a shutdown: let the idle threads end (they do not hold the pool).
        # Not at exit, where daemon threads need no telling.
        weakref.finalize(self, self._jobs.put, None).atexit = False

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> concurrent.futures.Future[_T]:
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            future: concurrent.futures.Future[_T] = concurrent.futures.Future()
            self._jobs.put((future, lambda: fn(*args, **kwargs)))
            if not self._idle.acquire(blocking=False) and self._started < self._size:
                self._running[0] += 1
                self._started += 1
                threading.Thread(
                    target=_pool_worker, args=(self._jobs, self._idle, self._lock, self._running),
                    name=f"{self._prefix}_{self._started - 1}", daemon=True,
                ).start()
            return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            while cancel_futures:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    job[0].cancel()
            self._jobs.put(None)
        if wait:
            self.join(None)

    def join(self, timeout: float | None) -> bool:
        """After :meth:`shutdown`, wait up to ``timeout`` seconds (None: no limit) for the threads
        to finish their calls; True if they all did.

        Polled rather than ``Thread.join``: this runs while stop signals may arrive, and an
        exception raised by a signal handler inside ``Thread.join`` leaves threading's own
        bookkeeping half done (bpo-45274). A sleep is safe to interrupt.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._running[0]:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.002)
        return True


def _pool_worker(
    jobs: queue.SimpleQueue[tuple[concurrent.futures.Future[Any], Callable[[], Any]] | None],
    idle: threading.Semaphore,
    lock: threading.Lock,
    running: list[int],
) -> None:
    try:
        while True:
            job = jobs.get()
            if job is None:
                jobs.put(None)  # the next thread's signal to stop too
                return
            future, call = job
            del job
            if future.set_running_or_notify_cancel():
                try:
                    result = call()
                except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
                    future.set_exception(exc)
                else:
                    future.set_result(result)
                    del result
            del future, call  # an idle thread must not keep the last result or its arguments alive
            idle.release()
    finally:
        with lock:
            running[0] -= 1


_ops: concurrent.futures.ThreadPoolExecutor | None = None
_ops_lock = threading.Lock()


def _forget_ops() -> None:
    # A forked child has none of the parent's threads; it starts its own when needed.
    global _ops, _ops_lock, _record_lock
    _ops = None
    _ops_lock = threading.Lock()
    _record_lock = threading.Lock()  # held by a thread the child does not have


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_ops)


def _file_ops() -> concurrent.futures.ThreadPoolExecutor:
    """One thread for slow file-system calls (creating files): one at a time is fastest, since
    creations in one folder take turns in the kernel anyway."""
    global _ops
    with _ops_lock:
        if _ops is None:
            _ops = DaemonThreadPool(max_workers=1, thread_name_prefix="vidnb-files")
        return _ops


def _same_file(fd: int, path: Path) -> bool:
    try:
        held, other = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (held.st_ino, held.st_dev) == (other.st_ino, other.st_dev)


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
    """Move the finished ``.part`` into place, then drop its resume record (blocking).

    In that order, so a crash in between leaves the finished file and a record without its
    ``.part``, which the next lock on this destination removes as it creates a new ``.part``
    (see :meth:`DestinationLock._try_once`); a crash before the move leaves the complete
    ``.part`` with its record, which the next run finishes without fetching it again.
    """
    move_into_place(part, dest, overwrite=overwrite)
    if record is not None:
        remove_quietly(record)


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


__all__ = [
    "PartState",
    "RECORD_VERSION",
    "DestinationLock",
    "part_path",
    "sidecar_path",
    "lock_path",
    "load_state",
    "save_state",
    "write_state",
    "hash_file",
    "read_head",
    "read_at",
    "discard_part",
    "remove_quietly",
    "check_free_space",
    "move_into_place",
    "finish_part",
    "off_loop",
    "fs_call",
    "DaemonThreadPool",
]
