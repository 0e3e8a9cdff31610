"""Tests for vidnb._sniff: container detection from hand-built headers."""

from __future__ import annotations

import ast
import struct
import sys
from pathlib import Path

import pytest

from vidnb import _sniff
from vidnb._sniff import (
    FORMATS,
    SNIFF_BYTES,
    VideoFormat,
    describe_non_video,
    format_from_name,
    is_hls_playlist,
    sniff,
)

DATA = Path(_sniff.__file__).parent / "data"


def pad(head: bytes, size: int = SNIFF_BYTES) -> bytes:
    """Fill to `size` with bytes that match no magic (0xAB is neither 0x47 nor text)."""
    return head + b"\xab" * (size - len(head))


def ftyp(major: bytes, compatible: bytes = b"isomiso2avc1mp41") -> bytes:
    body = major + b"\x00\x00\x02\x00" + compatible
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + b"\x00\x00\x00\x08free"


def atom(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def ebml_element(element_id: bytes, data: bytes) -> bytes:
    assert len(data) < 127
    return element_id + bytes([0x80 | len(data)]) + data


def ebml(doctype: bytes | None, *, extra_first: bytes = b"", two_byte_size: bool = False) -> bytes:
    children = (
        extra_first
        + ebml_element(b"\x42\x86", b"\x01")  # EBMLVersion
        + ebml_element(b"\x42\xf7", b"\x01")  # EBMLReadVersion
        + ebml_element(b"\x42\xf2", b"\x04")  # EBMLMaxIDLength
        + ebml_element(b"\x42\xf3", b"\x08")  # EBMLMaxSizeLength
    )
    if doctype is not None:
        if two_byte_size:  # sizes may use a longer encoding than needed
            children += b"\x42\x82" + bytes([0x40, len(doctype)]) + doctype
        else:
            children += ebml_element(b"\x42\x82", doctype)
    children += ebml_element(b"\x42\x87", b"\x04") + ebml_element(b"\x42\x85", b"\x02")
    segment = b"\x18\x53\x80\x67\x01\x00\x00\x00\x00\x00\x10\x00"
    return b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(children)]) + children + segment


TS_PACKET = b"\x47\x1f\xff\x10" + b"\xff" * 184
M2TS_PACKET = b"\x00\x01\x02\x03" + TS_PACKET
ASF_GUID = bytes.fromhex("3026B2758E66CF11A6D900AA0062CE6C")


# --------------------------------------------------------------------------- the format table


@pytest.mark.parametrize(
    ("name", "extension", "mime", "playable"),
    [
        ("mp4", ".mp4", "video/mp4", True),
        ("mov", ".mov", "video/quicktime", True),
        ("m4v", ".m4v", "video/x-m4v", True),
        ("3gp", ".3gp", "video/3gpp", False),
        ("webm", ".webm", "video/webm", True),
        ("mkv", ".mkv", "video/x-matroska", False),
        ("avi", ".avi", "video/x-msvideo", False),
        ("flv", ".flv", "video/x-flv", False),
        ("ts", ".ts", "video/mp2t", False),
        ("mpeg", ".mpg", "video/mpeg", False),
        ("ogg", ".ogv", "video/ogg", True),
        ("asf", ".wmv", "video/x-ms-asf", False),
    ],
)
def test_format_table(name: str, extension: str, mime: str, playable: bool) -> None:
    assert FORMATS[name] == VideoFormat(name, extension, mime, playable)


def test_format_table_has_nothing_else() -> None:
    assert len(FORMATS) == 12


def test_video_format_is_frozen() -> None:
    with pytest.raises(AttributeError):
        FORMATS["mp4"].name = "x"  # type: ignore[misc]


def test_sniff_bytes_covers_three_ts_packets() -> None:
    assert SNIFF_BYTES == 1024
    assert SNIFF_BYTES > 2 * 192 + 4


