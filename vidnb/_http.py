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
import weakref
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Union

import aiohttp

from ._headers import MAX_REDIRECTS, content_range, raise_for_status
from ._options import client_timeout
from ._rate import RateLimiter
from ._sniff import SNIFF_BYTES
from ._urls import redact_url
from ._wire import Wire, WireResponse

__all__ = [
    "new_session", "close_session", "ssl_context", "get", "body", "read_head", "read_exactly", "continues",
    "RangeAnswer", "drop", "Response", "Chunk",
]

#: An answer from either path of :func:`get`: aiohttp's, or the lean one of :mod:`vidnb._wire`.
Response = Union[aiohttp.ClientResponse, WireResponse]
#: A piece of a body from :func:`body`: bytes from aiohttp; from the lean path a view of its
#: buffer, valid until the next piece is asked for (copy it to keep it longer).
Chunk = Union[bytes, memoryview]

#: The lean path of each session vidnb opened itself (a session passed in is all aiohttp's).
_WIRES: weakref.WeakKeyDictionary[aiohttp.ClientSession, Wire] = weakref.WeakKeyDictionary()


def new_session(connector: aiohttp.BaseConnector | None = None, *, lean: bool = False) -> aiohttp.ClientSession:
    """A ClientSession set up for downloads: proxies and CA bundles from the environment,
    no decompression, no total time limit.

    With ``lean``, :func:`get` reads plain-http answers it can through :mod:`vidnb._wire`
    (unless proxies or a netrc are set); close such a session with :func:`close_session`.
    """
    session = aiohttp.ClientSession(
        connector=connector if connector is not None else aiohttp.TCPConnector(ssl=ssl_context()),
        timeout=client_timeout(None),
        trust_env=_env_has_settings(),
        auto_decompress=False,
    )
    if lean and not session.trust_env:
        _WIRES[session] = Wire(session)
    return session


async def close_session(session: aiohttp.ClientSession) -> None:
    """Close a session from :func:`new_session` with its lean path's connections."""
    wire = _WIRES.pop(session, None)
    if wire is not None:
        wire.close()
    await session.close()


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
    wire = _WIRES.get(session) if _WIRES else None
    u = wire.serves(url) if wire is not None else None
    if u is not None and wire is not None and (lean := await wire.get(u, sent, timeout)) is not None:
        try:
            if check_status and lean.status >= 400:
                raise_for_status(lean, redact_url(url))
            yield lean
        finally:
            lean.release()
        return
    async with session.get(
        url, headers=sent, timeout=timeout, max_redirects=MAX_REDIRECTS, auto_decompress=False
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
