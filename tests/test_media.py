"""The media core on PyAV: probe, thumbnail, remux and make_playable, on files made by Debian's ffmpeg.

Every video is 4 s at 320x180, 25 fps, with a keyframe each second, and its brightness
steps once a second (luma 20, 70, 120, 170), so a thumbnail says which second it shows.
ffprobe gives the figures probe is checked against, and ``ffmpeg -v error -i F -f null -``
must print nothing for every file vidnb writes.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

import vidnb
from vidnb import DestinationError, DownloadResult, NotAVideoError, VideoInfo
from vidnb._videoinfo import browser_playable, container_name

av = pytest.importorskip("av", reason="PyAV (pip install av) is needed for the media tests")

NO_FFMPEG = "ffmpeg/ffprobe not installed (Debian package ffmpeg)"
SECONDS = 4
FPS = 25
# The frames of second k have luma 20 + 50 k (limited range), a step the codecs keep.
PICTURE = (
    f"color=c=black:s=320x180:r={FPS}:d={SECONDS},format=yuv420p,"
    "geq=lum='20+50*floor(T)':cb=128:cr=128"
)
SOUND = f"sine=frequency=440:sample_rate=44100:duration={SECONDS}"
H264_AAC = ("-c:v", "libx264", "-g", str(FPS), "-c:a", "aac")
VP9_OPUS = ("-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-g", str(FPS), "-c:a", "libopus")

#: name -> (ffmpeg's output arguments, the container probe must report)
FILES: dict[str, tuple[tuple[str, ...], str]] = {
    "clip.ts": (H264_AAC + ("-f", "mpegts"), "ts"),
    "clip.mkv": (VP9_OPUS, "mkv"),
    "h264.mkv": (H264_AAC, "mkv"),
    "clip.avi": (("-c:v", "mpeg4", "-g", str(FPS), "-c:a", "libmp3lame"), "avi"),
    "clip.flv": (H264_AAC, "flv"),
    "clip.wmv": (("-c:v", "wmv2", "-g", str(FPS), "-c:a", "wmav2"), "wmv"),
    "clip.mov": (H264_AAC, "mov"),
    "offset.mp4": (H264_AAC + ("-output_ts_offset", "3"), "mp4"),
    "clip.mp4": (H264_AAC + ("-movflags", "+faststart"), "mp4"),
    "clip.webm": (VP9_OPUS, "webm"),
}  # fmt: skip


def have_ffmpeg() -> bool:
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def ffmpeg(*args: str | Path) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *map(str, args)], check=True, timeout=120)


def ffprobe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return json.loads(out.stdout)


def span(path: Path) -> float:
    """Seconds from the first packet's timestamp to the end of the last, per ffprobe (no container's own figure)."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "packet=pts_time,duration_time", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    packets = [[float(x) for x in line.split(",")[:2]] for line in out.stdout.split() if "N/A" not in line]
    return max(p + d for p, d in packets) - min(p for p, _ in packets)


def decode_errors(path: Path) -> str:
    """What ffmpeg says when it decodes the whole file (nothing, for a clean file)."""
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    return out.stderr


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not have_ffmpeg():
        pytest.skip(NO_FFMPEG)
    root = tmp_path_factory.mktemp("media")
    sources = ("-f", "lavfi", "-i", PICTURE, "-f", "lavfi", "-i", SOUND)
    for name, (args, _) in FILES.items():
        ffmpeg(*sources, *args, root / name)
    # An HLS-style pair: the video alone in MPEG-TS, its audio apart in three forms.
    ffmpeg("-f", "lavfi", "-i", PICTURE, *H264_AAC[:4], "-f", "mpegts", root / "video_only.ts")
    ffmpeg("-f", "lavfi", "-i", SOUND, "-c:a", "aac", root / "audio.m4a")
    ffmpeg("-f", "lavfi", "-i", SOUND, "-c:a", "aac", "-f", "adts", root / "audio.aac")
    ffmpeg("-f", "lavfi", "-i", SOUND, "-c:a", "aac", "-f", "mpegts", root / "audio.ts")
    (root / "page.html").write_text("<!DOCTYPE html><html><body>Please log in</body></html>")
    (root / "noise.bin").write_bytes(bytes((i * 7919 + 13) % 251 for i in range(4096)))
    return root


