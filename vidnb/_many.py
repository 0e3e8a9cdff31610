"""``vidnb.download_many``: many videos into one folder, on this machine or on a Dask cluster.

The front door of a batch. It checks the arguments and the download options once
(:func:`~vidnb._options.make_options`), plans every item (:func:`~vidnb._plan.plan_jobs`),
then runs the plan here (:mod:`vidnb._batch`) or, with ``client=``, on a cluster
(:mod:`vidnb._dask`, imported only then: Dask is the optional extra ``vidnb[dask]``).
Whichever runs it, bad input fails the same way before any request, and the
:class:`~vidnb.BatchResult` holds the same outcomes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._batch import run_locally
from ._options import BatchOptions, DownloadOptions, Options, make_options
from ._outcomes import BatchResult, ItemOutcome, OnItem
from ._plan import Item, Job, Names, PathLike, in_folder, plan_jobs
from ._progress import ProgressOption
from ._runner import run_sync
from ._storage import local_path, remote_url
from ._urls import validate_url

if TYPE_CHECKING:
    import aiohttp
    from typing_extensions import Unpack

__all__ = ["BatchOptions", "download_many", "download_many_sync"]


async def download_many(
    items: Iterable[Item] | PathLike,
    dest_dir: PathLike = ".",
    *,
    concurrency: int = 8,
    names: Names = "url",
    client: Any = None,
    partition_size: int | None = None,
    raise_on_error: bool = False,
    on_item: Callable[[ItemOutcome], Any] | None = None,
    progress: ProgressOption = "auto",
    session: aiohttp.ClientSession | None = None,
    **options: Unpack[BatchOptions],
) -> BatchResult:
    """Download many videos into one folder, ``concurrency`` at a time, on one shared session.

    Everything is checked before the first request: the options, URLs, duplicate URLs, and
    two items that would write the same file (``ValueError`` listing each). One failing
    item never stops the others. Re-running the same batch skips finished files (no
    request for files named before starting, see :mod:`vidnb._plan`) and resumes partial ones.

    Parameters
    ----------
    items : iterable or path
        URLs, ``(url, filename)`` pairs, ``(url, filename, sha256)`` triples, or the path
        of a manifest (see :func:`read_manifest`). Filenames are relative to ``dest_dir``.
    dest_dir : str or Path
        The folder to save into (created if needed), or a folder on object storage
        (``"s3://bucket/videos/"``, with ``storage_options=``): see :func:`vidnb.download`.
        Finished objects there are found with one listing of the folder.
    concurrency : int
        Downloads at a time (and connections kept open, times ``connections``).
    names : "url" or "server"
        How files without an explicit filename are named: from the URL path when it has an
        extension (known before starting), or always as the server says.
    client : dask.distributed.Client, optional
        Run the batch on a Dask cluster (needs ``pip install 'vidnb[dask]'``): the items are
        split into partitions, each partition runs on a worker with this same engine
        (``concurrency`` downloads at a time per partition), and one :class:`BatchResult`
        comes back, as from a local run. ``dest_dir`` must be a path every worker can write
        (a shared filesystem, or a local disk on a one-machine cluster); this is checked on
        every worker before any download starts. With progress, one overall bar (files,
        bytes) is fed from the workers; a callable receives overall events (``name`` says
        how many files are finished, ``done`` counts bytes fetched). See :mod:`vidnb._dask`.
    partition_size : int, optional
        Items per Dask task (only with ``client=``). Default: enough partitions for about
        four per worker thread, each at least ``concurrency`` items and at most 500.
    raise_on_error : bool
        Raise :class:`BatchError` once all items have finished, if any failed.
    on_item : callable, optional
        Called with each :class:`ItemOutcome` as it finishes (in completion order; with
        ``client=``, as each partition comes back). If it raises, the error is logged once,
        it is not called again, and the batch goes on.
    progress : "auto", bool or callable
        "auto": an overall bar (files, bytes, speed) and one bar per running download in a
        notebook or a terminal, nothing otherwise. A callable receives every file's
        :class:`ProgressEvent` objects (their ``name`` tells the files apart).
    session : aiohttp.ClientSession, optional
        Run every download on this session (it is not closed); not with ``client=``.
    **options
        Passed to :func:`vidnb.download` for every item (``overwrite``, ``retries``,
        ``max_bytes``, ``headers``, ``timeout``, ``connections``...). ``sha256`` is per
        item: give ``(url, filename, sha256)`` triples or a CSV ``sha256`` column.
        ``max_rate`` is one limit for the whole batch (on a cluster, for each worker process).

    Returns
    -------
    BatchResult

    Examples
    --------
    >>> urls = ["https://example.com/a.mp4", "https://example.com/b.mp4"]
    >>> batch = await vidnb.download_many(urls, "videos/")  # doctest: +SKIP
    >>> batch                                                # doctest: +SKIP
    <BatchResult 2 ok, 0 failed, 96.3 MiB in 1.4 s>
    >>> await vidnb.download_many("videos.csv", "videos/", concurrency=16, raise_on_error=True)  # doctest: +SKIP
    >>> from dask.distributed import Client                                       # doctest: +SKIP
    >>> client = Client("tcp://scheduler:8786")                                   # doctest: +SKIP
    >>> await vidnb.download_many("videos.csv", "/shared/videos", client=client)  # doctest: +SKIP
    """
    t0 = time.monotonic()
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a whole number >= 1, not {concurrency!r}")
    if names not in ("url", "server"):
        raise ValueError(f"names must be 'url' or 'server', not {names!r}")
    _check_option_names(options)
    opts = make_options(**options)
    if client is not None:
        from . import _dask  # distributed is imported only here: it is an optional extra

        _dask.check_client(client, partition_size, session)
    elif partition_size is not None:
        raise TypeError("partition_size= applies only with client= (a Dask cluster)")
    # A URL (s3://bucket/videos/) is a folder on object storage; anything else is on the disk.
    remote = remote_url(os.fspath(dest_dir))
    folder: Path | str = remote if remote is not None else Path(local_path(os.fspath(dest_dir))).expanduser()
    if isinstance(items, str) and items.lower().startswith(("http://", "https://")):
        jobs = await _page_jobs(validate_url(items), folder, opts)
    else:
        jobs = plan_jobs(items, folder, names)
    notify = OnItem(on_item) if on_item is not None else None
    if client is not None:
        result = await _dask.download_on_cluster(
            client, jobs, folder, opts, t0=t0, concurrency=concurrency, partition_size=partition_size,
            progress=progress, on_item=notify,
        )
    else:
        result = await run_locally(
            jobs, folder, opts, t0=t0, concurrency=concurrency, progress=progress, on_item=notify, session=session
        )
    if raise_on_error:
        result.raise_for_errors()
    return result


def download_many_sync(
    items: Iterable[Item] | PathLike,
    dest_dir: PathLike = ".",
    *,
    concurrency: int = 8,
    names: Names = "url",
    client: Any = None,
    partition_size: int | None = None,
    raise_on_error: bool = False,
    on_item: Callable[[ItemOutcome], Any] | None = None,
    progress: ProgressOption = "auto",
    session: aiohttp.ClientSession | None = None,
    **options: Unpack[BatchOptions],
) -> BatchResult:
    """Blocking :func:`download_many`, for scripts and for cells that should wait.

    Takes the same arguments as :func:`download_many`.

    Examples
    --------
    >>> batch = vidnb.download_many_sync("videos.txt", "videos/", concurrency=16)  # doctest: +SKIP
    """
    return run_sync(
        download_many(
            items, dest_dir, concurrency=concurrency, names=names, client=client, partition_size=partition_size,
            raise_on_error=raise_on_error, on_item=on_item, progress=progress, session=session, **options,
        )
    )


async def _page_jobs(url: str, folder: Path | str, opts: Options) -> list[Job]:
    """One job per video of the web page at ``url``, each named after its title.

    Two videos with the same title get " (2)", " (3)" ..., so none overwrites another.
    """
    # Imported here: pages need yt-dlp, which a batch of files never does.
    from ._extract import extract_every
    from ._page_download import file_name
    from ._urls import redact_url, safe_filename

    medias = await extract_every(url, opts)
    taken: set[str] = set()
    jobs = []
    for n, media in enumerate(medias, 1):
        name = file_name(media, opts)
        stem, ext = os.path.splitext(name)
        k = 1
        while name.lower() in taken:
            k += 1
            name = safe_filename(f"{stem} ({k}){ext}") or f"video ({k}){ext}"
        taken.add(name.lower())
        jobs.append(Job(n - 1, url, in_folder(folder, name), True, None, f"video {n} of {redact_url(url)}",
                        n if len(medias) > 1 else None))
    return jobs


def _check_option_names(options: Mapping[str, object]) -> None:
    """Refuse options ``download()`` does not take, and ``sha256``, with batch-specific messages."""
    unknown = sorted(set(options) - set(DownloadOptions.__annotations__))
    if unknown:
        raise TypeError(f"download_many() got unexpected option(s) {', '.join(unknown)}")
    if "sha256" in options:
        raise TypeError(
            "sha256= would apply to every item; give each item its own as a (url, filename, sha256) triple "
            "or a sha256 column in a CSV manifest"
        )
