"""URL checking, redaction for logs, and safe local file names from server data.

Pure functions on strings (stdlib only): nothing here touches the network or disk.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from pathlib import Path, PurePath
from urllib.parse import unquote, urlsplit

from ._errors import InvalidURLError

__all__ = [
    "validate_url",
    "redact_url",
    "safe_filename",
    "name_beside",
    "filename_from_content_disposition",
    "filename_from_url",
    "choose_filename",
    "server_filename",
    "NAME_MAX_BYTES",
    "LONGEST_SIDE_SUFFIX",
    "SERVER_NAME_MAX_BYTES",
]

#: The longest file name most file systems take, in bytes: ext4, XFS, Btrfs, ZFS, APFS (NTFS
#: and exFAT count 255 UTF-16 units, never more than the UTF-8 bytes). A constant rather than
#: ``os.pathconf(folder, "PC_NAME_MAX")``: names are chosen here without a folder in hand,
#: Windows has no pathconf, and a stacked file system (eCryptfs) reports the one below it.
NAME_MAX_BYTES = 255
#: The longest suffix vidnb adds to a destination's name for the files it keeps beside it,
#: as vidnb/_files.py makes them: ``.part`` (the bytes and the lock), ``.part.json`` (the
#: resume record), ``.part.json.tmp`` (the record being written, then renamed over it) and
#: ``.part.lock`` (the lock on Windows). A new, longer suffix there must be named here.
LONGEST_SIDE_SUFFIX = ".part.json.tmp"
#: How long a name a server suggests may be (241 bytes): every file vidnb makes from it then fits.
SERVER_NAME_MAX_BYTES = NAME_MAX_BYTES - len(LONGEST_SIDE_SUFFIX.encode("utf-8"))

_EXAMPLE = "Give a full URL such as https://example.com/video.mp4"
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
# "host:8080/x" looks like a scheme to urlsplit; a number after the colon means a forgotten scheme.
_HOST_PORT_NO_SCHEME = re.compile(r"[A-Za-z0-9.\-]+:[0-9]+(?:[/?#]|$)")
_PREFIX = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.\-]*:)?//")
_LOG_UNSAFE = re.compile(r"[\x00-\x20\x7f]")
_WINDOWS_INVALID = re.compile(r'[<>:"|?*]')
# Bidi overrides let "evil\u202egpj.exe" display as "evilexe.jpg".
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"{dev}{n}" for dev in ("COM", "LPT") for n in "123456789\u00b9\u00b2\u00b3"]
)
_BARE_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,5}")
# A word-like extension before the last one (".audio.ts", ".tar.gz") is kept with it by a cut.
_INNER_EXTENSION = re.compile(r"\.[A-Za-z]{1,8}$")
# Longest extension a cut keeps; a longer "extension" is more likely part of a title.
_MAX_EXTENSION_BYTES = 16
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x1f\x7f\s]")


def validate_url(url: str) -> str:
    """Check that `url` is an absolute http(s) URL vidnb can fetch.

    Parameters
    ----------
    url : str
        The URL as the user gave it; surrounding whitespace is allowed.

    Returns
    -------
    str
        The URL with surrounding whitespace removed, otherwise unchanged.

    Raises
    ------
    InvalidURLError
        If the URL is not a string, is empty, contains control characters or spaces,
        is not http/https, has no host, or has a port outside 1..65535. The message
        and ``exc.url`` show the URL redacted by :func:`redact_url`.
    """
    if not isinstance(url, str):
        raise InvalidURLError(f"URL must be a string, not {type(url).__name__}. {_EXAMPLE}")
    s = url.strip()
    if not s:
        raise InvalidURLError(f"URL is empty. {_EXAMPLE}", s)

    def fail(problem: str, advice: str = _EXAMPLE) -> InvalidURLError:
        shown = redact_url(s)
        return InvalidURLError(f"{problem}: {shown!r}. {advice}", shown)

    # One regex pass finds whether there is anything to point at (a batch checks thousands).
    bad = _CONTROL_OR_SPACE.search(s)
    for i, ch in enumerate(s[bad.start() :] if bad else "", bad.start() if bad else 0):
        if ord(ch) < 0x20 or ord(ch) == 0x7F:
            raise fail(
                f"URL contains the control character {ch!r} at position {i}",
                "Remove it (copy-pasted URLs often carry a line break or tab).",
            )
        if ch.isspace():
            # Quote it as typed (the redacted form encodes the very spaces being pointed at).
            shown = redact_url(s)
            typed = shown.replace("%20", " ") if ch == " " else shown
            raise InvalidURLError(
                f"URL contains a space ({ch!r}) at position {i}: {typed!r}. Percent-encode spaces as %20.", shown
            )

    scheme = _SCHEME.match(s)
    name = scheme.group(1).lower() if scheme else ""
    if name not in ("http", "https"):
        if not scheme or _HOST_PORT_NO_SCHEME.match(s):
            raise fail("URL has no scheme; only http:// and https:// URLs are supported", "Add https:// in front.")
        raise fail(f"URL scheme '{name}:' is not supported; only http:// and https:// URLs are supported")
    try:
        parts = urlsplit(s)
    except ValueError as exc:  # bad IPv6 brackets and similar
        raise fail(f"URL is malformed ({exc})", "Check for typos.") from None
    host, port = _split_port(parts.netloc.rpartition("@")[2])
    if not host or host == "[]":
        raise fail("URL has no host")
    if ":" in host and not host.startswith("["):
        raise fail("URL host contains ':'", "Put IPv6 addresses in brackets, as in http://[::1]:8080/video.mp4")
    if port is not None:
        if not (port.isascii() and port.isdigit()):
            # Not echoed: a password containing "/" makes its tail look like a port.
            raise fail(
                "URL has a port that is empty or not a number",
                "A port is a number from 1 to 65535, as in https://example.com:8080/video.mp4",
            )
        # The length check comes first: int() refuses strings over 4300 digits.
        if len(port.lstrip("0")) > 5 or not 1 <= int(port) <= 65535:
            number = port if len(port) <= 10 else port[:10] + "…"
            raise fail(f"URL has port {number}, outside 1..65535", "Check the port number.")
    return s


def _split_port(hostport: str) -> tuple[str, str | None]:
    """Split ``host:port`` (IPv6 in brackets allowed); port is None when absent, '' when empty."""
    if hostport.startswith("["):
        host, _, rest = hostport.partition("]")
        if not rest:
            return host + "]", None
        return host + "]", rest[1:] if rest.startswith(":") else rest
    host, sep, port = hostport.rpartition(":")
    return (host, port) if sep else (hostport, None)


def redact_url(url: str) -> str:
    """Return `url` safe to log: no credentials, no query values, no fragment.

    Parameters
    ----------
    url : str
        Any string; it need not be a valid URL.

    Returns
    -------
    str
        ``https://user:pw@host/a/b.mp4?sig=x#t`` becomes ``https://***@host/a/b.mp4?…``.
        Control characters and spaces are percent-encoded so a URL cannot forge log lines.
        Ambiguous authorities (such as a password containing ``#``) collapse to
        ``https://***``; anything unusable gives ``"<invalid url>"``. Never raises.
    """
    try:
        if not isinstance(url, str):
            return "<invalid url>"
        s = url.strip()
        m = _PREFIX.match(s)
        prefix = m.group(0) if m else ""
        rest = s[len(prefix) :]
        # Only "/" and "\" reliably end the authority: users paste passwords containing "?", "#" or "@".
        end = min((i for i in (rest.find("/"), rest.find("\\")) if i >= 0), default=len(rest))
        authority, userinfo = rest[:end], ""
        if "@" in authority:
            at = authority.rfind("@")
            if any(c in authority[:at] for c in "?#"):
                return _LOG_UNSAFE.sub(_pct, prefix + "***")
            authority, userinfo = authority[at + 1 :], "***@"
        elif "@" in rest[end:] and not _port_looks_valid(authority.split("?")[0].split("#")[0]):
            # "u:pa/ss@host": the "port" is a password fragment.
            return _LOG_UNSAFE.sub(_pct, prefix + "***")
        cut = min((i for i in (authority.find("?"), authority.find("#")) if i >= 0), default=len(authority))
        tail = authority[cut:] + rest[end:]
        host = authority[:cut]
        path, _, query = tail.split("#", 1)[0].partition("?")
        out = prefix + userinfo + host + path + ("?…" if query else "")
        return _LOG_UNSAFE.sub(_pct, out)
    except Exception:  # redaction runs inside error handling; it must not raise
        return "<invalid url>"


def _pct(m: re.Match[str]) -> str:
    return f"%{ord(m.group(0)):02X}"


def _port_looks_valid(hostport: str) -> bool:
    _, port = _split_port(hostport)
    return port is None or port == "" or (port.isascii() and port.isdigit())


def name_beside(path: Path, stem: str, suffix: str) -> Path:
    """``stem + suffix`` beside ``path`` (a working file), the name cut like a server's so that
    its own ``.part`` and record fit the file system too.

    >>> name_beside(Path("v/talk.mp4"), "talk", ".hls.ts")
    PosixPath('v/talk.hls.ts')
    """
    return path.with_name(safe_filename(stem + suffix) or "video" + suffix)


def safe_filename(name: str, *, max_bytes: int = SERVER_NAME_MAX_BYTES) -> str | None:
    """Turn a file name suggested by a server into one safe to create locally.

    Parameters
    ----------
    name : str
        Raw name, e.g. from Content-Disposition or the URL path (already percent-decoded
        by the caller if wanted; no decoding happens here).
    max_bytes : int, optional
        Maximum length of the result in UTF-8 bytes. The default, :data:`SERVER_NAME_MAX_BYTES`,
        leaves room for the suffixes of the files vidnb keeps beside a download
        (:data:`LONGEST_SIDE_SUFFIX`) within the 255 bytes of common file systems.

    Returns
    -------
    str or None
        The last path component with control and bidi characters removed, undecodable
        bytes (lone surrogates, as aiohttp decodes raw header bytes) replaced by U+FFFD,
        ``<>:"|?*`` replaced by ``_``, leading dots/spaces and trailing dots/spaces
        stripped, Windows device names prefixed with ``_``, and truncated to
        `max_bytes` keeping the extension (``.mp4``; ``.audio.ts``: one short word
        before it too) and whole characters. None when nothing usable is left (empty,
        ``.``, ``..``).

    Raises
    ------
    ValueError
        If `max_bytes` is less than 1.
    """
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be at least 1, got {max_bytes}")
    if not isinstance(name, str):
        return None
    base = re.split(r"[/\\]", name)[-1]
    base = "".join(_clean_char(c) for c in base if c not in _BIDI)
    base = _WINDOWS_INVALID.sub("_", base).lstrip(". ").rstrip(". ")
    if base in ("", ".", ".."):
        return None
    base = _truncate(base, max_bytes)
    # Windows ignores the extension and trailing spaces: "nul .mp4" still opens the NUL device.
    if base.split(".", 1)[0].rstrip(" ").upper() in _WINDOWS_RESERVED:
        base = _truncate("_" + base, max_bytes)
    return base or None


def _clean_char(c: str) -> str:
    cat = unicodedata.category(c)
    if cat == "Cc":
        return ""
    # A lone surrogate (a raw byte aiohttp could not decode) would be written to disk as that
    # byte, giving a name that is not UTF-8, and it cannot be encoded to measure the name.
    return "\ufffd" if cat == "Cs" else c


def _truncate(name: str, max_bytes: int) -> str:
    """Cut `name` to `max_bytes` UTF-8 bytes, keeping a short extension and whole characters."""
    if len(name.encode("utf-8")) <= max_bytes:
        return name
    tail = _extension(name, min(_MAX_EXTENSION_BYTES, max_bytes - 1))
    stem = name[: len(name) - len(tail)]
    suffix = tail.encode("utf-8")
    # "ignore" drops a multibyte character cut in half instead of producing U+FFFD.
    kept = stem.encode("utf-8")[: max_bytes - len(suffix)].decode("utf-8", "ignore")
    kept = kept.rstrip(". ") if not suffix else kept
    return (kept + suffix.decode("utf-8")) if kept else ""


def _extension(name: str, cap: int) -> str:
    """What a cut of `name` keeps at its end: the last extension, with one word-like extension
    before it when both fit `cap` bytes (HLS audio is ``talk.audio.ts`` beside ``talk.ts``;
    cutting it to ``talk.au.ts``, or even to ``talk.ts``, would lose what it is); "" when the
    last one is longer than `cap` or there is no stem before it."""
    stem, dot, ext = name.rpartition(".")
    last = dot + ext
    if not stem or len(last.encode("utf-8")) > cap:
        return ""
    inner = _INNER_EXTENSION.search(stem)
    if inner is not None and inner.start() > 0 and len((inner.group() + last).encode("utf-8")) <= cap:
        return inner.group() + last
    return last


def filename_from_content_disposition(header: str | None) -> str | None:
    """Extract the file name from a Content-Disposition header (RFC 6266).

    Parameters
    ----------
    header : str or None
        The header value, e.g. ``attachment; filename*=UTF-8''na%C3%AFve.mp4``.

    Returns
    -------
    str or None
        The raw, unsanitised name: ``filename*`` (RFC 5987, utf-8 or iso-8859-1) when
        present and decodable, else ``filename`` (quoted or token). None if neither.
    """
    if not isinstance(header, str):
        return None
    params: dict[str, str] = {}
    for part in _split_outside_quotes(header):
        key, eq, value = part.partition("=")
        if not eq:
            continue  # the disposition type ("attachment") or junk
        key = key.strip().lower()
        params.setdefault(key, _unquote_header_value(value.strip()))

    extended = params.get("filename*")
    if extended:
        charset, q1, rest = extended.partition("'")
        _lang, q2, encoded = rest.partition("'")
        if q1 and q2:
            try:
                codec = codecs.lookup(charset.strip()).name
                if codec in ("utf-8", "iso8859-1"):
                    name = unquote(encoded, encoding=codec, errors="strict")
                    if name:
                        return name
            except (LookupError, UnicodeDecodeError):
                pass  # fall back to the plain filename parameter
    return params.get("filename") or None


def _split_outside_quotes(header: str) -> list[str]:
    parts: list[str] = []
    buf: list[str] = []
    quoted = escaped = False
    for ch in header:
        if escaped:
            escaped = False
        elif quoted and ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == ";" and not quoted:
            parts.append("".join(buf))
            buf = []
            continue
        buf.append(ch)
    parts.append("".join(buf))
    return parts


def _unquote_header_value(value: str) -> str:
    if not value.startswith('"'):
        return value
    out: list[str] = []
    escaped = False
    for ch in value[1:]:
        if escaped:
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            break
        else:
            out.append(ch)
    return "".join(out)


def filename_from_url(url: str) -> str | None:
    """Return the last non-empty path segment of `url`, percent-decoded.

    Parameters
    ----------
    url : str
        An http(s) URL.

    Returns
    -------
    str or None
        The decoded segment (UTF-8, undecodable bytes replaced), unsanitised; None if
        the path is empty or ``/`` or the URL cannot be parsed.
    """
    try:
        path = urlsplit(url.strip()).path
    except (ValueError, AttributeError):
        return None
    segments = [seg for seg in path.split("/") if seg]
    if not segments:
        return None
    return unquote(segments[-1], encoding="utf-8", errors="replace") or None


def choose_filename(url: str, content_disposition: str | None, default_stem: str = "video") -> str | None:
    """Pick a safe local file name from the response headers or the URL.

    Parameters
    ----------
    url : str
        The final URL (after redirects).
    content_disposition : str or None
        The Content-Disposition header, if any.
    default_stem : str, optional
        Used only when the server's name is a bare extension (``.mp4`` becomes
        ``video.mp4``).

    Returns
    -------
    str or None
        The first candidate (Content-Disposition, then URL path) that survives
        :func:`safe_filename`; None if neither does, and the caller then uses
        `default_stem` plus the sniffed extension.
    """
    for raw in (filename_from_content_disposition(content_disposition), filename_from_url(url)):
        if raw is None:
            continue
        last = re.split(r"[/\\]", raw)[-1].strip()
        if _BARE_EXTENSION.fullmatch(last):
            raw = default_stem + last
        name = safe_filename(raw)
        if name:
            return name
    return None


def server_filename(url: str, content_disposition: str | None, extension: str | None) -> str:
    """The name a download into a folder is saved under: :func:`choose_filename`, else
    ``video``; plus ``extension`` (the sniffed one) when the name has none, the name cut
    again if need be so that it still fits :data:`SERVER_NAME_MAX_BYTES`."""
    name = choose_filename(url, content_disposition)
    if name is None:
        return "video" + (extension or "")
    if extension and not PurePath(name).suffix:
        name = _truncate(name + extension, SERVER_NAME_MAX_BYTES)
    return name