def fresh_copy(media: Path, name: str, tmp_path: Path) -> Path:
    """A private copy, so make_playable's results beside it are this test's own."""
    dest = tmp_path / name
    shutil.copy2(media / name, dest)
    return dest


def streams(info: dict, kind: str) -> list[dict]:
    return [s for s in info["streams"] if s["codec_type"] == kind]


def luma(jpeg: bytes) -> tuple[int, int, float]:
    """Width, height and mean luma (0-255, full range) of a JPEG, decoded by PyAV."""
    with av.open(io.BytesIO(jpeg)) as c:
        frame = next(c.decode(video=0))
    plane = frame.planes[0]
    data = bytes(plane)
    rows = [data[r * plane.line_size : r * plane.line_size + frame.width] for r in range(frame.height)]
    return frame.width, frame.height, sum(map(sum, rows)) / (frame.width * frame.height)


def expected_luma(second: int) -> float:
    """The JPEG's full-range value for the frames of ``second``."""
    return (20 + 50 * second - 16) * 255 / 219


def top_level_boxes(path: Path) -> list[str]:
    boxes, data, pos = [], path.read_bytes(), 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
        boxes.append(kind.decode("latin-1"))
        if size < 8:
            break
        pos += size
    return boxes


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


# --------------------------------------------------------------------------- pure rules


@pytest.mark.parametrize(
    ("container", "video", "audio", "plays"),
    [
        ("mp4", "h264", "aac", True),
        ("mp4", "h264", None, True),
        ("mp4", "av1", "opus", True),
        ("mp4", "vp9", "mp3", True),
        ("mp4", "hevc", "aac", False),
        ("mp4", "h264", "ac3", False),
        ("mp4", "mpeg4", "aac", False),
        ("webm", "vp9", "opus", True),
        ("webm", "vp8", "vorbis", True),
        ("webm", "h264", "aac", False),
        ("mkv", "vp9", "opus", False),
        ("mov", "h264", "aac", False),
        ("ts", "h264", "aac", False),
        ("ogg", "theora", "vorbis", False),
        ("mp4", None, "aac", False),
    ],
)
def test_browser_playable(container, video, audio, plays):
    assert browser_playable(container, video, audio) is plays


@pytest.mark.parametrize(
    ("demuxer", "brand", "doctype", "name"),
    [
        ("mov,mp4,m4a,3gp,3g2,mj2", "isom", None, "mp4"),
        ("mov,mp4,m4a,3gp,3g2,mj2", "mp42", None, "mp4"),
        ("mov,mp4,m4a,3gp,3g2,mj2", "qt  ", None, "mov"),
        ("mov,mp4,m4a,3gp,3g2,mj2", "3gp5", None, "3gp"),
        ("matroska,webm", None, "webm", "webm"),
        ("matroska,webm", None, "matroska", "mkv"),
        ("mpegts", None, None, "ts"),
        ("asf", None, None, "wmv"),
        ("flv", None, None, "flv"),
        ("avi", None, None, "avi"),
    ],
)
def test_container_names(demuxer, brand, doctype, name):
    assert container_name(demuxer, brand, doctype) == name


def test_video_info_repr_is_one_readable_line():
    info = VideoInfo(Path("v/clip.mp4"), "mp4", 10.0, 1280, 720, 30.0, "h264", "aac", 10**6, 1_258_291, 0.0, True)
    assert repr(info) == "<VideoInfo clip.mp4: mp4 h264/aac 1280x720 30 fps 10.0 s 1.2 MiB, plays in browsers>"
    silent = VideoInfo(Path("a.ts"), "ts", None, 640, 360, 29.97, "h264", None, None, 10, 1.4, False)
    assert repr(silent) == "<VideoInfo a.ts: ts h264, no audio 640x360 29.97 fps 10 B, browsers cannot play it>"


