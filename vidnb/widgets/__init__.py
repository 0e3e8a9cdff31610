"""The notebook layer: the DownloadPanel widget, the gallery and inline previews.

This is the only part of vidnb that imports ipywidgets and IPython; ``import vidnb``
loads it on first use of ``vidnb.widgets``, :class:`DownloadPanel`, :func:`preview` or
:func:`gallery`.

Examples
--------
>>> import vidnb
>>> vidnb.preview("videos/clip.mp4", width=480)      # doctest: +SKIP
>>> vidnb.gallery("videos/")                         # a grid of poster frames  # doctest: +SKIP
>>> vidnb.widgets.EMBED_MAX_BYTES = 50 * 2**20       # send up to 50 MiB inline  # doctest: +SKIP
"""

from __future__ import annotations

#: Videos up to this many bytes are sent inline (binary comm buffer); larger files are
#: shown by reference. Set it to change the default of :func:`preview`.
EMBED_MAX_BYTES: int = 25 * 1024 * 1024

from ._gallery import Gallery, Tile, gallery  # noqa: E402
from ._panel import DownloadPanel, DownloadRow  # noqa: E402
from ._posters import cache_dir as thumbnail_cache_dir  # noqa: E402
from ._preview import PreviewNote, ReferencePreview, preview  # noqa: E402

__all__ = [
    "DownloadPanel",
    "DownloadRow",
    "preview",
    "PreviewNote",
    "ReferencePreview",
    "gallery",
    "Gallery",
    "Tile",
    "thumbnail_cache_dir",
    "EMBED_MAX_BYTES",
]
