"""Running downloads from where users are: plain scripts, notebook cells, widget callbacks.

- :func:`run_sync` blocks until a coroutine is done. With no loop running it runs a loop of
  its own, as ``asyncio.run`` would but with every wait of its clean-up bounded (see
  :func:`_tear_down`). Inside a Jupyter cell the kernel's loop is already running in this
  thread, so it nests with nest-asyncio2, patched onto that loop only when such a call
  arrives: the loop keeps serving other tasks (progress widgets, background downloads)
  while the cell blocks.
- :func:`start` schedules a download as a task on the running loop (or, in a plain
  script, on a private loop in a thread) and returns a :class:`DownloadTask` at once.
  Running tasks are referenced here, so they are not garbage-collected mid-download.

Stopping: while :func:`run_sync` blocks the main thread, SIGINT (Ctrl-C), SIGTERM (``kill``,
a container stop, ``timeout``) and SIGHUP (a closed terminal) stop the download the same
way. It is cancelled at its next await, writes its resume record and keeps its ``.part``;
then KeyboardInterrupt (SIGINT) or :class:`Stopped` (SIGTERM, SIGHUP) is raised. Handlers
are only put over the default ones, SIGTERM and SIGHUP are left alone in a Jupyter
kernel, and the previous handlers are put back afterwards. A process asked to stop is out of
:func:`run_sync` within :data:`STOP_DEADLINE` seconds, whatever it was doing.
"""

from __future__ import annotations

import _thread
import asyncio
import concurrent.futures
import contextlib
import logging
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

from . import _files
from ._engine import PathLike, download_with
from ._fmt import human_bytes, human_rate
from ._handle import DownloadHandle
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

#: Seconds a download gets, from a stop signal, to unwind after the cancel: write its
#: record, close its file and connections (milliseconds, as a rule).
UNWIND_GRACE = 1.0
#: Seconds from a stop signal after which :func:`run_sync` waits for nothing more; the loop's
#: other tasks, async generators and executor threads share what the download left of it.
STOP_DEADLINE = 1.5
#: At most this long for the loop's clean-up after a download that ended by itself.
SHUTDOWN_WAIT = 1.0
#: At most this long for executor threads still running calls that nobody awaits any more.
EXECUTOR_WAIT = 0.5
#: After a stop signal the watchdog pings the loop this often...
WATCH_EVERY = 0.1
#: ...and a loop that has not answered for this long is stuck in a blocking call where no
#: timer of its own reaches it: the watchdog sends the signal again, so the handler raises there.
STUCK_AFTER = 0.5
#: Threads of the loop's executor (``to_thread``, DNS lookups): ThreadPoolExecutor's default.
_EXECUTOR_THREADS = min(32, (os.cpu_count() or 1) + 4)

#: Tasks still running when their loop was closed. Kept referenced so they are not destroyed
#: half way through (and logged as such) while the process exits.
_abandoned: list[asyncio.Task[Any]] = []


class Stopped(SystemExit):
    """SIGTERM or SIGHUP stopped a blocking download; ``code`` is 128 + the signal number.

    A SystemExit rather than KeyboardInterrupt: those signals mean "end this process", and a
    script that catches KeyboardInterrupt to skip one download and go on with the next (or to
    ask its user what to do) must not swallow a container stop. A SystemExit passes through
    ``except Exception``, runs ``finally`` blocks and atexit handlers, prints no traceback, and
    exits with the status a shell shows for a process that signal killed (143, 129), which is
    what process managers and ``timeout`` look for.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from synchronous code, in a script or a notebook cell.

    Ctrl-C (in a cell, Kernel > Interrupt) cancels the download (its ``.part`` stays for
    resuming), then raises KeyboardInterrupt; SIGTERM and SIGHUP do the same and raise
    :class:`Stopped`. A second signal ends all waiting at once.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    # Not from inside that except clause: whatever the download raises would be shown
    # chained to "RuntimeError: no running event loop".
    if loop is None:
        return _run_own_loop(coro)
    return _run_nested(loop, coro)


def _run_own_loop(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)``, with stop signals handled and every wait bounded.

    Not ``asyncio.run`` itself. Its clean-up waits without a limit (see :func:`_tear_down`).
    Once its task is done, its SIGINT handler raises KeyboardInterrupt wherever the main
    thread is, inside that clean-up or threading's own locks. And the KeyboardInterrupt it
    raises after a cancel comes chained to the CancelledError.
    """
    loop = asyncio.new_event_loop()
    pool = _files.DaemonThreadPool(_EXECUTOR_THREADS, "vidnb-asyncio")
    loop.set_default_executor(pool)
    try:
        task = loop.create_task(coro)
        stop = _Stop(loop, task)
        with stop.signals(nested=False):
            try:
                stop.run()
            except BaseException as exc:  # noqa: BLE001 - passed on by stop.outcome
                stop.interrupted(exc)
            _tear_down(loop, pool, stop)
        return stop.outcome(task)
    finally:
        loop.close()


