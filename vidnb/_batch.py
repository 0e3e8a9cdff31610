"""Many downloads at once: one shared session, a bounded pool of workers, one outcome per item.

:func:`download_many` turns its input (URLs, ``(url, filename)`` pairs or a manifest file)
into a plan, checks the whole plan before any request (bad URLs, repeated URLs, two items
writing one file), then runs ``concurrency`` worker tasks that pull items from a shared
iterator and call :func:`vidnb.download` on one shared ``aiohttp.ClientSession``. A
failing item is recorded and the workers go on; the :class:`BatchResult` lists every item
in input order.

Naming rule (decides what can be checked before starting). An item's file is:

1. its explicit filename (a pair, a manifest column), relative to ``dest_dir``;
2. else, with ``names="url"`` (the default), the last segment of the URL path when it has
   an extension (``.../clip.mp4?sig=x`` -> ``clip.mp4``): known before starting, so a
   re-run skips it without any request;
3. else the server decides (Content-Disposition, else the URL, plus the sniffed extension),
   as :func:`vidnb.download` does for a folder. Such names are known only after the first
   response: a clash is then caught when it happens (the engine's per-destination lock means
   the second item finds the first one's finished file; it is reported as a failure instead
   of being passed off as its own file), and a re-run costs one request per such item.

``names="server"`` uses rule 3 for every item without an explicit filename.
"""

from __future__ import annotations

import asyncio
import csv
import inspect
import io
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Callable, Iterable, Iterator, Literal, Sequence, Union

import aiohttp

from ._engine import download
from ._http import new_session, ssl_context
from ._options import check_sha256 as _check_sha256
from ._result import DownloadResult
from ._segments import most_connections
from ._errors import DestinationError, VidnbError
from ._fmt import human_bytes, human_duration, human_rate, shorten
from ._progress import ProgressEvent, ProgressOption, ProgressReporter, can_draw, make_reporter
from ._runner import run_sync
from ._urls import choose_filename, validate_url

log = logging.getLogger("vidnb")

PathLike = Union[str, "os.PathLike[str]"]
Item = Union[str, Sequence[Any]]

#: Redraws of the batch's bars per second (the notebook server drops IOPub traffic above ~1000 msg/s).
DRAW_RATE = 4.0
#: Errors listed in one message (a manifest with 10 000 bad lines should not print them all).
MAX_LISTED = 10

__all__ = [
    "BatchError",
    "BatchResult",
    "ItemOutcome",
    "download_many",
    "download_many_sync",
    "read_manifest",
]


class BatchError(VidnbError):
    """Some items of :func:`download_many` failed (raised with ``raise_on_error=True``, after all finished).

    Attributes
    ----------
    result : BatchResult
        Every item's outcome, the successful ones included.
    failed : list of ItemOutcome
        The failed items.
    """

    def __init__(self, result: "BatchResult") -> None:
        self.result = result
        self.failed = result.failed
        listed = _listing([f"{o.url}: {_one_line(o.error)}" for o in self.failed], " (see .result.failed)")
        super().__init__(
            f"{len(self.failed)} of {len(result)} downloads failed:\n  {listed}\n"
            "Run the same batch again to retry them; finished files are skipped, partial ones resumed."
        )


@dataclass(frozen=True)
class ItemOutcome:
    """What became of one item of a batch.

    Attributes
    ----------
    index : int
        Position in the input (0-based).
    url : str
    path : Path or None
        The file (None when the server was to name it and the download failed first).
    result : DownloadResult or None
        Set when the item succeeded (``result.skipped`` when it was already complete).
    error : BaseException or None
        Set when the item failed.
    source : str
        Where the item came from ("item 3", "list.csv line 7"), for messages.
    """

    index: int
    url: str
    path: Path | None
    result: DownloadResult | None = None
    error: BaseException | None = None
    source: str = field(default="", repr=False)

    @property
    def ok(self) -> bool:
        return self.result is not None

    def __repr__(self) -> str:
        what = repr(self.result) if self.result is not None else f"failed: {_one_line(self.error)}"
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

    def raise_for_errors(self) -> "BatchResult":
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
        ok = self.ok
        skipped = sum(1 for o in ok if o.result.skipped)  # type: ignore[union-attr]
        there = f" ({skipped} already there)" if skipped else ""
        return (
            f"<BatchResult {len(ok)} ok{there}, {len(self.items) - len(ok)} failed, "
            f"{human_bytes(self.downloaded_bytes)} in {human_duration(self.elapsed)}>"
        )


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class _Job:
    index: int
    url: str
    dest: Path  # a file, or the folder when the server names the file
    named: bool  # dest is the file
    sha256: str | None
    source: str


