"""vidnb: download and preview video from Jupyter notebooks, fast and safely.

>>> import vidnb
>>> result = await vidnb.download("https://example.com/clip.mp4", "videos/")  # doctest: +SKIP
>>> vidnb.preview(result)                                                    # doctest: +SKIP

Each name is imported on first use: ``import vidnb`` itself loads neither the engine (nor
aiohttp) nor widgets, IPython or tqdm.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# For type checkers and readers: the public names and where they live. At run time each is
# imported on first use (see _LAZY), so `import vidnb` and `vidnb --version` load no engine,
# aiohttp (about 0.3 s) included. tests/test_structure.py checks that the two lists agree.
if TYPE_CHECKING:
    from ._engine import download, save_video_from_url
    from ._errors import (
        ChecksumError,
        DestinationError,
        HTTPStatusError,
        IncompleteDownloadError,
        InvalidURLError,
        LiveStreamError,
        MissingDependencyError,
        NetworkError,
        NotAVideoError,
        PageEntry,
        SeveralVideosError,
        TooLargeError,
        UnsupportedEncryptionError,
        VidnbError,
    )
    from ._many import download_many, download_many_sync
    from ._options import DownloadOptions, Retry
    from ._outcomes import BatchError, BatchResult, ItemOutcome
    from ._plan import read_manifest
    from ._progress import ProgressEvent, ProgressReporter
    from ._read import get_video_data, read_video
    from ._result import DownloadResult
    from ._runner import DownloadTask, download_sync, running_tasks, start
    from ._videoinfo import VideoInfo

from ._version import __version__ as __version__

#: The public names of :data:`__all__` by module, imported on first use (see the imports above).
_PUBLIC = {
    "vidnb._engine": ("download", "save_video_from_url"),
    "vidnb._errors": (
        "ChecksumError", "DestinationError", "HTTPStatusError", "IncompleteDownloadError", "InvalidURLError",
        "LiveStreamError", "MissingDependencyError", "NetworkError", "NotAVideoError", "PageEntry",
        "SeveralVideosError", "TooLargeError", "UnsupportedEncryptionError", "VidnbError",
    ),
    "vidnb._many": ("download_many", "download_many_sync"),
    "vidnb._options": ("DownloadOptions", "Retry"),
    "vidnb._outcomes": ("BatchError", "BatchResult", "ItemOutcome"),
    "vidnb._plan": ("read_manifest",),
    "vidnb._progress": ("ProgressEvent", "ProgressReporter"),
    "vidnb._read": ("get_video_data", "read_video"),
    "vidnb._result": ("DownloadResult",),
    "vidnb._runner": ("DownloadTask", "download_sync", "running_tasks", "start"),
    "vidnb._videoinfo": ("VideoInfo",),
}

# Loaded on first use: the widgets import ipywidgets and IPython, the demo aiohttp's server.
# A name equal to its module's last part is that module (``vidnb.widgets``, ``vidnb.demo``).
_LAZY = {
    **{name: module for module, names in _PUBLIC.items() for name in names},
    "DownloadPanel": "vidnb.widgets",
    "preview": "vidnb.widgets",
    "gallery": "vidnb.widgets",
    "widgets": "vidnb.widgets",
    "demo": "vidnb.demo",
    # PyAV is imported by these functions only when they run.
    "probe": "vidnb._probe",
    "thumbnail": "vidnb._thumbnail",
    "make_playable": "vidnb._playable",
}

__all__ = [
    "download",
    "download_sync",
    "start",
    "running_tasks",
    "DownloadTask",
    "download_many",
    "download_many_sync",
    "read_manifest",
    "BatchResult",
    "ItemOutcome",
    "BatchError",
    "DownloadResult",
    "Retry",
    "DownloadOptions",
    "ProgressEvent",
    "ProgressReporter",
    "save_video_from_url",
    "get_video_data",
    "read_video",
    "VidnbError",
    "InvalidURLError",
    "HTTPStatusError",
    "NetworkError",
    "IncompleteDownloadError",
    "ChecksumError",
    "NotAVideoError",
    "SeveralVideosError",
    "PageEntry",
    "UnsupportedEncryptionError",
    "LiveStreamError",
    "TooLargeError",
    "DestinationError",
    "MissingDependencyError",
    "VideoInfo",
    *_LAZY,
]

def __getattr__(name: str) -> Any:
    """Load the lazy names of :data:`_LAZY` on first access (``vidnb.widgets.EMBED_MAX_BYTES = ...``
    works right after ``import vidnb``)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vidnb' has no attribute {name!r}")
    mod = importlib.import_module(module)
    # Importing a submodule binds it on the package already; a name from inside one is
    # bound here, so later lookups skip this function.
    value = mod if module == f"{__name__}.{name}" else getattr(mod, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
