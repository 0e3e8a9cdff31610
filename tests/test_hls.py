"""HLS streams: real playlists and segments made by ffmpeg, served with faults, joined into one file.

Every download is checked against the bytes it must contain (the segments in order, decrypted)
and, for the containers, by ffprobe/ffmpeg: the file decodes and lasts as long as the sample.
Most tests look at the stream as served (``remux=False``); the last part checks the default,
one MP4 that plays in browsers.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import hls_streams as hs
import pytest
from helpers import Route, files_written, leftovers

import vidnb
from vidnb import LiveStreamError, UnsupportedEncryptionError, _files, _hls_playlist, _strategy

FAST = vidnb.Retry(total=3, backoff=0.01)
DURATION = 3.0

needs_ffmpeg = pytest.mark.skipif(not hs.have_ffmpeg(), reason=hs.NO_FFMPEG)


@pytest.fixture(scope="session")
def streams(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not hs.have_ffmpeg():
        pytest.skip(hs.NO_FFMPEG)
    return hs.build(tmp_path_factory.mktemp("hls"))


@pytest.fixture
def tree(server, streams):
    """``base, routes = tree()``: all streams on fresh routes of the test server."""
    return lambda: hs.serve_tree(server, streams)


def assert_plays(path: Path, duration: float = DURATION, *, format_name: str) -> dict:
    info = hs.probe(path)
    assert format_name in info["format"]["format_name"].split(",")
    assert float(info["format"]["duration"]) == pytest.approx(duration, abs=0.25)
    assert hs.decode_errors(path) == ""
    return info


# ---------------------------------------------------------------- media playlists


async def test_ts_segments_join_into_one_playable_ts(tree, streams, tmp_path):
    base, routes = tree()
    result = await vidnb.download(base + "ts/index.m3u8", tmp_path, progress=False, remux=False)
    assert result.path == tmp_path / "index.ts" and result.format == "ts"
    assert result.path.read_bytes() == hs.joined(streams / "ts")
    assert result.size == result.path.stat().st_size and result.attempts == 1 and not result.resumed
    assert result.url == base + "ts/index.m3u8"
    info = assert_plays(result.path, format_name="mpegts")
    assert sorted(s["codec_type"] for s in info["streams"]) == ["audio", "video"]
    assert leftovers(tmp_path) == ["index.ts"]


async def test_the_resume_record_is_not_rewritten_per_segment(tree, streams, tmp_path):
    base, _ = tree()
    with files_written() as made:
        result = await vidnb.download(base + "ts/index.m3u8", tmp_path / "clip.ts", progress=False, remux=False)
    assert result.path.read_bytes() == hs.joined(streams / "ts")
    segments = (streams / "ts" / "index.m3u8").read_text().count("#EXTINF")
    saves = sum(p.name == "clip.ts.part.json.tmp" for p in made)
    # Once when the download starts, then at most once a second: each save is a new file.
    assert segments >= 3 and 1 <= saves < 1 + segments


async def test_fmp4_segments_join_into_one_playable_mp4(tree, streams, tmp_path):
    base, routes = tree()
    result = await vidnb.download(base + "fmp4/index.m3u8", tmp_path, progress=False, remux=False)
    assert result.path.name == "index.mp4" and result.format == "mp4"
    assert result.path.read_bytes() == hs.joined(streams / "fmp4", "seg{}.m4s", first="init.mp4")
    assert len(routes["fmp4/init.mp4"].requests) == 1  # the init section is written once
    assert_plays(result.path, format_name="mp4")


async def test_user_file_name_is_kept_whatever_its_extension(tree, tmp_path):
    base, _ = tree()
    dest = tmp_path / "talk.mp4"
    result = await vidnb.download(base + "ts/index.m3u8", dest, progress=False, remux=False)
    assert result.path == dest and result.format == "ts"
    assert leftovers(tmp_path) == ["talk.mp4"]


async def test_byte_range_segments_are_cut_from_one_file(tree, streams, tmp_path):
    base, routes = tree()
    whole = (streams / "br" / "all.ts").read_bytes()
    for name in ("index.m3u8", "implicit.m3u8"):
        dest = tmp_path / name.replace("m3u8", "ts")
        result = await vidnb.download(base + f"br/{name}", dest, progress=False, remux=False)
        assert result.path.read_bytes() == whole
    ranges = [r["Range"] for r in routes["br/all.ts"].requests]
    sizes = [len((streams / "ts" / f"seg{i}.ts").read_bytes()) for i in range(hs.SEGMENTS)]
    expected = [f"bytes={sum(sizes[:i])}-{sum(sizes[: i + 1]) - 1}" for i in range(hs.SEGMENTS)]
    # Both playlists (explicit offsets, then offsets implied by the previous range) ask the same.
    assert sorted(ranges) == sorted(expected * 2)
    assert_plays(result.path, format_name="mpegts")


async def test_byte_ranges_from_a_server_that_ignores_range(tree, streams, tmp_path):
    base, routes = tree()
    routes["br/all.ts"].ranges = False
    result = await vidnb.download(base + "br/index.m3u8", tmp_path, progress=False, remux=False)
    assert result.path.read_bytes() == (streams / "br" / "all.ts").read_bytes()


# ---------------------------------------------------------------- master playlists


@pytest.mark.parametrize(
    "variant, width, folder",
    [("best", 320, "v240"), ("worst", 160, "v120"), (200, 160, "v120"), ("240p", 320, "v240"), ("300k", 160, "v120")],
)
async def test_variant_choice(tree, tmp_path, variant, width, folder):
    base, routes = tree()
    result = await vidnb.download(base + "master.m3u8", tmp_path, variant=variant, progress=False, remux=False)
    assert result.path.name == "master.ts"
    info = assert_plays(result.path, format_name="mpegts")
    assert [s["width"] for s in info["streams"] if s["codec_type"] == "video"] == [width]
    other = "v120" if folder == "v240" else "v240"
    assert len(routes[f"{folder}/seg0.ts"].requests) == 1
    assert not routes[f"{other}/seg0.ts"].requests and not routes[f"{other}/index.m3u8"].requests


async def test_variant_over_every_limit_takes_the_smallest_and_says_so(tree, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="vidnb")
    base, routes = tree()
    await vidnb.download(base + "master.m3u8", tmp_path, variant=90, progress=False, remux=False)
    assert routes["v120/seg0.ts"].requests and not routes["v240/seg0.ts"].requests
    assert "no stream is at most 90 pixels tall" in caplog.text
    assert "160x120" in caplog.text and "320x240" in caplog.text  # the streams on offer are reported


def test_variant_argument_is_checked():
    assert _hls_playlist.parse_variant("2.5M") == _hls_playlist.VariantChoice("max_bandwidth", 2_500_000)
    assert _hls_playlist.parse_variant(720) == _hls_playlist.VariantChoice("max_height", 720)
    for bad in ("huge", 0, -5, True, 1.5):
        with pytest.raises(ValueError, match="variant="):
            _hls_playlist.parse_variant(bad)


async def test_bad_variant_fails_before_any_request(tree, tmp_path):
    base, routes = tree()
    with pytest.raises(ValueError, match="variant="):
        await vidnb.download(base + "master.m3u8", tmp_path, variant="huge", progress=False, remux=False)
    assert not routes["master.m3u8"].requests


async def test_separate_default_audio_is_saved_beside_the_video(tree, streams, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="vidnb")
    base, routes = tree()
    result = await vidnb.download(base + "master_audio.m3u8", tmp_path / "clip.ts", progress=False, remux=False)
    audio = tmp_path / "clip.audio.ts"
    assert leftovers(tmp_path) == ["clip.audio.ts", "clip.ts"]
    assert result.path.read_bytes() == hs.joined(streams / "vonly")
    video_info = assert_plays(result.path, format_name="mpegts")
    assert [s["codec_type"] for s in video_info["streams"]] == ["video"]
    audio_info = hs.probe(audio)
    assert [s["codec_type"] for s in audio_info["streams"]] == ["audio"]
    assert float(audio_info["format"]["duration"]) == pytest.approx(DURATION, abs=0.25)
    assert hs.decode_errors(audio) == ""
    # The default rendition was fetched, not the first one listed; both were reported.
    assert routes["aonly/index.m3u8"].requests
    assert "English (en) [default]" in caplog.text and "Commentary" in caplog.text
    assert "clip.audio.ts" in caplog.text and "remux=True" in caplog.text  # how to get one file
    assert result.audio == audio


# ---------------------------------------------------------------- encryption


async def test_aes128_with_explicit_iv_decrypts_into_a_playable_file(tree, streams, tmp_path):
    base, routes = tree()
    result = await vidnb.download(base + "aes/index.m3u8", tmp_path, progress=False, remux=False)
    assert result.path.read_bytes() == hs.joined(streams / "ts")  # ffmpeg encrypted the same segments
    assert len(routes["aes/key.bin"].requests) == 1  # one key fetch for all segments, even concurrent ones
    assert_plays(result.path, format_name="mpegts")


async def test_aes128_iv_from_media_sequence_and_key_uri_outside_the_folder(tree, streams, tmp_path):
    base, routes = tree()
    result = await vidnb.download(base + "aesseq/index.m3u8", tmp_path, progress=False, remux=False)
    # A wrong IV spoils only the first 16 bytes of each segment: compare every byte.
    assert result.path.read_bytes() == hs.joined(streams / "ts")
    assert len(routes["keys/seq.key"].requests) == 1


async def test_wrong_key_is_an_error_not_a_broken_file(tree, tmp_path):
    base, routes = tree()
    routes["keys/seq.key"].data = bytes(16)
    with pytest.raises(vidnb.NotAVideoError, match="does not decrypt"):
        await vidnb.download(base + "aesseq/index.m3u8", tmp_path / "x.ts", progress=False, remux=False)
    assert not (tmp_path / "x.ts").exists()


async def test_sample_aes_is_refused_by_name_before_fetching_segments(tree, tmp_path):
    base, routes = tree()
    with pytest.raises(UnsupportedEncryptionError, match="SAMPLE-AES") as info:
        await vidnb.download(base + "sample_aes/index.m3u8", tmp_path, progress=False, remux=False)
    assert isinstance(info.value, vidnb.NotAVideoError) and info.value.method == "SAMPLE-AES"
    assert not any(r.requests for name, r in routes.items() if name.startswith("sample_aes/seg"))
    assert leftovers(tmp_path) == []


async def test_unknown_method_and_drm_keyformat_are_refused(serve, tmp_path):
    for tag, named in [
        ('#EXT-X-KEY:METHOD=AES-256-GCM,URI="k"', "AES-256-GCM"),
        ('#EXT-X-KEY:METHOD=AES-128,URI="skd://x",KEYFORMAT="com.apple.streamingkeydelivery"', "com.apple"),
    ]:
        text = f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n{tag}\n#EXTINF:1,\ns.ts\n#EXT-X-ENDLIST\n"
        url, _ = serve(text.encode(), name="p.m3u8", content_type="application/vnd.apple.mpegurl")
        with pytest.raises(UnsupportedEncryptionError, match=named):
            await vidnb.download(url, tmp_path, progress=False, remux=False)


# ---------------------------------------------------------------- faults, retries, resume


async def test_segment_failing_twice_and_a_dropped_connection_are_retried(tree, streams, tmp_path):
    base, routes = tree()
    routes["ts/seg1.ts"].statuses = [503, 503]
    routes["ts/seg2.ts"].drops = {1: 10_000}
    result = await vidnb.download(base + "ts/index.m3u8", tmp_path, retries=FAST, progress=False, remux=False)
    assert result.path.read_bytes() == hs.joined(streams / "ts")
    assert len(routes["ts/seg1.ts"].requests) == 3 and len(routes["ts/seg2.ts"].requests) == 2
    assert len(routes["ts/seg0.ts"].requests) == 1
    assert result.attempts == 4  # 1 + three retried requests
    assert_plays(result.path, format_name="mpegts")


async def test_missing_segment_is_an_http_error_without_retries(tree, tmp_path):
    base, routes = tree()
    routes["ts/seg1.ts"].statuses = [404]
    with pytest.raises(vidnb.HTTPStatusError) as info:
        await vidnb.download(base + "ts/index.m3u8", tmp_path / "x.ts", retries=FAST, progress=False, remux=False)
    assert info.value.status == 404 and info.value.url.endswith("/ts/seg1.ts")
    assert len(routes["ts/seg1.ts"].requests) == 1


async def test_html_instead_of_a_segment_is_not_saved(tree, tmp_path):
    base, routes = tree()
    routes["ts/seg1.ts"].data = b"<!doctype html><html><body>Please log in</body></html>"
    routes["ts/seg1.ts"].content_type = "text/html"
    with pytest.raises(vidnb.NotAVideoError, match="an HTML page"):
        await vidnb.download(base + "ts/index.m3u8", tmp_path / "x.ts", progress=False, remux=False)
    assert not (tmp_path / "x.ts").exists()


async def test_interrupted_download_resumes_at_the_first_missing_segment(tree, streams, tmp_path):
    base, routes = tree()
    dest = tmp_path / "clip.ts"
    seg0 = (streams / "ts" / "seg0.ts").read_bytes()
    routes["ts/seg1.ts"].statuses = [503]
    with pytest.raises(vidnb.HTTPStatusError):
        await vidnb.download(base + "ts/index.m3u8", dest, retries=0, progress=False, remux=False)
    assert not dest.exists()
    assert _files.part_path(dest).read_bytes() == seg0
    state = json.loads(_files.sidecar_path(dest).read_text())
    assert state["url"] == base + "ts/index.m3u8" and state["segments"] == [[0, len(seg0), len(seg0)]]

    result = await vidnb.download(base + "ts/index.m3u8", dest, progress=False, remux=False)
    assert result.resumed and result.path.read_bytes() == hs.joined(streams / "ts")
    # Kept from the first run; fetched once more only to check it is still the same bytes.
    assert len(routes["ts/seg0.ts"].requests) == 2
    assert len(routes["ts/seg1.ts"].requests) == 2
    assert leftovers(tmp_path) == ["clip.ts"]
    assert_plays(dest, format_name="mpegts")


async def test_a_segment_changed_on_the_server_is_never_mixed_with_the_old_ones(tree, streams, tmp_path):
    # The same playlist (so the same fingerprint), but the server's segments were re-encoded.
    base, routes = tree()
    dest = tmp_path / "clip.ts"
    routes["ts/seg1.ts"].statuses = [503]
    with pytest.raises(vidnb.HTTPStatusError):
        await vidnb.download(base + "ts/index.m3u8", dest, retries=0, progress=False, remux=False)
    old_seg0 = _files.part_path(dest).read_bytes()
    new_seg0 = bytes([old_seg0[0]]) + bytes(reversed(old_seg0[1:]))  # other bytes, same size
    routes["ts/seg0.ts"].data = new_seg0
    result = await vidnb.download(base + "ts/index.m3u8", dest, progress=False, remux=False)
    assert not result.resumed and result.path.read_bytes().startswith(new_seg0)


async def test_part_longer_than_its_sidecar_is_cut_back_to_the_last_whole_segment(tree, streams, tmp_path):
    base, routes = tree()
    dest = tmp_path / "clip.ts"
    routes["ts/seg1.ts"].statuses = [503]
    with pytest.raises(vidnb.HTTPStatusError):
        await vidnb.download(base + "ts/index.m3u8", dest, retries=0, progress=False, remux=False)
    with open(_files.part_path(dest), "ab") as f:
        f.write(b"half a segment from a killed process")
    result = await vidnb.download(base + "ts/index.m3u8", dest, progress=False, remux=False)
    assert result.resumed and dest.read_bytes() == hs.joined(streams / "ts")


async def test_changed_playlist_starts_again(tree, streams, tmp_path):
    base, routes = tree()
    dest = tmp_path / "clip.ts"
    routes["ts/seg1.ts"].statuses = [503]
    with pytest.raises(vidnb.HTTPStatusError):
        await vidnb.download(base + "ts/index.m3u8", dest, retries=0, progress=False, remux=False)
    playlist = routes["ts/index.m3u8"]
    playlist.data = playlist.data.replace(b"seg0.ts", b"seg2.ts", 1)
    result = await vidnb.download(base + "ts/index.m3u8", dest, progress=False, remux=False)
    assert not result.resumed and len(routes["ts/seg0.ts"].requests) == 1
    seg2 = (streams / "ts" / "seg2.ts").read_bytes()
    assert dest.read_bytes() == seg2 + hs.joined(streams / "ts")[len((streams / "ts" / "seg0.ts").read_bytes()) :]


async def test_resume_false_fetches_everything_again(tree, tmp_path):
    base, routes = tree()
    dest = tmp_path / "clip.ts"
    routes["ts/seg1.ts"].statuses = [503]
    with pytest.raises(vidnb.HTTPStatusError):
        await vidnb.download(base + "ts/index.m3u8", dest, retries=0, progress=False, remux=False)
    result = await vidnb.download(base + "ts/index.m3u8", dest, resume=False, progress=False, remux=False)
    assert not result.resumed and len(routes["ts/seg0.ts"].requests) == 2


async def test_complete_file_is_skipped_unless_overwrite(tree, tmp_path):
    base, routes = tree()
    first = await vidnb.download(base + "ts/index.m3u8", tmp_path / "c.ts", progress=False, remux=False)
    again = await vidnb.download(base + "ts/index.m3u8", tmp_path / "c.ts", progress=False, remux=False)
    assert again.skipped and again.size == first.size and len(routes["ts/index.m3u8"].requests) == 1
    fresh = await vidnb.download(base + "ts/index.m3u8", tmp_path / "c.ts", overwrite=True, progress=False, remux=False)
    assert not fresh.skipped and len(routes["ts/seg0.ts"].requests) == 2


async def test_sha256_of_the_joined_file(tree, streams, tmp_path):
    import hashlib

    base, _ = tree()
    good = hashlib.sha256(hs.joined(streams / "ts")).hexdigest()
    result = await vidnb.download(base + "ts/index.m3u8", tmp_path / "a.ts", sha256=good, progress=False, remux=False)
    assert result.sha256 == good
    with pytest.raises(vidnb.ChecksumError):
        await vidnb.download(base + "ts/index.m3u8", tmp_path / "b.ts", sha256="0" * 64, progress=False, remux=False)
    assert leftovers(tmp_path) == ["a.ts"]


async def test_max_bytes_stops_the_stream_and_keeps_nothing(tree, tmp_path):
    base, _ = tree()
    with pytest.raises(vidnb.TooLargeError):
        await vidnb.download(base + "ts/index.m3u8", tmp_path / "a.ts", max_bytes=60_000, progress=False, remux=False)
    with pytest.raises(vidnb.TooLargeError):  # byte ranges: refused before any segment
        await vidnb.download(base + "br/index.m3u8", tmp_path / "b.ts", max_bytes=60_000, progress=False, remux=False)
    assert leftovers(tmp_path) == []


async def test_progress_counts_bytes_up_to_the_file_size(tree, tmp_path):
    base, _ = tree()
    events: list[vidnb.ProgressEvent] = []
    result = await vidnb.download(base + "ts/index.m3u8", tmp_path, progress=events.append, remux=False)
    assert events[0].name == "index.ts"
    assert events[-1].state == "done" and events[-1].done == result.size == events[-1].total


@pytest.mark.parametrize("connections", [1, 2, "auto", 8])
async def test_any_number_of_connections_writes_segments_in_order(tree, streams, tmp_path, connections):
    base, routes = tree()
    routes["ts/seg0.ts"].rate = 200_000  # the first segment arrives last
    result = await vidnb.download(
        base + "ts/index.m3u8", tmp_path, connections=connections, progress=False, remux=False
    )
    assert result.path.read_bytes() == hs.joined(streams / "ts")


async def test_cancelled_download_keeps_its_part_and_the_next_call_finishes(tree, streams, tmp_path):
    import asyncio

    base, routes = tree()
    dest = tmp_path / "clip.ts"
    loop = asyncio.get_running_loop()
    routes["ts/seg2.ts"].rate = 20_000  # slow enough to be cut off mid-body
    task = asyncio.ensure_future(
        vidnb.download(base + "ts/index.m3u8", dest, connections=2, progress=False, remux=False)
    )
    # Cancel from the server's thread the moment the last segment is asked for.
    routes["ts/seg2.ts"].on_request = lambda n: loop.call_soon_threadsafe(task.cancel) if n == 1 else None
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not dest.exists() and _files.part_path(dest).exists()
    lock = _files.DestinationLock(dest)
    assert await asyncio.wait_for(lock.acquire(), 5) is False  # released: free at once
    lock.release()
    assert _files.part_path(dest).stat().st_size > 0  # and the bytes kept for the next call
    kept = len(json.loads(_files.sidecar_path(dest).read_text())["segments"])
    routes["ts/seg2.ts"].rate = None
    result = await vidnb.download(base + "ts/index.m3u8", dest, progress=False, remux=False)
    assert dest.read_bytes() == hs.joined(streams / "ts")
    # Whatever the first call had appended was kept; the second fetched only the rest, and
    # the last kept segment once more to check it is the same.
    assert result.resumed == (kept > 0)
    assert [len(routes[f"ts/seg{i}.ts"].requests) for i in range(kept)] == [1] * (kept - 1) + [2] * (kept > 0)


# ---------------------------------------------------------------- sniffed playlists and live streams


async def test_playlist_at_a_url_without_m3u8_is_sniffed(server, tree, streams, tmp_path):
    base, routes = tree()
    stream_route = Route(routes["ts/index.m3u8"].data, content_type="application/vnd.apple.mpegurl")
    url = server.add(base.removeprefix(server.url("")) + "ts/stream", stream_route)
    result = await vidnb.download(url, tmp_path, progress=False, remux=False)
    assert result.path == tmp_path / "stream.ts" and result.format == "ts"
    assert result.path.read_bytes() == hs.joined(streams / "ts")


async def test_live_playlist_is_refused_without_live_duration(server, tree, streams, tmp_path):
    base, routes = tree()
    routes["ts/index.m3u8"].data = hs.live_playlist(streams / "ts", 2)
    with pytest.raises(LiveStreamError, match="live_duration") as info:
        await vidnb.download(base + "ts/index.m3u8", tmp_path, progress=False, remux=False)
    assert isinstance(info.value, vidnb.NotAVideoError)
    assert not routes["ts/seg0.ts"].requests and leftovers(tmp_path) == []


async def test_live_playlist_is_recorded_for_the_duration_asked(tree, streams, tmp_path):
    base, routes = tree()
    playlist = routes["ts/index.m3u8"]
    playlist.data = hs.live_playlist(streams / "ts", 1)

    def grow(n: int) -> None:
        # Each reload shows one more segment, as a live encoder would publish them.
        playlist.data = hs.live_playlist(streams / "ts", min(n, hs.SEGMENTS))

    playlist.on_request = grow
    result = await vidnb.download(base + "ts/index.m3u8", tmp_path, live_duration=2, progress=False, remux=False)
    assert result.path.read_bytes() == hs.joined(streams / "ts")[: result.size]
    assert len(playlist.requests) >= 2 and not routes["ts/seg2.ts"].requests
    assert_plays(result.path, 2.0, format_name="mpegts")


def test_is_hls_url():
    assert _strategy.is_hls_url("https://x/a/b.m3u8?token=1") and not _strategy.is_hls_url("https://x/a.mp4")


# ---------------------------------------------------------------- one playable file (the default)


def top_level_boxes(path: Path) -> list[str]:
    """The names of an MP4's top-level boxes, in order."""
    data, pos, names = path.read_bytes(), 0, []
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        names.append(data[pos + 4 : pos + 8].decode("latin-1"))
        if size == 1:
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
        if size < 8:
            break
        pos += size
    return names