def read_manifest(path: PathLike) -> list[tuple[str, str | None, str | None, str]]:
    """Read a manifest: ``(url, filename or None, sha256 or None, source)`` per item.

    Two formats, chosen by the content (a ``.csv`` suffix forces CSV):

    - text: one URL per line, optionally followed by whitespace and a filename; blank
      lines and lines starting with ``#`` are ignored;
    - CSV: a header row with a ``url`` column, optional ``filename`` and ``sha256``
      columns; empty rows and rows whose url starts with ``#`` are ignored.

    Examples
    --------
    >>> vidnb.read_manifest("videos.csv")[0]  # doctest: +SKIP
    ('https://example.com/a.mp4', 'intro.mp4', None, 'videos.csv line 2')
    """
    p = Path(os.fspath(path)).expanduser()
    try:
        text = p.read_text(encoding="utf-8-sig")  # -sig: spreadsheets write a BOM
    except FileNotFoundError:
        raise ValueError(f"manifest {p} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read manifest {p}: {exc}") from None
    first = next((ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), "")
    header = [h.strip().lower() for h in next(csv.reader([first]), [])]
    if p.suffix.lower() == ".csv" or ("url" in header and len(header) > 1) or first.strip().lower() == "url":
        return _read_csv(text, p.name)
    items = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        # URLs cannot contain raw whitespace, so anything after the first run of it is a name.
        url, _, name = line.partition(" ") if " " in line else line.partition("\t")
        items.append((url.strip(), name.strip() or None, None, f"{p.name} line {n}"))
    return items


def _read_csv(text: str, label: str) -> list[tuple[str, str | None, str | None, str]]:
    # Comment lines are dropped before parsing so they cannot be taken for the header.
    lines = [(n, ln) for n, ln in enumerate(text.splitlines(), 1) if not ln.lstrip().startswith("#")]
    reader = csv.reader(io.StringIO("\n".join(ln for _, ln in lines)))
    rows = [(lines[reader.line_num - 1][0] if reader.line_num else 0, row) for row in reader]
    rows = [(n, r) for n, r in rows if any(c.strip() for c in r)]
    if not rows:
        return []
    header = [h.strip().lower() for h in rows[0][1]]
    if "url" not in header:
        raise ValueError(f"{label}: the CSV header has no 'url' column (it has {', '.join(header) or 'nothing'})")
    col = {name: header.index(name) for name in ("url", "filename", "sha256") if name in header}

    def cell(row: list[str], name: str) -> str | None:
        i = col.get(name)
        value = row[i].strip() if i is not None and i < len(row) else ""
        return value or None

    items = []
    for n, row in rows[1:]:
        url = cell(row, "url")
        if url is None:
            raise ValueError(f"{label} line {n}: no url")
        items.append((url, cell(row, "filename"), cell(row, "sha256"), f"{label} line {n}"))
    return items


def _normalise_items(items: Any) -> list[tuple[str, str | None, str | None, str]]:
    if isinstance(items, (str, os.PathLike)):
        raw = os.fspath(items)
        if "://" in raw:  # one URL given where a list was expected: be kind
            return [(raw, None, None, "item 0")]
        return read_manifest(raw)
    if isinstance(items, (bytes, bytearray)):
        raise TypeError("items must be URLs, (url, filename) pairs or a manifest path, not bytes")
    out = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            out.append((item, None, None, f"item {i}"))
        elif isinstance(item, (tuple, list)) and len(item) in (2, 3, 4):
            # A 4th field is where the item came from: read_manifest's output can be passed on as it is.
            url, name = item[0], item[1]
            digest = item[2] if len(item) >= 3 else None
            source = str(item[3]) if len(item) == 4 else f"item {i}"
            out.append((url, None if name is None else os.fspath(name), digest, source))
        else:
            raise TypeError(
                f"item {i} is {item!r}; give a URL, a (url, filename) pair or a (url, filename, sha256) triple"
            )
    return out


def _explicit_path(dest_dir: Path, name: str) -> Path:
    rel = PurePath(name)
    if not name.strip() or rel.is_absolute() or ".." in rel.parts or rel.name in ("", "."):
        raise ValueError(f"filename {name!r} must be a relative path inside the destination folder")
    return dest_dir / rel


