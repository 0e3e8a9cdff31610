"""Multi-connection downloads: one file fetched as byte ranges, at once, into one ``.part``.

The file fetcher (:mod:`vidnb._fetch_stream`) sends the first request with ``Range: bytes=0-``.
A 206 answer proves the server does ranges and gives the total size; that response and the
rest of the work come here, to :class:`RangesFetcher`. A 200 answer means no ranges: the
file fetcher streams it as one connection.

How the work is shared
    The file is cut into :class:`Segment` ``[start, end)`` pieces, each with ``done`` bytes
    on disk. A worker (one connection) fetches ``[start + done, end)`` with one ranged GET
    and writes each chunk at its offset through the shared :class:`~vidnb.PartWriter`
    of the preallocated ``.part``. An idle worker takes a piece nobody is fetching; when
    none is left it cuts the largest unfinished piece in two and takes the back half, and
    the worker on the front half stops at the new end. That one mechanism spreads the
    initial plan, lets a fast connection help a slow one near the end, and lets ``"auto"``
    add connections at any time.

What survives an interruption
    Every ``SAVE_EVERY`` seconds, and once more when the run stops for any reason, the
    pieces go to the resume record as ``segments=[[start, end, done], ...]``. Only bytes the
    writer has written are recorded (it is flushed first), so a killed process never
    claims bytes that are not in the file. The next call asks only for what is missing.

Failures
    A piece whose connection breaks or times out (or gets a 408/429/5xx) is retried on
    its own, from where it stopped, with the call's backoff; the others keep going.
    Each 206 must start where asked and carry the same total and validators; anything
    else stops every piece, and the outcome tells the file fetcher to start over.

``connections="auto"``
    One connection first. Every ``AUTO_WINDOW`` seconds the bytes received are measured.
    A connection faster than ``FAST_CONNECTION`` is left alone: on a fast link the client
    is CPU-bound and more connections only cost. A slower one looks capped by the server
    or the path, so connections are added up to the count that would reach
    ``AUTO_TARGET_RATE`` if each new one is as fast as the current ones (at least double,
    at most ``AUTO_MAX``); after each step the rate per connection must stay at least
    ``AUTO_FLAT`` of what it was, or nothing more is added (the cap is then on the whole
    link). Nothing is added when less than ``AUTO_MIN_LEFT_S`` of work is left, nor once the
    download runs at ``AUTO_NEAR_LIMIT`` of its ``max_rate=``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass

from . import _files, _http
from ._errors import IncompleteDownloadError
from ._fetch import Part
from ._headers import raise_for_status
from ._options import AUTO_MAX, Connections, Options
from ._pieces import MIN_SPLIT, Segment, align, same_validators
from ._retry import failures_after
from ._strategy import overlap
from ._writer import PartWriter

__all__ = ["RangesFetcher", "RangesOutcome", "SAVE_EVERY"]

log = logging.getLogger("vidnb")

#: Seconds between record updates while pieces run.
SAVE_EVERY = 1.0
#: Each window costs the connections not yet opened: 0.1 s put "auto" 1.23-1.31x behind the
#: best fixed count on a 200 MiB throttled file; 0.05 s measured 0.99-1.13x. The window slides
#: by AUTO_TICK (nginx's ``limit_rate`` sends a 2.3 MiB burst within 10 ms, then nothing for
#: 100 ms). 0.02 s was faster still but moved an unthrottled 512 MiB stream on a busy 2-core
#: machine to 16 connections in 3 runs of 10 (0.05 s: none in 10).
AUTO_WINDOW = 0.05
AUTO_TICK = 0.01
#: A tick this late means the event loop was held up (the bytes of that time were not read
#: either): the measure starts again.
AUTO_STALL = 0.03
FAST_CONNECTION = 64 * 1024 * 1024
#: High on purpose: a short first window over-reads a server's initial burst, and a lower
#: target then stopped short of the count the throttle needs.
AUTO_TARGET_RATE = 1024 * 1024 * 1024
AUTO_FLAT = 0.6
AUTO_MIN_LEFT_S = 0.3
#: The first request window of a piece under ``"auto"`` (see RangesFetcher._request_end).
AUTO_REQUEST = 4 << 20
#: Near the end a request under ``"auto"`` asks for at most 1/END_GAME_SHARES of an even
#: share of the bytes not yet asked for (see RangesFetcher._end_game_window).
END_GAME_SHARES = 2
#: Under ``max_rate=``, no connection is added once the rate is this share of the limit.
AUTO_NEAR_LIMIT = 0.9


@dataclass(frozen=True)
class RangesOutcome:
    """How a multi-connection run ended."""

    final_url: str
    content_type: str | None
    #: Why the file must be fetched again from zero (the server's file changed, or its ranges
    #: are wrong), or None when every piece is in.
    restart: str | None = None
    #: The ranges came back wrong (not merely a changed file): do not use ranges again.
    mismatch: bool = False
    #: The server answered a range with the whole file and the same validators: it will not
    #: do ranges for this file now, so one stream is the way to get it.
    no_ranges: bool = False


class _Restart(Exception):
    """A piece found the file cannot be continued; it ends the run (never leaves this module)."""

    def __init__(self, reason: str, *, mismatch: bool = False, no_ranges: bool = False) -> None:
        super().__init__(reason)
        self.mismatch = mismatch
        self.no_ranges = no_ranges


class RangesFetcher:
    """Fetch the unfinished :class:`~vidnb._pieces.Segment` pieces of one file over several connections.

    Parameters
    ----------
    session : vidnb._http.Session
    url : str
        Where to send the ranged requests (the final URL after redirects, when known).
    opts : Options
        Headers, timeout and retry policy of the download.
    part : Part
        The locked ``.part`` (bytes, record, progress, retries).
    state : PartState
        URL, validators and total; ``segments`` is kept up to date here.
    segments : list of Segment
        The pieces; those with bytes left are fetched.
    connections : int or "auto"
        Workers to run at once (``"auto"``: start with one, see the module docstring).
    shown_url : str
        The URL for messages (credentials removed).
    fresh : bool
        True for a new download (the ``.part`` is truncated and preallocated).
    """

    def __init__(
        self,
        session: _http.Session,
        *,
        url: str,
        opts: Options,
        part: Part,
        state: _files.PartState,
        segments: list[Segment],
        connections: Connections,
        shown_url: str,
        fresh: bool,
    ) -> None:
        assert state.total is not None
        self.session = session
        self.url = url
        self.opts = opts
        self.part = part
        self.state = state
        self.total = state.total
        self.segments = segments
        self.auto = connections == "auto"
        self.limit = AUTO_MAX if connections == "auto" else connections
        self.tracker = part.tracker
        self.shown_url = shown_url
        self.fresh = fresh
        self.received = 0
        self.content_type: str | None = None
        self.final_url = url
        #: Piece start -> bytes before its resume point to fetch again and compare with the
        #: disk, for pieces resumed from an earlier run that have not been checked yet.
        self._checks: dict[int, int] = {} if fresh else _overlaps(segments)
        self.workers: set[asyncio.Task[None]] = set()
        #: ``"auto"``: a connection it added was refused; it adds no more.
        self.refused = False
        #: ``"auto"``: the piece of the one connection added first (its first request is short),
        #: and set once that connection has its first bytes or has failed.
        self.scout: Segment | None = None
        self.scouted = asyncio.Event()
        self._outcome: asyncio.Future[None] | None = None
        self._writer: PartWriter | None = None

    # ------------------------------------------------------------------ running

    async def run(self, first: _http.Response | None = None, head: bytes = b"") -> RangesOutcome:
        """Fetch every piece; ``first`` is an open 206 response for the first piece (with ``head`` already read).

        Raises the error of a piece that failed more than ``retry.total`` times in a row. The
        record is up to date afterwards.
        """
        loop = asyncio.get_running_loop()
        self._outcome = loop.create_future()
        if self.fresh:
            # An old record must go before the .part is emptied: a process killed in between
            # would otherwise leave that record over zeros, and the next run trust it.
            self.part.forget_record()
        self._writer = PartWriter(self.part.path, truncate=self.fresh)
        helpers: list[asyncio.Task[None]] = []
        ok = False
        try:
            self._writer.preallocate(self.total)
            await self._save()
            if first is not None:
                self.content_type = first.headers.get("Content-Type")
                self.final_url = str(first.url)
                seg = self.segments[0]
                seg.busy = True
                seg.asked = seg.end  # the probe's own piece, asked for exactly
                self._spawn(seg, first, head)
            if not self.auto:
                start = self.limit
            elif first is not None:
                start = 1
            else:
                # Resuming: the unfinished pieces already say how many connections paid off.
                start = min(AUTO_MAX, max(1, sum(1 for s in self.segments if s.left)))
            for _ in range(start - len(self.workers)):
                if not self.add_worker():
                    break
            if self.workers:
                helpers.append(asyncio.ensure_future(self._saver()))
                if self.auto:
                    helpers.append(asyncio.ensure_future(_grow(self)))
                await self._outcome
            ok = True
            return RangesOutcome(self.final_url, self.content_type)
        except _Restart as exc:
            return RangesOutcome(self.final_url, self.content_type, str(exc), exc.mismatch, exc.no_ranges)
        finally:
            pending = [*self.workers, *helpers]
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending)
            await self._close_and_save(ok)

    async def _close_and_save(self, ok: bool) -> None:
        writer = self._writer
        assert writer is not None
        try:
            await writer.close()
        except BaseException:
            # The writer failed: the bytes the pieces count may not be in the file. Keep the
            # last record, which was saved after a successful flush.
            if ok:
                raise
            return
        if not ok or any(s.left for s in self.segments):
            await self._save()

    async def _save(self) -> None:
        self.state.segments = [[s.start, s.end, s.done] for s in self.segments]
        await self.part.save_record_async(self.state)

    async def _saver(self) -> None:
        writer = self._writer
        assert writer is not None
        while True:
            await asyncio.sleep(SAVE_EVERY)
            # Snapshot first, then flush: every byte counted in the snapshot was queued
            # before the flush marker, so it is in the file when the record says so.
            snapshot = [[s.start, s.end, s.done] for s in self.segments]
            await writer.flush()
            self.state.segments = snapshot
            await self.part.save_record_async(self.state)

    # ------------------------------------------------------------------ workers

    def _spawn(
        self, seg: Segment, resp: _http.Response | None = None, head: bytes = b"", *, extra: bool = False
    ) -> None:
        task = asyncio.ensure_future(self._worker(seg, resp, head, extra))
        self.workers.add(task)
        task.add_done_callback(self._worker_done)

    def _worker_done(self, task: asyncio.Task[None]) -> None:
        self.workers.discard(task)
        outcome = self._outcome
        if outcome is None or outcome.done() or task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            outcome.set_exception(exc)
        elif not self.workers:
            outcome.set_result(None)

    def add_worker(self, *, extra: bool = False) -> bool:
        """Start a worker on a free piece (or half of the largest one); False when none is worth it.
        An ``extra`` one (``"auto"`` added it) that is refused leaves its piece to the others."""
        return self._add(extra=extra) is not None

    def _add(self, *, extra: bool) -> Segment | None:
        seg = self._next_segment()
        if seg is not None:
            self._spawn(seg, extra=extra)
        return seg

    def _next_segment(self) -> Segment | None:
        for seg in self.segments:
            if not seg.busy and seg.left > 0:
                seg.busy = True
                return seg
        return _split(self.segments)

    async def _worker(self, seg: Segment | None, resp: _http.Response | None, head: bytes, extra: bool) -> None:
        while seg is not None:
            try:
                if not await self._fetch(seg, resp, head, extra):
                    return
            finally:
                seg.busy = False
                if seg is self.scout:
                    self.scouted.set()
            resp, head = None, b""
            seg = self._next_segment()

    async def _fetch(self, seg: Segment, resp: _http.Response | None, head: bytes, extra: bool = False) -> bool:
        """Fetch what is left of ``seg``, retrying it alone on errors that may pass; False when an
        ``extra`` connection failed before its first byte while others run (the piece is theirs)."""
        failures = 0
        while seg.left > 0:
            before = seg.done
            try:
                if resp is not None:
                    try:
                        if head:
                            await self._put(seg, head)
                        await self._copy(seg, resp)
                    finally:
                        _http.drop(resp)
                        resp = None
                else:
                    await self._request(seg)
                if seg.pos < min(seg.asked, seg.end):
                    raise IncompleteDownloadError(
                        f"{self.shown_url} ended the range at byte {seg.pos}, before {seg.asked}.",
                        received=seg.pos,
                        expected=seg.asked,
                    )
            except (_Restart, asyncio.CancelledError):
                raise
            except Exception as exc:
                if extra and seg.done == before and len(self.workers) > 1:
                    # A server that allows one connection per client (429, 503, a reset):
                    # the connections that work carry on without this one.
                    log.debug("auto: an added connection failed (%s); the others take its piece", exc)
                    self.refused = True
                    self.scouted.set()
                    return False
                failures = failures_after(failures, seg.done - before)
                await self.part.retries.wait(
                    exc, failures, what=f"bytes {seg.pos}-{seg.end - 1}", url=self.shown_url, path=self.part.dest
                )
        return True

    async def _request(self, seg: Segment) -> None:
        start = seg.pos
        # A piece resumed from an earlier run first fetches again the end of what it has and
        # compares it with the disk: a server that ignores If-Range, or keeps a stale ETag,
        # is caught by its bytes.
        check = self._checks.get(seg.start, 0)
        seg.asked = end = _request_end(seg, self.auto, _end_game_window(self))
        if seg is self.scout and not seg.done:
            # Short: it shows the server takes a second connection; the rest is for those added next.
            seg.asked = end = min(end, start + MIN_SPLIT)
        async with _http.get(
            self.session, self.url, self.opts.headers, self.opts.timeout,
            byte_range=(start - check, end - 1), if_range=self.state.if_range, check_status=False,
        ) as resp:
            _check_answer(resp, self.state, start - check, self.shown_url)
            if self.content_type is None:
                self.content_type = resp.headers.get("Content-Type")
                self.final_url = str(resp.url)
            try:
                if check:
                    await self._check_overlap(seg, resp, check)
                await self._copy(seg, resp)
            finally:
                _http.drop(resp)

    async def _check_overlap(self, seg: Segment, resp: _http.Response, check: int) -> None:
        got = await _http.read_exactly(resp, check, rate=self.opts.limiter)
        if got is None:
            raise IncompleteDownloadError(f"{self.shown_url} ended the range before byte {seg.pos}.")
        if got[0] != await asyncio.to_thread(_files.read_at, self.part.path, seg.pos - check, check):
            raise _Restart(f"{self.shown_url}: the bytes before byte {seg.pos} are not the ones on disk")
        self._checks.pop(seg.start, None)
        if got[1]:
            await self._put(seg, got[1])

    async def _put(self, seg: Segment, data: _http.Chunk) -> None:
        n = min(len(data), seg.left)
        if n <= 0:
            return
        pos = seg.pos
        # Count the bytes before handing them over: a split made while write() waits for
        # room must see them as taken. write() queues them before it first yields.
        seg.done += n
        self.received += n
        if seg is self.scout:
            self.scouted.set()
        assert self._writer is not None
        await self._writer.write(pos, data if n == len(data) else data[:n])
        self.tracker.advance(n)

    async def _copy(self, seg: Segment, resp: _http.Response) -> None:
        if seg.left <= 0:
            return
        put = self._put
        async for chunk in _http.body(resp, self.opts.limiter):
            await put(seg, chunk)
            if seg.left <= 0:
                # The piece may have been cut short meanwhile: the rest of this body is
                # another worker's (the caller drops the connection).
                return


def _split(segments: list[Segment]) -> Segment | None:
    """Cut the busy piece with most bytes left in two; return the back half, now busy."""
    best = max((s for s in segments if s.busy), key=lambda s: s.end - max(s.pos, s.asked), default=None)
    if best is None:
        return None
    # Only bytes no request has asked for yet are shared out: cutting below what is on
    # its way would throw those bytes away (they were 5-27 % of a file on loopback).
    free_from = max(best.pos, best.asked)
    if best.end - free_from < 2 * MIN_SPLIT:
        return None
    mid = align(free_from + (best.end - free_from) // 2)
    if mid < free_from or best.end - mid < MIN_SPLIT:
        return None
    back = Segment(mid, best.end, 0, busy=True)
    # The front half's worker sees the new end before its next write and stops there.
    best.end = mid
    segments.insert(segments.index(best) + 1, back)
    return back


def _check_answer(resp: _http.Response, state: _files.PartState, start: int, shown_url: str) -> None:
    """Raise unless ``resp`` is a 206 of the same file from byte ``start``."""
    if resp.status == 416:
        raise _Restart(f"{shown_url} answered 416 to bytes={start}-: it is shorter now")
    raise_for_status(resp, shown_url)
    same = same_validators(state.etag, state.last_modified, resp.headers)
    if resp.status != 206 and same:
        raise _Restart(f"{shown_url} answered a range with the whole file", no_ranges=True)
    if not same or resp.status != 206:
        raise _Restart(f"{shown_url} has another file now (ETag {resp.headers.get('ETag')})")
    if not _http.continues(resp, start, state.total).ok:
        raise _Restart(
            f"{shown_url} answered bytes={start}- with Content-Range {resp.headers.get('Content-Range')}",
            mismatch=True,
        )


def _request_end(seg: Segment, auto: bool, most: int | None = None) -> int:
    """Where a request for ``seg`` stops. With a fixed count every piece is asked for whole
    (one request per piece, no waiting between requests). ``"auto"`` asks in windows that
    double as the piece goes on (from AUTO_REQUEST), so that the bytes it may later share
    with new connections have not been asked for yet; a fast single stream pays one
    request per window, a dozen for a GiB."""
    if not auto:
        return seg.end
    window = max(AUTO_REQUEST, seg.pos - seg.start)
    if most is not None:
        window = min(window, most)
    return min(seg.end, seg.pos + window)


def _end_game_window(self: RangesFetcher) -> int | None:
    """Under ``"auto"`` with several connections, the most one request may ask for: a share of
    what nobody has asked for yet, so that near the end the last bytes are still free to be
    shared among the connections that run out of work (rather than all on one)."""
    if not self.auto or len(self.workers) < 2:
        return None
    free = sum(s.end - max(s.pos, s.asked) for s in self.segments if s.end > max(s.pos, s.asked))
    return max(MIN_SPLIT, align(free // (END_GAME_SHARES * len(self.workers))))


def _overlaps(segments: list[Segment]) -> dict[int, int]:
    """How much each unfinished piece of a resumed ``.part`` checks: bytes of its own on disk,
    or else those of the finished piece right before it (a one-stream ``.part`` shared out)."""
    checks: dict[int, int] = {}
    prev: Segment | None = None
    for seg in sorted(segments, key=lambda s: s.start):
        if seg.left:
            before = seg.done
            if not before and prev is not None and prev.left == 0 and prev.end == seg.start:
                before = prev.end - prev.start
            if before:
                checks[seg.start] = overlap(before)
        prev = seg
    return checks


async def _grow(self: RangesFetcher) -> None:
    """``connections="auto"``: add connections to ``self`` while the server caps each one and they keep
    paying off (see the module docstring)."""
    start = last_t = time.monotonic()
    last_n = first_n = self.received
    seen: list[tuple[float, int]] = [(start, last_n)]
    before: float | None = None  # rate per connection before the last step
    while True:
        await asyncio.sleep(AUTO_TICK)
        now, n = time.monotonic(), self.received
        if now - seen[-1][0] > AUTO_STALL:
            seen = [(now, n)]  # this loop was held up: the bytes of that time were not read either
            continue
        seen.append((now, n))
        while len(seen) > 2 and now - seen[1][0] >= AUTO_WINDOW:
            del seen[0]
        if now - seen[0][0] < AUTO_WINDOW or now - last_t < AUTO_WINDOW:
            continue
        t0, n0 = max(seen[0], (last_t, last_n))
        active = max(1, len(self.workers))
        rate = (n - n0) / max(now - t0, 1e-6)
        per_conn = rate / active
        if before is not None and per_conn < AUTO_FLAT * before:
            log.debug("auto: %d connections, %.1f MB/s each (was %.1f); adding no more",
                      active, per_conn / 1e6, before / 1e6)
            return
        if per_conn >= FAST_CONNECTION:
            continue  # fast enough alone: more would only cost CPU
        if self.opts.max_rate is not None and rate >= AUTO_NEAR_LIMIT * self.opts.max_rate:
            return  # max_rate= is what holds these connections back, not the server
        # A throttle often sends a burst and then nothing for a while: judge the time left by
        # the rate so far, not by this window's.
        so_far = (n - first_n) / max(now - start, 1e-6)
        left = self.total - sum(s.done for s in self.segments)
        if so_far <= 0 or left / max(so_far, rate) < AUTO_MIN_LEFT_S:
            if so_far > 0:
                return
            continue
        before = max(per_conn, 1.0)
        want = min(AUTO_MAX, max(2 * active, math.ceil(AUTO_TARGET_RATE / before)))
        added = 0
        if active == 1:
            # One more first, and the rest once it is answered: a server that refuses a second
            # connection sees only that one.
            self.scout = self._add(extra=True)
            if self.scout is None:
                return
            await self.scouted.wait()
            self.scout = None
            added = 1
        if self.refused:
            log.debug("auto: the server refused another connection; adding no more")
            return
        while len(self.workers) < want and self.add_worker(extra=True):
            added += 1
        log.debug("auto: %.1f MB/s per connection; %d -> %d connections", per_conn / 1e6, active, active + added)
        if not added or len(self.workers) >= AUTO_MAX:
            return
        last_t, last_n = time.monotonic(), self.received
