"""Recognise video containers from their first bytes, and name what is not a video.

Pure functions on bytes (stdlib only). Servers often lie in Content-Type, so the
magic bytes decide; the header is only used to describe non-video bodies.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

__all__ = [
    "VideoFormat",
    "SNIFF_BYTES",
    "FORMATS",
    "sniff",
    "describe_non_video",
    "is_hls_playlist",
    "is_web_page",
    "format_from_name",
]


@dataclass(frozen=True)
class VideoFormat:
    """A video container vidnb recognises.

    Attributes
    ----------
    name : str
        Short name, e.g. ``"mp4"``.
    extension : str
        File extension with the dot, e.g. ``".mp4"``.
    mime : str
        MIME type to serve or embed it with.
    browser_playable : bool
        Whether common browsers play it in a ``<video>`` element.
    """

    name: str
    extension: str
    mime: str
    browser_playable: bool


#: How many leading bytes :func:`sniff` wants: MPEG-TS needs sync bytes at 0, 188 and 376.
SNIFF_BYTES: int = 1024

FORMATS: dict[str, VideoFormat] = {
    f.name: f
    for f in (
        VideoFormat("mp4", ".mp4", "video/mp4", True),
        # Browsers play the common H.264/AAC QuickTime files.
        VideoFormat("mov", ".mov", "video/quicktime", True),
        VideoFormat("m4v", ".m4v", "video/x-m4v", True),
        VideoFormat("3gp", ".3gp", "video/3gpp", False),
        VideoFormat("webm", ".webm", "video/webm", True),
        VideoFormat("mkv", ".mkv", "video/x-matroska", False),
        VideoFormat("avi", ".avi", "video/x-msvideo", False),
        VideoFormat("flv", ".flv", "video/x-flv", False),
        VideoFormat("ts", ".ts", "video/mp2t", False),
        VideoFormat("mpeg", ".mpg", "video/mpeg", False),
        VideoFormat("ogg", ".ogv", "video/ogg", True),
        VideoFormat("asf", ".wmv", "video/x-ms-asf", False),
    )
}

_BY_EXTENSION: dict[str, VideoFormat] = {f.extension: f for f in FORMATS.values()} | {
    ext: FORMATS[name]
    for ext, name in {
        ".qt": "mov",
        ".3g2": "3gp",
        ".mpeg": "mpeg",
        ".mpe": "mpeg",
        ".m2ts": "ts",
        ".mts": "ts",
        ".ogg": "ogg",
        ".asf": "asf",
        ".f4v": "mp4",
    }.items()
}

_QUICKTIME_ATOMS = (b"moov", b"mdat", b"free", b"skip", b"wide")
# HEIF/AVIF stills share the ISO BMFF "ftyp" box with MP4 but are images.
_IMAGE_BRANDS = {b"avif": "AVIF", b"heic": "HEIF", b"heix": "HEIF", b"mif1": "HEIF", b"mif2": "HEIF"}
_ASF_GUID = bytes.fromhex("3026B2758E66CF11A6D900AA0062CE6C")
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_DOCTYPE_ID = 0x4282


def sniff(head: bytes) -> VideoFormat | None:
    """Identify the video container from the leading bytes of a body.

    Parameters
    ----------
    head : bytes
        The first bytes of the file; :data:`SNIFF_BYTES` are enough, fewer may
        leave MPEG-TS unrecognised.

    Returns
    -------
    VideoFormat or None
        The container, or None for anything else (HTML, JSON, images, playlists, ...).
    """
    h = bytes(head[:SNIFF_BYTES])
    box = h[4:8]
    if box == b"ftyp" and len(h) >= 12:
        brand = h[8:12]
        if brand in _IMAGE_BRANDS:
            return None
        if brand == b"qt  ":
            return FORMATS["mov"]
        if brand in (b"M4V ", b"M4VH", b"M4VP"):
            return FORMATS["m4v"]
        if brand.startswith((b"3gp", b"3g2")):
            return FORMATS["3gp"]
        return FORMATS["mp4"]
    if box in _QUICKTIME_ATOMS and _plausible_box_size(h[:4]):
        return FORMATS["mov"]
    if h.startswith(_EBML_MAGIC):
        return FORMATS["webm"] if _ebml_doctype(h) == "webm" else FORMATS["mkv"]
    if h.startswith(b"RIFF") and h[8:12] == b"AVI ":
        return FORMATS["avi"]
    if h.startswith(b"FLV\x01"):
        return FORMATS["flv"]
    if _sync_bytes(h, 0, 188) or _sync_bytes(h, 4, 192):
        return FORMATS["ts"]
    if h.startswith((b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")):
        return FORMATS["mpeg"]
    if h.startswith(b"OggS"):
        return FORMATS["ogg"]
    if h.startswith(_ASF_GUID):
        return FORMATS["asf"]
    return None


def _plausible_box_size(size: bytes) -> bool:
    """Keep text such as "Get free ..." from passing as a QuickTime ``free`` box."""
    n = int.from_bytes(size, "big")
    return (n in (0, 1) or n >= 8) and not all(0x20 <= b < 0x7F for b in size)


def _sync_bytes(h: bytes, start: int, packet: int) -> bool:
    """MPEG-TS: 0x47 at the start of two packets, and of a third when the head reaches it."""
    offsets = [start + k * packet for k in range(3)]
    if len(h) <= offsets[1]:
        return False
    return all(h[o] == 0x47 for o in offsets if o < len(h))


def _ebml_doctype(h: bytes) -> str | None:
    """Walk the EBML header's children to its DocType; None if absent or truncated."""
    pos = len(_EBML_MAGIC)
    size = _vint(h, pos, keep_marker=False)
    if size is None:
        return None
    header_size, pos = size
    end = min(len(h), pos + header_size)
    while pos < end:
        elem_id = _vint(h, pos, keep_marker=True)
        if elem_id is None:
            return None
        elem_size = _vint(h, elem_id[1], keep_marker=False)
        if elem_size is None:
            return None
        data_start, data_end = elem_size[1], elem_size[1] + elem_size[0]
        if elem_id[0] == _DOCTYPE_ID:
            return h[data_start:data_end].rstrip(b"\x00").decode("ascii", "replace").lower()
        pos = data_end
    return None