def _plan(items: Any, dest_dir: Path, names: str) -> list[_Job]:
    """Check every item before any request; raise ValueError naming each bad one."""
    problems: list[str] = []
    jobs: list[_Job] = []
    seen_urls: dict[str, str] = {}
    seen_paths: dict[str, str] = {}
    for index, (raw_url, name, digest, source) in enumerate(_normalise_items(items)):
        try:
            url = validate_url(raw_url)
            digest = _check_sha256(digest)
            if name is not None:
                dest, named = _explicit_path(dest_dir, name), True
            else:
                guess = choose_filename(url, None) if names == "url" else None
                if guess is not None and Path(guess).suffix:
                    dest, named = dest_dir / guess, True
                else:
                    dest, named = dest_dir, False
        except ValueError as exc:  # InvalidURLError is a ValueError too
            problems.append(f"{source}: {_one_line(exc)}")
            continue
        if url in seen_urls:
            problems.append(f"{source}: {url} is already listed ({seen_urls[url]})")
            continue
        seen_urls[url] = source
        if named:
            key = os.path.normcase(os.path.abspath(dest))
            if key in seen_paths:
                problems.append(
                    f"{source}: {url} would be saved as {dest}, like {seen_paths[key]}; give it its own filename"
                )
                continue
            seen_paths[key] = source
        jobs.append(_Job(index, url, dest, named, digest, source))
    if problems:
        raise ValueError(
            f"{len(problems)} problem{'s' if len(problems) > 1 else ''} in the batch; nothing was downloaded:\n  "
            + _listing(problems)
        )
    return jobs


_DOWNLOAD_PARAMS = frozenset(inspect.signature(download).parameters) - {"url", "dest", "progress"}


def _check_options(options: dict[str, Any]) -> None:
    unknown = sorted(set(options) - _DOWNLOAD_PARAMS)
    if unknown:
        raise TypeError(f"download_many() got unexpected option(s) {', '.join(unknown)}")
    if "sha256" in options:
        raise TypeError(
            "sha256= would apply to every item; give each item its own as a (url, filename, sha256) triple "
            "or a sha256 column in a CSV manifest"
        )


# --------------------------------------------------------------------------- progress


class _Slot:
    """Progress of the file one worker is on: recorded by the engine, drawn by :class:`_Bars`."""

    __slots__ = ("bars", "name", "done", "total", "item", "drawn_item", "seen", "t_start", "initial")

    def __init__(self, bars: "_Bars") -> None:
        self.bars = bars
        self.name = ""
        self.done = 0
        self.total: int | None = None
        self.item = 0  # bumped per file, so the drawer knows to reset the bar
        self.drawn_item = 0
        self.seen = 0  # bytes of this file already counted in the overall figure
        self.t_start = 0.0
        self.initial = 0

    def next_item(self) -> None:
        self.item += 1
        self.seen = 0

    def start(self, name: str, total: int | None, initial: int) -> None:
        # Resumed bytes are not fetched by this call: they count for the file, not the speed.
        self.name, self.total, self.done, self.seen = name, total, initial, initial
        self.t_start, self.initial = time.time(), initial  # tqdm's clock is time.time

    def update(self, event: ProgressEvent) -> None:
        self.done, self.total = event.done, event.total
        if event.done > self.seen:
            self.bars.fetched += event.done - self.seen
            self.seen = event.done

    def close(self, event: ProgressEvent) -> None:
        self.update(event)


class _Bars:
    """The overall bar (files, with bytes and speed) and one reused bar per worker.

    The engine's reporters only record numbers; a ticker task redraws at ``DRAW_RATE``.
    So per-file cost is a few attribute writes whatever the file count, and there are
    never more than ``concurrency`` file bars, each redrawn a few times a second at most.
    """

    def __init__(self, n_items: int, concurrency: int, file_bars: bool) -> None:
        from tqdm.auto import tqdm

        self.tqdm = tqdm
        self.t0 = time.monotonic()
        self.fetched = 0
        self.finished = 0
        self.failed = 0
        self.slots = [_Slot(self) for _ in range(concurrency)]
        self.file_bars: list[Any] = [None] * concurrency if file_bars else []
        self.overall = tqdm(
            total=n_items, desc="vidnb", unit="file", position=0, leave=True, dynamic_ncols=True, mininterval=0
        )
        self._ticker: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(1.0 / DRAW_RATE)
            self.draw()

    def item_finished(self, ok: bool) -> None:
        self.finished += 1
        self.failed += not ok

    def draw(self) -> None:
        bar = self.overall
        elapsed = max(time.monotonic() - self.t0, 1e-9)
        post = f"{human_bytes(self.fetched)}, {human_rate(self.fetched / elapsed)}"
        if self.failed:
            post += f", {self.failed} failed"
        bar.set_postfix_str(post, refresh=False)
        bar.n = self.finished
        bar.refresh()
        for i, bar in enumerate(self.file_bars):
            slot = self.slots[i]
            if slot.item == 0 or (slot.drawn_item == slot.item and bar is not None and bar.n == slot.done):
                continue
            if bar is None:
                bar = self.file_bars[i] = self.tqdm(
                    total=slot.total, desc=shorten(slot.name, 30), unit="B", unit_scale=True, unit_divisor=1024,
                    position=i + 1, leave=False, dynamic_ncols=True, mininterval=0,
                )
            elif slot.drawn_item != slot.item:
                bar.set_description_str(shorten(slot.name, 30), refresh=False)
                bar.reset(total=slot.total)
            slot.drawn_item = slot.item
            # The bar outlives files: give it this file's start so its speed is this file's.
            bar.start_t, bar.initial = slot.t_start, slot.initial
            bar.n = slot.done
            bar.refresh()

    async def close(self) -> None:
        await stop_task(self._ticker)
        self.draw()
        for bar in self.file_bars:
            if bar is not None:
                bar.close()
        self.overall.close()


