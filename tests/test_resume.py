"""Resuming and retrying: drops, servers that ignore or botch ranges, changed files, killed processes."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time

import pytest
from helpers import make_video, resume_from, spawn_download, until, wait_until

import vidnb
from vidnb import _files
from vidnb._strategy import OVERLAP

FAST = vidnb.Retry(total=5, backoff=0.01)


async def test_dropped_connection_is_resumed_within_one_call(serve, video, dest):
    url, route = serve(video, drops={1: 700_000, 2: 1_500_000})
    result = await vidnb.download(url, dest, retries=FAST, progress=False)
    assert dest.read_bytes() == video
    assert result.attempts == 3 and result.resumed
    assert route.requests[1]["Range"] == resume_from(700_000)
    assert route.requests[1]["If-Range"] == route.etag
    assert route.requests[2]["Range"] == resume_from(2_200_000 - OVERLAP)  # drops count every byte sent


async def test_broken_download_is_resumed_by_the_next_call(serve, video, dest):
    url, route = serve(video, drops={1: 1_000_000})
    with pytest.raises(vidnb.IncompleteDownloadError, match="resume"):
        await vidnb.download(url, dest, retries=0, progress=False)
    part = _files.part_path(dest)
    assert part.stat().st_size == 1_000_000 and not dest.exists()
    state = json.loads(_files.sidecar_path(dest).read_text())
    assert state["etag"] == route.etag and state["total"] == len(video)
    result = await vidnb.download(url, dest, progress=False)
    assert result.resumed and dest.read_bytes() == video
    assert route.requests[1]["Range"] == resume_from(1_000_000)
    assert not part.exists() and not _files.sidecar_path(dest).exists()


async def test_last_modified_is_used_when_there_is_no_etag(serve, video, dest):
    url, route = serve(video, etag=None, drops={1: 500_000})
    await vidnb.download(url, dest, retries=FAST, progress=False)
    assert route.requests[1]["If-Range"] == route.last_modified
    assert dest.read_bytes() == video


async def test_weak_etag_is_not_used_for_if_range(serve, video, dest):
    # RFC 9110 forbids a weak ETag in If-Range, and the server that gave one (Apache, for a
    # young file) refuses a date there too: no If-Range; the overlap and validators guard it.
    url, route = serve(video, etag='W/"weak"', drops={1: 500_000})
    result = await vidnb.download(url, dest, retries=FAST, progress=False)
    assert "If-Range" not in route.requests[1] and route.requests[1]["Range"] == resume_from(500_000)
    assert result.resumed and dest.read_bytes() == video


async def test_no_validator_resumes_once_the_overlap_matches(serve, video, dest):
    # Nothing to send in If-Range, but the bytes before the resume point are compared.
    url, route = serve(video, etag=None, last_modified=None, drops={1: 500_000})
    result = await vidnb.download(url, dest, retries=FAST, progress=False)
    assert route.requests[1]["Range"] == resume_from(500_000) and "If-Range" not in route.requests[1]
    assert dest.read_bytes() == video and result.resumed


async def test_server_that_ignores_range_restarts_from_zero(serve, video, dest):
    url, route = serve(video, ranges=False, drops={1: 900_000})
    result = await vidnb.download(url, dest, retries=FAST, progress=False)
    # It asked for the rest, got 200 with everything, and wrote from byte 0 instead of appending.
    assert route.requests[1]["Range"] == resume_from(900_000)
    assert dest.read_bytes() == video and not result.resumed


async def test_changed_file_on_the_server_restarts_from_zero(serve, video, dest):
    url, route = serve(video, drops={1: 800_000})
    with pytest.raises(vidnb.IncompleteDownloadError):
        await vidnb.download(url, dest, retries=0, progress=False)
    new = make_video(len(video) + 5000, seed=99)
    route.data, route.etag = new, '"v2"'
    result = await vidnb.download(url, dest, progress=False)
    # If-Range carried the old ETag, so the server sent the whole new file.
    assert route.requests[1]["If-Range"] != '"v2"'
    assert dest.read_bytes() == new and not result.resumed


async def test_content_range_start_mismatch_is_caught(serve, video, dest, server):
    """A server whose 206 starts at the wrong byte must not be appended."""
    from aiohttp import web

    calls = []

    async def bad_range(request: web.Request) -> web.StreamResponse:
        calls.append(dict(request.headers))
        if "Range" in request.headers:
            start = int(request.headers["Range"][6:-1]) - 1000
            body = video[start:]
            return web.Response(
                status=206,
                body=body,
                headers={"Content-Range": f"bytes {start}-{len(video) - 1}/{len(video)}", "ETag": '"e"'},
                content_type="video/mp4",
            )
        return web.Response(body=video, headers={"ETag": '"e"'}, content_type="video/mp4")

    old = server.fallback  # the dispatcher falls back to this hook for unknown paths
    server.fallback = lambda request: bad_range(request) if request.path == "/badrange/x.mp4" else old(request)
    try:
        dest.parent.mkdir(parents=True)
        _files.part_path(dest).write_bytes(video[:400_000])
        _files.sidecar_path(dest).write_text(
            json.dumps({"url": server.url("/badrange/x.mp4"), "etag": '"e"', "total": len(video)})
        )
        result = await vidnb.download(server.url("/badrange/x.mp4"), dest, progress=False)
    finally:
        server.fallback = old
    assert calls[0]["Range"] == resume_from(400_000)
    assert dest.read_bytes() == video and not result.resumed and len(calls) == 2


async def test_complete_part_left_before_the_rename_is_finished_without_refetching(serve, video, dest):
    url, route = serve(video)
    dest.parent.mkdir(parents=True)
    _files.part_path(dest).write_bytes(video)
    _files.sidecar_path(dest).write_text(json.dumps({"url": url, "etag": route.etag, "total": len(video)}))
    result = await vidnb.download(url, dest, progress=False)
    assert result.resumed and dest.read_bytes() == video
    assert len(route.requests) == 1 and route.requests[0]["Range"] == resume_from(len(video))


async def test_resume_false_starts_again(serve, video, dest):
    url, route = serve(video, drops={1: 500_000})
    with pytest.raises(vidnb.IncompleteDownloadError):
        await vidnb.download(url, dest, retries=0, progress=False)
    await vidnb.download(url, dest, resume=False, progress=False)
    assert "Range" not in route.requests[1] and dest.read_bytes() == video


async def test_sha256_covers_resumed_bytes(serve, video, dest):
    import hashlib

    url, _ = serve(video, drops={1: 1_234_567})
    result = await vidnb.download(url, dest, retries=FAST, sha256=hashlib.sha256(video).hexdigest(), progress=False)
    assert result.resumed and result.sha256 == hashlib.sha256(video).hexdigest()


async def test_short_body_without_error_is_incomplete(serve, video, dest):
    # The server announces more than it sends and closes cleanly after the body.
    url, _ = serve(video, declared_length=len(video) + 10_000, drops={n: len(video) for n in range(1, 10)})
    with pytest.raises(vidnb.IncompleteDownloadError):
        await vidnb.download(url, dest, retries=vidnb.Retry(total=2, backoff=0.01), progress=False)
    assert not dest.exists() and _files.part_path(dest).exists()


# ---------------------------------------------------------------- retries


@pytest.mark.parametrize("statuses", [[503, 503], [500], [502, 504], [408], [429, 429, 429]])
async def test_transient_statuses_are_retried(serve, video, dest, statuses):
    url, route = serve(video, statuses=statuses)
    result = await vidnb.download(url, dest, retries=FAST, progress=False)
    assert result.attempts == len(statuses) + 1 and dest.read_bytes() == video


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
async def test_client_errors_are_not_retried(serve, video, dest, status):
    url, route = serve(video, statuses=[status])
    with pytest.raises(vidnb.HTTPStatusError) as info:
        await vidnb.download(url, dest, retries=FAST, progress=False)
    assert info.value.status == status and info.value.url == url
    assert len(route.requests) == 1
    assert not dest.parent.exists() or os.listdir(dest.parent) == []


async def test_retries_give_up_with_the_last_error(serve, video, dest):
    url, route = serve(video, statuses=[503] * 10)
    with pytest.raises(vidnb.HTTPStatusError) as info:
        await vidnb.download(url, dest, retries=vidnb.Retry(total=2, backoff=0.01), progress=False)
    assert info.value.status == 503 and len(route.requests) == 3
    assert "try again later" in str(info.value)


async def test_retry_after_is_honoured_and_capped(serve, video, dest, caplog):
    caplog.set_level(logging.WARNING, logger="vidnb")
    url, _ = serve(video, statuses=[429], retry_after="3600")
    t0 = time.monotonic()
    await vidnb.download(url, dest, retries=vidnb.Retry(total=2, backoff=5, max_retry_after=0.3), progress=False)
    waited = time.monotonic() - t0
    # Retry-After (capped to 0.3 s) wins over the 5 s backoff.
    assert 0.25 <= waited < 4
    assert "HTTPStatusError" in caplog.text and "retrying in 0.3 s" in caplog.text


def test_backoff_grows_with_jitter_and_a_cap():
    r = vidnb.Retry(total=10, backoff=1.0, max_backoff=8.0)
    for attempt, cap in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        delays = {r.delay(attempt) for _ in range(50)}
        assert all(cap / 2 <= d <= cap for d in delays) and len(delays) > 1
    assert r.delay(1, retry_after=7.0) == 7.0


async def test_read_timeout_is_retried_then_reported(serve, video, dest):
    url, route = serve(video, rate=2000)  # far slower than a 0.3 s read timeout allows after the head
    with pytest.raises(vidnb.NetworkError, match="Timed out"):
        await vidnb.download(url, dest, timeout=0.3, retries=vidnb.Retry(total=1, backoff=0.01), progress=False)
    assert len(route.requests) == 2


async def test_connection_refused_is_a_network_error(dest):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(vidnb.NetworkError, match="Cannot connect"):
        await vidnb.download(f"http://127.0.0.1:{port}/x.mp4", dest, retries=vidnb.Retry(1, 0.01), progress=False)


# ---------------------------------------------------------------- other processes


@pytest.mark.slow
def test_download_killed_with_its_process_resumes_in_another(serve, dest):
    data = make_video(4 * 1024 * 1024)
    url, route = serve(data, rate=1024 * 1024)
    proc = spawn_download(url, dest)
    part = _files.part_path(dest)
    wait_until(lambda: part.exists() and part.stat().st_size > 300_000 and _files.sidecar_path(dest).exists())
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    kept = part.stat().st_size
    assert not dest.exists() and kept < len(data)
    route.rate = None
    result = vidnb.download_sync(url, dest, progress=False)
    assert result.resumed and dest.read_bytes() == data
    assert route.requests[-1]["Range"] == resume_from(kept)


@pytest.mark.slow
def test_a_process_killed_before_writing_its_record_is_resumed_once_the_overlap_matches(serve, dest):
    data = make_video(2 * 1024 * 1024)
    url, route = serve(data, pause_after=300_000)  # 300 kB in a moment, then nothing
    proc = spawn_download(url, dest)
    part = _files.part_path(dest)
    wait_until(lambda: part.exists() and part.stat().st_size == 300_000)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    # Killed outright in its first second: the bytes are there, the record of them is not.
    assert part.stat().st_size == 300_000 and not _files.sidecar_path(dest).exists()
    route.pause_after = None
    result = vidnb.download_sync(url, dest, progress=False)
    assert result.resumed and dest.read_bytes() == data
    assert route.requests[-1]["Range"] == resume_from(300_000) and route.full_bodies == 1
    assert sorted(os.listdir(dest.parent)) == ["clip.mp4"]


@pytest.mark.slow
def test_another_urls_record_never_describes_new_bytes(serve, dest):
    # A .part of URL a with its record; then URL b to the same file, killed before it wrote
    # its own record. Resuming a from the old record would append a's bytes to b's.
    data_a, data_b = make_video(1_000_000, seed=1), make_video(1_000_000, seed=2)
    url_a, route_a = serve(data_a, name="a.mp4", drops={1: 500_000})
    url_b, _ = serve(data_b, name="b.mp4", pause_after=300_000)
    with pytest.raises(vidnb.IncompleteDownloadError):
        vidnb.download_sync(url_a, dest, retries=0, progress=False)
    assert _files.sidecar_path(dest).exists()
    proc = spawn_download(url_b, dest)
    part = _files.part_path(dest)
    wait_until(lambda: part.read_bytes()[:300_000] == data_b[:300_000])
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert not _files.sidecar_path(dest).exists()  # a's record went before b's first byte
    result = vidnb.download_sync(url_a, dest, progress=False)
    assert dest.read_bytes() == data_a and not result.resumed
    assert "Range" not in route_a.requests[-1]


@pytest.mark.slow
def test_a_download_stalled_past_its_first_second_has_its_record(serve, dest):
    data = make_video(2 * 1024 * 1024)
    url, route = serve(data, pause_after=300_000)  # 300 kB, then the server hangs
    proc = spawn_download(url, dest)
    # No more bytes arrive, yet the record is written once a second has passed.
    wait_until(lambda: _files.sidecar_path(dest).exists())
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert _files.part_path(dest).stat().st_size == 300_000
    route.pause_after = None
    result = vidnb.download_sync(url, dest, progress=False)
    assert result.resumed and dest.read_bytes() == data
    assert route.requests[-1]["Range"] == resume_from(300_000) and route.full_bodies == 1


async def test_a_record_left_without_its_part_is_dropped_by_the_next_download(serve, dest):
    data_a, data_b = make_video(1_000_000, seed=1), make_video(1_000_000, seed=2)
    url_a, _ = serve(data_a, name="a.mp4", drops={1: 500_000})
    url_b, _ = serve(data_b, name="b.mp4")
    with pytest.raises(vidnb.IncompleteDownloadError):
        await vidnb.download(url_a, dest, retries=0, progress=False)
    _files.part_path(dest).unlink()  # the record of a's bytes stays behind
    await vidnb.download(url_b, dest, progress=False)
    assert dest.read_bytes() == data_b and sorted(os.listdir(dest.parent)) == ["clip.mp4"]


async def test_a_download_cancelled_in_its_first_second_stays_resumable(serve, dest):
    data = make_video(2 * 1024 * 1024)
    url, route = serve(data, pause_after=300_000)
    task = asyncio.ensure_future(vidnb.download(url, dest, progress=False))
    part = _files.part_path(dest)
    await until(lambda: part.exists() and part.stat().st_size == 300_000, timeout=20,
                what="the download to get going", unless=task.done)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    state = json.loads(_files.sidecar_path(dest).read_text())
    assert state["etag"] == route.etag and state["total"] == len(data)
    route.pause_after = None
    result = await vidnb.download(url, dest, progress=False)
    assert result.resumed and dest.read_bytes() == data
    assert route.requests[-1]["Range"] == resume_from(300_000) and route.full_bodies == 1


@pytest.mark.slow
def test_two_processes_on_one_destination_make_one_correct_file(serve, dest):
    data = make_video(2 * 1024 * 1024)
    url, route = serve(data, rate=4 * 1024 * 1024)
    procs = [spawn_download(url, dest) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sorted(o[0].split()[0] for o in outs) == ["downloaded", "skipped"]
    assert dest.read_bytes() == data and route.full_bodies == 1


async def test_a_lock_cancelled_while_being_taken_is_let_go(tmp_path):
    dest = tmp_path / "clip.mp4"
    for yields in range(20):  # cancel before, during and after the file thread's open and flock
        lock = _files.DestinationLock(dest)
        task = asyncio.ensure_future(lock.acquire())
        for _ in range(yields):
            await asyncio.sleep(0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        else:
            lock.release()
        other = _files.DestinationLock(dest)
        assert await asyncio.wait_for(other.acquire(), 5) is False  # free: nothing leaked holding it
        other.release()
    assert os.listdir(tmp_path) == []  # and the empty .part went with the last release


async def test_two_tasks_on_one_destination_make_one_correct_file(serve, dest):
    data = make_video(2 * 1024 * 1024)
    url, route = serve(data, rate=8 * 1024 * 1024)
    a, b = await asyncio.gather(
        vidnb.download(url, dest, progress=False), vidnb.download(url, dest, progress=False)
    )
    assert sorted([a.skipped, b.skipped]) == [False, True]
    assert dest.read_bytes() == data and route.full_bodies == 1
    assert sorted(os.listdir(dest.parent)) == ["clip.mp4"]


@pytest.mark.parametrize("overwrite", [False, True])
async def test_a_kill_between_link_and_unlink_is_finished_by_the_next_run(serve, dest, overwrite):
    # The move onto dest is link(.part, dest) then unlink(.part): a process killed between
    # the two leaves two names for the finished file.
    old, new = make_video(500_000, seed=21), make_video(600_000, seed=22)
    url, route = serve(old)
    await vidnb.download(url, dest, progress=False)
    os.link(dest, _files.part_path(dest))
    finished = os.stat(dest).st_ino
    route.data = new
    result = await vidnb.download(url, dest, overwrite=overwrite, progress=False)
    assert result.skipped != overwrite
    # Never written through the other name: dest is the old file whole, or the new one whole.
    assert dest.read_bytes() == (new if overwrite else old)
    if overwrite:
        # The new file came through a .part of its own and replaced the old one in one rename.
        assert os.stat(dest).st_ino != finished and sorted(os.listdir(dest.parent)) == ["clip.mp4"]
    else:
        # A skip makes no lock and no change: the other name is still just the finished file.
        assert os.path.samefile(_files.part_path(dest), dest)
