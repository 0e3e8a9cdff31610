"""What a download returns: :class:`DownloadResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from ._fmt import human_bytes, human_rate

if TYPE_CHECKING:
    from ._videoinfo import VideoInfo

__all__ = ["DownloadResult"]


@dataclass(frozen=True)
class DownloadResult:
    """What :func:`vidnb.download` saved.

    Attributes
    ----------
    path : Path
        Where the video is.
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
    audio : Path or None
        For HLS streams whose audio comes separately: the audio file saved beside ``path``.
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

    path: Path
    url: str
    size: int
    content_type: str | None
    format: str | None
    elapsed: float
    attempts: int = 1
    resumed: bool = False
    skipped: bool = False
    sha256: str | None = field(default=None, repr=False)
    audio: Path | None = field(default=None, repr=False)

    @cached_property
    def info(self) -> VideoInfo | None:
        """What :func:`vidnb.probe` says of the file, or None when it is not a video or PyAV is missing."""
        # Imported here: PyAV is loaded by the first look at a file, never by a download.
        from ._errors import MissingDependencyError, NotAVideoError
        from ._probe import probe

        try:
            return probe(self.path)
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
