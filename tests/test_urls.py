"""Tests for vidnb._urls: URL validation, log redaction and safe file names."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from vidnb import _urls
from vidnb._errors import InvalidURLError, VidnbError
from vidnb._urls import (
    LONGEST_SIDE_SUFFIX,
    NAME_MAX_BYTES,
    SERVER_NAME_MAX_BYTES,
    choose_filename,
    filename_from_content_disposition,
    filename_from_url,
    redact_url,
    safe_filename,
    server_filename,
    validate_url,
)

LIMIT = SERVER_NAME_MAX_BYTES

# --------------------------------------------------------------------------- validate_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/video.mp4", "https://example.com/video.mp4"),
        ("  https://example.com/v.mp4\n", "https://example.com/v.mp4"),
        ("\thttp://example.com/v.mp4\r\n ", "http://example.com/v.mp4"),
        ("HTTP://EXAMPLE.COM/V.MP4", "HTTP://EXAMPLE.COM/V.MP4"),
        ("https://example.com", "https://example.com"),
        ("http://localhost:8080/v.mp4", "http://localhost:8080/v.mp4"),
        ("http://127.0.0.1:1/x", "http://127.0.0.1:1/x"),
        ("http://example.com:65535/", "http://example.com:65535/"),
        ("http://[::1]:8000/v.mp4", "http://[::1]:8000/v.mp4"),
        ("http://[::1]/v.mp4", "http://[::1]/v.mp4"),
        ("https://user:pw@example.com/v.mp4", "https://user:pw@example.com/v.mp4"),
        ("https://e.com/v.mp4?a=1&b=2#t=10", "https://e.com/v.mp4?a=1&b=2#t=10"),
        ("https://e.com/na%C3%AFve%20clip.mp4", "https://e.com/na%C3%AFve%20clip.mp4"),
        ("https://exämple.com/vidéo.mp4", "https://exämple.com/vidéo.mp4"),
    ],
)
def test_validate_url_accepts(url: str, expected: str) -> None:
    assert validate_url(url) == expected


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        # not a string
        (None, "must be a string"),
        (123, "must be a string"),
        (b"https://example.com/v.mp4", "must be a string"),
        # empty
        ("", "empty"),
        ("   ", "empty"),
        ("\n\t ", "empty"),
        # control characters inside (surrounding ones are stripped)
        ("http://exa\nmple.com/v.mp4", "control character"),
        ("http://example.com/a\tb.mp4", "control character"),
        ("http://example.com/v.mp4\r\nHost: evil", "control character"),
        ("http://example.com/\x00.mp4", "control character"),
        ("http://example.com/\x7f.mp4", "control character"),
        ("http://example.com/\x1b[31m.mp4", "control character"),
        # spaces inside
        ("http://example.com/my video.mp4", "%20"),
        ("http://exa mple.com/v.mp4", "%20"),
        ("http://example.com/a\u00a0b.mp4", "%20"),
        # schemes other than http(s), and none at all
        ("file:///etc/passwd", "only http:// and https:// URLs are supported"),
        ("ftp://example.com/v.mp4", "only http:// and https:// URLs are supported"),
        ("javascript:alert(1)", "only http:// and https:// URLs are supported"),
        ("data:video/mp4;base64,AAAA", "only http:// and https:// URLs are supported"),
        ("ws://example.com/v", "only http:// and https:// URLs are supported"),
        ("mailto:a@example.com", "only http:// and https:// URLs are supported"),
        ("httpx://example.com/v.mp4", "only http:// and https:// URLs are supported"),
        ("example.com/v.mp4", "only http:// and https:// URLs are supported"),
        ("www.example.com", "only http:// and https:// URLs are supported"),
        ("localhost:8080/v.mp4", "only http:// and https:// URLs are supported"),
        ("//example.com/v.mp4", "only http:// and https:// URLs are supported"),
        ("/local/path/v.mp4", "only http:// and https:// URLs are supported"),
        # no host
        ("http://", "no host"),
        ("https:///x", "no host"),
        ("http:example.com/v.mp4", "no host"),
        ("http:/example.com/v.mp4", "no host"),
        ("http://user:pw@/x", "no host"),
        ("https://:8080/x", "no host"),
        ("https://?q=1", "no host"),
        ("https://#frag", "no host"),
        # bad ports
        ("http://example.com:0/", "1..65535"),
        ("http://example.com:65536/", "1..65535"),
        ("http://example.com:99999999999999999999/", "1..65535"),
        ("http://example.com:" + "9" * 5000 + "/", "1..65535"),
        ("http://[::1]:0/", "1..65535"),
        ("http://example.com:abc/", "port"),
        ("http://example.com:/x", "port"),
        ("http://example.com:-1/", "port"),
        ("http://example.com:+80/", "port"),
        ("http://example.com:8_0/", "port"),
        ("http://example.com:\u0668\u0660/", "port"),  # Arabic-Indic digits: int() accepts them
        ("http://[::1]x/", "port"),
        # malformed
        ("http://[::1/v.mp4", "malformed"),
        ("http://::1/v.mp4", "brackets"),
        ("http://a:b:80/v.mp4", "brackets"),
    ],
)
def test_validate_url_rejects(url: object, fragment: str) -> None:
    with pytest.raises(InvalidURLError) as info:
        validate_url(url)  # type: ignore[arg-type]
    assert fragment in str(info.value)


def test_invalid_url_error_is_value_error_and_vidnb_error() -> None:
    with pytest.raises(ValueError):
        validate_url("ftp://example.com/x")
    with pytest.raises(VidnbError):
        validate_url("ftp://example.com/x")


def test_validate_url_message_matches_documented_form() -> None:
    with pytest.raises(InvalidURLError) as info:
        validate_url("http:///x")
    assert str(info.value) == "URL has no host: 'http:///x'. Give a full URL such as https://example.com/video.mp4"
    assert info.value.url == "http:///x"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://user:hunter2@example.com/v.mp4",
        "https://user:hunter2@/v.mp4",
        "https://user:hunter2@example.com:0/v.mp4",
        "https://user:hunter2@example.com/my video.mp4",
        "https://example.com/v.mp4?token=hunter2\n&x=1",
        "https://user:hun/ter2@example.com/v.mp4",  # "hun" parses as the port
    ],
)
def test_validate_url_errors_do_not_leak_secrets(url: str) -> None:
    with pytest.raises(InvalidURLError) as info:
        validate_url(url)
    assert "hunter2" not in str(info.value)
    assert "ter2" not in str(info.value)
    assert "hunter2" not in (info.value.url or "")


# --------------------------------------------------------------------------- redact_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/a/v.mp4", "https://example.com/a/v.mp4"),
        ("https://user:pass@host/a.mp4", "https://***@host/a.mp4"),
        ("https://user@host/a.mp4", "https://***@host/a.mp4"),
        ("https://host/a.mp4?token=secret&x=1", "https://host/a.mp4?…"),
        ("https://u:p@host:8443/p/a.mp4?sig=abc#t=10", "https://***@host:8443/p/a.mp4?…"),
        ("https://host/a.mp4#frag", "https://host/a.mp4"),
        ("https://host/a.mp4?", "https://host/a.mp4"),
        ("https://host/a.mp4?#frag", "https://host/a.mp4"),
        ("https://u:p@host?x=1", "https://***@host?…"),
        ("https://u:p@ss@host/", "https://***@host/"),  # unencoded "@" in the password
        ("https://u:p#ss@host/", "https://***"),  # "#" in the password: ambiguous, say nothing
        ("https://u:p?ss@host/", "https://***"),
        ("https://u:pa/ss@host/", "https://***"),
        ("https://host:8080/@user/v.mp4", "https://host:8080/@user/v.mp4"),
        ("https://host/v.mp4\r\nX-Forged: yes", "https://host/v.mp4%0D%0AX-Forged:%20yes"),
        ("  https://host/x  ", "https://host/x"),
        ("//u:p@host/x", "//***@host/x"),
        ("user:pass@host/x.mp4", "***@host/x.mp4"),
        ("http:///x", "http:///x"),
        ("", ""),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "ftp://user:hunter2@h/x",
        "user:hunter2@host/x",
        "//u:hunter2@h/x",
        "https://u:hunter2@h?x",
        "https://h/x?pw=hunter2",
        "https://h/x#hunter2",
        "https://u:hunter2#x@h/",
        "https://u:hunter2?x@h/",
        "https://u:hunter2/x@h/",
        "HTTPS://U:hunter2@H/",
        "https://u:hunter2@[::1]:80/x",
        "https://u:hunter2@[::1/x",
    ],
)
def test_redact_url_never_shows_password(url: str) -> None:
    assert "hunter2" not in redact_url(url)


@pytest.mark.parametrize("junk", [None, 123, b"https://u:p@h/", object(), "::::", "[", "http://[::1", "?#@/\\", "\x00"])
def test_redact_url_never_raises(junk: object) -> None:
    result = redact_url(junk)  # type: ignore[arg-type]
    assert isinstance(result, str)
    assert not any(ord(c) < 0x20 for c in result)


@pytest.mark.parametrize("junk", [None, 123, b"https://u:p@h/"])
def test_redact_url_placeholder_for_non_strings(junk: object) -> None:
    assert redact_url(junk) == "<invalid url>"  # type: ignore[arg-type]


# --------------------------------------------------------------------------- safe_filename


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("video.mp4", "video.mp4"),
        ("naïve vidéo 日本.mp4", "naïve vidéo 日本.mp4"),
        # path traversal: only the last component survives
        ("../../etc/passwd", "passwd"),
        ("..\\..\\x", "x"),
        ("/abs/path.mp4", "path.mp4"),
        ("C:\\Users\\me\\v.mp4", "v.mp4"),
        ("a/b\\c/d.mp4", "d.mp4"),
        ("..", None),
        (".", None),
        ("...", None),
        ("../..", None),
        ("", None),
        ("   ", None),
        ("dir/", None),
        ("\x00", None),
        # control characters
        ("a\x00b.mp4", "ab.mp4"),
        ("line\nbreak\r.mp4", "linebreak.mp4"),
        ("tab\there.mp4", "tabhere.mp4"),
        ("\x7fdel\x9f.mp4", "del.mp4"),
        ("evil\u202egpj.exe", "evilgpj.exe"),  # right-to-left override spoofs the extension
        # leading dots/spaces, trailing dots/spaces
        (".hidden.mp4", "hidden.mp4"),
        ("...dots.mp4", "dots.mp4"),
        ("  spaced.mp4  ", "spaced.mp4"),
        ("name. . ", "name"),
        (". .x", "x"),
        ("\x00.hidden", "hidden"),
        # characters Windows refuses
        ('a<b>c:d"e|f?g*h.mp4', "a_b_c_d_e_f_g_h.mp4"),
        ("file.mp4:Zone.Identifier", "file.mp4_Zone.Identifier"),
        # Windows device names
        ("CON", "_CON"),
        ("con.mp4", "_con.mp4"),
        ("Nul.tar.gz", "_Nul.tar.gz"),
        ("NUL .mp4", "_NUL .mp4"),
        ("COM1.txt", "_COM1.txt"),
        ("lpt9", "_lpt9"),
        ("AUX", "_AUX"),
        ("PRN.mp4", "_PRN.mp4"),
        ("COM10.mp4", "COM10.mp4"),
        ("CONSOLE.mp4", "CONSOLE.mp4"),
        ("icon.mp4", "icon.mp4"),
    ],
)
def test_safe_filename(name: str, expected: str | None) -> None:
    assert safe_filename(name) == expected


@pytest.mark.parametrize("char", ["é", "中", "🎬", "a"])
def test_safe_filename_truncates_keeping_extension_and_whole_characters(char: str) -> None:
    name = char * (400 // len(char.encode("utf-8"))) + ".mp4"
    assert len(name.encode("utf-8")) > 255
    result = safe_filename(name)
    assert result is not None
    encoded = result.encode("utf-8")
    assert len(encoded) <= LIMIT
    # not wasteful: at most one character's worth shorter than the limit
    assert len(encoded) > LIMIT - len(char.encode("utf-8"))
    assert result.endswith(".mp4")
    assert set(result[: -len(".mp4")]) == {char}


def test_the_default_limit_leaves_room_for_the_longest_suffix() -> None:
    assert NAME_MAX_BYTES == 255 and LONGEST_SIDE_SUFFIX == ".part.json.tmp"
    assert SERVER_NAME_MAX_BYTES == 241


@pytest.mark.parametrize(
    ("stem_bytes", "expected_bytes"),
    [(LIMIT - 4, LIMIT), (LIMIT - 3, LIMIT), (LIMIT + 10, LIMIT), (1000, LIMIT)],
)
def test_safe_filename_default_limit_is_exact(stem_bytes: int, expected_bytes: int) -> None:
    name = "a" * stem_bytes + ".mp4"
    result = safe_filename(name)
    assert result is not None and result.endswith(".mp4")
    assert len(result.encode("utf-8")) == min(expected_bytes, len(name))
    if len(name) <= LIMIT:
        assert result == name  # a name that fits is not touched


def test_safe_filename_a_255_byte_name_is_cut_to_the_limit() -> None:
    name = "x" * 251 + ".mp4"
    assert safe_filename(name) == "x" * (LIMIT - 4) + ".mp4"


@pytest.mark.parametrize(("char", "width"), [("é", 2), ("中", 3), ("🎬", 4)])
@pytest.mark.parametrize("shift", range(4))
def test_safe_filename_cuts_on_a_character_boundary_at_every_offset(char: str, width: int, shift: int) -> None:
    # "a" * shift moves the limit to each byte of a multi-byte character in turn.
    name = "a" * shift + char * 200 + ".mp4"
    result = safe_filename(name)
    assert result is not None and result.endswith(".mp4")
    encoded = result.encode("utf-8")
    assert LIMIT - width < len(encoded) <= LIMIT
    assert result == "a" * shift + char * ((LIMIT - 4 - shift) // width) + ".mp4"
    assert "\ufffd" not in result


def test_safe_filename_without_extension_is_cut_to_the_limit() -> None:
    assert safe_filename("é" * 300) == "é" * (LIMIT // 2)
    assert safe_filename("a" * 300) == "a" * LIMIT


@pytest.mark.parametrize(
    ("name", "tail"),
    [
        ("t" * 300 + ".audio.ts", ".audio.ts"),  # HLS audio beside t...t.ts: the cut must not make it t...t.ts
        ("t" * 300 + ".tar.gz", ".tar.gz"),
        ("t" * 300 + ".2024.mp4", "t.mp4"),  # only a word is kept with the extension, not a number
        ("t" * 300 + ".webm", "t.webm"),
        ("t" * 300 + ". x.mp4", "t.mp4"),  # " x" is no extension: it is cut off with the end of the stem
    ],
)
def test_safe_filename_keeps_a_word_extension_before_the_last(name: str, tail: str) -> None:
    result = safe_filename(name)
    assert result is not None and result.endswith(tail)
    assert len(result.encode("utf-8")) == LIMIT


def test_hls_audio_name_stays_apart_from_its_video_name() -> None:
    video = safe_filename("t" * 300 + ".ts")
    assert video is not None
    audio = safe_filename(video[: -len(".ts")] + ".audio.ts")  # as _hls_playlist.output_name makes it
    assert audio is not None and audio != video and audio.endswith(".audio.ts")
    assert len(audio.encode("utf-8")) <= LIMIT


def test_safe_filename_replaces_undecodable_bytes() -> None:
    # aiohttp decodes raw non-UTF-8 header bytes to lone surrogates ("caf\xe9" -> "caf\udce9").
    assert safe_filename("caf\udce9.mp4") == "caf\ufffd.mp4"
    long = safe_filename("\udce9" * 300 + ".mp4")
    assert long is not None and long.endswith(".mp4") and len(long.encode("utf-8")) <= LIMIT


def test_safe_filename_truncation_of_mixed_widths_never_splits_characters() -> None:
    name = "aé中🎬" * 40 + ".webm"  # 400 bytes of stem
    for limit in range(6, 60):
        result = safe_filename(name, max_bytes=limit)
        assert result is not None
        assert len(result.encode("utf-8")) <= limit
        assert result.endswith(".webm")
        assert name.startswith(result[: -len(".webm")])
        assert "\ufffd" not in result


@pytest.mark.parametrize(
    ("name", "max_bytes", "expected"),
    [
        ("abcdef.mp4", 8, "abcd.mp4"),
        ("abcdef.mp4", 10, "abcdef.mp4"),
        ("abcdef", 3, "abc"),
        ("ab. . " + "x" * 20, 5, "ab"),  # no usable extension; trailing dots/spaces stripped after the cut
        ("ab. . . .cd", 5, "ab.cd"),
        ("a." + "x" * 300, 255, "a." + "x" * 253),  # a "extension" too long to keep is just cut
        ("CONxyz.mp4", 7, "_CO.mp4"),  # cutting must not produce a device name
    ],
)
def test_safe_filename_max_bytes(name: str, max_bytes: int, expected: str) -> None:
    result = safe_filename(name, max_bytes=max_bytes)
    assert result == expected
    assert len(result.encode("utf-8")) <= max_bytes


def test_safe_filename_rejects_nonpositive_limit() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        safe_filename("a.mp4", max_bytes=0)


# --------------------------------------------------------------------------- Content-Disposition


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("attachment", None),
        ("inline", None),
        ('attachment; filename=""', None),
        ('attachment; filename="video.mp4"', "video.mp4"),
        ("attachment; filename=plain.mp4", "plain.mp4"),
        ('inline; filename="clip.webm"', "clip.webm"),
        ('filename="no-type.mp4"', "no-type.mp4"),
        # RFC 5987 extended value
        ("attachment; filename*=UTF-8''na%C3%AFve.mp4", "naïve.mp4"),
        ("attachment; filename*=utf-8''%E6%97%A5%E6%9C%AC.mp4", "日本.mp4"),
        ("attachment; filename*=iso-8859-1'en'na%EFve.mp4", "naïve.mp4"),
        ("attachment; filename*=UTF-8'en-us'a%20b.mp4", "a b.mp4"),
        ("attachment; filename*=UTF-8''a+b.mp4", "a+b.mp4"),  # "+" is not a space here
        ('attachment; filename*="UTF-8\'\'quoted%20ext.mp4"', "quoted ext.mp4"),  # common non-compliance
        # filename* wins over filename, in either order
        ("attachment; filename=\"fallback.mp4\"; filename*=UTF-8''real%20name.mp4", "real name.mp4"),
        ("attachment; filename*=UTF-8''real%20name.mp4; filename=\"fallback.mp4\"", "real name.mp4"),
        # unusable filename* falls back to filename
        ("attachment; filename*=koi8-r''%C1.mp4; filename=\"ascii.mp4\"", "ascii.mp4"),
        ("attachment; filename*=nonsense-charset''x.mp4; filename=fb.mp4", "fb.mp4"),
        ("attachment; filename*=UTF-8''%FF%FE.mp4; filename=fb.mp4", "fb.mp4"),
        ("attachment; filename*=no-quotes.mp4; filename=fb.mp4", "fb.mp4"),
        ("attachment; filename*=UTF-8''; filename=fb.mp4", "fb.mp4"),
        # case-insensitive names, any order, whitespace, other parameters
        ('ATTACHMENT; FILENAME="Up.mp4"', "Up.mp4"),
        ("attachment; FileName*=UTF-8''x.mp4", "x.mp4"),
        ('attachment; size=123; filename="x.mp4"; creation-date="Wed, 12 Feb 1997 16:29:51 -0500"', "x.mp4"),
        ('attachment ;  filename = "x.mp4" ', "x.mp4"),
        ('attachment; xfilename="bad.mp4"; filename="good.mp4"', "good.mp4"),
        ('attachment; filename="first.mp4"; filename="second.mp4"', "first.mp4"),
        # quoted strings: escapes and semicolons
        (r'attachment; filename="say \"hi\"; ok.mp4"', 'say "hi"; ok.mp4'),
        (r'attachment; filename="back\\slash.mp4"', "back\\slash.mp4"),
        ('attachment; note="a;filename=trap.mp4"; filename="real.mp4"', "real.mp4"),
        ('attachment; filename="unterminated.mp4', "unterminated.mp4"),
        # returned raw: sanitising is choose_filename's job
        ('attachment; filename="../../etc/passwd"', "../../etc/passwd"),
    ],
)
def test_filename_from_content_disposition(header: str | None, expected: str | None) -> None:
    assert filename_from_content_disposition(header) == expected


# --------------------------------------------------------------------------- filename_from_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://e.com/a/b/clip.mp4?x=1#f", "clip.mp4"),
        ("https://e.com/clip.mp4#frag/other.mp4", "clip.mp4"),
        ("https://e.com/", None),
        ("https://e.com", None),
        ("https://e.com/?file=x.mp4", None),
        ("https://e.com/dir/", "dir"),
        ("https://e.com//double//", "double"),
        ("https://e.com/na%C3%AFve%20clip.mp4", "naïve clip.mp4"),
        ("https://e.com/%FF.mp4", "\ufffd.mp4"),
        ("https://e.com/..%2F..%2Fetc%2Fpasswd", "../../etc/passwd"),
        ("http://[::1/x", None),
    ],
)
def test_filename_from_url(url: str, expected: str | None) -> None:
    assert filename_from_url(url) == expected


# --------------------------------------------------------------------------- choose_filename


@pytest.mark.parametrize(
    ("url", "content_disposition", "expected"),
    [
        ("https://e.com/a/clip.mp4?sig=1", None, "clip.mp4"),
        ("https://e.com/a/clip.mp4", 'attachment; filename="cd.mp4"', "cd.mp4"),
        ("https://e.com/a/clip.mp4", "attachment; filename=\"cd.mp4\"; filename*=UTF-8''star.mp4", "star.mp4"),
        ("https://e.com/a/clip.mp4", 'attachment; filename=".."', "clip.mp4"),  # unusable header name
        ("https://e.com/a/clip.mp4", "attachment", "clip.mp4"),
        ("https://e.com/", None, None),
        ("https://e.com/", 'attachment; filename="..."', None),
        ("https://e.com/..%2F..%2Fetc%2Fpasswd", None, "passwd"),
        ("https://e.com/x", 'attachment; filename="../../etc/passwd"', "passwd"),
        ("https://e.com/x", 'attachment; filename="C:\\\\evil\\\\CON.mp4"', "_CON.mp4"),
        ("https://e.com/x", "attachment; filename*=UTF-8''.%2E%2Fna%C3%AFve.mp4", "naïve.mp4"),
        ("https://e.com/%0Aevil%00.mp4", None, "evil.mp4"),
        ("https://e.com/watch", None, "watch"),
        ("https://e.com/.mp4", None, "video.mp4"),  # a bare extension gets the default stem
        ("https://e.com/x", 'attachment; filename=".webm"', "video.webm"),
    ],
)
def test_choose_filename(url: str, content_disposition: str | None, expected: str | None) -> None:
    assert choose_filename(url, content_disposition) == expected


def test_choose_filename_uses_given_default_stem_for_bare_extension() -> None:
    assert choose_filename("https://e.com/.mp4", None, default_stem="clip") == "clip.mp4"


def test_choose_filename_truncates_long_names() -> None:
    url = "https://e.com/" + "%C3%A9" * 300 + ".mp4"
    name = choose_filename(url, None)
    assert name is not None and name.endswith(".mp4")
    assert len(name.encode("utf-8")) <= LIMIT


def test_choose_filename_truncates_a_long_content_disposition_name() -> None:
    name = choose_filename("https://e.com/x", "attachment; filename*=UTF-8''" + "%E4%B8%AD" * 100 + ".webm")
    assert name == "中" * ((LIMIT - 5) // 3) + ".webm"


# --------------------------------------------------------------------------- server_filename


def test_server_filename_cuts_again_after_adding_the_sniffed_extension() -> None:
    url = "https://e.com/" + "a" * 300  # no extension: the sniffed one is added
    name = server_filename(url, None, ".mp4")
    assert name == "a" * (LIMIT - 4) + ".mp4"


@pytest.mark.parametrize(
    ("url", "disposition", "extension", "expected"),
    [
        ("https://e.com/clip", None, ".mp4", "clip.mp4"),
        ("https://e.com/clip.webm", None, ".mp4", "clip.webm"),
        ("https://e.com/", None, ".mp4", "video.mp4"),
        ("https://e.com/x", 'attachment; filename="' + "b" * LIMIT + '"', ".mp4", "b" * (LIMIT - 4) + ".mp4"),
    ],
)
def test_server_filename(url: str, disposition: str | None, extension: str, expected: str) -> None:
    assert server_filename(url, disposition, extension) == expected


# --------------------------------------------------------------------------- module hygiene


def test_module_imports_only_stdlib() -> None:
    tree = ast.parse(Path(_urls.__file__).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            roots = [(node.module or "").split(".")[0]]
        else:
            continue
        for root in roots:
            assert root in sys.stdlib_module_names or root == "__future__", root
