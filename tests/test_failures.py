"""Bad input, redirects, full disks, memory, the seed-compatible helpers and the demo command."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest
from helpers import leftovers, make_video, run_cli, run_python

import vidnb
from vidnb import _files
from vidnb.demo import sample_path, sample_sha256


@pytest.mark.parametrize(
    "url",
    [
        "",
        "   ",
        "http://",
        "http:///path.mp4",
        "file:///etc/passwd",
        "ftp://example.com/a.mp4",
        "javascript:alert(1)",
        "data:video/mp4;base64,AAAA",
        "example.com/a.mp4",
        "http://exa mple.com/a.mp4",
        "http://example.com/a.mp4\nHost: evil",
        "http://example.com:99999/a.mp4",
    ],
)
async def test_invalid_urls_fail_before_any_network_io(url, tmp_path):
    with pytest.raises(vidnb.InvalidURLError) as info:
        await vidnb.download(url, tmp_path / "x.mp4", progress=False)
    assert isinstance(info.value, ValueError) and str(info.value)
    assert leftovers(tmp_path) == []


async def test_redirects_are_followed_and_the_final_url_reported(serve, video, dest):
    final, _ = serve(video, name="final.mp4")
    first, _ = serve(redirect=final)
    result = await vidnb.download(first, dest, progress=False)
    assert result.url == final and dest.read_bytes() == video


async def test_redirect_to_a_file_url_is_refused(serve, dest):
    url, _ = serve(redirect="file:///etc/passwd")
    with pytest.raises(vidnb.InvalidURLError, match="redirect"):
        await vidnb.download(url, dest, progress=False)
    assert leftovers(dest.parent) == []


async def test_redirect_loop_stops_after_ten(serve, server, dest):
    a, route_a = serve()
    b, route_b = serve(redirect=a)
    route_a.redirect = b
    with pytest.raises(vidnb.HTTPStatusError, match="redirects"):
        await vidnb.download(a, dest, retries=0, progress=False)
    assert 10 <= len(route_a.requests) + len(route_b.requests) <= 11


async def test_bad_options_are_refused_with_a_clear_message(serve, video, dest):
    url, route = serve(video)
    for kwargs, match in [
        ({"retries": -1}, "retries"),
        ({"max_bytes": 0}, "max_bytes"),
        ({"timeout": -5}, "timeout"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"progress": "sometimes"}, "progress"),
        ({"live_duration": -1}, "live_duration"),  # checked even where the URL does not look like HLS
    ]:
        with pytest.raises(ValueError, match=match):
            await vidnb.download(url, dest, **kwargs)
    assert route.requests == [] and not dest.exists()  # refused before any request


async def test_free_space_is_checked_before_downloading(serve, dest):
    data = make_video(200_000)
    url, _ = serve(data, declared_length=10**16)  # the server claims ten petabytes
    with pytest.raises(vidnb.DestinationError) as info:
        await vidnb.download(url, dest, progress=False)
    assert "space" in str(info.value) and info.value.needed == 10**16 and info.value.path == dest
    assert not dest.exists() and not _files.part_path(dest).exists()


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A 1 MiB tmpfs, so a download really meets ENOSPC (needs root, as in CI)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


async def test_full_disk_is_a_destination_error_and_keeps_the_part(serve, tiny_disk):
    data = make_video(3 * 1024 * 1024)
    url, _ = serve(data, chunked=True)  # no length: the space check cannot see it coming
    dest = tiny_disk / "big.mp4"
    with pytest.raises(vidnb.DestinationError) as info:
        await vidnb.download(url, dest, progress=False)
    assert "No space left" in str(info.value) and str(dest) in str(info.value)
    assert isinstance(info.value.__cause__, OSError) and info.value.__cause__.errno == errno.ENOSPC
    assert not dest.exists() and _files.part_path(dest).exists()


async def test_unwritable_folder_is_a_destination_error(serve, video, tmp_path):
    if os.geteuid() == 0:
        target = Path("/proc/vidnb-test/clip.mp4")  # root can write anywhere on disk, not in /proc
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = locked / "sub" / "clip.mp4"
    url, route = serve(video)
    with pytest.raises(vidnb.DestinationError):
        await vidnb.download(url, target, progress=False)
    assert route.requests == []


@pytest.mark.slow
def test_memory_stays_flat_for_a_large_file(serve, tmp_path):
    data = make_video(256 * 1024 * 1024)
    url, _ = serve(data)
    code = (
        "import resource, sys, vidnb\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "vidnb.download_sync(sys.argv[1], sys.argv[2], progress=False)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    out = run_python(code, url, tmp_path / "big.mp4", check=True)
    grown_kib = int(out.stdout.strip())
    # Bounded by the writer's backlog (2 MiB) plus buffers, far below the 256 MiB file.
    assert grown_kib < 80 * 1024, f"peak RSS grew by {grown_kib} KiB"
    assert (tmp_path / "big.mp4").stat().st_size == len(data)
    del data


# ---------------------------------------------------------------- seed-compatible helpers


async def test_save_video_from_url_returns_the_path(serve, video, dest):
    url, _ = serve(video)
    assert await vidnb.save_video_from_url(url, dest) == dest
    assert dest.read_bytes() == video


async def test_save_video_from_url_returns_none_and_logs(serve, dest, caplog):
    url, _ = serve(statuses=[404])
    assert await vidnb.save_video_from_url(url, dest) is None
    assert "404" in caplog.text and not dest.exists()
    assert await vidnb.save_video_from_url("not a url", dest) is None


def test_get_video_data_and_read_video(tmp_path, caplog):
    clip = sample_path("sample.mp4")
    assert vidnb.get_video_data(clip) == clip.read_bytes() == vidnb.read_video(clip)
    assert vidnb.get_video_data(tmp_path / "missing.mp4") is None
    assert "missing.mp4" in caplog.text
    with pytest.raises(vidnb.DestinationError, match="does not exist"):
        vidnb.read_video(tmp_path / "missing.mp4")
    with pytest.raises(vidnb.DestinationError, match="folder"):
        vidnb.read_video(tmp_path)
    with pytest.raises(vidnb.TooLargeError, match="preview"):
        vidnb.read_video(clip, max_bytes=1000)


# ---------------------------------------------------------------- the demo


def test_demo_command_downloads_and_verifies_the_sample(tmp_path):
    out = run_cli("demo", "--dest", str(tmp_path), "-q", timeout=120)
    assert out.returncode == 0, out.stderr
    saved = tmp_path / "sample.mp4"
    assert saved.read_bytes() == sample_path("sample.mp4").read_bytes()
    assert "sha256 verified" in out.stdout and "vidnb.preview" in out.stdout


def test_samples_are_real_and_small():
    for name, fmt in [("sample.mp4", "mp4"), ("sample.webm", "webm")]:
        data = sample_path(name).read_bytes()
        assert 10_000 < len(data) < 1_000_000
        assert vidnb._sniff.sniff(data[:1024]).name == fmt
        assert len(sample_sha256(name)) == 64
    # faststart: the index (moov) comes before the media data (mdat)
    mp4 = sample_path("sample.mp4").read_bytes()
    assert mp4.index(b"moov") < mp4.index(b"mdat")


def test_sample_server_routes(tmp_path):
    from vidnb.demo import sample_server

    srv = sample_server()
    assert vidnb.download_sync(srv.url("/sample.webm"), tmp_path, progress=False).format == "webm"
    with pytest.raises(vidnb.HTTPStatusError):
        vidnb.download_sync(srv.url("/status/404"), tmp_path / "x.mp4", progress=False)
    with pytest.raises(vidnb.NotAVideoError):
        vidnb.download_sync(srv.url("/page.html"), tmp_path / "y.mp4", progress=False)
    slow = vidnb.download_sync(srv.url("/slow/sample.mp4?rate=2000000"), tmp_path / "z.mp4", progress=False)
    assert slow.size == sample_path("sample.mp4").stat().st_size


def test_errors_survive_pickling():
    import pickle

    errors = [
        vidnb.InvalidURLError("bad", "http://x"),
        vidnb.HTTPStatusError(503, "http://x/a.mp4", "Service Unavailable", retry_after=2.0),
        vidnb.NetworkError("down"),
        vidnb.IncompleteDownloadError("short", received=5, expected=10),
        vidnb.ChecksumError("bad hash", expected="a", actual="b"),
        vidnb.NotAVideoError("html"),
        vidnb.TooLargeError("big", limit=1, size=2),
        vidnb.DestinationError("full", "/tmp/x", needed=7),
    ]
    for exc in errors:
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is type(exc) and str(back) == str(exc) and vars(back) == vars(exc)
    assert pickle.loads(pickle.dumps(errors[1])).status == 503
    assert pickle.loads(pickle.dumps(errors[1])).retryable
