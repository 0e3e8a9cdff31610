"""Byte ranges of one file: the pieces a multi-connection download is cut into (pure).

A :class:`Segment` is ``[start, end)`` of the file with ``done`` bytes of it on disk. The
resume record keeps them as ``[start, end, done]`` triples.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Segment", "plan", "from_record", "from_single", "same_validators", "MIN_SPLIT", "ALIGN", "align"]

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
    """False when the response's ETag (or, without ETags, Last-Modified) differs from the saved one."""
    got = headers.get("ETag")
    if etag and got and etag != got:
        return False
    lm = headers.get("Last-Modified")
    if not etag and last_modified and lm and last_modified != lm:
        return False
    return True
