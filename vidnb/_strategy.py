"""Which way to fetch a file: one pure function of the URL, the resume record, the answer and the options.

:func:`choose` is asked before the first request (``answer=None``) and again once a response
has arrived; its :class:`Decision` says what the file fetcher does next. Nothing here touches
the network or the disk, so every combination is tested as a table (tests/test_strategy.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from ._options import Connections
from ._pieces import Segment, from_record

__all__ = [
    "Resumable", "Answer", "Decision", "Step", "choose", "resumable", "is_hls_url", "is_dash_url", "overlap",
    "OVERLAP", "PROBE",
]

#: Bytes before the end of a ``.part`` that a resume asks for again and compares with the
#: disk: a server that ignores If-Range or keeps a stale validator is caught by its bytes.
OVERLAP = 64 * 1024
#: The first request of a multi-connection download asks for this many bytes: a 206 proves
#: ranges and gives the size, and being bounded it reads nothing past its own piece. (Some
#: servers, tornado and Jupyter's /files/, answer ``bytes=0-`` with 200 but bounded ranges
#: with 206.)
PROBE = 1 << 20

Step = Literal[
    "hls",  # hand the URL to the HLS fetcher
    "page",  # a DASH manifest (.mpd): hand the URL to the page download, which reads it with yt-dlp
    "resume_ranges",  # fetch the pieces a multi-connection record says are missing (no first request)
    "split_single",  # a one-stream .part and several connections asked for: share out the rest
    "request",  # send a request: from ``offset`` less the overlap (with If-Range), a probe for ranges, or plain
    "again",  # this answer was to another question (sent before the record was known): ask again
    "restart",  # the .part cannot be continued: discard it and ask again from zero
    "stream",  # stream this response into the .part from ``offset`` (after checking the overlap)
    "ranges",  # this 206 to the probe starts a multi-connection download
    "refuse_partial",  # a 206 to a request without Range: nothing to trust
]


@dataclass(frozen=True)
class Resumable:
    """What an earlier run left that may be continued."""

    kind: Literal["stream", "ranges"]
    #: Bytes on disk in order (one stream); 0 for ranges.
    offset: int
    #: The file's size, from the record (None: a .part without a record).
    total: int | None
    if_range: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    #: For ``kind="ranges"``: the pieces, checked against the ``.part``.
    segments: tuple[Segment, ...] = ()


@dataclass(frozen=True)
class Answer:
    """The parts of a response the choice depends on."""

    status: int
    #: Where the request asked to start: None without a Range header, 0 for the probe.
    asked_from: int | None
    range_start: int | None = None
    range_total: int | None = None
    #: The response's validators match the record's (always True without a record).
    same_validators: bool = True
    #: The first bytes are an HLS playlist.
    playlist: bool = False


@dataclass(frozen=True)
class Decision:
    step: Step
    #: For "request": ask from this byte (0 and ``probe`` False: a plain request); for "stream": write from here.
    offset: int = 0
    probe: bool = False
    if_range: str | None = None


def is_dash_url(url: str) -> bool:
    """True for URLs whose path names a DASH manifest (``.mpd``)."""
    return urlsplit(url).path.lower().endswith(".mpd")


def is_hls_url(url: str) -> bool:
    """True for URLs whose path names a playlist (``.m3u8``)."""
    return urlsplit(url).path.lower().endswith((".m3u8", ".m3u"))


def overlap(offset: int) -> int:
    """Bytes before ``offset`` that a resume from ``offset`` fetches again to compare."""
    return min(OVERLAP, offset)


def resumable(
    *, kind: str | None, url: str, record_url: str | None, total: int | None, if_range: str | None,
    etag: str | None, last_modified: str | None, segments: list[list[int]] | None, part_size: int,
) -> Resumable | None:
    """What of a ``.part`` of ``part_size`` bytes may be continued for ``url``, given its record.

    ``kind`` None means no record: a ``.part`` written by one stream that stopped before its
    record was due (a process killed in its first second). Its bytes are continued like any
    other, since the overlap check compares them with the server's before anything is
    appended. A record of another URL, a size that does not fit, or an HLS record (never
    continued as a file) give nothing.
    """
    if part_size == 0:
        return None
    if kind is None:
        return Resumable("stream", part_size, None)
    if record_url != url or (total is not None and part_size > total):
        return None
    if kind == "ranges":
        segs = from_record(segments, total, part_size)
        if segs is None:
            return None
        return Resumable("ranges", 0, total, if_range, etag, last_modified, tuple(segs))
    if kind == "stream":
        return Resumable("stream", part_size, total, if_range, etag, last_modified)
    return None


def choose(*, url: str, record: Resumable | None, answer: Answer | None, connections: Connections) -> Decision:
    """The next step of fetching ``url``; see :data:`Step`.

    >>> choose(url="https://x/a.mp4", record=None, answer=None, connections=1)
    Decision(step='request', offset=0, probe=False, if_range=None)
    """
    if answer is None:
        return _before_request(url, record, connections)
    offset = record.offset if record is not None and record.kind == "stream" else 0
    asked = offset - overlap(offset) if offset else answer.asked_from
    if record is not None and (record.kind == "ranges" or answer.asked_from != asked):
        # Sent before the .part was looked at (a folder download learns its file's name from
        # this very answer): the record asks for something else.
        return Decision("again")
    if offset:
        return _after_resume(record, answer, offset)  # type: ignore[arg-type]  # offset > 0 implies a record
    if answer.playlist:
        return Decision("hls")
    if answer.status == 206:
        probed = answer.asked_from == 0 and answer.range_start == 0 and answer.range_total is not None
        return Decision("ranges") if probed else Decision("refuse_partial")
    return Decision("stream", 0)


def _before_request(url: str, record: Resumable | None, connections: Connections) -> Decision:
    if record is None and is_hls_url(url):
        return Decision("hls")
    if record is None and is_dash_url(url):
        return Decision("page")
    if record is not None and record.kind == "ranges":
        return Decision("resume_ranges")
    if record is not None and record.offset:
        if connections != 1 and record.total:
            return Decision("split_single")
        return Decision("request", record.offset, if_range=record.if_range)
    # A 206 to ``bytes=0-`` proves the server does ranges and tells the size; a 200 means one stream.
    return Decision("request", 0, probe=connections != 1)


def _after_resume(record: Resumable, answer: Answer, offset: int) -> Decision:
    if answer.status == 416:
        # Asked from before the end of the .part, so 416 means the file is shorter now.
        return Decision("restart")
    known_total = record.total if record.total is not None else answer.range_total
    same_file = (
        answer.status == 206
        and answer.range_start == offset - overlap(offset)
        and answer.range_total is not None
        and answer.range_total == known_total
        and answer.range_total >= offset
        and answer.same_validators
    )
    if same_file:
        return Decision("stream", offset)
    if answer.status == 206:
        # Some other range came back: this body is useless; ask for the whole file.
        return Decision("restart")
    # A 200: the server has another file now (If-Range), or will not do ranges for it now
    # (the same validators): either way this body is all of it, fetched once.
    return Decision("hls") if answer.playlist else Decision("stream", 0)