def _run_nested(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the loop already running in this thread (a kernel's), nested."""
    import nest_asyncio2

    nest_asyncio2.apply(loop)
    owed = len(getattr(loop, "_ready", ()))
    task = loop.create_task(coro)
    stop = _Stop(loop, task)
    with _keep_ready_queue(loop, owed), stop.signals(nested=True):
        try:
            stop.run()
        except BaseException as exc:  # noqa: BLE001 - passed on by stop.outcome
            stop.interrupted(exc)
    # A download still unwinding after its grace carries on on this loop, which keeps running.
    return stop.outcome(task)


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


class _Stop:
    """The stop signals received while :func:`run_sync` blocks on ``task``, and their deadlines.

    The first signal cancels the download (from the loop, so it stops at an await and closes
    its ``.part`` properly) and gives it :data:`UNWIND_GRACE` seconds. A repeated signal ends
    all waiting at once, raising right where the main thread is if that is in the loop: either
    the user insists, or the watchdog found the loop stuck (see :meth:`watch`).
    What was asked for is raised by :meth:`outcome` once the loop is cleaned up, so that it is
    the one exception of the traceback.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> None:
        self.loop = loop
        self.task = task
        self.signum: int | None = None
        #: ``time.monotonic()`` after which the download is not waited for any more.
        self.unwind_by: float | None = None
        #: ``time.monotonic()`` after which nothing is.
        self.deadline: float | None = None
        #: A BaseException that came out of the loop not from a signal of ours (a handler the
        #: user installed, the download's own code): passed on as it is.
        self.raised: BaseException | None = None
        #: Set (under ``_guard``) before the previous handlers are put back.
        self.finished = False
        #: Whether the main thread is inside one of this class's runs of the loop, where every
        #: caller catches what a repeated signal raises.
        self.in_loop = False
        self._guard = threading.Lock()
        self._answered = 0  # the watchdog's last ping the loop answered
        self._alarms: queue.SimpleQueue[_Stop] | None = None
        self._waiter: asyncio.Future[None] = loop.create_future()
        task.add_done_callback(lambda _: _settle(self._waiter))

    @contextlib.contextmanager
    def signals(self, *, nested: bool) -> Iterator[None]:
        """Handle the signals :func:`_signals_to_take` allows until the block ends, then put the
        previous handlers back."""
        taken = _signals_to_take(nested)
        if taken:
            self._alarms = _watchdog()  # started here: a signal handler must not start a thread
        previous: dict[int, Any] = {}
        try:
            for signum in taken:
                try:
                    previous[signum] = signal.signal(signum, self._on_signal)
                except (ValueError, OSError):  # not allowed here (an embedded interpreter, say)
                    pass
            yield
        finally:
            self.in_loop = False
            with self._guard:  # the watchdog sends its signal under this lock, or never
                self.finished = True
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Runs on the main thread between two bytecodes of whatever it was doing, so it takes
        # no lock and starts no thread: either could be held, or half made, right there.
        if self.signum is None:
            now = time.monotonic()
            self.signum = signum
            self.unwind_by, self.deadline = now + UNWIND_GRACE, now + STOP_DEADLINE
            if self.finished:
                return  # the download is over: outcome() raises this signal's exception
            if self._alarms is not None:
                self._alarms.put(self)  # SimpleQueue.put is safe in a signal handler
            try:
                self.loop.call_soon_threadsafe(self._cancel)
            except RuntimeError:
                pass  # the loop is closed: there is nothing left to cancel
            return
        self.unwind_by = self.deadline = time.monotonic()  # wait for nothing more
        if self.in_loop and not self.finished:
            # Raised only in the loop, whose every caller here catches it: never inside this
            # class's own bookkeeping, such as putting the previous handlers back.
            raise self.exception()

    def _cancel(self) -> None:
        """On the loop: cancel the download, and stop waiting for it once its grace is over."""
        if self.task.done() or self.unwind_by is None:
            return
        self.task.cancel()
        self.loop.call_later(max(0.0, self.unwind_by - time.monotonic()), _settle, self._waiter)

    def run(self) -> None:
        """Run the loop until the download is done, or until its grace after a stop signal is over."""
        self._loop_until(self._waiter)

    def run_until(self, aw: asyncio.Future[Any], timeout: float) -> bool:
        """Run the loop until ``aw`` is done or ``timeout`` seconds have passed; whether it is done."""
        if not aw.done():
            waiter: asyncio.Future[None] = self.loop.create_future()
            aw.add_done_callback(lambda _: _settle(waiter))
            timer = self.loop.call_later(max(0.0, timeout), _settle, waiter)
            try:
                self._loop_until(waiter)
            finally:
                timer.cancel()
        return aw.done()

    def _loop_until(self, waiter: asyncio.Future[None]) -> None:
        self.in_loop = True
        try:
            self.loop.run_until_complete(waiter)
        finally:
            self.in_loop = False

    def interrupted(self, exc: BaseException) -> None:
        """Something was raised out of the loop: this class's own exception on a repeated signal,
        a KeyboardInterrupt from a handler that is not ours, the download's own SystemExit.
        Cancel the download and let it unwind (for what is left of its grace) before the
        caller sees the exception."""
        if self.signum is None:
            self.raised = exc
            now = time.monotonic()
            self.unwind_by, self.deadline = now + UNWIND_GRACE, now + STOP_DEADLINE
        if self.task.done() or self.unwind_by is None:
            return
        self.task.cancel()
        try:
            self.run_until(self.task, self.unwind_by - time.monotonic())
        except BaseException:  # noqa: BLE001 - yet another signal: stop waiting
            self.unwind_by = self.deadline = time.monotonic()

    def outcome(self, task: asyncio.Task[T]) -> T:
        """The download's result, or what stopped it, raised on its own (no exception chained)."""
        if task.done() and not task.cancelled():
            task.exception()  # retrieved, so asyncio does not log it as never retrieved
        if self.signum is not None:
            raise self.exception() from None
        if self.raised is not None:
            raise self.raised
        return task.result()

    def exception(self) -> BaseException:
        assert self.signum is not None
        return KeyboardInterrupt() if self.signum == signal.SIGINT else Stopped(self.signum)

    def watch(self) -> None:
        """On the watchdog thread, from the first stop signal until :func:`run_sync` is done.

        The loop is pinged every :data:`WATCH_EVERY` seconds. One that has not answered for
        :data:`STUCK_AFTER` seconds is stuck in a blocking call: a callback waiting for
        something, a wait for a writer thread or a file-system call. The cancel and the
        deadlines are timers of that loop and cannot reach it there, so the signal is sent
        again, as often as it takes, and the handler raises inside that call.
        """
        assert self.signum is not None
        asked, sent_at = 0, 0.0
        stuck_since: float | None = None
        while True:
            if self._answered == asked:
                stuck_since = None
                asked += 1
                try:
                    self.loop.call_soon_threadsafe(self._answer, asked)
                except RuntimeError:
                    return  # closed: run_sync is past its loop
                sent_at = time.monotonic()
            elif stuck_since is None:
                stuck_since = sent_at
            time.sleep(WATCH_EVERY)
            with self._guard:
                if self.finished:
                    return
                if stuck_since is not None and self.in_loop and time.monotonic() - stuck_since >= STUCK_AFTER:
                    _interrupt_main(self.signum)
                    stuck_since = time.monotonic()

    def _answer(self, ping: int) -> None:
        self._answered = ping


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _tear_down(loop: asyncio.AbstractEventLoop, pool: _files.DaemonThreadPool, stop: _Stop) -> None:
    """What ``asyncio.run`` does after its task, each step with a time limit.

    Unbounded there: the gather of the loop's other tasks once they are cancelled (a task
    whose clean-up waits for a stuck writer thread, or that loses the cancel, never ends),
    ``shutdown_asyncgens`` (an async generator's ``finally`` may await anything), and
    ``shutdown_default_executor`` (no timeout before 3.12, and a ``to_thread`` call such as
    a read on a hung mount cannot be cancelled). At interpreter exit, ``concurrent.futures``
    joins those executor threads again, also without a limit. Here the executor's threads are
    daemons, and whatever is not done in time is left running.
    """
    end = time.monotonic() + SHUTDOWN_WAIT

    def left() -> float:
        until = end if stop.deadline is None else min(end, stop.deadline)
        return max(0.0, until - time.monotonic())

    try:
        tasks = asyncio.all_tasks(loop)
        for t in tasks:
            t.cancel()
        if tasks:
            stop.run_until(asyncio.gather(*tasks, return_exceptions=True), left())
        for t in tasks:
            if t is not stop.task and t.done() and not t.cancelled() and t.exception() is not None:
                loop.call_exception_handler(
                    {"message": "unhandled exception during shutdown", "exception": t.exception(), "task": t}
                )
        stop.run_until(loop.create_task(loop.shutdown_asyncgens()), left())
    except BaseException as exc:  # noqa: BLE001 - a repeated signal (stop has it) or another's interrupt
        if stop.signum is None and stop.raised is None:
            stop.raised = exc
    finally:
        pool.shutdown(wait=False)
        pool.join(min(left(), EXECUTOR_WAIT))
        for t in asyncio.all_tasks(loop):
            with contextlib.suppress(AttributeError):
                t._log_destroy_pending = False  # type: ignore[attr-defined]
            _abandoned.append(t)


def left_running() -> bool:
    """Whether a stopped download was left unwinding when its loop closed (it outlived its grace).

    A command line tool should then end with ``os._exit``: at interpreter exit the garbage
    collector would close that download's coroutine, running its clean-up on a closed loop.
    """
    return bool(_abandoned)


def _signals_to_take(nested: bool) -> list[int]:
    """The stop signals :func:`run_sync` handles here.

    Only on the main thread (Python runs handlers there only). Only over the default handler,
    never over one the user or a framework installed, nor over SIG_IGN (``nohup`` ignores
    SIGHUP on purpose). SIGTERM and SIGHUP never in a Jupyter kernel: its manager stops and
    restarts it with SIGTERM and needs it gone, not a cell that may catch the exception.
    """
    if threading.current_thread() is not threading.main_thread():
        return []
    taken: list[int] = []
    sigint = signal.getsignal(signal.SIGINT)
    if sigint is signal.default_int_handler or (nested and sigint is not None):
        # In a cell the kernel's own handler is replaced on purpose: it raises KeyboardInterrupt
        # wherever the main thread happens to be, possibly inside aiohttp or the loop itself,
        # where a cancel stops the download at an await with its .part closed properly.
        taken.append(signal.SIGINT)
    if not _in_kernel():
        for name in ("SIGTERM", "SIGHUP"):
            signum = getattr(signal, name, None)  # no SIGHUP on Windows
            if signum is not None and signal.getsignal(signum) == signal.SIG_DFL:
                taken.append(signum)
    return taken


def _in_kernel() -> bool:
    """Whether this process is a Jupyter (ipykernel) kernel."""
    app = sys.modules.get("ipykernel.kernelapp")
    if app is None:
        return False
    try:
        return bool(app.IPKernelApp.initialized())
    except Exception:  # noqa: BLE001 - an ipykernel that looks different: assume it is one
        return True


def _interrupt_main(signum: int) -> None:
    ident = threading.main_thread().ident
    if hasattr(signal, "pthread_kill") and ident is not None:
        signal.pthread_kill(ident, signum)  # a real signal: it also ends a blocking wait (EINTR)
    else:
        _thread.interrupt_main(signal.Signals(signum))


_alarms: queue.SimpleQueue[_Stop] | None = None
_alarms_lock = threading.Lock()


def _watchdog() -> queue.SimpleQueue[_Stop]:
    """The queue of the watchdog thread (one per process, started on first use)."""
    global _alarms
    with _alarms_lock:
        if _alarms is None:
            alarms: queue.SimpleQueue[_Stop] = queue.SimpleQueue()
            threading.Thread(target=_watch, args=(alarms,), name="vidnb-watchdog", daemon=True).start()
            _alarms = alarms
        return _alarms


def _watch(alarms: queue.SimpleQueue[_Stop]) -> None:
    while True:
        stop = alarms.get()
        try:
            stop.watch()
        except Exception:  # noqa: BLE001 - the watchdog must outlive one failed look
            log.debug("the stop watchdog failed", exc_info=True)


def _forget_watchdog() -> None:
    # A forked child has none of the parent's threads; it starts its own watchdog when needed.
    global _alarms, _alarms_lock
    _alarms = None
    _alarms_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_watchdog)


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
            # Daemon threads: a stuck to_thread call must not hold up the interpreter's exit.
            loop.set_default_executor(_files.DaemonThreadPool(_EXECUTOR_THREADS, "vidnb-asyncio"))
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


class DownloadTask(DownloadHandle):
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

    @property
    def progress(self) -> ProgressEvent | None:
        """The latest progress event (None before the server answered)."""
        return self._recorder.last

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

