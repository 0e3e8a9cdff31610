"""vidnb against real HTTP servers nobody on this project wrote: nginx, Apache, lighttpd, Jupyter.

The fault-injecting test server does what we think servers do; these check what they
really do: which ranges they honour, the validators they send (Apache's weak ETag for a
file written in the last second, Jupyter's none), and how If-Range is treated. Each server
runs once per module (``servers.py``); each test serves its own file and reads back, from
the server's access log, what was asked for and how many bytes went out. Jupyter logs
neither, only each request's status, and has no throttle: it gets the downloads (with
the count of 206 answers), not the interrupted ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import pytest
from helpers import make_video, until
from servers import HTTP_SERVERS, THROTTLE_HEADER, THROTTLE_KIB, LogEntry, Server, start

import vidnb
from vidnb import _files

KiB, MiB = 1024, 1024 * 1024
#: Not a multiple of any piece size, so the last piece is a short one.
SIZE = 4 * MiB + 12_345
#: What a resume fetches again before its offset to compare with the bytes on disk.
OVERLAP = 64 * KiB
#: Bytes on disk at which a throttled download is cancelled: more than the overlap, so the
#: resume has bytes to keep, and less than a throttled connection's first second (every
#: server sends that at once), so it is reached at once.
KEEP = 100 * KiB
#: Response headers, per request: the access logs count them in the bytes sent.
HEADERS = 1 * KiB
#: A file last changed this long ago is an old one to every server (Apache stops treating
#: a file as just written one second after, and refuses If-Range dates for a minute).
OLD = 3600

_names = itertools.count()

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def running() -> Iterator[Callable[[str], Server]]:
    """Start a server the first time a test of this module asks for it; stop them all at the end.

    Jupyter takes seconds to start (its imports), so it starts at once, on a thread, while
    the other servers' tests run; its tests come last.
    """
    with contextlib.ExitStack() as stack, ThreadPoolExecutor(1) as pool:
        cache: dict[str, Server] = {}
        early = {"jupyter": pool.submit(stack.enter_context, start("jupyter"))}

        def get(name: str) -> Server:
            if name not in cache:
                # A skip (the server is missing) raised on the thread is raised here.
                cache[name] = early[name].result() if name in early else stack.enter_context(start(name))
            return cache[name]

        yield get


@pytest.fixture(params=HTTP_SERVERS)
def httpd(request: pytest.FixtureRequest, running: Callable[[str], Server]) -> Server:
    """A server with an access log of bytes sent, and a throttle."""
    return running(request.param)


@pytest.fixture
def name() -> str:
    return f"clip{next(_names)}.mp4"


def put_old(srv: Server, name: str, data: bytes) -> None:
    path = srv.put(name, data)
    then = time.time() - OLD
    os.utime(path, (then, then))


def sent(entries: list[LogEntry]) -> int:
    return sum(e.sent for e in entries)


def show(entries: list[LogEntry]) -> str:
    return "\n".join(f"  {e.status} sent={e.sent} Range={e.range} If-Range={e.if_range}" for e in entries)


async def interrupt(url: str, dest: Path, *, connections: int = 1) -> int:
    """Start a throttled download and cancel it once ``KEEP`` bytes are on disk.

    One stream appends to the ``.part``, whose size is the bytes on disk; several write into
    a preallocated one, so for those the progress events tell (they come at most ten times
    a second, so they may say less than is on disk). Returns what was seen then.
    """
    done = [0]

    def watch(ev: vidnb.ProgressEvent) -> None:
        done[0] = ev.done

    part = _files.part_path(dest)

    def on_disk() -> int:
        if connections > 1:
            return done[0]
        return part.stat().st_size if part.exists() else 0

    task = asyncio.create_task(vidnb.download(
        url, dest, progress=watch, connections=connections, headers={THROTTLE_HEADER: "1"}))
    await until(lambda: on_disk() >= KEEP, timeout=10, what=f"{KEEP} bytes on disk", unless=task.done)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert part.exists() and not dest.exists()
    return on_disk()


# --------------------------------------------------------------------------- 1. plain downloads


@pytest.mark.parametrize("connections", [1, 8, "auto"])
async def test_download_gives_the_exact_bytes(httpd: Server, name: str, tmp_path: Path,
                                              connections: int | Literal["auto"]) -> None:
    data = make_video(SIZE, seed=1)
    put_old(httpd, name, data)
    dest = tmp_path / name
    result = await vidnb.download(httpd.url(name), dest, progress=False, connections=connections)
    httpd.settle()
    entries = httpd.entries(name)
    assert dest.read_bytes() == data, show(entries)
    assert result.size == SIZE and result.format == "mp4" and not result.resumed
    assert all(e.status in (200, 206) for e in entries), show(entries)
    # Each byte once, give or take the headers of each request.
    assert sent(entries) <= SIZE + HEADERS * len(entries), show(entries)


# --------------------------------------------------------------------------- 2. resume


@pytest.mark.parametrize("connections", [1, 8])
async def test_interrupted_download_resumes_with_a_range(httpd: Server, name: str, tmp_path: Path,
                                                         connections: int) -> None:
    data = make_video(SIZE, seed=2)
    put_old(httpd, name, data)
    dest = tmp_path / name
    url = httpd.url(name)
    kept = await interrupt(url, dest, connections=connections)
    httpd.settle()
    first = httpd.entries(name)

    result = await vidnb.download(url, dest, progress=False, connections=connections)
    httpd.settle()
    second = httpd.entries(name)[len(first):]
    log = f"kept {kept}; first run:\n{show(first)}\nsecond run:\n{show(second)}"
    assert dest.read_bytes() == data, log
    assert result.resumed, log
    assert second and all(e.status == 206 and e.range for e in second), log
    # The second run fetches what is missing (at least `kept` was on disk) and, per piece it
    # continues, the overlap it compares. A refetch from the start fails this.
    overlaps = len(second) * (OVERLAP + HEADERS)
    assert sent(second) <= SIZE - kept + overlaps, log
    # Over both runs: each byte once, the overlaps, and per connection of the first run what
    # it had sent ahead of the disk when the cancel came: at most two throttled seconds. One
    # may sit in the socket buffers (each server sends a second's worth at once: nginx's
    # limit_rate starts with one, lighttpd sends each second's quota as the second begins,
    # Apache's burst is set to one), and one more may be written, on the next second,
    # before the server sees the connection closed. Seen: lighttpd up to 124 KiB per
    # connection, Apache 26, nginx 18.
    ahead = len(first) * (2 * THROTTLE_KIB * KiB + HEADERS)
    assert sent(first) + sent(second) <= SIZE + overlaps + ahead, log
    if connections == 1:
        # The .part's size is exact: the resume starts one overlap before it.
        assert second[0].range == f"bytes={kept - OVERLAP}-", log


# --------------------------------------------------------------------------- 3. changed file


def validators(url: str) -> tuple[str | None, str | None]:
    """The ETag and Last-Modified a HEAD request gets."""
    with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10) as resp:
        return resp.headers.get("ETag"), resp.headers.get("Last-Modified")


@pytest.mark.parametrize("how", ["replaced", "rewritten-in-place"])
async def test_changed_file_gives_the_new_bytes_never_a_mix(httpd: Server, name: str, tmp_path: Path,
                                                            how: str) -> None:
    old, new = make_video(SIZE, seed=3), make_video(SIZE, seed=4)
    put_old(httpd, name, old)
    dest = tmp_path / name
    url = httpd.url(name)
    before = validators(url)
    await interrupt(url, dest)
    path = httpd.root / name
    if how == "replaced":
        # As an upload would: a new file (new inode, new mtime: just now).
        staged = path.with_name(name + ".new")
        staged.write_bytes(new)
        staged.chmod(0o644)
        os.replace(staged, path)
        # lighttpd goes on serving the old file, validators and bytes, for up to a second
        # (its stat and open-file cache): only then is it the new one to a client.
        await until(lambda: validators(url) != before, timeout=5, what=f"{httpd.name} to serve the new file")
    else:
        # Same inode, size and mtime, so Last-Modified and every server's ETag (made of
        # those) stay the same: only the overlap check can tell the bytes changed.
        st = path.stat()
        with open(path, "r+b") as f:
            f.write(new)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert validators(url) == before
    httpd.settle()
    asked = len(httpd.entries(name))

    result = await vidnb.download(url, dest, progress=False)
    httpd.settle()
    log = show(httpd.entries(name)[asked:])
    got = dest.read_bytes()
    differ = sum(a != b for a, b in zip(got, new, strict=False))
    assert got == new, f"{len(got)} bytes, {differ} differ from the new file; resumed={result.resumed}\n{log}"


# --------------------------------------------------------------------------- 4. a file just written


async def test_several_connections_on_a_file_just_written(httpd: Server, name: str,
                                                          tmp_path: Path) -> None:
    data = make_video(SIZE, seed=5)
    httpd.put(name, data)  # now: Apache's ETag is weak and it refuses If-Range dates
    dest = tmp_path / name
    await vidnb.download(httpd.url(name), dest, progress=False, connections=8)
    httpd.settle()
    entries = httpd.entries(name)
    assert dest.read_bytes() == data, show(entries)
    assert sum(e.status == 206 for e in entries) > 1, show(entries)
    assert sent(entries) <= 1.02 * SIZE, f"{sent(entries)} bytes sent for {SIZE}\n{show(entries)}"


# --------------------------------------------------------------------------- 5. Jupyter's /files/


@pytest.mark.parametrize("connections", [1, 8, "auto"])
async def test_jupyter_files_route(running: Callable[[str], Server], name: str, tmp_path: Path,
                                   connections: int | Literal["auto"]) -> None:
    # Jupyter logs no bytes sent, and no request headers; it does log the status of each
    # request, and a 206 is a range it answered.
    srv = running("jupyter")
    data = make_video(SIZE, seed=6)
    srv.put(name, data)  # just written: Jupyter sends no ETag, and a Last-Modified of this second
    dest = tmp_path / name
    result = await vidnb.download(srv.url(name), dest, progress=False, connections=connections)
    srv.settle()
    statuses = [e.status for e in srv.entries(name)]
    assert dest.read_bytes() == data, statuses
    assert result.size == SIZE and result.format == "mp4"
    assert set(statuses) <= {200, 206}, statuses
    if connections == 8:
        assert statuses.count(206) > 1, statuses
