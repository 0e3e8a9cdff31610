"""What became of a batch's items: :class:`ItemOutcome`, :class:`BatchResult`, :class:`BatchError`.

Also the two rules every way of running a batch applies to an item's end: which item owns a
file the server named (:func:`claim`, :func:`clash`), and how the caller's ``on_item``
callback is called (:class:`OnItem`: one that raises must not stop the batch).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import DestinationError, VidnbError
from ._fmt import human_bytes, human_duration
from ._plan import Job, listing, one_line
from ._result import DownloadResult

__all__ = ["ItemOutcome", "BatchResult", "BatchError", "OnItem", "claim", "clash"]

log = logging.getLogger("vidnb")


@dataclass(frozen=True)
class ItemOutcome:
    """What became of one item of a batch.

    Attributes
    ----------
    index : int
        Position in the input (0-based).
    url : str
    path : Path, str or None
        The file, or the object's URL on object storage (None when the server was to name
        it and the download failed first).
    result : DownloadResult or None
        Set when the item succeeded (``result.skipped`` when it was already complete).
    error : BaseException or None
        Set when the item failed.
    source : str
        Where the item came from ("item 3", "list.csv line 7"), for messages.

    Examples
    --------
    >>> ItemOutcome(0, "https://example.com/a.mp4", None, None, ValueError("gone"), "item 0")
    <ItemOutcome 0 https://example.com/a.mp4: failed: gone>
    """

    index: int
    url: str
    path: Path | str | None
    result: DownloadResult | None = None
    error: BaseException | None = None
    source: str = field(default="", repr=False)

    @property
    def ok(self) -> bool:
        return self.result is not None

    def __repr__(self) -> str:
        what = repr(self.result) if self.result is not None else f"failed: {one_line(self.error)}"
        return f"<ItemOutcome {self.index} {self.url}: {what}>"


@dataclass(frozen=True)
class BatchResult:
    """Every item of a :func:`download_many` call, in input order.

    Attributes
    ----------
    items : list of ItemOutcome
    elapsed : float
        Seconds the whole batch took.

    Examples
    --------
    >>> batch = await vidnb.download_many(urls, "videos/")  # doctest: +SKIP
    >>> batch
    <BatchResult 998 ok, 2 failed, 1.0 GiB in 3.2 s>
    >>> [o.url for o in batch.failed]                        # doctest: +SKIP
    """

    items: list[ItemOutcome]
    elapsed: float

    @property
    def ok(self) -> list[ItemOutcome]:
        """Items that are complete on disk (downloaded, resumed, or already there)."""
        return [o for o in self.items if o.result is not None]

    @property
    def failed(self) -> list[ItemOutcome]:
        return [o for o in self.items if o.result is None]

    @property
    def results(self) -> list[DownloadResult]:
        return [o.result for o in self.items if o.result is not None]

    @property
    def downloaded_bytes(self) -> int:
        """Size of the files fetched by this call (files that were already there excluded)."""
        return sum(r.size for r in self.results if not r.skipped)

    def raise_for_errors(self) -> BatchResult:
        """Raise :class:`BatchError` if any item failed; return self otherwise."""
        if self.failed:
            raise BatchError(self)
        return self

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[ItemOutcome]:
        return iter(self.items)

    def __getitem__(self, i: int) -> ItemOutcome:
        return self.items[i]

    def __repr__(self) -> str:
        results = self.results
        skipped = sum(1 for r in results if r.skipped)
        there = f" ({skipped} already there)" if skipped else ""
        return (
            f"<BatchResult {len(results)} ok{there}, {len(self.items) - len(results)} failed, "
            f"{human_bytes(self.downloaded_bytes)} in {human_duration(self.elapsed)}>"
        )


class BatchError(VidnbError):
    """Some items of :func:`download_many` failed (raised with ``raise_on_error=True``, after all finished).

    Attributes
    ----------
    result : BatchResult
        Every item's outcome, the successful ones included.
    failed : list of ItemOutcome
        The failed items.
    """

    def __init__(self, result: BatchResult) -> None:
        self.result = result
        self.failed = result.failed
        listed = listing([f"{o.url}: {one_line(o.error)}" for o in self.failed], " (see .result.failed)")
        super().__init__(
            f"{len(self.failed)} of {len(result)} downloads failed:\n  {listed}\n"
            "Run the same batch again to retry them; finished files are skipped, partial ones resumed."
        )


def claim(job: Job, result: DownloadResult, claimed: dict[Path | str, Job]) -> ItemOutcome:
    """The outcome of a finished download, once it is known which item owns its file.

    ``claimed`` maps files to the item that owns them; it starts with the files named in
    advance. A second item landing on a file (two server-chosen names that are the same)
    found the first one's finished file: that is a failure, not a success.

    Examples
    --------
    >>> claim(job, result, {j.dest: j for j in jobs if j.named})  # doctest: +SKIP
    """
    owner = claimed.setdefault(result.path, job)
    if owner is not job:
        return clash(job, owner, result.path)
    return ItemOutcome(job.index, job.url, result.path, result, None, job.source)


def clash(job: Job, owner: Job, path: Path | str) -> ItemOutcome:
    """The failure of an item whose download landed on ``owner``'s file.

    Examples
    --------
    >>> clash(job, owner, Path("videos/same.mp4")).error  # doctest: +SKIP
    DestinationError('videos/same.mp4 is also the file of item 0 (...); give this item its own filename')
    """
    err = DestinationError(
        f"{path} is also the file of {owner.source} ({owner.url}); give this item its own filename",
        path if isinstance(path, Path) else None,
    )
    return ItemOutcome(job.index, job.url, None, None, err, job.source)


class OnItem:
    """The caller's ``on_item`` callback, called with each outcome; one that raises is not called again.

    A broken callback must not stop the batch (the downloads already running would be
    cancelled); it is logged once, like a raising progress callable.

    Examples
    --------
    >>> notify = OnItem(print)
    >>> notify(ItemOutcome(0, "https://example.com/a.mp4", None, None, ValueError("gone")))
    <ItemOutcome 0 https://example.com/a.mp4: failed: gone>
    """

    def __init__(self, fn: Callable[[ItemOutcome], Any]) -> None:
        self.fn = fn
        self._broken = False

    def __call__(self, outcome: ItemOutcome) -> None:
        if self._broken:
            return
        try:
            self.fn(outcome)
        except Exception:
            self._broken = True
            log.exception("on_item callback %r raised; it will not be called again for this batch", self.fn)
