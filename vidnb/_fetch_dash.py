"""DASH representations, fetched like HLS media playlists.

yt-dlp reads the MPD and lists, per representation, every fragment's URL in order (the
initialisation segment first). That is what an HLS media playlist of fMP4 segments is too, so
a DASH representation is fetched by :class:`vidnb._fetch_hls.HlsFetcher` over those items: up
to ``connections`` fragments at once, each retried on its own, appended in order, and resumed
at the first fragment missing after an interruption (the record fingerprints the fragment
list, so a changed manifest starts again).
"""

from __future__ import annotations

from pathlib import Path

from . import _hls_playlist as pl
from ._errors import NotAVideoError
from ._extract import MediaFormat
from ._fetch_hls import HlsFetcher, HlsSource
from ._urls import redact_url

__all__ = ["dash_fetcher", "dash_items"]


def dash_items(fmt: MediaFormat) -> list[pl.Item]:
    """The fragments of one representation as items to append in order.

    >>> f = MediaFormat("v", "http://h/a.mpd", "http_dash_segments", fragments=("http://h/i.mp4", "http://h/1.m4s"),
    ...                 fragment_durations=(0.0, 2.0))
    >>> [(i.kind, i.url) for i in dash_items(f)]
    [('init', 'http://h/i.mp4'), ('segment', 'http://h/1.m4s')]
    """
    durations = fmt.fragment_durations or (0.0,) * len(fmt.fragments)
    items = []
    for n, (url, duration) in enumerate(zip(fmt.fragments, durations, strict=True)):
        # The initialisation segment comes first and carries no media time.
        if n == 0 and not duration and len(fmt.fragments) > 1:
            items.append(pl.Item("init", url, None, 0.0, n))
        else:
            items.append(pl.Item("segment", url, None, float(duration), n))
    return items


def dash_fetcher(source: HlsSource, dest: Path, fmt: MediaFormat, page_url: str) -> HlsFetcher:
    """The fetcher of one DASH representation into ``dest``."""
    if not fmt.fragments:
        raise NotAVideoError(f"The DASH representation {fmt.format_id} of {redact_url(fmt.url)} lists no fragments.")
    bandwidth = int((fmt.tbr or 0) * 1000)
    return HlsFetcher(source, dest, None, fmt.url, "mp4", False, bandwidth, page_url, items=dash_items(fmt))