# --------------------------------------------------------------------------- probe


@pytest.mark.parametrize("name", list(FILES))
def test_probe_agrees_with_ffprobe(media, name):
    path = media / name
    info = vidnb.probe(path)
    truth = ffprobe(path)
    v, a = streams(truth, "video")[0], streams(truth, "audio")[0]

    assert isinstance(info, VideoInfo) and info.path == path
    assert info.container == FILES[name][1]
    assert (info.width, info.height) == (v["width"], v["height"]) == (320, 180)
    assert (info.video_codec, info.audio_codec) == (v["codec_name"], a["codec_name"])
    # The longest stream, where ffprobe gives stream durations: Debian's FFmpeg 5.1 counts an
    # MP4's start offset into the format's duration (7 s for offset.mp4), PyAV's 8.1 does not.
    ends = [float(s["duration"]) for s in truth["streams"] if "duration" in s]
    assert info.duration == pytest.approx(max(ends or [float(truth["format"]["duration"])]), abs=max(0.1, 1 / FPS))
    assert info.duration == pytest.approx(SECONDS, abs=0.15)  # never the end timestamp of an offset file
    # Within 10 ms: FFmpeg versions differ on Opus's pre-skip (-7 ms in ffprobe 5.1, 0 in PyAV's 8.1).
    assert info.start_time == pytest.approx(float(truth["format"].get("start_time", 0)), abs=0.01)
    assert info.fps == pytest.approx(FPS)
    assert info.size == path.stat().st_size
    # Bytes over seconds (ffprobe 5.1 divides an offset MP4's bytes by its 7 s).
    assert info.bit_rate == pytest.approx(info.size * 8 / info.duration, rel=0.05)
    assert info.playable is (name in ("clip.mp4", "offset.mp4", "clip.webm"))


def test_probe_reads_the_start_offsets(media):
    assert vidnb.probe(media / "offset.mp4").start_time == pytest.approx(3.0, abs=0.05)
    assert vidnb.probe(media / "clip.ts").start_time > 1.0  # ffmpeg's MPEG-TS starts at 1.4 s


def test_probe_is_quick(media):
    vidnb.probe(media / "clip.ts")  # the import of PyAV is not part of it
    started = time.perf_counter()
    for name in FILES:
        vidnb.probe(media / name)
    assert (time.perf_counter() - started) / len(FILES) < 0.1


def test_a_missing_file_is_a_destination_error(tmp_path):
    with pytest.raises(DestinationError, match="does not exist") as caught:
        vidnb.probe(tmp_path / "gone.mp4")
    assert str(tmp_path / "gone.mp4") in str(caught.value)
    assert caught.value.errno == 2  # ENOENT


@pytest.mark.parametrize(
    ("name", "says"),
    [("page.html", "an HTML page"), ("noise.bin", "unrecognised data"), ("audio.m4a", "audio only (aac in mp4)")],
)
def test_what_is_not_a_video_says_what_it_is(media, name, says):
    with pytest.raises(NotAVideoError, match=r"is not a video: it is") as caught:
        vidnb.probe(media / name)
    assert says in str(caught.value) and name in str(caught.value)


def test_download_result_info_is_lazy_and_cached(media):
    result = DownloadResult(media / "clip.ts", "https://example.com/clip.ts", 1, "video/mp2t", "ts", 0.1)
    assert "info" not in result.__dict__  # not computed by making the result
    info = result.info
    assert info is not None and info.container == "ts" and not info.playable
    assert result.info is info
    page = DownloadResult(media / "page.html", "https://example.com/", 1, "text/html", None, 0.1)
    assert page.info is None