# --------------------------------------------------------------------------- running



async def stop_task(task: "asyncio.Task[Any] | None") -> None:
    """Cancel a helper task (a bar ticker) and wait until it has stopped."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


async def download_many(
    items: Iterable[Item] | PathLike,
    dest_dir: PathLike = ".",
    *,
    concurrency: int = 8,
    progress: ProgressOption = "auto",
    raise_on_error: bool = False,
    names: Literal["url", "server"] = "url",
    on_item: Callable[[ItemOutcome], Any] | None = None,
    client: Any = None,
    partition_size: int | None = None,
    **download_options: Any,
) -> BatchResult:
    """Download many videos into one folder, ``concurrency`` at a time, on one shared session.

    Everything is checked before the first request: URLs, duplicate URLs, and two items
    that would write the same file (``ValueError`` listing each). One failing item never
    stops the others. Re-running the same batch skips finished files (no request for
    files named before starting, see the module notes) and resumes partial ones.

    Parameters
    ----------
    items : iterable or path
        URLs, ``(url, filename)`` pairs, ``(url, filename, sha256)`` triples, or the path
        of a manifest (see :func:`read_manifest`). Filenames are relative to ``dest_dir``.
    dest_dir : str or Path
        The folder to save into (created if needed).
    concurrency : int
        Downloads at a time (and connections kept open, times ``connections``).
    progress : "auto", bool or callable
        "auto": an overall bar (files, bytes, speed) and one bar per running download in a
        notebook or a terminal, nothing otherwise. A callable receives every file's
        :class:`ProgressEvent` objects (their ``name`` tells the files apart).
    raise_on_error : bool
        Raise :class:`BatchError` once all items have finished, if any failed.
    names : "url" or "server"
        How files without an explicit filename are named: from the URL path when it has an
        extension (known before starting), or always as the server says.
    on_item : callable, optional
        Called with each :class:`ItemOutcome` as it finishes (in completion order; with
        ``client=``, as each partition comes back).
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
    **download_options
        Passed to :func:`vidnb.download` for every item (``overwrite``, ``retries``,
        ``max_bytes``, ``headers``, ``timeout``, ``connections``, ``session``...).

    Returns
    -------
    BatchResult

    Examples
    --------
    >>> batch = await vidnb.download_many(["https://example.com/a.mp4", "https://example.com/b.mp4"], "videos/")  # doctest: +SKIP
    >>> batch
    <BatchResult 2 ok, 0 failed, 96.3 MiB in 1.4 s>
    >>> await vidnb.download_many("videos.csv", "videos/", concurrency=16, raise_on_error=True)  # doctest: +SKIP
    >>> from dask.distributed import Client                                   # doctest: +SKIP
    >>> await vidnb.download_many("videos.csv", "/shared/videos", client=Client("tcp://scheduler:8786"))  # doctest: +SKIP
    """
    t0 = time.monotonic()
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a whole number >= 1, not {concurrency!r}")
    if names not in ("url", "server"):
        raise ValueError(f"names must be 'url' or 'server', not {names!r}")
    _check_options(download_options)
    if client is not None:
        from . import _dask  # distributed is imported only here: it is an optional extra

        _dask.check_client(client, partition_size, download_options)
    elif partition_size is not None:
        raise TypeError("partition_size= applies only with client= (a Dask cluster)")
    folder = Path(os.fspath(dest_dir)).expanduser()
    jobs = _plan(items, folder, names)
    if client is not None:
        return await _dask.download_on_cluster(
            client,
            jobs,
            folder,
            t0=t0,
            concurrency=concurrency,
            partition_size=partition_size,
            progress=progress,
            raise_on_error=raise_on_error,
            on_item=on_item,
            download_options=download_options,
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DestinationError(f"cannot create the folder {folder}: {exc.strerror or exc}", folder) from exc
    if not jobs:
        return BatchResult([], time.monotonic() - t0)
    workers_n = min(concurrency, len(jobs))

    bars: _Bars | None = None
    per_file: ProgressReporter | None = None
    if progress == "auto" or progress is True:
        if progress is True or can_draw():
            bars = _Bars(len(jobs), workers_n, file_bars=True)
    elif progress is not None and progress is not False:
        per_file = make_reporter(progress)

    outcomes = await run_jobs(jobs, concurrency=workers_n, bars=bars, per_file=per_file, on_item=on_item,
                              download_options=download_options)
    result = BatchResult(outcomes, time.monotonic() - t0)
    if raise_on_error:
        result.raise_for_errors()
    return result


async def run_jobs(
    jobs: list[_Job],
    *,
    concurrency: int,
    bars: _Bars | None = None,
    per_file: ProgressReporter | None = None,
    on_item: Callable[[ItemOutcome], Any] | None = None,
    download_options: dict[str, Any],
) -> list[ItemOutcome]:
    """Run planned jobs, ``concurrency`` at a time: the engine of a local batch and of one Dask partition.

    Returns the outcomes in the order of ``jobs``.
    """
    download_options = dict(download_options)
    workers_n = min(concurrency, len(jobs))
    if workers_n == 0:
        return []
    session = download_options.pop("session", None)
    own_session = session is None
    if own_session:
        per_item = most_connections(download_options.get("connections", 1))
        # One pool for the batch: connections are reused from one file to the next.
        connector = aiohttp.TCPConnector(limit=workers_n * per_item, ssl=ssl_context())
        session = new_session(connector=connector)

    outcomes: list[ItemOutcome | None] = [None] * len(jobs)
    claimed: dict[Path, _Job] = {j.dest: j for j in jobs if j.named}
    queue = iter(enumerate(jobs))  # shared by the workers: each next() hands out one job

    async def worker(slot: int) -> None:
        reporter: ProgressReporter | None = per_file
        tracked = bars.slots[slot] if bars is not None else None
        if tracked is not None:
            reporter = tracked
        for position, job in queue:
            if tracked is not None:
                tracked.next_item()
            try:
                result = await download(
                    job.url, job.dest, progress=reporter, session=session, sha256=job.sha256, **download_options
                )
            except Exception as exc:  # noqa: BLE001 - recorded per item; the batch goes on
                outcome = ItemOutcome(job.index, job.url, job.dest if job.named else None, None, exc, job.source)
            else:
                outcome = _claim(job, result, claimed)
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
        if own_session:
            await session.close()
    return [o for o in outcomes if o is not None]


def _claim(job: _Job, result: DownloadResult, claimed: dict[Path, _Job]) -> ItemOutcome:
    """Record which item owns the file; a second item landing on it is a failure, not a success."""
    owner = claimed.setdefault(result.path, job)
    if owner is not job:
        return _clash(job, owner, result.path)
    return ItemOutcome(job.index, job.url, result.path, result, None, job.source)


def _clash(job: _Job, owner: _Job, path: Path) -> ItemOutcome:
    """The failure of an item whose download landed on ``owner``'s file."""
    err = DestinationError(
        f"{path} is also the file of {owner.source} ({owner.url}); give this item its own filename", path
    )
    return ItemOutcome(job.index, job.url, None, None, err, job.source)


def _listing(lines: list[str], more: str = "") -> str:
    """Up to MAX_LISTED lines, indented, then how many more there were."""
    text = "\n  ".join(lines[:MAX_LISTED])
    if len(lines) > MAX_LISTED:
        text += f"\n  ... and {len(lines) - MAX_LISTED} more{more}"
    return text


def download_many_sync(items: Iterable[Item] | PathLike, dest_dir: PathLike = ".", **kwargs: Any) -> BatchResult:
    """Blocking :func:`download_many`, for scripts and for cells that should wait.

    Examples
    --------
    >>> batch = vidnb.download_many_sync("videos.txt", "videos/", concurrency=16)  # doctest: +SKIP
    """
    return run_sync(download_many(items, dest_dir, **kwargs))


def _one_line(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
