"""The options of a download, checked once.

:func:`vidnb.download` and every other front door (``download_sync``, ``start``,
``download_many``, the panel, the CLI) take the same keyword arguments, described by
:class:`DownloadOptions` so a type checker catches a misspelt or mistyped one. They are
turned into one frozen :class:`Options` by :func:`make_options`, which refuses bad values
before any request is made; everything below the front doors takes that object.
"""

from __future__ import annotations

import os
import random
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, TypedDict, Union, cast

from ._fmt import parse_size
from ._progress import ProgressOption
from ._rate import RateLimiter
from ._variant import VariantChoice, parse_variant

if TYPE_CHECKING:
    import aiohttp
    from typing_extensions import Unpack

__all__ = [
    "Retry",
    "DownloadOptions",
    "BatchOptions",
    "Options",
    "Connections",
    "make_options",
    "check_sha256",
    "check_connections",
    "check_rate",
    "most_connections",
    "client_timeout",
    "Timeout",
    "AnyTimeout",
    "CONNECT_TIMEOUT",
    "READ_TIMEOUT",
    "MAX_CONNECTIONS",
    "AUTO_MAX",
    "HLS_SEGMENTS",
]

#: Seconds to wait for a connection, and for each read of the body.
CONNECT_TIMEOUT = 30.0
READ_TIMEOUT = 60.0
#: The most connections ``connections=N`` accepts, and the most ``"auto"`` opens.
MAX_CONNECTIONS = 32
AUTO_MAX = 16
#: HLS segments fetched at once when ``connections`` is 1 or "auto": segments are separate
#: small requests, and a few at once hide each one's latency.
HLS_SEGMENTS = 4

Connections = Union[int, Literal["auto"]]


@dataclass(frozen=True)
class Timeout:
    """Seconds to wait for a connection, and for each read of a body (None: no limit).

    The ``timeout=`` option as vidnb keeps it: never a limit on the whole download. The
    fields are named as ``aiohttp.ClientTimeout``'s, so one of those passed as ``timeout=`` is
    read the same way; :func:`vidnb._http.get` gives aiohttp the equivalent when it asks.

    >>> Timeout(5.0, 5.0).sock_read
    5.0
    """

    sock_connect: float | None = CONNECT_TIMEOUT
    sock_read: float | None = READ_TIMEOUT


#: A checked ``timeout=``: vidnb's own, or an ``aiohttp.ClientTimeout`` given as it is.
AnyTimeout = Union[Timeout, "aiohttp.ClientTimeout"]