# --------------------------------------------------------------------------- thumbnail


@pytest.mark.parametrize("name", ["clip.ts", "offset.mp4", "clip.mp4", "clip.mkv", "clip.avi", "clip.flv", "clip.wmv"])
def test_thumbnail_shows_the_frame_asked_for(media, name):
    for at, second in ((0.5, 0), (1.5, 1), (2.5, 2), (3.9, 3)):
        jpeg = vidnb.thumbnail(media / name, at=at)
        assert jpeg[:2] == b"\xff\xd8"
        width, height, y = luma(jpeg)
        assert (width, height) == (320, 180)
        assert y == pytest.approx(expected_luma(second), abs=8), (name, at)


def test_thumbnail_defaults_to_a_tenth_of_the_way_in(media):
    _, _, y = luma(vidnb.thumbnail(media / "clip.ts"))  # 0.4 s of 4 s
    assert y == pytest.approx(expected_luma(0), abs=8)


@pytest.mark.parametrize(("width", "size"), [(160, (160, 90)), (321, (320, 180)), (100, (100, 56)), (640, (640, 360))])
def test_thumbnail_keeps_the_aspect_ratio_with_even_sizes(media, width, size):
    assert luma(vidnb.thumbnail(media / "clip.mkv", at=1.0, width=width))[:2] == size


def test_thumbnail_takes_a_download_result(media):
    result = DownloadResult(media / "clip.flv", "https://example.com/clip.flv", 1, None, "flv", 0.1)
    assert luma(vidnb.thumbnail(result, at=2.2))[2] == pytest.approx(expected_luma(2), abs=8)


def test_thumbnail_refuses_times_outside_the_video(media):
    with pytest.raises(ValueError, match="past the end"):
        vidnb.thumbnail(media / "clip.mp4", at=60)
    with pytest.raises(ValueError, match="0 or more"):
        vidnb.thumbnail(media / "clip.mp4", at=-1)
    with pytest.raises(NotAVideoError):
        vidnb.thumbnail(media / "page.html")


# --------------------------------------------------------------------------- remux and make_playable


def assert_clean_copy(source: Path, out: Path, container: str) -> None:
    before, after = ffprobe(source), ffprobe(out)
    assert decode_errors(out) == ""
    assert after["format"]["format_name"].split(",")[0] == {"mp4": "mov", "webm": "matroska"}[container]
    for kind in ("video", "audio"):
        assert [s["codec_name"] for s in streams(after, kind)] == [s["codec_name"] for s in streams(before, kind)]
    assert span(out) == pytest.approx(span(source), abs=1 / FPS + 0.002)
    assert float(after["format"].get("start_time", 0)) == pytest.approx(0, abs=0.05)
    if container == "mp4":
        boxes = top_level_boxes(out)
        assert boxes.index("moov") < boxes.index("mdat"), boxes  # +faststart: the index first
    info = vidnb.probe(out)
    assert info.playable and info.duration == pytest.approx(SECONDS, abs=0.1)


@pytest.mark.parametrize(
    ("name", "container"),
    [("clip.ts", "mp4"), ("clip.flv", "mp4"), ("h264.mkv", "mp4"), ("clip.mov", "mp4"), ("clip.mkv", "webm")],
)
def test_make_playable_copies_browser_codecs_into_a_browser_container(media, tmp_path, name, container):
    source = fresh_copy(media, name, tmp_path)
    started = time.perf_counter()
    out = vidnb.make_playable(source, progress=False)
    assert time.perf_counter() - started < 2  # copied, not re-encoded
    assert out == tmp_path / f"{source.stem}.playable.{container}"
    assert_clean_copy(source, out, container)
    assert not (tmp_path / (out.name + ".part")).exists()
    for second, at in ((0, 0.5), (2, 2.5)):
        assert luma(vidnb.thumbnail(out, at=at))[2] == pytest.approx(expected_luma(second), abs=8)


