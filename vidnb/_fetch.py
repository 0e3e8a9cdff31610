"""The interface between the download lifecycle and the fetchers.

The lifecycle (:mod:`vidnb._transfer`) owns everything around the bytes: the lock, the
final check, the rename, the result, the log and the bar's last word. A fetcher only
writes bytes into the :class:`Part` it is handed and reports what it fetched as a
:class:`Fetched`; it never locks, renames or builds a result. A new way of fetching bytes
(DASH, a page's media) is one class with a ``fetch`` method.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from . import _files
from ._options import Options
from ._progress import Tracker
from ._retry import Retries

__all__ = ["Part", "Fetched", "HandOff", "Fetcher"]

log = logging.getLogger("vidnb")


@dataclass(frozen=True)
class Fetched:
    """What a fetcher put in the ``.part``.

    Attributes
    ----------
    size : int
        Bytes in the ``.part``, all of the file.
    url : str
        The final URL, after redirects.
    content_type, format : str or None
        The server's Content-Type; the container sniffed from the first bytes.
    resumed : bool
        Whether bytes from an earlier run were kept.
    sha256 : str or None
        The hex digest, when the fetcher hashed the bytes as it wrote them in order;
        otherwise the lifecycle hashes the finished ``.part`` if ``sha256=`` was given.
    expected_size : int or None
        What the server announced; the lifecycle refuses a ``.part`` of another size.
    """

    size: int
    url: str
    content_type: str | None
    format: str | None
    resumed: bool = False
    sha256: str | None = None
    expected_size: int | None = None


@dataclass(frozen=True)
class HandOff:
    """The body is not this fetcher's to fetch: an HLS playlist behind a plain URL, or a web page
    (or DASH manifest) whose video yt-dlp's extractors find."""

    url: str
    kind: Literal["hls", "page"] = "hls"


class Part:
    """The locked ``.part`` of one destination, as the lifecycle hands it to a fetcher."""

    def __init__(
        self, dest: Path, lock: _files.DestinationLock, opts: Options, tracker: Tracker, retries: Retries
    ) -> None:
        self.dest = dest
        self.path = lock.part
        self.lock = lock
        self.opts = opts
        self.tracker = tracker
        self.retries = retries
        #: Whether a resume record may be on disk: one left by an earlier run (the ``.part``
        #: existed before the lock), or one this download wrote.
        self.recorded = not lock.created
        #: A record was there that cannot be read: its ``.part`` must not be continued.
        self.unreadable_record = False

    @property
    def fd(self) -> int | None:
        """The locked ``.part``'s descriptor (read and write), or None where the lock is a separate file."""
        return self.lock.part_fd

    def size(self) -> int:
        return self.lock.part_size()

    async def load_record(self) -> _files.PartState | None:
        """The resume record of an earlier run, or None (no record, or ``resume=False``).

        Sets :attr:`unreadable_record` when a record is there but cannot be read.
        """
        if not self.recorded or not self.opts.resume:
            return None
        state, found = await _files.load_state(self.dest)
        self.unreadable_record = found and state is None
        return state

    def save_record(self, state: _files.PartState) -> None:
        """Write the resume record now (blocking: it is small, and the moments it is written at
        would otherwise wait for a thread hop). A failure is logged, not raised: without the
        record an interrupted download only starts over."""
        try:
            _files.write_state(self.dest, state)
            self.recorded = True
        except OSError as exc:
            log.warning("could not save the resume record for %s: %s", self.path, exc)

    async def save_record_async(self, state: _files.PartState) -> None:
        """:meth:`save_record` off the loop, for records written while bytes keep arriving."""
        await _files.save_state(self.dest, state)
        self.recorded = True

    def forget_record(self) -> None:
        """Remove the record before new bytes replace the ones it describes: a process killed
        before the new record is written must not leave new bytes under the old record."""
        if self.recorded:
            _files.remove_quietly(_files.sidecar_path(self.dest))
            self.recorded = False

    def discard(self) -> None:
        """Forget the bytes and the record (wrong bytes, refused content, a restart from zero)."""
        _files.discard_part(self.dest)
        self.recorded = False


class Fetcher(Protocol):
    """Writes one file's bytes into a :class:`Part`."""

    async def fetch(self, part: Part) -> Fetched | HandOff:
        """Fill ``part`` (resuming what its record allows) and say what was fetched."""
        ...
