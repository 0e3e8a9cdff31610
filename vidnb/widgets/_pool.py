"""The panel's downloads: a bounded pool on one loop and one shared session, and a handle per row.

A :class:`Pool` lets ``size`` downloads run at once, in the order they were queued; the
rest wait for a slot (and can be cancelled while they wait). Every download of the pool
shares one ``aiohttp.ClientSession``, so connections are reused from one file to the next:
it is made on the pool's loop when the first download gets its slot and closed as soon as
the pool has drained, so an idle panel holds no sockets. A :class:`RowTask` is what a row
keeps of its download: a future on the pool's loop that can be awaited and cancelled from
any thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp

from .._engine import PathLike, download_with
from .._handle import DownloadHandle, in_loop_thread
from .._http import new_session, ssl_context
from .._options import MAX_CONNECTIONS, Options
from .._progress import ProgressEvent
from .._result import DownloadResult

__all__ = ["CONCURRENCY", "Pool", "RowTask", "background_loop"]

#: Downloads a panel runs at once unless told otherwise: as many as ``download_many`` runs.
CONCURRENCY = 8


class Pool:
    """Runs downloads at most ``size`` at a time, first queued first started, on one session.

    Everything but the constructor runs on ``loop``.

    Parameters
    ----------
    size : int
        Downloads running at once.
    loop : asyncio.AbstractEventLoop
        The loop the downloads run on.
    session : aiohttp.ClientSession, optional
        A session to use instead of the pool's own; it is never closed here.

    Examples
    --------
    >>> pool = Pool(2, asyncio.get_running_loop())                        # doctest: +SKIP
    >>> result = await pool.run(url, "videos/", make_options(), lambda: None)  # doctest: +SKIP
    """

    def __init__(
        self, size: int, loop: asyncio.AbstractEventLoop, session: aiohttp.ClientSession | None = None
    ) -> None:
        self.size = size
        self.loop = loop
        self._given = session
        #: The session the running downloads share; None while the pool is idle.
        self.session: aiohttp.ClientSession | None = session
        #: Sessions this pool has made so far (one per stretch of activity).
        self.sessions_made = 0
        self._running = 0
        self._members = 0  # downloads queued or running
        self._waiting: deque[asyncio.Future[None]] = deque()

    async def run(self, url: str, dest: PathLike, opts: Options, on_start: Callable[[], None]) -> DownloadResult:
        """Wait for a slot, call ``on_start``, download ``url`` with the engine, free the slot.

        When this was the last download queued or running, the shared session is closed
        before returning.
        """
        self._members += 1
        try:
            await self._take_slot()
            try:
                on_start()
                return await download_with(url, dest, opts, self._session())
            finally:
                self._free_slot()
        finally:
            self._members -= 1
            if self._members == 0:
                await self._close_session()

    async def _take_slot(self) -> None:
        if self._running < self.size and not self._waiting:
            self._running += 1
            return
        turn = self.loop.create_future()
        self._waiting.append(turn)
        try:
            await turn  # resolved by _free_slot, which hands its slot over
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._free_slot()  # handed a slot in the same turn as the cancel: pass it on
            elif turn in self._waiting:  # not yet passed over by _free_slot
                self._waiting.remove(turn)
            raise

    def _free_slot(self) -> None:
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)  # the slot goes to the next in line, so _running stays
                return
        self._running -= 1

    def _session(self) -> aiohttp.ClientSession:
        if self.session is None:
            # The pool bounds the downloads and each download its own connections, so the
            # connector only needs room for all of them at once.
            connector = aiohttp.TCPConnector(limit=self.size * MAX_CONNECTIONS, ssl=ssl_context())
            self.session = new_session(connector=connector)
            self.sessions_made += 1
        return self.session

    async def _close_session(self) -> None:
        session = self.session
        if session is None or session is self._given:
            return
        # Forgotten first: a download queued while this closes makes a fresh session.
        self.session = None
        # Shielded: a second cancel of the last download must not leave sockets open.
        await asyncio.shield(session.close())


class RowTask(DownloadHandle):
    """A row's download on its pool's loop: await it for the :class:`~vidnb.DownloadResult`.

    Made on the loop's thread, it is an asyncio task; made on another thread (a panel used
    from a plain script), a ``concurrent.futures.Future``. Either way ``on_done`` runs once it
    ended, on the loop's thread (unless it is cancelled while that loop is not running).

    Parameters
    ----------
    coro : coroutine
        The download (usually :meth:`Pool.run`).
    loop : asyncio.AbstractEventLoop
        The pool's loop.
    on_done : callable
        Called with this task when the download ended, however it ended.
    progress : callable
        Returns the latest progress event (for :attr:`progress`).

    Examples
    --------
    >>> result = await row.task          # doctest: +SKIP
    >>> row.task.cancel()                # from any thread  # doctest: +SKIP
    """

    def __init__(
        self,
        coro: Coroutine[Any, Any, DownloadResult],
        loop: asyncio.AbstractEventLoop,
        on_done: Callable[[RowTask], None],
        progress: Callable[[], ProgressEvent | None],
    ) -> None:
        self._loop = loop
        self._progress = progress
        self._future: asyncio.Future[DownloadResult] | concurrent.futures.Future[DownloadResult]
        if in_loop_thread(loop):
            self._future = loop.create_task(coro)
        else:
            self._future = asyncio.run_coroutine_threadsafe(coro, loop)
        # With this task as argument: it may end (on the loop's thread) before its maker
        # has stored it anywhere.
        self._future.add_done_callback(lambda _: on_done(self))

    @property
    def progress(self) -> ProgressEvent | None:
        """The latest progress event (None until the server answered)."""
        return self._progress()


_background: asyncio.AbstractEventLoop | None = None
_background_lock = threading.Lock()


def background_loop() -> asyncio.AbstractEventLoop:
    """A loop on a daemon thread, for panels used where no loop runs (a plain script)."""
    global _background
    with _background_lock:
        if _background is None or _background.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="vidnb-panel-loop", daemon=True).start()
            _background = loop
        return _background
