"""DownloadPanel: paste URLs, press Download, watch one row per video, preview the results.

Downloads run on the kernel's loop, so the panel stays responsive and other cells run
meanwhile; at most ``concurrency`` at a time, through a :class:`~vidnb.widgets._pool.Pool`
that shares one session among them, while the rest wait in the queue. Button callbacks may
arrive on another thread (ipykernel 7.0-7.3 runs them on a subshell thread); they hop onto
the loop captured when the panel was made, so every download and every widget update
happens on the loop. Each row is a :class:`vidnb.ProgressReporter`: the engine throttles
it to 10 updates/s.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import replace
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from .._errors import VidnbError
from .._fmt import human_bytes, human_duration, human_rate
from .._handle import in_loop_thread
from .._options import MAX_CONNECTIONS, Connections, Options, check_connections, check_rate, make_options
from .._progress import ProgressEvent
from .._result import DownloadResult, path_name
from .._urls import choose_filename, validate_url
from ._player import Player, Shown
from ._pool import CONCURRENCY, Pool, RowTask, background_loop
from ._posters import Poster, PosterQueue

if TYPE_CHECKING:
    import aiohttp
    from typing_extensions import Unpack

    from .._options import DownloadOptions

log = logging.getLogger("vidnb")

# Options the panel sets itself: each row is its download's progress display.
_PANEL_OWNED = {"progress"}
#: Width of a finished row's poster frame in pixels (shown at half that: sharp on dense screens).
ROW_POSTER_WIDTH = 128
# What the Connections control offers: "auto", then every count the engine takes.
_CONNECTION_CHOICES: list[tuple[str, Connections]] = [("auto", "auto")]
_CONNECTION_CHOICES += [(str(n), n) for n in range(1, MAX_CONNECTIONS + 1)]


class DownloadRow:
    """One download in the panel: poster frame, name, bar, bytes/speed/ETA, state, Cancel and Preview.

    It is the download's progress reporter, so the engine drives it (at most 10 times a
    second); all its updates run on the kernel's loop. Its state goes from "queued" (waiting
    for a slot in the panel's pool) to "connecting", "downloading", then "done", "failed"
    or "cancelled".

    Examples
    --------
    >>> row = panel.rows[0]            # doctest: +SKIP
    >>> row.state, row.info.value      # doctest: +SKIP
    ('downloading', '1.2 MiB of 4.0 MiB · 900.0 KiB/s · ETA 3.2 s')
    >>> result = await row.wait()      # doctest: +SKIP
    """

    def __init__(self, panel: DownloadPanel, url: str, folder: Path) -> None:
        self.panel = panel
        self.url = url
        self.folder = folder
        #: The download, from the moment the row is queued (None if it could not be queued).
        self.task: RowTask | None = None
        self.result: DownloadResult | None = None
        self.error: str | None = None
        #: The latest progress event the engine sent.
        self.last: ProgressEvent | None = None
        self._ended: concurrent.futures.Future[None] = concurrent.futures.Future()
        # Text columns share the width; buttons keep their natural size, and Preview is only
        # made invisible (not removed) until it applies, so the columns of all rows line up.
        name = choose_filename(url, None) or url  # what the engine would call it, short of the server's say
        self.name = w.HTML(escape(name), layout=w.Layout(flex="3 1 0", min_width="0"))
        self.name.add_class("vidnb-row-name")
        self.bar = w.IntProgress(value=0, min=0, max=1, bar_style="info", layout=w.Layout(flex="3 1 0", min_width="0"))
        self.bar.add_class("vidnb-row-bar")
        self.info = w.Label("", layout=w.Layout(flex="4 1 0", min_width="0"))
        self.info.add_class("vidnb-row-info")
        self.state_label = w.Label("queued", layout=w.Layout(flex="1 1 0", min_width="0"))
        self.state_label.add_class("vidnb-row-state")
        self.cancel_button = w.Button(
            description="Cancel", icon="times", layout=w.Layout(flex="0 0 auto", width="auto")
        )
        self.cancel_button.add_class("vidnb-row-cancel")
        self.cancel_button.on_click(lambda _: self.panel._on_loop(self.cancel))
        self.preview_button = w.Button(
            description="Preview", icon="play", layout=w.Layout(flex="0 0 auto", width="auto", visibility="hidden")
        )
        self.preview_button.add_class("vidnb-row-preview")
        self.preview_button.on_click(lambda _: self.panel._on_loop(self.show_preview))
        # A finished download's poster frame, made in the background; hidden like Preview until it arrives.
        self.poster = w.Image(
            format="jpeg",
            layout=w.Layout(width="64px", height="36px", object_fit="contain", flex="0 0 auto", visibility="hidden"),
        )
        self.poster.add_class("vidnb-row-poster")
        self.box = w.HBox(
            [self.poster, self.name, self.bar, self.info, self.state_label, self.cancel_button, self.preview_button]
        )
        self.box.add_class("vidnb-row")
        self.box.add_class("vidnb-queued")

    # ----------------------------------------------------------------- state

    @property
    def state(self) -> str:
        """"queued", "connecting", "downloading", "done", "failed" or "cancelled"."""
        return str(self.state_label.value).split(":", 1)[0]

    def _set_state(self, state: str) -> None:
        # The row's CSS class follows its state, for styling and for browser tests.
        self.box.remove_class(f"vidnb-{self.state}")
        self.state_label.value = state
        self.box.add_class(f"vidnb-{self.state}")

    def begin(self) -> None:
        """Called by the pool when this row's download gets its slot and starts."""
        self._set_state("connecting")

    def cancel(self) -> None:
        """Stop this download, or take it out of the queue; a ``.part`` stays, so downloading
        it again resumes."""
        if self.task is not None:
            self.task.cancel()

    def show_preview(self) -> None:
        if self.result is not None:
            self.panel.show(self.result)

    async def wait(self) -> DownloadResult | None:
        """Wait until this row's download ended; its result, or None if it failed or was cancelled."""
        # Waits for the painting, not the task: a task that had already ended when this was
        # called has its done callback still queued on the loop. A thread-safe future, as a
        # panel used from a script paints on its own loop's thread.
        await asyncio.wrap_future(self._ended)
        return self.result

    def _closed_state(self) -> bool:
        return self.state in ("done", "failed", "cancelled")

    # ----------------------------------------------------------------- ProgressReporter

    def start(self, name: str, total: int | None, initial: int) -> None:
        with self.bar.hold_sync():
            self.bar.max = total or 1
            self.bar.value = initial if total else 1
            self.bar.bar_style = "" if total else "info"  # "info" full bar: size unknown
        if name:  # a folder destination has no name until the server answers
            self.name.value = escape(name)
        self._set_state("downloading")
        self.last = ProgressEvent(name, initial, total, 0.0, 0.0)
        self.info.value = _describe(self.last)

    def update(self, event: ProgressEvent) -> None:
        self.last = event
        if event.stage:
            # Before any byte: what is happening ("finding the video" while a page is read).
            self.info.value = escape(event.stage)
            return
        if event.title and self.name.value != escape(event.title):
            self.name.value = escape(event.title)  # a web page's video: the page's title, not the file's name
        if event.total:
            with self.bar.hold_sync():
                if self.bar.max != event.total:
                    self.bar.max = event.total
                self.bar.value = min(event.done, event.total)
        self.info.value = _describe(event)

    def close(self, event: ProgressEvent) -> None:
        self.last = event
        if event.title:
            self.name.value = escape(event.title)
        with self.bar.hold_sync():
            if event.total:
                self.bar.max = event.total
                self.bar.value = min(event.done, event.total)
            self.bar.bar_style = {"done": "success", "cancelled": "warning"}.get(event.state, "danger")
        self.info.value = _describe(event)
        if event.state == "failed":
            self._show_error(event.error or "failed")

    def _finished(self, task: RowTask) -> None:
        """Paint the outcome once the task ended (also for errors before any progress)."""
        try:
            self._paint(task)
        finally:
            self._mark_ended()  # even if painting failed: wait() must not hang

    def _mark_ended(self) -> None:
        if not self._ended.done():
            self._ended.set_result(None)

    def _paint(self, task: RowTask) -> None:
        self.task = task
        self.cancel_button.disabled = True
        state = task.state
        if state == "done":
            self.result = task.result()
            self.name.value = escape(self.result.title or path_name(self.result.path))
            self.info.value = f"{human_bytes(self.result.size)}" + (
                " (already there)" if self.result.skipped else f" in {human_duration(self.result.elapsed)}"
            )
            self.preview_button.layout.visibility = "visible"
            self._set_state("done")
            self.panel._poster_for(self)
        elif state == "cancelled":
            self.bar.bar_style = "warning"
            if self.state == "queued":
                self.info.value = "cancelled while queued"
            self._set_state("cancelled")
        else:
            self.failed(str(task.exception()))
            return
        self.panel._row_finished(self)

    def set_poster(self, poster: Poster) -> None:
        """Show the poster frame made for this row's file (nothing when none could be made)."""
        if poster.jpeg is None:
            log.debug("no poster for %s: %s", poster.path, poster.error)
            return
        self.poster.value = poster.jpeg
        self.poster.layout.visibility = "visible"
        self.poster.add_class("vidnb-poster-ready")

    def failed(self, message: str) -> None:
        """Show the row as failed with ``message``, and tell the panel it is over."""
        self.cancel_button.disabled = True
        with self.bar.hold_sync():
            self.bar.bar_style = "danger"
        self._show_error(message)
        self._set_state("failed")
        self.state_label.tooltip = message
        self.panel._row_finished(self)
        self._mark_ended()

    def _show_error(self, message: str) -> None:
        self.error = message
        self.info.value = message
        self.info.add_class("vidnb-row-error")

    def __repr__(self) -> str:
        return f"<DownloadRow {self.url}: {self.state}>"


