"""A loopback web site of pages that show videos, for the page-URL tests (yt-dlp finds, vidnb fetches).

:func:`build` makes the media once (ffmpeg, a few seconds): one H.264/AAC MP4, one VP9/Opus
WebM, a poster frame, an HLS master with two renditions and a DASH presentation with two
video representations and one audio representation (ffmpeg's dash muxer, 1 s segments).
:func:`serve_site` puts the media and the pages below on fresh routes of the fault server
(:class:`helpers.LocalServer`), so each test can inject faults into any file and count what
reached the server:

=====================  ==================================================================
page                   what yt-dlp's generic extractor finds there
=====================  ==================================================================
``video-src.html``     ``<video src poster>``: one direct MP4, the poster as thumbnail
``sources.html``       ``<video>`` with two ``<source>``: a WebM and an MP4
``og.html``            ``og:video`` (and ``og:title``, ``og:image``)
``jsonld.html``        JSON-LD ``VideoObject`` with an absolute ``contentUrl``
``hls.html``           ``<source type=application/x-mpegURL>``: the HLS master (360p, 180p)
``dash.html``          ``<source type=application/dash+xml>``: the MPD (360p, 180p, audio)
``two.html``           two ``<video>`` tags: a playlist of two entries
``none.html``          an article without any video
``passwd.html``        a ``<video>`` whose media is ``file:///etc/passwd``
``ftp.html``           a ``<video>`` whose media is an ``ftp://`` URL (on 127.0.0.1)
=====================  ==================================================================

``media/dash/manifest.mpd`` is also a URL of its own (a direct ``.mpd``).

>>> site = serve_site(server, media)                       # doctest: +SKIP
>>> site.page("dash.html")                                 # the page's URL
>>> site.routes["media/dash/seg-0-2.m4s"].statuses = [500] * 10
>>> site.requests("media/dash/seg-0-1.m4s")                # how often it was asked for
"""

from __future__ import annotations

import itertools
import json
import mimetypes
import subprocess
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from helpers import LocalServer, Route
from hls_streams import ffmpeg, have_ffmpeg  # noqa: F401 - have_ffmpeg is used through this module

#: Why tests that need the media skip where ffmpeg is missing.
NO_FFMPEG = "ffmpeg/ffprobe not installed (Debian package ffmpeg)"
#: Seconds in every clip, and how far a saved file's duration may be from it.
SECONDS = 3.0
TOLERANCE = 0.3

#: Page titles (what the saved file is named after) and the names vidnb must give the files.
TITLES = {
    "video-src.html": "Test card: bars and tone",
    "sources.html": "Cellular automaton",
    "og.html": "Open Graph clip",
    "jsonld.html": "Structured data clip",
    "hls.html": "HLS talk",
    "dash.html": "DASH lecture",
    "two.html": "Two clips",
    "none.html": "An article without video",
    "passwd.html": "Sneaky page",
    "ftp.html": "Old school page",
}
#: Heights of the two renditions of the HLS master and the DASH manifest.
HIGH, LOW = (640, 360), (320, 180)
#: DASH segments per representation (1 s each; ffmpeg's audio has one short extra segment).
DASH_VIDEO_SEGMENTS = 3

_ids = itertools.count()


def _sources(size: tuple[int, int], tone: int, pattern: str = "testsrc2") -> list[str]:
    w, h = size
    sep = ":" if "=" in pattern else "="
    return ["-f", "lavfi", "-i", f"{pattern}{sep}size={w}x{h}:rate=24",
            "-f", "lavfi", "-i", f"sine=frequency={tone}:sample_rate=48000", "-t", str(SECONDS)]  # fmt: skip


_H264 = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
         "-g", "24", "-keyint_min", "24", "-sc_threshold", "0")  # fmt: skip
_AAC = ("-c:a", "aac", "-b:a", "64k")


