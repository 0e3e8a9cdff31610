"""HLS (.m3u8) streams: not supported yet; recognised so the error says so."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ._errors import NotAVideoError


def is_hls_url(url: str) -> bool:
    """True for URLs whose path names a playlist (``.m3u8``)."""
    return urlsplit(url).path.lower().endswith((".m3u8", ".m3u"))


async def download_hls(url: str, folder: Path, path: Path | None, *, session: Any, **options: Any) -> Any:
    raise NotAVideoError(f"{url} is an HLS playlist; vidnb does not download HLS streams yet.")