def _describe(ev: ProgressEvent) -> str:
    """"12.0 MiB of 48.0 MiB · 9.8 MiB/s · ETA 4.1 s" (the parts that are known)."""
    parts = [f"{human_bytes(ev.done)} of {human_bytes(ev.total)}" if ev.total else human_bytes(ev.done)]
    if ev.state == "running":
        if ev.speed:
            parts.append(human_rate(ev.speed))
            if ev.total:
                parts.append("ETA " + human_duration(max(ev.total - ev.done, 0) / ev.speed))
    elif ev.state == "cancelled":
        parts.append("cancelled, .part kept")
    return " · ".join(parts)


class DownloadPanel:
    """A notebook panel to download several videos and preview them.

    Paste URLs (one per line), choose a folder, press Download: each URL gets a row
    with a progress bar, its speed and ETA, a Cancel button and, once done, a poster frame
    (made in the background) and a Preview button that plays it in the panel (after
    making the copy that plays, for a file browsers cannot play as it is). At most
    ``concurrency`` downloads run at once, on one shared session; the other rows show
    "queued" until their turn, and can be cancelled meanwhile. Invalid input is reported
    in the panel and starts nothing; a failed download shows its error in its row. The
    panel never raises into a cell, and other cells run while it downloads.

    Parameters
    ----------
    dest_dir : str or Path
        The initial destination folder (created when the downloads start).
    concurrency : int
        Downloads running at once (default 8, as for :func:`vidnb.download_many`).
    **download_options
        The options of :func:`vidnb.download`, applied to every URL (``retries=``,
        ``headers=``, ``max_bytes=`` ...; not ``sha256=``, which fits one file, nor
        ``progress=``: the rows are the progress). ``connections`` (a count or ``"auto"``),
        ``overwrite`` and ``max_rate`` (the Limit box: bytes per second for all the panel's
        downloads together, such as ``"5M"``) preset the panel's controls. A ``session`` given here is used
        for every download and never closed; otherwise the panel makes one while it has
        downloads queued or running.

    Raises
    ------
    TypeError, ValueError
        An option the panel does not take, or a bad value: before any widget exists.

    Examples
    --------
    >>> panel = vidnb.DownloadPanel("videos", concurrency=4, connections="auto")  # doctest: +SKIP
    >>> panel                                   # last in a cell: shows the panel
    """

    def __init__(
        self,
        dest_dir: str | os.PathLike[str] = "downloads",
        *,
        concurrency: int = CONCURRENCY,
        **download_options: Unpack[DownloadOptions],
    ) -> None:
        owned = sorted(_PANEL_OWNED & set(download_options))
        if owned:
            raise TypeError(f"DownloadPanel does not take {', '.join(owned)}=: each row shows its download's progress")
        if download_options.get("sha256") is not None:
            # Options apply to every URL pasted, and one hash fits one file.
            raise TypeError(
                "DownloadPanel does not take sha256=: it would apply to every URL. Check a hash with "
                "vidnb.download(url, dest, sha256=...), or a sha256 column in a download_many manifest."
            )
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be a whole number >= 1, not {concurrency!r}")
        #: The checked options every download starts from (the controls set overwrite and connections).
        self.options: Options = make_options(**download_options)
        self.concurrency = concurrency
        self._given_session: aiohttp.ClientSession | None = download_options.get("session")
        self._pool: Pool | None = None
        # Made in a cell, on the kernel's main thread: the loop later clicks hop onto.
        self.loop: asyncio.AbstractEventLoop | None = _running_loop()
        self.rows: list[DownloadRow] = []
        self._posters: PosterQueue[DownloadRow] | None = None

        self.urls = w.Textarea(placeholder="Video URLs, one per line", rows=4, layout=w.Layout(width="100%"))
        self.urls.add_class("vidnb-urls")
        self.dest = w.Text(value=str(dest_dir), description="Folder", layout=w.Layout(width="50%"))
        self.dest.add_class("vidnb-dest")
        self.connections = w.Dropdown(
            options=_CONNECTION_CHOICES, value=self.options.connections, description="Connections",
            layout=w.Layout(width="170px"), style={"description_width": "initial"},
        )  # fmt: skip
        self.connections.add_class("vidnb-connections")
        self.overwrite = w.Checkbox(value=self.options.overwrite, description="Overwrite", indent=False)
        self.overwrite.add_class("vidnb-overwrite")
        self.max_rate = w.Text(
            value=_rate_text(self.options.max_rate), placeholder="no limit", description="Limit/s",
            layout=w.Layout(width="150px"), style={"description_width": "initial"},
        )  # fmt: skip
        self.max_rate.add_class("vidnb-max-rate")
        self.download_button = w.Button(description="Download", button_style="primary", icon="download")
        self.download_button.add_class("vidnb-download")
        self.download_button.on_click(lambda _: self._on_loop(self.submit))
        self.cancel_all_button = w.Button(description="Cancel all", icon="stop", disabled=True)
        self.cancel_all_button.add_class("vidnb-cancel-all")
        self.cancel_all_button.on_click(lambda _: self._on_loop(self.cancel_all))
        self.message = w.HTML("")
        self.message.add_class("vidnb-message")
        self.rows_box = w.VBox([])
        self.rows_box.add_class("vidnb-rows")
        self.preview_area = w.Output()
        self.preview_area.add_class("vidnb-preview")
        #: Plays what a row's Preview button chose, in the preview area.
        self.player = Player(self.preview_area, self._widget_loop)
        controls = w.HBox(
            [self.dest, self.connections, self.max_rate, self.overwrite, self.download_button, self.cancel_all_button]
        )
        self.widget = w.VBox([self.urls, controls, self.message, self.rows_box, self.preview_area])
        self.widget.add_class("vidnb-panel")

    @property
    def session(self) -> aiohttp.ClientSession | None:
        """The session the panel's downloads share while any is queued or running (else None)."""
        return self._pool.session if self._pool is not None else self._given_session

    # ----------------------------------------------------------------- display

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):
            bundle = {**bundle, "text/plain": repr(self)}
        return bundle

    def __repr__(self) -> str:
        states: dict[str, int] = {}
        for row in self.rows:
            states[row.state] = states.get(row.state, 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in states.items()) or "no downloads"
        return f"<DownloadPanel {self.dest.value!r}: {summary}>"

    # ----------------------------------------------------------------- actions

    def _on_loop(self, action: Callable[[], object]) -> None:
        """Run a button's action on the panel's loop, never raising into the caller."""
        loop = self.loop
        if loop is not None and not loop.is_closed() and loop.is_running() and not in_loop_thread(loop):
            loop.call_soon_threadsafe(self._guarded, action)
        else:
            self._guarded(action)

    def _guarded(self, action: Callable[[], object]) -> None:
        try:
            action()
        except Exception as exc:  # the panel must never raise into a cell or the kernel's log
            log.exception("DownloadPanel: %s failed", getattr(action, "__name__", action))
            self._say(f"Something went wrong: {exc}", error=True)

    def _say(self, text: str, *, error: bool = False) -> None:
        colour = "#b00020" if error else "inherit"
        self.message.value = f'<span style="color:{colour}">{escape(text, quote=False)}</span>' if text else ""
        if error:
            self.message.add_class("vidnb-error")
        else:
            self.message.remove_class("vidnb-error")

    def submit(self) -> list[DownloadRow]:
        """Queue a download for each URL in the box (what the Download button does).

        Returns the new rows; nothing is queued when any URL or the folder is invalid.
        """
        lines = [(i, line.strip()) for i, line in enumerate(self.urls.value.splitlines(), 1)]
        lines = [(i, line) for i, line in lines if line and not line.startswith("#")]
        if not lines:
            self._say("Paste one or more video URLs (one per line), then press Download.", error=True)
            return []
        urls = []
        for i, line in lines:
            try:
                urls.append(validate_url(line))
            except VidnbError as exc:
                self._say(f"Line {i}: {exc} Nothing was started.", error=True)
                return []
        try:
            folder = _writable_folder(self.dest.value)
        except OSError as exc:
            self._say(f"Cannot save into {self.dest.value!r}: {exc.strerror or exc}. Nothing was started.", error=True)
            return []
        try:
            rate = check_rate(self.max_rate.value.strip() or None)
        except ValueError as exc:
            self._say(f"Limit: {exc}. Nothing was started.", error=True)
            return []
        if rate != self.options.max_rate:
            # One limit for everything the panel downloads: later rows share the new one.
            self.options = replace(self.options, max_rate=rate)
        options = replace(
            self.options, overwrite=bool(self.overwrite.value), connections=check_connections(self.connections.value)
        )
        new = [DownloadRow(self, url, folder) for url in urls]
        self.rows.extend(new)
        self.rows_box.children = tuple(r.box for r in self.rows)
        self.cancel_all_button.disabled = False
        self._say(f"Downloading {len(new)} video{'s' if len(new) != 1 else ''} into {folder}.")
        self._queue(new, options)
        return new

    def _queue(self, rows: list[DownloadRow], options: Options) -> None:
        """Hand the rows to the pool, in order: the first ``concurrency`` start at once."""
        loop = self._widget_loop()
        if self._pool is None or self._pool.loop is not loop:
            self._pool = Pool(self.concurrency, loop, self._given_session)
        pool = self._pool
        for row in rows:
            coro = pool.run(row.url, row.folder, replace(options, progress=row), row.begin)
            try:
                row.task = RowTask(coro, loop, row._finished, _last_event_of(row))
            except Exception as exc:  # noqa: BLE001 - whatever stops a start is shown on its row
                coro.close()
                row.failed(str(exc))

    def cancel_all(self) -> None:
        """Cancel every download still running (what Cancel all does)."""
        for row in self.rows:
            if not row._closed_state():
                row.cancel()

    def _widget_loop(self) -> asyncio.AbstractEventLoop:
        """The loop downloads and widget updates run on: the kernel's, else vidnb's own thread's."""
        return self.loop if self.loop is not None and self.loop.is_running() else background_loop()

    def show(self, source: Any) -> concurrent.futures.Future[Shown]:
        """Show a video in the panel's preview area (what a row's Preview button does).

        A video browsers play shows at once; one they cannot play (an HLS ``.ts``, an AVI, ...)
        shows a bar while its playable copy is made in the background. Returns a future of
        what is shown, resolved once it is.
        """
        return self.player.play(source)

    @property
    def shown(self) -> Shown | None:
        """What the preview area shows (a Video widget, a ReferencePreview or a PreviewNote)."""
        return self.player.shown

    def _poster_for(self, row: DownloadRow) -> None:
        """Have the poster frame of a finished row's file made in the background."""
        if row.result is None or not isinstance(row.result.path, Path):
            return  # an object on object storage gets no poster: it would be fetched whole
        if self._posters is None:
            self._posters = PosterQueue(self._widget_loop(), DownloadRow.set_poster, ROW_POSTER_WIDTH)
        self._posters.submit(row, row.result.path)

    def _row_finished(self, row: DownloadRow) -> None:
        if all(r._closed_state() for r in self.rows):
            self.cancel_all_button.disabled = True
            counts = {s: sum(r.state == s for r in self.rows) for s in ("done", "failed", "cancelled")}
            summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
            self._say(f"Finished: {summary}.", error=counts["failed"] > 0)

    async def wait(self) -> list[DownloadResult | None]:
        """Wait for every row's download; their results (None for failed or cancelled ones).

        Examples
        --------
        >>> results = await panel.wait()   # doctest: +SKIP
        """
        return [await row.wait() for row in list(self.rows)]


def _last_event_of(row: DownloadRow) -> Callable[[], ProgressEvent | None]:
    return lambda: row.last


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _rate_text(rate: int | None) -> str:
    """``max_rate`` as the Limit box shows it, in words :func:`~vidnb._options.check_rate` reads back."""
    if rate is None:
        return ""
    for unit, size in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if rate % size == 0:
            return f"{rate // size}{unit}"
    return str(rate)


def _writable_folder(value: str) -> Path:
    """Create the folder if needed and prove it takes files (``os.access`` lies for root)."""
    if not value.strip():
        raise OSError(0, "no folder given")
    folder = Path(value.strip()).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder):
        pass
    return folder
