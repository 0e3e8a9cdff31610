"""The lean HTTP/1.1 path (``vidnb._wire``): what it serves, what it hands to aiohttp, and
how it behaves when the server misbehaves.

Most tests use the fault-injecting aiohttp server of the other tests; the few that need
byte-level control (a server closing a kept-alive connection, extra bytes after a body)
use a small asyncio server written here.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from helpers import Concurrency, file_sha, make_video

import vidnb
from vidnb import _http
from vidnb._errors import TransportTimeout
from vidnb._options import Timeout
from vidnb._version import USER_AGENT
from vidnb._wire import WireResponse

TIMEOUT = Timeout(5, 5)


async def fetch(session: _http.Session, url: str, **kw: object) -> tuple[type, int, bytes]:
    async with _http.get(session, url, {}, TIMEOUT, **kw) as resp:  # type: ignore[arg-type]
        body = bytearray()
        async for chunk in _http.body(resp):
            body += chunk
        return type(resp), resp.status, bytes(body)


@pytest.fixture
async def lean() -> AsyncIterator[_http.Session]:
    session = _http.Session(lean=True)
    yield session
    await session.close()


async def test_a_plain_answer_is_read_lean_and_its_connection_kept(serve, lean):
    gauge = Concurrency()
    data = make_video(1_500_000)
    url_a, _ = serve(data, concurrency=gauge)
    url_b, _ = serve(data[::-1], concurrency=gauge)
    kind_a, status_a, body_a = await fetch(lean, url_a)
    kind_b, status_b, body_b = await fetch(lean, url_b)
    assert (kind_a, kind_b, status_a, status_b) == (WireResponse, WireResponse, 200, 200)
    assert body_a == data and body_b == data[::-1]
    assert len(gauge.ports) == 1, "the second request reused the first one's connection"


async def test_a_range_is_asked_for_and_answered(serve, lean):
    data = make_video(400_000)
    url, route = serve(data)
    kind, status, body = await fetch(lean, url, byte_range=(1000, 1999))
    assert (kind, status, body) == (WireResponse, 206, data[1000:2000])
    assert route.requests[0]["Range"] == "bytes=1000-1999"
    assert route.requests[0]["Accept-Encoding"] == "identity"


async def test_an_error_status_raises_without_a_second_request(serve, lean):
    url, route = serve(make_video(1000), statuses=[404])
    with pytest.raises(vidnb.HTTPStatusError) as err:
        await fetch(lean, url)
    assert err.value.status == 404
    assert len(route.requests) == 1


@pytest.mark.parametrize("fault", ["chunked", "redirect"])
async def test_answers_it_cannot_read_go_to_aiohttp_and_so_does_the_host_after(serve, lean, fault):
    data = make_video(300_000)
    target, _ = serve(data)
    url, route = serve(data, chunked=True) if fault == "chunked" else serve(redirect=target)
    kind, status, body = await fetch(lean, url)
    assert (kind, status, body) == (aiohttp.ClientResponse, 200, data)
    assert len(route.requests) == 2, "declined once by the lean path, then asked again by aiohttp"
    other, other_route = serve(data)
    kind, _, body = await fetch(lean, other)
    assert kind is aiohttp.ClientResponse and body == data
    assert len(other_route.requests) == 1


async def test_credentials_in_the_url_are_sent_by_aiohttp(serve, lean):
    url, route = serve(make_video(1000))
    kind, status, _ = await fetch(lean, url.replace("http://", "http://me:secret@"))
    assert (kind, status) == (aiohttp.ClientResponse, 200)
    assert route.requests[0]["Authorization"].startswith("Basic ")
    assert len(route.requests) == 1, "not declined: never sent by the lean path at all"


async def test_with_a_proxy_in_the_environment_every_request_is_aiohttps(serve, monkeypatch):
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    url, _ = serve(make_video(1000))
    session = _http.Session(lean=True)
    try:
        kind, status, _ = await fetch(session, url)
    finally:
        await session.close()
    assert (kind, status) == (aiohttp.ClientResponse, 200) and session.wire is None


async def test_a_refused_connection_is_reported_in_aiohttps_words(lean, tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(vidnb.NetworkError, match="Cannot connect"):
        await vidnb.download(f"http://127.0.0.1:{port}/a.mp4", tmp_path / "a.mp4", progress=False, retries=0)
    with pytest.raises(aiohttp.ClientConnectorError):
        await fetch(lean, f"http://127.0.0.1:{port}/a.mp4")
    assert not list(tmp_path.iterdir())


async def test_a_session_passed_in_is_left_to_aiohttp(serve):
    url, _ = serve(make_video(1000))
    async with _http.new_session() as given:
        session = _http.Session(given, lean=True)
        kind, _, _ = await fetch(session, url)
        await session.close()
        assert not given.closed, "a session passed in is the caller's to close"
    assert kind is aiohttp.ClientResponse


async def test_cookies_set_by_one_answer_are_sent_with_the_next(lean):
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSet-Cookie: token=abc123; Path=/\r\n\r\nok")
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        seen.append(head)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    async with raw_server(handler) as port:
        # A host name: aiohttp's jar (shared by both paths) keeps no cookies from IP addresses.
        await fetch(lean, f"http://localhost:{port}/a")
        kind, _, body = await fetch(lean, f"http://localhost:{port}/b")
    assert kind is WireResponse and body == b"ok"
    assert b"Cookie: token=abc123" in seen[0]


async def test_both_paths_send_the_same_user_agent_and_a_header_given_wins(serve, lean):
    data = make_video(1000)
    plain, plain_route = serve(data)
    chunked, chunked_route = serve(data, chunked=True)
    assert (await fetch(lean, plain))[0] is WireResponse
    async with _http.get(lean, plain, {"User-Agent": "mine/1"}, TIMEOUT) as resp:
        assert isinstance(resp, WireResponse)
    assert (await fetch(lean, chunked))[0] is aiohttp.ClientResponse  # and the host is aiohttp's from now on
    async with _http.get(lean, plain, {"User-Agent": "mine/1"}, TIMEOUT) as resp:
        assert isinstance(resp, aiohttp.ClientResponse)
    agents = [r["User-Agent"] for r in plain_route.requests + chunked_route.requests]
    assert agents == [USER_AGENT, "mine/1", "mine/1", USER_AGENT, USER_AGENT]


async def test_an_aiohttp_client_timeout_given_as_timeout_bounds_the_lean_path_too(serve, tmp_path):
    url, route = serve(make_video(2_000_000), pause_after=100_000)
    wait = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=0.5)
    with pytest.raises(vidnb.NetworkError, match="Timed out") as err:
        await vidnb.download(url, tmp_path / "clip.mp4", progress=False, timeout=wait, retries=0)
    assert isinstance(err.value.__cause__, TransportTimeout), "read by the lean path, not aiohttp"
    route.pause_after = None


# ------------------------------------------------------------------ a server under our control


class raw_server:
    """``async with raw_server(handler) as port``: an asyncio server on 127.0.0.1 answering by hand."""

    def __init__(self, handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]) -> None:
        self.handler = handler
        self.connections = 0

    async def __aenter__(self) -> int:
        async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(reader, writer)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(counted, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await self.server.wait_closed()


def answer(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body + extra


async def test_a_kept_connection_the_server_closed_is_replaced_without_an_error(lean):
    async def once_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer(b"first"))
        await writer.drain()
        # Closes after one answer, without saying so (no Connection: close).

    srv = raw_server(once_then_close)
    async with srv as port:
        assert (await fetch(lean, f"http://127.0.0.1:{port}/1"))[2] == b"first"
        await asyncio.sleep(0)  # let the close reach the client, as a keep-alive timeout would
        kind, _, body = await fetch(lean, f"http://127.0.0.1:{port}/2")
    assert (kind, body) == (WireResponse, b"first")
    assert srv.connections == 2


async def test_bytes_after_the_body_retire_the_connection(lean):
    async def sloppy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer(b"body", extra=b"GARBAGE"))
            await writer.drain()

    srv = raw_server(sloppy)
    async with srv as port:
        first = await fetch(lean, f"http://127.0.0.1:{port}/1")
        second = await fetch(lean, f"http://127.0.0.1:{port}/2")
    assert first[2] == second[2] == b"body"
    assert srv.connections == 2, "the stray bytes would have been read as the next answer"


async def test_a_body_cut_short_is_an_incomplete_download_that_resumes(serve, tmp_path):
    data = make_video(2_000_000)
    url, route = serve(data, drops={1: 700_000})
    dest = tmp_path / "clip.mp4"
    result = await vidnb.download(url, dest, progress=False, retries=vidnb.Retry(total=3, backoff=0))
    assert file_sha(dest) == hashlib.sha256(data).hexdigest() and result.size == len(data)
    resumed_from = int(route.requests[1]["Range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_from <= 700_000, "the second request asked only for what was missing"


async def test_a_server_that_stops_sending_times_out(serve, tmp_path):
    url, route = serve(make_video(2_000_000), pause_after=100_000)
    with pytest.raises(vidnb.NetworkError, match="Timed out"):
        await vidnb.download(url, tmp_path / "clip.mp4", progress=False, timeout=0.5, retries=0)
    route.pause_after = None


async def test_a_server_that_never_answers_times_out(lean):
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.read()  # until the client gives up and closes

    short = Timeout(sock_connect=5, sock_read=0.3)
    async with raw_server(silent) as port:
        with pytest.raises(TransportTimeout):
            async with _http.get(lean, f"http://127.0.0.1:{port}/x", {}, short):
                pass


async def test_a_connect_timeout_is_raised_once_not_waited_for_again_by_aiohttp(lean):
    import socket

    # A listener whose accept queue is full: the kernel drops further SYNs, so a connect hangs.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        for _ in range(3):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(s)
        short = Timeout(sock_connect=0.3, sock_read=5)
        try:
            with pytest.raises(TransportTimeout) as err:
                async with _http.get(lean, f"http://127.0.0.1:{port}/x", {}, short):
                    pass
        finally:
            for s in fillers:
                s.close()
    # aiohttp's own would be its ConnectionTimeoutError: this one is the lean path's, raised at once.
    assert "no connection to" in str(err.value) and lean.made is None


async def test_a_slow_reader_pauses_the_socket_and_gets_every_byte(serve, tmp_path):
    """A limit much below the wire's speed keeps the buffer full; chunks handed out are views
    of it, so any reuse too early would corrupt the file."""
    data = make_video(3_000_000)
    url, _ = serve(data)
    dest = tmp_path / "clip.mp4"
    await vidnb.download(url, dest, progress=False, max_rate=2_000_000)
    assert file_sha(dest) == hashlib.sha256(data).hexdigest()


async def test_ranges_over_lean_connections_write_the_whole_file(serve, tmp_path):
    data = make_video(12_000_000)
    gauge = Concurrency()
    url, _ = serve(data, concurrency=gauge)
    dest = tmp_path / "clip.mp4"
    await vidnb.download(url, dest, progress=False, connections=4)
    assert file_sha(dest) == hashlib.sha256(data).hexdigest()
    assert len(gauge.ports) >= 2



def test_under_uvloop_a_fast_body_is_read_lean_and_whole(tmp_path):
    """uvloop's transports are not asyncio's classes, and it reads a socket again at once
    when a read filled the buffer: the lean path pauses as the buffer fills there."""
    uvloop = pytest.importorskip("uvloop", reason="uvloop is not installed (pip install uvloop)")
    data = make_video(8_000_000)

    async def all_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer(data))  # the whole body in the socket before the client reads

    async def main() -> tuple[type, bytes, str]:
        async with raw_server(all_at_once) as port:
            session = _http.Session(lean=True)
            try:
                kind, _, body = await fetch(session, f"http://127.0.0.1:{port}/a.mp4")
            finally:
                await session.close()
            dest = tmp_path / "clip.mp4"
            await vidnb.download(f"http://127.0.0.1:{port}/clip.mp4", dest, progress=False)
            return kind, body, file_sha(dest)

    kind, body, sha = uvloop.run(main())
    assert kind is WireResponse and body == data
    assert sha == hashlib.sha256(data).hexdigest()
