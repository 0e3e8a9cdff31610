"""Errors raised by vidnb.

Every failure a user can meet is one of these; errors from aiohttp, vidnb's own HTTP
path (:class:`TransportError`) and the operating system are translated in :func:`translate`
(and only there), with the original exception chained as ``__cause__``::

    VidnbError
    ├── InvalidURLError          (also ValueError)  the URL cannot be fetched as given
    ├── HTTPStatusError                             the server answered with an error status
    ├── NetworkError                                connection refused, reset, timed out
    ├── IncompleteDownloadError                     fewer bytes arrived than announced
    ├── ChecksumError                               the bytes do not match the expected sha256
    ├── NotAVideoError                              the body is not a video (a page without one, ...)
    │   ├── SeveralVideosError                      a web page shows several videos: pick one with item=
    │   ├── UnsupportedEncryptionError              an HLS stream encrypted with SAMPLE-AES, DRM, ...
    │   └── LiveStreamError                         a live HLS stream, without live_duration=
    ├── TooLargeError                               larger than ``max_bytes``
    ├── DestinationError (also OSError)             cannot write where asked (no space, ...)
    ├── MissingDependencyError (also ImportError)   an optional package is needed (PyAV: pip install av)
    └── BatchError                                  some items of download_many failed (raise_on_error=True)

Messages say what happened and what to do next.
"""

from __future__ import annotations

import asyncio
import errno
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from ._fmt import human_bytes

__all__ = [
    "VidnbError",
    "InvalidURLError",
    "HTTPStatusError",
    "NetworkError",
    "IncompleteDownloadError",
    "ChecksumError",
    "NotAVideoError",
    "SeveralVideosError",
    "PageEntry",
    "UnsupportedEncryptionError",
    "LiveStreamError",
    "TooLargeError",
    "DestinationError",
    "MissingDependencyError",
    "TransportError",
    "Disconnected",
    "BodyCutShort",
    "TransportTimeout",
    "translate",
    "raise_translated",
]


class VidnbError(Exception):
    """Base class of every error vidnb raises on purpose."""

    #: Whether trying the same request again may succeed.
    retryable: bool = False

    def __reduce__(self) -> tuple[Any, ...]:
        # The subclasses take more than a message; rebuild from args and attributes so errors
        # survive pickling (results sent back from worker processes carry them).
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


def _rebuild(cls: type[VidnbError], args: tuple[Any, ...], state: dict[str, Any]) -> VidnbError:
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    return exc


