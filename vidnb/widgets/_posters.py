"""Poster frames for the gallery and the panel: made in the background, cached on disk, shown on the loop.

Making a poster means probing the file and decoding one frame (5-95 ms with PyAV), far too
slow to do for a folder of videos while the cell that shows them runs. So a widget is
shown at once with a placeholder, and a :class:`PosterQueue` asks a small thread pool for
each picture. Results never touch a widget from a worker thread: they are handed to the
loop the widgets belong to (the kernel's, in a notebook) with ``call_soon_threadsafe``, and
applied there a few at a time, so a folder whose pictures are all cached does not flood
the notebook server (it drops IOPub traffic above about 1000 messages a second).

Each picture and the figures probed from its file are kept in
``$XDG_CACHE_HOME/vidnb/thumbnails/`` (``~/.cache/vidnb/thumbnails/`` by default), named by a
hash of the file's absolute path, size and modification time and the picture's width: a
file that changes gets a new picture, and showing the same folder again costs no decoding.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import hashlib
import json
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from .._errors import MissingDependencyError, VidnbError
from .._probe import probe
from .._thumbnail import thumbnail
from .._videoinfo import VideoInfo

__all__ = ["Poster", "PosterQueue", "cache_dir", "make_poster", "media_errors", "WORKERS"]

log = logging.getLogger("vidnb")

#: Threads making posters, shared by every gallery and panel of the process: decoding is
#: CPU work, and two leave the kernel (and the other core) room on a small machine.
WORKERS = 2
#: Posters applied per turn of the loop, and the pause between turns: at most 100 a
#: second, each a few widget messages, well under the notebook server's limit.
BATCH = 10
INTERVAL = 0.1
#: Bump when what is cached changes shape: old entries are then simply not found.
_CACHE_VERSION = 1

K = TypeVar("K")


@dataclass(frozen=True)
class Poster:
    """What was made for one file: a JPEG and the file's figures, or why there is none.

    Attributes
    ----------
    path : Path
        The video.
    jpeg : bytes or None
        The picture; None when none could be made.
    info : VideoInfo or None
        What :func:`vidnb.probe` found; None when the file could not be probed.
    error : str or None
        Why there is no picture (or no figures).
    cached : bool
        True when both came from the disk cache.
    missing_av : bool
        True when PyAV is not installed (so no file has a picture).
    """

    path: Path
    jpeg: bytes | None
    info: VideoInfo | None
    error: str | None = None
    cached: bool = False
    missing_av: bool = False


def cache_dir() -> Path:
    """Where pictures are kept: ``$XDG_CACHE_HOME/vidnb/thumbnails`` or ``~/.cache/vidnb/thumbnails``.

    Read on every call, so a changed ``XDG_CACHE_HOME`` applies at once. A relative
    ``XDG_CACHE_HOME`` is ignored, as the XDG specification says.

    Examples
    --------
    >>> from vidnb.widgets import thumbnail_cache_dir
    >>> thumbnail_cache_dir().parts[-2:]
    ('vidnb', 'thumbnails')
    """
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "vidnb" / "thumbnails"


def _key(path: Path, st: os.stat_result, width: int) -> str:
    text = f"{_CACHE_VERSION}\0{path.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\0{width}"
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:40]


def media_errors() -> tuple[type[BaseException], ...]:
    """What PyAV and vidnb's media functions raise for a file they cannot handle (not bugs)."""
    errors: tuple[type[BaseException], ...] = (VidnbError, OSError, ValueError, EOFError)
    try:
        import av
    except ImportError:
        return errors
    return (*errors, av.error.FFmpegError)


def make_poster(path: Path, width: int) -> Poster:
    """The picture and figures of ``path``, from the cache or made (and then cached).

    Runs in a worker thread; never raises for a file that cannot be shown, it says why instead.
    """
    try:
        st = path.stat()
    except OSError as exc:
        return Poster(path, None, None, f"cannot be read: {exc.strerror or exc}")
    folder = cache_dir()
    key = _key(path, st, width)
    hit = _from_cache(folder, key, path)
    if hit is not None:
        return hit
    info: VideoInfo | None = None
    try:
        info = probe(path)
        jpeg = thumbnail(path, width=width)
    except MissingDependencyError:
        return Poster(path, None, None, "no picture without PyAV (pip install av)", missing_av=True)
    except media_errors() as exc:
        return Poster(path, None, info, str(exc) or type(exc).__name__)
    _to_cache(folder, key, jpeg, info)
    return Poster(path, jpeg, info)


def _from_cache(folder: Path, key: str, path: Path) -> Poster | None:
    try:
        fields = json.loads((folder / f"{key}.json").read_text(encoding="utf-8"))
        jpeg = (folder / f"{key}.jpg").read_bytes()
        info = VideoInfo(**{**fields, "path": path})
    except (OSError, ValueError, TypeError):  # absent, half-written by an older version, or another shape
        return None
    return Poster(path, jpeg, info, cached=True)