# --------------------------------------------------------------------------- sniff: videos


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        # ISO BMFF by major brand
        (ftyp(b"isom"), "mp4"),
        (ftyp(b"iso2"), "mp4"),
        (ftyp(b"mp41"), "mp4"),
        (ftyp(b"mp42"), "mp4"),
        (ftyp(b"avc1"), "mp4"),
        (ftyp(b"dash"), "mp4"),
        (ftyp(b"msnv"), "mp4"),
        (ftyp(b"M4A "), "mp4"),
        (ftyp(b"qt  ", b"qt  "), "mov"),
        (ftyp(b"M4V ", b"M4V M4A mp42isom"), "m4v"),
        (ftyp(b"M4VH"), "m4v"),
        (ftyp(b"M4VP"), "m4v"),
        (ftyp(b"3gp4"), "3gp"),
        (ftyp(b"3gp6"), "3gp"),
        (ftyp(b"3g2a"), "3gp"),
        (ftyp(b"isom", b"qt  M4V 3gp4"), "mp4"),  # compatible brands do not matter
        (b"\x00\x00\x00\x14ftypisom", "mp4"),  # minimal: just the major brand
        # old QuickTime without ftyp
        (atom(b"moov", atom(b"mvhd", b"\x00" * 100)), "mov"),
        (atom(b"mdat", b"\x00" * 64), "mov"),
        (atom(b"free") + atom(b"moov"), "mov"),
        (atom(b"skip") + atom(b"moov"), "mov"),
        (atom(b"wide") + atom(b"mdat"), "mov"),
        (b"\x00\x00\x00\x00mdat" + b"\x00" * 16, "mov"),  # size 0: box runs to the end of the file
        (b"\x00\x00\x00\x01mdat" + struct.pack(">Q", 1 << 33), "mov"),  # size 1: 64-bit size follows
        # EBML
        (ebml(b"webm"), "webm"),
        (ebml(b"matroska"), "mkv"),
        (ebml(b"webm", two_byte_size=True), "webm"),
        (ebml(b"webm\x00\x00"), "webm"),  # strings may be NUL-padded
        (ebml(None), "mkv"),  # no DocType: Matroska is the default
        (ebml(b"webm")[:10], "mkv"),  # truncated before the DocType
        # a Void element hiding "DocType webm" must not fool a real parse
        (ebml(b"matroska", extra_first=ebml_element(b"\xec", b"\x42\x82\x84webm")), "mkv"),
        # RIFF AVI
        (b"RIFF\x24\x10\x00\x00AVI LIST\x00\x01\x00\x00hdrlavih", "avi"),
        # FLV
        (b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00", "flv"),
        (b"FLV\x01\x01\x00\x00\x00\x09", "flv"),
        # MPEG transport stream
        (TS_PACKET * 6, "ts"),
        (TS_PACKET * 2, "ts"),  # 376 bytes: the third sync byte is beyond the head
        (TS_PACKET * 2 + b"\x47", "ts"),
        (M2TS_PACKET * 6, "ts"),
        (M2TS_PACKET * 2, "ts"),
        # MPEG program stream / elementary video
        (b"\x00\x00\x01\xba\x44\x00\x04\x00\x04\x01\x01\x89\xc3\xf8", "mpeg"),
        (b"\x00\x00\x01\xb3\x16\x00\xf0\x13\xff\xff\xe0\x18", "mpeg"),
        # Ogg
        (b"OggS\x00\x02" + b"\x00" * 20 + b"\x01\x2a\x80theora", "ogg"),
        # ASF / WMV
        (ASF_GUID + b"\x00" * 14, "asf"),
    ],
)
def test_sniff_recognises(head: bytes, expected: str) -> None:
    assert sniff(head) == FORMATS[expected]
    # the answer does not change with more data, up to or beyond SNIFF_BYTES
    # (repeating keeps TS sync bytes aligned, padding would not)
    assert sniff(head * (4 * SNIFF_BYTES // len(head) + 1)) == FORMATS[expected]
    if expected != "ts":
        assert sniff(pad(head)) == FORMATS[expected]


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_sniff_accepts_bytes_like(kind: type) -> None:
    assert sniff(kind(ftyp(b"isom"))) == FORMATS["mp4"]


def test_sniff_uses_only_the_first_sniff_bytes() -> None:
    # TS sync bytes that only line up beyond SNIFF_BYTES are not looked at
    head = b"\x47" + b"\xab" * (SNIFF_BYTES + 500)
    assert sniff(head) is None


# --------------------------------------------------------------------------- sniff: not videos


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"\x00",
        b"\x00\x00\x00\x20ftyp",  # no brand yet
        b"<!DOCTYPE html><html><head><title>Login</title></head></html>",
        b'{"error": "not found"}',
        b"#EXTM3U\n#EXT-X-VERSION:3\n#EXTINF:10,\nseg0.ts\n",
        b'<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011"></MPD>',
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
        b"GIF89a\x01\x00\x01\x00",
        b"PK\x03\x04\x14\x00\x00\x00",
        b"RIFF\x24\x10\x00\x00WAVEfmt ",
        b"RIFF\x24\x10\x00\x00WEBPVP8 ",
        ftyp(b"avif"),  # AVIF still image shares the ISO BMFF header
        ftyp(b"heic"),
        ftyp(b"mif1"),
        b"FLV\x02\x05\x00\x00\x00\x09",
        b"FLV",
        b"\x00\x00\x01\xb5\x00\x00",
        b"\x00\x00\x01",
        ASF_GUID[:15],
        b"\x1a\x45\xdf",
        TS_PACKET,  # a single packet is not enough evidence
        pad(b"\x47"),  # 0x47 at 0 but not at 188
        TS_PACKET * 2 + b"\x00" + TS_PACKET[1:],  # sync at 0 and 188 but not at 376
        M2TS_PACKET,
        pad(b"Get free stuff now, this is plain text"),  # "free" at 4 in text is not a QuickTime box
        pad(b"I am mdat and moov"),
        b"\x00\x00\x00\x04free",  # box size 4 is impossible
        pad(b"plain text body\n"),
    ],
)
def test_sniff_rejects(head: bytes) -> None:
    assert sniff(head) is None


