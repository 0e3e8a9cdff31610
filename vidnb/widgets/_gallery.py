"""``vidnb.gallery``: the videos of a folder (or of a batch of downloads) as a grid of poster frames.

The grid is made at once, with a placeholder in each tile and only what a directory listing
tells (name, size), so a folder of hundreds of videos shows as soon as the cell runs. The
pictures and the figures that need the file opened (duration, resolution) come from
:class:`~vidnb.widgets._posters.PosterQueue`: made in a small thread pool, cached on disk,
applied on the kernel's loop as they arrive. A tile's name is a button: it plays the video
in the gallery's player, through :func:`~vidnb.widgets.preview` (a copy that plays is made
first for formats browsers refuse).

Every tile is four widgets sharing their layouts and styles (one model each for the whole
grid, not one per tile, which would double the models to make, send and render), with their
CSS classes given at construction (each ``add_class`` afterwards is one more message):
200 tiles take about 0.3 s to make in a kernel.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import mimetypes
import os
import re
from collections.abc import Callable, Iterable, Iterator
from html import escape
from pathlib import Path
from typing import Any, Literal, Union

import ipywidgets as w
from ipywidgets.widgets.widget_string import HTMLStyle  # not exported by the package

from .._errors import DestinationError
from .._fmt import human_bytes
from .._handle import in_loop_thread
from .._outcomes import ItemOutcome
from .._read import reading
from .._result import DownloadResult, local_file
from .._sniff import SNIFF_BYTES, format_from_name, sniff
from .._videoinfo import VideoInfo
from ._player import Player, Shown
from ._pool import background_loop
from ._posters import Poster, PosterQueue, describe, poster_width
from ._preview import Look

__all__ = ["Gallery", "Tile", "gallery", "find_videos"]

log = logging.getLogger("vidnb")

GallerySource = Union[str, "os.PathLike[str]", DownloadResult, Iterable[Union[DownloadResult, ItemOutcome, str,
                      "os.PathLike[str]", None]]]  # fmt: skip
TileState = Literal["pending", "ready", "failed"]

# 16:9 placeholders, drawn by the browser (no bytes to make): waiting, and no picture to be had.
_WAITING = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 160 90"><rect width="160" height="90" fill="#e6e6e6"/>'
    b'<path d="M72 33 L90 45 L72 57 Z" fill="#c4c4c4"/></svg>'
)
_NO_PICTURE = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 160 90"><rect width="160" height="90" fill="#f4f4f4"/>'
    b'<text x="80" y="50" font-family="sans-serif" font-size="11" fill="#999" text-anchor="middle">no picture</text>'
    b"</svg>"
)
# Files beside the videos that are not videos of their own: downloads under way, HLS
# working files and separate audio renditions.
_WORKING = re.compile(r"(\.part|\.part\.json|\.tmp|\.hls\.\w+|\.hls\.audio\.ts|\.audio\.ts)$", re.IGNORECASE)
_COPY = re.compile(r"^(?P<stem>.+)\.playable\.(mp4|webm)$", re.IGNORECASE)


class Tile:
    """One video of a :class:`Gallery`: its poster, its name (a button that plays it) and its figures.

    Attributes
    ----------
    path : Path
    size : int
        Bytes, from the folder listing.
    state : str
        "pending" (placeholder shown), then "ready" (picture shown) or "failed" (none could be made).
    info : VideoInfo or None
        What :func:`vidnb.probe` found, once the poster arrived.
    error : str or None
        Why there is no picture.

    Examples
    --------
    >>> tile = g.tiles[0]                               # doctest: +SKIP
    >>> tile.state, tile.figures.value                  # doctest: +SKIP
    ('ready', '<div class="vidnb-figures" ...>0:03 · 320×240 · 105.4 KiB</div>')
    >>> tile.button.click()                             # plays it in the gallery  # doctest: +SKIP
    """

    def __init__(self, path: Path, size: int, shared: _Shared, on_click: Callable[[Tile], None]) -> None:
        self.path = path
        self.size = size
        self.state: TileState = "pending"
        self.info: VideoInfo | None = None
        self.error: str | None = None
        self.cached = False
        # Classes are given to the constructors: each add_class() afterwards is one more message.
        self.poster = w.Image(value=_WAITING, format="svg+xml", layout=shared.poster, _dom_classes=("vidnb-poster",))
        self.button = w.Button(description=path.name, icon="play", tooltip=f"Play {path.name}", layout=shared.button,
                               style=shared.button_style, _dom_classes=("vidnb-tile-play",))  # fmt: skip
        self.button.on_click(lambda _: on_click(self))
        self.figures = w.HTML(_figures(describe(None, size)), layout=shared.figures, style=shared.figures_style)
        self.box = w.VBox([self.poster, self.button, self.figures], layout=shared.tile,
                          _dom_classes=("vidnb-tile", "vidnb-tile-pending"))  # fmt: skip

    def fill(self, poster: Poster) -> None:
        """Show what was made for this video (on the widgets' loop)."""
        self.info, self.error, self.cached = poster.info, poster.error, poster.cached
        state: TileState = "ready" if poster.jpeg is not None else "failed"
        with self.poster.hold_sync():
            if poster.jpeg is not None:
                self.poster.format, self.poster.value = "jpeg", poster.jpeg
            else:
                self.poster.format, self.poster.value = "svg+xml", _NO_PICTURE
        text = describe(poster.info, self.size) + ("" if poster.jpeg is not None else " · no picture")
        self.figures.value = _figures(text, poster.error)
        self.box.remove_class(f"vidnb-tile-{self.state}")
        self.state = state
        self.box.add_class(f"vidnb-tile-{state}")

    def __repr__(self) -> str:
        return f"<Tile {self.path.name}: {self.state}>"


def _figures(text: str, error: str | None = None) -> str:
    title = f' title="{escape(error, quote=True)}"' if error else ""
    return f'<div class="vidnb-figures"{title} style="font-size:85%;color:#555;line-height:1.3">{escape(text)}</div>'


class _Shared:
    """The layouts and styles every tile uses: one widget model each for the whole grid."""

    def __init__(self, tile_width: int) -> None:
        inner = tile_width - 8  # the tile's padding
        self.tile = w.Layout(width=f"{tile_width}px", padding="4px", overflow="hidden")
        self.poster = w.Layout(width=f"{inner}px", height=f"{round(inner * 9 / 16)}px", object_fit="contain")
        self.button = w.Layout(width=f"{inner}px", margin="4px 0 0 0")
        self.button_style = w.ButtonStyle()
        self.figures = w.Layout(width=f"{inner}px", margin="0")
        self.figures_style = HTMLStyle()

    def widgets(self) -> list[w.Widget]:
        return [self.tile, self.poster, self.button, self.button_style, self.figures, self.figures_style]


class Gallery:
    """A grid of videos with poster frames, names and figures; click a name to play it.

    Made by :func:`gallery`. The grid shows at once with placeholders; the pictures arrive
    in the background. ``gallery.widget`` is the ipywidgets tree (put the gallery last in
    a cell, or ``display()`` it).

    Attributes
    ----------
    tiles : list of Tile
        One per video, in the grid's order.
    player : Player
        The area under the grid where the chosen video plays.
    shown : Video, ReferencePreview, PreviewNote or None
        What the player shows.
    playing : concurrent.futures.Future or None
        The last :meth:`play` (resolves to what is shown once it is).

    Examples
    --------
    >>> g = vidnb.gallery("videos/")      # doctest: +SKIP
    >>> g                                 # last in a cell: shows the grid
    <Gallery 12 videos in videos/>
    >>> await g.wait()                    # every picture is in  # doctest: +SKIP
    >>> g.play("talk.ts")                 # as clicking its name  # doctest: +SKIP
    """

    def __init__(
        self, paths: list[Path], *, where: str | None = None, thumbnail_width: int = 320, tile_width: int = 200,
        look: Look | None = None,
    ) -> None:  # fmt: skip
        self.where = where
        self.loop: asyncio.AbstractEventLoop = _running_loop() or background_loop()
        self._all_in: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._left = len(paths)
        self.missing_av = False
        self._shared = shared = _Shared(tile_width)
        self.tiles = [Tile(p, _size(p), shared, self._clicked) for p in paths]
        self.header = w.HTML(self._header())
        self.header.add_class("vidnb-gallery-header")
        self.grid = w.GridBox(
            [t.box for t in self.tiles],
            layout=w.Layout(grid_template_columns=f"repeat(auto-fill, {tile_width}px)", grid_gap="8px"),
        )
        self.grid.add_class("vidnb-gallery-grid")
        area = w.Output()
        area.add_class("vidnb-gallery-player")
        self.player = Player(area, lambda: self.loop, look)
        self.playing: concurrent.futures.Future[Shown] | None = None
        self._current: Tile | None = None
        self.widget = w.VBox([self.header, self.grid, area])
        self.widget.add_class("vidnb-gallery")
        self._posters: PosterQueue[Tile] = PosterQueue(self.loop, self._filled, thumbnail_width)
        for tile in self.tiles:
            self._posters.submit(tile, tile.path)
        if not self.tiles:
            self._all_in.set_result(None)

    # ----------------------------------------------------------------- the grid

    def __len__(self) -> int:
        return len(self.tiles)

    def __iter__(self) -> Iterator[Tile]:
        return iter(self.tiles)

    @property
    def ready(self) -> int:
        """Tiles whose poster arrived (a picture, or the word that none can be made)."""
        return len(self.tiles) - self._left

    def _filled(self, tile: Tile, poster: Poster) -> None:
        tile.fill(poster)
        if poster.missing_av and not self.missing_av:
            self.missing_av = True
            self.header.value = self._header()
        self._left -= 1
        if self._left == 0 and not self._all_in.done():
            self._all_in.set_result(None)

    async def wait(self) -> Gallery:
        """Wait until every tile has its poster (or the word that it has none); the gallery.

        Examples
        --------
        >>> g = await vidnb.gallery("videos/").wait()   # doctest: +SKIP
        """
        await asyncio.wrap_future(self._all_in)
        return self

    def close(self) -> None:
        """Stop making pictures not made yet, and close the widgets (the gallery disappears).

        Examples
        --------
        >>> g.close()   # doctest: +SKIP
        """
        self._posters.close()
        for tile in self.tiles:
            for widget in (tile.poster, tile.button, tile.figures, tile.box):
                widget.close()
        for widget in (self.header, self.grid, self.player.area, self.widget, *self._shared.widgets()):
            widget.close()

    def _header(self) -> str:
        n = len(self.tiles)
        where = f" in {escape(self.where)}" if self.where else ""
        if n == 0:
            return f'<div class="vidnb-gallery-title">No videos{where}.</div>'
        total = sum(t.size for t in self.tiles)
        text = f"<b>{n} video{'s' if n != 1 else ''}</b>{where} · {human_bytes(total)}"
        if self.missing_av:
            text += ('<div class="vidnb-note" style="color:#b00020">Poster frames and durations need PyAV: '
                     "pip install av</div>")  # fmt: skip
        return f'<div class="vidnb-gallery-title">{text}</div>'

    # ----------------------------------------------------------------- playing

    def play(self, which: Tile | int | str | os.PathLike[str]) -> concurrent.futures.Future[Shown]:
        """Play a video of the gallery in its player (what clicking its name does).

        Parameters
        ----------
        which : Tile, int or path
            The tile, its index, or its file (a name in the folder, or a path).

        Returns
        -------
        concurrent.futures.Future
            Resolves to what the player shows, once it shows it (at once for a video
            browsers play; after its playable copy was made otherwise).

        Examples
        --------
        >>> g.play("talk.ts")                              # doctest: +SKIP
        >>> shown = await asyncio.wrap_future(g.play(0))   # doctest: +SKIP
        """
        tile = self._tile(which)
        if self._current is not None:
            self._current.box.remove_class("vidnb-tile-playing")
            self._current.button.button_style = ""
        self._current = tile
        tile.box.add_class("vidnb-tile-playing")
        tile.button.button_style = "info"  # the one playing stands out in the grid
        self.playing = self.player.play(tile.path, caption=f"▶ {tile.path.name}")
        return self.playing

    @property
    def shown(self) -> Shown | None:
        """What the player shows: a Video widget, a ReferencePreview, a PreviewNote, or None."""
        return self.player.shown

    def _tile(self, which: Tile | int | str | os.PathLike[str]) -> Tile:
        if isinstance(which, Tile):
            return which
        if isinstance(which, int):
            return self.tiles[which]
        wanted = Path(which)
        for tile in self.tiles:
            if tile.path == wanted or tile.path.name == str(which) or _same_file(tile.path, wanted):
                return tile
        raise KeyError(f"{which!r} is not in this gallery")

    def _clicked(self, tile: Tile) -> None:
        """A click, from whatever thread the kernel delivers it on: play on the gallery's loop."""
        loop = self.loop
        if not loop.is_closed() and loop.is_running() and not in_loop_thread(loop):
            loop.call_soon_threadsafe(self._play_guarded, tile)
        else:
            self._play_guarded(tile)

    def _play_guarded(self, tile: Tile) -> None:
        try:
            self.play(tile)
        except Exception:  # a click must never raise into the kernel's log without a word in the gallery
            log.exception("gallery: playing %s failed", tile.path)

    # ----------------------------------------------------------------- display

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):
            bundle = {**bundle, "text/plain": repr(self)}
        return bundle

    def __repr__(self) -> str:
        n = len(self.tiles)
        where = f" in {self.where}" if self.where else ""
        return f"<Gallery {n} video{'s' if n != 1 else ''}{where}>"


