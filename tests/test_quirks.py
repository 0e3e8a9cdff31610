"""Server quirks met in real servers, each reproduced by the local server, each with its test.

- tornado ignores If-Range and keeps a rewritten file's old ETag (its Last-Modified changes);
- Apache gives a young file a weak ETag (``W/"x"``, later ``"x"``) and refuses a date in
  If-Range until the file is a minute old;
- tornado and Jupyter's ``/files/`` answer ``Range: bytes=0-`` with 200 but bounded ranges
  with 206;
- several connections used to fetch 5-27 % more than the file (open-ended first request,
  pieces cut while their bytes were on the wire).

The same cases run against the real servers in test_interop.py.
"""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from helpers import Concurrency, make_video, resume_from, until

import vidnb
from vidnb import _files
from vidnb._strategy import OVERLAP, PROBE

FAST = vidnb.Retry(total=5, backoff=0.01)
_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


async def interrupted(url: str, dest, *, at: int, **options) -> int:
    """Start a download, cancel it once ``at`` bytes have arrived, return the bytes kept.

    Bytes arrived, not the .part's size: several connections preallocate the whole file.
    """
    arrived = asyncio.Event()

    def watch(event: vidnb.ProgressEvent) -> None:
        if event.done >= at:
            arrived.set()

    task = asyncio.ensure_future(vidnb.download(url, dest, progress=watch, **options))
    await until(lambda: arrived.is_set(), timeout=20, what=f"{at} bytes to arrive", unless=task.done)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return _files.part_path(dest).stat().st_size


async def server_idle(route) -> None:
    """Wait until the server has finished answering: a cancelled client's handlers may still
    write a chunk before they notice, which must not be counted against the next call."""
    await until(lambda: route.concurrency.now == 0, timeout=10, what="the server to finish answering")


# ---------------------------------------------------------------- a changed file, never a mix


@pytest.mark.parametrize("connections", [1, 8])
async def test_a_rewritten_file_behind_a_stale_etag_is_fetched_again_not_mixed(serve, dest, connections):
    # tornado: If-Range ignored, the old ETag kept; only Last-Modified tells.
    old, new = make_video(6 << 20, seed=1), make_video(6 << 20, seed=2)
    url, route = serve(old, ignore_if_range=True, rate=2 << 20)
    await interrupted(url, dest, at=1 << 20, connections=connections)
    route.data, route.rate = new, None
    route.last_modified = "Sun, 02 Nov 2025 12:00:00 GMT"
    result = await vidnb.download(url, dest, connections=connections, progress=False)
    assert dest.read_bytes() == new and not result.resumed


@pytest.mark.parametrize("connections", [1, 8])
async def test_a_rewritten_file_with_every_validator_unchanged_is_caught_by_its_bytes(serve, dest, connections):
    # A server that lies with both validators: only the overlap check can tell.
    old, new = make_video(6 << 20, seed=3), make_video(6 << 20, seed=4)
    url, route = serve(old, ignore_if_range=True, rate=2 << 20)
    await interrupted(url, dest, at=1 << 20, connections=connections)
    route.data, route.rate = new, None
    result = await vidnb.download(url, dest, connections=connections, progress=False)
    assert dest.read_bytes() == new and not result.resumed


async def test_the_same_bytes_resume_when_the_server_ignores_if_range(serve, dest):
    data = make_video(4 << 20, seed=5)
    url, route = serve(data, ignore_if_range=True, rate=2 << 20)
    kept = await interrupted(url, dest, at=1 << 20)
    route.rate = None
    result = await vidnb.download(url, dest, progress=False)
    assert result.resumed and dest.read_bytes() == data
    assert route.requests[-1]["Range"] == resume_from(kept)


# ---------------------------------------------------------------- weak and strong ETags


