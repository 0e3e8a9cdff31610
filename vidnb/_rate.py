"""The bandwidth limit (``max_rate=``): bytes handed on at most at a rate, however many readers share it.

One :class:`RateLimiter` paces every connection of one download (one stream, byte ranges,
HLS segments), or of a whole batch or panel: :func:`~vidnb._options.make_options` makes one
per call, and everything that runs with those options shares it. Every body is read through
:func:`vidnb._http.body`, which passes each chunk through :meth:`RateLimiter.paced`, so a new
fetcher gets the limit by reading the way the others do.

How it paces
    A token bucket holding at most :data:`BURST_SECONDS` of the rate. A chunk that has
    arrived takes its bytes from the bucket and waits until the bucket has paid for them
    (the bucket may go into debt; later takers wait behind the debt, so readers are served
    in turn). While vidnb waits, aiohttp stops reading the socket once its buffer is full,
    and TCP slows the server down: the limit holds on the wire too, after the first socket
    buffer's worth. A chunk larger than :data:`PIECE_SECONDS` of the rate is handed on in
    pieces, so no second carries much more than the rate: over any span of time at most
    the rate times that span plus one bucket and one piece go through.

It works from any event loop and thread (a lock guards the arithmetic, and waiting is an
``asyncio.sleep`` on the caller's loop), and it pickles: a copy unpickled in another process
(a Dask worker) is shared by everything unpickled there from the same limiter, so each worker
process keeps to the limit on its own.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from ._fmt import human_rate

_Chunk = TypeVar("_Chunk", bytes, memoryview)

__all__ = ["RateLimiter", "BURST_SECONDS", "PIECE_SECONDS", "MIN_PIECE"]

#: The bucket holds this many seconds of the rate: after a pause (a retry's wait, a gap
#: between files of a batch) at most this much goes through at once.
BURST_SECONDS = 0.1
#: Chunks above this many seconds of the rate are handed on in pieces of this size.
PIECE_SECONDS = 0.05
#: The smallest piece and bucket, so a very low rate is not paced byte by byte.
MIN_PIECE = 1024

#: Limiters alive in this process by key: an unpickled copy joins the one already here.
_SHARED: weakref.WeakValueDictionary[str, RateLimiter] = weakref.WeakValueDictionary()
_SHARED_LOCK = threading.RLock()  # held while _shared makes one, whose __init__ takes it again


class RateLimiter:
    """Pace bytes to at most ``rate`` per second across every reader that shares this object.

    Parameters
    ----------
    rate : int
        Bytes per second.
    clock : callable, optional
        Seconds, monotonic (default ``time.monotonic``); tests pass their own.
    sleep : callable, optional
        ``await sleep(seconds)`` to wait (default ``asyncio.sleep``); tests pass their own.

    Examples
    --------
    >>> clock = iter([0.0, 0.0]).__next__
    >>> limiter = RateLimiter(1_000_000, clock=clock)
    >>> limiter.reserve(100_000)   # within the bucket (0.1 s of the rate): no wait
    0.0
    >>> limiter.reserve(200_000)   # 0.2 s of bytes more than the bucket held
    0.2
    """

    def __init__(
        self,
        rate: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        key: str | None = None,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be a positive number of bytes per second, not {rate!r}")
        self.rate = rate
        self.capacity = max(MIN_PIECE, int(rate * BURST_SECONDS))
        self.piece = max(MIN_PIECE, int(rate * PIECE_SECONDS))
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = float(self.capacity)  # starts full; below zero is debt
        self._last: float | None = None
        self.key = key or uuid.uuid4().hex
        with _SHARED_LOCK:
            _SHARED.setdefault(self.key, self)

    def reserve(self, n: int) -> float:
        """Take ``n`` bytes from the bucket now; return the seconds to wait before handing them on."""
        with self._lock:
            now = self._clock()
            if self._last is not None:
                self._tokens = min(float(self.capacity), self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= n
            return max(0.0, -self._tokens / self.rate)

    async def take(self, n: int) -> None:
        """Wait until ``n`` bytes may be handed on (at once when the bucket has them)."""
        delay = self.reserve(n)
        if delay > 0:
            await self._sleep(delay)

    async def paced(self, chunks: AsyncIterable[_Chunk]) -> AsyncIterator[_Chunk]:
        """``chunks`` again, each (or each piece of a large one) once the limit allows it."""
        piece = self.piece
        async for chunk in chunks:
            if len(chunk) <= piece:
                await self.take(len(chunk))
                yield chunk
                continue
            for i in range(0, len(chunk), piece):
                cut = chunk[i : i + piece]
                await self.take(len(cut))
                yield cut

    def __reduce__(self) -> tuple[Any, ...]:
        # The lock and the clock stay behind; the key makes the copies in one process one limiter.
        return (_shared, (self.key, self.rate))

    def __repr__(self) -> str:
        return f"<RateLimiter {human_rate(self.rate)}>"


def _shared(key: str, rate: int) -> RateLimiter:
    """The limiter of ``key`` in this process (an unpickled copy joins the one already here)."""
    with _SHARED_LOCK:
        found = _SHARED.get(key)
        return found if found is not None else RateLimiter(rate, key=key)
