"""download_many on a Dask cluster: partitions of the plan run on the workers, one BatchResult comes back.

The client side plans with the same code as a local batch (so bad input fails the same
way, before anything is submitted), checks that every worker can write ``dest_dir``, splits
the jobs into partitions and submits one task per partition. A task runs the local engine
(:func:`vidnb._batch.run_jobs`) on its own event loop in the worker's thread, and returns
the partition's :class:`~vidnb.ItemOutcome` objects, which the client puts back in input
order.

Why a retried task never fetches a body twice: a worker that dies takes its task with it,
and the scheduler runs the task again elsewhere (up to ``distributed.scheduler.allowed-failures``
times). The engine then skips files that are complete (with no request when the name is
known in advance), resumes ``.part`` files with ``Range``, and the per-destination ``flock``
(released by the kernel when a process dies) keeps two processes off one file.

Progress: each task counts finished files and fetched bytes and sends cumulative figures
with ``Worker.log_event`` (thread-safe, batched with the worker's other traffic to the
scheduler, no extra client per task) at most ``FEED_RATE`` times a second; the client
subscribes to the batch's topic and feeds one overall bar. Cumulative figures per task
attempt make lost, late or repeated messages harmless: files count once per partition
(the highest figure of any attempt), bytes add up over attempts (a retry fetches only what
the dead one had not).

``distributed`` is imported only when ``client=`` is used: it is the optional extra
``vidnb[dask]``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import pickle
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ._bars import DRAW_RATE, Bars, batch_progress, stop_task
from ._batch import remote_files, run_jobs
from ._errors import DestinationError, VidnbError
from ._options import Options
from ._outcomes import BatchResult, ItemOutcome, clash
from ._plan import Job, listing, one_line
from ._progress import ProgressEvent, ProgressOption, ProgressReporter, State
from ._remote import check_writable, prepare_batch

log = logging.getLogger("vidnb")

INSTALL_HINT = "pip install 'vidnb[dask]'"
#: Progress messages per second per running partition, at most.
FEED_RATE = 4.0
#: Largest automatic partition: a retried task should not redo (or re-check) too much.
MAX_AUTO_PARTITION = 500
#: Partitions per worker thread aimed at by the automatic size (balance against per-task cost).
PARTITIONS_PER_THREAD = 4

__all__ = ["check_client", "download_on_cluster", "INSTALL_HINT"]


def _distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise ModuleNotFoundError(
            f"download_many(client=...) runs on Dask, which is not installed: {INSTALL_HINT}",
            name="distributed",
        ) from exc
    return distributed


def check_client(client: Any, partition_size: int | None, session: object = None) -> None:
    """Refuse what cannot work on a cluster, before planning or submitting anything.

    Raises ``ModuleNotFoundError`` with the install hint when Dask is not installed.

    Examples
    --------
    >>> check_client(Client(), partition_size=None)  # doctest: +SKIP
    """
    distributed = _distributed()
    if not isinstance(client, distributed.Client):
        raise TypeError(f"client must be a dask.distributed.Client, not {type(client).__name__}")
    if partition_size is not None and (
        isinstance(partition_size, bool) or not isinstance(partition_size, int) or partition_size < 1
    ):
        raise ValueError(f"partition_size must be a whole number >= 1, not {partition_size!r}")
    if session is not None:
        raise TypeError(
            "session= cannot be used with client=: a session belongs to one process; workers open their own"
        )


# --------------------------------------------------------------------------- worker side


def _check_destination(folder: str, dask_worker: Any = None) -> dict[str, Any]:
    """Run on every worker: can it create and write files in ``folder``? Also say how many threads it has."""
    info: dict[str, Any] = {"nthreads": getattr(dask_worker, "nthreads", 1) or 1, "error": None}
    path = Path(folder)
    probe = path / f".vidnb-write-check-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, b"vidnb")
        finally:
            os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        info["error"] = f"{exc.strerror or exc} ({exc.filename or folder})"
    return info


def _check_remote_destination(url: str, options: dict[str, Any], dask_worker: Any = None) -> dict[str, Any]:
    """Run on every worker for a folder on object storage: can it write a small object there and delete it?"""
    return {"nthreads": getattr(dask_worker, "nthreads", 1) or 1, "error": check_writable(url, options)}


class _Feed:
    """A partition's progress reporter: counts files and bytes, sends cumulative figures to the client."""

    def __init__(self, topic: str, partition: int) -> None:
        from distributed import get_worker

        self.worker = get_worker()
        self.topic = topic
        self.partition = partition
        self.attempt = uuid.uuid4().hex[:12]  # a retried task is a new attempt
        self.ok = 0
        self.failed = 0
        self.bytes = 0
        self.seen: dict[str, int] = {}  # bytes of each running file already counted
        self.next_send = 0.0
        self.sent: tuple[int, int, int] | None = None

    # ProgressReporter: one instance serves every file of the partition, told apart by name.
    def start(self, name: str, total: int | None, initial: int) -> None:
        # Resumed bytes were fetched by an earlier attempt (already counted there, if at all).
        self.seen[name] = initial

    def update(self, event: ProgressEvent) -> None:
        before = self.seen.get(event.name, 0)
        if event.done > before:
            self.bytes += event.done - before
            self.seen[event.name] = event.done
        self.send()

    def close(self, event: ProgressEvent) -> None:
        self.update(event)
        self.seen.pop(event.name, None)

    def item_done(self, outcome: ItemOutcome) -> None:
        if outcome.ok:
            self.ok += 1
        else:
            self.failed += 1
        self.send()

    def send(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self.next_send:
            return
        figures = (self.ok, self.failed, self.bytes)
        if figures == self.sent:
            return
        self.next_send = now + 1.0 / FEED_RATE
        self.sent = figures
        self.worker.log_event(self.topic, [self.partition, self.attempt, *figures])


def _run_partition(
    jobs: list[Job], partition: int, concurrency: int, opts: Options, topic: str | None,
    listed: dict[str, int] | None = None,
) -> tuple[list[ItemOutcome], str | None, int]:
    """The Dask task: run one partition with the local engine on a private event loop.

    Returns the outcomes, the attempt's id and the bytes it fetched (the last progress
    message may arrive after the result; these figures are exact).
    """
    feed = _Feed(topic, partition) if topic is not None else None
    # Worker threads have no running loop: asyncio.run gives the partition its own.
    outcomes = asyncio.run(
        run_jobs(
            jobs,
            opts,
            concurrency=concurrency,
            per_file=feed,
            on_item=feed.item_done if feed is not None else None,
            listed=listed,
            # A retried task must see what the attempt that died uploaded: the engine asks for
            # each object the listing did not show.
            complete=False,
        )
    )
    if feed is not None:
        feed.send(force=True)
    return [_portable(o) for o in outcomes], feed.attempt if feed else None, feed.bytes if feed else 0


def _portable(outcome: ItemOutcome) -> ItemOutcome:
    """Make sure the outcome survives the trip to the client: replace errors that do not unpickle."""
    err = outcome.error
    if err is None:
        return outcome
    try:
        pickle.loads(pickle.dumps(err))
    except Exception as exc:  # noqa: BLE001 - any failure means it would not arrive
        wrapped = VidnbError(
            f"{type(err).__name__}: {one_line(err)} (this error could not be sent back from the worker: {exc})"
        )
        return replace(outcome, error=wrapped)
    return outcome


# --------------------------------------------------------------------------- client side


class _Overall:
    """The client's view of the batch's progress: one bar, or overall events for a callable."""

    def __init__(self, n_items: int, progress: ProgressOption) -> None:
        self.n = n_items
        self.bars: Bars | None
        self.reporter: ProgressReporter | None
        self.bars, self.reporter = batch_progress(progress, n_items, 0, file_bars=False)
        self.enabled = self.bars is not None or self.reporter is not None
        # partition -> attempt -> (ok, failed, bytes), cumulative per attempt
        self.attempts: dict[int, dict[str, tuple[int, int, int]]] = {}
        self.final: dict[int, tuple[int, int]] = {}
        self.finished = self.failed = self.fetched = 0
        self.t0 = time.monotonic()
        self._ticker: asyncio.Task[None] | None = None
        self._reported: tuple[int, int] | None = None

    def start(self) -> None:
        if self.bars is not None:
            self.bars.start()
        if self.reporter is not None:
            self.reporter.start(self._label(), None, 0)
            self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(1.0 / DRAW_RATE)
            if self._reported != (self.finished, self.fetched):
                self._reported = (self.finished, self.fetched)
                assert self.reporter is not None
                self.reporter.update(self._event("running"))

    def _label(self) -> str:
        failed = f", {self.failed} failed" if self.failed else ""
        return f"{self.finished} of {self.n} files{failed}"

    def _event(self, state: State) -> ProgressEvent:
        elapsed = time.monotonic() - self.t0
        return ProgressEvent(self._label(), self.fetched, None, self.fetched / max(elapsed, 1e-9), elapsed, state)

    def message(self, msg: Any) -> None:
        partition, attempt, ok, failed, fetched = msg
        self._record(partition, attempt, (ok, failed, fetched))

    def _record(self, partition: int, attempt: str, figures: tuple[int, int, int]) -> None:
        runs = self.attempts.setdefault(partition, {})
        old = runs.get(attempt, (0, 0, 0))
        runs[attempt] = (max(old[0], figures[0]), max(old[1], figures[1]), max(old[2], figures[2]))
        self._sum()

    def partition_done(self, partition: int, outcomes: list[ItemOutcome], attempt: str | None, fetched: int) -> None:
        if attempt is not None:
            self._record(partition, attempt, (0, 0, fetched))
        ok = sum(1 for o in outcomes if o.ok)
        self.final[partition] = (ok, len(outcomes) - ok)
        self._sum()

    def _sum(self) -> None:
        finished = failed = fetched = 0
        for partition, runs in self.attempts.items():
            fetched += sum(f[2] for f in runs.values())
            if partition not in self.final:
                finished += max(f[0] + f[1] for f in runs.values())
                failed += max(f[1] for f in runs.values())
        for ok, bad in self.final.values():
            finished += ok + bad
            failed += bad
        self.finished, self.failed, self.fetched = min(finished, self.n), failed, fetched
        if self.bars is not None:
            self.bars.finished, self.bars.failed, self.bars.fetched = self.finished, self.failed, self.fetched

    async def close(self, ok: bool) -> None:
        if self.bars is not None:
            await self.bars.close()
        await stop_task(self._ticker)
        if self.reporter is not None:
            self.reporter.close(self._event("done" if ok else "cancelled"))


async def _call(client: Any, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a Client method without blocking the event loop, for synchronous and asynchronous clients."""
    if client.asynchronous:
        return await fn(*args, **kwargs)
    return await asyncio.to_thread(fn, *args, **kwargs)


def _partition_size(n_jobs: int, threads: int, concurrency: int) -> int:
    # Several partitions per thread balance uneven workers and keep retries small; at least
    # `concurrency` items each, or a partition could not run that many downloads at once.
    size = math.ceil(n_jobs / max(threads * PARTITIONS_PER_THREAD, 1))
    return max(1, concurrency, min(MAX_AUTO_PARTITION, size))


async def _check_workers(client: Any, folder: Path | str, opts: Options) -> int:
    """Fail early, naming the workers that cannot write ``folder``; return the cluster's thread count."""
    if isinstance(folder, str):
        check: Callable[..., Any] = _check_remote_destination
        args: tuple[Any, ...] = (folder, dict(opts.storage_options))
        need = ("dest_dir on object storage must be writable by every worker: a small object is written there "
                "and deleted. Check the bucket, and that storage_options (or each worker's own credentials) "
                "allow writing.")  # fmt: skip
    else:
        check, args = _check_destination, (str(folder),)
        need = ("dest_dir must be a folder every worker can write: a shared filesystem mounted at the same path "
                "on every machine, or a local disk when the cluster runs on this machine.")  # fmt: skip
    answers: dict[str, Any] = await _call(client, client.run, check, *args, on_error="return")
    if not answers:
        # An adaptive cluster may have no worker yet: the tasks wait for one; items report write errors.
        log.warning("the Dask cluster has no workers yet; cannot check that they can write %s", folder)
        return 1
    bad: list[str] = []
    threads = 0
    for address, info in sorted(answers.items()):
        if isinstance(info, BaseException):
            bad.append(f"{address}: {type(info).__name__}: {one_line(info)}")
        elif info["error"]:
            bad.append(f"{address}: {info['error']}")
        else:
            threads += int(info["nthreads"])
    if bad:
        listed = listing(bad)
        raise DestinationError(
            f"{len(bad)} of {len(answers)} Dask workers cannot write to {folder}; nothing was downloaded:\n  {listed}\n"
            + need,
            folder if isinstance(folder, Path) else None,
        )
    return max(threads, 1)


def _rebase(path: Path | str | None, remote: Path | str, local: Path | str) -> Path | str | None:
    if path is None or isinstance(path, str) or isinstance(remote, str) or isinstance(local, str):
        return path  # a URL on object storage is the same everywhere
    try:
        return local / path.relative_to(remote)
    except ValueError:
        return path


async def download_on_cluster(
    client: Any,
    jobs: list[Job],
    folder: Path | str,
    opts: Options,
    *,
    t0: float,
    concurrency: int,
    partition_size: int | None,
    progress: ProgressOption,
    on_item: Callable[[ItemOutcome], Any] | None = None,
) -> BatchResult:
    """The ``client=`` side of :func:`vidnb.download_many` (arguments already checked, items planned).

    Examples
    --------
    >>> batch = await download_on_cluster(client, jobs, Path("/shared/videos"), make_options(),
    ...                                   t0=time.monotonic(), concurrency=8, partition_size=None,
    ...                                   progress=False)  # doctest: +SKIP
    """
    distributed = _distributed()
    # Workers do not share the client's working directory; an absolute path means the same
    # folder on a shared filesystem. Outcomes are mapped back to the path the caller gave.
    # A folder on object storage is one URL everywhere.
    remote: Path | str = folder if isinstance(folder, str) else Path(os.path.abspath(folder))
    threads = await _check_workers(client, remote, opts)
    listed: dict[str, int] = {}
    if isinstance(folder, str):
        # One listing, here: the workers are told which objects are done, instead of each asking.
        listed = await asyncio.to_thread(prepare_batch, folder, opts, remote_files(jobs))
    if not jobs:
        return BatchResult([], time.monotonic() - t0)
    size = partition_size or _partition_size(len(jobs), threads, concurrency)
    remote_jobs = [replace(j, dest=_on_workers(j.dest, folder, remote)) for j in jobs]
    partitions = [remote_jobs[i : i + size] for i in range(0, len(remote_jobs), size)]

    overall = _Overall(len(jobs), progress)
    loop = asyncio.get_running_loop()
    token = uuid.uuid4().hex
    topic: str | None = None
    if overall.enabled:
        topic = f"vidnb-progress-{token}"

        def on_event(event: tuple[float, Any]) -> None:
            # Runs on the client's own loop (another thread for a synchronous Client).
            try:
                loop.call_soon_threadsafe(overall.message, event[1])
            except RuntimeError:
                pass  # our loop is gone: the batch has ended

        client.subscribe_topic(topic, on_event)

    # A worker's progress goes to its feed: whatever the options say about progress stays here.
    shipped = replace(opts, progress=None)
    futures = [
        client.submit(
            _run_partition, part, i, concurrency, shipped, topic,
            {j.dest: listed[j.dest] for j in part if isinstance(j.dest, str) and j.dest in listed},
            key=f"vidnb-download-many-{token}-{i}", pure=False,
        )
        for i, part in enumerate(partitions)
    ]
    part_of = {f.key: i for i, f in enumerate(futures)}
    by_index: dict[int, ItemOutcome] = {}
    # Items named by the server are claimed across partitions here, as run_jobs does in one process.
    claimed: dict[Path | str, Job] = {j.dest: j for j in jobs if j.named}
    job_of = {j.index: j for j in jobs}

    def partition_finished(future: Any, result: Any) -> None:
        i = part_of[future.key]
        if future.status == "finished":
            outcomes, attempt, fetched = result
        else:
            outcomes, attempt, fetched = _failed_partition(partitions[i], future, result), None, 0
        local_outcomes = [_localise(o, remote, folder, claimed, job_of, by_index) for o in outcomes]
        overall.partition_done(i, local_outcomes, attempt, fetched)
        for outcome in local_outcomes:
            by_index[outcome.index] = outcome
            if on_item is not None:
                on_item(outcome)

    completed = False
    overall.start()
    try:
        await _each_completed(distributed, client, futures, partition_finished)
        completed = True
    finally:
        if not completed:
            # Interrupted: drop what has not started. A running partition finishes its current
            # files (a worker thread cannot be stopped); a re-run skips or resumes them.
            await _call(client, client.cancel, futures)
        if topic is not None:
            client.unsubscribe_topic(topic)
        await overall.close(completed)

    return BatchResult([by_index[j.index] for j in jobs], time.monotonic() - t0)


async def _each_completed(
    distributed: Any, client: Any, futures: list[Any], handle: Callable[[Any, Any], None]
) -> None:
    """Call ``handle(future, result)`` on the event loop as each partition ends, without blocking the loop."""
    if client.asynchronous:
        async for future, result in distributed.as_completed(futures, with_results=True, raise_errors=False):
            handle(future, result)
        return
    # A synchronous Client blocks while it waits: wait in a thread and hand each result over.
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    end = object()

    def post(item: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:
            pass  # the loop has closed: nobody is waiting any more

    def wait_all() -> None:
        try:
            for pair in distributed.as_completed(futures, with_results=True, raise_errors=False, loop=client.loop):
                post(pair)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the waiting coroutine
            post(exc)
        post(end)

    waiter = loop.run_in_executor(None, wait_all)
    while (item := await queue.get()) is not end:
        if isinstance(item, BaseException):
            raise item
        handle(*item)
    await waiter


def _on_workers(dest: Path | str, folder: Path | str, remote: Path | str) -> Path | str:
    """A job's destination as the workers see it: the same URL, or the file under the absolute folder."""
    if isinstance(dest, str) or isinstance(folder, str) or isinstance(remote, str):
        return dest
    return remote / dest.relative_to(folder)


def _failed_partition(jobs: list[Job], future: Any, result: Any) -> list[ItemOutcome]:
    """Every item of a task that did not finish (a worker died too often, it was cancelled) fails with its cause."""
    if isinstance(result, tuple) and len(result) == 3 and isinstance(result[1], BaseException):
        cause: BaseException = result[1]
    elif isinstance(result, BaseException):
        cause = result
    else:
        cause = RuntimeError(f"task {future.key} ended as {future.status}")
    err = VidnbError(
        f"the Dask task downloading this item failed: {type(cause).__name__}: {one_line(cause)}. "
        "Run the same batch again to retry; finished files are skipped, partial ones resumed."
    )
    err.__cause__ = cause
    return [ItemOutcome(j.index, j.url, j.dest if j.named else None, None, err, j.source) for j in jobs]


def _localise(
    outcome: ItemOutcome,
    remote: Path | str,
    local: Path | str,
    claimed: dict[Path | str, Job],
    job_of: dict[int, Job],
    by_index: dict[int, ItemOutcome],
) -> ItemOutcome:
    """Map worker paths back to the caller's folder, and catch server-named clashes across partitions.

    Partitions finish in any order, so the item that found the file already there
    (``skipped``) may report before the item that wrote it. A writer therefore takes the
    file over from a skipper that claimed it first, and the skipper's outcome becomes the
    clash (``by_index`` is corrected; ``on_item`` has already seen it as a success).
    """
    path = _rebase(outcome.path, remote, local)
    result = outcome.result
    if result is not None:
        result = replace(result, path=_rebase(result.path, remote, local) or result.path)
        job = job_of[outcome.index]
        owner = claimed.setdefault(result.path, job)
        if owner is not job:
            earlier = by_index.get(owner.index)
            if not result.skipped and earlier is not None and earlier.result is not None and earlier.result.skipped:
                claimed[result.path] = job
                by_index[owner.index] = clash(owner, job, result.path)
            else:
                return clash(job, owner, result.path)
    return ItemOutcome(outcome.index, outcome.url, path, result, outcome.error, outcome.source)
