"""Downloads killed with SIGKILL at 30 random moments, each resumed by a new process, until one finishes.

Three kinds of download: one stream, ``connections=8`` (pieces in a preallocated ``.part``)
and HLS segments. The moments come from a fixed seed and are chosen by what can be seen:
the server receiving a run's first request (killed before any byte of the answer), bytes
the server has sent to a run (within its first second), bytes in the ``.part`` on disk,
and the ``.part`` at its full size (the final check and rename).

After every kill the bytes the next run will keep (by the record, or the ``.part`` itself)
are compared with the server's, so a mixed file is blamed on the kill that made it; the
next run's requests must ask for none of them again but the ends it compares with the
disk; and the bytes the server sent that the file did not gain are bounded. At the end
the file is byte-exact and nothing is left beside it.

Each run is a process forked from one that has imported vidnb and done nothing else:
importing vidnb costs about 0.5 s of CPU, which for 93 fresh interpreters would be most of
this file's time; a fork is a new process (its own pid, killed outright) in milliseconds.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import Concurrency, LocalServer, Route, leftovers, make_video, sha, wait_until

from vidnb import _files
from vidnb._fetch_ranges import SAVE_EVERY
from vidnb._pieces import from_record
from vidnb._strategy import OVERLAP, overlap

pytestmark = pytest.mark.slow

SEED = 20251101
KILLS = 30
#: Seconds between looks at the .part while waiting for a moment.
POLL = 0.002
#: How far a download may fall behind its server, in seconds of the throttle: the bytes of
#: that time are in the sockets and buffers, not yet on disk, when it is killed. Measured up
#: to 0.35 s with the three downloads, their servers and their checks sharing two cores.
LAG = 0.5
#: The throttled server writes a twentieth of a second of body at once (helpers._send_body),
#: then waits: a kill can find up to one such write on the wire, and the server counts one
#: more that it then fails to deliver.
WRITES_PER_S = 20
MiB = 1024 * 1024

# --------------------------------------------------------------------------- runs in forked processes

# Reads one JSON job per line; forks a child that runs it with its output in the job's log,
# prints "pid N", reaps the child and prints "exit CODE" (negative: killed by that signal).
_FORKER = r"""
import json, logging, os, sys, traceback
import vidnb, vidnb._fetch_hls, vidnb._http
# Loaded before any fork, so no run pays for them: the modules, and the CA bundle (0.1 s).
vidnb._http.ssl_context()