def assert_playable_mp4(path: Path, *, audio: bool = True) -> None:
    info = hs.probe(path)
    kinds = sorted(s["codec_type"] for s in info["streams"])
    assert kinds == (["audio", "video"] if audio else ["video"]), kinds
    assert abs(float(info["format"]["duration"]) - DURATION) < 0.2, info["format"]["duration"]
    boxes = top_level_boxes(path)
    assert boxes.index("moov") < boxes.index("mdat"), boxes  # the index first: plays while it loads
    assert hs.decode_errors(path) == ""


async def test_ts_segments_become_one_mp4_by_default(tree, streams, tmp_path):
    base, _ = tree()
    result = await vidnb.download(base + "ts/index.m3u8", tmp_path, progress=False)
    assert result.path == tmp_path / "index.mp4" and result.format == "mp4" and result.audio is None
    assert result.size == result.path.stat().st_size
    assert_playable_mp4(result.path)
    assert leftovers(tmp_path) == ["index.mp4"]  # the working .ts is gone


async def test_separate_audio_is_muxed_into_the_same_mp4(tree, streams, tmp_path):
    base, _ = tree()
    result = await vidnb.download(base + "master_audio.m3u8", tmp_path, progress=False)
    assert result.path.suffix == ".mp4" and result.audio is None
    assert_playable_mp4(result.path)
    assert leftovers(tmp_path) == [result.path.name]


