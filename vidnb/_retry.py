"""The one retry rule every fetcher follows.

An attempt is a request. What is limited is *failures in a row*: a request that brought at
least :data:`PROGRESS` bytes before it failed resets the count, so a long download over a
flaky link keeps going as long as it moves, while a server that keeps failing (or trickles
a few bytes and stalls) is given up on after ``Retry.total`` tries. Every retry is logged
the same way, at WARNING.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from ._errors import raise_translated, translate
from ._options import Retry

__all__ = ["Retries", "PROGRESS", "failures_after"]

log = logging.getLogger("vidnb")

#: Bytes a failed request must have brought to count as progress.
PROGRESS = 1 << 20


def failures_after(failures: int, brought: int) -> int:
    """The failures in a row once a request that brought ``brought`` bytes has failed.

    >>> failures_after(3, 10), failures_after(3, PROGRESS)
    (4, 1)
    """
    return 1 if brought >= PROGRESS else failures + 1


class Retries:
    """Counts the requests of one download that were tried again, and waits before each.

    Each resource being fetched (the stream, a byte range, a segment) keeps its own count
    of failures in a row; this object keeps the total for ``DownloadResult.attempts``.

    Examples
    --------
    >>> retries = Retries(Retry(total=3))
    >>> retries.retried
    0
    """

    def __init__(self, retry: Retry) -> None:
        self.retry = retry
        #: Requests that were tried again, over the whole download.
        self.retried = 0

    async def wait(
        self,
        exc: BaseException,
        failures: int,
        *,
        what: str,
        url: str,
        path: Path | None = None,
        needed: int | None = None,
    ) -> None:
        """After the ``failures``-th failure in a row of ``what``: wait, or raise.

        Raises ``exc`` as vidnb names it when it may not be retried or the retries are
        spent; an error vidnb does not know (a bug) propagates unchanged at once.
        """
        err = translate(exc, url=url, path=path, needed=needed)
        if err is None or not err.retryable or failures > self.retry.total:
            raise_translated(exc, url=url, path=path, needed=needed)
        delay = self.retry.delay(failures, getattr(err, "retry_after", None))
        self.retried += 1
        log.warning(
            "%s of %s failed (%s: %s), %d of %d in a row; retrying in %.1f s",
            what,
            url,
            type(err).__name__,
            err,
            failures,
            self.retry.total + 1,
            delay,
        )
        await asyncio.sleep(delay)
