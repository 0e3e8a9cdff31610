"""Running downloads from where users are: plain scripts, notebook cells, widget callbacks.

- :func:`run_sync` blocks until a coroutine is done. With no loop running it uses
  ``asyncio.run``. Inside a Jupyter cell the kernel's loop is already running in this
  thread, so it nests with nest-asyncio2, patched onto that loop only when such a call
  arrives: the loop keeps serving other tasks (progress widgets, background downloads)
  while the cell blocks.
- :func:`start` schedules a download as a task on the running loop (or, in a plain
  script, on a private loop in a thread) and returns a :class:`DownloadTask` at once.
  Running tasks are referenced here, so they are not garbage-collected mid-download.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import signal
import threading
from collections.abc import Coroutine, Generator, Iterator
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

from ._engine import PathLike, download_with
from ._fmt import human_bytes, human_rate
from ._options import DownloadOptions, Options, make_options
from ._progress import ProgressEvent, ProgressReporter, State, make_reporter
from ._result import DownloadResult
from ._urls import choose_filename

if TYPE_CHECKING:
    import aiohttp
    from typing_extensions import Unpack

log = logging.getLogger("vidnb")

T = TypeVar("T")

_running: set[DownloadTask] = set()
_thread_loop: asyncio.AbstractEventLoop | None = None
_thread_lock = threading.Lock()
_kernel_loop: asyncio.AbstractEventLoop | None = None


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from synchronous code, in a script or a notebook cell.

    In a cell, Kernel > Interrupt cancels the download (its ``.part`` stays for resuming)
    and then raises KeyboardInterrupt in the cell.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    import nest_asyncio2

    nest_asyncio2.apply(loop)
    owed = len(getattr(loop, "_ready", ()))
    task = loop.create_task(coro)
    with _keep_ready_queue(loop, owed), _interrupt_cancels(task, loop) as interrupted:
        try:
            return loop.run_until_complete(task)
        except asyncio.CancelledError:
            if interrupted:
                raise KeyboardInterrupt from None
            raise
        except KeyboardInterrupt:
            # A KeyboardInterrupt raised somewhere else in the loop (a second interrupt, or
            # no handler of ours): cancel the download and let it unwind before the cell sees it.
            if not task.done():
                task.cancel()
                try:
                    loop.run_until_complete(task)
                except BaseException:
                    pass
            raise


@contextlib.contextmanager
def _keep_ready_queue(loop: asyncio.AbstractEventLoop, owed: int) -> Iterator[None]:
    """Leave at least ``owed`` callbacks in the loop's ready queue after a nested run.

    The first sync call patches a loop that is already running: the iteration this cell
    runs in is asyncio's own ``_run_once``, which will still pop as many callbacks as were
    queued behind this one. The nested run may have run them all (background downloads
    keep queueing), and that outer pop then fails with "pop from an empty deque", which
    kills the kernel's loop. Padding with no-op callbacks keeps the count it expects.
    """
    try:
        yield
    finally:
        ready = getattr(loop, "_ready", None)
        if ready is not None:
            for _ in range(owed - len(ready)):
                loop.call_soon(_noop)


def _noop() -> None:
    pass


@contextlib.contextmanager
def _interrupt_cancels(task: asyncio.Task[Any], loop: asyncio.AbstractEventLoop) -> Iterator[list[bool]]:
    """While blocking in a cell, turn SIGINT into a cancel of ``task``.

    The kernel's own handler raises KeyboardInterrupt wherever the main thread happens to
    be, possibly inside aiohttp or the loop itself; cancelling lets the download stop at an
    await and close its ``.part`` properly. A second interrupt raises at once.
    """
    if threading.current_thread() is not threading.main_thread():
        yield []
        return
    interrupted: list[bool] = []
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if interrupted or task.done():
            raise KeyboardInterrupt
        interrupted.append(True)
        loop.call_soon_threadsafe(task.cancel)

    try:
        signal.signal(signal.SIGINT, on_sigint)
    except (ValueError, OSError):  # not allowed here (an embedded interpreter, say)
        yield interrupted
        return
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)


def remember_loop() -> asyncio.AbstractEventLoop | None:
    """Note the loop running in this thread (the kernel's, in a cell) for later hops from other threads."""
    global _kernel_loop
    try:
        _kernel_loop = asyncio.get_running_loop()
    except RuntimeError:
        pass
    return _kernel_loop


def _private_loop() -> asyncio.AbstractEventLoop:
    """A loop in a daemon thread, for :func:`start` called where no loop runs (plain scripts)."""
    global _thread_loop
    with _thread_lock:
        if _thread_loop is None or _thread_loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="vidnb-loop", daemon=True).start()
            _thread_loop = loop
        return _thread_loop


