"""What a web page shows, asked of yt-dlp's extractors (which never download anything here).

yt-dlp knows how to find the media behind thousands of sites and generic pages. vidnb uses
that knowledge only: it asks for the page's description (``extract_info(download=False)``),
and fetches the media with its own engine. So yt-dlp never writes a file, never runs a
post-processor or an external program (a format selector is always given, so it never probes
for ffmpeg to decide whether it could merge), and only ever sees http(s) URLs that passed
vidnb's URL check; every media URL it hands back is checked the same way before any request.

yt-dlp is an optional extra, imported when the first page is met. One ``YoutubeDL`` is kept
per process: its first extraction compiles the URL patterns of every extractor (most of a
second), later ones take tens of milliseconds. It is blocking and not thread-safe, so calls
run one at a time on a daemon thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._errors import (
    HTTPStatusError,
    InvalidURLError,
    NetworkError,
    NotAVideoError,
    PageEntry,
    SeveralVideosError,
)
from ._files import DaemonThreadPool
from ._options import Options
from ._urls import redact_url, validate_url
from ._variant import VariantChoice

__all__ = ["MediaFormat", "PageMedia", "extract", "extract_every", "selector_for", "INSTALL_HINT", "FORMAT_SORT"]

log = logging.getLogger("vidnb")

INSTALL_HINT = "pip install 'vidnb[sites]'"

#: How formats of equal quality are ordered: resolution and frame rate first, then the ones
#: that end up playing in every browser without transcoding (H.264 and AAC, in MP4/M4A).
FORMAT_SORT = ["res", "fps", "vcodec:h264", "acodec:aac", "ext:mp4:m4a"]

_PROTOCOLS = {"http", "https", "m3u8", "m3u8_native", "http_dash_segments"}


@dataclass(frozen=True)
class MediaFormat:
    """One format of a page's video, as yt-dlp describes it, with its URLs checked."""

    format_id: str
    url: str
    protocol: str
    ext: str | None = None
    vcodec: str | None = None
    acodec: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    tbr: float | None = None
    filesize: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    #: DASH: every fragment's absolute URL in order (the initialisation segment first).
    fragments: tuple[str, ...] = ()
    fragment_durations: tuple[float, ...] = ()

    # yt-dlp's codec fields: None when unknown, "none" when the format has no such stream.
    @property
    def has_video(self) -> bool:
        return self.vcodec != "none"

    @property
    def has_audio(self) -> bool:
        return self.acodec != "none"

    @property
    def resolution(self) -> str:
        if self.width and self.height:
            return f"{self.width}x{self.height}"
        if self.height:
            return f"{self.height}p"
        return "audio only" if not self.has_video and self.has_audio else "?"

    @property
    def codecs(self) -> str:
        return "+".join(c for c in (self.vcodec, self.acodec) if c and c != "none") or "?"

    def describe(self) -> str:
        return f"{self.format_id} ({self.resolution}, {self.codecs}, {self.protocol})"


@dataclass(frozen=True)
class PageMedia:
    """What a page shows: its title and the format(s) chosen (video and audio, or one of both)."""

    page_url: str
    title: str | None
    duration: float | None
    thumbnail_url: str | None
    extractor: str
    chosen: tuple[MediaFormat, ...]
    formats: tuple[MediaFormat, ...]


def selector_for(opts: Options) -> str:
    """The yt-dlp format selector for ``format=`` or ``quality=``.

    >>> from vidnb._options import make_options
    >>> selector_for(make_options(quality="720p"))
    'bv*[height<=720]+ba/b[height<=720]/wv*+ba/w'
    """
    if opts.format is not None:
        return opts.format
    q: VariantChoice = opts.quality
    if q.mode == "worst":
        return "wv*+wa/w"
    if q.mode == "max_height":
        # Nothing short enough: the smallest there is, as HLS's variant choice does.
        return f"bv*[height<={q.limit}]+ba/b[height<={q.limit}]/wv*+ba/w"
    if q.mode == "max_bandwidth":
        kbps = q.limit / 1000
        return f"b[tbr<={kbps:g}]/bv*[tbr<={kbps:g}]+ba/w"
    return "bv*+ba/b"