# --------------------------------------------------------------------------- bundled samples


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        pytest.param(
            name,
            fmt,
            marks=pytest.mark.skipif(not (DATA / name).exists(), reason="bundled sample not generated yet"),
            id=name,
        )
        for name, fmt in [("sample.mp4", "mp4"), ("sample.webm", "webm")]
    ],
)
def test_sniff_bundled_samples(filename: str, expected: str) -> None:
    path = DATA / filename
    with path.open("rb") as f:
        head = f.read(SNIFF_BYTES)
    assert sniff(head) == FORMATS[expected]
    assert format_from_name(filename) == FORMATS[expected]


# --------------------------------------------------------------------------- is_hls_playlist


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nlow.m3u8\n", True),
        (b"#EXTM3U", True),
        (b"#EXTM3U\r\n", True),
        (b"\xef\xbb\xbf#EXTM3U\n", True),
        (b"  \n\t#EXTM3U\n", True),
        (b"\n\xef\xbb\xbf #EXTM3U\n", True),
        (b"#EXTINF:10,\nseg.ts\n", False),
        (b"#extm3u\n", False),
        (b"x#EXTM3U\n", False),
        (b"", False),
        (ftyp(b"isom"), False),
    ],
)
def test_is_hls_playlist(head: bytes, expected: bool) -> None:
    assert is_hls_playlist(head) is expected


# --------------------------------------------------------------------------- describe_non_video