@dataclass(frozen=True)
class Retry:
    """How often and how patiently to try again.

    Parameters
    ----------
    total : int
        Failed requests in a row that are tried again (``retries=5`` means up to 6 requests
        in a row without progress). A request that brought bytes resets the count.
    backoff : float
        First wait in seconds; it doubles each time, with jitter, up to ``max_backoff``.
    max_retry_after : float
        The longest ``Retry-After`` honoured; longer requests are cut to this.

    Examples
    --------
    >>> import vidnb
    >>> vidnb.Retry(total=3, backoff=0.1).delay(2)  # doctest: +SKIP
    0.15
    """

    total: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = 120.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``attempt``-th failure in a row."""
        if retry_after is not None:
            return max(0.0, min(retry_after, self.max_retry_after))
        cap = min(self.max_backoff, self.backoff * 2 ** max(attempt - 1, 0))
        # "Equal jitter": never less than half the backoff, so a herd of clients spreads out
        # without any of them hammering the server right away.
        return random.uniform(cap / 2, cap)


class BatchOptions(TypedDict, total=False):
    """The options of :func:`vidnb.download` that apply to every item of a batch alike: all of
    :class:`DownloadOptions` but ``progress`` and ``session`` (parameters of ``download_many``
    itself) and ``sha256`` (each item has its own)."""

    overwrite: bool
    resume: bool
    retries: int | Retry
    timeout: float | aiohttp.ClientTimeout | None
    chunk_size: int | None
    headers: Mapping[str, str] | None
    max_bytes: int | None
    require_video: bool
    connections: Connections
    quality: str | int | None
    variant: str | int | None
    format: str | None
    item: int | None
    live_duration: float | None
    remux: bool
    max_rate: int | str | None
    storage_options: Mapping[str, Any] | None
    tmp_dir: str | os.PathLike[str] | None


class DownloadOptions(BatchOptions, total=False):
    """The keyword arguments of :func:`vidnb.download`, for ``**kwargs: Unpack[DownloadOptions]``.

    See :func:`vidnb.download` for what each one does.
    """

    sha256: str | None
    progress: ProgressOption
    session: aiohttp.ClientSession | None


@dataclass(frozen=True)
class Options:
    """Validated download options (what :func:`make_options` builds); ``session`` is kept apart."""

    overwrite: bool = False
    resume: bool = True
    retry: Retry = field(default_factory=Retry)
    timeout: AnyTimeout = field(default_factory=Timeout)
    chunk_size: int | None = None
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    sha256: str | None = None
    max_bytes: int | None = None
    require_video: bool = True
    progress: ProgressOption = "auto"
    connections: Connections = 1
    #: ``quality=`` (``variant=`` is its older name): the stream of an HLS master or the
    #: format of a page.
    quality: VariantChoice = field(default_factory=lambda: VariantChoice("best"))
    #: A yt-dlp format selector for pages (``"bv*+ba/b"``), overriding ``quality``.
    format: str | None = None
    #: For a page with several videos: which one (1-based, as listed in the error).
    item: int | None = None
    live_duration: float | None = None
    remux: bool = True
    #: Bytes per second for the whole download (all its connections together).
    max_rate: int | None = None
    #: What paces ``max_rate``: made with the options, so everything that runs with them (all
    #: connections of one download, every item of a batch, every row of a panel) shares the
    #: limit. Not an option of its own; None without ``max_rate``.
    limiter: RateLimiter | None = field(default=None, compare=False, repr=False)
    #: Passed to fsspec for a remote destination (``s3://...``).
    storage_options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    #: Where a remote destination's local ``.part`` files go (default: the system's temp folder).
    tmp_dir: str | None = None

    def __post_init__(self) -> None:
        # A limiter for the rate asked (kept through replace() while the rate is the same).
        if self.max_rate is None:
            limiter = None
        elif self.limiter is None or self.limiter.rate != self.max_rate:
            limiter = RateLimiter(self.max_rate)
        else:
            limiter = self.limiter
        object.__setattr__(self, "limiter", limiter)

    def with_connections(self, connections: Connections) -> Options:
        return replace(self, connections=connections)

    @property
    def segments_at_once(self) -> int:
        """HLS segments fetched at once: ``connections``, where 1 and "auto" mean HLS_SEGMENTS."""
        return HLS_SEGMENTS if self.connections in (1, "auto") else int(self.connections)


def make_options(**kwargs: Unpack[DownloadOptions]) -> Options:
    """Check every option and build the :class:`Options` (``session`` is ignored here).

    Raises ``ValueError`` (or ``TypeError``) naming the option and what it accepts, before
    anything touches the network or the disk.

    >>> make_options(retries=2, connections="auto").retry.total
    2
    """
    known = DownloadOptions.__annotations__  # the inherited BatchOptions keys included
    unknown = sorted(set(kwargs) - set(known))
    if unknown:
        raise TypeError(f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                        f"download() takes {', '.join(known)}")
    max_bytes = kwargs.get("max_bytes")
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0):
        raise ValueError(f"max_bytes must be a positive number of bytes, not {max_bytes!r}")
    chunk_size = kwargs.get("chunk_size")
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size <= 0):
        raise ValueError(f"chunk_size must be a positive number of bytes, not {chunk_size!r}")
    live = kwargs.get("live_duration")
    if live is not None and (isinstance(live, bool) or not isinstance(live, (int, float)) or live <= 0):
        raise ValueError(f"live_duration must be a positive number of seconds, not {live!r}")
    return Options(
        overwrite=bool(kwargs.get("overwrite", False)),
        resume=bool(kwargs.get("resume", True)),
        retry=_retry_policy(kwargs.get("retries", 5)),
        timeout=client_timeout(kwargs.get("timeout")),
        chunk_size=chunk_size,
        headers=MappingProxyType(dict(kwargs.get("headers") or {})),
        sha256=check_sha256(kwargs.get("sha256")),
        max_bytes=max_bytes,
        require_video=bool(kwargs.get("require_video", True)),
        progress=kwargs.get("progress", "auto"),
        connections=check_connections(kwargs.get("connections", 1)),
        quality=_quality(kwargs),
        format=_text_option("format", kwargs.get("format")),
        item=_item(kwargs.get("item")),
        live_duration=float(live) if live is not None else None,
        remux=bool(kwargs.get("remux", True)),
        max_rate=check_rate(kwargs.get("max_rate")),
        storage_options=MappingProxyType(dict(kwargs.get("storage_options") or {})),
        tmp_dir=os.fspath(tmp) if (tmp := kwargs.get("tmp_dir")) is not None else None,
    )


def _quality(kwargs: DownloadOptions) -> VariantChoice:
    """``quality=``, or ``variant=`` (its older name); both given must agree."""
    quality, variant = kwargs.get("quality"), kwargs.get("variant")
    if quality is not None and variant is not None and parse_variant(quality) != parse_variant(variant):
        raise ValueError(f"quality={quality!r} and variant={variant!r} disagree; variant is the older name "
                         "of quality, give only quality")
    chosen = quality if quality is not None else variant if variant is not None else "best"
    try:
        return parse_variant(chosen)
    except ValueError as exc:
        # Name the option the caller used.
        raise ValueError(str(exc).replace("variant=", "quality=" if quality is not None else "variant=", 1)) from None


def _text_option(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, not {value!r}")
    return value.strip()


def _item(item: object) -> int | None:
    if item is None:
        return None
    if isinstance(item, bool) or not isinstance(item, int) or item < 1:
        raise ValueError(f"item must be the number of one video on the page (1 for the first), not {item!r}")
    return item


def check_rate(rate: object) -> int | None:
    """``max_rate=``: bytes per second as a number, or a size word per second ("5M" is 5 MiB/s).

    >>> check_rate("2M"), check_rate(1000), check_rate(None)
    (2097152, 1000, None)
    """
    if rate is None:
        return None
    if isinstance(rate, str):
        try:
            return parse_size(rate.removesuffix("/s"))
        except ValueError:
            raise ValueError(f"max_rate={rate!r} is not a rate; use bytes per second (1000000) or a size "
                             "per second such as '5M' or '500K'") from None
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate <= 0:
        raise ValueError(f"max_rate must be a positive number of bytes per second or a size such as '5M', "
                         f"not {rate!r}")
    return max(1, int(rate))


def client_timeout(timeout: float | aiohttp.ClientTimeout | None) -> AnyTimeout:
    """The checked ``timeout=`` option: it bounds connecting and each read, never the whole
    download (long videos take long). An ``aiohttp.ClientTimeout`` is kept as it is."""
    if timeout is None:
        return Timeout()
    # A ClientTimeout exists only once aiohttp is imported: looked up, so vidnb need not import it.
    aio = sys.modules.get("aiohttp")
    if aio is not None and isinstance(timeout, aio.ClientTimeout):
        return cast("aiohttp.ClientTimeout", timeout)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    return Timeout(float(timeout), float(timeout))


def check_connections(connections: object) -> Connections:
    """Validate the ``connections=`` option: a whole number from 1 to MAX_CONNECTIONS, or "auto"."""
    if connections == "auto":
        return "auto"
    if isinstance(connections, bool) or not isinstance(connections, int) or not 1 <= connections <= MAX_CONNECTIONS:
        raise ValueError(
            f'connections must be a whole number from 1 to {MAX_CONNECTIONS} or "auto", not {connections!r}'
        )
    return connections


def most_connections(connections: object) -> int:
    """The most connections one download with this option holds at once: byte ranges of one
    file (``"auto"`` may reach AUTO_MAX), or segments of an HLS stream."""
    checked = check_connections(connections)
    if checked == "auto":
        return AUTO_MAX
    return HLS_SEGMENTS if checked == 1 else checked


def _retry_policy(retries: object) -> Retry:
    if isinstance(retries, Retry):
        return retries
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be a whole number >= 0 or a vidnb.Retry, not {retries!r}")
    return Retry(total=retries)


_SHA256 = re.compile(r"[0-9a-f]{64}")


def check_sha256(sha256: object) -> str | None:
    """The ``sha256=`` option as lowercase hex (a ``sha256:`` prefix is accepted), or None."""
    if sha256 is None:
        return None
    if not isinstance(sha256, str):
        raise ValueError(f"sha256 must be 64 hex digits, not {sha256!r}")
    digest = sha256.strip().lower()
    if digest.startswith("sha256:"):
        digest = digest[7:]
    if not _SHA256.fullmatch(digest):
        raise ValueError(f"sha256 must be 64 hex digits, not {sha256!r}")
    return digest
