"""Multi-connection downloads: one file fetched as byte ranges, at once, into one ``.part``.

The engine (:mod:`vidnb._download`) sends the first request with ``Range: bytes=0-``. A 206
answer proves the server does ranges and gives the total size; the engine then hands that
response and the rest of the work to :class:`SegmentedFetch`. A 200 answer means no ranges:
the engine streams it as one connection.

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
    pieces go to the sidecar as ``segments=[[start, end, done], ...]``. Only bytes the
    writer has written are recorded (it is flushed first), so a killed process never
    claims bytes that are not in the file. The next call asks only for what is missing.

Failures
    A piece whose connection breaks or times out (or gets a 408/429/5xx) is retried on
    its own, from where it stopped, with the call's backoff; the others keep going.
    Each 206 must start where asked and carry the same total and validators; anything
    else raises :class:`RangeMismatch` or :class:`FileChanged` and the engine starts over.

``connections="auto"``
    One connection first. Every ``AUTO_WINDOW`` seconds the bytes received are measured.
    A connection faster than ``FAST_CONNECTION`` is left alone: on a fast link the client
    is CPU-bound and more connections only cost. A slower one looks capped by the server
    or the path, so connections are added up to the count that would reach
    ``AUTO_TARGET_RATE`` if each new one is as fast as the current ones (at least double,
    at most ``AUTO_MAX``); after each step the rate per connection must stay at least
    ``AUTO_FLAT`` of what it was, or nothing more is added (the cap is then on the whole
    link). Nothing is added when less than ``AUTO_MIN_LEFT_S`` of work is left.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol

from ._writer import PartWriter
from . import _files
from ._errors import IncompleteDownloadError, wait_or_raise
from ._headers import MAX_REDIRECTS, content_range, raise_for_status

log = logging.getLogger("vidnb")

#: No piece is cut smaller than this (aria2's ``-k`` is 1 MiB; tests use small files).
MIN_SPLIT = 512 * 1024
#: Cut points are rounded to this, so pieces start on page boundaries.
ALIGN = 64 * 1024
#: Seconds between sidecar updates while segments run.
SAVE_EVERY = 1.0
#: The most connections ``connections=N`` accepts, and the most ``"auto"`` opens.
MAX_CONNECTIONS = 32
AUTO_MAX = 16
#: HLS segments fetched at once when ``connections`` is 1 or "auto": segments are separate
#: small requests, and a few at once hide each one's latency.
HLS_SEGMENTS = 4
#: Each window costs the connections not yet opened: 0.1 s put "auto" 1.23-1.31x behind the
#: best fixed count on a 200 MiB throttled file; 0.05 s measured 0.99-1.13x.
AUTO_WINDOW = 0.05
FAST_CONNECTION = 64 * 1024 * 1024
#: High on purpose: a short first window over-reads a server's initial burst, and a lower
#: target then stopped short of the count the throttle needs.
AUTO_TARGET_RATE = 1024 * 1024 * 1024
AUTO_FLAT = 0.6
AUTO_MIN_LEFT_S = 0.3


class RangeMismatch(Exception):
    """A 206 that does not hold the bytes asked for (wrong start or total)."""


class FileChanged(Exception):
    """The server now has a different file (a 200 to If-Range, other validators, 416)."""


class RetryPolicy(Protocol):
    total: int

    def delay(self, attempt: int, retry_after: float | None = None) -> float: ...


class ProgressCounter(Protocol):
    def advance(self, n: int) -> None: ...


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


def most_connections(connections: int | str) -> int:
    """The most connections one download with this (checked) option holds at once: byte
    ranges of one file (``"auto"`` may reach AUTO_MAX), or segments of an HLS stream."""
    connections = check_connections(connections)
    if connections == "auto":
        return AUTO_MAX
    return HLS_SEGMENTS if connections == 1 else int(connections)


def check_connections(connections: int | str) -> int | str:
    """Validate the ``connections=`` option: a whole number from 1 to MAX_CONNECTIONS, or "auto"."""
    if connections == "auto":
        return connections
    if isinstance(connections, bool) or not isinstance(connections, int) or not 1 <= connections <= MAX_CONNECTIONS:
        raise ValueError(f'connections must be a whole number from 1 to {MAX_CONNECTIONS} or "auto", not {connections!r}')
    return connections


def plan(total: int, n: int) -> list[Segment]:
    """Cut ``total`` bytes into up to ``n`` equal pieces of at least ``MIN_SPLIT`` bytes."""
    n = max(1, min(n, total // MIN_SPLIT))
    cuts = [0] + [_align(total * i // n) for i in range(1, n)] + [total]
    return [Segment(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]


def _align(x: int) -> int:
    return x - x % ALIGN if x > ALIGN else x


def from_state(state: _files.PartState, part_size: int) -> list[Segment] | None:
    """The pieces saved in a sidecar, or None when they do not describe this ``.part`` exactly."""
    total, raw = state.total, state.segments
    if not raw or total is None or part_size != total:
        return None
    try:
        segs = sorted((Segment(int(a), int(b), int(d)) for a, b, d in raw), key=lambda s: s.start)
    except (TypeError, ValueError):
        return None
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


def same_validators(state: _files.PartState, headers: Mapping[str, str]) -> bool:
    """False when the response's ETag (or, without ETags, Last-Modified) differs from the saved one."""
    etag = headers.get("ETag")
    if state.etag and etag and state.etag != etag:
        return False
    lm = headers.get("Last-Modified")
    if not state.etag and state.last_modified and lm and state.last_modified != lm:
        return False
    return True