for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(log, 1)
            os.dup2(log, 2)
            logging.basicConfig(level=logging.INFO, format="%(created).3f %(message)s")
            r = vidnb.download_sync(job["url"], job["dest"], progress=False, **job["options"])
            print("skipped" if r.skipped else "downloaded", r.size)
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    print("pid", pid, flush=True)
    print("exit", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
"""


class Forker:
    """A process that has imported vidnb and forks one download at a time on request."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _FORKER],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.reader = threading.Thread(target=self._read, name="crash-forker-output", daemon=True)
        self.reader.start()
        self.run: Run | None = None

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next_line(self, timeout: float | None) -> str | None:
        """The forker's next line; None when none came within ``timeout`` (0: do not wait)."""
        try:
            line = self.lines.get(timeout=timeout) if timeout else self.lines.get_nowait()
        except queue.Empty:
            return None
        if line is None:
            raise AssertionError(f"the forking process ended (exit {self.proc.wait()})")
        return line

    def start(self, url: str, dest: Path, options: dict[str, Any], log: Path) -> Run:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"url": url, "dest": str(dest), "options": options, "log": str(log)}) + "\n")
        self.proc.stdin.flush()
        line = self.next_line(60)  # the first one waits for the import
        assert line is not None and line.startswith("pid "), f"the forking process said {line!r}"
        self.run = Run(self, int(line.split()[1]), log)
        return self.run

    def __enter__(self) -> Forker:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.run is not None:
            self.run.kill()  # a test that failed mid-run leaves no download behind
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(timeout=10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


class Run:
    """One download process (a child of the forker, which reaps it and reports its exit)."""

    def __init__(self, forker: Forker, pid: int, log: Path) -> None:
        self.forker, self.pid, self.log = forker, pid, log
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self._take(self.forker.next_line(0))
        return self.returncode

    def wait(self, timeout: float) -> int:
        if self.returncode is None:
            line = self.forker.next_line(timeout)
            assert line is not None, f"process {self.pid} still running after {timeout:g} s:\n{self.output()}"
            self._take(line)
        assert self.returncode is not None
        return self.returncode

    def _take(self, line: str | None) -> None:
        if line is not None:
            assert line.startswith("exit "), f"the forking process said {line!r}"
            self.returncode = int(line.split()[1])

    def kill(self) -> None:
        if self.poll() is None:
            # Not reaped until the forker hears of its exit, so the pid is still this process's.
            os.kill(self.pid, signal.SIGKILL)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else "(no output)"


class Trigger:
    """Hooked to the server (``Route.on_request``, on its thread): notes a run's first request
    and, when armed, kills the run right then, before the server answers with any byte."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset(armed=False)

    def reset(self, *, armed: bool) -> None:
        with self.lock:
            self.pid: int | None = None
            self.armed, self.fired = armed, False
            self.started: float | None = None  # when the first request came

    def set_pid(self, pid: int) -> None:
        with self.lock:
            self.pid = pid
            self._fire()

    def on_request(self, n: int) -> None:
        with self.lock:
            if self.started is None:
                self.started = time.monotonic()
            self._fire()

    def _fire(self) -> None:
        if self.armed and not self.fired and self.pid is not None and self.started is not None:
            self.fired = True
            os.kill(self.pid, signal.SIGKILL)


# --------------------------------------------------------------------------- what is downloaded


def first_difference(a: bytes, b: bytes) -> int:
    """The first offset where ``a`` and ``b`` differ (or where the shorter ends)."""
    lo, step, n = 0, 1 << 16, min(len(a), len(b))
    while lo < n and a[lo : lo + step] == b[lo : lo + step]:
        lo += step
    while lo < n and a[lo] == b[lo]:
        lo += 1
    return min(lo, n)


def read_record(dest: Path) -> dict[str, Any] | None:
    path = _files.sidecar_path(dest)
    # Replaced by a rename, never written in place: it is the old record or the new one.
    return json.loads(path.read_text()) if path.exists() else None


@dataclass(frozen=True)
class Kept:
    """What the next run keeps of what is on disk, as it will see it."""

    #: Bytes of the file.
    size: int
    #: Where they are: ``[start, end)`` of the file, which no request should ask for again...
    regions: list[tuple[int, int]]
    #: ...but for at most this many at the end of one, fetched again to compare with the disk,
    tail: int
    #: and this many in all.
    check: int


def merged(regions: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The regions sorted, adjacent ones joined (a piece's check may end where the next one starts)."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(r for r in regions if r[1] > r[0]):
        if out and out[-1][1] == start:
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


class Subject:
    """One download under test: its server routes, the bytes it must produce, and how to read
    the state a killed run leaves on disk."""

    def __init__(self, name: str, data: bytes, url: str, dest: Path, routes: list[Route], watched: list[Route],
                 gauge: Concurrency, rate: float, connections: int, options: dict[str, Any]) -> None:
        self.name, self.data, self.url, self.dest = name, data, url, dest
        self.size = len(data)
        self.part = _files.part_path(dest)
        #: The routes whose bytes are the file's (not the playlist's), and those whose first
        #: request starts a run.
        self.routes, self.watched = routes, watched
        self.gauge = gauge
        #: Bytes per second of every connection together, and how many there are.
        self.rate, self.connections = rate, connections
        self.options = options

    def sent(self) -> int:
        return sum(r.sent for r in self.routes)

    def marks(self) -> list[int]:
        """Where each route's list of requests stands (to read a run's requests afterwards)."""
        return [len(r.requests) for r in self.routes]

    def asked(self, marks: list[int]) -> list[tuple[int, int]]:
        """The bytes ``[start, end)`` of the file asked for since ``marks``."""
        out = []
        for route, mark in zip(self.routes, marks, strict=True):
            for headers in route.requests[mark:]:
                m = re.fullmatch(r"bytes=(\d+)-(\d*)", headers.get("Range", f"bytes=0-{self.size - 1}"))
                assert m, headers
                out.append((int(m[1]), int(m[2]) + 1 if m[2] else self.size))
        return out

    def on_disk(self) -> int:
        """Bytes in the ``.part`` (the whole file once it is in place)."""
        try:
            return self.part.stat().st_size
        except FileNotFoundError:
            return self.size if self.dest.exists() else 0

    def resume_state(self, label: str) -> Kept:
        """What the next run keeps of the disk, once those bytes are checked against the server's."""
        raise NotImplementedError

    def lost_bound(self, after: int, record: bool) -> int:
        """The most a kill that left ``after`` bytes on disk (and a record or not) may throw
        away: what was on the wire (the download's lag behind the server, a server write per
        connection, and one more the server counts but cannot deliver)."""
        return int(self.rate * (POLL + LAG)) + 2 * self.connections * self.step

    @property
    def step(self) -> int:
        return max(1024, int(self.rate / self.connections / WRITES_PER_S))

    def check_prefix(self, part: bytes, end: int, label: str, why: str) -> None:
        if part[:end] != self.data[:end]:
            at = first_difference(part, self.data)
            raise AssertionError(f"{label}: {why}, but byte {at} of the .part is not the server's (a mixed file)")

    def note(self, after: int, record: bool, kept: Kept) -> str:
        """What is worth knowing about the state a kill left, for the report."""
        return ""

    def complete(self) -> Kept | None:
        return Kept(self.size, [(0, self.size)], 0, 0) if self.dest.exists() else None


