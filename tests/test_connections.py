"""Several connections for one file: ranges fetched at once, resumed piece by piece, verified.

Sizes are chosen against ``_pieces.MIN_SPLIT`` (512 KiB): pieces of a 3 MiB file split
four ways are under twice that, so no piece is ever cut again and the requests the server
sees are exactly the planned ones.
"""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from helpers import Concurrency, Route, leftovers, make_video, serve_route, sha

import vidnb
from vidnb import _files, _options
from vidnb._strategy import OVERLAP, PROBE

FAST = vidnb.Retry(total=5, backoff=0.01)
_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


def ranges(requests: list[dict[str, str]]) -> list[tuple[int, int | None]]:
    """(first, last or None) of every ranged request, in order."""
    out = []
    for h in requests:
        m = _RANGE.match(h.get("Range", ""))
        if m:
            out.append((int(m.group(1)), int(m.group(2)) if m.group(2) else None))
    return out


def missing(dest) -> set[tuple[int, int]]:
    """The byte ranges (first, last) a segmented sidecar says are not on disk yet."""
    state = json.loads(_files.sidecar_path(dest).read_text())
    return {(s + d, e - 1) for s, e, d in state["segments"] if s + d < e}


def asked_again(dest) -> set[tuple[int, int]]:
    """What resuming the pieces of a segmented sidecar asks for: the missing bytes of each
    piece, from the overlap before them that is compared with the disk. A piece with nothing
    on disk checks the end of the piece before it when that one is complete (a piece whose
    connection was stopped before its first byte, under load, is one)."""
    state = json.loads(_files.sidecar_path(dest).read_text())
    segs = sorted(state["segments"])
    out = set()
    for i, (s, e, d) in enumerate(segs):
        if s + d >= e:
            continue
        before = d
        if not d and i and segs[i - 1][0] + segs[i - 1][2] == segs[i - 1][1] == s:
            before = segs[i - 1][1] - segs[i - 1][0]
        out.add((s + d - min(OVERLAP, before), e - 1))
    return out


def bytes_asked(requests: list[dict[str, str]], size: int) -> int:
    return sum((size - 1 if b is None else b) - a + 1 for a, b in ranges(requests))


async def test_four_connections_fetch_four_ranges(serve, video, dest):
    url, route = serve(video)
    result = await vidnb.download(url, dest, connections=4, progress=False)
    assert dest.read_bytes() == video
    assert (result.size, result.format, result.attempts, result.resumed) == (len(video), "mp4", 1, False)
    got = ranges(route.requests)
    assert len(route.requests) == 5 and len(got) == 5
    # The first request probes with a bounded range, then four pieces share the rest: no
    # request reads past its piece, so exactly the file crosses the wire.
    assert got[0] == (0, PROBE - 1)
    starts = sorted(a for a, _ in got)
    assert starts[0] == 0 and all(b == len(video) - 1 or b + 1 in starts for _, b in got[1:])
    assert bytes_asked(route.requests, len(video)) == len(video)
    assert all(h["If-Range"] == route.etag for h in route.requests[1:])
    assert leftovers(dest.parent) == ["clip.mp4"]


async def test_a_dropped_piece_is_retried_alone_from_where_it_stopped(serve, video, dest):
    url, route = serve(video, drops={2: 300_000})
    result = await vidnb.download(url, dest, connections=4, retries=FAST, progress=False)
    assert dest.read_bytes() == video
    got = ranges(route.requests)
    assert len(got) == 6 and result.attempts == 2
    first, last = got[1]
    assert got[5] == (first + 300_000, last)
    # Every other piece was asked for once.
    assert len({a for a, _ in got}) == 6


async def test_failed_download_resumes_only_missing_pieces(serve, video, dest):
    url, route = serve(video, drops={3: 200_000})
    with pytest.raises(vidnb.IncompleteDownloadError):
        await vidnb.download(url, dest, connections=4, retries=0, progress=False)
    assert not dest.exists() and _files.part_path(dest).stat().st_size == len(video)
    todo = asked_again(dest)
    assert todo
    before = len(route.requests)
    # connections=1 still resumes piece by piece (never as one stream over a holey file).
    result = await vidnb.download(url, dest, progress=False)
    assert result.resumed and dest.read_bytes() == video
    assert set(ranges(route.requests[before:])) == todo
    assert leftovers(dest.parent) == ["clip.mp4"]


