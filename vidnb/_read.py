"""Reading a saved video back as bytes, strictly or leniently."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Union

from ._errors import DestinationError, TooLargeError
from ._fmt import human_bytes

log = logging.getLogger("vidnb")

PathLike = Union[str, "os.PathLike[str]"]


def read_video(path: PathLike, *, max_bytes: int | None = None) -> bytes:
    """Return the bytes of a video file, raising a clear error when that is not possible.

    Parameters
    ----------
    path : str or Path
        The file, e.g. ``result.path`` of a download.
    max_bytes : int, optional
        Refuse files larger than this instead of filling memory (:class:`TooLargeError`).

    Raises
    ------
    DestinationError
        The file is missing, a folder, or unreadable.
    TooLargeError
        The file is larger than ``max_bytes``.

    Examples
    --------
    >>> data = vidnb.read_video("videos/clip.mp4", max_bytes=50_000_000)  # doctest: +SKIP
    """
    p = Path(path).expanduser()
    with reading(p):
        st = p.stat()
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(21, "Is a directory", str(p))
        size = st.st_size
        if max_bytes is not None and size > max_bytes:
            raise TooLargeError(
                f"{p} is {human_bytes(size)}, more than max_bytes={max_bytes}; "
                "show large videos by reference with vidnb.preview(path) instead of reading them.",
                limit=max_bytes,
                size=size,
            )
        with open(p, "rb") as f:
            return f.read()


@contextlib.contextmanager
def reading(path: Path) -> Iterator[None]:
    """Turn the OS errors of reading a video file into a :class:`DestinationError` that says what to do."""
    try:
        yield
    except FileNotFoundError as exc:
        raise DestinationError(f"No video at {path}: the file does not exist. Check the path.", path) from exc
    except PermissionError as exc:
        raise DestinationError(f"Not allowed to read {path}: {exc.strerror}.", path) from exc
    except IsADirectoryError as exc:
        raise DestinationError(f"{path} is a folder, not a video file.", path) from exc

def get_video_data(file_name: PathLike) -> bytes | None:
    """Return the bytes of a video file, or None (with the reason logged) when it cannot be read.

    Kept with the same name and behaviour as the original notebook helper;
    :func:`read_video` is the variant that raises.

    Examples
    --------
    >>> data = vidnb.get_video_data("clip.mp4")  # doctest: +SKIP
    """
    try:
        return read_video(file_name)
    except (DestinationError, OSError) as exc:
        log.error("could not read video %s: %s", file_name, exc)
        return None
