"""Progress reporting: what the engine says while it downloads, and who listens.

The engine counts bytes in a :class:`Tracker`, which wakes a reporter at most
``MAX_RATE`` times a second: the notebook server drops IOPub traffic above about
1000 messages/s, and an unthrottled bar freezes. A reporter is anything with the
:class:`ProgressReporter` methods: the tqdm.auto bar, a widget row, a test double,
or a plain callable wrapped by :class:`CallableReporter`. tqdm is imported only when a
bar is made.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, Union, runtime_checkable

from ._fmt import shorten

log = logging.getLogger("vidnb")

#: Updates per second per bar, at most.
MAX_RATE = 10.0

State = Literal["running", "done", "failed", "cancelled"]


@dataclass(frozen=True)
class ProgressEvent:
    """One progress report.

    Attributes
    ----------
    name : str
        The file name being written.
    done : int
        Bytes on disk so far, including bytes resumed from an earlier run.
    total : int or None
        The full size, when the server said it.
    speed : float
        Recent transfer rate in bytes per second.
    elapsed : float
        Seconds since this call started.
    state : str
        "running", then "done", "failed" or "cancelled".
    error : str or None
        The error message when ``state == "failed"``.
    stage : str or None
        What is happening before any byte arrives ("finding the video" while a web page is
        read); None once bytes flow.
    title : str or None
        For a web page's video: the page's title (``name`` is the file's).
    """

    name: str
    done: int
    total: int | None
    speed: float
    elapsed: float
    state: State = "running"
    error: str | None = None
    stage: str | None = None
    title: str | None = None

    @property
    def fraction(self) -> float | None:
        return self.done / self.total if self.total else None


@runtime_checkable
class ProgressReporter(Protocol):
    """Receives progress; implement these three methods to plug in your own display."""

    def start(self, name: str, total: int | None, initial: int) -> None: ...

    def update(self, event: ProgressEvent) -> None: ...

    def close(self, event: ProgressEvent) -> None: ...


ProgressOption = Union[bool, str, Callable[[ProgressEvent], Any], ProgressReporter, None]


class Tracker:
    """Counts bytes for one download and forwards throttled events to a reporter."""

    __slots__ = ("reporter", "name", "done", "total", "_t0", "_next", "_last_t", "_last_done", "speed", "_started")

    def __init__(self, reporter: ProgressReporter | None, name: str = "") -> None:
        self.reporter = reporter
        self.name = name
        self.done = 0
        self.total: int | None = None
        self.speed = 0.0
        self._t0 = time.monotonic()
        self._next = 0.0
        self._last_t = self._t0
        self._last_done = 0
        self._started = False

    def begin(self, name: str, total: int | None, initial: int) -> None:
        """(Re)start counting: called for each response, since a restart may reset the offset."""
        self.name, self.total, self.done = name, total, initial
        self._last_done, self._last_t = initial, time.monotonic()
        if self.reporter is not None:
            self.reporter.start(name, total, initial)
            self._started = True
        self._next = self._last_t + 1.0 / MAX_RATE

    def stage(self, text: str) -> None:
        """Say what happens before bytes flow ("finding the video"): an event whose ``stage`` says it."""
        if self.reporter is not None:
            self.reporter.start(self.name, None, 0)
            self._started = True
            self.reporter.update(ProgressEvent(self.name, 0, None, 0.0, time.monotonic() - self._t0, stage=text))

    def advance(self, n: int) -> None:
        self.done += n
        if self.reporter is not None:
            now = time.monotonic()
            if now >= self._next:
                self._next = now + 1.0 / MAX_RATE
                self.reporter.update(self._event(now))

    def _event(self, now: float, state: State = "running", error: str | None = None) -> ProgressEvent:
        dt = now - self._last_t
        if dt > 0.05:
            rate = (self.done - self._last_done) / dt
            # Smooth so the number is readable, but follow real changes within a second.
            self.speed = rate if self.speed == 0 else 0.5 * self.speed + 0.5 * rate
            self._last_t, self._last_done = now, self.done
        return ProgressEvent(self.name, self.done, self.total, self.speed, now - self._t0, state, error)

    def end(self, state: State, error: str | None = None) -> None:
        if self.reporter is None:
            return
        if not self._started:
            self.reporter.start(self.name, self.total, self.done)
            self._started = True
        now = time.monotonic()
        ev = self._event(now, state, error)
        if state == "done":
            # Report the average of the whole call: the honest figure once it is over.
            elapsed = max(now - self._t0, 1e-9)
            ev = ProgressEvent(ev.name, ev.done, ev.total or ev.done, ev.speed or ev.done / elapsed, ev.elapsed, state)
        self.reporter.close(ev)


class CallableReporter:
    """Adapts a plain function: it is called with every :class:`ProgressEvent`, including the last."""

    def __init__(self, fn: Callable[[ProgressEvent], Any]) -> None:
        self.fn = fn
        self._broken = False

    def start(self, name: str, total: int | None, initial: int) -> None:
        self._call(ProgressEvent(name, initial, total, 0.0, 0.0))

    def update(self, event: ProgressEvent) -> None:
        self._call(event)

    def close(self, event: ProgressEvent) -> None:
        self._call(event)

    def _call(self, event: ProgressEvent) -> None:
        if self._broken:
            return
        try:
            self.fn(event)
        except Exception:
            # A broken callback must not break the download; say so once.
            self._broken = True
            log.exception("progress callback %r raised; it will not be called again for this download", self.fn)


# Bytes with their unit, speed and ETA; a size-less download gets no percentage or ETA.
_FORMAT_SIZED = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}B/{total_fmt}B [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
_FORMAT_UNSIZED_TEXT = "{desc}: {n_fmt}B [{elapsed}, {rate_fmt}{postfix}]"
# The notebook bar splits its text around {bar}: keep one so the name stays on the left.
_FORMAT_UNSIZED_NOTEBOOK = "{desc}: |{bar}| {n_fmt}B [{elapsed}, {rate_fmt}{postfix}]"


class TqdmReporter:
    """A tqdm.auto bar: a widget in Jupyter, text on stderr in a terminal.

    Shows the name, bytes, speed and ETA. The bar is indeterminate (the notebook's
    full "info" bar) while the size is unknown, ends green on success, red with the
    error's message on failure, and marked "cancelled" (orange in a notebook) on cancel.
    Updates are throttled by the :class:`Tracker` upstream, so tqdm draws each one.
    """

    def __init__(self, **tqdm_kwargs: Any) -> None:
        self.kwargs = tqdm_kwargs
        self.bar: Any = None

    @property
    def is_widget(self) -> bool:
        return self.bar is not None and hasattr(self.bar, "container")

    def open(self, name: str) -> None:
        """Draw the bar before the server answered (so it belongs to the cell that asked)."""
        if self.bar is None:
            self._make(name, None, 0)

    def _make(self, name: str, total: int | None, initial: int) -> None:
        from tqdm.auto import tqdm

        opts = dict(
            desc=shorten(name),
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            # vidnb throttles itself; tqdm must draw every update it is given.
            mininterval=0,
            miniters=1,
            leave=True,
            dynamic_ncols=True,
            bar_format=_FORMAT_SIZED if total else _FORMAT_UNSIZED_TEXT,
        )
        opts.update(self.kwargs)
        self.bar = tqdm(total=total, initial=initial, **opts)
        self._set_format(total)

    def _set_format(self, total: int | None) -> None:
        if "bar_format" in self.kwargs:
            return
        if total:
            fmt = _FORMAT_SIZED
        else:
            fmt = _FORMAT_UNSIZED_NOTEBOOK if self.is_widget else _FORMAT_UNSIZED_TEXT
        self.bar.bar_format = fmt
        if self.is_widget and not total:
            self.bar.container.children[1].bar_style = "info"

    def start(self, name: str, total: int | None, initial: int) -> None:
        bar = self.bar
        if bar is None:
            self._make(name, total, initial)
            return
        # A (re)start: the bar was opened early, or the server made us begin again.
        bar.reset(total=total)
        bar.total = total  # reset(total=None) keeps the old total; an unknown size must show as one
        bar.set_description_str(shorten(name), refresh=False)
        # Resumed bytes count as done, but not towards the speed.
        bar.n = bar.last_print_n = bar.initial = initial
        self._set_format(total)
        bar.refresh()

    def update(self, event: ProgressEvent) -> None:
        bar = self.bar
        if bar is None:
            return
        if event.stage:
            bar.set_description_str(shorten(event.stage))  # until bytes flow and start() names the file
            return
        if event.total != bar.total:
            if not (event.total and bar.total):
                # Between known and unknown size the bar changes shape: draw it anew.
                self.start(event.name, event.total, event.done)
                return
            # A better estimate (HLS streams refine theirs): keep the rate and ETA going.
            bar.total = event.total
            if self.is_widget:
                bar.container.children[1].max = event.total
        bar.update(event.done - bar.n)

    def close(self, event: ProgressEvent) -> None:
        bar = self.bar
        if bar is None:
            return
        if event.state == "done":
            if event.total != bar.total:
                bar.total = event.total
                if self.is_widget:
                    bar.container.children[1].max = event.total or 1
            bar.bar_format = _FORMAT_SIZED if "bar_format" not in self.kwargs else bar.bar_format
            bar.update(event.done - bar.n)
            bar.close()  # a notebook bar turns green here
            return
        label = "cancelled" if event.state == "cancelled" else f"failed: {event.error or 'error'}"
        bar.n = event.done  # the bytes kept in the .part, drawn with the final frame
        bar.set_postfix_str(label[:200], refresh=False)
        if self.is_widget:
            bar.close()
            # close() paints "danger" only when n < total; make the outcome explicit either way.
            style = "warning" if event.state == "cancelled" else "danger"
            bar.disp(bar_style=style, check_delay=False)
        else:
            bar.set_description_str(("⊘ " if event.state == "cancelled" else "✗ ") + shorten(event.name), refresh=False)
            bar.close()


def in_notebook() -> bool:
    """True inside a Jupyter kernel (without importing IPython if nobody has)."""
    ipy = sys.modules.get("IPython")
    if ipy is None or "ipykernel" not in sys.modules:
        return False
    try:
        shell = ipy.get_ipython()
    except Exception:
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None


def can_draw() -> bool:
    """Whether ``progress="auto"`` draws bars here: in a notebook, or with stderr on a terminal."""
    stream = sys.stderr
    tty = bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())
    return tty or in_notebook()


def make_reporter(progress: ProgressOption) -> ProgressReporter | None:
    """Turn the ``progress=`` argument into a reporter, or None for no progress."""
    if progress is None or progress is False:
        return None
    if progress == "auto":
        return TqdmReporter() if can_draw() else None
    if progress is True:
        return TqdmReporter()
    if isinstance(progress, str):
        raise ValueError(f"progress={progress!r} is not understood; use 'auto', True, False or a callable.")
    if isinstance(progress, ProgressReporter):
        return progress
    if callable(progress):
        return CallableReporter(progress)
    raise TypeError(
        f"progress must be 'auto', True, False, a callable or a ProgressReporter, not {type(progress).__name__}"
    )
