"""Showing a video in a notebook: inline as a widget when small, by reference when large.

Small videos go to an ``ipywidgets.Video``, whose bytes travel to the browser as one
binary comm buffer (no base64). Large ones are never read: a ``<video>`` element points
at the file relative to the notebook, and Jupyter serves it with byte ranges, so seeking
fetches only what is needed. A file in a format browsers cannot play (AVI, FLV, MKV,
MPEG-TS, WMV, ...) is first given a copy that plays, by :func:`vidnb.make_playable`
(once: the copy is kept beside it), and the copy is shown.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union
from urllib.parse import quote

import ipywidgets

from .._errors import MissingDependencyError
from .._fmt import human_bytes
from .._playable import make_playable
from .._progress import ProgressOption
from .._result import DownloadResult
from .._sniff import SNIFF_BYTES, VideoFormat, sniff
from .._storage import open_remote, remote_url
from ._posters import media_errors

Source = Union[DownloadResult, str, "os.PathLike[str]", bytes, bytearray, memoryview]


@dataclass(frozen=True)
class PreviewNote:
    """A message shown instead of (or under) a player: why the video is shown as it is.

    Attributes
    ----------
    text : str
        The message.
    level : str
        "info" (shown by reference) or "error" (nothing can be shown).
    """

    text: str
    level: str = "info"

    def _repr_html_(self) -> str:
        colour = "#b00020" if self.level == "error" else "#555"
        return f'<div class="vidnb-note" style="color:{colour};font-size:90%">{html.escape(self.text)}</div>'

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self.text, "text/html": self._repr_html_()}

    def __repr__(self) -> str:
        return f"PreviewNote({self.text!r})"


@dataclass(frozen=True)
class ReferencePreview:
    """A ``<video>`` pointing at a file that Jupyter serves; the kernel reads none of it.

    Attributes
    ----------
    src : str
        The URL-quoted path, relative to the notebook's folder.
    note : PreviewNote
        Why the video is shown by reference.
    """

    src: str
    mime: str
    note: PreviewNote
    width: int | None = None
    autoplay: bool = False
    loop: bool = False
    muted: bool = False

    def _repr_html_(self) -> str:
        attrs = ["controls"]
        attrs += [a for a, on in (("autoplay", self.autoplay), ("loop", self.loop), ("muted", self.muted)) if on]
        if self.width:
            attrs.append(f'width="{int(self.width)}"')
        src = html.escape(self.src, quote=True)
        return (
            f'<video class="vidnb-video" {" ".join(attrs)}><source src="{src}" type="{self.mime}">'
            f"Your browser cannot show this video.</video>{self.note._repr_html_()}"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": f"<video {self.src}> ({self.note.text})", "text/html": self._repr_html_()}


@dataclass(frozen=True)
class Look:
    """How a player looks: width in pixels and the ``<video>`` options."""

    width: int | None = None
    autoplay: bool = False
    loop: bool = False
    muted: bool = False


def preview(
    source: Source,
    *,
    width: int | None = None,
    autoplay: bool = False,
    loop: bool = False,
    muted: bool = False,
    embed_max_bytes: int | None = None,
) -> ipywidgets.Video | ReferencePreview | PreviewNote:
    """Show a video in the notebook: put it last in a cell, or pass it to ``display()``.

    A file browsers cannot play as it is (AVI, FLV, WMV, MKV, MPEG-TS, an HLS ``.ts``, ...)
    first gets a copy that plays, made by :func:`vidnb.make_playable` with a progress bar:
    ``<stem>.playable.mp4`` (streams copied, seconds even for a large file) or
    ``<stem>.playable.webm`` (re-encoded to VP9/Opus), beside the file. It is made once: the
    next preview finds it and plays it at once.

    Parameters
    ----------
    source : DownloadResult, str, Path or bytes
        A finished download, a file, or the video's bytes. A download to object storage
        (or an object's URL, ``"s3://..."``) is fetched and embedded when it is within the
        inline limit; a larger one cannot be shown by reference (nothing serves it to the
        browser), and a note says so.
    width : int, optional
        Player width in pixels.
    autoplay, loop, muted : bool
        Player options. ``muted`` applies to players shown by reference (``ipywidgets.Video``
        has no such option); browsers only autoplay muted videos.
    embed_max_bytes : int, optional
        Largest video sent inline; default ``vidnb.widgets.EMBED_MAX_BYTES`` (25 MiB).

    Returns
    -------
    ipywidgets.Video
        For a playable video (or its playable copy) up to the limit: its bytes go to the
        browser as a binary buffer.
    ReferencePreview
        For a larger file under the notebook's folder: a ``<video>`` Jupyter serves with
        byte ranges, with a one-line note saying why.
    PreviewNote
        When nothing can be shown: bytes that are not a video, a large file outside the
        notebook's folder, large bytes (save them to a file first), a file whose playable
        copy could not be made (the note says why; without PyAV: ``pip install av``).
        Nothing is raised for these.

    Raises
    ------
    vidnb.DestinationError
        The file does not exist or cannot be read.

    Examples
    --------
    >>> result = await vidnb.download(url, "videos/")   # doctest: +SKIP
    >>> vidnb.preview(result, width=480)                 # doctest: +SKIP
    >>> vidnb.preview("videos/talk.ts")                  # makes videos/talk.playable.mp4 once  # doctest: +SKIP
    """
    limit = embed_limit(embed_max_bytes)
    look = Look(width, autoplay, loop, muted)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _from_bytes(bytes(source), limit, look)
    remote = _remote_source(source)
    if remote is not None:
        return _from_object(*remote, limit, look)
    path = source_path(source)
    size, data = _read_for_preview(path, limit)
    fmt = sniff(data[:SNIFF_BYTES])
    if fmt is None:
        return _not_a_video(str(path))
    if not fmt.browser_playable:
        made = playable_copy(path, fmt, size, limit, progress="auto")
        if isinstance(made, PreviewNote):
            return made
        return show_file(made, limit, look, made_from=path)
    return _shown(path, size, data, fmt, limit, look)


def source_path(source: DownloadResult | str | os.PathLike[str]) -> Path:
    """The file a path-like source or a download's result names."""
    return Path(source.path if isinstance(source, DownloadResult) else source).expanduser()


def _remote_source(source: DownloadResult | str | os.PathLike[str]) -> tuple[str, Mapping[str, Any] | None] | None:
    """The URL (and storage options) of a source on object storage, or None for a local one."""
    if isinstance(source, DownloadResult):
        return (source.path, source.storage_options) if isinstance(source.path, str) else None
    url = remote_url(source)
    return (url, None) if url is not None else None


def _from_object(url: str, options: Mapping[str, Any] | None, limit: int, look: Look) -> ipywidgets.Video | PreviewNote:
    """An object on object storage: fetched and embedded when small; nothing serves it by reference."""
    f, size = open_remote(url, options)
    with f:
        if size > limit:
            return PreviewNote(
                f"{url} is {human_bytes(size)}, over the {human_bytes(limit)} inline limit, and on object storage: "
                "a preview by reference needs a file Jupyter serves, so download it into the notebook's folder "
                "and preview that (or pass a larger embed_max_bytes=).",
                "error",
            )
        data = f.read()
    fmt = sniff(data[:SNIFF_BYTES])
    if fmt is None:
        return _not_a_video(url)
    if not fmt.browser_playable:
        return PreviewNote(
            f"{url} is {fmt.name.upper()} video, which browsers cannot play as it is; download it to a local "
            "folder and preview that: vidnb then makes a copy that plays.",
            "error",
        )
    return _widget(data, fmt, look)


def needs_copy(path: Path) -> tuple[int, VideoFormat] | None:
    """The file's size and format when it is a video browsers cannot play as it is (else None).

    Raises :class:`vidnb.DestinationError` when the file cannot be read.
    """
    size, head = _read_for_preview(path, 0)
    fmt = sniff(head[:SNIFF_BYTES])
    return (size, fmt) if fmt is not None and not fmt.browser_playable else None


def playable_copy(path: Path, fmt: VideoFormat, size: int, limit: int, progress: ProgressOption) -> Path | PreviewNote:
    """Make (or find) the copy of ``path`` that browsers play; a note saying why not when it cannot be."""
    what = f"{path} is {fmt.name.upper()} video, which browsers cannot play as it is"
    if size > limit and _relative_to_cwd(path) is None:
        # Its copy would land beside it, just as unreachable for Jupyter: say so before any work.
        return PreviewNote(
            f"{what}, and at {human_bytes(size)} (over the {human_bytes(limit)} inline limit) outside the "
            f"notebook's folder ({Path.cwd()}), which Jupyter cannot serve: move it under that folder and "
            "preview it again.",
            "error",
        )
    try:
        return make_playable(path, progress=progress)
    except MissingDependencyError:
        return PreviewNote(f"{what}; vidnb makes a copy that plays with PyAV: pip install av", "error")
    except media_errors() as exc:
        return PreviewNote(
            f"{path} starts like {fmt.name.upper()} video, which browsers cannot play as it is, but no copy "
            f"that plays could be made from it: {exc}",
            "error",
        )


def show_file(
    path: Path, limit: int, look: Look, made_from: Path | None = None
) -> ipywidgets.Video | ReferencePreview | PreviewNote:
    """Show a file browsers play: inline up to ``limit`` bytes, else by reference."""
    size, data = _read_for_preview(path, limit)
    fmt = sniff(data[:SNIFF_BYTES])
    if fmt is None or not fmt.browser_playable:  # a copy that still does not play: say so, never loop
        return PreviewNote(f"{path} was made to play in browsers, but it is not a format they play.", "error")
    return _shown(path, size, data, fmt, limit, look, made_from)


def _shown(
    path: Path, size: int, data: bytes, fmt: VideoFormat, limit: int, look: Look, made_from: Path | None = None
) -> ipywidgets.Video | ReferencePreview | PreviewNote:
    if size <= limit:
        return _widget(data, fmt, look)
    rel = _relative_to_cwd(path)
    if rel is None:
        return PreviewNote(
            f"{path} is {human_bytes(size)}, over the {human_bytes(limit)} inline limit, and outside the "
            f"notebook's folder ({Path.cwd()}), which Jupyter cannot serve: move it under that folder "
            "(or download into a folder there) and preview it again.",
            "error",
        )
    text = (
        f"Shown by reference: {human_bytes(size)} is over the {human_bytes(limit)} inline limit, so Jupyter "
        "streams the file instead of the kernel sending it (it plays while the file stays in place)."
    )
    if made_from is not None:
        text += f" It is the copy of {made_from.name} that browsers play, kept beside it."
    return ReferencePreview(quote(rel.as_posix()), fmt.mime, PreviewNote(text), look.width, look.autoplay,
                            look.loop, look.muted)  # fmt: skip


def embed_limit(embed_max_bytes: int | None) -> int:
    """The inline limit in bytes: ``embed_max_bytes`` checked, or ``vidnb.widgets.EMBED_MAX_BYTES``."""
    if embed_max_bytes is None:
        from . import EMBED_MAX_BYTES as current  # the package attribute, which users may set

        return int(current)
    if not isinstance(embed_max_bytes, int) or embed_max_bytes < 0:
        raise ValueError(f"embed_max_bytes must be a number of bytes >= 0, not {embed_max_bytes!r}")
    return embed_max_bytes


def _read_for_preview(path: Path, limit: int) -> tuple[int, bytes]:
    """The file's size, and all its bytes when it is small enough to embed, else its first ones
    (one open: the bytes embedded are the bytes sniffed, and a vanished file is a typed error)."""
    from .._read import reading

    with reading(path), open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        return size, f.read() if size <= limit else f.read(SNIFF_BYTES)


def _not_a_video(what: str) -> PreviewNote:
    return PreviewNote(f"{what} is not a video vidnb recognises, so there is nothing to play.", "error")


def _from_bytes(data: bytes, limit: int, look: Look) -> ipywidgets.Video | PreviewNote:
    fmt = sniff(data[:SNIFF_BYTES])
    if fmt is None:
        return _not_a_video("These bytes")
    if not fmt.browser_playable:
        return PreviewNote(
            f"These bytes are {fmt.name.upper()} video, which browsers cannot play as it is. Save them to a file "
            "and preview the path: vidnb then makes a copy that plays.",
            "error",
        )
    if len(data) > limit:
        return PreviewNote(
            f"These bytes are {human_bytes(len(data))}, over the {human_bytes(limit)} inline limit. Save them "
            "to a file under the notebook's folder and preview the path, or pass a larger embed_max_bytes=.",
            "error",
        )
    return _widget(data, fmt, look)


def _widget(data: bytes, fmt: VideoFormat, look: Look) -> ipywidgets.Video:
    # format is the MIME subtype the frontend builds its blob type from ("mp4", "webm", "ogg", ...).
    video = ipywidgets.Video(
        value=data, format=fmt.mime.split("/", 1)[1], autoplay=look.autoplay, loop=look.loop, controls=True
    )
    if look.width:
        video.width = str(int(look.width))
    video.add_class("vidnb-video")
    return video


def _relative_to_cwd(path: Path) -> Path | None:
    """The path relative to the kernel's cwd (the notebook's folder), or None if outside it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return None
