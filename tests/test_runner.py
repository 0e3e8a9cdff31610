"""Background tasks and the tqdm bar, in-process (the kernel itself is in test_kernel.py)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest
from helpers import make_video, run_python, until

import vidnb
from vidnb import _files
from vidnb._progress import TqdmReporter


async def test_start_returns_at_once_and_the_task_gives_the_result(serve, video, dest):
    url, _ = serve(video, rate=6 * 1024 * 1024)
    t0 = time.monotonic()
    task = vidnb.start(url, dest, progress=False)
    assert time.monotonic() - t0 < 0.1 and not task.done()
    assert task in vidnb.running_tasks()
    assert repr(task).startswith("<DownloadTask clip.mp4: running")
    with pytest.raises(asyncio.InvalidStateError, match="await task"):
        task.result()
    result = await task
    assert result.path.read_bytes() == video and task.result() is result
    assert task.state == "done" and task.loop is asyncio.get_running_loop()
    assert repr(task) == "<DownloadTask clip.mp4: done, 3.0 MiB of 3.0 MiB (100%)>"
    assert task not in vidnb.running_tasks()


async def test_an_unobserved_failure_is_logged_and_reported(caplog, dest):
    events: list[vidnb.ProgressEvent] = []
    caplog.set_level(logging.ERROR, logger="vidnb")
    task = vidnb.start("http://127.0.0.1:1/clip.mp4", dest, retries=0, progress=events.append)
    del task  # nobody keeps it: the package must, and must still say what happened
    await until(lambda: any(e.state == "failed" for e in events), timeout=10, interval=0.02, what="the failure")
    assert events[-1].state == "failed" and events[-1].error
    assert "background download of http://127.0.0.1:1/clip.mp4 failed" in caplog.text
    assert vidnb.running_tasks() == []


async def test_an_error_before_any_progress_still_closes_the_bar(dest):
    events: list[vidnb.ProgressEvent] = []
    task = vidnb.start("ftp://example.com/clip.mp4", dest, progress=events.append)
    with pytest.raises(vidnb.InvalidURLError):
        await task
    # The bar closes from the task's done-callback.
    await until(lambda: len(events) >= 2, timeout=10, what="the bar to close")
    assert [e.state for e in events] == ["running", "failed"] and "ftp" in events[-1].error
    assert repr(task).startswith("<DownloadTask clip.mp4: failed: ")


async def test_cancel_from_another_thread_keeps_the_part(serve, dest):
    data = make_video(2 * 1024 * 1024)
    url, _ = serve(data, rate=1024 * 1024)
    events: list[vidnb.ProgressEvent] = []
    task = vidnb.start(url, dest, progress=events.append)
    await until(lambda: events and events[-1].done >= 100_000, timeout=30,
                what="the download to get going", unless=task.done)
    assert await asyncio.to_thread(task.cancel)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.state == "cancelled" and not task.cancel()
    assert events[-1].state == "cancelled"
    assert _files.part_path(dest).stat().st_size >= 100_000 and not dest.exists()


def test_start_without_a_loop_runs_on_a_private_loop(serve, video, dest):
    url, _ = serve(video)
    task = vidnb.start(url, dest, progress=False)
    assert task.loop is not None and task.loop.is_running()
    done = threading.Event()
    task._future.add_done_callback(lambda _: done.set())
    assert done.wait(30)
    assert task.result().path.read_bytes() == video and task.state == "done"


async def test_text_bar_shows_bytes_and_marks_failure_and_cancel(serve, dest, capsys):
    data = make_video(1024 * 1024)
    url, _ = serve(data, chunked=True)  # no Content-Length: an indeterminate bar
    await vidnb.download(url, dest, progress=True)
    err = capsys.readouterr().err
    frames = err.split("\r")
    assert frames[1].startswith("clip.mp4: 0.00B [") and "%" not in frames[1]  # no size: no percentage, no ETA
    assert "100%" in frames[-1] and "1.00MB/1.00MB" in frames[-1]  # done: the size is known at last

    bar = TqdmReporter()
    bar.start("x.mp4", 1000, 0)
    bar.update(vidnb.ProgressEvent("x.mp4", 400, 1000, 100.0, 1.0))
    bar.close(vidnb.ProgressEvent("x.mp4", 400, 1000, 100.0, 1.0, "failed", "HTTP 503"))
    err = capsys.readouterr().err
    assert "✗ x.mp4" in err and "failed: HTTP 503" in err and "400B/0.98kB" in err
    bar = TqdmReporter()
    bar.open("y.mp4")  # drawn before the size is known, then started
    bar.start("y.mp4", 2000, 500)
    bar.close(vidnb.ProgressEvent("y.mp4", 900, 2000, 100.0, 1.0, "cancelled"))
    err = capsys.readouterr().err
    assert "⊘ y.mp4" in err and "cancelled" in err and "900B/1.95kB" in err


def test_first_sync_call_in_a_busy_running_loop_leaves_the_loop_alive(serve, video, tmp_path):
    """Like a kernel cell calling download_sync while other callbacks are queued behind it.

    Runs in a fresh interpreter: nest-asyncio2 patches loop classes once per process.
    """
    url, _ = serve(video)
    code = """
import asyncio, sys, vidnb
loop = asyncio.new_event_loop()
seen = []
def cell():
    seen.append(vidnb.download_sync(sys.argv[1], sys.argv[2], progress=False).size)
    loop.call_soon(loop.stop)
loop.call_soon(cell)
for _ in range(200):  # queued behind the cell, as a busy kernel's callbacks are
    loop.call_soon(seen.append, 0)
loop.run_forever()
print(max(seen), len(seen))
"""
    out = run_python(code, url, tmp_path / "clip.mp4", timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(len(video)), "201"]


def test_text_bar_follows_a_changing_total_without_starting_over(capsys):
    bar = TqdmReporter()
    bar.start("clip.ts", 1000, 0)
    bar.update(vidnb.ProgressEvent("clip.ts", 500, 1000, 10.0, 1.0))
    start_t = bar.bar.start_t
    bar.update(vidnb.ProgressEvent("clip.ts", 600, 2000, 10.0, 1.0))  # a better estimate
    assert (bar.bar.total, bar.bar.n, bar.bar.start_t) == (2000, 600, start_t)
    bar.update(vidnb.ProgressEvent("clip.ts", 700, None, 10.0, 1.0))  # the size became unknown
    assert (bar.bar.total, bar.bar.n) == (None, 700)
    bar.close(vidnb.ProgressEvent("clip.ts", 800, 800, 10.0, 1.0, "done"))
    assert "800" in capsys.readouterr().err


async def test_a_misspelt_option_is_refused_by_name_before_anything_starts(dest):
    events: list[vidnb.ProgressEvent] = []
    with pytest.raises(TypeError, match="retrys"):
        vidnb.download_sync("http://127.0.0.1:1/clip.mp4", dest, retrys=3)
    with pytest.raises(TypeError, match="retrys"):
        vidnb.start("http://127.0.0.1:1/clip.mp4", dest, progress=events.append, retrys=3)
    # start() checks its options itself: no task, no bar, nothing on disk.
    assert vidnb.running_tasks() == [] and events == []
    assert not dest.parent.exists()


def test_start_refuses_a_bad_value_before_a_task_exists(dest):
    events: list[vidnb.ProgressEvent] = []
    with pytest.raises(ValueError, match="retries"):
        vidnb.start("http://127.0.0.1:1/clip.mp4", dest, progress=events.append, retries=-1)
    assert vidnb.running_tasks() == [] and events == []
