"""Bytes into a ``.part`` from writer threads, while the event loop reads the network.

The event loop hands each chunk to a long-lived thread (no copy, no await) and goes back to
the network; the thread writes contiguous chunks with one ``pwritev``. On a 2-core machine
reading and writing then overlap instead of taking turns.
"""

from __future__ import annotations

import asyncio
import errno
import os
import queue
import threading
from pathlib import Path
from typing import Any

__all__ = ["PartWriter", "WRITER_THREADS"]



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


class _Close:
    """A marker in a writer thread's queue: close the writer's descriptor once everything
    queued before it is written (see :meth:`PartWriter.close`)."""

    __slots__ = ()


_CLOSE = _Close()


class _WriterThread:
    """A long-lived thread that writes chunks for any number of :class:`PartWriter` objects.

    Threads are shared because a batch of small files would otherwise pay a thread start
    and join per file (about half a millisecond each on a busy 2-core machine).
    """

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[
            tuple[PartWriter, int, bytes] | tuple[PartWriter, _Done | _Close]
        ] = queue.SimpleQueue()
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
                if isinstance(item[1], _Close):
                    os.close(writer._fd)
                    writer._fd = -1
                else:
                    item[1].fire(writer._loop)
                continue
            offset, data = item[1], item[2]
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
    global _threads_lock
    _threads.clear()
    _threads_lock = threading.Lock()


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
        #: The writer thread closes the file (see close): nothing here may touch it again.
        self._handed_off = False

    def preallocate(self, size: int) -> None:
        """Give the file its final size up front (for writes at scattered offsets).

        ``ftruncate`` makes a sparse file: instant, and blocks are allocated as they are
        written, so a full disk still shows up as a write error, never as a wrong file.
        """
        if os.fstat(self._fd).st_size != size:
            os.ftruncate(self._fd, size)

    async def write(self, offset: int, data: bytes | memoryview) -> None:
        """Queue ``data`` for ``offset``; wait only if the backlog is full.

        The chunk is queued before this coroutine first yields, so a caller may count it
        as handed over as soon as it has called ``write``. A view is written before this
        returns or copied: the caller may reuse its buffer as soon as ``write`` returns.
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
        if isinstance(data, memoryview):
            data = bytes(data)  # the thread writes it later, after the buffer has moved on
        self._queue.put((self, offset, data))
        self._queued += len(data)
        if self._queued - self._written > self.max_backlog:
            await self._wait_for_room()

    def _write_inline(self, offset: int, data: bytes | memoryview) -> None:
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
        """Write everything queued and close the file; raise a write error if one happened.

        Cancelled before the thread has written everything (a second Ctrl-C during cleanup,
        say), it returns at once and the thread closes the file after the last chunk.
        """
        if self._fd < 0 or self._handed_off:
            return
        try:
            await self.flush()
        finally:
            if self._queued == self._written:
                self._close_fd()
            else:
                self._close_after_queued()

    def _close_after_queued(self) -> None:
        # Closing now would let the thread write the chunks it still holds into whichever file
        # gets this descriptor's number next. A borrowed descriptor is duplicated first, so its
        # owner may close theirs: the copy keeps the file (and the lock on it) open until the
        # chunks are in.
        if not self._own_fd:
            self._fd = os.dup(self._fd)
            self._own_fd = True
        self._handed_off = True
        self._queue.put((self, _CLOSE))  # type: ignore[union-attr]
        self._wake()

    def close_now(self) -> None:
        """Blocking close for cleanup paths that cannot await (what is queued is still written)."""
        if self._fd < 0 or self._handed_off:
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


def _pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
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


