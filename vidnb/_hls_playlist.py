"""HLS playlists as lists of things to fetch: parsing, variant choice, segments, keys, names.

Pure functions on playlist text and parsed playlists (no network, no disk). Parsing is done
by the ``m3u8`` package (maintained, on PyPI): its tag grammar covers the whole of RFC 8216
and the common extensions, which a hand-written parser would keep rediscovering. Everything
that decides what vidnb fetches (variant choice, byte-range offsets, IVs, which init section
goes where) is here, in vidnb's own words.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import m3u8

from ._errors import LiveStreamError, NotAVideoError, UnsupportedEncryptionError
from ._urls import filename_from_url, redact_url, safe_filename
from ._variant import VariantChoice, parse_variant

__all__ = [
    "UnsupportedEncryptionError",
    "LiveStreamError",
    "Key",
    "Item",
    "VariantChoice",
    "parse",
    "parse_variant",
    "choose_variant",
    "describe_variant",
    "audio_renditions",
    "default_audio",
    "check_encryption",
    "is_live",
    "container",
    "segments",
    "with_init_sections",
    "live_start",
    "fingerprint",
    "output_name",
]


@dataclass(frozen=True)
class Key:
    """How one segment is encrypted (only AES-128 gets this far)."""

    uri: str  # absolute
    iv: bytes | None  # None: the media sequence number is the IV


@dataclass(frozen=True)
class Item:
    """One thing appended to the output, in order: an init section or a media segment.

    Attributes
    ----------
    kind : "init" or "segment"
    url : str
        Absolute URL.
    byterange : (offset, length) or None
    duration : float
        Seconds of media (0 for init sections).
    sequence : int
        Media sequence number of the segment (of the first segment using it, for an init section).
    key : Key or None
    init : (url, byterange) or None
        The init section a segment needs (fMP4); None for MPEG-TS.
    """

    kind: Literal["init", "segment"]
    url: str
    byterange: tuple[int, int] | None
    duration: float
    sequence: int
    key: Key | None = None
    init: tuple[str, tuple[int, int] | None] | None = None


# --------------------------------------------------------------------------- parsing


def parse(text: str, url: str) -> Any:
    """Parse playlist text fetched from ``url`` (an ``m3u8.M3U8``)."""
    if not text.lstrip("\ufeff \t\r\n").startswith("#EXTM3U"):
        raise NotAVideoError(f"{redact_url(url)} is not an HLS playlist (it does not start with #EXTM3U).")
    try:
        return m3u8.loads(text, uri=url)
    except Exception as exc:  # the parser raises assorted errors on malformed tags
        raise NotAVideoError(f"{redact_url(url)} is a malformed HLS playlist: {exc}") from exc


def is_live(playlist: Any) -> bool:
    """No ``EXT-X-ENDLIST`` (and not declared VOD): the list grows while we read it."""
    return not playlist.is_endlist and (playlist.playlist_type or "").lower() != "vod"


def container(playlist: Any) -> Literal["ts", "mp4"]:
    """fMP4/CMAF when segments have an init section (``EXT-X-MAP``), else MPEG-TS."""
    return "mp4" if any(s.init_section is not None for s in playlist.segments) else "ts"


# --------------------------------------------------------------------------- variants


def _bandwidth(v: Any) -> int:
    si = v.stream_info
    return int(si.bandwidth or si.average_bandwidth or 0)


def _pixels(v: Any) -> int:
    res = v.stream_info.resolution
    return res[0] * res[1] if res else 0


def _rank(v: Any) -> tuple[int, int]:
    return (_bandwidth(v), _pixels(v))


def choose_variant(master: Any, choice: VariantChoice) -> tuple[Any, str | None]:
    """Pick one stream of a master playlist; also return a warning when no stream fits the limit.

    "best" is the highest bandwidth, then resolution; "worst" the lowest. With a limit,
    the best stream within it; if none fits, the smallest stream (and a warning).
    """
    variants = [v for v in master.playlists if v.uri]
    if not variants:
        raise NotAVideoError("The master playlist lists no streams (no EXT-X-STREAM-INF with a URI).")
    if choice.mode == "worst":
        return min(variants, key=_rank), None
    if choice.mode == "best":
        return max(variants, key=_rank), None
    if choice.mode == "max_height":
        fits = [v for v in variants if v.stream_info.resolution and v.stream_info.resolution[1] <= choice.limit]
        what = f"{choice.limit} pixels tall"
    else:
        fits = [v for v in variants if 0 < _bandwidth(v) <= choice.limit]
        what = f"{choice.limit} bit/s"
    if fits:
        return max(fits, key=_rank), None
    chosen = min(variants, key=_rank)
    return chosen, f"no stream is at most {what}; taking the smallest, {describe_variant(chosen)}"


def describe_variant(v: Any) -> str:
    si = v.stream_info
    parts = []
    if si.resolution:
        parts.append(f"{si.resolution[0]}x{si.resolution[1]}")
    if _bandwidth(v):
        parts.append(f"{_bandwidth(v) / 1000:.0f} kbit/s")
    if si.codecs:
        parts.append(si.codecs)
    return " ".join(parts) or v.uri


def audio_renditions(master: Any, group: str | None = None) -> list[Any]:
    """``EXT-X-MEDIA`` audio renditions, of one group or all."""
    return [m for m in master.media if (m.type or "").upper() == "AUDIO" and (group is None or m.group_id == group)]


def default_audio(master: Any, variant: Any) -> Any | None:
    """The audio rendition the variant plays by default, when it lives in a playlist of its own.

    None when the variant names no audio group or its audio is muxed into the video
    segments (a rendition without URI).
    """
    group = variant.stream_info.audio
    if not group:
        return None
    renditions = audio_renditions(master, group)
    if not renditions:
        return None
    chosen = next(
        (m for m in renditions if (m.default or "").upper() == "YES"),
        next((m for m in renditions if (m.autoselect or "").upper() == "YES"), renditions[0]),
    )
    return chosen if chosen.uri else None


# --------------------------------------------------------------------------- segments


def check_encryption(playlist: Any, url: str) -> None:
    """Refuse, before any byte is written, streams whose encryption vidnb cannot undo."""
    for key in [s.key for s in playlist.segments] + list(getattr(playlist, "session_keys", []) or []):
        if key is None:
            continue
        method = (key.method or "NONE").upper()
        if method == "NONE":
            continue
        if method == "AES-128" and (key.keyformat or "identity").lower() == "identity":
            continue
        if method == "AES-128":
            raise UnsupportedEncryptionError(
                f"{redact_url(url)} is encrypted with AES-128 keys in the {key.keyformat!r} format (DRM); "
                "vidnb can only use plain (identity) AES-128 keys.",
                method,
            )
        raise UnsupportedEncryptionError(
            f"{redact_url(url)} is encrypted with METHOD={method}, which vidnb cannot decrypt "
            "(only AES-128 whole-segment encryption is supported; SAMPLE-AES encrypts inside the "
            "media samples and is usually DRM). Saving it would give an unplayable file.",
            method,
        )


_BYTERANGE = re.compile(r"\s*(\d+)(?:@(\d+))?\s*$")


def _byterange(value: str | None, url: str, ends: dict[str, int]) -> tuple[int, int] | None:
    """(offset, length) of an ``EXT-X-BYTERANGE``; without an offset it follows the last range of that URI."""
    if not value:
        return None
    m = _BYTERANGE.match(value)
    if not m:
        raise NotAVideoError(f"Malformed EXT-X-BYTERANGE {value!r} for {redact_url(url)}.")
    length = int(m.group(1))
    if m.group(2) is not None:
        offset = int(m.group(2))
    elif url in ends:
        offset = ends[url]
    else:
        raise NotAVideoError(
            f"EXT-X-BYTERANGE {value!r} for {redact_url(url)} has no offset and follows no earlier range."
        )
    ends[url] = offset + length
    return offset, length


def _iv(value: str | None) -> bytes | None:
    if not value:
        return None
    hexdigits = value[2:] if value[:2].lower() == "0x" else value
    try:
        raw = bytes.fromhex(hexdigits.rjust(32, "0"))
    except ValueError:
        raw = b""
    if len(raw) != 16:
        raise NotAVideoError(f"EXT-X-KEY has an IV that is not 16 bytes of hex: {value!r}.")
    return raw


def segments(playlist: Any, url: str) -> list[Item]:
    """The media segments of a media playlist, with absolute URLs, byte ranges and keys resolved.

    ``url`` is the playlist's own (final) URL: relative URIs resolve against it.
    Segments marked ``EXT-X-GAP`` are left out (the server says they do not exist).
    """
    first = int(playlist.media_sequence or 0)
    ends: dict[str, int] = {}
    items = []
    for i, seg in enumerate(playlist.segments):
        seg_url = urljoin(url, seg.uri)
        br = _byterange(seg.byterange, seg_url, ends)
        init = None
        if seg.init_section is not None:
            init_url = urljoin(url, seg.init_section.uri)
            init = (init_url, _byterange(seg.init_section.byterange, init_url, {}))
        key = None
        if seg.key is not None and (seg.key.method or "NONE").upper() == "AES-128":
            if not seg.key.uri:
                raise NotAVideoError(f"{redact_url(url)} has an AES-128 EXT-X-KEY without a URI.")
            key = Key(urljoin(url, seg.key.uri), _iv(seg.key.iv))
        if getattr(seg, "gap_tag", None):
            continue
        items.append(Item("segment", seg_url, br, float(seg.duration or 0.0), first + i, key, init))
    return items


def with_init_sections(segs: Iterable[Item], current: tuple[str, Any] | None = None) -> Iterator[Item]:
    """Put each init section in front of the first segment that needs it (again when it changes).

    ``current`` is the init section already written (live recording continues from it).
    """
    for seg in segs:
        if seg.init is not None and seg.init != current:
            current = seg.init
            # An init section is encrypted only when it is not plain ISO BMFF; the key (and its
            # explicit IV, which the spec requires then) travels along so the fetcher can tell.
            yield Item("init", seg.init[0], seg.init[1], 0.0, seg.sequence, seg.key)
        yield seg


def live_start(segs: list[Item], target_duration: float) -> int:
    """Where a live recording starts: three target durations before the end (RFC 8216, 6.3.3)."""
    need = 3 * max(target_duration, 1.0)
    held = 0.0
    for i in range(len(segs) - 1, -1, -1):
        held += segs[i].duration
        if held >= need:
            return i
    return 0


def fingerprint(items: list[Item]) -> str:
    """What a resumable ``.part`` was made from: segment paths, ranges and keys (queries left out,
    since signed URLs change on every load while naming the same bytes)."""
    h = hashlib.sha256()
    for it in items:
        parts = urlsplit(it.url)
        key = "" if it.key is None else urlsplit(it.key.uri).path + (it.key.iv or b"").hex()
        h.update(f"{it.kind}|{parts.netloc}{parts.path}|{it.byterange}|{it.sequence}|{key}\n".encode())
    return h.hexdigest()


def output_name(url: str, kind: Literal["ts", "mp4"], *, audio: bool = False, stem: str | None = None) -> str:
    """A file name for the stream: the playlist URL's stem (or ``stem``) plus ``.ts`` or ``.mp4``.

    Audio renditions get ``.audio.ts`` or ``.m4a`` so they sit beside their video.
    """
    if stem is None:
        raw = filename_from_url(url) or "video"
        stem = re.sub(r"\.m3u8?$", "", raw, flags=re.I) or "video"
    ext = {"ts": ".ts", "mp4": ".mp4"}[kind]
    if audio:
        ext = ".audio.ts" if kind == "ts" else ".m4a"
    return safe_filename(stem + ext) or "video" + ext
