"""Media inputs for the bench's HLS, remux and page rows, made with Debian's ffmpeg.

One unit clip (20 s of 720p30 H.264 at about 8 Mbit/s with AAC, a keyframe every 2 s) is
encoded once and looped (``-stream_loop``, no re-encoding) to the stream's length, so a
120 s stream costs about as much to make as 20 s. From it:

- ``hls/ts/index.m3u8``: MPEG-TS segments of 2 s (video and audio in each);
- ``hls/fmp4/index.m3u8``: the same as fragmented MP4 (``EXT-X-MAP`` init + ``.m4s``);
- ``hls/master/master.m3u8``: a master playlist with two video-only variants (720p, and a
  360p encoded from the same pattern) and the audio as an ``EXT-X-MEDIA`` rendition;
- ``hls/ts/paced.m3u8``: the first segments of the TS stream, for the throttled rows;
- ``remux.ts`` (the TS segments joined, which is what an HLS download saves as ``.ts``) and
  ``mux-video.ts`` + ``mux-audio.ts`` (the master's 720p and audio renditions joined), the
  inputs of the remux and mux rows;
- ``pages/video.html`` (a ``<video src>`` of the unit clip) and ``pages/dash.html`` (a
  ``<source>`` naming a DASH manifest with the video and the audio in adaptation sets of
  their own, made with ffmpeg's dash muxer).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

UNIT_S = 20  # seconds of the encoded clip; streams are whole multiples of it
SEGMENT_S = 2


def ffmpeg(*args: str | Path) -> None:
    res = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *map(str, args)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"ffmpeg {' '.join(map(str, args))[:200]} failed: {res.stderr.strip()[-400:]}")


@dataclass
class HlsStream:
    """A stream on disk: its playlist (relative to the data dir) and what a download fetches."""

    playlist: str
    segments: list[int]  # bytes of each media segment of the chosen video, in playlist order
    size: int  # bytes a download fetches (video and audio segments, init sections), playlists aside
    duration: float
    audio: bool  # the joined result has an audio track


@dataclass
class MediaInputs:
    seconds: int
    ts: HlsStream
    fmp4: HlsStream
    master: HlsStream
    paced: HlsStream
    remux_src: Path
    mux_video: Path
    mux_audio: Path
    clip: Path  # the unit clip, the page's <video src>
    page_video: str
    page_dash: str
    dash_size: int


def _media_uris(playlist: Path) -> list[Path]:
    lines = playlist.read_text().splitlines()
    out = [playlist.parent / ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    for ln in lines:  # the init section of fMP4 segments
        if ln.startswith("#EXT-X-MAP:") and 'URI="' in ln:
            out.insert(0, playlist.parent / ln.split('URI="', 1)[1].split('"', 1)[0])
    return out


def _stream(data: Path, playlist: Path, duration: float, audio: bool, extra: Sequence[Path] = ()) -> HlsStream:
    files = _media_uris(playlist)
    segments = [f.stat().st_size for f in files if f.suffix in (".ts", ".m4s")]
    size = sum(f.stat().st_size for f in files) + sum(f.stat().st_size for f in extra)
    return HlsStream(str(playlist.relative_to(data)), segments, size, duration, audio)


def _hls(src: Path, out: Path, *, fmp4: bool = False) -> Path:
    out.mkdir(parents=True)
    kind = ["-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4"] if fmp4 else []
    seg = "seg%03d.m4s" if fmp4 else "seg%03d.ts"
    ffmpeg("-i", src, "-c", "copy", "-f", "hls", "-hls_time", str(SEGMENT_S), "-hls_playlist_type", "vod", *kind,
           "-hls_segment_filename", out / seg, out / "index.m3u8")
    return out / "index.m3u8"


def _join(files: Sequence[Path], dest: Path) -> Path:
    with open(dest, "wb") as w:
        for f in files:
            with open(f, "rb") as r:
                shutil.copyfileobj(r, w, 1 << 20)
    return dest


def make_media(data: Path, seconds: int, paced_segments: int) -> MediaInputs:
    """Write every input under ``data/media`` (about 10 s of ffmpeg for 120 s on 2 cores)."""
    if seconds % UNIT_S:
        raise ValueError(f"seconds must be a multiple of {UNIT_S}")
    root = data / "media"
    root.mkdir(parents=True)
    loops = str(seconds // UNIT_S - 1)
    unit, unit360 = root / "clip.mp4", root / "clip360.mp4"
    gop = ["-g", str(30 * SEGMENT_S), "-keyint_min", str(30 * SEGMENT_S), "-sc_threshold", "0"]
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=30:duration={UNIT_S}",
           "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={UNIT_S}",
           "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "8M", "-maxrate", "8M", "-bufsize", "4M", *gop,
           "-c:a", "aac", "-b:a", "128k", "-shortest", "-movflags", "+faststart", unit)  # fmt: skip
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=30:duration={UNIT_S}",
           "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "1M", *gop, unit360)  # fmt: skip
    src, src360 = root / "src.mp4", root / "src360.mp4"
    ffmpeg("-stream_loop", loops, "-i", unit, "-c", "copy", src)
    ffmpeg("-stream_loop", loops, "-i", unit360, "-c", "copy", src360)

    hls = root / "hls"
    ts = _hls(src, hls / "ts")
    fmp4 = _hls(src, hls / "fmp4", fmp4=True)
    master_dir = hls / "master"
    master_dir.mkdir()
    ffmpeg("-i", src, "-i", src360, "-map", "0:v", "-map", "1:v", "-map", "0:a", "-c", "copy", "-f", "hls",
           "-hls_time", str(SEGMENT_S), "-hls_playlist_type", "vod",
           "-var_stream_map", "v:0,name:720p v:1,name:360p a:0,name:audio",
           "-hls_segment_filename", master_dir / "%v_%03d.ts", master_dir / "%v.m3u8")  # fmt: skip
    # Written by hand: ffmpeg's own master lists the audio as a variant too and has no CODECS.
    def bandwidth(name: str) -> int:
        files = _media_uris(master_dir / f"{name}.m3u8")
        return int(8 * sum(f.stat().st_size for f in files) / seconds)

    audio_bw = bandwidth("audio")
    (master_dir / "master.m3u8").write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n"
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="English",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,'
        'URI="audio.m3u8"\n'
        f"#EXT-X-STREAM-INF:BANDWIDTH={bandwidth('720p') + audio_bw},RESOLUTION=1280x720,FRAME-RATE=30.000,"
        'CODECS="avc1.42c01f,mp4a.40.2",AUDIO="aud"\n720p.m3u8\n'
        f"#EXT-X-STREAM-INF:BANDWIDTH={bandwidth('360p') + audio_bw},RESOLUTION=640x360,FRAME-RATE=30.000,"
        'CODECS="avc1.42c01e,mp4a.40.2",AUDIO="aud"\n360p.m3u8\n'
    )
    # The first segments of the TS stream, for the throttled rows (same folder: same segment URIs).
    lines = ts.read_text().splitlines()
    head = [ln for ln in lines if ln.startswith("#") and not ln.startswith(("#EXTINF", "#EXT-X-ENDLIST"))]
    body: list[str] = []
    for i, ln in enumerate(lines):
        if ln.startswith("#EXTINF") and len(body) < 2 * paced_segments:
            body += [ln, lines[i + 1]]
    paced = ts.with_name("paced.m3u8")
    paced.write_text("\n".join(head + body + ["#EXT-X-ENDLIST", ""]))

    remux_src = _join([f for f in _media_uris(ts)], root / "remux.ts")
    mux_video = _join(_media_uris(master_dir / "720p.m3u8"), root / "mux-video.ts")
    mux_audio = _join(_media_uris(master_dir / "audio.m3u8"), root / "mux-audio.ts")

    dash = root / "dash"
    dash.mkdir()
    ffmpeg("-i", unit, "-map", "0:v", "-map", "0:a", "-c", "copy", "-f", "dash", "-seg_duration", str(SEGMENT_S),
           "-use_template", "1", "-use_timeline", "1", "-adaptation_sets", "id=0,streams=v id=1,streams=a",
           dash / "manifest.mpd")  # fmt: skip
    pages = root / "pages"
    pages.mkdir()
    (pages / "video.html").write_text(
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>A clip</title></head>\n'
        '<body><h1>A clip</h1><video src="/media/clip.mp4" controls width="640"></video></body></html>\n')
    (pages / "dash.html").write_text(
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>A DASH clip</title></head>\n'
        '<body><h1>A DASH clip</h1><video controls width="640">'
        '<source src="/media/dash/manifest.mpd" type="application/dash+xml"></video></body></html>\n')
    for d, _dirs, files in os.walk(root):  # nginx's workers may run as nobody
        os.chmod(d, 0o755)
        for f in files:
            os.chmod(os.path.join(d, f), 0o644)
    master = _stream(data, master_dir / "master.m3u8", seconds, True)
    master.segments = [f.stat().st_size for f in _media_uris(master_dir / "720p.m3u8")]
    master.size = sum(master.segments) + mux_audio.stat().st_size
    dash_size = sum(f.stat().st_size for f in dash.iterdir() if f.suffix != ".mpd")
    return MediaInputs(
        seconds=seconds,
        ts=_stream(data, ts, seconds, True),
        fmp4=_stream(data, fmp4, seconds, True),
        master=master,
        paced=_stream(data, paced, paced_segments * SEGMENT_S, True),
        remux_src=remux_src,
        mux_video=mux_video,
        mux_audio=mux_audio,
        clip=unit,
        page_video=str((pages / "video.html").relative_to(data)),
        page_dash=str((pages / "dash.html").relative_to(data)),
        dash_size=dash_size,
    )


def probe_media(path: Path) -> tuple[float, set[str]]:
    """(duration in seconds, codec types) of a media file, by ffprobe."""
    res = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_type", "-of",
                          "json", str(path)], capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        raise ValueError(res.stderr.strip().splitlines()[-1] if res.stderr.strip() else "ffprobe failed")
    info = json.loads(res.stdout)
    return float(info.get("format", {}).get("duration") or 0.0), {s["codec_type"] for s in info.get("streams", [])}


def schedule_limit(segments: Sequence[int], at_once: int, rate: float) -> float:
    """Seconds to fetch *segments* in order, *at_once* at a time, each at *rate* bytes/s.

    Each segment goes to the first connection that is free (as HLS downloaders do): for
    many equal segments this is ``sum / (at_once x rate)``; for a few it counts the last,
    partly filled wave in full.
    """
    free = [0.0] * max(1, at_once)
    for size in segments:
        i = free.index(min(free))
        free[i] += size / rate
    return max(free)
