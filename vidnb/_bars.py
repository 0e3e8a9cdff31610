"""A batch's progress bars: one overall bar (files, bytes, speed) and one reused bar per running download.

The engine's reporters (:class:`Slot`) only record numbers; a ticker task redraws at
``DRAW_RATE``. So per-file cost is a few attribute writes whatever the file count, and
there are never more than ``concurrency`` file bars, each redrawn a few times a second at
most. A cluster run uses the overall bar alone and sets its figures itself. tqdm is
imported only when bars are made.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ._fmt import human_bytes, human_rate, shorten
from ._progress import ProgressEvent, ProgressOption, ProgressReporter, can_draw, make_reporter

__all__ = ["DRAW_RATE", "Bars", "Slot", "batch_progress", "stop_task"]

#: Redraws of the batch's bars per second (the notebook server drops IOPub traffic above ~1000 msg/s).
DRAW_RATE = 4.0


class Slot:
    """Progress of the file one worker is on: recorded by the engine, drawn by :class:`Bars`.

    A :class:`~vidnb.ProgressReporter` for every file the worker downloads, one after another.
    """

    __slots__ = ("bars", "name", "done", "total", "item", "drawn_item", "seen", "t_start", "initial")

    def __init__(self, bars: Bars) -> None:
        self.bars = bars
        self.name = ""
        self.done = 0
        self.total: int | None = None
        self.item = 0  # bumped per file, so the drawer knows to reset the bar
        self.drawn_item = 0
        self.seen = 0  # bytes of this file already counted in the overall figure
        self.t_start = 0.0
        self.initial = 0

    def next_item(self) -> None:
        self.item += 1
        self.seen = 0

    def start(self, name: str, total: int | None, initial: int) -> None:
        # Resumed bytes are not fetched by this call: they count for the file, not the speed.
        self.name, self.total, self.done, self.seen = name, total, initial, initial
        self.t_start, self.initial = time.time(), initial  # tqdm's clock is time.time

    def update(self, event: ProgressEvent) -> None:
        self.done, self.total = event.done, event.total
        if event.done > self.seen:
            self.bars.fetched += event.done - self.seen
            self.seen = event.done

    def close(self, event: ProgressEvent) -> None:
        self.update(event)


class Bars:
    """The overall bar (files, with bytes and speed) and, with ``file_bars``, one reused bar per worker.

    ``fetched``, ``finished`` and ``failed`` are the overall figures: the slots add to
    ``fetched``, :meth:`item_finished` to the others (or the owner sets all three).

    Examples
    --------
    >>> bars = Bars(n_items=10, concurrency=2, file_bars=True)  # doctest: +SKIP
    >>> bars.start(); ...; await bars.close()                   # doctest: +SKIP
    """

    def __init__(self, n_items: int, concurrency: int, file_bars: bool) -> None:
        from tqdm.auto import tqdm

        self.tqdm = tqdm
        self.t0 = time.monotonic()
        self.fetched = 0
        self.finished = 0
        self.failed = 0
        self.slots = [Slot(self) for _ in range(concurrency)]
        self.file_bars: list[Any] = [None] * concurrency if file_bars else []
        self.overall = tqdm(
            total=n_items, desc="vidnb", unit="file", position=0, leave=True, dynamic_ncols=True, mininterval=0
        )
        self._ticker: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start redrawing, on the running loop, until :meth:`close`."""
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(1.0 / DRAW_RATE)
            self.draw()

    def item_finished(self, ok: bool) -> None:
        self.finished += 1
        self.failed += not ok

    def draw(self) -> None:
        bar = self.overall
        elapsed = max(time.monotonic() - self.t0, 1e-9)
        post = f"{human_bytes(self.fetched)}, {human_rate(self.fetched / elapsed)}"
        if self.failed:
            post += f", {self.failed} failed"
        bar.set_postfix_str(post, refresh=False)
        bar.n = self.finished
        bar.refresh()
        for i, slot in enumerate(self.slots[: len(self.file_bars)]):
            self._draw_slot(i, slot)

    def _draw_slot(self, i: int, slot: Slot) -> None:
        bar = self.file_bars[i]
        if slot.item == 0 or (slot.drawn_item == slot.item and bar is not None and bar.n == slot.done):
            return
        if bar is None:
            bar = self.file_bars[i] = self.tqdm(
                total=slot.total, desc=shorten(slot.name, 30), unit="B", unit_scale=True, unit_divisor=1024,
                position=i + 1, leave=False, dynamic_ncols=True, mininterval=0,
            )
        elif slot.drawn_item != slot.item:
            bar.set_description_str(shorten(slot.name, 30), refresh=False)
            bar.reset(total=slot.total)
        slot.drawn_item = slot.item
        # The bar outlives files: give it this file's start so its speed is this file's.
        bar.start_t, bar.initial = slot.t_start, slot.initial
        bar.n = slot.done
        bar.refresh()

    async def close(self) -> None:
        """Stop the ticker, draw the final figures and close every bar."""
        await stop_task(self._ticker)
        self.draw()
        for bar in self.file_bars:
            if bar is not None:
                bar.close()
        self.overall.close()


def batch_progress(
    progress: ProgressOption, n_items: int, concurrency: int, *, file_bars: bool
) -> tuple[Bars | None, ProgressReporter | None]:
    """What a batch's ``progress=`` asks for: its bars, a reporter for its events, or neither.

    ``"auto"`` draws bars in a notebook or a terminal and nothing elsewhere; ``True``
    always draws them; a callable or a :class:`~vidnb.ProgressReporter` gets the events.

    Examples
    --------
    >>> batch_progress(False, 10, 2, file_bars=True)
    (None, None)
    """
    if progress == "auto" or progress is True:
        if progress is True or can_draw():
            return Bars(n_items, concurrency, file_bars=file_bars), None
        return None, None
    if progress is None or progress is False:
        return None, None
    return None, make_reporter(progress)


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel a helper task (a bar ticker) and wait until it has stopped.

    Examples
    --------
    >>> await stop_task(ticker)  # doctest: +SKIP
    """
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