def _to_cache(folder: Path, key: str, jpeg: bytes, info: VideoInfo) -> None:
    fields = {k: v for k, v in dataclasses.asdict(info).items() if k != "path"}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # Figures first, picture last: a picture on disk means both are there. Each file is
        # written beside its name and renamed, so a reader never sees half of one.
        _write_atomically(folder / f"{key}.json", json.dumps(fields).encode())
        _write_atomically(folder / f"{key}.jpg", jpeg)
    except OSError as exc:  # a read-only or full home: the picture is still shown, just not kept
        log.debug("thumbnail cache %s not written: %s", folder, exc)


def _write_atomically(dest: Path, data: bytes) -> None:
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> concurrent.futures.ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="vidnb-poster")
        return _pool


class PosterQueue(Generic[K]):
    """Makes posters in the shared thread pool and hands each to ``apply`` on ``loop``.

    Posters are made in the order they were submitted, and applied on ``loop`` at most
    :data:`BATCH` per :data:`INTERVAL`. After :meth:`close`, pending ones are dropped.

    Parameters
    ----------
    loop : asyncio.AbstractEventLoop
        The loop the widgets are updated on.
    apply : callable
        ``apply(key, poster)``, called on ``loop``; an exception in it is logged.
    width : int
        Picture width in pixels.

    Examples
    --------
    >>> queue = PosterQueue(asyncio.get_running_loop(), lambda tile, poster: tile.fill(poster), 320)  # doctest: +SKIP
    >>> queue.submit(tile, Path("videos/clip.mp4"))                                                # doctest: +SKIP
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, apply: Callable[[K, Poster], None], width: int) -> None:
        self.loop = loop
        self.width = width
        self._apply = apply
        self._lock = threading.Lock()
        self._futures: set[concurrent.futures.Future[Poster]] = set()
        self._ready: deque[tuple[K, Poster]] = deque()
        self._scheduled = False
        self.closed = False

    def submit(self, key: K, path: Path) -> None:
        """Ask for the poster of ``path``; ``apply(key, poster)`` runs on the loop once it is made."""
        if self.closed:
            return
        future = _executor().submit(make_poster, path, self.width)
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(lambda f: self._arrived(key, path, f))

    @property
    def pending(self) -> int:
        """Posters asked for and not yet applied."""
        with self._lock:
            return len(self._futures) + len(self._ready)

    def close(self) -> None:
        """Drop every poster not yet made or applied (those being made finish, unseen)."""
        self.closed = True
        with self._lock:
            futures = list(self._futures)
            self._ready.clear()
        for f in futures:
            f.cancel()

    def _arrived(self, key: K, path: Path, future: concurrent.futures.Future[Poster]) -> None:
        """In a worker thread (or the closing one): queue the result for the loop."""
        if future.cancelled():
            with self._lock:
                self._futures.discard(future)
            return
        exc = future.exception()
        if exc is not None:  # make_poster says why a file has no picture; anything else is a bug
            log.error("making the poster of %s failed", path, exc_info=exc)
            poster = Poster(path, None, None, f"{type(exc).__name__}: {exc}")
        else:
            poster = future.result()
        with self._lock:
            self._futures.discard(future)
            if self.closed:
                return
            self._ready.append((key, poster))
            wake = not self._scheduled
            self._scheduled = True
        if wake:
            try:
                self.loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # the loop was closed: nobody is left to show it
                with self._lock:
                    self._scheduled = False

    def _drain(self) -> None:
        """On the loop: apply a batch; come back after a pause while more are waiting."""
        with self._lock:
            batch = [self._ready.popleft() for _ in range(min(BATCH, len(self._ready)))]
        for key, poster in batch:
            try:
                self._apply(key, poster)
            except Exception:  # one broken tile must not stop the others
                log.exception("showing the poster of %s failed", poster.path)
        with self._lock:
            more = bool(self._ready) and not self.closed
            self._scheduled = more
        if more:
            self.loop.call_later(INTERVAL, self._drain)


def describe(info: VideoInfo | None, size: int) -> str:
    """The figures under a poster: ``"0:03 · 320×240 · 105.4 KiB"`` (what is known)."""
    from .._fmt import human_bytes

    parts = []
    if info is not None:
        if info.duration is not None:
            parts.append(clock(info.duration))
        parts.append(f"{info.width}×{info.height}")
    parts.append(human_bytes(size))
    return " · ".join(parts)


def clock(seconds: float) -> str:
    """A duration as players show it: ``clock(3.0) == "0:03"``, ``clock(3725) == "1:02:05"``."""
    total = int(round(seconds))
    m, s = divmod(total, 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def poster_width(value: Any) -> int:
    """Check a ``thumbnail_width=`` argument."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 16:
        raise ValueError(f"thumbnail_width must be a whole number of pixels >= 16, not {value!r}")
    return value
