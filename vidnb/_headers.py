"""Parsing the HTTP response headers that decide retries and resumes."""

from __future__ import annotations

import email.utils
import re
import time
from typing import Any

from ._errors import HTTPStatusError

#: Redirects followed before giving up (every request vidnb makes).
MAX_REDIRECTS = 10

_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)", re.I)


def content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total) from a Content-Range header; None where absent or unknown.

    >>> content_range("bytes 100-199/1000"), content_range("bytes */1000"), content_range(None)
    ((100, 1000), (None, 1000), (None, None))
    """
    m = _CONTENT_RANGE.match((value or "").strip())
    if not m:
        return None, None
    start = int(m.group(1)) if m.group(1) is not None else None
    total = int(m.group(3)) if m.group(3) != "*" else None
    return start, total


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delay seconds or an HTTP date), or None.

    >>> retry_after("120"), retry_after("soon")
    (120.0, None)
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def raise_for_status(resp: Any, shown_url: str) -> None:
    """Raise :class:`HTTPStatusError` for a 4xx/5xx answer, with its Retry-After for the retry policy."""
    if resp.status >= 400:
        raise HTTPStatusError(
            resp.status, shown_url, resp.reason or "", retry_after=retry_after(resp.headers.get("Retry-After"))
        )
