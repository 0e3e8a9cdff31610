"""The engine against a real server: the happy path, the destination rules, naming, sniffing, limits."""

from __future__ import annotations

import asyncio
import logging

import pytest
from helpers import files_written, leftovers, make_video, resume_from, run_python, sha

import vidnb
from vidnb import _files


async def test_downloads_a_video_and_describes_it(serve, video, dest):
    url, route = serve(video)
    result = await vidnb.download(url, dest, progress=False)
    assert result.path == dest
    assert dest.read_bytes() == video
    assert (result.size, result.format, result.url) == (len(video), "mp4", url)
    assert result.content_type == "video/mp4"
    assert (result.attempts, result.resumed, result.skipped) == (1, False, False)
    assert result.elapsed > 0
    assert leftovers(dest.parent) == ["clip.mp4"]
    # Bytes on disk must be the bytes on the wire: never let the server compress them.
    assert route.requests[0]["Accept-Encoding"] == "identity"
    assert "clip.mp4" in repr(result) and "mp4" in repr(result)


async def test_part_file_holds_the_bytes_until_complete(serve, dest):
    data = make_video(2 * 1024 * 1024)
    url, _ = serve(data, rate=8 * 1024 * 1024)
    seen = []

    def watch(ev: vidnb.ProgressEvent) -> None:
        if ev.state == "running" and 0 < ev.done < len(data):
            seen.append((dest.exists(), _files.part_path(dest).exists()))

    await vidnb.download(url, dest, progress=watch)
    assert seen, "no progress event arrived mid-download"
    assert all(s == (False, True) for s in seen)
    assert dest.read_bytes() == data
    assert not _files.part_path(dest).exists() and not _files.sidecar_path(dest).exists()


async def test_a_quick_download_makes_no_file_but_its_part(serve, video, dest):
    # Creating files is the slowest step of a batch of small files on some filesystems, so a
    # download that ends at once writes neither a lock file nor a resume record.
    url, _ = serve(video)
    dest.parent.mkdir()
    with files_written() as made:
        await vidnb.download(url, dest, progress=False)
    assert sorted({p.name for p in made if p.parent == dest.parent}) == ["clip.mp4", "clip.mp4.part"]
    assert dest.read_bytes() == video and leftovers(dest.parent) == ["clip.mp4"]


async def test_existing_file_is_skipped_without_any_request(serve, video, dest):
    url, route = serve(video)
    await vidnb.download(url, dest, progress=False)
    again = await vidnb.download(url, dest, progress=False)
    assert again.skipped and again.attempts == 0 and again.size == len(video) and again.format == "mp4"
    assert len(route.requests) == 1


async def test_a_skipped_file_still_reaches_the_progress_reporter(serve, video, dest):
    url, route = serve(video)
    await vidnb.download(url, dest, progress=False)
    events: list[vidnb.ProgressEvent] = []
    await vidnb.download(url, dest, progress=events.append)
    # A bar drawn before the call knew (start(), the panel) must close, and says what is there.
    assert [(e.state, e.done, e.total, e.name) for e in events[-1:]] == [("done", len(video), len(video), "clip.mp4")]
    task = vidnb.start(url, dest, progress=False)
    assert (await task).skipped and task.progress is not None and task.progress.state == "done"
    assert len(route.requests) == 1


async def test_existing_file_is_not_clobbered_by_default(serve, video, dest):
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"precious")
    url, route = serve(video)
    result = await vidnb.download(url, dest, progress=False)
    assert result.skipped and dest.read_bytes() == b"precious" and route.requests == []


async def test_overwrite_keeps_the_old_file_until_the_new_one_is_complete(serve, video, dest):
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"old version")
    url, _ = serve(video, drops={1: 100_000})
    with pytest.raises(vidnb.IncompleteDownloadError):
        await vidnb.download(url, dest, overwrite=True, retries=0, progress=False)
    assert dest.read_bytes() == b"old version"
    result = await vidnb.download(url, dest, overwrite=True, progress=False)
    assert dest.read_bytes() == video and result.resumed


async def test_existing_file_with_wrong_hash_is_reported_not_replaced(serve, video, dest):
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"something else")
    url, route = serve(video)
    with pytest.raises(vidnb.ChecksumError, match="overwrite=True"):
        await vidnb.download(url, dest, sha256=sha(video), progress=False)
    assert dest.read_bytes() == b"something else" and route.requests == []


async def test_sha256_is_checked_and_a_mismatch_keeps_nothing(serve, video, dest):
    url, _ = serve(video)
    result = await vidnb.download(url, dest, sha256=sha(video).upper(), progress=False)
    assert result.sha256 == sha(video)
    other = dest.with_name("other.mp4")
    with pytest.raises(vidnb.ChecksumError) as info:
        await vidnb.download(url, other, sha256="0" * 64, progress=False)
    assert info.value.actual == sha(video) and info.value.expected == "0" * 64
    assert leftovers(dest.parent) == ["clip.mp4"]