class StreamSubject(Subject):
    """One stream: the ``.part`` holds the file's first bytes, all of them kept (after the overlap check)."""

    def resume_state(self, label: str) -> Kept:
        done = self.complete()
        if done is not None:
            return done
        part = self.part.read_bytes() if self.part.exists() else b""
        self.check_prefix(part, len(part), label, "a one-stream .part is continued from its end")
        return Kept(len(part), [(0, len(part))], OVERLAP, overlap(len(part)))


class RangesSubject(Subject):
    """Pieces in a preallocated ``.part``: what is on disk is the blocks written; what is kept is the record's."""

    def on_disk(self) -> int:
        try:
            # The .part is sparse until written (PartWriter.preallocate): its blocks are the bytes written.
            return min(self.part.stat().st_blocks * 512, self.size)
        except FileNotFoundError:
            return self.size if self.dest.exists() else 0

    def resume_state(self, label: str) -> Kept:
        done = self.complete()
        if done is not None:
            return done
        part = self.part.read_bytes() if self.part.exists() else b""
        record = read_record(self.dest)
        if record is None:
            # Without a record a .part is taken for one stream's and kept whole if its last
            # 64 KiB are the server's (killed between the preallocation and the first record,
            # or between dropping the record and the rename); else it is fetched again.
            check = overlap(len(part))
            if not part or part[-check:] != self.data[len(part) - check : len(part)]:
                return Kept(0, [], OVERLAP, check)
            self.check_prefix(part, len(part), label, "a .part without a record whose end matches is kept whole")
            return Kept(len(part), [(0, len(part))], OVERLAP, check)
        assert record.get("kind") == "ranges", f"{label}: a {record.get('kind')} record"
        segs = from_record(record["segments"], record["total"], len(part))
        if segs is None:
            return Kept(0, [], OVERLAP, 0)
        checks = 0
        prev = None
        for s in segs:
            got = part[s.start : s.start + s.done]
            if got != self.data[s.start : s.start + s.done]:
                at = s.start + first_difference(got, self.data[s.start : s.start + s.done])
                raise AssertionError(f"{label}: the record says piece {s.start}-{s.end} has {s.done} bytes, "
                                     f"but byte {at} of the .part is not the server's (a mixed file)")
            if s.left:
                # Each unfinished piece checks its own end, or that of the finished piece before it.
                before = s.done or (prev.end - prev.start if prev is not None and not prev.left else 0)
                checks += overlap(before)
            prev = s
        regions = merged([(s.start, s.start + s.done) for s in segs])
        return Kept(sum(s.done for s in segs), regions, OVERLAP, checks)

    def lost_bound(self, after: int, record: bool) -> int:
        # Bytes written since the last record update are fetched again: up to a record interval's.
        return super().lost_bound(after, record) + int(self.rate * (SAVE_EVERY + 0.25))


