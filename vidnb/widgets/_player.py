"""The player of the gallery and the panel: an output area showing one video at a time.

A video browsers play is shown at once, as :func:`~vidnb.widgets.preview` shows it. One
they cannot play needs :func:`vidnb.make_playable` first, which may take a while (a
re-encode runs at a few hundred frames a second): that runs in a worker thread while the
area shows a bar, so the kernel stays free, and the copy is shown once made. Everything
that touches a widget runs on the owner's loop (the kernel's, in a notebook); the worker
hops there with ``call_soon_threadsafe``. A later choice replaces an earlier one, even
one still being made.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import html
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Union

import ipywidgets as w

from .._progress import ProgressEvent
from ._posters import media_errors
from ._preview import (
    Look,
    PreviewNote,
    ReferencePreview,
    Source,
    embed_limit,
    needs_copy,
    playable_copy,
    preview,
    show_file,
    source_path,
)

__all__ = ["Player", "Shown"]

log = logging.getLogger("vidnb")

#: What a player area shows.
Shown = Union[w.Video, ReferencePreview, PreviewNote]

_converter: concurrent.futures.ThreadPoolExecutor | None = None
_converter_lock = threading.Lock()


def _executor() -> concurrent.futures.ThreadPoolExecutor:
    # One copy at a time: two copies of one file at once would write the same .part.
    global _converter
    with _converter_lock:
        if _converter is None:
            _converter = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="vidnb-playable")
        return _converter


class Player:
    """Plays one video at a time in ``area``; all its methods run on ``loop()``'s thread.

    Parameters
    ----------
    area : ipywidgets.Output
        Where the player goes (its outputs are set directly: ``Output``'s context manager
        is not safe off the main thread, and this needs no IPython shell).
    loop : callable
        Returns the loop widget updates are made on.
    look : Look, optional
        Player width and options.

    Examples
    --------
    >>> player = Player(ipywidgets.Output(), asyncio.get_running_loop)  # doctest: +SKIP
    >>> shown = await asyncio.wrap_future(player.play("videos/talk.ts"))  # doctest: +SKIP
    """

    def __init__(
        self, area: w.Output, loop: Callable[[], asyncio.AbstractEventLoop], look: Look | None = None
    ) -> None:
        self.area = area
        self.look = look or Look()
        self._loop = loop
        self._turn = 0
        #: What the area shows now (a Video widget, a ReferencePreview or a PreviewNote).
        self.shown: Shown | None = None
        #: The bar shown while a copy that plays is being made (None otherwise).
        self.bar: w.IntProgress | None = None

    def play(self, source: Source, caption: str | None = None) -> concurrent.futures.Future[Shown]:
        """Show ``source`` (with ``caption`` above it); resolves to what is shown once it is.

        A video browsers play is shown before this returns; one that needs a playable copy
        shows a bar until the copy is made.
        """
        self._turn += 1
        turn = self._turn
        done: concurrent.futures.Future[Shown] = concurrent.futures.Future()
        limit = embed_limit(None)
        copy: tuple[int, Any] | None = None
        if not isinstance(source, (bytes, bytearray, memoryview)):
            path = source_path(source)
            try:
                copy = needs_copy(path)
            except OSError as exc:  # gone or unreadable since it was listed
                self._finish(turn, PreviewNote(str(exc), "error"), caption, done)
                return done
        if copy is None:
            shown = preview(source, width=self.look.width, autoplay=self.look.autoplay, loop=self.look.loop,
                            muted=self.look.muted)  # fmt: skip
            self._finish(turn, shown, caption, done)
            return done
        size, fmt = copy
        self.bar = w.IntProgress(value=0, min=0, max=1, bar_style="info", layout=w.Layout(width="240px"))
        label = w.Label(f"Making a copy of {path.name} that browsers play (once: it is kept beside it)")
        box = w.HBox([label, self.bar])
        box.add_class("vidnb-making")
        self._set_outputs(caption, box)
        loop = self._loop()
        reporter = _BarReporter(self.bar, lambda fn: _soon(loop, fn))
        made = _executor().submit(playable_copy, path, fmt, size, limit, reporter)
        made.add_done_callback(lambda f: _soon(loop, lambda: self._made(turn, f, path, limit, caption, done)))
        return done

    def _made(
        self,
        turn: int,
        made: concurrent.futures.Future[Path | PreviewNote],
        source: Path,
        limit: int,
        caption: str | None,
        done: concurrent.futures.Future[Shown],
    ) -> None:
        exc = made.exception()
        if exc is not None:
            if not isinstance(exc, media_errors()):
                log.error("making a playable copy of %s failed", source, exc_info=exc)
            shown: Shown = PreviewNote(f"No copy of {source} that plays could be made: {exc}", "error")
        else:
            result = made.result()
            shown = result if isinstance(result, PreviewNote) else show_file(result, limit, self.look, source)
        self._finish(turn, shown, caption, done)

    def _finish(self, turn: int, shown: Shown, caption: str | None, done: concurrent.futures.Future[Shown]) -> None:
        if turn == self._turn:  # else another video was chosen meanwhile: it keeps the area
            self.bar = None
            self.shown = shown
            self._set_outputs(caption, shown)
        done.set_result(shown)

    def _set_outputs(self, caption: str | None, shown: Any) -> None:
        outputs = []
        if caption is not None:
            text = html.escape(caption)
            data = {"text/plain": caption, "text/html": f'<div class="vidnb-caption">{text}</div>'}
            outputs.append({"output_type": "display_data", "data": data, "metadata": {}})
        bundle = shown._repr_mimebundle_()
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        outputs.append({"output_type": "display_data", "data": data, "metadata": {}})
        self.area.outputs = tuple(outputs)


def _soon(loop: asyncio.AbstractEventLoop, fn: Callable[[], None]) -> None:
    """Run ``fn`` on ``loop``'s thread (from any thread); dropped when the loop is gone."""
    try:
        loop.call_soon_threadsafe(fn)
    except RuntimeError:  # closed: nobody is left to see it
        log.debug("loop closed; dropped %r", fn)


class _BarReporter:
    """make_playable's progress (milliseconds of media), drawn on a bar through ``hop``.

    Called in the worker thread; every widget change is handed to the loop.
    """

    def __init__(self, bar: w.IntProgress, hop: Callable[[Callable[[], None]], None]) -> None:
        self.bar = bar
        self.hop = hop

    def start(self, name: str, total: int | None, initial: int) -> None:
        def paint() -> None:
            with self.bar.hold_sync():
                self.bar.max = total or 1
                self.bar.value = initial if total else 1
                self.bar.bar_style = "" if total else "info"  # a full "info" bar: length unknown

        self.hop(paint)

    def update(self, event: ProgressEvent) -> None:
        if event.total:
            total, done = event.total, event.done
            self.hop(lambda: self._set(total, done))

    def close(self, event: ProgressEvent) -> None:
        style = "success" if event.state == "done" else "danger"
        total, done = event.total or 1, event.done if event.total else 1

        def paint() -> None:
            with self.bar.hold_sync():
                self._set(total, done if event.state != "done" else total)
                self.bar.bar_style = style

        self.hop(paint)

    def _set(self, total: int, done: int) -> None:
        if self.bar.max != total:
            self.bar.max = total
        self.bar.value = min(done, total)