@pytest.mark.parametrize("name", ["clip.avi", "clip.wmv"])
def test_make_playable_re_encodes_other_codecs_to_vp9_opus(media, tmp_path, name):
    source = fresh_copy(media, name, tmp_path)
    events = []
    out = vidnb.make_playable(source, progress=events.append)
    assert out == tmp_path / f"{source.stem}.playable.webm"
    assert decode_errors(out) == ""
    truth = ffprobe(out)
    assert truth["format"]["format_name"] == "matroska,webm"
    assert [s["codec_name"] for s in truth["streams"]] == ["vp9", "opus"]
    assert float(truth["format"]["duration"]) == pytest.approx(SECONDS, abs=0.15)
    info = vidnb.probe(out)
    assert info.playable and (info.width, info.height) == (320, 180)
    assert luma(vidnb.thumbnail(out, at=2.5))[2] == pytest.approx(expected_luma(2), abs=10)
    # Progress counts milliseconds of media, up to the whole.
    assert events[-1].state == "done" and events[-1].total == pytest.approx(SECONDS * 1000, abs=150)
    assert events[-1].done >= SECONDS * 1000 - 100
    assert [e.done for e in events] == sorted(e.done for e in events)


def test_a_playable_file_is_returned_as_it_is(media, tmp_path):
    source = fresh_copy(media, "clip.mp4", tmp_path)
    assert vidnb.make_playable(source) == source
    assert vidnb.make_playable(fresh_copy(media, "offset.mp4", tmp_path)) == tmp_path / "offset.mp4"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "offset.mp4"]


def test_a_second_call_finds_the_result(media, tmp_path):
    source = fresh_copy(media, "clip.avi", tmp_path)
    out = vidnb.make_playable(source, progress=False)
    mtime = out.stat().st_mtime_ns
    started = time.perf_counter()
    assert vidnb.make_playable(source, progress=False) == out
    assert time.perf_counter() - started < 0.5
    assert out.stat().st_mtime_ns == mtime
    # A newer source is converted again.
    os.utime(source, ns=(mtime + 10**9, mtime + 10**9))
    assert vidnb.make_playable(source, progress=False) == out
    assert out.stat().st_mtime_ns != mtime