class HlsSubject(Subject):
    """Segments appended in order: the ``.part`` is their concatenation; what is kept is the
    record's whole segments, the last of which is fetched again and compared."""

    def __init__(self, *args: Any, media_url: str, segment: int, at_once: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.media_url, self.segment, self.at_once = media_url, segment, at_once

    def asked(self, marks: list[int]) -> list[tuple[int, int]]:
        # Segment i is bytes [i * segment, (i + 1) * segment) of the file: all are the same size.
        return [(i * self.segment, (i + 1) * self.segment)
                for i, (route, mark) in enumerate(zip(self.routes, marks, strict=True))
                for _ in route.requests[mark:]]

    def resume_state(self, label: str) -> Kept:
        done = self.complete()
        if done is not None:
            return done
        part = self.part.read_bytes() if self.part.exists() else b""
        record = read_record(self.dest)
        end = last = 0
        if record is not None and record.get("kind") == "hls" and record.get("url") == self.media_url:
            for start, stop, length in record["segments"] or []:
                if start != end or stop > len(part):
                    break  # the record ran ahead of the disk: the rest is fetched again
                end, last = stop, length
        self.check_prefix(part, end, label, f"the record says the first {end} bytes are whole segments")
        return Kept(end, [(0, end)], self.segment, last)

    def lost_bound(self, after: int, record: bool) -> int:
        # Segments on their way or fetched but not yet appended (twice the segments fetched at
        # once), and those appended since the record was last written (at most once a second,
        # on the next append).
        pending = 2 * self.at_once * self.segment
        return super().lost_bound(after, record) + pending + int(self.rate * SAVE_EVERY) + self.at_once * self.segment


def check_requests(asked: list[tuple[int, int]], kept: Kept, label: str, history: str) -> int:
    """Assert that a run asked again for none of the bytes it started with but the ends it
    compares with the disk, and for nothing twice; return how many it asked for again."""
    again = 0
    for a, b in asked:
        for start, end in kept.regions:
            lo, hi = max(a, start), min(b, end)
            if lo < hi:
                assert hi == end and hi - lo <= kept.tail, (
                    f"{label} asked for bytes {a}-{b - 1}, {hi - lo} of which ({lo}-{hi - 1}) it had on disk "
                    f"(bytes {start}-{end - 1} kept); only the last {kept.tail} of those are fetched again, to "
                    f"compare\n{history}"
                )
                again += hi - lo
    assert again <= kept.check, (
        f"{label} asked again for {again} bytes it had, more than the {kept.check} it compares\n{history}"
    )
    ranges = sorted(asked)
    for (_, b1), (a2, b2) in zip(ranges, ranges[1:], strict=False):
        assert b1 <= a2, f"{label} asked twice for bytes {a2}-{min(b1, b2) - 1}: {ranges}\n{history}"
    return again


# --------------------------------------------------------------------------- the crash loop


@dataclass
class Attempt:
    """One run and how it ended."""

    run: int
    kind: str  # the moment it was killed at; "to the end" for the last one
    target: str
    finished: bool  # the file was in place after it
    note: str
    seen: int  # bytes on disk at the last look before the kill
    after: int  # bytes on disk once the process was dead
    record: bool  # the resume record was there after the kill
    elapsed: float  # seconds from the run's first request to the kill
    exit: int
    kept_before: int  # bytes of the file the run started with
    kept_after: int  # and that the next run starts with
    requests: int
    sent: int  # body bytes the server wrote for this run
    recheck: int  # bytes it had and asked for again, to compare with the disk
    allowed: int  # the most the kill may throw away
    wall: float  # seconds from the fork to the server's last byte for this run

    @property
    def lost(self) -> int:
        """Bytes fetched that the file did not gain, other than the ones compared: what the kill
        threw away. (A run killed before its comparison arrived got less than it asked for.)"""
        return max(self.sent - (self.kept_after - self.kept_before) - self.recheck, 0)

    def line(self) -> str:
        return (
            f"run {self.run:2d} {self.kind:<16} {self.target:<24} seen {self.seen:>9} after {self.after:>9} "
            f"record {'yes' if self.record else 'no ':3} {self.elapsed:5.2f}/{self.wall:5.2f} s exit {self.exit:>3} "
            f"kept {self.kept_before:>9}->{self.kept_after:>9} asked {self.requests:>2} sent {self.sent:>9} "
            f"checked {self.recheck:>6} lost {self.lost:>8} (may lose {self.allowed})"
            + (" finished" if self.finished else "") + (f" [{self.note}]" if self.note else "")
        )


#: The last moments: a kill there may find the file already in place.
FINAL = ("nearly-full", "nearly-full", "full", "full")


def schedule(rng: random.Random) -> list[str]:
    """The kinds of the 30 moments, in order. The first two land in a fresh download's first
    second (before a one-stream download has written its record); the final ones come last,
    since after them there is nothing left to download."""
    middle = ["at-first-request"] * 5 + ["first-second"] * 8 + ["mid"] * 10
    rng.shuffle(middle)
    kinds = ["first-second", "first-second", "at-first-request", *middle, *FINAL]
    assert len(kinds) == KILLS
    return kinds


class CrashLoop:
    """Kills a download at :data:`KILLS` moments, resuming it each time; then lets one run finish."""

    def __init__(self, subject: Subject, forker: Forker, logs: Path, seed: int) -> None:
        self.subject, self.forker, self.logs = subject, forker, logs
        self.rng = random.Random(seed)
        self.kinds = schedule(self.rng)
        size = subject.size
        self.mids = iter(sorted(int(size * self.rng.uniform(0.03, 0.93)) for _ in range(self.kinds.count("mid"))))
        nearly = [size - self.rng.randint(1, size // 10) for _ in range(self.kinds.count("nearly-full"))]
        self.nearly = iter(sorted(nearly))
        self.trigger = Trigger()
        for r in subject.watched:
            r.on_request = self.trigger.on_request
        logs.mkdir(exist_ok=True)
        self.attempts: list[Attempt] = []
        #: What the next run starts from.
        self.kept = Kept(0, [], OVERLAP, 0)

    def history(self) -> str:
        return "\n".join(a.line() for a in self.attempts)

    def run(self) -> list[Attempt]:
        for i, kind in enumerate([*self.kinds, "to the end"]):
            if self.attempt(i, kind).exit == 0:
                break  # finished (before the kill could land): nothing left to kill
        return self.attempts

    def moment(self, kind: str, sent0: int, base: int) -> tuple[str, Callable[[int], bool], float]:
        """What the run is killed at: a description, a test of the bytes on disk, how often to look."""
        subject, trigger, rng, size = self.subject, self.trigger, self.rng, self.subject.size
        after_start = max(base, self.kept.size)
        if kind == "first-second":
            # A random amount of what the server sends in half a second (all connections
            # running), but less than what is left to fetch.
            want = min(rng.randint(subject.step, int(subject.rate * 0.5)), self.kept.check + (size - after_start) // 2)
            return f"sent {want}", lambda disk: subject.sent() - sent0 >= want, POLL
        if kind in ("mid", "nearly-full"):
            drawn = next(self.mids if kind == "mid" else self.nearly)
            want = min(max(drawn, after_start + subject.step), size - 1)
            return f"on disk {want}", lambda disk: trigger.started is not None and disk >= want, POLL
        if kind == "full":
            # The last byte is in the .part: the process is closing, checking and renaming it,
            # which takes a millisecond or two; so the .part is looked at without pausing.
            at_end = lambda disk: trigger.started is not None and subject.part.exists() and disk >= size  # noqa: E731
            return f"on disk {size}", at_end, 0.0
        # "at-first-request" (the server's hook kills it), and the last run: only its end.
        return "", lambda disk: False, POLL

    def attempt(self, i: int, kind: str) -> Attempt:
        subject, trigger = self.subject, self.trigger
        trigger.reset(armed=kind == "at-first-request")
        sent0, base, marks = subject.sent(), subject.on_disk(), subject.marks()
        target, met, interval = self.moment(kind, sent0, base)
        previous = self.attempts[-1].kind if self.attempts else None
        label = f"{subject.name}, run {i} (killed {kind} {target}"
        label += f", after the {previous} kill)" if previous else ")"
        began = time.monotonic()
        run = self.forker.start(subject.url, subject.dest, subject.options, self.logs / f"run{i:02d}.log")
        trigger.set_pid(run.pid)
        seen = [base]

        def look() -> bool:
            seen[0] = subject.on_disk()  # the last look before the kill
            return run.poll() is not None or met(seen[0])

        try:
            wait_until(look, timeout=60, interval=interval, what=f"{label}'s moment")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.history()}\n{run.output()}") from None
        killed_at = time.monotonic()
        if kind != "to the end":
            run.kill()
        code = run.wait(60)
        ok = {0} if kind == "to the end" else {0, -signal.SIGKILL}
        assert code in ok, f"{label} exited {code}:\n{run.output()}\n{self.history()}"
        after, record = subject.on_disk(), _files.sidecar_path(subject.dest).exists()
        kept = subject.resume_state(label)
        # What the server had begun writing to the dead connection is counted once it gives up
        # (within one throttle pause); looked at after the disk, which takes as long.
        wait_until(lambda: subject.gauge.now == 0, timeout=10, what=f"the server to finish answering {label}")
        asked = subject.asked(marks)
        started = trigger.started
        a = Attempt(
            run=i, kind=kind, target=target, finished=subject.dest.exists(), note=subject.note(after, record, kept),
            seen=seen[0], after=after, record=record, elapsed=killed_at - started if started is not None else 0.0,
            exit=code, kept_before=self.kept.size, kept_after=kept.size, requests=len(asked),
            sent=subject.sent() - sent0, recheck=check_requests(asked, self.kept, label, self.history()),
            allowed=subject.lost_bound(after, record) if code != 0 else 0, wall=time.monotonic() - began,
        )  # fmt: skip
        self.attempts.append(a)
        assert a.lost <= a.allowed, (
            f"{label} fetched {a.lost} bytes the file did not gain (besides the {a.recheck} it compared), "
            f"more than the {a.allowed} a kill may throw away:\n{self.history()}\n{run.output()}"
        )
        self.kept = kept
        return a


def check_outcome(subject: Subject, attempts: list[Attempt]) -> str:
    """Assert what the last run left and what all runs fetched; return a summary of the totals."""
    history = "\n".join(a.line() for a in attempts)
    kills = [a for a in attempts if a.exit != 0]
    assert subject.dest.exists(), f"{subject.name}: no file after {len(attempts)} runs\n{history}"
    got = subject.dest.read_bytes()
    assert sha(got) == sha(subject.data), (
        f"{subject.name}: the final file is not the server's (size {len(got)} of {subject.size}"
        + (f", first wrong byte {first_difference(got, subject.data)}" if len(got) == subject.size else "")
        + f")\n{history}"
    )
    assert leftovers(subject.dest.parent) == [subject.dest.name], f"{subject.name}: left behind\n{history}"
    if isinstance(subject, StreamSubject):
        # The point of the first moments: bytes on disk, and no record of them yet (a single
        # stream writes it a second in).
        first = attempts[0]
        assert first.after > 0 and not first.record, f"the first kill did not land before the record:\n{history}"
    landed = [a for a in kills if not a.finished]
    # A kill that comes after the file is in place proves nothing; how many do depends on how
    # fast the machine resumes, so two thirds must find work left, or the test lost its power.
    assert len(landed) >= KILLS * 2 // 3, f"{subject.name}: only {len(landed)} kills found work left\n{history}"
    total = sum(a.sent for a in attempts)
    rechecks = sum(a.recheck for a in attempts)
    allowed = sum(a.allowed for a in attempts)
    thrown = sum(a.lost for a in attempts)
    growth = sum(max(a.after - a.seen, 0) for a in kills)
    summary = (
        f"{subject.name}: fetched {total / subject.size:.3f} x the file ({total} bytes for {subject.size}) over "
        f"{len(attempts)} runs ({len(kills)} killed, {len(landed)} of them before the file was in place): "
        f"{rechecks} asked again to compare with the disk, {thrown} thrown away by the kills (of which the .part "
        f"gained {growth} after the last looks; {allowed} allowed)"
        + "".join(f"; run {a.run}: {a.note}" for a in attempts if a.note)
    )
    assert total <= subject.size + rechecks + allowed, f"{summary}\n{history}"
    return summary


# --------------------------------------------------------------------------- the three downloads


_prefixes = itertools.count()


def file_subject(cls: type[Subject], server: LocalServer, folder: Path, *, size: int, rate: float,
                 connections: int, seed: int) -> Subject:
    data = make_video(size, seed=seed)
    gauge = Concurrency()
    route = Route(data, rate=rate, concurrency=gauge)  # the throttle is per request, so per connection
    url = server.add(f"/crash{next(_prefixes)}/clip.mp4", route)
    options: dict[str, Any] = {} if connections == 1 else {"connections": connections}
    return cls("file", data, url, folder / "out" / "clip.mp4", [route], [route], gauge, rate * connections,
               connections, options)


def ts_segment(size: int, seed: int) -> bytes:
    """Bytes that look like MPEG-TS: 188-byte packets starting with the sync byte 0x47."""
    data = bytearray(random.Random(seed).randbytes(size))
    data[::188] = b"\x47" * len(range(0, size, 188))
    return bytes(data)


def hls_subject(server: LocalServer, folder: Path, *, segments: int, segment: int, rate: float) -> Subject:
    prefix = f"/crash{next(_prefixes)}/"
    gauge = Concurrency()
    datas = [ts_segment(segment, seed=1000 + i) for i in range(segments)]
    routes = [Route(d, content_type="video/mp2t", rate=rate, concurrency=gauge) for d in datas]
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:1", "#EXT-X-PLAYLIST-TYPE:VOD"]
    for i, r in enumerate(routes):
        server.add(f"{prefix}seg{i}.ts", r)
        lines += ["#EXTINF:1.000,", f"seg{i}.ts"]
    lines.append("#EXT-X-ENDLIST")
    playlist = Route(("\n".join(lines) + "\n").encode(), content_type="application/vnd.apple.mpegurl")
    url = server.add(prefix + "index.m3u8", playlist)
    at_once = 4  # vidnb's HLS_SEGMENTS: the segments connections=1 fetches at once
    # The segments as served, joined in order: these look like MPEG-TS only to the media check,
    # so they could not be remuxed into an MP4 (remux=True), nor need to be for this test.
    return HlsSubject(
        "hls", b"".join(datas), url, folder / "out" / "clip.ts", routes, routes, gauge, rate * at_once, at_once,
        {"remux": False}, media_url=url, segment=segment, at_once=at_once,
    )


def one_stream(server: LocalServer, folder: Path) -> Subject:
    return file_subject(StreamSubject, server, folder, size=32 * MiB, rate=4 * MiB, connections=1, seed=1)


def eight_connections(server: LocalServer, folder: Path) -> Subject:
    return file_subject(RangesSubject, server, folder, size=24 * MiB, rate=1.5 * MiB, connections=8, seed=2)


def hls_segments(server: LocalServer, folder: Path) -> Subject:
    return hls_subject(server, folder, segments=40, segment=512 * 1024, rate=2 * MiB)


#: Each download (made on the server, in a folder of its own) and the seed of its moments.
DOWNLOADS: dict[str, tuple[Callable[[LocalServer, Path], Subject], int]] = {
    "one-stream": (one_stream, SEED),
    "8-connections": (eight_connections, SEED + 1),
    "hls": (hls_segments, SEED + 2),
}
Outcome = tuple[Subject, list[Attempt]]


def crash(name: str, server: LocalServer, folder: Path) -> Outcome:
    make, seed = DOWNLOADS[name]
    subject = make(server, folder)
    subject.name = name
    with Forker() as forker:
        return subject, CrashLoop(subject, forker, folder / "logs", seed).run()


@pytest.fixture(scope="module")
def crashes(request: pytest.FixtureRequest, server: LocalServer,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future[Outcome]]]:
    """The crash loops of the downloads selected, run at once, each in a thread with its own forker.

    One after another they took 50 s, and not for want of bandwidth: a connections=8 or HLS
    run killed before its record's next update (once a second) keeps nothing, so those two
    loops last about a second per kill whatever the size and rate. Each loop mostly waits
    on its throttled routes, so running them together costs the slowest one's time.
    """
    wanted = sorted({item.callspec.params["download"] for item in request.session.items
                     if getattr(item, "module", None) is request.module and hasattr(item, "callspec")})
    with ThreadPoolExecutor(max(len(wanted), 1), thread_name_prefix="crash") as pool:
        yield {name: pool.submit(crash, name, server, tmp_path_factory.mktemp(name)) for name in wanted}


@pytest.mark.parametrize("download", DOWNLOADS)
def test_a_download_killed_30_times_ends_whole(crashes: dict[str, Future[Outcome]], download: str) -> None:
    subject, attempts = crashes[download].result()
    print(check_outcome(subject, attempts), *(a.line() for a in attempts), sep="\n")
