"""download_many(client=...): a real LocalCluster (2 worker processes) against the local test server."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from helpers import make_video, run_python, serve_many, sha, until, videos

import vidnb
from vidnb import _dask, _files

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    # Started once per module: a cluster costs 2-4 s to start. ":0", not None: with None the
    # scheduler's HTTP server still binds 8787 and warns when another cluster holds it.
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def shape(batch: vidnb.BatchResult, folder: Path) -> list[tuple]:
    """What a batch says about each item, with paths relative to its folder."""
    out = []
    for o in batch:
        err = None if o.error is None else (type(o.error), getattr(o.error, "status", None))
        res = None if o.result is None else (o.result.path.relative_to(folder), o.result.size, o.result.format,
                                               o.result.sha256, o.result.skipped)
        out.append((o.index, o.url, None if o.path is None else o.path.relative_to(folder), res, err, o.source))
    return out


# ---------------------------------------------------------------- outcomes


async def test_cluster_run_gives_the_outcomes_of_a_local_run(client, serve, tmp_path):
    datas = videos(11)
    urls, routes = serve_many(serve, datas)
    missing, _ = serve(statuses=[404] * 10, name="gone.mp4")
    items = [*urls[:4], missing, (urls[4], "sub/named.mp4", sha(datas[4])), *urls[5:]]
    local = await vidnb.download_many(items, tmp_path / "local", concurrency=2, progress=False)
    remote = await vidnb.download_many(
        items, tmp_path / "cluster", client=client, partition_size=3, concurrency=2, progress=False
    )
    assert shape(remote, tmp_path / "cluster") == shape(local, tmp_path / "local")
    assert [o.path.parent for o in remote.ok][0] == tmp_path / "cluster"  # the caller's folder, as given
    assert remote[5].path == tmp_path / "cluster" / "sub" / "named.mp4"
    assert isinstance(remote[4].error, vidnb.HTTPStatusError) and "404" in str(remote[4].error)
    for i, data in enumerate(datas):
        name = "sub/named.mp4" if i == 4 else f"v{i}.mp4"
        assert (tmp_path / "cluster" / name).read_bytes() == data
    assert [r.full_bodies for r in routes] == [2] * 11  # once per run
    assert remote.downloaded_bytes == local.downloaded_bytes == sum(map(len, datas))



async def test_an_asynchronous_client_works_too(client, serve, tmp_path):
    datas = videos(4)
    urls, _ = serve_many(serve, datas)
    events: list[vidnb.ProgressEvent] = []
    async with distributed.Client(client.scheduler.address, asynchronous=True) as aclient:
        batch = await vidnb.download_many(urls, tmp_path, client=aclient, partition_size=2, progress=events.append)
    assert [o.path for o in batch] == [tmp_path / f"v{i}.mp4" for i in range(4)]
    assert all(o.path.read_bytes() == d for o, d in zip(batch, datas, strict=True))
    assert events[-1].name == "4 of 4 files" and events[-1].done == sum(map(len, datas))

async def test_relative_dest_dir_means_the_callers_folder(client, serve, tmp_path, monkeypatch):
    urls, _ = serve_many(serve, videos(2))
    monkeypatch.chdir(tmp_path)
    batch = await vidnb.download_many(urls, "rel", client=client, progress=False)
    assert [o.path for o in batch] == [Path("rel/v0.mp4"), Path("rel/v1.mp4")]
    assert (tmp_path / "rel" / "v1.mp4").exists()


async def test_rerun_on_the_cluster_skips_finished_files_without_any_request(client, serve, tmp_path):
    urls, routes = serve_many(serve, videos(6))
    await vidnb.download_many(urls, tmp_path, client=client, partition_size=2, progress=False)
    again = await vidnb.download_many(urls, tmp_path, client=client, partition_size=2, progress=False)
    assert all(o.result.skipped for o in again) and again.downloaded_bytes == 0
    assert [len(r.requests) for r in routes] == [1] * 6


async def test_raise_on_error_and_on_item_work_as_locally(client, serve, tmp_path):
    urls, _ = serve_many(serve, videos(4))
    missing, _ = serve(statuses=[404] * 10, name="gone.mp4")
    seen = []
    with pytest.raises(vidnb.BatchError) as info:
        await vidnb.download_many(
            [missing, *urls], tmp_path, client=client, partition_size=2, raise_on_error=True,
            progress=False, on_item=seen.append,
        )
    assert "1 of 5 downloads failed" in str(info.value) and len(info.value.result.ok) == 4
    assert sorted(o.index for o in seen) == [0, 1, 2, 3, 4]


async def test_a_raising_on_item_does_not_stop_a_cluster_batch(client, serve, tmp_path, caplog):
    urls, _ = serve_many(serve, videos(4))
    calls = []

    def broken(outcome: vidnb.ItemOutcome) -> None:
        calls.append(outcome)
        raise RuntimeError("bug in the callback")

    batch = await vidnb.download_many(urls, tmp_path, client=client, partition_size=2, progress=False, on_item=broken)
    assert len(batch.ok) == 4 and all(o.path.exists() for o in batch)
    assert len(calls) == 1 and "bug in the callback" in caplog.text


async def test_server_names_that_collide_across_partitions_are_reported(client, serve, tmp_path):
    a, b = make_video(30_000, seed=1), make_video(30_000, seed=2)
    ua, _ = serve(a, name="download", content_disposition='attachment; filename="same.mp4"')
    ub, _ = serve(b, name="download", content_disposition='attachment; filename="same.mp4"')
    batch = await vidnb.download_many([ua, ub], tmp_path, client=client, partition_size=1, progress=False)
    assert len(batch.ok) == 1 and len(batch.failed) == 1
    err = batch.failed[0].error
    assert isinstance(err, vidnb.DestinationError) and "own filename" in str(err)
    assert (tmp_path / "same.mp4").read_bytes() == {ua: a, ub: b}[batch.ok[0].url]
    assert not batch.ok[0].result.skipped


async def test_the_item_that_wrote_a_clashing_file_keeps_it_whichever_partition_ends_first(client, serve, tmp_path):
    a, b, slow = make_video(30_000, seed=1), make_video(30_000, seed=2), make_video(200_000, seed=3)
    ua, _ = serve(a, name="download", content_disposition='attachment; filename="same.mp4"')
    ub, _ = serve(b, name="download", content_disposition='attachment; filename="same.mp4"', rate=20_000)
    # The first partition is held up by a slow neighbour, so it often ends after the other
    # even when its item wrote the file: the writer must keep it all the same.
    us, _ = serve(slow, name="slow.mp4", rate=200_000)
    batch = await vidnb.download_many(
        [ua, us, ub], tmp_path, client=client, partition_size=2, concurrency=2, progress=False
    )
    assert batch[1].ok and [batch[0].ok, batch[2].ok].count(True) == 1, batch.failed
    winner, loser = (batch[0], batch[2]) if batch[0].ok else (batch[2], batch[0])
    assert not winner.result.skipped and "own filename" in str(loser.error)
    assert (tmp_path / "same.mp4").read_bytes() == {ua: a, ub: b}[winner.url]


def test_errors_that_do_not_unpickle_are_wrapped():
    class Odd(Exception):
        def __init__(self, a, b):  # pickling calls Odd(msg): it cannot be rebuilt
            super().__init__(f"{a}/{b}")

    outcome = vidnb.ItemOutcome(0, "http://x/a.mp4", None, None, Odd(1, 2), "item 0")
    wrapped = _dask._portable(outcome)
    assert isinstance(wrapped.error, vidnb.VidnbError) and "Odd: 1/2" in str(wrapped.error)
    kept = _dask._portable(vidnb.ItemOutcome(0, "u", None, None, vidnb.HTTPStatusError(404, "u"), "item 0"))
    assert isinstance(kept.error, vidnb.HTTPStatusError) and kept.error.status == 404


# ---------------------------------------------------------------- checks before submitting


async def test_bad_input_fails_as_locally_before_anything_is_submitted(client, serve, tmp_path):
    urls, routes = serve_many(serve, videos(2))
    items = [urls[0], "ftp://example.com/a.mp4", urls[0]]
    with pytest.raises(ValueError) as local:
        await vidnb.download_many(items, tmp_path / "a", progress=False)
    with pytest.raises(ValueError) as remote:
        await vidnb.download_many(items, tmp_path / "a", client=client, progress=False)
    assert str(remote.value) == str(local.value)
    assert [len(r.requests) for r in routes] == [0, 0] and not (tmp_path / "a").exists()


async def test_a_folder_workers_cannot_write_fails_early_naming_them(client, serve, tmp_path):
    urls, routes = serve_many(serve, videos(2))
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(vidnb.DestinationError) as info:
        await vidnb.download_many(urls, tmp_path / "file" / "videos", client=client, progress=False)
    text = str(info.value)
    assert text.startswith("2 of 2 Dask workers cannot write") and "shared filesystem" in text
    assert all(addr in text for addr in client.scheduler_info()["workers"])
    assert [len(r.requests) for r in routes] == [0, 0]


async def test_options_that_cannot_go_to_workers_are_refused(client, tmp_path):
    with pytest.raises(TypeError, match="session"):
        await vidnb.download_many(["https://example.com/a.mp4"], tmp_path, client=client, session=object())
    with pytest.raises(TypeError, match="partition_size"):
        await vidnb.download_many(["https://example.com/a.mp4"], tmp_path, partition_size=10)
    with pytest.raises(ValueError, match="partition_size"):
        await vidnb.download_many(["https://example.com/a.mp4"], tmp_path, client=client, partition_size=0)
    with pytest.raises(TypeError, match="dask.distributed.Client"):
        await vidnb.download_many(["https://example.com/a.mp4"], tmp_path, client="tcp://127.0.0.1:8786")


def test_without_dask_client_gives_the_install_hint(tmp_path):
    code = (
        "import sys; sys.modules['distributed'] = None\n"
        "import vidnb\n"
        "try:\n"
        "    vidnb.download_many_sync(['http://127.0.0.1:9/a.mp4'], sys.argv[1], client=object())\n"
        "except ModuleNotFoundError as exc:\n"
        "    print('HINT', exc)\n"
    )
    out = run_python(code, tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "HINT" in out.stdout and "pip install 'vidnb[dask]'" in out.stdout


def test_automatic_partitions_keep_every_thread_busy_and_each_at_least_concurrency():
    assert _dask._partition_size(2000, threads=2, concurrency=16) == 250
    assert _dask._partition_size(10, threads=2, concurrency=8) == 8
    assert _dask._partition_size(10**6, threads=4, concurrency=8) == _dask.MAX_AUTO_PARTITION


# ---------------------------------------------------------------- progress


async def test_progress_callable_gets_overall_events_from_the_workers(client, serve, tmp_path):
    datas = videos(8, size=200_000)
    urls, _ = serve_many(serve, datas, rate=400_000)
    events: list[vidnb.ProgressEvent] = []
    await vidnb.download_many(urls, tmp_path, client=client, partition_size=2, concurrency=1, progress=events.append)
    assert events[-1].state == "done" and events[-1].name == "8 of 8 files"
    assert events[-1].done == sum(map(len, datas))
    dones = [e.done for e in events]
    assert dones == sorted(dones)
    # Fed while running (each file takes 0.5 s, two in a row per task), not only at the end.
    assert any(0 < e.done < events[-1].done for e in events)


async def test_progress_bar_is_one_overall_bar(client, serve, tmp_path, capsys):
    from tqdm.auto import tqdm

    urls, _ = serve_many(serve, videos(6))
    batch = await vidnb.download_many(urls, tmp_path, client=client, partition_size=2, progress=True)
    assert len(batch.ok) == 6 and len(tqdm._instances) == 0
    err = capsys.readouterr().err
    assert "6/6" in err and "file" in err and "KiB" in err


# ---------------------------------------------------------------- a worker dies


async def test_a_killed_worker_is_retried_and_nothing_is_fetched_twice(client, serve, tmp_path):
    datas = videos(8, size=800_000)
    # About 2 s per file: a download writes its resume record after its first second.
    urls, routes = serve_many(serve, datas, rate=400_000)
    task = asyncio.ensure_future(
        vidnb.download_many(urls, tmp_path, client=client, partition_size=4, concurrency=2, progress=False)
    )
    pids = client.run(os.getpid)
    finals = [tmp_path / f"v{i}.mp4" for i in range(8)]
    parts = [_files.part_path(f) for f in finals]

    def victim() -> tuple[str, list[int]] | None:
        """A worker whose partition has a finished file and every started one with bytes on disk."""
        for address, keys in client.processing().items():
            for key in keys:
                p = int(str(key).rsplit("-", 1)[1])
                mine = range(4 * p, 4 * p + 4)
                done = [i for i in mine if finals[i].exists()]
                running = [i for i in mine if routes[i].requests and not finals[i].exists()]
                if done and running and all(
                    _files.sidecar_path(finals[i]).exists() and parts[i].exists() and parts[i].stat().st_size > 20_000
                    for i in running
                ):
                    return address, running
        return None

    address, running = await until(victim, timeout=30, interval=0.02,
                                   what="a partition caught mid-download", unless=task.done)
    os.kill(pids[address], signal.SIGKILL)  # the nanny starts a new worker; the scheduler reruns the task

    batch = await asyncio.wait_for(task, 60)
    assert len(batch.ok) == 8, batch.failed
    for final, data in zip(finals, datas, strict=True):
        assert final.read_bytes() == data
    assert [r.full_bodies for r in routes] == [1] * 8  # no body fetched twice
    # The rerun continued the killed partition's partial files with Range requests.
    for i in running:
        assert batch[i].result.resumed and "Range" in routes[i].requests[-1]
    assert any(o.result.skipped for o in batch)  # and found its finished ones in place
    assert sorted(os.listdir(tmp_path)) == [f"v{i}.mp4" for i in range(8)]


async def test_cancelling_a_cluster_batch_leaves_files_a_rerun_completes(client, serve, tmp_path):
    datas = videos(6, size=200_000)
    urls, routes = serve_many(serve, datas, rate=1_000_000)
    task = asyncio.ensure_future(
        vidnb.download_many(urls, tmp_path, client=client, partition_size=2, concurrency=2, progress=False)
    )
    await until(lambda: any(_files.part_path(tmp_path / f"v{i}.mp4").exists() for i in range(6)), timeout=30,
                what="the downloads to start", unless=task.done)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Partitions already running finish on their workers; the rest were dropped. A re-run
    # waits for the running ones (the per-file lock), skips what is done and fetches the rest.
    batch = await vidnb.download_many(urls, tmp_path, client=client, partition_size=2, progress=False)
    assert len(batch.ok) == 6
    for i, data in enumerate(datas):
        assert (tmp_path / f"v{i}.mp4").read_bytes() == data
    assert [r.full_bodies for r in routes] == [1] * 6
    assert sorted(os.listdir(tmp_path)) == [f"v{i}.mp4" for i in range(6)]