def gallery(
    source: GallerySource,
    *,
    thumbnail_width: int = 320,
    tile_width: int = 200,
    width: int | None = None,
    autoplay: bool = False,
    muted: bool = False,
) -> Gallery:
    """A grid of videos with poster frames: put it last in a cell; click a name to play it.

    The grid shows at once, each tile with a placeholder, its name and size. Poster frames,
    durations and resolutions are made in the background (two threads; the kernel stays
    free) and fill in as they are made. They are cached in
    ``$XDG_CACHE_HOME/vidnb/thumbnails/`` (``~/.cache/vidnb/thumbnails/``), keyed by each
    file's path, size and modification time: showing a folder again decodes nothing.

    Parameters
    ----------
    source : str, Path, DownloadResult or iterable
        A folder (its videos, not those of its subfolders, by name: files with a video
        extension, or without a known one whose first bytes are a video), one file, or a
        list of downloads' results or paths (``None`` entries, the failed downloads of
        ``panel.wait()``, are left out; a ``BatchResult`` gives its successful items).
    thumbnail_width : int
        Width of the poster frames in pixels (shown smaller, sharp on high-density screens).
    tile_width : int
        Width of each tile in pixels.
    width : int, optional
        Width of the player.
    autoplay, muted : bool
        Player options (browsers autoplay muted videos only).

    Returns
    -------
    Gallery

    Raises
    ------
    vidnb.DestinationError
        The folder or file does not exist or cannot be read.

    Examples
    --------
    >>> vidnb.gallery("videos/")                   # doctest: +SKIP
    <Gallery 12 videos in videos/>
    >>> vidnb.gallery(await panel.wait())           # what a panel downloaded  # doctest: +SKIP
    """
    thumbnail_width = poster_width(thumbnail_width)
    if isinstance(tile_width, bool) or not isinstance(tile_width, int) or tile_width < 64:
        raise ValueError(f"tile_width must be a whole number of pixels >= 64, not {tile_width!r}")
    paths, where = _paths_of(source)
    return Gallery(paths, where=where, thumbnail_width=thumbnail_width, tile_width=tile_width,
                   look=Look(width, autoplay, False, muted))  # fmt: skip


