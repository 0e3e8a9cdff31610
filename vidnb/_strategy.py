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

__all__ = ["Resumable", "Answer", "Decision", "Step", "choose", "resumable", "is_hls_url"]

Step = Literal[
    "hls",  # hand the URL to the HLS fetcher
    "resume_ranges",  # fetch the pieces a multi-connection record says are missing (no first request)
    "split_single",  # a one-stream .part and several connections asked for: share out the rest
    "request",  # send a request: from ``offset`` (with If-Range), a probe for ranges, or plain
    "again",  # this answer was to another question (sent before the record was known): ask again
    "complete",  # 416 to a resume, and the .part already holds the whole file
    "restart",  # the .part cannot be continued: discard it and ask again from zero
    "stream",  # stream this response into the .part from ``offset``
    "ranges",  # this 206 to the probe starts a multi-connection download
    "refuse_partial",  # a 206 to a request without Range: nothing to trust
]


@dataclass(frozen=True)
class Resumable:
    """What an earlier run left that may be continued."""

    kind: Literal["stream", "ranges"]
    #: Bytes on disk in order (one stream); 0 for ranges.
    offset: int
    total: int | None
    validator: str | None
    etag: str | None = None
    last_modified: str | None = None
    #: For ``kind="ranges"``: the pieces, checked against the ``.part``.
    segments: tuple[Segment, ...] = ()


@dataclass(frozen=True)
class Answer:
    """The parts of a response the choice depends on."""

    status: int
    #: Where the request asked to start: None without a Range header, 0 for the probe ``bytes=0-``.
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


def is_hls_url(url: str) -> bool:
    """True for URLs whose path names a playlist (``.m3u8``)."""
    return urlsplit(url).path.lower().endswith((".m3u8", ".m3u"))


def resumable(
    *, kind: str | None, url: str, record_url: str | None, total: int | None, validator: str | None,
    etag: str | None, last_modified: str | None, segments: list[list[int]] | None, part_size: int,
) -> Resumable | None:
    """What of a ``.part`` of ``part_size`` bytes may be continued for ``url``, given its record.

    Nothing without a record of this URL, a validator to check the server's file against, and
    a size that fits; an HLS record is never continued as a file.
    """
    if kind is None or part_size == 0 or record_url != url or not validator:
        return None
    if total is not None and part_size > total:
        return None
    if kind == "ranges":
        segs = from_record(segments, total, part_size)
        if segs is None:
            return None
        return Resumable("ranges", 0, total, validator, etag, last_modified, tuple(segs))
    if kind == "stream":
        return Resumable("stream", part_size, total, validator, etag, last_modified)
    return None


def choose(*, url: str, record: Resumable | None, answer: Answer | None, connections: Connections) -> Decision:
    """The next step of fetching ``url``; see :data:`Step`.

    >>> choose(url="https://x/a.mp4", record=None, answer=None, connections=1)
    Decision(step='request', offset=0, probe=False, if_range=None)
    """
    if answer is None:
        return _before_request(url, record, connections)
    offset = record.offset if record is not None and record.kind == "stream" else 0
    if record is not None and (record.kind == "ranges" or answer.asked_from != offset):
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
    if record is not None and record.kind == "ranges":
        return Decision("resume_ranges")
    if record is not None and record.offset:
        if connections != 1 and record.total:
            return Decision("split_single")
        return Decision("request", record.offset, if_range=record.validator)
    # A 206 to ``bytes=0-`` proves the server does ranges and tells the size; a 200 means one stream.
    return Decision("request", 0, probe=connections != 1)


def _after_resume(record: Resumable, answer: Answer, offset: int) -> Decision:
    if answer.status == 416:
        whole = answer.range_total is not None and answer.range_total == offset == record.total
        return Decision("complete") if whole else Decision("restart")
    same_file = (
        answer.status == 206
        and answer.range_start == offset
        and answer.range_total == record.total
        and answer.same_validators
    )
    if same_file:
        return Decision("stream", offset)
    if answer.status == 206:
        # Some other range came back: this body is useless; ask for the whole file.
        return Decision("restart")
    # A 200 to If-Range: the server has another file now, and this body is all of it.
    return Decision("hls") if answer.playlist else Decision("stream", 0)
