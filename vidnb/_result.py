"""What a download returns: :class:`DownloadResult`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import DestinationError
from ._fmt import human_bytes, human_rate

if TYPE_CHECKING:
    from ._videoinfo import VideoInfo

__all__ = ["DownloadResult", "local_file", "path_name"]


@dataclass(frozen=True)
class DownloadResult:
    """What :func:`vidnb.download` saved.

    Attributes
    ----------
    path : Path or str
        Where the video is: a ``Path`` on the local disk, or the object's URL as a string
        (``"s3://bucket/videos/clip.mp4"``) for a destination on object storage.
    url : str
        The final URL, after redirects.
    size : int
        Bytes in the file.
    content_type : str or None
        The server's Content-Type.
    format : str or None
        The container sniffed from the first bytes ("mp4", "webm", ...).
    elapsed : float
        Seconds this call took.
    attempts : int
        1 plus the requests that were tried again (0 when skipped).
    resumed : bool
        True when bytes from an earlier, interrupted download were kept.
    skipped : bool
        True when the file was already complete and nothing was fetched.
    sha256 : str or None
        The file's sha256, when one was asked for and checked.
    audio : Path, str or None
        For HLS streams whose audio comes separately: the audio file saved beside ``path``
        (a URL when ``path`` is one).
    storage_options : mapping or None
        For a remote ``path``: the ``storage_options`` it was written with, which
        :attr:`info` and ``vidnb.preview`` read it with.
    page_url : str or None
        For a web page's video: the page asked for (``url`` is then the media's URL).
    title : str or None
        The page's title for its video, where the page gives one.
    duration : float or None
        Seconds of video, as the page says (``info.duration`` reads the file itself).
    thumbnail_url : str or None
        The page's picture for the video, where it names one.
    info : VideoInfo or None
        What :func:`vidnb.probe` says of the file (duration, size, codecs, playable), read
        at first access (milliseconds, with PyAV) and kept; None when the file is not a
        video or PyAV is not installed (a file that is gone raises DestinationError).
        Downloads never compute it.

    Examples
    --------
    >>> r = DownloadResult(Path("clip.mp4"), "https://example.com/clip.mp4", 1000, "video/mp4", "mp4", 0.5)
    >>> r.speed
    2000.0
    """

    path: Path | str
    url: str
    size: int
    content_type: str | None
    format: str | None
    elapsed: float
    attempts: int = 1
    resumed: bool = False
    skipped: bool = False
    sha256: str | None = field(default=None, repr=False)
    audio: Path | str | None = field(default=None, repr=False)
    storage_options: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)
    page_url: str | None = field(default=None, repr=False)
    title: str | None = field(default=None, repr=False)
    duration: float | None = field(default=None, repr=False)
    thumbnail_url: str | None = field(default=None, repr=False)

    @cached_property
    def info(self) -> VideoInfo | None:
        """What :func:`vidnb.probe` says of the file, or None when it is not a video or PyAV is missing."""
        # Imported here: PyAV is loaded by the first look at a file, never by a download.
        from ._errors import MissingDependencyError, NotAVideoError
        from ._probe import probe

        try:
            return probe(self.path, storage_options=self.storage_options)
        except (NotAVideoError, MissingDependencyError):
            return None

    @property
    def speed(self) -> float:
        """Average bytes per second of this call (0 when skipped)."""
        return 0.0 if self.skipped or self.elapsed <= 0 else self.size / self.elapsed

    def __repr__(self) -> str:
        how = "skipped, already complete" if self.skipped else f"{self.elapsed:.2f} s, {human_rate(self.speed)}"
        extra = ", resumed" if self.resumed else ""
        extra += f", {self.attempts} attempts" if self.attempts > 1 else ""
        return (f"DownloadResult({str(self.path)!r}, {human_bytes(self.size)}, "
                f"{self.format or 'unknown format'}, {how}{extra})")


def local_file(path: Path | str) -> Path:
    """A result's ``path`` as a file on this disk; an object's URL raises :class:`DestinationError` saying so.

    >>> local_file(Path("clip.mp4"))
    PosixPath('clip.mp4')
    """
    if isinstance(path, str):
        raise DestinationError(
            f"{path} is on object storage, not on this disk, and this needs a local file: download it to a "
            "local folder (or copy it with fsspec) first.",
            None,
        )
    return path


def path_name(path: Path | str) -> str:
    """The file name of a result's ``path``, local or an object's URL.

    >>> path_name("s3://bucket/videos/a.mp4"), path_name(Path("videos/b.mp4"))
    ('a.mp4', 'b.mp4')
    """
    return path.name if isinstance(path, Path) else path.rstrip("/").rpartition("/")[2]