def _paths_of(source: GallerySource) -> tuple[list[Path], str | None]:
    """The files to show, and what to call where they are (a folder's name, as given)."""
    if isinstance(source, DownloadResult):
        return [local_file(source.path)], None
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if not path.exists():
            raise DestinationError(f"{path} does not exist: give a folder of videos, a video file, or a list of them.",
                                   path)  # fmt: skip
        with reading(path):  # an unreadable folder is a DestinationError saying so
            if path.is_dir():
                return find_videos(path), str(source).rstrip("/" + os.sep) + "/"
        return [path], None
    paths = []
    for item in source:
        if isinstance(item, ItemOutcome):
            item = item.result
        if item is None:
            continue
        paths.append(local_file(item.path) if isinstance(item, DownloadResult) else Path(item).expanduser())
    return paths, None


def find_videos(folder: Path) -> list[Path]:
    """The videos directly in ``folder``, in natural order (``clip2`` before ``clip10``).

    A file is a video by its extension (``.mp4``, ``.ts``, ``.mkv``, ...), or, when its
    extension names no known type, by its first bytes. Left out: hidden files, downloads
    under way (``.part``), HLS working files and audio renditions, and the playable copies
    vidnb made (``<stem>.playable.mp4``) of a file that is there too.

    Examples
    --------
    >>> [p.name for p in find_videos(Path("videos"))]   # doctest: +SKIP
    ['clip2.mp4', 'clip10.avi', 'talk.ts']
    """
    with os.scandir(folder) as it:
        entries = [e for e in it if not e.name.startswith(".") and e.is_file()]
    stems = {e.name.rpartition(".")[0] for e in entries}
    found = []
    for entry in entries:
        name = entry.name
        if _WORKING.search(name):
            continue
        copy = _COPY.match(name)
        if copy and copy.group("stem") in stems:
            continue  # its original is shown; playing that plays this copy
        if format_from_name(name) is None and not (_may_be_video(name) and _sniffs_as_video(Path(entry.path))):
            continue
        found.append(Path(entry.path))
    return sorted(found, key=lambda p: _natural(p.name))


def _may_be_video(name: str) -> bool:
    """Whether a file without a video extension is worth reading: no type known from its name."""
    kind = mimetypes.guess_type(name)[0]
    return kind is None or kind.startswith("video/") or kind == "application/octet-stream"


def _sniffs_as_video(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return sniff(f.read(SNIFF_BYTES)) is not None
    except OSError:
        return False


def _natural(name: str) -> list[Any]:
    # re.split with a group alternates text and digits, so the keys compare part by part.
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # gone since it was listed: its tile will say it cannot be read


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
