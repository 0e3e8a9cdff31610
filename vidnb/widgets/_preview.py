"""Showing a video in a notebook: inline as a widget when small, by reference when large.

Small videos go to an ``ipywidgets.Video``, whose bytes travel to the browser as one
binary comm buffer (no base64). Large ones are never read: a ``<video>`` element points
at the file relative to the notebook, and Jupyter serves it with byte ranges, so seeking
fetches only what is needed. Formats browsers cannot play get a message, not a broken player.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union
from urllib.parse import quote

import ipywidgets

from .._fmt import human_bytes
from .._result import DownloadResult
from .._sniff import SNIFF_BYTES, VideoFormat, sniff

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

    Parameters
    ----------
    source : DownloadResult, str, Path or bytes
        A finished download, a file, or the video's bytes.
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
        For a playable video up to the limit: its bytes go to the browser as a binary buffer.
    ReferencePreview
        For a larger file under the notebook's folder: a ``<video>`` Jupyter serves with
        byte ranges, with a one-line note saying why.
    PreviewNote
        When nothing can be shown: a format browsers cannot play (AVI, FLV, MPEG-TS, WMV,
        ...), bytes that are not a video, a large file outside the notebook's folder, or
        large bytes (save them to a file first). Nothing is raised for these.

    Raises
    ------
    vidnb.DestinationError
        The file does not exist or cannot be read.

    Examples
    --------
    >>> result = await vidnb.download(url, "videos/")   # doctest: +SKIP
    >>> vidnb.preview(result, width=480)                 # doctest: +SKIP
    """
    limit = _limit(embed_max_bytes)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _from_bytes(bytes(source), limit, width, autoplay, loop)
    path = Path(source.path if isinstance(source, DownloadResult) else source).expanduser()
    size, data = _read_for_preview(path, limit)
    fmt = sniff(data[:SNIFF_BYTES])
    refusal = _unplayable(fmt, str(path))
    if refusal is not None:
        return refusal
    assert fmt is not None
    if size <= limit:
        return _widget(data, fmt, width, autoplay, loop)
    rel = _relative_to_cwd(path)
    if rel is None:
        return PreviewNote(
            f"{path} is {human_bytes(size)}, over the {human_bytes(limit)} inline limit, and outside the "
            f"notebook's folder ({Path.cwd()}), which Jupyter cannot serve: move it under that folder "
            "(or download into a folder there) and preview it again.",
            "error",
        )
    note = PreviewNote(
        f"Shown by reference: {human_bytes(size)} is over the {human_bytes(limit)} inline limit, so Jupyter "
        "streams the file instead of the kernel sending it (it plays while the file stays in place)."
    )
    return ReferencePreview(quote(rel.as_posix()), fmt.mime, note, width, autoplay, loop, muted)


def _limit(embed_max_bytes: int | None) -> int:
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


def _unplayable(fmt: VideoFormat | None, what: str) -> PreviewNote | None:
    if fmt is None:
        return PreviewNote(f"{what} is not a video vidnb recognises, so there is nothing to play.", "error")
    if not fmt.browser_playable:
        return PreviewNote(
            f"{what} is {fmt.name.upper()} video, which browsers cannot play. Convert it first, e.g. "
            "`ffmpeg -i in -c:v libx264 -c:a aac out.mp4`, then preview the MP4.",
            "error",
        )
    return None


def _from_bytes(
    data: bytes, limit: int, width: int | None, autoplay: bool, loop: bool
) -> ipywidgets.Video | PreviewNote:
    fmt = sniff(data[:SNIFF_BYTES])
    refusal = _unplayable(fmt, "These bytes")
    if refusal is not None:
        return refusal
    assert fmt is not None
    if len(data) > limit:
        return PreviewNote(
            f"These bytes are {human_bytes(len(data))}, over the {human_bytes(limit)} inline limit. Save them "
            "to a file under the notebook's folder and preview the path, or pass a larger embed_max_bytes=.",
            "error",
        )
    return _widget(data, fmt, width, autoplay, loop)


def _widget(data: bytes, fmt: VideoFormat, width: int | None, autoplay: bool, loop: bool) -> ipywidgets.Video:
    # format is the MIME subtype the frontend builds its blob type from ("mp4", "webm", "ogg", ...).
    video = ipywidgets.Video(value=data, format=fmt.mime.split("/", 1)[1], autoplay=autoplay, loop=loop, controls=True)
    if width:
        video.width = str(int(width))
    video.add_class("vidnb-video")
    return video


def _relative_to_cwd(path: Path) -> Path | None:
    """The path relative to the kernel's cwd (the notebook's folder), or None if outside it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return None