async def extract(url: str, opts: Options) -> PageMedia:
    """Ask yt-dlp what the page at ``url`` shows, and choose what to fetch.

    Raises
    ------
    NotAVideoError
        yt-dlp is not installed (the message says how to install it), or the page has no video.
    SeveralVideosError
        The page shows several videos and ``item=`` does not say which.
    InvalidURLError
        A media URL the page gives is not one vidnb fetches (``file:``, another scheme).
    """
    # The import and the first extraction take most of a second: off the loop, like the rest.
    found = await asyncio.wrap_future(_pool().submit(_extract_blocking, url, opts, False))
    return found[0]


async def extract_every(url: str, opts: Options) -> list[PageMedia]:
    """Every video the page at ``url`` shows (one for most pages), each with its format chosen."""
    return await asyncio.wrap_future(_pool().submit(_extract_blocking, url, opts, True))


# ---------------------------------------------------------------------------------- yt-dlp


_lock = threading.Lock()  # creating the extractor and its thread
_call_lock = threading.Lock()  # one extraction at a time (YoutubeDL is not thread-safe)
_ydl: Any = None
_threads: DaemonThreadPool | None = None


def _pool() -> DaemonThreadPool:
    global _threads
    with _lock:
        if _threads is None:
            _threads = DaemonThreadPool(1, "vidnb-pages")
        return _threads


