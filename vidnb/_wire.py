"""A lean HTTP/1.1 GET for the common answer, one pool of kept-alive connections per session.

aiohttp builds a request object, a timer, a parser feed and a stream reader per request and
allocates per chunk; on a batch of 1 MiB files that alone costs more CPU than curl spends on
the whole file (plain aiohttp took 1.3-1.9x the time of ``curl --parallel`` here, a bare
client reading as this module does 0.8x). This module reads straight into one buffer per
connection (``BufferedProtocol``) and hands out views of it in large chunks.

It serves only what it can read exactly: ``http://`` without credentials in the URL, no
proxy, an answer with a ``Content-Length`` and no ``Transfer-Encoding`` that is not a
redirect. Anything else is *declined* (``None``) after the status line and headers, the
connection is closed, and the caller repeats that one request with aiohttp, which from then
on serves that host for the session: redirects, chunked bodies, proxies, TLS and
authentication stay aiohttp's. A session's cookies are shared both ways through its jar.

This module does not import aiohttp: a download whose answers are all served here never
loads it (about 0.3 s of a cold ``vidnb get``). Its errors are the transport errors of
:mod:`vidnb._errors` (``Disconnected``, ``BodyCutShort``, ``TransportTimeout``), which
:func:`vidnb._errors.translate` names as it names aiohttp's, so retries treat both paths alike.
A refused connection is declined too, so aiohttp reports it in its own words; a connect
timeout is raised here, not waited for twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING, cast

import yarl
from multidict import CIMultiDict, CIMultiDictProxy

from ._errors import BodyCutShort, Disconnected, TransportTimeout
from ._version import USER_AGENT

if TYPE_CHECKING:
    from aiohttp.abc import AbstractCookieJar

    #: The session's cookie jar; with True, made (with the aiohttp session) if not there yet.
    JarSource = Callable[[bool], AbstractCookieJar | None]

__all__ = ["Wire", "WireResponse"]

#: One connection's receive buffer. A chunk handed out is what arrived since the last read,
#: up to this; reading pauses while it is full, so a slow disk holds back the server.
BUFFER = 512 * 1024
#: Room below which the buffer counts as full (``get_buffer`` may not return an empty one).
ROOM = 64 * 1024
#: Room after the buffer for a read that comes before reading could be paused (see get_buffer).
SPARE = 64 * 1024
#: The longest status line plus headers accepted.
MAX_HEAD = 64 * 1024
#: Idle connections kept per host.
KEEP = 64
#: Why a request got no answer on a connection the server closed.
_CLOSED = "the server closed the connection before answering"


class _Declined(Exception):
    """The answer is one for aiohttp (see the module docstring)."""


class _Conn(asyncio.BufferedProtocol):
    """One kept-alive connection, reading one answer at a time into its buffer."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.buf = bytearray(BUFFER + SPARE)
        self.view = memoryview(self.buf)
        # The unread bytes are buf[start:n]; new ones arrive after n. A chunk handed out
        # (buf[a:b], b <= start) stays as it is until the next read, which may reuse it.
        self.start = 0
        self.n = 0
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.error: BaseException | None = None
        self.paused = False
        #: A check whether to pause is queued (see buffer_updated).
        self.pausing = False
        #: Whether a full buffer may wait for that check. Only asyncio's selector loop reads a
        #: socket once per turn: uvloop and the proactor loop read again at once (and uvloop
        #: crashes when reading is paused from get_buffer), so they pause as the buffer fills.
        self.defer_pause = isinstance(self.loop, asyncio.SelectorEventLoop)
        self.waiter: asyncio.Future[None] | None = None
        self.remaining = 0  # body bytes still to come
        self.last = 0.0
        self.read_timeout: float | None = None
        self.timer: asyncio.TimerHandle | None = None

    # -- protocol callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: uvloop's transports do not derive from asyncio's classes.
        self.transport = cast(asyncio.Transport, transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        if self.n < BUFFER:
            return self.view[self.n : BUFFER]
        # Full, and read again before the check queued by buffer_updated ran. asyncio's
        # selector loop always runs that check first; this guards a loop derived from it that
        # reads more eagerly: stop reading, and take this one read into the spare room (an
        # empty buffer is a fatal error of the transport).
        self._pause_if_full()
        return self.view[self.n :]

    def buffer_updated(self, nbytes: int) -> None:
        self.n += nbytes
        self.last = self.loop.time()
        self._wake()
        if BUFFER - self.n >= ROOM:
            return
        if not self.defer_pause:
            self._pause_if_full()
        elif not self.pausing:
            # One read often fills the buffer on a fast link. The reader woken above runs
            # before this check (both are queued, in this order, before the next select), and
            # usually empties the buffer: pausing at once cost a selector unregister and
            # register per read, 9 % of a batch's loop time.
            self.pausing = True
            self.loop.call_soon(self._pause_if_full)

    def _pause_if_full(self) -> None:
        self.pausing = False
        if BUFFER - self.n < ROOM and not self.paused and not self.lost and self.transport is not None:
            self.transport.pause_reading()
            self.paused = True

    def eof_received(self) -> bool | None:
        return None  # close: an answer cut short is seen by the reader

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.done_reading()
        self._wake()

    def _wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    # -- for the response
    def send(self, request: bytes, read_timeout: float | None) -> None:
        assert self.transport is not None
        self.start = self.n = 0
        self.error = None
        self.read_timeout = read_timeout
        self.last = self.loop.time()
        if self.paused:
            self.transport.resume_reading()
            self.paused = False
        if read_timeout:
            self.timer = self.loop.call_at(self.last + read_timeout, self._check_timeout)
        self.transport.write(request)

    def _check_timeout(self) -> None:
        self.timer = None
        assert self.read_timeout is not None
        due = self.last + self.read_timeout
        if self.paused or self.loop.time() < due:  # a full buffer waits on us, not on the server
            self.timer = self.loop.call_at(max(due, self.loop.time() + 0.05), self._check_timeout)
            return
        self.error = TransportTimeout(f"no bytes for {self.read_timeout:g} s")
        self.close()
        self._wake()

    async def wait(self) -> None:
        """Until more bytes arrive or the connection ends."""
        self.waiter = self.loop.create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None

    def settle(self) -> None:
        """Make room, now that the chunk handed out last is no longer in use.

        Only an emptied buffer starts again from its front. Bytes still unread in a full one
        are handed out where they are (reading stays paused until they are), never moved:
        moving the rest of a first read after the sniffed head was a copy of up to the whole
        buffer per file.
        """
        if self.start == self.n:
            self.start = self.n = 0
        if self.paused and BUFFER - self.n >= ROOM and self.transport is not None and not self.lost:
            self.transport.resume_reading()
            self.paused = False

    def take(self, most: int) -> memoryview:
        """Up to ``most`` buffered body bytes (never past the body's end), valid until the next read."""
        a = self.start
        b = a + min(self.n - a, most, self.remaining)
        self.start = b
        self.remaining -= b - a
        return self.view[a:b]

    def done_reading(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def close(self) -> None:
        self.done_reading()
        if self.transport is not None:
            self.transport.close()
        self.lost = True


class _Content:
    """The body, read as aiohttp's ``StreamReader`` is: ``readany``, ``iter_any``, ``iter_chunked``."""

    def __init__(self, conn: _Conn, length: int) -> None:
        self._conn = conn
        self._conn.remaining = length

    def at_eof(self) -> bool:
        return self._conn.remaining == 0

    async def lease(self, most: int) -> memoryview | None:
        """The next bytes, up to ``most``, valid until the next read; None at the body's end."""
        c = self._conn
        while True:
            c.settle()
            if c.remaining == 0:
                return None
            if c.n > c.start:
                return c.take(most)
            if c.error is not None:
                raise c.error
            if c.lost:
                raise BodyCutShort(f"the connection closed {c.remaining} bytes short")
            await c.wait()

    async def readany(self, most: int = BUFFER) -> bytes:
        """A copy of the next bytes, up to ``most`` (b"" at the end); the rest stay buffered."""
        chunk = await self.lease(most)
        return b"" if chunk is None else bytes(chunk)

    async def iter_any(self) -> AsyncIterator[memoryview]:
        """The body as it arrives, without copies: each chunk is valid until the next one is asked for."""
        while (chunk := await self.lease(BUFFER)) is not None:
            yield chunk

    async def iter_chunked(self, n: int) -> AsyncIterator[memoryview]:
        """As :meth:`iter_any`, at most ``n`` bytes a chunk."""
        while (chunk := await self.lease(n)) is not None:
            yield chunk


class WireResponse:
    """An answer read by :class:`Wire`, with the part of ``aiohttp.ClientResponse`` vidnb uses."""

    def __init__(
        self, wire: Wire, key: tuple[str, int], conn: _Conn, url: yarl.URL, status: int, reason: str,
        headers: CIMultiDictProxy[str], length: int, keep: bool,
    ) -> None:
        self._wire, self._key, self._conn, self._keep = wire, key, conn, keep
        self.url = url
        self.status = status
        self.reason = reason
        self.headers = headers
        self.content_length: int | None = length
        self.content = _Content(conn, length)

    def __repr__(self) -> str:
        return f"<WireResponse {self.status} {self.url}>"

    def release(self) -> None:
        """Give the connection back when the body was read to its end, else close it."""
        conn = self._conn
        conn.done_reading()
        if self.content.at_eof() and self._keep and not conn.lost and conn.n == conn.start:
            self._wire._give_back(self._key, conn)
        else:
            conn.close()

    def close(self) -> None:
        self._conn.close()


class Wire:
    """The lean path's connections for one session (see the module docstring)."""

    def __init__(self, jar: JarSource) -> None:
        self._jar = jar
        self._idle: dict[tuple[str, int], list[_Conn]] = {}
        self._declined: set[tuple[str, int]] = set()
        self.closed = False

    def serves(self, url: str) -> yarl.URL | None:
        """The parsed URL when this path may try it, else None (aiohttp's)."""
        if not url.startswith("http://"):
            return None
        u = yarl.URL(url)
        host = u.raw_host
        if not host or u.raw_user is not None or ":" in host or (host, u.port or 80) in self._declined:
            return None
        return u

    async def get(
        self, u: yarl.URL, headers: Mapping[str, str], connect_timeout: float | None, read_timeout: float | None
    ) -> WireResponse | None:
        """GET ``u``; None when the answer (or the connection) is aiohttp's to handle."""
        host = u.raw_host
        assert host is not None
        key = (host, u.port or 80)
        request = self._request(u, key, headers)
        if request is None:
            return None
        for _ in range(2):
            conn, reused = self._take(key), True
            if conn is None:
                reused = False
                conn = await self._connect(key, connect_timeout)
                if conn is None:
                    return None
            try:
                return await self._answer(conn, key, u, request, read_timeout)
            except _Declined:
                conn.close()
                self._declined.add(key)
                return None
            except Disconnected:
                conn.close()
                if not reused:
                    raise
                # A kept-alive connection the server had just closed: once more on a new one.
            except BaseException:
                conn.close()
                raise
        raise Disconnected(_CLOSED)

    def _request(self, u: yarl.URL, key: tuple[str, int], headers: Mapping[str, str]) -> bytes | None:
        sent: CIMultiDict[str] = CIMultiDict(
            Host=key[0] if key[1] == 80 else f"{key[0]}:{key[1]}", Accept="*/*", **{"User-Agent": USER_AGENT}
        )
        for name, value in headers.items():
            sent[name] = value
        jar = self._jar(False)
        if jar is not None and len(jar):
            cookies = jar.filter_cookies(u)
            if cookies:
                sent["Cookie"] = "; ".join(m.OutputString(attrs=[]) for m in cookies.values())
        lines = [f"GET {u.raw_path_qs} HTTP/1.1"]
        for name, value in sent.items():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                return None  # aiohttp refuses it with its own error
            lines.append(f"{name}: {value}")
        try:
            return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        except UnicodeEncodeError:
            return None  # aiohttp encodes such headers its own way

    def _take(self, key: tuple[str, int]) -> _Conn | None:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if not conn.lost:
                return conn
        return None

    def _give_back(self, key: tuple[str, int], conn: _Conn) -> None:
        idle = self._idle.setdefault(key, [])
        if self.closed or len(idle) >= KEEP:
            conn.close()
        else:
            idle.append(conn)

    async def _connect(self, key: tuple[str, int], connect_timeout: float | None) -> _Conn | None:
        loop = asyncio.get_running_loop()
        # asyncio.wait, not wait_for: before Python 3.12, wait_for returns the result when the
        # connection is made in the same instant the caller is cancelled, and the cancel is lost
        # (a cancelled HLS download then ran on to the end).
        connecting = asyncio.ensure_future(loop.create_connection(_Conn, key[0], key[1]))
        try:
            done, _ = await asyncio.wait({connecting}, timeout=connect_timeout)
        except BaseException:
            _abandon(connecting)
            raise
        if not done:
            _abandon(connecting)
            # Raised here: handing it to aiohttp would wait the whole connect timeout again.
            raise TransportTimeout(f"no connection to http://{key[0]}:{key[1]} within {connect_timeout:g} s")
        try:
            _, conn = connecting.result()
        except OSError:
            self._declined.add(key)  # refused or unreachable: aiohttp tries once more and words it
            return None
        return conn

    async def _answer(
        self, conn: _Conn, key: tuple[str, int], u: yarl.URL, request: bytes, read_timeout: float | None
    ) -> WireResponse:
        conn.send(request, read_timeout)
        while True:
            end = conn.buf.find(b"\r\n\r\n", 0, conn.n)
            if end >= 0:
                break
            if conn.n >= MAX_HEAD:
                raise _Declined()
            if conn.error is not None:
                raise conn.error
            if conn.lost:
                raise Disconnected(_CLOSED)
            await conn.wait()
        head = bytes(conn.view[:end])
        conn.start = end + 4
        status, reason, headers, keep = _parse_head(head)
        length = headers.get("Content-Length")
        if (
            status < 200 or 300 <= status < 400 or "Transfer-Encoding" in headers
            or length is None or not length.isdigit()
        ):
            raise _Declined()
        if "Set-Cookie" in headers:
            jar: SimpleCookie = SimpleCookie()
            for value in headers.getall("Set-Cookie"):
                try:
                    jar.load(value)
                except Exception:  # noqa: BLE001 - a malformed cookie is dropped, as aiohttp does
                    continue
            # Cookies are rare on file downloads: the first one brings in aiohttp's jar (and session).
            session_jar = self._jar(True)
            assert session_jar is not None
            session_jar.update_cookies(jar, u)
        size = int(length)
        if conn.n - conn.start > size:
            keep = False  # more than the body: nothing after it on this connection can be trusted
        return WireResponse(self, key, conn, u, status, reason, CIMultiDictProxy(headers), size, keep)

    def close(self) -> None:
        self.closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()


def _abandon(connecting: asyncio.Future[tuple[asyncio.Transport, _Conn]]) -> None:
    """Stop a connection attempt nobody waits for; close the connection if it was made anyway."""
    connecting.cancel()

    def closed(done: asyncio.Future[tuple[asyncio.Transport, _Conn]]) -> None:
        if not done.cancelled() and done.exception() is None:
            done.result()[0].close()

    connecting.add_done_callback(closed)


def _parse_head(head: bytes) -> tuple[int, str, CIMultiDict[str], bool]:
    """Status, reason, headers and whether the connection may be kept, of an answer's head."""
    text = head.decode("latin-1")
    first, *lines = text.split("\r\n")
    version, _, rest = first.partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or not (len(code) == 3 and code.isdigit()):
        raise _Declined()
    headers: CIMultiDict[str] = CIMultiDict()
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep or not name or name[0] in " \t" or name != name.strip():
            raise _Declined()  # folded or malformed: aiohttp's parser decides
        headers.add(name, value.strip(" \t"))
    connection = headers.get("Connection", "").lower()
    keep = version == "HTTP/1.1" and "close" not in connection
    return int(code), reason, headers, keep