def test_transcode_false_refuses_to_re_encode(media, tmp_path):
    source = fresh_copy(media, "clip.avi", tmp_path)
    with pytest.raises(ValueError, match=r"mpeg4/mp3 in avi.*transcode=True"):
        vidnb.make_playable(source, transcode=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.avi"]
    # Copying is still allowed.
    assert vidnb.make_playable(fresh_copy(media, "clip.ts", tmp_path), transcode=False).suffix == ".mp4"


def test_transcode_true_re_encodes_what_could_be_copied(media, tmp_path):
    source = fresh_copy(media, "clip.ts", tmp_path)
    out = vidnb.make_playable(source, transcode=True, progress=False)
    assert out.name == "clip.playable.webm"
    assert [s["codec_name"] for s in ffprobe(out)["streams"]] == ["vp9", "opus"]
    assert decode_errors(out) == ""


def test_dest_chooses_the_container(media, tmp_path):
    source = fresh_copy(media, "clip.mkv", tmp_path)
    out = vidnb.make_playable(source, tmp_path / "as.mp4", progress=False)  # VP9/Opus in MP4
    assert [s["codec_name"] for s in ffprobe(out)["streams"]] == ["vp9", "opus"] and vidnb.probe(out).playable
    folder = tmp_path / "web"
    folder.mkdir()
    assert vidnb.make_playable(source, folder, progress=False) == folder / "clip.playable.webm"
    with pytest.raises(ValueError, match=r"\.mp4 or \.webm"):
        vidnb.make_playable(source, tmp_path / "x.mkv")
    with pytest.raises(ValueError, match="transcode="):
        vidnb.make_playable(source, transcode="yes")  # type: ignore[arg-type]


def test_make_playable_takes_a_download_result(media, tmp_path):
    result = DownloadResult(fresh_copy(media, "clip.flv", tmp_path), "https://example.com/clip.flv", 1, None, "flv", 0)
    assert vidnb.make_playable(result, progress=False) == tmp_path / "clip.playable.mp4"


@pytest.mark.parametrize("audio", ["audio.m4a", "audio.aac", "audio.ts"])
def test_remux_joins_separate_audio(media, tmp_path, audio):
    from vidnb._playable import remux

    out = remux(media / "video_only.ts", tmp_path / "joined.mp4", audio=media / audio)
    assert out == tmp_path / "joined.mp4"
    truth = ffprobe(out)
    assert [s["codec_name"] for s in truth["streams"]] == ["h264", "aac"]
    assert decode_errors(out) == ""
    assert float(truth["format"]["duration"]) == pytest.approx(SECONDS, abs=0.1)
    assert float(truth["format"].get("start_time", 0)) == pytest.approx(0, abs=0.05)
    boxes = top_level_boxes(out)
    assert boxes.index("moov") < boxes.index("mdat")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["joined.mp4"]


def test_remux_carries_on_over_a_discontinuity(media, tmp_path):
    from vidnb._playable import remux

    # Two TS files end to end: the second's timestamps start again at 1.4 s (as after an HLS
    # EXT-X-DISCONTINUITY); the MP4 must play eight seconds straight through.
    joined = tmp_path / "twice.ts"
    joined.write_bytes((media / "clip.ts").read_bytes() * 2)
    out = remux(joined, tmp_path / "twice.mp4")
    assert decode_errors(out) == ""
    assert vidnb.probe(out).duration == pytest.approx(2 * SECONDS, abs=0.1)
    for at, second in ((1.5, 1), (SECONDS + 0.5, 0), (SECONDS + 2.5, 2)):
        assert luma(vidnb.thumbnail(out, at=at))[2] == pytest.approx(expected_luma(second), abs=8), at


def test_remux_copies_into_mp4_and_replaces_dest(media, tmp_path):
    from vidnb._playable import remux

    dest = tmp_path / "out.mp4"
    dest.write_bytes(b"old")
    assert remux(media / "clip.ts", dest) == dest
    assert_clean_copy(media / "clip.ts", dest, "mp4")


@pytest.mark.parametrize(("name", "error"), [("page.html", NotAVideoError), ("clip.wmv", ValueError)])
def test_a_failed_remux_leaves_nothing(media, tmp_path, name, error):
    from vidnb._playable import remux

    with pytest.raises(error):
        remux(media / name, tmp_path / "out.mp4")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- without PyAV


def test_import_vidnb_does_not_import_av():
    out = run_python("import sys, vidnb; vidnb.VideoInfo; print('av' in sys.modules)")
    assert out.stdout.strip() == "False", out.stderr


def test_without_av_every_entry_point_says_how_to_install_it(media):
    code = f"""
import sys
sys.modules["av"] = None  # as if PyAV were not installed
import vidnb
from vidnb._playable import remux
path = {str(media / "clip.ts")!r}
for call in (lambda: vidnb.probe(path), lambda: vidnb.thumbnail(path), lambda: vidnb.make_playable(path),
             lambda: remux(path, path + ".mp4")):
    try:
        call()
    except vidnb.MissingDependencyError as e:
        assert isinstance(e, ImportError) and "\\n" not in str(e)
        print(e)
result = vidnb.DownloadResult(vidnb._probe.Path(path), "u", 1, None, None, 0)
print(result.info)
"""
    out = run_python(code)
    lines = out.stdout.splitlines()
    assert len(lines) == 5, (out.stdout, out.stderr)
    assert all("pip install av" in line for line in lines[:4])
    assert lines[4] == "None"
    assert not (media / "clip.ts.mp4").exists() and not (media / "clip.ts.mp4.part").exists()
