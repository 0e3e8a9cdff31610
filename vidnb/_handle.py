"""A download running on some event loop, seen from any thread: await it, cancel it, ask it.

:class:`vidnb.DownloadTask` (``vidnb.start``) and the panel's rows are both this handle over
an asyncio task (made on the loop's thread) or a ``concurrent.futures.Future`` (made from
another thread with ``run_coroutine_threadsafe``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Generator
from typing import Any

from ._progress import State
from ._result import DownloadResult

__all__ = ["DownloadHandle", "in_loop_thread"]

Future = asyncio.Future[DownloadResult] | concurrent.futures.Future[DownloadResult]


def in_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether ``loop`` is the loop running in this thread."""
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


class DownloadHandle:
    """The parts of a background download that do not depend on who started it.

    Subclasses set ``_loop`` and ``_future`` when they start the download.
    """

    _loop: asyncio.AbstractEventLoop
    _future: Future

    def __await__(self) -> Generator[Any, None, DownloadResult]:
        fut = self._future
        if isinstance(fut, concurrent.futures.Future):
            return asyncio.wrap_future(fut).__await__()
        return fut.__await__()

    def cancel(self) -> bool:
        """Stop the download; its ``.part`` stays, so starting it again resumes.

        Safe from any thread. Returns False when it had already ended.
        """
        fut = self._future
        if fut.done():
            return False
        if self._loop.is_running() and not in_loop_thread(self._loop):
            # Cancelled on the loop's own thread, so the task's callbacks (bar, row) run there.
            self._loop.call_soon_threadsafe(fut.cancel)
            return True
        return fut.cancel()

    def done(self) -> bool:
        """True once the download ended (done, failed or cancelled)."""
        return self._future.done()

    def cancelled(self) -> bool:
        return self._future.cancelled()

    def result(self) -> DownloadResult:
        """The result once done; raises the download's error if it failed."""
        if not self._future.done():
            raise asyncio.InvalidStateError("The download has not ended: `await task` to wait for it.")
        return self._future.result()

    def exception(self) -> BaseException | None:
        """The download's error once it ended (None when it succeeded)."""
        if not self._future.done():
            raise asyncio.InvalidStateError("The download has not ended.")
        return self._future.exception()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the download runs on."""
        return self._loop

    @property
    def state(self) -> State:
        """"running" (queued or downloading), then "done", "failed" or "cancelled"."""
        fut = self._future
        if not fut.done():
            return "running"
        if fut.cancelled():
            return "cancelled"
        return "failed" if fut.exception() is not None else "done"