class _Recorder:
    """Keeps the latest progress event for the task's repr, and passes events on."""

    def __init__(self, inner: ProgressReporter | None) -> None:
        self.inner = inner
        self.last: ProgressEvent | None = None
        self.closed = False

    def start(self, name: str, total: int | None, initial: int) -> None:
        self.last = ProgressEvent(name, initial, total, 0.0, 0.0)
        if self.inner is not None:
            self.inner.start(name, total, initial)

    def update(self, event: ProgressEvent) -> None:
        self.last = event
        if self.inner is not None:
            self.inner.update(event)

    def close(self, event: ProgressEvent) -> None:
        self.last = event
        self.closed = True
        if self.inner is not None:
            self.inner.close(event)


def _guess_name(url: str, dest: PathLike | None) -> str:
    """A name to show before the server answered: the file asked for, else the URL's last part."""
    if dest is not None and not str(dest).endswith(("/", "\\")) and not Path(dest).is_dir():
        return Path(dest).name
    return choose_filename(url, None) or url  # what the engine would name it, short of the server's say


class DownloadTask:
    """A download running in the background; await it for its :class:`DownloadResult`.

    Made by :func:`start`, with options already checked. The package holds a reference until
    it finishes, so an unreferenced task still completes; a failure nobody awaits is logged
    and shown on its bar.

    Examples
    --------
    >>> task = vidnb.start("https://example.com/clip.mp4", "videos/")  # doctest: +SKIP
    >>> task
    <DownloadTask clip.mp4: running, 12.0 MiB of 48.0 MiB (25%), 9.8 MiB/s>
    >>> result = await task
    """

    def __init__(
        self, url: str, dest: PathLike | None, opts: Options, session: aiohttp.ClientSession | None = None
    ) -> None:
        self.url = url
        self.dest = dest
        self.name = _guess_name(url, dest)
        reporter = make_reporter(opts.progress)
        opener = getattr(reporter, "open", None)
        if callable(opener):
            # Draw the bar now, in the cell that started the task: once the cell is over,
            # a display() from the task could land under another cell.
            opener(self.name)
        self._recorder = _Recorder(reporter)
        coro = download_with(url, dest, replace(opts, progress=self._recorder), session)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        self._loop: asyncio.AbstractEventLoop
        self._future: asyncio.Future[DownloadResult] | concurrent.futures.Future[DownloadResult]
        if loop is not None:
            remember_loop()
            self._loop = loop
            self._future = loop.create_task(coro, name=f"vidnb {self.name}")
        else:
            # Another thread (a widget callback on an ipykernel 7.0-7.3 subshell, a worker):
            # run on the kernel's loop when there is one, else on a private loop.
            target = _kernel_loop if _kernel_loop is not None and _kernel_loop.is_running() else _private_loop()
            self._loop = target
            self._future = asyncio.run_coroutine_threadsafe(coro, target)
        _running.add(self)
        self._future.add_done_callback(self._finished)

    def _finished(self, fut: asyncio.Future[DownloadResult] | concurrent.futures.Future[DownloadResult]) -> None:
        _running.discard(self)
        if fut.cancelled():
            exc: BaseException | None = None
        else:
            # Retrieve the exception so asyncio does not warn, and log it: a background task
            # may never be awaited, and its failure must still be seen.
            exc = fut.exception()
            if exc is not None:
                log.error("background download of %s failed: %s", self.url, exc)
        if not self._recorder.closed and (exc is not None or fut.cancelled()):
            # It ended before the engine reported anything (a bad URL or option, say):
            # close the bar here so it shows the outcome instead of spinning forever.
            last = self._recorder.last
            done, total = (last.done, last.total) if last else (0, None)
            state: State = "cancelled" if exc is None else "failed"
            event = ProgressEvent(self.name, done, total, 0.0, 0.0, state, None if exc is None else str(exc))
            try:
                if last is None:
                    self._recorder.start(self.name, None, 0)
                self._recorder.close(event)
            except Exception:
                log.exception("progress display of %s failed", self.url)

    def __await__(self) -> Generator[Any, None, DownloadResult]:
        fut = self._future
        if isinstance(fut, concurrent.futures.Future):
            return asyncio.wrap_future(fut).__await__()
        return fut.__await__()

    def cancel(self) -> bool:
        """Stop the download; its ``.part`` stays, so starting it again resumes.

        Safe from any thread. Returns False when it had already finished.
        """
        fut = self._future
        if fut.done():
            return False
        if not _in_loop_thread(self._loop) and self._loop.is_running():
            # Cancel from the loop's own thread, so the task's callbacks (bar, row) run there.
            self._loop.call_soon_threadsafe(fut.cancel)
            return True
        return fut.cancel()

    def done(self) -> bool:
        """True once finished, failed or cancelled."""
        return self._future.done()

    def cancelled(self) -> bool:
        return self._future.cancelled()

    def result(self) -> DownloadResult:
        """The result once done; raises the download's error if it failed."""
        if not self._future.done():
            raise asyncio.InvalidStateError("The download is still running: `await task` to wait for it.")
        return self._future.result()

    def exception(self) -> BaseException | None:
        if not self._future.done():
            raise asyncio.InvalidStateError("The download is still running.")
        return self._future.exception()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the download runs on."""
        return self._loop

    @property
    def progress(self) -> ProgressEvent | None:
        """The latest progress event (None before the server answered)."""
        return self._recorder.last

    @property
    def state(self) -> State:
        """"running", "done", "failed" or "cancelled"."""
        fut = self._future
        if not fut.done():
            return "running"
        if fut.cancelled():
            return "cancelled"
        return "failed" if fut.exception() is not None else "done"

    def __repr__(self) -> str:
        ev = self.progress
        name = ev.name if ev and ev.name else self.name
        state = self.state
        if state == "failed":
            return f"<DownloadTask {name}: failed: {self._future.exception()}>"
        if ev is None:
            return f"<DownloadTask {name}: {state}>"
        pct = f" ({100 * ev.done / ev.total:.0f}%)" if ev.total else ""
        rate = f", {human_rate(ev.speed)}" if state == "running" and ev.speed else ""
        return f"<DownloadTask {name}: {state}, {human_bytes(ev.done)} of {human_bytes(ev.total)}{pct}{rate}>"


def _in_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def start(url: str, dest: PathLike | None = None, **options: Unpack[DownloadOptions]) -> DownloadTask:
    """Start a download in the background and return at once.

    In a notebook the download runs on the kernel's loop: the cell finishes, the progress
    bar keeps moving, and other cells run meanwhile. Takes the same arguments as
    :func:`download`; a bad option raises here, before any task or bar exists.

    Examples
    --------
    >>> task = vidnb.start("https://example.com/clip.mp4", "videos/")  # doctest: +SKIP
    >>> result = await task   # later, in any cell
    """
    opts = make_options(**options)
    return DownloadTask(url, dest, opts, options.get("session"))


def download_sync(url: str, dest: PathLike | None = None, **options: Unpack[DownloadOptions]) -> DownloadResult:
    """Blocking :func:`download`, for scripts and for cells that should wait.

    Takes the same arguments as :func:`download`; a bad option raises before anything runs.

    Examples
    --------
    >>> result = vidnb.download_sync("https://example.com/clip.mp4", "clip.mp4")  # doctest: +SKIP
    """
    opts = make_options(**options)
    return run_sync(download_with(url, dest, opts, options.get("session")))


def running_tasks() -> list[DownloadTask]:
    """Background downloads that have not finished yet."""
    return list(_running)