async def test_an_interrupted_stream_resumes_its_segments_then_joins(tree, streams, tmp_path):
    base, routes = tree()
    dest = tmp_path / "talk.mp4"
    routes["ts/seg1.ts"].statuses = [503]
    with pytest.raises(vidnb.HTTPStatusError):
        await vidnb.download(base + "ts/index.m3u8", dest, retries=0, progress=False)
    assert not dest.exists() and _files.part_path(tmp_path / "talk.hls.ts").exists()
    result = await vidnb.download(base + "ts/index.m3u8", dest, progress=False)
    assert result.path == dest and result.resumed
    assert_playable_mp4(dest)
    assert len(routes["ts/seg0.ts"].requests) == 2  # kept, and fetched once more only to check it
    assert leftovers(tmp_path) == ["talk.mp4"]
    asked = sum(len(r.requests) for r in routes.values())
    again = await vidnb.download(base + "ts/index.m3u8", dest, progress=False)
    assert again.skipped and sum(len(r.requests) for r in routes.values()) == asked


async def test_a_ts_asked_for_by_name_is_the_stream_as_served(tree, streams, tmp_path):
    base, _ = tree()
    result = await vidnb.download(base + "ts/index.m3u8", tmp_path / "raw.ts", progress=False)
    assert result.format == "ts" and result.path.read_bytes() == hs.joined(streams / "ts")
