"""Short real videos in the containers people have on disk, made with Debian's ffmpeg.

Each clip has its own picture (ffmpeg's built-in lavfi sources), so posters differ in a
gallery, and covers one way a file reaches a browser: played as it is (MP4, WebM), its
streams copied into MP4 (MPEG-TS, MKV), or re-encoded (MPEG-4 Part 2 + MP3 in AVI, FLV1).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

#: Why tests that make clips skip where ffmpeg is missing.
NO_FFMPEG = "ffmpeg not installed (Debian package ffmpeg)"
SIZE = (320, 180)
SECONDS = 2

_H264 = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "24")
_AAC = ("-c:a", "aac", "-b:a", "64k")
#: name: (lavfi video source, audio tone in Hz or None, encoder arguments)
CLIPS: dict[str, tuple[str, int | None, tuple[str, ...]]] = {
    "bars.mp4": ("smptehdbars", 440, (*_H264, *_AAC, "-movflags", "+faststart")),
    "cells.webm": ("cellauto=rule=110", 660, ("-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8",
                                              "-b:v", "300k", "-c:a", "libopus")),  # fmt: skip
    "mandelbrot.avi": ("mandelbrot", 550, ("-c:v", "mpeg4", "-q:v", "5", "-c:a", "libmp3lame", "-b:a", "64k")),
    "pattern.ts": ("testsrc2", 330, (*_H264, *_AAC, "-f", "mpegts")),
    "life.mkv": ("life=mold=10:ratio=0.1:death_color=#C83232:life_color=#00ff00", None, _H264),
    "gradient.flv": ("gradients=speed=0.05", 770, ("-c:v", "flv1", "-q:v", "4", "-c:a", "libmp3lame", "-b:a", "64k")),
}


def have_ffmpeg() -> bool:
    return shutil.which("ffmpeg") is not None


def make_clip(dest: Path, name: str | None = None, seconds: float = SECONDS) -> Path:
    """Write the clip ``name`` of :data:`CLIPS` (default: ``dest``'s own name) to ``dest``."""
    source, tone, codecs = CLIPS[name or dest.name]
    w, h = SIZE
    sep = ":" if "=" in source else "="
    args = ["-f", "lavfi", "-i", f"{source}{sep}size={w}x{h}:rate=24"]
    if tone is not None:
        args += ["-f", "lavfi", "-i", f"sine=frequency={tone}:sample_rate=48000"]
    # -t after the inputs: the length of the output (the sources themselves never end).
    args += ["-t", str(seconds), *codecs]
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args, str(dest)], check=True)
    return dest


def make_clips(folder: Path, names: list[str] | None = None) -> dict[str, Path]:
    """Every clip of :data:`CLIPS` (or those named) in ``folder``."""
    return {name: make_clip(folder / name) for name in (names or list(CLIPS))}
