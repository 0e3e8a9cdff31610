"""The one place vidnb talks HTTP: the session, one GET, the check of a 206, the first bytes.

Every fetcher (one stream, byte ranges, HLS) and ``vidnb info`` go through :func:`get`, so
every request asks for the bytes as stored (``Accept-Encoding: identity``, no decompression:
bytes on disk are the bytes on the wire), follows the same number of redirects and turns an
error status into :class:`~vidnb.HTTPStatusError` the same way. :func:`continues` is the one
check that a 206 answer holds exactly the bytes asked for.

A :class:`Session` is what downloads share: the lean path of :mod:`vidnb._wire`, and an aiohttp
``ClientSession`` made (and aiohttp imported) when an answer first needs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

from ._headers import MAX_REDIRECTS, content_range, raise_for_status
from ._options import AnyTimeout, Timeout
from ._rate import RateLimiter
from ._sniff import SNIFF_BYTES
from ._urls import redact_url
from ._version import USER_AGENT
from ._wire import Wire, WireResponse

if TYPE_CHECKING:
    import ssl

    import aiohttp
    from aiohttp.abc import AbstractCookieJar

__all__ = [
    "Session", "new_session", "aiohttp_timeout", "ssl_context", "get", "body", "read_head", "read_exactly",
    "continues", "RangeAnswer", "drop", "Response", "Chunk",
]

#: An answer from either path of :func:`get`: aiohttp's, or the lean one of :mod:`vidnb._wire`.
Response = Union["aiohttp.ClientResponse", WireResponse]
#: A piece of a body from :func:`body`: bytes from aiohttp; from the lean path a view of its
#: buffer, valid until the next piece is asked for (copy it to keep it longer).
Chunk = Union[bytes, memoryview]


class Session:
    """The HTTP session downloads share: vidnb's lean path, then aiohttp's ClientSession.

    With ``lean``, :func:`get` reads the plain-http answers it can through :mod:`vidnb._wire`
    (unless proxies or a netrc are set). The aiohttp session (``limit`` connections, at most)
    is made on the first request the lean path declines, or the first cookie: importing
    aiohttp is about 0.3 s here, most of a cold ``vidnb get``, and a batch of plain files
    never needs it. A ``given`` session is used as it is (all aiohttp's), and never closed.

    Examples
    --------
    >>> session = Session(lean=True)
    >>> session.made is None  # nothing opened, nothing imported yet
    True
    """

    def __init__(self, given: aiohttp.ClientSession | None = None, *, lean: bool = False, limit: int = 100) -> None:
        self.made = given
        self._own = given is None
        self._limit = limit
        self.wire = Wire(self._jar) if lean and given is None and not _env_has_settings() else None

    def __repr__(self) -> str:
        return f"<vidnb Session lean={self.wire is not None} aiohttp={'open' if self.made else 'not yet'}>"

    def aiohttp_session(self) -> aiohttp.ClientSession:
        """The aiohttp session, made on first use."""
        if self.made is None:
            import aiohttp  # here: see the class docstring

            self.made = new_session(aiohttp.TCPConnector(limit=self._limit, ssl=ssl_context()))
        return self.made

    def _jar(self, make: bool) -> AbstractCookieJar | None:
        if self.made is None and not make:
            return None
        return self.aiohttp_session().cookie_jar

    async def close(self) -> None:
        """Close what this session opened (a session given to it stays open)."""
        if self.wire is not None:
            self.wire.close()
        if self._own and self.made is not None:
            await self.made.close()  # awaits its own connections, and the loop turn below with them
        elif self.wire is not None:
            # A transport closes its socket on the loop's next turn: give it that turn, so the
            # connections are gone when the download returns.
            await asyncio.sleep(0)


def new_session(connector: aiohttp.BaseConnector | None = None) -> aiohttp.ClientSession:
    """An aiohttp ClientSession set up for downloads: proxies and CA bundles from the
    environment, no decompression, no total time limit, vidnb's User-Agent."""
    import aiohttp  # here: see Session

    return aiohttp.ClientSession(
        connector=connector if connector is not None else aiohttp.TCPConnector(ssl=ssl_context()),
        timeout=aiohttp_timeout(Timeout()),
        headers={"User-Agent": USER_AGENT},
        trust_env=_env_has_settings(),
        auto_decompress=False,
    )


def aiohttp_timeout(timeout: AnyTimeout) -> aiohttp.ClientTimeout:
    """``timeout`` as aiohttp's ClientTimeout (one given as that is used as it is)."""
    if not isinstance(timeout, Timeout):
        return timeout
    return _client_timeout(timeout.sock_connect, timeout.sock_read)


@functools.lru_cache(maxsize=8)
def _client_timeout(sock_connect: float | None, sock_read: float | None) -> aiohttp.ClientTimeout:
    import aiohttp

    return aiohttp.ClientTimeout(total=None, sock_connect=sock_connect, sock_read=sock_read)


def _env_has_settings() -> bool:
    """Whether proxy variables or a netrc file are there for aiohttp's ``trust_env`` to use.

    ``trust_env`` looks them up again on every request, with two thread round trips
    (about 1.3 ms per request here): a batch of small files paid that for nothing when
    neither is set, which is the common case.
    """
    netrc = os.environ.get("NETRC") or os.path.join(os.path.expanduser("~"), ".netrc")
    # The test of urllib.request.getproxies_environment (which aiohttp asks), without
    # importing urllib.request and http.client (about 50 ms of a cold start).
    proxies = any(value and name.lower().endswith("_proxy") for name, value in os.environ.items())
    return proxies or os.path.isfile(netrc)


def ssl_context() -> ssl.SSLContext | bool:
    """The context for verifying servers: the CA bundle from SSL_CERT_FILE / SSL_CERT_DIR if set.

    aiohttp ignores those variables (aiohttp issue 3180), and corporate CA bundles are set
    that way. Loading a bundle takes about 40 ms, so the context is built once per setting.
    """
    cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    return _cached_context(
        cafile if cafile and os.path.isfile(cafile) else None,
        capath if capath and os.path.isdir(capath) else None,
    )


@functools.lru_cache(maxsize=4)
def _cached_context(cafile: str | None, capath: str | None) -> ssl.SSLContext | bool:
    if cafile is None and capath is None:
        return True  # aiohttp's own default context
    import ssl  # here: a plain-http download never needs it

    return ssl.create_default_context(cafile=cafile, capath=capath)


@contextlib.asynccontextmanager
async def get(
    session: Session,
    url: str,
    headers: Mapping[str, str],
    timeout: AnyTimeout,
    *,
    byte_range: tuple[int, int | None] | None = None,
    if_range: str | None = None,
    check_status: bool = True,
) -> AsyncIterator[Response]:
    """One GET of the bytes as stored; ``byte_range`` is ``(first, last)``, ``last`` None for open-ended.

    A 4xx/5xx answer raises :class:`~vidnb.HTTPStatusError` unless ``check_status`` is off
    (the caller then looks at the status itself, as a resume does for 416).
    """
    sent = {**headers, "Accept-Encoding": "identity"}
    if byte_range is not None:
        first, last = byte_range
        sent["Range"] = f"bytes={first}-{'' if last is None else last}"
        if if_range:
            sent["If-Range"] = if_range
    wire = session.wire
    u = wire.serves(url) if wire is not None else None
    if (
        u is not None and wire is not None
        and (lean := await wire.get(u, sent, timeout.sock_connect, timeout.sock_read)) is not None
    ):
        try:
            if check_status and lean.status >= 400:
                raise_for_status(lean, redact_url(url))
            yield lean
        finally:
            lean.release()
        return
    async with session.aiohttp_session().get(
        url, headers=sent, timeout=aiohttp_timeout(timeout), max_redirects=MAX_REDIRECTS, auto_decompress=False
    ) as resp:
        if check_status and resp.status >= 400:  # redacting costs a URL parse: only for the message
            raise_for_status(resp, redact_url(str(resp.url)))
        yield resp


def body(
    resp: Response, rate: RateLimiter | None = None, chunk_size: int | None = None
) -> AsyncIterator[Chunk]:
    """The chunks of a body as they arrive (at most ``chunk_size`` each), paced by ``rate``.

    Every fetcher reads its bodies here, so ``max_rate=`` (``rate``: the options' limiter)
    holds for all of them. Without a limit this is the response's own iterator, at no cost.
    A chunk may be a view that the next one reuses (see :data:`Chunk`).

    >>> # async for chunk in body(resp, opts.limiter): ...
    """
    if isinstance(resp, WireResponse):
        views = resp.content.iter_chunked(chunk_size) if chunk_size else resp.content.iter_any()
        return views if rate is None else rate.paced(views)
    chunks = resp.content.iter_chunked(chunk_size) if chunk_size else resp.content.iter_any()
    return chunks if rate is None else rate.paced(chunks)


async def read_head(resp: Response, rate: RateLimiter | None = None) -> bytes:
    """The first :data:`~vidnb._sniff.SNIFF_BYTES` or so of a body (more when a chunk overshoots).

    With ``rate``, the bytes are paid for after they are read (later reads wait for them).
    """
    # The lean path copies just the bytes asked for; the rest of its buffer goes to the file uncopied.
    head = await (resp.content.readany(SNIFF_BYTES) if isinstance(resp, WireResponse) else resp.content.readany())
    if len(head) < SNIFF_BYTES and head:  # usually one chunk is enough, and is returned uncopied
        buf = bytearray(head)
        while len(buf) < SNIFF_BYTES and (chunk := await resp.content.readany()):
            buf += chunk
        head = bytes(buf)
    if rate is not None and head:
        await rate.take(len(head))
    return head


async def read_exactly(
    resp: Response, n: int, head: bytes = b"", rate: RateLimiter | None = None
) -> tuple[bytes, bytes] | None:
    """The first ``n`` bytes of a body (``head``: what was already read of it) and what came
    with them past ``n``; None when the body ends first. ``rate`` as for :func:`read_head`."""
    got = bytearray(head)
    while len(got) < n:
        chunk = await resp.content.readany()
        if not chunk:
            return None
        got += chunk
    if rate is not None and len(got) > len(head):
        await rate.take(len(got) - len(head))
    return bytes(got[:n]), bytes(got[n:])


@dataclass(frozen=True)
class RangeAnswer:
    """How an answer to a ranged request relates to the bytes asked for."""

    #: The answer holds the bytes from the offset asked for, of a file of ``total`` bytes.
    ok: bool
    #: 206 with another start or total: the server's ranges cannot be trusted.
    mismatch: bool
    total: int | None


def continues(resp: Response, start: int, total: int | None = None) -> RangeAnswer:
    """Whether ``resp`` is a 206 starting at byte ``start`` (of ``total`` bytes, when known).

    >>> # continues(resp, 1000, 5000).ok is True for "206, Content-Range: bytes 1000-4999/5000"
    """
    if resp.status != 206:
        return RangeAnswer(False, False, None)
    got_start, got_total = content_range(resp.headers.get("Content-Range"))
    if got_start != start or (total is not None and got_total != total):
        return RangeAnswer(False, True, got_total)
    return RangeAnswer(True, False, got_total)


def drop(resp: Response) -> None:
    """Close a response we stopped reading early (its bytes belong elsewhere), so the
    connection is not reused with a half-read body; a fully read one goes back to the pool."""
    if not resp.content.at_eof():
        resp.close()
