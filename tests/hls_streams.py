"""Real HLS streams for the tests, made with ffmpeg from the bundled sample, and ways to serve them.

:func:`build` writes, under one folder (each stream in a subfolder, so the relative URIs
in the playlists must be resolved the way a player resolves them):

``ts/``          MPEG-TS segments (``index.m3u8``, ``seg0.ts`` ..), 1 s each
``fmp4/``        fMP4 segments with an ``EXT-X-MAP`` init section
``aes/``         AES-128 encrypted by ffmpeg (explicit IV)
``aesseq/``      AES-128 encrypted here with the IV taken from the media sequence number
                 (no IV attribute, MEDIA-SEQUENCE 5), key URI ``../keys/seq.key``
``sample_aes/``  a playlist claiming SAMPLE-AES (never decryptable by vidnb)
``br/``          one file with ``EXT-X-BYTERANGE`` segments (explicit offsets, and implicit ones)
``v240/``, ``v120/`` two renditions at different sizes and bitrates; ``master.m3u8`` lists them
``vonly/``, ``aonly/`` video without audio and the audio alone; ``master_audio.m3u8`` ties them
                 with an ``EXT-X-MEDIA`` audio group

The sample is first re-encoded with a keyframe every second so every segment is 1 s long
(the bundled clip has one every 2 s).
"""

from __future__ import annotations

import itertools
import json
import mimetypes
import shutil
import subprocess
from pathlib import Path

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from helpers import LocalServer, Route

from vidnb.demo import sample_path

#: Why tests that need ffmpeg skip where it is missing.
NO_FFMPEG = "ffprobe not installed (Debian package ffmpeg)"
SEGMENTS = 3
AES_KEY = bytes(range(16))
SEQ_KEY = bytes(range(100, 116))
SEQ_FIRST = 5

_ids = itertools.count()


def have_ffmpeg() -> bool:
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def ffmpeg(*args: str | Path) -> None:
    """Run ffmpeg quietly (the media of the HLS and page tests is made with it)."""
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *map(str, args)], check=True)


def _hls(src: Path, out: Path, *extra: str, segment: str = "seg%d.ts") -> None:
    out.mkdir(parents=True, exist_ok=True)
    ffmpeg(
        "-i", src, "-c", "copy", *extra,
        "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod",
        "-hls_segment_filename", out / segment, out / "index.m3u8",
    )  # fmt: skip