def build(root: Path) -> Path:
    """Make every media file under ``root / "media"``; return ``root``."""
    media = root / "media"
    media.mkdir(parents=True, exist_ok=True)
    # A direct MP4 big enough (about 650 KB) to be cut in the middle and resumed.
    ffmpeg(*_sources(HIGH, 440), *_H264, *_AAC, "-movflags", "+faststart", media / "clip.mp4")
    ffmpeg(*_sources(LOW, 660, "cellauto=rule=110"),
            "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k",
            "-c:a", "libopus", media / "clip.webm")  # fmt: skip
    ffmpeg(*_sources(LOW, 550, "smptehdbars"), *_H264, *_AAC, "-movflags", "+faststart", media / "second.mp4")
    ffmpeg("-i", media / "clip.mp4", "-frames:v", "1", "-update", "1", media / "poster.jpg")

    # HLS: two renditions of the same picture, 1 s segments, and a master listing both
    # (the smaller first: a choice must come from RESOLUTION, not from the order).
    hls = media / "hls"
    for size in (HIGH, LOW):
        out = hls / f"{size[1]}p"
        out.mkdir(parents=True)
        ffmpeg(*_sources(size, 440), *_H264, *_AAC, "-b:v", "600k" if size == HIGH else "150k",
                "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod",
                "-hls_segment_filename", out / "seg%d.ts", out / "index.m3u8")  # fmt: skip
    (hls / "master.m3u8").write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n"
        '#EXT-X-STREAM-INF:BANDWIDTH=300000,RESOLUTION=320x180,CODECS="avc1.42c00d,mp4a.40.2"\n'
        "180p/index.m3u8\n"
        '#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,CODECS="avc1.42c01e,mp4a.40.2"\n'
        "360p/index.m3u8\n"
    )

    # DASH: video (two representations) and audio in separate adaptation sets, as sites serve them.
    dash = media / "dash"
    dash.mkdir()
    ffmpeg(*_sources(HIGH, 440), "-map", "0:v", "-map", "0:v", "-map", "1:a", *_H264,
            "-s:v:0", f"{HIGH[0]}x{HIGH[1]}", "-b:v:0", "600k", "-s:v:1", f"{LOW[0]}x{LOW[1]}", "-b:v:1", "150k",
            *_AAC, "-f", "dash", "-seg_duration", "1", "-use_template", "1", "-use_timeline", "1",
            "-adaptation_sets", "id=0,streams=v id=1,streams=a",
            "-init_seg_name", "init-$RepresentationID$.m4s", "-media_seg_name", "seg-$RepresentationID$-$Number$.m4s",
            dash / "manifest.mpd")  # fmt: skip
    return root


# --------------------------------------------------------------------------- pages


def _page(title: str, body: str, head: str = "") -> bytes:
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(title)}</title>{head}</head>\n"
        f"<body><h1>{escape(title)}</h1>\n{body}\n<p>Some text around the video.</p></body></html>\n"
    ).encode()


def pages(base: str) -> dict[str, bytes]:
    """Every page of the site, its absolute URLs under ``base`` (ending in ``/``)."""
    media = base + "media/"
    t = TITLES
    ld = {
        "@context": "https://schema.org", "@type": "VideoObject", "name": t["jsonld.html"],
        "description": "A clip described with schema.org", "contentUrl": media + "clip.mp4",
        "thumbnailUrl": media + "poster.jpg", "uploadDate": "2025-11-01", "duration": "PT3S",
    }  # fmt: skip
    return {
        "video-src.html": _page(
            t["video-src.html"], '<video src="media/clip.mp4" poster="media/poster.jpg" controls></video>'
        ),
        "sources.html": _page(
            t["sources.html"],
            '<video controls>\n<source src="media/clip.webm" type="video/webm">\n'
            '<source src="media/clip.mp4" type="video/mp4">\n</video>',
        ),
        "og.html": _page(
            t["og.html"],
            "<p>A player would be here.</p>",
            f'<meta property="og:title" content="{t["og.html"]}">'
            f'<meta property="og:type" content="video.other">'
            f'<meta property="og:video" content="{media}clip.mp4">'
            f'<meta property="og:video:type" content="video/mp4">'
            f'<meta property="og:image" content="{media}poster.jpg">',
        ),
        "jsonld.html": _page(
            t["jsonld.html"],
            "<p>A player would be here.</p>",
            f'<script type="application/ld+json">{json.dumps(ld)}</script>',
        ),
        "hls.html": _page(
            t["hls.html"],
            '<video controls><source src="media/hls/master.m3u8" type="application/x-mpegURL"></video>',
        ),
        "dash.html": _page(
            t["dash.html"],
            '<video controls><source src="media/dash/manifest.mpd" type="application/dash+xml"></video>',
        ),
        "two.html": _page(
            t["two.html"],
            '<video src="media/clip.mp4" controls></video>\n<p>And another one:</p>\n'
            '<video src="media/second.mp4" controls></video>',
        ),
        "none.html": _page(t["none.html"], "<p>Just words, and an <img src='media/poster.jpg' alt='image'>.</p>"),
        "passwd.html": _page(t["passwd.html"], '<video src="file:///etc/passwd" controls></video>'),
        "ftp.html": _page(t["ftp.html"], '<video src="ftp://127.0.0.1/media/clip.mp4" controls></video>'),
    }