async def test_cancelled_download_resumes_only_missing_pieces(serve, dest):
    data = make_video(3 * 1024 * 1024)
    url, route = serve(data, rate=2 * 1024 * 1024)
    halfway = asyncio.Event()

    def watch(ev: vidnb.ProgressEvent) -> None:
        if ev.done > 600_000:
            halfway.set()

    task = asyncio.create_task(vidnb.download(url, dest, connections=4, progress=watch))
    await asyncio.wait_for(halfway.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    todo = missing(dest)
    assert todo and sum(b - a + 1 for a, b in todo) < len(data)
    checks = sum(b - a for a, b in asked_again(dest)) - sum(b - a for a, b in todo)
    route.rate = None
    before = len(route.requests)
    result = await vidnb.download(url, dest, connections=4, progress=False)
    assert result.resumed and dest.read_bytes() == data
    # Only the missing bytes are asked for (cut for four connections), plus the overlap checks.
    assert bytes_asked(route.requests[before:], len(data)) == sum(b - a + 1 for a, b in todo) + checks


async def test_single_stream_part_is_shared_out_when_more_connections_are_asked_for(serve, video, dest):
    url, route = serve(video, drops={1: 1_000_000})
    with pytest.raises(vidnb.IncompleteDownloadError):
        await vidnb.download(url, dest, retries=0, progress=False)
    result = await vidnb.download(url, dest, connections=4, progress=False)
    assert result.resumed and dest.read_bytes() == video
    got = ranges(route.requests[1:])
    # The piece after the stream's bytes checks them first.
    assert len(got) > 1 and min(a for a, _ in got) == 1_000_000 - OVERLAP


async def test_server_without_ranges_falls_back_to_one_stream(serve, video, dest):
    url, route = serve(video, ranges=False)
    result = await vidnb.download(url, dest, connections=8, progress=False)
    assert dest.read_bytes() == video and result.attempts == 1
    assert len(route.requests) == 1 and route.requests[0]["Range"] == f"bytes=0-{PROBE - 1}"
    assert leftovers(dest.parent) == ["clip.mp4"]


async def test_small_file_needs_no_second_connection(serve, dest):
    data = make_video(300_000)
    url, route = serve(data)
    await vidnb.download(url, dest, connections=4, progress=False)
    assert dest.read_bytes() == data and len(route.requests) == 1


async def test_content_range_mismatch_restarts_from_zero_with_one_stream(video, dest, server):
    """A server whose 206 for a piece starts at the wrong byte must not be trusted with pieces."""
    from aiohttp import web

    calls: list[dict[str, str]] = []

    async def bad_range(request: web.Request) -> web.StreamResponse:
        calls.append(dict(request.headers))
        m = _RANGE.match(request.headers.get("Range", ""))
        if m is None:
            return web.Response(body=video, headers={"ETag": '"e"'}, content_type="video/mp4")
        start = int(m.group(1))
        end = int(m.group(2)) + 1 if m.group(2) else len(video)
        start = max(start - 1000, 0) if start else 0  # pieces come back 1000 bytes early
        return web.Response(
            status=206,
            body=video[start:end],
            headers={"Content-Range": f"bytes {start}-{end - 1}/{len(video)}", "ETag": '"e"'},
            content_type="video/mp4",
        )

    old = server.fallback
    server.fallback = lambda request: bad_range(request) if request.path == "/badpieces/x.mp4" else old(request)
    try:
        result = await vidnb.download(server.url("/badpieces/x.mp4"), dest, connections=4, retries=FAST, progress=False)
    finally:
        server.fallback = old
    assert dest.read_bytes() == video and not result.resumed
    assert "Range" not in calls[-1]
    assert leftovers(dest.parent) == ["clip.mp4"]


async def test_file_changed_between_calls_restarts_from_zero(serve, video, dest):
    url, route = serve(video, drops={2: 100_000})
    with pytest.raises(vidnb.IncompleteDownloadError):
        await vidnb.download(url, dest, connections=4, retries=0, progress=False)
    new = make_video(len(video) + 5000, seed=7)
    route.data, route.etag = new, '"v2"'
    result = await vidnb.download(url, dest, connections=4, progress=False)
    assert dest.read_bytes() == new and not result.resumed


async def test_sha256_is_checked_for_several_connections(serve, video, dest, tmp_path):
    url, _ = serve(video)
    result = await vidnb.download(url, dest, connections=4, sha256=sha(video), progress=False)
    assert result.sha256 == sha(video)
    other = tmp_path / "other.mp4"
    with pytest.raises(vidnb.ChecksumError):
        await vidnb.download(url, other, connections=4, sha256="0" * 64, progress=False)
    assert leftovers(tmp_path) == ["out"]


async def test_one_progress_count_for_the_whole_file(serve, video, dest):
    url, _ = serve(video)
    events: list[vidnb.ProgressEvent] = []
    await vidnb.download(url, dest, connections=4, progress=events.append)
    assert events[-1].state == "done" and events[-1].done == events[-1].total == len(video)
    assert all(e.total == len(video) for e in events)


async def test_name_from_the_server_with_several_connections(serve, video, tmp_path):
    url, route = serve(video, name="from-url.mp4")
    result = await vidnb.download(url, tmp_path, connections=4, progress=False)
    assert result.path == tmp_path / "from-url.mp4" and result.path.read_bytes() == video
    assert len(route.requests) == 5 and bytes_asked(route.requests, len(video)) == len(video)


async def test_auto_keeps_one_connection_on_a_fast_server(serve, dest):
    data = make_video(4 * 1024 * 1024)
    url, route = serve(data)
    await vidnb.download(url, dest, connections="auto", progress=False)
    # The probe's piece, then the rest on the same one connection: nothing added, nothing cut.
    assert dest.read_bytes() == data and ranges(route.requests) == [(0, PROBE - 1), (PROBE, len(data) - 1)]


async def test_auto_adds_connections_when_each_one_is_capped(serve, dest):
    data = make_video(4 * 1024 * 1024)
    url, route = serve(data, rate=2 * 1024 * 1024)  # per response, like nginx limit_rate
    result = await vidnb.download(url, dest, connections="auto", progress=False)
    assert dest.read_bytes() == data and result.attempts == 1
    assert len(ranges(route.requests)) >= 3


async def test_auto_keeps_one_connection_to_a_server_that_refuses_a_second(server, dest):
    """A capped connection makes "auto" try one more; a server that allows one connection per
    client refuses it, and the download goes on over the one it has (no error, no more tries)."""
    from aiohttp import web

    data = make_video(6 * 1024 * 1024)
    gauge = Concurrency()
    route = Route(data, rate=4 * 1024 * 1024, concurrency=gauge)
    refused: list[str | None] = []

    async def one_per_client(request: web.Request) -> web.StreamResponse:
        if gauge.now:
            refused.append(request.headers.get("Range"))
            return web.Response(status=503, text="one connection per client", headers={"Retry-After": "0"})
        return await serve_route(request, route)

    old = server.fallback
    server.fallback = lambda request: one_per_client(request) if request.path == "/onepc/x.mp4" else old(request)
    try:
        result = await vidnb.download(server.url("/onepc/x.mp4"), dest, connections="auto", progress=False)
    finally:
        server.fallback = old
    assert dest.read_bytes() == data and result.attempts == 1
    # Refused once, and never two requests answered at once (the pool may send later requests
    # over the refused connection, one at a time).
    assert len(refused) == 1 and gauge.peak == 1
    # Every byte was asked for once, over the one connection that was answered.
    assert bytes_asked(route.requests, len(data)) == len(data)


async def test_auto_opens_a_second_connection_before_the_rest(serve, dest):
    data = make_video(8 * 1024 * 1024)
    gauge = Concurrency()
    url, route = serve(data, rate=4 * 1024 * 1024, concurrency=gauge)
    await vidnb.download(url, dest, connections="auto", progress=False)
    assert dest.read_bytes() == data and gauge.peak > 2
    # The probe (still arriving), then the one connection added first: a short request that only
    # has to be answered before the others start.
    (probe, _), (a, b) = ranges(route.requests)[:2]
    assert probe == 0 and b is not None and b - a + 1 <= 512 * 1024
    assert bytes_asked(route.requests, len(data)) == len(data)


def test_a_batch_pool_holds_what_its_downloads_may_open():
    # "auto" may reach AUTO_MAX ranges; the default 1 still means a few segments for HLS.
    assert _options.most_connections("auto") == _options.AUTO_MAX
    assert _options.most_connections(1) == _options.HLS_SEGMENTS
    assert _options.most_connections(8) == 8
    with pytest.raises(ValueError, match="connections"):
        _options.most_connections("many")


async def test_a_batch_with_a_bad_connections_value_makes_no_request(serve, video, tmp_path):
    url, route = serve(video)
    with pytest.raises(ValueError, match="connections"):
        await vidnb.download_many([url], tmp_path, connections="many", progress=False)
    assert route.requests == []


@pytest.mark.parametrize("bad", [0, -1, _options.MAX_CONNECTIONS + 1, "many", True, 2.0])
async def test_bad_connections_value_is_refused(bad, dest):
    with pytest.raises(ValueError, match="connections"):
        await vidnb.download("http://127.0.0.1:1/x.mp4", dest, connections=bad, progress=False)