@pytest.mark.parametrize("bad", ["abc", "0" * 63, "g" * 64])
async def test_malformed_sha256_is_refused_before_any_request(serve, video, dest, bad):
    url, route = serve(video)
    with pytest.raises(ValueError, match="sha256"):
        await vidnb.download(url, dest, sha256=bad, progress=False)
    assert route.requests == []


async def test_missing_parent_folders_are_created(serve, video, tmp_path):
    url, _ = serve(video)
    target = tmp_path / "a" / "b" / "c.mp4"
    assert (await vidnb.download(url, target, progress=False)).path == target
    assert target.read_bytes() == video


# ---------------------------------------------------------------- names from the server


async def test_directory_destination_takes_the_name_from_content_disposition(serve, video, tmp_path):
    url, _ = serve(
        video,
        name="download",
        content_disposition="attachment; filename=\"plain.mp4\"; filename*=UTF-8''na%C3%AFve%20clip.mp4",
    )
    result = await vidnb.download(url, tmp_path, progress=False)
    assert result.path == tmp_path / "naïve clip.mp4" and result.path.read_bytes() == video


@pytest.mark.parametrize(
    "disposition",
    [
        'attachment; filename="../../evil.mp4"',
        "attachment; filename*=UTF-8''..%2F..%2Fevil.mp4",
        'attachment; filename="/etc/evil.mp4"',
        'attachment; filename="..\\\\..\\\\evil.mp4"',
    ],
)
async def test_server_names_cannot_escape_the_folder(serve, video, tmp_path, disposition):
    folder = tmp_path / "inside"
    folder.mkdir()
    url, _ = serve(video, content_disposition=disposition)
    result = await vidnb.download(url, folder, progress=False)
    assert result.path.parent == folder and result.path.name == "evil.mp4"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["evil.mp4", "inside"]


async def test_directory_destination_uses_the_url_path(serve, video, tmp_path):
    url, _ = serve(video, name="my%20video.mp4")
    result = await vidnb.download(url, tmp_path, progress=False)
    assert result.path.name == "my video.mp4"


async def test_name_without_extension_gets_the_sniffed_one(serve, tmp_path):
    data = make_video(100_000, kind="webm")
    url, _ = serve(data, name="stream", content_type="application/octet-stream")
    result = await vidnb.download(url, tmp_path, progress=False)
    assert result.path.name == "stream.webm" and result.format == "webm"


async def test_directory_destination_skips_a_complete_file(serve, video, tmp_path):
    url, route = serve(video)
    first = await vidnb.download(url, tmp_path, progress=False)
    second = await vidnb.download(url, tmp_path, progress=False)
    assert second.skipped and second.path == first.path
    # The name had to be learned from the server, but no body was read.
    assert len(route.requests) == 2


