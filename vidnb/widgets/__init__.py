"""The notebook layer: the DownloadPanel widget and inline previews.

This is the only part of vidnb that imports ipywidgets and IPython; ``import vidnb``
loads it on first use of ``vidnb.widgets``, :class:`DownloadPanel` or :func:`preview`.

Examples
--------
>>> import vidnb
>>> vidnb.preview("videos/clip.mp4", width=480)      # doctest: +SKIP
>>> vidnb.widgets.EMBED_MAX_BYTES = 50 * 2**20       # send up to 50 MiB inline  # doctest: +SKIP
"""

from __future__ import annotations

#: Videos up to this many bytes are sent inline (binary comm buffer); larger files are
#: shown by reference. Set it to change the default of :func:`preview`.
EMBED_MAX_BYTES: int = 25 * 1024 * 1024

from ._panel import DownloadPanel, DownloadRow  # noqa: E402
from ._preview import PreviewNote, ReferencePreview, preview  # noqa: E402

__all__ = ["DownloadPanel", "DownloadRow", "preview", "PreviewNote", "ReferencePreview", "EMBED_MAX_BYTES"]
