"""A batch on this machine: a bounded pool of workers on one shared session, one outcome per item.

:func:`run_jobs` runs ``concurrency`` worker tasks that pull planned jobs from a shared
iterator and download each with the engine on one shared :class:`~vidnb._http.Session`, so
connections are reused from one file to the next. A failing item is recorded and the
workers go on. It is the engine of a local batch (:func:`run_locally`) and of each
partition of a cluster run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._bars import Bars, batch_progress
from ._engine import download_with
from ._errors import DestinationError
from ._http import Session
from ._options import Options, most_connections
from ._outcomes import BatchResult, ItemOutcome, claim
from ._plan import Job
from ._progress import ProgressOption, ProgressReporter
from ._remote import download_remote, listed_result, prepare_batch
from ._result import DownloadResult

if TYPE_CHECKING:
    import aiohttp

__all__ = ["run_jobs", "run_locally", "remote_files"]


async def run_locally(
    jobs: list[Job],
    folder: Path | str,
    opts: Options,
    *,
    t0: float,
    concurrency: int,
    progress: ProgressOption,
    on_item: Callable[[ItemOutcome], Any] | None = None,
    session: aiohttp.ClientSession | None = None,
) -> BatchResult:
    """Run a planned batch in this process, with its bars or progress events; the local side of ``download_many``.

    Examples
    --------
    >>> batch = await run_locally(jobs, Path("videos"), make_options(), t0=time.monotonic(),
    ...                           concurrency=8, progress=False)  # doctest: +SKIP
    """
    listed = None
    if isinstance(folder, str):
        # Object storage: one listing of the folder says which objects are already there.
        listed = await asyncio.to_thread(prepare_batch, folder, opts, remote_files(jobs))
    else:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DestinationError(f"cannot create the folder {folder}: {exc.strerror or exc}", folder) from exc
    if not jobs:
        return BatchResult([], time.monotonic() - t0)
    workers_n = min(concurrency, len(jobs))
    bars, per_file = batch_progress(progress, len(jobs), workers_n, file_bars=True)
    outcomes = await run_jobs(
        jobs, opts, concurrency=workers_n, session=session, bars=bars, per_file=per_file, on_item=on_item,
        listed=listed,
    )
    return BatchResult(outcomes, time.monotonic() - t0)


async def run_jobs(
    jobs: list[Job],
    opts: Options,
    *,
    concurrency: int,
    session: aiohttp.ClientSession | None = None,
    bars: Bars | None = None,
    per_file: ProgressReporter | None = None,
    on_item: Callable[[ItemOutcome], Any] | None = None,
    listed: Mapping[str, int] | None = None,
    complete: bool = True,
) -> list[ItemOutcome]:
    """Run planned jobs, ``concurrency`` at a time, and return their outcomes in the order of ``jobs``.

    ``listed`` (object URL -> size, from one listing of a remote folder) marks the objects
    already there: their items are skipped without any request (those with a sha256 are
    checked against the object's metadata by the engine). When ``complete``, the listing is
    of the whole folder just now, so an object it does not show is not asked for again; a
    retried Dask task's listing is older than the attempt that died, so it passes False.

    Each item is downloaded with ``opts``, its own ``sha256`` and, as its progress, its
    worker's slot of ``bars`` (or ``per_file``, which then sees every file). Without a
    ``session``, one is opened for the batch, with a pool large enough for every worker's
    connections, and closed at the end. Cancelling lets every download unwind (close its
    ``.part``, release its lock) before it returns.

    Examples
    --------
    >>> outcomes = await run_jobs(plan_jobs(urls, Path("videos")), make_options(), concurrency=4)  # doctest: +SKIP
    """
    workers_n = min(concurrency, len(jobs))
    if workers_n == 0:
        return []
    # One pool for the batch: connections are reused from one file to the next.
    shared = Session(session, lean=True, limit=workers_n * most_connections(opts.connections))

    outcomes: list[ItemOutcome | None] = [None] * len(jobs)
    claimed: dict[Path | str, Job] = {j.dest: j for j in jobs if j.named}
    queue = iter(enumerate(jobs))  # shared by the workers: each next() hands out one job

    async def worker(slot: int) -> None:
        tracked = bars.slots[slot] if bars is not None else None
        reporter: ProgressReporter | None = tracked if tracked is not None else per_file
        for position, job in queue:
            if tracked is not None:
                tracked.next_item()
            item_opts = replace(opts, progress=reporter, sha256=job.sha256,
                                item=job.item if job.item is not None else opts.item)
            try:
                result = await _one(job, item_opts, shared, listed, complete)
            except Exception as exc:  # noqa: BLE001 - recorded per item; the batch goes on
                outcome = ItemOutcome(job.index, job.url, job.dest if job.named else None, None, exc, job.source)
            else:
                outcome = claim(job, result, claimed)
            outcomes[position] = outcome
            if bars is not None:
                bars.item_finished(outcome.ok)
            if on_item is not None:
                on_item(outcome)

    if bars is not None:
        bars.start()
    tasks = [asyncio.ensure_future(worker(i)) for i in range(workers_n)]
    try:
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        # Let every download unwind (close its .part, release its lock) before returning.
        await asyncio.wait(tasks)
        if bars is not None:
            await bars.close()
        await shared.close()  # what it opened itself: a session passed in stays open
    return [o for o in outcomes if o is not None]


def remote_files(jobs: list[Job]) -> list[str]:
    """The objects a batch into a remote folder names in advance (whose crashed uploads it may abort)."""
    return [j.dest for j in jobs if j.named and isinstance(j.dest, str)]


async def _one(
    job: Job, opts: Options, session: Session, listed: Mapping[str, int] | None, complete: bool
) -> DownloadResult:
    """One item with the engine, or from the listing of its remote folder when that already answers."""
    if listed is None or not job.named or not isinstance(job.dest, str):
        return await download_with(job.url, job.dest, opts, session)
    if job.dest in listed:
        if not opts.overwrite and opts.sha256 is None:  # with a sha256, the engine reads the object's metadata
            return listed_result(job.url, job.dest, listed[job.dest], time.monotonic(), opts.storage_options)
        return await download_with(job.url, job.dest, opts, session)
    if not complete:
        return await download_with(job.url, job.dest, opts, session)

    async def fetch_local(staged: str) -> DownloadResult:
        return await download_with(job.url, staged, opts, session)

    # Not listed: no need to ask the store again whether it is there.
    return await download_remote(job.url, job.dest, opts, fetch_local, time.monotonic(), absent=True)