@pytest.mark.parametrize(
    ("head", "content_type", "expected"),
    [
        (b"", "video/mp4", "empty body"),
        (b"<!DOCTYPE html>\n<html><body>Sign in</body></html>", "text/html", "an HTML page"),
        (b"\xef\xbb\xbf  <!doctype HTML><title>x</title>", None, "an HTML page"),
        (b"<html><head>", "video/mp4", "an HTML page"),  # the bytes beat a lying header
        (b"<head><title>x</title></head><body>", None, "plain text"),
        (b'<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml">', None, "an HTML page"),
        (b"<!-- comment -->\n<html>", None, "an HTML page"),
        (b"Not found", "text/html; charset=utf-8", "an HTML page"),
        (b'{"error": {"code": 403}}', "application/json", "a JSON document"),
        (b'\n  [{"id": 1}]', None, "a JSON document"),
        (b"null", "application/problem+json", "a JSON document"),
        (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code></Error>', None, "an XML document"),
        (b"<Error><Code>NoSuchKey</Code></Error>", "application/xml", "an XML document"),
        (b"plain words", None, "plain text"),
        (b"Forbidden\r\n", "text/plain", "plain text"),
        (b"caf\xc3\xa9 \xe6", None, "plain text"),  # UTF-8 cut in the middle of a character
        (b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n", "application/vnd.apple.mpegurl", "an HLS playlist (#EXTM3U)"),
        (b"\xef\xbb\xbf#EXTM3U\n", "text/plain", "an HLS playlist (#EXTM3U)"),
        (b'<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static">', None,
         "a DASH manifest (MPD)"),
        (b'<MPD type="dynamic">', "application/xml", "a DASH manifest (MPD)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png", "an image (PNG)"),
        (b"\xff\xd8\xff\xe1\x00\x18Exif", "video/mp4", "an image (JPEG)"),
        (b"GIF87a\x01\x00", None, "an image (GIF)"),
        (b"GIF89a\x01\x00", None, "an image (GIF)"),
        (b"RIFF\x24\x10\x00\x00WEBPVP8 ", None, "an image (WebP)"),
        (ftyp(b"avif"), None, "an image (AVIF)"),
        (ftyp(b"heic"), None, "an image (HEIF)"),
        (b"PK\x03\x04\x14\x00\x08\x00", "application/zip", "a ZIP archive"),
        (b"PK\x05\x06" + b"\x00" * 18, None, "a ZIP archive"),
        (
            b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09",
            "application/octet-stream",
            "unrecognised data (starts with 00 01 02 03 04 05 06 07; Content-Type application/octet-stream)",
        ),
        (b"\xff\x00", None, "unrecognised data (starts with ff 00; no Content-Type)"),
        (b"\x80\x81\x82", "text/plain", "unrecognised data (starts with 80 81 82; Content-Type text/plain)"),
    ],
)
def test_describe_non_video(head: bytes, content_type: str | None, expected: str) -> None:
    assert describe_non_video(head, content_type) == expected


# --------------------------------------------------------------------------- format_from_name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("clip.mp4", "mp4"),
        ("CLIP.MP4", "mp4"),
        ("a.b.c.WebM", "webm"),
        ("movie.mov", "mov"),
        ("movie.qt", "mov"),
        ("x.m4v", "m4v"),
        ("x.3gp", "3gp"),
        ("x.3g2", "3gp"),
        ("x.mkv", "mkv"),
        ("x.avi", "avi"),
        ("x.flv", "flv"),
        ("x.ts", "ts"),
        ("x.m2ts", "ts"),
        ("x.mts", "ts"),
        ("x.mpg", "mpeg"),
        ("x.mpeg", "mpeg"),
        ("x.ogv", "ogg"),
        ("x.ogg", "ogg"),
        ("x.wmv", "asf"),
        ("x.asf", "asf"),
        ("/some/dir.mkv/clip.mp4", "mp4"),
        ("C:\\videos\\clip.avi", "avi"),
        (".webm", "webm"),
        ("x.m3u8", None),
        ("x.mp3", None),
        ("x.html", None),
        ("mp4", None),
        ("x.", None),
        ("", None),
        ("dir.mp4/clip", None),
        ("clip.mp4.part", None),
    ],
)
def test_format_from_name(name: str, expected: str | None) -> None:
    assert format_from_name(name) == (FORMATS[expected] if expected else None)


@pytest.mark.parametrize("fmt", list(FORMATS.values()), ids=list(FORMATS))
def test_every_format_round_trips_through_its_extension(fmt: VideoFormat) -> None:
    assert format_from_name("file" + fmt.extension) == fmt


# --------------------------------------------------------------------------- module hygiene


def test_module_imports_only_stdlib() -> None:
    tree = ast.parse(Path(_sniff.__file__).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "_sniff must not import from the package"
            roots = [(node.module or "").split(".")[0]]
        else:
            continue
        for root in roots:
            assert root in sys.stdlib_module_names or root == "__future__", root