@dataclass
class FetchInfo:
    """What the engine needs from the responses once all pieces are in."""

    content_type: str | None
    final_url: str
    #: Piece requests that were retries.
    retries: int


class SegmentedFetch:
    """Fetch the unfinished :class:`Segment` pieces of one file over several connections.

    Parameters
    ----------
    session : aiohttp.ClientSession
    url : str
        Where to send the ranged requests (the final URL after redirects, when known).
    headers : mapping
        Request headers of the call (a Range header is added per piece).
    timeout : aiohttp.ClientTimeout
    dest : Path
        The destination; the bytes go to its ``.part`` and the pieces to its sidecar.
    state : PartState
        URL, validators and total; ``segments`` is kept up to date here.
    segments : list of Segment
        The pieces; those with bytes left are fetched.
    connections : int or "auto"
        Workers to run at once (``"auto"``: start with one, see the module docstring).
    tracker : object with ``advance(n)``
        Counts bytes for the progress bar (one for the whole file).
    retry : Retry
        Backoff for a failing piece; each piece may fail ``retry.total`` times in a row.
    shown_url : str
        The URL for messages (credentials removed).
    fresh : bool
        True for a new download (the ``.part`` is truncated and preallocated).
    """

    def __init__(
        self,
        session: Any,
        *,
        url: str,
        headers: Mapping[str, str],
        timeout: Any,
        dest: Path,
        state: _files.PartState,
        segments: list[Segment],
        connections: int | str,
        tracker: ProgressCounter,
        retry: RetryPolicy,
        shown_url: str,
        fresh: bool,
    ) -> None:
        assert state.total is not None
        self.session = session
        self.url = url
        self.headers = {**headers, "Accept-Encoding": "identity"}
        if state.validator:
            # A piece of a file that changed meanwhile must not be mixed in: If-Range makes
            # the server answer 200 (the whole new file) instead, which we refuse.
            self.headers["If-Range"] = state.validator
        self.timeout = timeout
        self.dest = dest
        self.state = state
        self.total = state.total
        self.segments = segments
        self.auto = connections == "auto"
        self.limit = AUTO_MAX if self.auto else int(connections)
        self.tracker = tracker
        self.retry = retry
        self.shown_url = shown_url
        self.fresh = fresh
        self.received = 0
        self.retries = 0
        self.content_type: str | None = None
        self.final_url = url
        self._workers: set[asyncio.Task[None]] = set()
        self._outcome: asyncio.Future[None] | None = None
        self._writer: PartWriter | None = None

    # ------------------------------------------------------------------ running

    async def run(self, first: Any = None, head: bytes = b"") -> FetchInfo:
        """Fetch every piece; ``first`` is an open 206 response for the first piece (with ``head`` already read).

        Raises the error of a piece that failed more than ``retry.total`` times in a row, or
        :class:`RangeMismatch` / :class:`FileChanged`. The sidecar is up to date afterwards.
        """
        loop = asyncio.get_running_loop()
        self._outcome = loop.create_future()
        part = _files.part_path(self.dest)
        self._writer = PartWriter(part, truncate=self.fresh)
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
                self._spawn(seg, first, head)
            if not self.auto:
                start = self.limit
            elif first is not None:
                start = 1
            else:
                # Resuming: the unfinished pieces already say how many connections paid off.
                start = min(AUTO_MAX, max(1, sum(1 for s in self.segments if s.left)))
            for _ in range(start - len(self._workers)):
                if not self._add_worker():
                    break
            if not self._workers:
                ok = True
                return self._info()
            helpers.append(asyncio.ensure_future(self._saver()))
            if self.auto:
                helpers.append(asyncio.ensure_future(self._auto()))
            await self._outcome
            ok = True
            return self._info()
        finally:
            for t in [*self._workers, *helpers]:
                t.cancel()
            pending = [*self._workers, *helpers]
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
            # last sidecar, which was saved after a successful flush.
            if ok:
                raise
            return
        if not ok or any(s.left for s in self.segments):
            await self._save()

    def _info(self) -> FetchInfo:
        return FetchInfo(self.content_type, self.final_url, self.retries)

    async def _save(self) -> None:
        self.state.segments = [[s.start, s.end, s.done] for s in self.segments]
        await _files.save_state(self.dest, self.state)

    async def _saver(self) -> None:
        writer = self._writer
        assert writer is not None
        while True:
            await asyncio.sleep(SAVE_EVERY)
            # Snapshot first, then flush: every byte counted in the snapshot was queued
            # before the flush marker, so it is in the file when the sidecar says so.
            snapshot = [[s.start, s.end, s.done] for s in self.segments]
            await writer.flush()
            self.state.segments = snapshot
            await _files.save_state(self.dest, self.state)

    # ------------------------------------------------------------------ workers

    def _spawn(self, seg: Segment, resp: Any = None, head: bytes = b"") -> None:
        task = asyncio.ensure_future(self._worker(seg, resp, head))
        self._workers.add(task)
        task.add_done_callback(self._worker_done)

    def _worker_done(self, task: asyncio.Task[None]) -> None:
        self._workers.discard(task)
        outcome = self._outcome
        if outcome is None or outcome.done() or task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            outcome.set_exception(exc)
        elif not self._workers:
            outcome.set_result(None)

    def _add_worker(self) -> bool:
        """Start a worker on a free piece (or half of the largest one); False when none is worth it."""
        seg = self._next_segment()
        if seg is None:
            return False
        self._spawn(seg)
        return True

    def _next_segment(self) -> Segment | None:
        for seg in self.segments:
            if not seg.busy and seg.left > 0:
                seg.busy = True
                return seg
        return self._split()

    def _split(self) -> Segment | None:
        """Cut the busy piece with most bytes left in two; return the back half, now busy."""
        best = max((s for s in self.segments if s.busy), key=lambda s: s.left, default=None)
        if best is None or best.left < 2 * MIN_SPLIT:
            return None
        mid = _align(best.pos + best.left // 2)
        if mid - best.pos < MIN_SPLIT:
            return None
        back = Segment(mid, best.end, 0, busy=True)
        # The front half's worker sees the new end before its next write and stops there.
        best.end = mid
        self.segments.insert(self.segments.index(best) + 1, back)
        return back

    async def _worker(self, seg: Segment | None, resp: Any, head: bytes) -> None:
        while seg is not None:
            try:
                await self._fetch(seg, resp, head)
            finally:
                seg.busy = False
            resp, head = None, b""
            seg = self._next_segment()

    async def _fetch(self, seg: Segment, resp: Any, head: bytes) -> None:
        """Fetch what is left of ``seg``, retrying it alone on errors that may pass."""
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
                        _drop(resp)
                        resp = None
                else:
                    await self._request(seg)
                if seg.left > 0:
                    raise IncompleteDownloadError(
                        f"{self.shown_url} ended the range at byte {seg.pos}, before {seg.end}.",
                        received=seg.pos,
                        expected=seg.end,
                    )
            except (RangeMismatch, FileChanged, asyncio.CancelledError):
                raise
            except Exception as exc:
                if seg.done > before:
                    failures = 0  # it moved: only failures in a row count
                failures += 1
                err, wait = wait_or_raise(self.retry, exc, failures, url=self.shown_url, path=self.dest)
                log.info(
                    "bytes %d-%d of %s failed (%s: %s); retrying that range in %.1f s",
                    seg.pos,
                    seg.end - 1,
                    self.shown_url,
                    type(err).__name__,
                    err,
                    wait,
                )
                self.retries += 1
                await asyncio.sleep(wait)

    async def _request(self, seg: Segment) -> None:
        start = seg.pos
        headers = {**self.headers, "Range": f"bytes={start}-{seg.end - 1}"}
        async with self.session.get(
            self.url,
            headers=headers,
            timeout=self.timeout,
            auto_decompress=False,
            max_redirects=MAX_REDIRECTS,
        ) as resp:
            if resp.status == 416:
                raise FileChanged(f"{self.shown_url} answered 416 to bytes={start}-: it is shorter now")
            raise_for_status(resp, self.shown_url)
            if resp.status != 206 or not same_validators(self.state, resp.headers):
                raise FileChanged(
                    f"{self.shown_url} answered a range request with status {resp.status}"
                    f" and ETag {resp.headers.get('ETag')}"
                )
            got_start, got_total = content_range(resp.headers.get("Content-Range"))
            if got_start != start or got_total != self.total:
                raise RangeMismatch(
                    f"{self.shown_url} answered bytes={start}- with Content-Range {resp.headers.get('Content-Range')}"
                )
            if self.content_type is None:
                self.content_type = resp.headers.get("Content-Type")
                self.final_url = str(resp.url)
            try:
                await self._copy(seg, resp)
            finally:
                _drop(resp)

    async def _put(self, seg: Segment, data: bytes) -> None:
        n = min(len(data), seg.left)
        if n <= 0:
            return
        pos = seg.pos
        # Count the bytes before handing them over: a split made while write() waits for
        # room must see them as taken. write() queues them before it first yields.
        seg.done += n
        self.received += n
        await self._writer.write(pos, data if n == len(data) else data[:n])  # type: ignore[union-attr]
        self.tracker.advance(n)

    async def _copy(self, seg: Segment, resp: Any) -> None:
        read = resp.content.readany
        put = self._put
        while seg.left > 0:
            chunk = await read()
            if not chunk:
                return
            await put(seg, chunk)

    # ------------------------------------------------------------------ auto

    async def _auto(self) -> None:
        """Add connections while the server caps each one and they keep paying off (see the module docstring)."""
        last_t, last_n = time.monotonic(), self.received
        before: float | None = None  # rate per connection before the last step
        while True:
            await asyncio.sleep(AUTO_WINDOW)
            now, n = time.monotonic(), self.received
            active = max(1, len(self._workers))
            rate = (n - last_n) / max(now - last_t, 1e-6)
            last_t, last_n = now, n
            per_conn = rate / active
            if before is not None and per_conn < AUTO_FLAT * before:
                log.debug("auto: %d connections, %.1f MB/s each (was %.1f); adding no more", active, per_conn / 1e6, before / 1e6)
                return
            if per_conn >= FAST_CONNECTION:
                continue  # fast enough alone: more would only cost CPU
            left = self.total - sum(s.done for s in self.segments)
            if rate <= 0 or left / rate < AUTO_MIN_LEFT_S:
                if rate > 0:
                    return
                continue
            want = min(AUTO_MAX, max(2 * active, math.ceil(AUTO_TARGET_RATE / max(per_conn, 1.0))))
            added = 0
            while len(self._workers) < want and self._add_worker():
                added += 1
            log.debug("auto: %.1f MB/s per connection; %d -> %d connections", per_conn / 1e6, active, active + added)
            if not added or len(self._workers) >= AUTO_MAX:
                return
            before = per_conn
            # Give the new connections a window to start before judging them.
            await asyncio.sleep(AUTO_WINDOW)
            last_t, last_n = time.monotonic(), self.received


def _drop(resp: Any) -> None:
    """Close a response we stopped reading early (its bytes belong to another piece), so the
    connection is not reused with a half-read body; a fully read one goes back to the pool."""
    if not resp.content.at_eof():
        resp.close()


__all__ = [
    "Segment",
    "SegmentedFetch",
    "FetchInfo",
    "RangeMismatch",
    "FileChanged",
    "check_connections",
    "most_connections",
    "plan",
    "from_state",
    "from_single",
    "same_validators",
    "MIN_SPLIT",
    "MAX_CONNECTIONS",
]
