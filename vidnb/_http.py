"""The one place vidnb talks HTTP: the session, one GET, the check of a 206, the first bytes.

Every fetcher (one stream, byte ranges, HLS) and ``vidnb info`` go through :func:`get`, so
every request asks for the bytes as stored (``Accept-Encoding: identity``, no decompression:
bytes on disk are the bytes on the wire), follows the same number of redirects and turns an
error status into :class:`~vidnb.HTTPStatusError` the same way. :func:`continues` is the one
check that a 206 answer holds exactly the bytes asked for.
"""

from __future__ import annotations

import contextlib
import functools
import os
import ssl
import urllib.request
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import aiohttp

from ._headers import MAX_REDIRECTS, content_range, raise_for_status
from ._options import client_timeout
from ._rate import RateLimiter
from ._sniff import SNIFF_BYTES
from ._urls import redact_url

__all__ = [
    "new_session", "ssl_context", "get", "body", "read_head", "read_exactly", "continues", "RangeAnswer", "drop",
]


def new_session(connector: aiohttp.BaseConnector | None = None) -> aiohttp.ClientSession:
    """A ClientSession set up for downloads: proxies and CA bundles from the environment,
    no decompression, no total time limit."""
    return aiohttp.ClientSession(
        connector=connector if connector is not None else aiohttp.TCPConnector(ssl=ssl_context()),
        timeout=client_timeout(None),
        trust_env=_env_has_settings(),
        auto_decompress=False,
    )


def _env_has_settings() -> bool:
    """Whether proxy variables or a netrc file are there for aiohttp's ``trust_env`` to use.

    ``trust_env`` looks them up again on every request, with two thread round trips
    (about 1.3 ms per request here): a batch of small files paid that for nothing when
    neither is set, which is the common case.
    """
    netrc = os.environ.get("NETRC") or os.path.join(os.path.expanduser("~"), ".netrc")
    return bool(urllib.request.getproxies_environment()) or os.path.isfile(netrc)


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
    return ssl.create_default_context(cafile=cafile, capath=capath)


@contextlib.asynccontextmanager
async def get(
    session: aiohttp.ClientSession,
    url: str,
    headers: Mapping[str, str],
    timeout: aiohttp.ClientTimeout,
    *,
    byte_range: tuple[int, int | None] | None = None,
    if_range: str | None = None,
    check_status: bool = True,
) -> AsyncIterator[aiohttp.ClientResponse]:
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
    async with session.get(
        url, headers=sent, timeout=timeout, max_redirects=MAX_REDIRECTS, auto_decompress=False
    ) as resp:
        if check_status and resp.status >= 400:  # redacting costs a URL parse: only for the message
            raise_for_status(resp, redact_url(str(resp.url)))
        yield resp


def body(
    resp: aiohttp.ClientResponse, rate: RateLimiter | None = None, chunk_size: int | None = None
) -> AsyncIterator[bytes]:
    """The chunks of a body as they arrive (at most ``chunk_size`` each), paced by ``rate``.

    Every fetcher reads its bodies here, so ``max_rate=`` (``rate``: the options' limiter)
    holds for all of them. Without a limit this is aiohttp's own iterator, at no cost.

    >>> # async for chunk in body(resp, opts.limiter): ...
    """
    chunks = resp.content.iter_chunked(chunk_size) if chunk_size else resp.content.iter_any()
    return chunks if rate is None else rate.paced(chunks)


async def read_head(resp: aiohttp.ClientResponse, rate: RateLimiter | None = None) -> bytes:
    """The first :data:`~vidnb._sniff.SNIFF_BYTES` or so of a body (more when a chunk overshoots).

    With ``rate``, the bytes are paid for after they are read (later reads wait for them).
    """
    buf = bytearray()
    while len(buf) < SNIFF_BYTES:
        chunk = await resp.content.readany()
        if not chunk:
            break
        buf += chunk
    if rate is not None and buf:
        await rate.take(len(buf))
    return bytes(buf)


async def read_exactly(
    resp: aiohttp.ClientResponse, n: int, head: bytes = b"", rate: RateLimiter | None = None
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


def continues(resp: aiohttp.ClientResponse, start: int, total: int | None = None) -> RangeAnswer:
    """Whether ``resp`` is a 206 starting at byte ``start`` (of ``total`` bytes, when known).

    >>> # continues(resp, 1000, 5000).ok is True for "206, Content-Range: bytes 1000-4999/5000"
    """
    if resp.status != 206:
        return RangeAnswer(False, False, None)
    got_start, got_total = content_range(resp.headers.get("Content-Range"))
    if got_start != start or (total is not None and got_total != total):
        return RangeAnswer(False, True, got_total)
    return RangeAnswer(True, False, got_total)


def drop(resp: aiohttp.ClientResponse) -> None:
    """Close a response we stopped reading early (its bytes belong elsewhere), so the
    connection is not reused with a half-read body; a fully read one goes back to the pool."""
    if not resp.content.at_eof():
        resp.close()
