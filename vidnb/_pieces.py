"""Byte ranges of one file: the pieces a multi-connection download is cut into (pure).

A :class:`Segment` is ``[start, end)`` of the file with ``done`` bytes of it on disk. The
resume record keeps them as ``[start, end, done]`` triples.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "Segment", "plan", "plan_after_probe", "spread", "from_record", "from_single", "same_validators",
    "MIN_SPLIT", "ALIGN", "align",
]

#: No piece is cut smaller than this (aria2's ``-k`` is 1 MiB; tests use small files).
MIN_SPLIT = 512 * 1024
#: Cut points are rounded to this, so pieces start on page boundaries.
ALIGN = 64 * 1024


@dataclass
class Segment:
    """Bytes ``[start, end)`` of the file, of which the first ``done`` are on disk."""

    start: int
    end: int
    done: int = 0
    #: A worker is fetching this piece (not saved).
    busy: bool = False
    #: The end of the bytes its worker's request asked for (not saved): a piece is never cut
    #: before it, since those bytes are already on their way and would be thrown away.
    asked: int = 0

    @property
    def pos(self) -> int:
        return self.start + self.done

    @property
    def left(self) -> int:
        return self.end - self.start - self.done


def plan(total: int, n: int) -> list[Segment]:
    """Cut ``total`` bytes into up to ``n`` equal pieces of at least ``MIN_SPLIT`` bytes.

    >>> [(s.start, s.end) for s in plan(2 * MIN_SPLIT, 4)]
    [(0, 524288), (524288, 1048576)]
    """
    n = max(1, min(n, total // MIN_SPLIT))
    cuts = [0] + [align(total * i // n) for i in range(1, n)] + [total]
    return [Segment(a, b) for a, b in zip(cuts, cuts[1:], strict=False) if b > a]


def plan_after_probe(total: int, probe: int, n: int) -> list[Segment]:
    """The pieces of a fresh multi-connection download whose first request asked for the
    first ``probe`` bytes: that piece, then the rest cut for ``n`` connections.

    >>> [(s.start, s.end) for s in plan_after_probe(3 * MIN_SPLIT, MIN_SPLIT, 2)]
    [(0, 524288), (524288, 1048576), (1048576, 1572864)]
    """
    return [Segment(0, probe)] + [Segment(probe + s.start, probe + s.end) for s in plan(total - probe, n)]


def align(x: int) -> int:
    return x - x % ALIGN if x > ALIGN else x


def from_record(raw: list[list[int]] | None, total: int | None, part_size: int) -> list[Segment] | None:
    """The pieces saved in a record, or None when they do not describe this ``.part`` exactly."""
    if not raw or total is None or part_size != total:
        return None
    segs = sorted((Segment(a, b, d) for a, b, d in raw), key=lambda s: s.start)
    pos = 0
    for s in segs:
        if s.start != pos or s.end <= s.start or not 0 <= s.done <= s.end - s.start:
            return None
        pos = s.end
    return segs if pos == total else None


def from_single(total: int, done: int) -> list[Segment]:
    """The pieces of a ``.part`` written front to back by one stream, ``done`` bytes so far."""
    segs = [Segment(0, done, done)] if done else []
    return segs + [Segment(done, total)] if done < total else segs


def same_validators(etag: str | None, last_modified: str | None, headers: Mapping[str, str]) -> bool:
    """Whether a response's validators say it is the same file as the recorded ones.

    Any recorded validator the response also carries must match: the ETag by the weak
    comparison of RFC 9110 8.8.3.2 (``W/"x"`` and ``"x"`` are the same file: Apache gives a
    file modified in the last second the weak form, later the strong one), and Last-Modified
    exactly, even when the ETags match (tornado keeps serving a rewritten file's old ETag,
    while its Last-Modified does change).

    >>> same_validators('W/"a"', None, {"ETag": '"a"'})
    True
    >>> same_validators('"a"', "d1", {"ETag": '"a"', "Last-Modified": "d2"})
    False
    """
    got = headers.get("ETag")
    if etag and got and _opaque(etag) != _opaque(got):
        return False
    lm = headers.get("Last-Modified")
    return not (last_modified and lm and last_modified != lm)


def _opaque(etag: str) -> str:
    return etag[2:] if etag.startswith("W/") else etag


def spread(segments: list[Segment], n: int) -> list[Segment]:
    """Cut unfinished pieces before any of them is fetched, until ``n`` have bytes left (or
    none is worth cutting): every connection then has its own piece from the start, and no
    piece in flight is cut later, which would throw away the bytes already on the wire.

    >>> [(s.start, s.end, s.done) for s in spread([Segment(0, 4 * MIN_SPLIT, 0)], 2)]
    [(0, 1048576, 0), (1048576, 2097152, 0)]
    """
    segs = sorted(segments, key=lambda s: s.start)
    while sum(1 for s in segs if s.left) < n:
        best = max(segs, key=lambda s: s.left)
        if best.left < 2 * MIN_SPLIT:
            break
        mid = align(best.pos + best.left // 2)
        if mid - best.pos < MIN_SPLIT or best.end - mid < MIN_SPLIT:
            break
        segs.insert(segs.index(best) + 1, Segment(mid, best.end, 0))
        best.end = mid
    return segs