async def test_a_weak_etag_that_turned_strong_is_the_same_file(serve, dest):
    # Apache: W/"x" for a file modified in the last second, "x" once it is older.
    data = make_video(4 << 20, seed=6)
    url, route = serve(data, etag='W/"apache-1"', if_range_dates=False, rate=2 << 20)
    kept = await interrupted(url, dest, at=1 << 20)
    route.etag, route.rate = '"apache-1"', None
    result = await vidnb.download(url, dest, progress=False)
    assert result.resumed and dest.read_bytes() == data
    assert route.requests[-1]["Range"] == resume_from(kept) and route.full_bodies == 1  # the first run's


async def test_several_connections_on_a_young_apache_file_fetch_it_once(serve, dest):
    data = make_video(16 << 20, seed=7)
    url, route = serve(data, etag='W/"young"', if_range_dates=False)
    result = await vidnb.download(url, dest, connections=8, progress=False)
    assert dest.read_bytes() == data and result.attempts == 1
    assert route.sent <= 1.02 * len(data), f"fetched {route.sent / len(data):.2f}x the file"
    assert all("If-Range" not in h for h in route.requests)  # never a weak ETag, nor a date beside one


async def test_a_whole_file_answered_to_a_range_falls_back_to_one_stream_at_once(serve, dest):
    # Last-Modified only, and the server refuses dates in If-Range: every piece gets a 200.
    data = make_video(16 << 20, seed=8)
    url, route = serve(data, etag=None, if_range_dates=False)
    await vidnb.download(url, dest, connections=8, progress=False)
    assert dest.read_bytes() == data
    # One stream right after the refusals: the file is fetched once more, not once per piece
    # (what the pieces' refused 200s had on the wire at the moment they were closed aside).
    assert route.full_bodies == 1, [h.get("Range") for h in route.requests]
    assert route.sent < 2 * len(data), f"fetched {route.sent / len(data):.2f}x the file"


# ---------------------------------------------------------------- range detection, no waste


async def test_ranges_are_found_on_a_server_that_answers_open_ranges_with_200(serve, dest):
    # tornado and Jupyter's /files/: bytes=0- gets 200, bytes=0-N gets 206.
    data = make_video(8 << 20, seed=9)
    url, route = serve(data, open_ended_ranges=False)
    await vidnb.download(url, dest, connections=8, progress=False)
    assert dest.read_bytes() == data
    asked = [h.get("Range") for h in route.requests]
    assert len(asked) == 9 and asked[0] == f"bytes=0-{PROBE - 1}" and all(a and _RANGE.match(a) for a in asked)
    assert route.sent == len(data)


@pytest.mark.parametrize("connections", [4, 8, 16, "auto"])
async def test_several_connections_fetch_exactly_the_file(serve, dest, connections):
    data = make_video(24 << 20, seed=10)
    url, route = serve(data)
    result = await vidnb.download(url, dest, connections=connections, progress=False)
    assert dest.read_bytes() == data and result.attempts == 1
    assert route.sent <= 1.02 * len(data), f"fetched {route.sent / len(data):.3f}x the file"


@pytest.mark.parametrize("connections", [1, 8])
async def test_a_resume_fetches_the_missing_bytes_and_the_overlap_only(serve, dest, connections):
    data = make_video(12 << 20, seed=11)
    url, route = serve(data, rate=8 << 20, concurrency=Concurrency())
    kept = await interrupted(url, dest, at=3 << 20, connections=connections)
    await server_idle(route)
    state = json.loads(_files.sidecar_path(dest).read_text())
    pieces = state["segments"] or [[0, len(data), kept]]
    missing = sum(end - start - done for start, end, done in pieces)
    checks = sum(min(OVERLAP, done) for start, end, done in pieces if done and start + done < end)
    before = route.sent
    route.rate = None
    result = await vidnb.download(url, dest, connections=connections, progress=False)
    assert result.resumed and dest.read_bytes() == data
    fetched = route.sent - before
    assert fetched <= missing + checks + OVERLAP, f"fetched {fetched} for {missing} missing ({checks} checked)"