def _vint(h: bytes, pos: int, *, keep_marker: bool) -> tuple[int, int] | None:
    """Read an EBML variable-length integer: (value, position after it)."""
    if pos >= len(h) or h[pos] == 0:
        return None
    length = 9 - h[pos].bit_length()
    if pos + length > len(h):
        return None
    value = h[pos] if keep_marker else h[pos] & (0xFF >> length)
    for b in h[pos + 1 : pos + length]:
        value = value << 8 | b
    return value, pos + length


def is_hls_playlist(head: bytes) -> bool:
    """Whether `head` starts an HLS playlist (``#EXTM3U``).

    Parameters
    ----------
    head : bytes
        Leading bytes of the body; a UTF-8 BOM and leading whitespace are skipped.

    Returns
    -------
    bool
    """
    return _text_start(head).startswith(b"#EXTM3U")


def _text_start(head: bytes) -> bytes:
    return bytes(head[:SNIFF_BYTES]).lstrip().removeprefix(codecs.BOM_UTF8).lstrip()


def is_web_page(head: bytes, content_type: str | None) -> bool:
    """True for an HTML page or a DASH manifest: bodies whose video yt-dlp's extractors may find.

    >>> is_web_page(b"<!DOCTYPE html><html>", "text/html"), is_web_page(b"#EXTM3U", None)
    (True, False)
    """
    return describe_non_video(head, content_type) in ("an HTML page", "a DASH manifest (MPD)")


def describe_non_video(head: bytes, content_type: str | None) -> str:
    """Say in a few words what a non-video body is, for an error message.

    Parameters
    ----------
    head : bytes
        Leading bytes of the body.
    content_type : str or None
        The Content-Type header; used when the bytes alone do not tell.

    Returns
    -------
    str
        E.g. ``"an HTML page"``, ``"an HLS playlist (#EXTM3U)"``, ``"an image (PNG)"``,
        ``"empty body"``, or ``"unrecognised data (starts with 00 01 ...; Content-Type ...)"``.
    """
    h = bytes(head[:SNIFF_BYTES])
    if not h:
        return "empty body"
    for magic, what in _BINARY_KINDS:
        if h.startswith(magic):
            return what
    if h.startswith(b"RIFF") and h[8:12] == b"WEBP":
        return "an image (WebP)"
    if h[4:8] == b"ftyp" and h[8:12] in _IMAGE_BRANDS:
        return f"an image ({_IMAGE_BRANDS[h[8:12]]})"
    if is_hls_playlist(h):
        return "an HLS playlist (#EXTM3U)"

    t = _text_start(h)
    lower = t.lower()
    media = (content_type or "").split(";")[0].strip().lower()
    if lower.startswith(b"<") and b"<mpd" in lower:
        return "a DASH manifest (MPD)"
    if lower.startswith((b"<!doctype html", b"<html")) or (lower.startswith(b"<") and b"<html" in lower):
        return "an HTML page"
    if lower.startswith(b"<?xml"):
        return "an XML document"
    if t.startswith((b"{", b"[")) and _is_text(t):
        return "a JSON document"
    if media == "application/dash+xml":
        return "a DASH manifest (MPD)"
    if media == "text/html":
        return "an HTML page"
    if media in ("application/vnd.apple.mpegurl", "application/x-mpegurl", "audio/mpegurl"):
        return "an HLS playlist (#EXTM3U)"
    if media == "application/json" or media.endswith("+json"):
        return "a JSON document"
    if media in ("application/xml", "text/xml") or media.endswith("+xml"):
        return "an XML document"
    if _is_text(h):
        return "plain text"
    ct = f"Content-Type {content_type}" if content_type else "no Content-Type"
    return f"unrecognised data (starts with {h[:8].hex(' ')}; {ct})"


_BINARY_KINDS = (
    (b"\x89PNG\r\n\x1a\n", "an image (PNG)"),
    (b"\xff\xd8\xff", "an image (JPEG)"),
    (b"GIF87a", "an image (GIF)"),
    (b"GIF89a", "an image (GIF)"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"PK\x05\x06", "a ZIP archive"),
)


def _is_text(h: bytes) -> bool:
    """UTF-8 without control characters other than whitespace; the head may end mid-character."""
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(h, final=False)
    except UnicodeDecodeError:
        return False
    return all(c >= " " or c in "\t\n\r\f" for c in text) and "\x7f" not in text


def format_from_name(name: str) -> VideoFormat | None:
    """Look up a video format by the extension of a file name or path.

    Parameters
    ----------
    name : str
        A file name, path or URL path, e.g. ``"clip.MP4"``.

    Returns
    -------
    VideoFormat or None
        The format for the extension (case-insensitive), or None if unknown.
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    _, dot, ext = base.rpartition(".")
    return _BY_EXTENSION.get("." + ext.lower()) if dot else None
