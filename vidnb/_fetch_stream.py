"""The file fetcher: one URL's bytes over one stream, or over byte ranges when that pays.

Each request is chosen by :func:`vidnb._strategy.choose` from the resume record and the
answer; this module only carries the choice out. One stream is copied front to back into
the ``.part``; a 206 to the probe ``bytes=0-`` (with ``connections`` above 1) hands the
work to :class:`vidnb._fetch_ranges.RangesFetcher`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging

from . import _files, _http
from ._errors import IncompleteDownloadError, NotAVideoError, TooLargeError
from ._fetch import Fetched, HandOff, Part
from ._fetch_ranges import RangesFetcher
from ._fmt import human_bytes
from ._headers import content_range, raise_for_status
from ._options import Options
from ._pieces import Segment, from_single, plan_after_probe, same_validators, spread
from ._retry import failures_after
from ._sniff import VideoFormat, describe_non_video, is_hls_playlist, is_web_page, sniff
from ._strategy import PROBE, Answer, Decision, Resumable, choose, overlap, resumable
from ._urls import redact_url
from ._writer import PartWriter

__all__ = ["FileFetcher", "FirstAnswer", "RECORD_AFTER", "INLINE_BYTES"]

log = logging.getLogger("vidnb")

#: Seconds of body after which a fresh single-stream download writes its resume record.
RECORD_AFTER = 1.0
#: The first bytes of a stream are written by the loop itself (see PartWriter): measured on
#: a batch of 1 MiB files, 1.1-1.2x plain aiohttp this way against 1.4x through the thread.
INLINE_BYTES = 4 << 20
#: Restarts from zero after which a multi-connection download falls back to one stream.
MAX_RANGE_RESTARTS = 2


class FirstAnswer:
    """A response already open when the fetcher starts (a folder download read it for the name)."""

    def __init__(self, resp: _http.Response, head: bytes, asked_from: int | None) -> None:
        self.resp = resp
        self.head = head
        self.asked_from = asked_from


class FileFetcher:
    """Fetches one URL into a :class:`~vidnb._fetch.Part` (see the module docstring)."""

    def __init__(self, url: str, session: _http.Session, opts: Options, first: FirstAnswer | None = None):
        self.url = url
        self.shown_url = redact_url(url)
        self.final_url = url
        self.session = session
        self.opts = opts
        self.connections = opts.connections
        self.first = first
        self.restarts = 0
        #: The ``.part`` is known to be empty: the lock just created it and nothing has been
        #: written since (the first request of a fresh download). Saves an fstat for its size
        #: before the request and another before the first write.
        self._empty = False

    async def fetch(self, part: Part) -> Fetched | HandOff:
        failures = 0
        self._empty = part.lock.created
        record = None if self._empty else await self._resumable(part)
        while True:
            before = part.tracker.done
            try:
                outcome = await self._step(part, record)
            except Exception as exc:
                self._empty = False
                failures = failures_after(failures, part.tracker.done - before)
                needed = None if part.tracker.total is None else part.tracker.total - part.tracker.done
                await part.retries.wait(
                    exc, failures, what="the download", url=self.shown_url, path=part.dest, needed=needed
                )
                record = await self._resumable(part)
                continue
            self._empty = False
            if isinstance(outcome, Decision):
                # "again" or "restart": nothing failed, ask again at once.
                if outcome.step == "restart":
                    part.discard()
                record = await self._resumable(part)
                continue
            return outcome

    async def _resumable(self, part: Part) -> Resumable | None:
        size = part.size()
        if not size or not self.opts.resume:
            return None
        state = await part.load_record()
        if state is None and part.unreadable_record:
            return None
        if state is None:
            # No record (a process killed before its first second was up): the bytes may still
            # be continued, once the overlap shows they are the server's.
            return resumable(kind=None, url=self.url, record_url=None, total=None, if_range=None, etag=None,
                             last_modified=None, segments=None, part_size=size)
        return resumable(
            kind=state.kind, url=self.url, record_url=state.url, total=state.total, if_range=state.if_range,
            etag=state.etag, last_modified=state.last_modified, segments=state.segments, part_size=size,
        )

    async def _step(self, part: Part, record: Resumable | None) -> Fetched | HandOff | Decision:
        """One request (or one multi-connection run) as :func:`choose` decides."""
        first, self.first = self.first, None
        if first is None:
            decision = choose(url=self.url, record=record, answer=None, connections=self.connections)
            if decision.step == "resume_ranges":
                assert record is not None and record.total is not None
                return await self._ranges(part, record, list(record.segments), None, b"")
            if decision.step == "split_single":
                assert record is not None and record.total is not None
                return await self._ranges(part, record, from_single(record.total, record.offset), None, b"")
            if decision.step in ("hls", "page"):
                return HandOff(self.url, decision.step)
            byte_range = _range_for(decision)
            async with _http.get(
                self.session, self.url, self.opts.headers, self.opts.timeout,
                byte_range=byte_range, if_range=decision.if_range, check_status=False,
            ) as resp:
                return await self._answered(part, record, resp, b"", None if byte_range is None else byte_range[0])
        try:
            return await self._answered(part, record, first.resp, first.head, first.asked_from)
        finally:
            first.resp.release()

    async def _answered(
        self, part: Part, record: Resumable | None, resp: _http.Response, head: bytes, asked: int | None
    ) -> Fetched | HandOff | Decision:
        self.final_url = str(resp.url)
        if resp.status >= 400 and (resp.status != 416 or not asked):
            raise_for_status(resp, redact_url(self.final_url))
        start, total = content_range(resp.headers.get("Content-Range"))
        whole_body = resp.status == 200 or (resp.status == 206 and asked == 0)
        if whole_body and not head:
            head = await _http.read_head(resp, self.opts.limiter)
        answer = Answer(
            status=resp.status,
            asked_from=asked,
            range_start=start,
            range_total=total,
            same_validators=record is None or same_validators(record.etag, record.last_modified, resp.headers),
            playlist=whole_body and sniff(head) is None and is_hls_playlist(head),
        )
        decision = choose(url=self.url, record=record, answer=answer, connections=self.connections)
        step = decision.step
        if step in ("again", "restart"):
            if step == "restart":
                log.info(
                    "%s did not continue at byte %d (status %d, Content-Range %s); starting again from zero",
                    self.shown_url, record.offset if record else 0, resp.status, resp.headers.get("Content-Range"),
                )
            return decision
        if step == "hls":
            # Keep the .part: it may be an HLS download of this destination, which the HLS fetcher resumes.
            return HandOff(self.final_url)
        if step == "refuse_partial":
            raise IncompleteDownloadError(f"{self.shown_url} answered a plain request with a partial body (206).")
        if (decision.offset == 0 and self.opts.require_video and sniff(head) is None
                and is_web_page(head, resp.headers.get("Content-Type"))):
            # A web page: its video is found by the page download (nothing was written).
            part.discard()
            return HandOff(self.final_url, "page")
        size = total if resp.status == 206 else resp.content_length
        self._check_size(part, size)
        _files.check_free_space(part.dest, None if size is None else size - decision.offset)
        fmt = self._check_video(part, head if decision.offset == 0 else _files.read_head(part.path), resp)
        part.tracker.begin(part.dest.name, size, decision.offset)
        state = _files.PartState(
            url=self.url, etag=resp.headers.get("ETag"), last_modified=resp.headers.get("Last-Modified"), total=size
        )
        if step == "ranges" and size is not None and start == 0 and (size > PROBE):
            ctype = resp.headers.get("Content-Type")
            return await self._ranges(part, _fresh(state), [], resp, head, fmt=fmt, content_type=ctype)
        offset = decision.offset
        if offset:
            matches, head = await _overlap(part, resp, offset, head)
            if not matches:
                log.info(
                    "%s: the bytes before byte %d are not the ones on disk (the file changed); starting again "
                    "from zero", self.shown_url, offset,
                )
                return Decision("restart")
        # A record is written for a .part that has none: a fresh one, or one resumed without a record.
        needs_record = offset == 0 or record is None or record.total is None
        return await self._stream(part, resp, head, offset, state, fmt, needs_record)

    def _check_size(self, part: Part, total: int | None) -> None:
        limit = self.opts.max_bytes
        if limit is not None and total is not None and total > limit:
            part.discard()
            raise TooLargeError(
                f"{self.shown_url} is {human_bytes(total)}, more than max_bytes={limit} "
                f"({human_bytes(limit)}). Raise max_bytes to download it.",
                limit=limit,
                size=total,
            )

    def _check_video(self, part: Part, head: bytes, resp: _http.Response) -> VideoFormat | None:
        fmt = sniff(head)
        if fmt is None and self.opts.require_video:
            part.discard()
            what = describe_non_video(head, resp.headers.get("Content-Type"))
            raise NotAVideoError(
                f"{self.shown_url} is not a video: it is {what}. Check the URL (a login or error page is "
                "a common cause), or pass require_video=False to save it anyway."
            )
        return fmt

    # ------------------------------------------------------------------ one stream

    async def _stream(
        self, part: Part, resp: _http.Response, head: bytes, offset: int, state: _files.PartState,
        fmt: VideoFormat | None, needs_record: bool,
    ) -> Fetched:
        """Copy the body into the .part from ``offset``.

        ``state`` (the resume record of a fresh .part) is written :data:`RECORD_AFTER`
        seconds after the body starts (by a timer, so a stalled body gets it too), or when
        the copy stops early for any reason. A quick download never writes it: creating a
        file took 1-1.5 ms during a batch here, as much as fetching a 1 MiB file. The price is
        that a process killed outright (SIGKILL, power) in a download's first second leaves
        a .part without a record, which the next run starts again from zero.
        """
        if offset == 0:
            # Starting over: an old record describes bytes that are about to be replaced.
            part.forget_record()
        hasher = None
        if self.opts.sha256 is not None:
            hasher = hashlib.sha256()
            if offset:
                await asyncio.to_thread(_files.hash_file, part.path, offset, hasher)
        writer = PartWriter(
            part.path, truncate=offset == 0 and not self._empty, hasher=hasher, fd=part.fd, inline_below=INLINE_BYTES
        )
        pos = offset
        limit = self.opts.max_bytes
        tracker = part.tracker
        fresh = needs_record
        timer = asyncio.get_running_loop().call_later(RECORD_AFTER, part.save_record, state) if fresh else None
        complete = False
        try:
            if head:
                await writer.write(pos, head)
                pos += len(head)
                tracker.advance(len(head))
            async for chunk in _http.body(resp, self.opts.limiter, self.opts.chunk_size):
                await writer.write(pos, chunk)
                pos += len(chunk)
                tracker.advance(len(chunk))
                if limit is not None and pos > limit:
                    raise TooLargeError(
                        f"{self.shown_url} sent more than max_bytes={limit} ({human_bytes(limit)}); stopped. "
                        "Raise max_bytes to download it.",
                        limit=limit,
                    )
            complete = state.total is None or pos == state.total
        except TooLargeError:
            fresh = False
            writer.close_now()
            part.discard()
            raise
        finally:
            if timer is not None:
                timer.cancel()
            if fresh and not part.recorded and not complete and pos > offset:
                part.save_record(state)
            await writer.close()
        return Fetched(
            pos, self.final_url, resp.headers.get("Content-Type"), _name(fmt), resumed=offset > 0,
            sha256=hasher.hexdigest() if hasher is not None else None, expected_size=state.total,
        )

    # ------------------------------------------------------------------ several connections

    async def _ranges(
        self, part: Part, record: Resumable, segments: list[Segment], resp: _http.Response | None, head: bytes,
        *, fmt: VideoFormat | None = None, content_type: str | None = None,
    ) -> Fetched | Decision:
        assert record.total is not None
        state = _files.PartState(
            url=self.url, kind="ranges", etag=record.etag, last_modified=record.last_modified, total=record.total
        )
        fresh = resp is not None
        done = sum(s.done for s in segments)
        if fresh:
            segments = plan_after_probe(record.total, PROBE, 1 if self.connections == "auto" else self.connections)
        else:
            if self.connections != "auto":
                # Cut the missing bytes for every connection now, while nothing is in flight.
                segments = spread(segments, self.connections)
            self._check_size(part, record.total)
            _files.check_free_space(part.dest, record.total - done)
            part.tracker.begin(part.dest.name, record.total, done)
        fetcher = RangesFetcher(
            self.session, url=self.final_url if fresh else self.url, opts=self.opts, part=part, state=state,
            segments=segments, connections=self.connections, shown_url=self.shown_url, fresh=fresh,
        )
        outcome = await fetcher.run(resp, head)
        if outcome.restart is not None:
            self.restarts += 1
            if outcome.mismatch or outcome.no_ranges or self.restarts > MAX_RANGE_RESTARTS:
                # Its ranges cannot be trusted: one stream is the safe way to get this file.
                self.connections = 1
            log.info("%s; starting again from zero", outcome.restart)
            return Decision("restart")
        if fmt is None:
            # Resumed: the first bytes passed the video check when the record was first written.
            fmt = sniff(await asyncio.to_thread(_files.read_head, part.path))
        return Fetched(
            record.total, outcome.final_url, content_type or outcome.content_type, _name(fmt),
            resumed=done > 0, expected_size=record.total,
        )


def _fresh(state: _files.PartState) -> Resumable:
    return Resumable("ranges", 0, state.total, state.if_range, state.etag, state.last_modified)


def _range_for(decision: Decision) -> tuple[int, int | None] | None:
    """The byte range a "request" decision asks for: from before the resume point (the overlap
    to compare), the bounded probe, or none."""
    if decision.offset:
        return decision.offset - overlap(decision.offset), None
    if decision.probe:
        return 0, PROBE - 1
    return None


async def _overlap(part: Part, resp: _http.Response, offset: int, head: bytes) -> tuple[bool, bytes]:
    """Read the overlap at the start of a resumed body (``head``: what was already read of it)
    and compare it with the end of the ``.part``: only bytes that continue the ones on disk
    are appended, whatever the server's headers claim. Returns whether they match, and the
    bytes read past the overlap (the first ones to append)."""
    want = overlap(offset)
    got = await _http.read_exactly(resp, want, head, part.opts.limiter)
    if got is None:
        return False, b""
    on_disk = await asyncio.to_thread(_files.read_at, part.path, offset - want, want)
    return got[0] == on_disk, got[1]


def _name(fmt: VideoFormat | None) -> str | None:
    return fmt.name if fmt else None