async def test_dest_none_means_the_current_folder(serve, video, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url, _ = serve(video, name="here.mp4")
    result = await vidnb.download(url, progress=False)
    assert result.path == tmp_path / "here.mp4"


# ---------------------------------------------------------------- sniffing and limits


async def test_html_page_is_not_a_video_and_nothing_is_saved(serve, dest):
    url, _ = serve(b"<!DOCTYPE html><html><body>Please log in</body></html>", content_type="text/html")
    with pytest.raises(vidnb.NotAVideoError, match="HTML"):
        await vidnb.download(url, dest, progress=False)
    assert leftovers(dest.parent) == []


async def test_require_video_false_saves_anything(serve, dest):
    body = b"<html>not a video</html>"
    url, _ = serve(body, content_type="text/html")
    result = await vidnb.download(url, dest, require_video=False, progress=False)
    assert result.format is None and dest.read_bytes() == body


async def test_hls_playlist_is_named_in_the_error(serve, dest):
    url, _ = serve(b"#EXTM3U\n#EXT-X-VERSION:3\n", content_type="application/vnd.apple.mpegurl")
    with pytest.raises(vidnb.NotAVideoError, match="HLS"):
        await vidnb.download(url, dest, progress=False)


async def test_max_bytes_refuses_early_on_content_length(serve, video, dest):
    url, _ = serve(video)
    with pytest.raises(vidnb.TooLargeError) as info:
        await vidnb.download(url, dest, max_bytes=1000, progress=False)
    assert info.value.size == len(video) and info.value.limit == 1000
    assert leftovers(dest.parent) == []


async def test_max_bytes_stops_a_body_without_length(serve, video, dest):
    url, _ = serve(video, chunked=True)
    with pytest.raises(vidnb.TooLargeError, match="max_bytes"):
        await vidnb.download(url, dest, max_bytes=500_000, progress=False)
    assert leftovers(dest.parent) == []


async def test_body_without_length_is_saved_whole(serve, video, dest):
    url, _ = serve(video, chunked=True)
    result = await vidnb.download(url, dest, progress=False)
    assert result.size == len(video) and dest.read_bytes() == video


@pytest.mark.parametrize("chunk_size", [4096, 1 << 20])
async def test_chunk_size_is_honoured_and_bytes_are_the_same(serve, video, dest, chunk_size):
    url, _ = serve(video)
    await vidnb.download(url, dest, chunk_size=chunk_size, progress=False)
    assert dest.read_bytes() == video


# ---------------------------------------------------------------- progress and logging


async def test_progress_callable_sees_bytes_and_the_outcome(serve, video, dest):
    url, _ = serve(video)
    events: list[vidnb.ProgressEvent] = []
    await vidnb.download(url, dest, progress=events.append)
    assert events[0].done == 0 and events[0].total == len(video)
    assert events[-1].state == "done" and events[-1].done == len(video) and events[-1].fraction == 1.0
    assert all(a.done <= b.done for a, b in zip(events, events[1:], strict=False))


async def test_progress_reports_failure_with_its_message(serve, dest):
    url, _ = serve(statuses=[404])
    events: list[vidnb.ProgressEvent] = []
    with pytest.raises(vidnb.HTTPStatusError):
        await vidnb.download(url, dest, progress=events.append)
    assert events[-1].state == "failed" and "404" in (events[-1].error or "")


async def test_progress_is_throttled(serve, dest):
    data = make_video(4 * 1024 * 1024)
    url, _ = serve(data, rate=8 * 1024 * 1024)  # about half a second
    events: list[vidnb.ProgressEvent] = []
    await vidnb.download(url, dest, progress=events.append)
    running = [e for e in events if e.state == "running"]
    span = running[-1].elapsed - running[0].elapsed
    # At most 10 updates a second (plus the first and the last), whatever the chunk count.
    assert len(running) <= 10 * span + 3
    assert len(running) >= 2


async def test_a_broken_progress_callback_does_not_break_the_download(serve, video, dest, caplog):
    url, _ = serve(video)

    def boom(ev):
        raise RuntimeError("callback bug")

    result = await vidnb.download(url, dest, progress=boom)
    assert dest.read_bytes() == video and result.size == len(video)
    assert "progress callback" in caplog.text


async def test_logs_start_finish_and_redacts_credentials(serve, video, dest, caplog):
    url, _ = serve(video)
    secret = url.replace("http://", "http://user:hunter2@") + "?token=s3cr3t"
    caplog.set_level(logging.INFO, logger="vidnb")
    await vidnb.download(secret, dest, progress=False)
    text = caplog.text
    assert "downloading" in text and "saved" in text and "1 attempt" in text
    assert "hunter2" not in text and "s3cr3t" not in text


async def test_progress_true_draws_a_tqdm_bar_on_stderr(serve, video, dest, capsys):
    url, _ = serve(video)
    await vidnb.download(url, dest, progress=True)
    err = capsys.readouterr().err
    assert "clip.mp4" in err and "100%" in err


def test_download_sync_works_in_a_plain_script(serve, video, dest):
    url, _ = serve(video)
    result = vidnb.download_sync(url, dest, progress=False)
    assert result.path.read_bytes() == video


async def test_a_given_session_is_used_and_left_open(serve, video, dest):
    import aiohttp

    url, route = serve(video)
    async with aiohttp.ClientSession(headers={"User-Agent": "my-agent"}) as session:
        await vidnb.download(url, dest, session=session, progress=False)
        assert not session.closed
    assert route.requests[0]["User-Agent"] == "my-agent"


async def test_extra_headers_are_sent(serve, video, dest):
    url, route = serve(video)
    await vidnb.download(url, dest, headers={"Authorization": "Bearer x"}, progress=False)
    assert route.requests[0]["Authorization"] == "Bearer x"


async def test_cancel_keeps_the_part_and_a_new_call_resumes(serve, dest):
    data = make_video(3 * 1024 * 1024)
    url, route = serve(data, rate=2 * 1024 * 1024)
    halfway = asyncio.Event()

    def watch(ev):
        if ev.done > 256 * 1024:
            halfway.set()

    task = asyncio.create_task(vidnb.download(url, dest, progress=watch))
    await asyncio.wait_for(halfway.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    part = _files.part_path(dest)
    assert not dest.exists() and part.stat().st_size > 256 * 1024
    kept = part.stat().st_size
    route.rate = None
    result = await vidnb.download(url, dest, progress=False)
    assert result.resumed and dest.read_bytes() == data
    assert route.requests[-1]["Range"] == resume_from(kept)


def test_import_is_light():
    code = "import sys, vidnb; print([m for m in ('tqdm', 'ipywidgets', 'IPython', 'aiohttp.web') if m in sys.modules])"
    out = run_python(code, check=True).stdout
    assert out.strip() == "[]"


def test_public_names_are_exported():
    for name in set(vidnb.__all__) - set(vidnb._LAZY):
        assert getattr(vidnb, name) is not None
    assert issubclass(vidnb.InvalidURLError, ValueError)
    assert issubclass(vidnb.DestinationError, OSError)


async def test_proxy_from_the_environment_is_used(serve, video, dest, server, monkeypatch):
    # The test server doubles as the proxy: a URL on a host that cannot resolve can only
    # arrive through it.
    url, route = serve(video, name="via-proxy.mp4")
    path = url.split(str(server.port), 1)[1]
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{server.port}")
    result = await vidnb.download(f"http://video.invalid{path}", dest, progress=False)
    assert dest.read_bytes() == video and result.size == len(video)
    assert route.requests[0]["Host"] == "video.invalid"