# --------------------------------------------------------------------------- serving


@dataclass
class Site:
    """The site on a fresh prefix of the test server: its pages and media, each a :class:`Route`."""

    base: str
    routes: dict[str, Route] = field(default_factory=dict)

    def page(self, name: str) -> str:
        """The URL of a page (or any file of the site, e.g. ``media/dash/manifest.mpd``)."""
        return self.base + name

    url = page

    def requests(self, rel: str) -> int:
        """How many requests reached ``rel``."""
        return len(self.routes[rel].requests)

    def media_requests(self) -> dict[str, int]:
        """Requests per media file, for those that were asked for at all."""
        return {k: len(r.requests) for k, r in self.routes.items() if k.startswith("media/") and r.requests}

    def media_sent(self) -> int:
        """Body bytes of media that crossed the wire."""
        return sum(r.sent for k, r in self.routes.items() if k.startswith("media/"))

    def media_headers(self, prefix: str = "media/") -> list[dict[str, str]]:
        """The headers of every request for a file under ``prefix``."""
        return [h for k, r in self.routes.items() if k.startswith(prefix) for h in r.requests]


def serve_site(server: LocalServer, root: Path) -> Site:
    """Serve the media under ``root`` and every page, under a fresh prefix of ``server``."""
    prefix = f"/site{next(_ids)}/"
    site = Site(server.url(prefix))
    for f in sorted(p for p in (root / "media").rglob("*") if p.is_file()):
        rel = f.relative_to(root).as_posix()
        site.routes[rel] = Route(f.read_bytes(), content_type=content_type(rel))
    for name, body in pages(site.base).items():
        site.routes[name] = Route(body, content_type="text/html; charset=utf-8", etag=None, last_modified=None)
    for rel, route in site.routes.items():
        server.add(prefix + rel, route)
    return site


def content_type(name: str) -> str:
    if name.endswith(".m3u8"):
        return "application/vnd.apple.mpegurl"
    if name.endswith(".mpd"):
        return "application/dash+xml"
    if name.endswith(".m4s"):
        return "video/iso.segment"
    if name.endswith(".ts"):
        return "video/mp2t"
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def dash_segments(root: Path, representation: str) -> list[str]:
    """The relative paths of a DASH representation's media segments, in order (init first)."""
    folder = root / "media" / "dash"
    numbered = sorted(folder.glob(f"seg-{representation}-*.m4s"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    return [f"media/dash/init-{representation}.m4s"] + [f"media/dash/{p.name}" for p in numbered]


# --------------------------------------------------------------------------- checking


def probe(path: Path) -> dict:
    """ffprobe's view of a file: ``format`` (duration, format_name) and ``streams``."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return json.loads(out)


def decode_errors(path: Path) -> str:
    """Decode every frame of every stream; what ffmpeg complained about ("" when clean)."""
    done = subprocess.run(
        ["ffmpeg", "-hide_banner", "-v", "error", "-i", str(path), "-f", "null", "-"], capture_output=True, text=True
    )
    return done.stderr.strip() if done.returncode == 0 else f"exit {done.returncode}: {done.stderr.strip()}"