class _Logger:
    """yt-dlp's messages, at DEBUG on vidnb's logger (its errors come back as exceptions)."""

    def debug(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    info = debug
    warning = debug
    error = debug


def _extractor() -> Any:
    global _ydl
    with _lock:
        if _ydl is None:
            try:
                import yt_dlp
            except ImportError:
                raise NotAVideoError(
                    f"This URL is a web page, not a video file. To download the video a page shows, vidnb "
                    f"uses yt-dlp's extractors, which are not installed: {INSTALL_HINT}"
                ) from None
            _ydl = _checked_extractor(yt_dlp)({
                "quiet": True,
                "no_warnings": True,
                "logger": _Logger(),
                "noprogress": True,
                "noplaylist": True,
                "skip_download": True,
                "simulate": True,
                "retries": 0,
                "extractor_retries": 0,
                "fragment_retries": 0,
                "cachedir": False,
                "color": "never",
                "format_sort": FORMAT_SORT,
                # Never a local file, whatever a page links to.
                "enable_file_urls": False,
                "check_formats": False,
                "postprocessors": [],
            })
        return _ydl


def _checked_extractor(yt_dlp: Any) -> Any:
    """A ``YoutubeDL`` whose every request (the page, manifests it reads, redirects it is told
    to follow) passes vidnb's URL check first: no ``file:``, ``ftp:`` or other scheme."""

    class CheckedYoutubeDL(yt_dlp.YoutubeDL):  # type: ignore[misc]
        def urlopen(self, req: Any) -> Any:
            url = req if isinstance(req, str) else getattr(req, "url", None) or req.get_full_url()
            if not str(url).startswith("data:"):
                validate_url(str(url))
            return super().urlopen(req)

    return CheckedYoutubeDL


def _extract_blocking(url: str, opts: Options, every: bool) -> list[PageMedia]:
    ydl = _extractor()
    import yt_dlp

    # One call at a time: the selector, headers and timeout are this call's.
    with _call_lock:
        ydl.format_selector = _build_selector(ydl, opts)
        ydl.params["socket_timeout"] = opts.timeout.sock_read or opts.timeout.sock_connect or 30
        saved = dict(ydl.params["http_headers"])
        ydl.params["http_headers"].update(opts.headers)
        try:
            info = ydl.sanitize_info(ydl.extract_info(url, download=False))
        except yt_dlp.utils.DownloadError as exc:
            raise _translate(exc, url) from None
        finally:
            ydl.params["http_headers"].clear()
            ydl.params["http_headers"].update(saved)
        if every and info.get("_type") == "playlist":
            videos = [dict(e) for e in info.get("entries") or [] if e]
            if not videos:
                raise NotAVideoError(f"{redact_url(url)} is a web page without a video vidnb can find.")
        else:
            videos = [_one_video(info, url, opts.item)]
        several = info.get("_type") == "playlist" and len([e for e in info.get("entries") or [] if e]) > 1
        return [_media(v, url, ydl, numbered=several) for v in videos]


def _media(info: dict[str, Any], url: str, ydl: Any, *, numbered: bool = False) -> PageMedia:
    formats = tuple(f for f in (_format(d) for d in info.get("formats") or [info]) if f is not None)
    chosen_raw = info.get("requested_formats") or [info]
    chosen = tuple(_with_cookies(_checked(_format(d, strict=True), d, url), ydl) for d in chosen_raw)
    extractor = str(info.get("extractor_key") or info.get("extractor") or "?")
    title = _text(info.get("title"))
    if not numbered and title and title.endswith(" (1)") and str(info.get("id") or "").endswith("-1"):
        # yt-dlp numbers the videos of a generic page ("Title (1)"); a page's only video is the page's.
        title = title[:-4]
    duration = info.get("duration")
    if not isinstance(duration, (int, float)):
        # A DASH manifest without a stated duration: the fragments' sum.
        duration = max((sum(f.fragment_durations) for f in chosen), default=0.0) or None
    log.info("%s: extractor %s answered; chose format %s", redact_url(url), extractor,
             " + ".join(f.describe() for f in chosen))
    return PageMedia(
        page_url=url,
        title=title,
        duration=float(duration) if duration else None,
        thumbnail_url=_safe_url(info.get("thumbnail")),
        extractor=extractor,
        chosen=chosen,
        formats=formats,
    )


def _build_selector(ydl: Any, opts: Options) -> Any:
    spec = selector_for(opts)
    try:
        return ydl.build_format_selector(spec)
    except (SyntaxError, ValueError) as exc:
        raise ValueError(f"format={spec!r} is not a yt-dlp format selector: {exc}") from None


def _translate(exc: Exception, url: str) -> Exception:
    """yt-dlp's DownloadError as vidnb's error: no video, an HTTP status, or a network failure."""
    import yt_dlp

    cause = exc.exc_info[1] if getattr(exc, "exc_info", None) else None  # type: ignore[attr-defined]
    shown = redact_url(url)
    if isinstance(cause, yt_dlp.utils.UnsupportedError):
        return NotAVideoError(
            f"{shown} is not a video: it is an HTML page, and yt-dlp's extractors found no video on it (a "
            "login or error page is a common cause). Check the URL, or pass require_video=False to save it anyway."
        )
    inner = getattr(cause, "orig_msg", None) or getattr(cause, "cause", None)
    status = getattr(getattr(cause, "cause", None), "status", None)
    if isinstance(status, int):
        return HTTPStatusError(status, shown)
    text = str(inner or exc).removeprefix("ERROR: ")
    if "requested format is not available" in text.lower():
        return NotAVideoError(f"{shown}: no format of its video matches the format= or quality= asked for.")
    if isinstance(cause, yt_dlp.utils.ExtractorError) and getattr(cause, "expected", False):
        return NotAVideoError(f"{shown}: {text}")
    return NetworkError(f"{shown}: yt-dlp could not read the page: {text}")


def _one_video(info: dict[str, Any], url: str, item: int | None) -> dict[str, Any]:
    """The video asked for, from a page that may show several."""
    if info.get("_type") != "playlist":
        if item not in (None, 1):
            raise NotAVideoError(f"{redact_url(url)} shows one video; item={item} is not there.")
        return info
    entries = [e for e in info.get("entries") or [] if e]
    if not entries:
        raise NotAVideoError(f"{redact_url(url)} is a web page without a video vidnb can find.")
    if item is not None:
        if item > len(entries):
            raise NotAVideoError(f"{redact_url(url)} shows {len(entries)} videos; there is no item={item}.")
        return dict(entries[item - 1])
    if len(entries) == 1:
        only = dict(entries[0])
        # yt-dlp numbers the videos of a page ("Title (1)"); a page's only video is the page's.
        if info.get("title") and only.get("title") == f"{info['title']} (1)":
            only["title"] = info["title"]
        return only
    listed = page_entries(info)
    lines = "\n".join(
        f"  item={i}: {e.title or 'untitled'}" + (f" ({e.duration:.0f} s)" if e.duration else "")
        for i, e in enumerate(listed, 1)
    )
    raise SeveralVideosError(
        f"{redact_url(url)} shows {len(listed)} videos:\n{lines}\n"
        "Pick one with item=N, or download all of them with download_many(page_url, dest_dir).",
        listed,
    )


def page_entries(info: dict[str, Any]) -> list[PageEntry]:
    return [
        PageEntry(_text(e.get("title")), float(e["duration"]) if isinstance(e.get("duration"), (int, float)) else None,
                  _safe_url(e.get("webpage_url") or e.get("url")))
        for e in info.get("entries") or [] if e
    ]


def _format(d: Mapping[str, Any], *, strict: bool = False) -> MediaFormat | None:
    """A format as vidnb describes it; None (or, when ``strict``, an error) for one it cannot fetch."""
    protocol = str(d.get("protocol") or "https")
    url = d.get("url")
    if not isinstance(url, str) or (protocol not in _PROTOCOLS and not strict):
        return None
    fragments: tuple[str, ...] = ()
    durations: tuple[float, ...] = ()
    if protocol == "http_dash_segments":
        base = d.get("fragment_base_url") or url
        from urllib.parse import urljoin

        frags = d.get("fragments") or []
        fragments = tuple(f.get("url") or urljoin(base, f["path"]) for f in frags)
        durations = tuple(float(f.get("duration") or 0.0) for f in frags)
    headers = {str(k): str(v) for k, v in (d.get("http_headers") or {}).items()}
    vcodec, acodec = d.get("vcodec"), d.get("acodec")
    return MediaFormat(
        format_id=str(d.get("format_id") or "0"),
        url=url,
        protocol=protocol,
        ext=_text(d.get("ext")),
        vcodec=None if vcodec is None else str(vcodec),
        acodec=None if acodec is None else str(acodec),
        width=_int(d.get("width")),
        height=_int(d.get("height")),
        fps=float(d["fps"]) if isinstance(d.get("fps"), (int, float)) else None,
        tbr=float(d["tbr"]) if isinstance(d.get("tbr"), (int, float)) else None,
        filesize=_int(d.get("filesize")),
        headers=headers,
        fragments=fragments,
        fragment_durations=durations,
    )


def _checked(fmt: MediaFormat | None, d: Mapping[str, Any], page: str) -> MediaFormat:
    """The chosen format, once every URL in it passed vidnb's URL check."""
    raw = d.get("url")
    if fmt is None or fmt.protocol not in _PROTOCOLS:
        raise InvalidURLError(
            f"{redact_url(page)} points to its video at {redact_url(str(raw))!s} "
            f"({d.get('protocol') or 'unknown'} protocol), which vidnb does not fetch: only http:// and "
            "https:// URLs are.", str(raw),
        )
    for u in (fmt.url, *fmt.fragments):
        try:
            validate_url(u)
        except InvalidURLError as exc:
            raise InvalidURLError(f"{redact_url(page)} points to its video at a URL vidnb does not fetch: {exc}",
                                  u) from None
    return fmt


def _with_cookies(fmt: MediaFormat, ydl: Any) -> MediaFormat:
    """The format with the cookies yt-dlp holds for its URL (set by the page), as its requests send them."""
    try:
        header = ydl.cookiejar.get_cookie_header(fmt.url)
    except Exception:  # noqa: BLE001 - a cookie jar that cannot answer just sends none
        return fmt
    return dataclasses.replace(fmt, headers={**fmt.headers, "Cookie": str(header)}) if header else fmt


def _safe_url(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return validate_url(value)
    except InvalidURLError:
        return None


def _text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