class InvalidURLError(VidnbError, ValueError):
    """The URL is malformed or uses a scheme vidnb will not fetch."""

    def __init__(self, message: str, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class HTTPStatusError(VidnbError):
    """The server answered with a status that is not a success.

    Attributes
    ----------
    status : int
        The HTTP status code.
    url : str
        The URL that answered (redacted of credentials).
    retry_after : float or None
        Seconds the server asked us to wait, from ``Retry-After``.
    """

    def __init__(self, status: int, url: str, reason: str = "", retry_after: float | None = None) -> None:
        self.status = status
        self.url = url
        self.retry_after = retry_after
        what = f"HTTP {status}{' ' + reason if reason else ''} from {url}"
        super().__init__(f"{what}. {_status_hint(status)}")

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return self.status in (408, 429) or self.status >= 500


def _status_hint(status: int) -> str:
    if status in (401, 403):
        return "The server refused access: check the URL, or pass credentials with headers=."
    if status == 404:
        return "Nothing is there: check the URL."
    if status in (408, 429) or status >= 500:
        return "The server is busy or failing: try again later, or raise retries=."
    if 300 <= status < 400:
        return "The redirect could not be followed."
    return "Check the URL and the request headers."


class NetworkError(VidnbError):
    """The connection failed, was reset, or timed out."""

    retryable = True


class IncompleteDownloadError(VidnbError):
    """The body ended before all announced bytes arrived."""

    retryable = True

    def __init__(self, message: str, received: int = 0, expected: int | None = None) -> None:
        super().__init__(message)
        self.received = received
        self.expected = expected


class ChecksumError(VidnbError):
    """The downloaded bytes do not hash to the expected sha256."""

    def __init__(self, message: str, expected: str = "", actual: str = "") -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class NotAVideoError(VidnbError):
    """The body is not a recognised video container (with ``require_video=True``)."""


@dataclass(frozen=True)
class PageEntry:
    """One video of a web page that shows several (see :class:`SeveralVideosError`)."""

    title: str | None
    duration: float | None
    url: str | None


class SeveralVideosError(NotAVideoError):
    """A web page shows several videos and ``download()`` saves one: say which (``item=``).

    ``download_many(page_url, ...)`` downloads all of them.

    Attributes
    ----------
    entries : list of PageEntry
        The page's videos, in the page's order (``item=1`` is the first).
    """

    def __init__(self, message: str, entries: list[PageEntry]) -> None:
        super().__init__(message)
        self.entries = entries


class UnsupportedEncryptionError(NotAVideoError):
    """The stream is encrypted in a way vidnb cannot undo (SAMPLE-AES, DRM key formats, ...).

    A ``NotAVideoError``: without decryption the result would not be a playable video.

    Attributes
    ----------
    method : str
        The ``METHOD`` of the ``EXT-X-KEY`` tag (``"SAMPLE-AES"``, ...).
    """

    def __init__(self, message: str, method: str) -> None:
        super().__init__(message)
        self.method = method


class LiveStreamError(NotAVideoError):
    """The playlist is live (no ``EXT-X-ENDLIST``) and no recording length was given.

    A ``NotAVideoError``: a live stream is not one video with an end, so there is nothing
    complete to save until the caller says how much of it to record (``live_duration=``).
    """


class TooLargeError(VidnbError):
    """The video is larger than ``max_bytes``."""

    def __init__(self, message: str, limit: int = 0, size: int | None = None) -> None:
        super().__init__(message)
        self.limit = limit
        self.size = size


class DestinationError(VidnbError, OSError):
    """vidnb cannot write the file where it was asked to."""

    def __init__(self, message: str, path: Path | str | None = None, needed: int | None = None) -> None:
        # OSError.__init__ with one argument keeps str(exc) == message.
        super().__init__(message)
        self.path = Path(path) if path is not None else None
        self.needed = needed


class MissingDependencyError(VidnbError, ImportError):
    """A package vidnb needs for this feature is not installed (PyAV for probing, thumbnails, remuxing;
    fsspec and s3fs, gcsfs or adlfs for a destination on object storage).

    Also an ``ImportError``, so code that already guards optional imports catches it.

    Attributes
    ----------
    package : str
        What to install, e.g. ``"av"``.

    Examples
    --------
    >>> str(MissingDependencyError("av", "PyAV"))
    'PyAV is not installed; it is needed to read and convert videos: pip install av'
    """

    def __init__(
        self, package: str, what: str | None = None, *, needed_for: str = "to read and convert videos",
        install: str | None = None,
    ) -> None:
        super().__init__(
            f"{what or package} is not installed; it is needed {needed_for}: pip install {install or package}",
            name=package,
        )
        self.package = package


class TransportError(Exception):
    """A failure of vidnb's own HTTP path (:mod:`vidnb._wire`), as aiohttp's ``ClientError`` is of
    aiohttp's. Not raised to users: :func:`translate` names it, as it names aiohttp's errors,
    so both paths are retried and reported alike without the lean one importing aiohttp."""


class Disconnected(TransportError):
    """The server closed the connection before the answer's head arrived."""


class BodyCutShort(TransportError):
    """The connection ended before the body's announced length arrived."""


class TransportTimeout(TransportError):
    """Connecting, or waiting for the next bytes, took longer than ``timeout=`` allows."""


def translate(
    exc: BaseException, *, url: str = "", path: Path | None = None, needed: int | None = None
) -> VidnbError | None:
    """Map an aiohttp, transport, asyncio or OS error to the matching :class:`VidnbError`.

    The caller raises the result ``from exc``. Errors that are already ours pass through.
    Anything else (an ``AttributeError`` from a bug, say) gives None: it must propagate as
    the bug it is, not be passed off as a network or user error.
    """
    if isinstance(exc, VidnbError):
        return exc
    if isinstance(exc, BodyCutShort):
        return _cut_short(exc, url)
    if isinstance(exc, (TransportTimeout, asyncio.TimeoutError)):
        return _timed_out(url)
    if isinstance(exc, TransportError):
        return NetworkError(f"Network error talking to {url}: {exc}")
    # Looked up, not imported: an aiohttp error exists only once aiohttp is, and a download
    # that never needed aiohttp (every plain-http answer on the lean path) never imports it.
    aiohttp = sys.modules.get("aiohttp")
    if aiohttp is not None:
        err = _aiohttp_error(aiohttp, exc, url)
        if err is not None:
            return err
    if isinstance(exc, OSError):
        return _os_error(exc, path, needed)
    return None


def _aiohttp_error(aiohttp: Any, exc: BaseException, url: str) -> VidnbError | None:
    if isinstance(exc, aiohttp.TooManyRedirects):
        return HTTPStatusError(exc.status or 310, url, "too many redirects (more than 10)")
    if isinstance(exc, (aiohttp.InvalidUrlRedirectClientError, aiohttp.NonHttpUrlRedirectClientError)):
        return InvalidURLError(
            f"{url} redirected to a URL vidnb will not follow ({exc}); only http and https redirects are followed.",
            url,
        )
    if isinstance(exc, aiohttp.InvalidURL):
        return InvalidURLError(f"Invalid URL {url}: {exc}. Check for typos.", url)
    if isinstance(exc, aiohttp.ClientResponseError):
        return HTTPStatusError(exc.status, url, exc.message or "")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return _cut_short(exc, url)
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return _timed_out(url)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return NetworkError(f"Cannot connect to {url}: {exc.os_error.strerror or exc}. Is the server up?")
    if isinstance(exc, aiohttp.ClientError):
        return NetworkError(f"Network error talking to {url}: {type(exc).__name__}: {exc}")
    return None


def _cut_short(exc: BaseException, url: str) -> IncompleteDownloadError:
    return IncompleteDownloadError(
        f"The connection to {url} broke in the middle of the body ({exc}). "
        "The partial file is kept; run the same call again to resume."
    )


def _timed_out(url: str) -> NetworkError:
    return NetworkError(
        f"Timed out talking to {url}. The server is slow or unreachable: try again, or pass a larger timeout=."
    )


def _os_error(exc: OSError, path: Path | None, needed: int | None) -> DestinationError:
    where = f" {path}" if path else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        need = f" About {human_bytes(needed)} more is needed." if needed else ""
        return DestinationError(
            f"No space left on the device holding{where}.{need} "
            "The partial file is kept: free some space and run the same call again to resume.",
            path,
            needed,
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return DestinationError(f"Not allowed to write{where}: {exc.strerror}. Choose a writable folder.", path)
    return DestinationError(f"Cannot write{where}: {exc.strerror or exc}.", path)


def raise_translated(exc: BaseException, **where: Any) -> NoReturn:
    """Raise ``exc`` as vidnb names it (:func:`translate`), chained; unknown errors as themselves."""
    err = translate(exc, **where)
    if err is None or err is exc:
        raise exc
    raise err from exc
