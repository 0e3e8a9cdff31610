"""The one retry rule every fetcher follows.

An attempt is a request. What is limited is *failures in a row*: a request that brought
bytes resets the count, so a long download over a flaky link keeps going as long as it
moves, and a server that keeps failing is given up on after ``Retry.total`` tries. Every
retry is logged the same way, at WARNING.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from ._errors import raise_translated, translate
from ._options import Retry

__all__ = ["Retries"]

log = logging.getLogger("vidnb")


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