def build(root: Path) -> Path:
    """Make every test stream under ``root`` (a few seconds of ffmpeg); return ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    mezz = root / "mezzanine.mp4"
    keyframes = ("-c:v", "libx264", "-g", "24", "-keyint_min", "24", "-sc_threshold", "0", "-c:a", "aac")
    ffmpeg("-i", sample_path("sample.mp4"), *keyframes, mezz)
    small = root / "small.mp4"
    ffmpeg("-i", sample_path("sample.mp4"), "-vf", "scale=160:120", "-b:v", "80k", *keyframes, "-b:a", "32k", small)

    _hls(mezz, root / "ts")
    _hls(mezz, root / "fmp4", "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4", segment="seg%d.m4s")
    (root / "aes").mkdir()
    (root / "aes" / "key.bin").write_bytes(AES_KEY)
    (root / "aes.keyinfo").write_text(f"key.bin\n{root / 'aes' / 'key.bin'}\n{'ab' * 16}\n")
    _hls(mezz, root / "aes", "-hls_key_info_file", str(root / "aes.keyinfo"))
    _hls(mezz, root / "br", "-hls_flags", "single_file", segment="all.ts")
    _implicit_byteranges(root / "br")
    _encrypt_with_sequence_iv(root)
    sample_aes = root / "sample_aes"
    sample_aes.mkdir()
    text = (root / "aes" / "index.m3u8").read_text()
    (sample_aes / "index.m3u8").write_text(text.replace("METHOD=AES-128", "METHOD=SAMPLE-AES"))
    for seg in (root / "aes").glob("seg*.ts"):
        shutil.copy(seg, sample_aes / seg.name)

    _hls(mezz, root / "v240")
    _hls(small, root / "v120")
    # Smallest first: the choice must come from BANDWIDTH/RESOLUTION, not from the order.
    (root / "master.m3u8").write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n"
        '#EXT-X-STREAM-INF:BANDWIDTH=200000,RESOLUTION=160x120,CODECS="avc1.4d400c,mp4a.40.2"\n'
        "v120/index.m3u8\n"
        '#EXT-X-STREAM-INF:BANDWIDTH=600000,RESOLUTION=320x240,CODECS="avc1.4d401e,mp4a.40.2"\n'
        "v240/index.m3u8\n"
    )
    _hls(mezz, root / "vonly", "-an")
    _hls(mezz, root / "aonly", "-vn")
    (root / "master_audio.m3u8").write_text(
        "#EXTM3U\n#EXT-X-VERSION:4\n"
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="Commentary",LANGUAGE="en",DEFAULT=NO,AUTOSELECT=NO,'
        'URI="missing/commentary.m3u8"\n'
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="English",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,'
        'URI="aonly/index.m3u8"\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=500000,RESOLUTION=320x240,CODECS="avc1.4d401e,mp4a.40.2",AUDIO="aud"\n'
        "vonly/index.m3u8\n"
    )
    mezz.unlink()
    small.unlink()
    (root / "aes.keyinfo").unlink()
    return root


def _implicit_byteranges(folder: Path) -> None:
    """Same ranges, but the later ones without ``@offset`` (they follow the previous range)."""
    lines = []
    first = True
    for line in (folder / "index.m3u8").read_text().splitlines():
        if line.startswith("#EXT-X-BYTERANGE:") and not first:
            line = line.split("@")[0]
        if line.startswith("#EXT-X-BYTERANGE:"):
            first = False
        lines.append(line)
    (folder / "implicit.m3u8").write_text("\n".join(lines) + "\n")


def _encrypt_with_sequence_iv(root: Path) -> None:
    out = root / "aesseq"
    out.mkdir()
    (root / "keys").mkdir()
    (root / "keys" / "seq.key").write_bytes(SEQ_KEY)
    lines = [
        "#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:1", f"#EXT-X-MEDIA-SEQUENCE:{SEQ_FIRST}",
        "#EXT-X-PLAYLIST-TYPE:VOD", '#EXT-X-KEY:METHOD=AES-128,URI="../keys/seq.key"',
    ]  # fmt: skip
    for i in range(SEGMENTS):
        plain = (root / "ts" / f"seg{i}.ts").read_bytes()
        padder = padding.PKCS7(128).padder()
        enc = Cipher(algorithms.AES(SEQ_KEY), modes.CBC((SEQ_FIRST + i).to_bytes(16, "big"))).encryptor()
        data = enc.update(padder.update(plain) + padder.finalize()) + enc.finalize()
        (out / f"seg{i}.ts").write_bytes(data)
        lines += ["#EXTINF:1.000000,", f"seg{i}.ts"]
    lines.append("#EXT-X-ENDLIST")
    (out / "index.m3u8").write_text("\n".join(lines) + "\n")


def joined(folder: Path, pattern: str = "seg{}.ts", first: str | None = None) -> bytes:
    """What a correct download of a stream folder must contain: its segments, in order."""
    head = (folder / first).read_bytes() if first else b""
    return head + b"".join((folder / pattern.format(i)).read_bytes() for i in range(SEGMENTS))


# --------------------------------------------------------------------------- serving


def serve_tree(server: LocalServer, root: Path) -> tuple[str, dict[str, Route]]:
    """Serve every file under ``root`` at the same relative path under a fresh prefix.

    Returns the prefix URL (ending in ``/``) and the routes by relative path, so a test can
    inject faults (``routes["ts/seg1.ts"].statuses = [503, 503]``) and count requests.
    """
    prefix = f"/hls{next(_ids)}/"
    routes = {}
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = f.relative_to(root).as_posix()
        routes[rel] = Route(f.read_bytes(), content_type=_content_type(rel))
        server.add(prefix + rel, routes[rel])
    return server.url(prefix), routes


def _content_type(name: str) -> str:
    if name.endswith(".m3u8"):
        return "application/vnd.apple.mpegurl"
    if name.endswith(".m4s"):
        return "video/iso.segment"
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


# --------------------------------------------------------------------------- checking


def probe(path: Path) -> dict:
    """ffprobe's view of a file: ``format`` (duration, format_name) and ``streams``."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def decode_errors(path: Path) -> str:
    """Decode every frame of every stream; return what ffmpeg complained about ("" when clean)."""
    done = subprocess.run(
        ["ffmpeg", "-hide_banner", "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
    )
    return done.stderr.strip() if done.returncode == 0 else f"exit {done.returncode}: {done.stderr.strip()}"


def live_playlist(folder: Path, shown: int, *, first_sequence: int = 0, end: bool = False) -> bytes:
    """A live playlist of the first ``shown`` segments of a TS stream folder (no ENDLIST unless ``end``)."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:1", f"#EXT-X-MEDIA-SEQUENCE:{first_sequence}"]
    for i in range(shown):
        lines += ["#EXTINF:1.000000,", f"seg{i}.ts"]
    if end:
        lines.append("#EXT-X-ENDLIST")
    return ("\n".join(lines) + "\n").encode()
