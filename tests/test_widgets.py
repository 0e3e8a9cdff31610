"""The notebook widgets in-process, without a browser: preview choices, the DownloadPanel, the gallery.

The panel and the gallery are driven the way a browser would (``button.click()``), against
the bundled sample served by :func:`vidnb.demo.sample_server` (or, to count what reaches
the server, the fault server of ``helpers``), and their work runs on the test's loop.
Files browsers cannot play are real ones, made by ffmpeg (``media_clips``); every test
keeps its thumbnail cache in a temp folder (``XDG_CACHE_HOME``).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import threading
import time
import tracemalloc
from pathlib import Path

import aiohttp
import ipywidgets
import media_clips
import pytest
from helpers import Concurrency, leftovers, run_python, serve_many, until, videos, wait_until

import vidnb
from vidnb import _files, demo, widgets
from vidnb._fmt import human_bytes
from vidnb.widgets import DownloadPanel, PreviewNote, ReferencePreview, preview

SAMPLE = demo.sample_path("sample.mp4").read_bytes()
SAMPLE_SHA = hashlib.sha256(SAMPLE).hexdigest()


@pytest.fixture(scope="module")
def srv() -> demo.SampleServer:
    return demo.sample_server()


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in a fresh folder, as a notebook's kernel runs in the notebook's folder."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(autouse=True)
def cache_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Poster frames (of finished panel rows too) are cached here, never in the real home."""
    home = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One real clip per container of ``media_clips.CLIPS`` (read-only: tests copy what they change)."""
    if not media_clips.have_ffmpeg():
        pytest.skip(media_clips.NO_FFMPEG)
    return media_clips.make_clips(tmp_path_factory.mktemp("clips"))


# --------------------------------------------------------------------------- preview


def test_small_file_becomes_a_video_widget_with_its_bytes_and_sniffed_format(in_tmp):
    (in_tmp / "clip.bin").write_bytes(demo.sample_path("sample.webm").read_bytes())
    shown = preview("clip.bin", width=320, loop=True)
    assert isinstance(shown, ipywidgets.Video)
    assert shown.value == demo.sample_path("sample.webm").read_bytes()
    assert shown.format == "webm"  # from the bytes, not the misleading name
    assert (shown.width, shown.loop, shown.autoplay) == ("320", True, False)
    assert "application/vnd.jupyter.widget-view+json" in shown._repr_mimebundle_()


def test_download_result_and_bytes_are_accepted(in_tmp):
    path = in_tmp / "s.mp4"
    path.write_bytes(SAMPLE)
    result = vidnb.DownloadResult(path, "http://x/s.mp4", len(SAMPLE), "video/mp4", "mp4", 0.1)
    assert preview(result).value == SAMPLE
    from_bytes = preview(SAMPLE)
    assert isinstance(from_bytes, ipywidgets.Video) and from_bytes.format == "mp4"


def test_large_file_is_shown_by_reference_relative_to_the_notebook(in_tmp):
    (in_tmp / "my videos").mkdir()
    (in_tmp / "my videos" / "big.mp4").write_bytes(SAMPLE)
    shown = preview(in_tmp / "my videos" / "big.mp4", embed_max_bytes=1000, muted=True, width=400)
    assert isinstance(shown, ReferencePreview)
    assert shown.src == "my%20videos/big.mp4"
    page = shown._repr_html_()
    assert 'src="my%20videos/big.mp4"' in page and "<video" in page and "muted" in page and 'width="400"' in page
    assert "base64" not in page and "data:" not in page
    assert "over the" in shown.note.text and "inline limit" in shown.note.text


def test_the_module_attribute_sets_the_default_threshold(in_tmp, monkeypatch):
    (in_tmp / "a.mp4").write_bytes(SAMPLE)
    assert isinstance(preview("a.mp4"), ipywidgets.Video)
    monkeypatch.setattr(widgets, "EMBED_MAX_BYTES", 50_000)
    assert isinstance(preview("a.mp4"), ReferencePreview)
    assert isinstance(preview("a.mp4", embed_max_bytes=len(SAMPLE)), ipywidgets.Video)


def test_a_large_file_is_never_read_into_memory(in_tmp):
    big = in_tmp / "huge.mp4"
    with open(big, "wb") as f:  # 300 MB, sparse: only the header is real
        f.write(SAMPLE[:4096])
        f.truncate(300 * 1024 * 1024)
    tracemalloc.start()
    try:
        shown = preview(big)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(shown, ReferencePreview) and shown.src == "huge.mp4"
    assert peak < 2 * 1024 * 1024


def test_a_large_file_outside_the_notebook_folder_gets_a_clear_refusal(tmp_path, monkeypatch):
    (tmp_path / "nb").mkdir()
    outside = tmp_path / "elsewhere.mp4"
    outside.write_bytes(SAMPLE)
    monkeypatch.chdir(tmp_path / "nb")
    shown = preview(outside, embed_max_bytes=1000)
    assert isinstance(shown, PreviewNote) and shown.level == "error"
    assert "outside the notebook's folder" in shown.text
    # A small file outside is fine: it is sent inline.
    assert isinstance(preview(outside), ipywidgets.Video)


@pytest.mark.parametrize(
    "head, name",
    [
        (b"RIFF\x00\x00\x00\x00AVI LIST", "AVI"),
        (b"FLV\x01\x05\x00\x00\x00\x09", "FLV"),
        ((b"\x47" + bytes(187)) * 3, "TS"),
        (bytes.fromhex("3026B2758E66CF11A6D900AA0062CE6C") + bytes(16), "ASF"),
    ],
)
def test_a_damaged_file_in_a_format_browsers_cannot_play_gets_a_message_not_a_player(in_tmp, head, name):
    (in_tmp / "v").write_bytes(head + bytes(2000))  # the right magic bytes, then nothing
    shown = preview("v")
    assert isinstance(shown, PreviewNote) and shown.level == "error"
    assert name in shown.text and "browsers cannot play" in shown.text and "no copy that plays" in shown.text
    assert "ffmpeg" not in shown.text  # vidnb makes the copy itself; there is no command to run
    assert "vidnb-note" in shown._repr_html_()
    assert not list(in_tmp.glob("*.playable.*")) and not list(in_tmp.glob("*.part"))


def test_not_a_video_and_missing_files(in_tmp):
    assert "not a video" in preview(b"<html>login</html>").text
    with pytest.raises(vidnb.DestinationError, match="does not exist"):
        preview("nope.mp4")


def test_large_bytes_are_refused_with_advice():
    shown = preview(SAMPLE, embed_max_bytes=1000)
    assert isinstance(shown, PreviewNote) and "Save them to a file" in shown.text


# --------------------------------------------------------------------------- playable copies


@pytest.mark.parametrize(
    "name, copy, fmt",
    [
        ("pattern.ts", "pattern.playable.mp4", "mp4"),  # H.264/AAC: streams copied
        ("life.mkv", "life.playable.mp4", "mp4"),
        ("mandelbrot.avi", "mandelbrot.playable.webm", "webm"),  # MPEG-4 Part 2 + MP3: re-encoded
        ("gradient.flv", "gradient.playable.webm", "webm"),
    ],
)
def test_preview_plays_a_copy_made_once_of_a_file_browsers_cannot_play(clips, in_tmp, name, copy, fmt):
    shutil.copy(clips[name], in_tmp / name)
    shown = preview(name, width=300)
    assert isinstance(shown, ipywidgets.Video), shown
    made = in_tmp / copy
    assert shown.format == fmt and shown.value == made.read_bytes() and shown.width == "300"
    assert sorted(p.name for p in in_tmp.iterdir()) == sorted([name, copy])  # no .part left
    assert vidnb.probe(made).playable and abs(vidnb.probe(made).duration - media_clips.SECONDS) < 0.1
    before = made.stat()

    again = preview(name)
    assert isinstance(again, ipywidgets.Video) and again.value == shown.value
    after = made.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # found, not made again


def test_a_large_file_plays_its_copy_by_reference(clips, in_tmp, monkeypatch):
    (in_tmp / "hls").mkdir()
    shutil.copy(clips["pattern.ts"], in_tmp / "hls" / "talk.ts")
    shown = preview("hls/talk.ts", embed_max_bytes=1000)
    assert isinstance(shown, ReferencePreview) and shown.src == "hls/talk.playable.mp4" and shown.mime == "video/mp4"
    assert "copy of talk.ts" in shown.note.text
    # Large and outside the notebook's folder: refused before any copy is made (it would be unreachable too).
    outside = in_tmp / "nb"
    outside.mkdir()
    monkeypatch.chdir(outside)
    far = preview(in_tmp / "hls" / "talk.ts", embed_max_bytes=1000)
    assert isinstance(far, PreviewNote) and "outside the notebook's folder" in far.text


def test_without_pyav_a_file_browsers_cannot_play_gets_one_line_saying_pip_install_av(clips, tmp_path):
    shutil.copy(clips["pattern.ts"], tmp_path / "talk.ts")
    shutil.copy(clips["bars.mp4"], tmp_path / "bars.mp4")
    code = (
        "import sys\n"
        "sys.modules['av'] = None  # as if PyAV were not installed: importing it raises ImportError\n"
        "import asyncio, vidnb\n"
        "note = vidnb.preview('talk.ts')\n"
        "print(type(note).__name__, note.level, repr(note.text))\n"
        "print(type(vidnb.preview('bars.mp4')).__name__)\n"
        "async def main():\n"
        "    g = await vidnb.gallery('.').wait()\n"
        "    print([t.state for t in g.tiles], g.missing_av, 'pip install av' in g.header.value)\n"
        "asyncio.run(main())\n"
    )
    out = run_python(code, cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    note, video, tiles = out.stdout.splitlines()
    assert note.startswith("PreviewNote error ") and note.endswith("pip install av'") and "\\n" not in note
    assert "TS video" in note and "ffmpeg" not in note
    assert video == "Video"  # a file browsers play needs no PyAV
    assert tiles == "['failed', 'failed'] True True"
    assert not list(tmp_path.glob("*.playable.*"))


# --------------------------------------------------------------------------- the panel


def test_panel_is_a_widget_tree_with_stable_classes_and_a_cheap_repr(tmp_path):
    panel = DownloadPanel(tmp_path / "d", connections=2, overwrite=True)
    assert isinstance(panel.widget, ipywidgets.VBox)
    assert "vidnb-panel" in panel.widget._dom_classes
    assert "vidnb-message" in panel.message._dom_classes and "vidnb-preview" in panel.preview_area._dom_classes
    assert (panel.connections.value, panel.overwrite.value) == (2, True)
    bundle = panel._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == panel.widget.model_id
    assert repr(panel) == f"<DownloadPanel {str(tmp_path / 'd')!r}: no downloads>" == bundle["text/plain"]
    with pytest.raises(TypeError, match="progress"):
        DownloadPanel(progress=False)
    with pytest.raises(TypeError, match="every URL"):
        DownloadPanel(sha256="0" * 64)  # one hash for every URL pasted would fail all but one


async def test_panel_downloads_each_url_and_previews_the_result(srv, in_tmp):
    panel = DownloadPanel("downloads", sha256=None)
    panel.urls.value = f"{srv.url('/sample.mp4')}\n\n{srv.url('/sample.webm')}\n"
    panel.download_button.click()
    assert [r.url for r in panel.rows] == [srv.url("/sample.mp4"), srv.url("/sample.webm")]
    assert all("vidnb-row" in r.box._dom_classes for r in panel.rows)
    results = await panel.wait()
    assert [r.path.name for r in results] == ["sample.mp4", "sample.webm"]
    assert hashlib.sha256((in_tmp / "downloads" / "sample.mp4").read_bytes()).hexdigest() == SAMPLE_SHA
    for row in panel.rows:
        assert row.state == "done" and row.state_label.value == "done"
        assert row.bar.bar_style == "success" and row.bar.value == row.bar.max == row.result.size
        assert row.preview_button.layout.visibility == "visible" and row.cancel_button.disabled
    assert "2 done" in panel.message.value and panel.cancel_all_button.disabled
    assert repr(panel).endswith(": 2 done>")

    panel.rows[1].preview_button.click()
    (shown,) = panel.preview_area.outputs
    model_id = shown["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
    video = panel.shown
    assert isinstance(video, ipywidgets.Video) and video.model_id == model_id and video.format == "webm"
    assert video.value == demo.sample_path("sample.webm").read_bytes()


async def test_a_finished_row_gets_a_poster_frame_and_previews_a_ts_through_its_copy(clips, serve, in_tmp):
    url, _ = serve(clips["pattern.ts"].read_bytes(), name="talk.ts", content_type="video/mp2t")
    panel = DownloadPanel("d")
    panel.urls.value = url
    panel.download_button.click()
    (row,) = panel.rows
    assert row.poster.layout.visibility == "hidden"  # keeps its column while there is nothing to show
    (result,) = await panel.wait()
    assert result is not None and result.path.name == "talk.ts"
    await until(lambda: row.poster.layout.visibility == "visible", timeout=30, what="the row's poster frame")
    assert row.poster.value[:2] == b"\xff\xd8" and "vidnb-poster-ready" in row.poster._dom_classes

    row.preview_button.click()
    assert panel.player.bar is not None  # the copy is being made in the background; the bar shows meanwhile
    await until(lambda: isinstance(panel.shown, ipywidgets.Video), timeout=60, what="the copy to play")
    assert panel.shown.format == "mp4" and panel.shown.value == (in_tmp / "d" / "talk.playable.mp4").read_bytes()
    (shown,) = panel.preview_area.outputs
    assert shown["data"]["application/vnd.jupyter.widget-view+json"]["model_id"] == panel.shown.model_id


@pytest.mark.parametrize(
    "urls, folder, expected",
    [
        ("", "ok", "Paste one or more video URLs"),
        ("http://127.0.0.1:1/a.mp4\nftp://example.com/b.mp4", "ok", "Line 2:"),
        ("http://127.0.0.1:1/a.mp4\nnot a url", "ok", "Line 2:"),
        ("http://127.0.0.1:1/a.mp4", "afile/sub", "Cannot save into 'afile/sub'"),
        ("http://127.0.0.1:1/a.mp4", "  ", "Cannot save into"),
    ],
)
async def test_invalid_input_shows_a_message_and_starts_nothing(in_tmp, urls, folder, expected):
    (in_tmp / "afile").write_text("a file, not a folder")
    panel = DownloadPanel(folder)
    panel.urls.value = urls
    panel.download_button.click()  # must not raise
    assert expected in panel.message.value and "vidnb-error" in panel.message._dom_classes
    assert panel.rows == [] and panel.rows_box.children == () and vidnb.running_tasks() == []


async def test_a_failed_download_shows_its_error_in_its_row(srv, in_tmp):
    panel = DownloadPanel("d", retries=0)
    panel.urls.value = srv.url("/status/404") + "\n" + srv.url("/page.html") + "\n" + srv.url("/sample.mp4")
    panel.download_button.click()
    await panel.wait()
    missing, page, good = panel.rows
    assert missing.state == "failed" and "404" in missing.info.value and missing.bar.bar_style == "danger"
    assert page.state == "failed" and "not a video" in page.error.lower()
    assert good.state == "done"
    assert "1 done, 2 failed" in panel.message.value


async def test_cancel_keeps_the_part_and_downloading_again_resumes(srv, in_tmp):
    panel = DownloadPanel("d")
    url = srv.url("/slow/sample.mp4?rate=60000")
    panel.urls.value = url
    panel.download_button.click()
    (row,) = panel.rows
    await until(lambda: row.task.progress is not None and row.task.progress.done > 10_000, what="bytes")
    row.cancel_button.click()
    await row.wait()
    assert row.state == "cancelled" and row.bar.bar_style == "warning" and row.result is None
    part = _files.part_path(in_tmp / "d" / "sample.mp4")
    assert part.stat().st_size > 10_000 and not (in_tmp / "d" / "sample.mp4").exists()

    panel.download_button.click()
    again = panel.rows[1]
    result = await again.wait()
    assert result is not None and result.resumed and result.path.read_bytes() == SAMPLE


async def test_cancel_all_stops_every_running_row(srv, in_tmp):
    panel = DownloadPanel("d")
    panel.urls.value = srv.url("/slow/sample.mp4?rate=30000") + "\n" + srv.url("/slow/sample.webm?rate=30000")
    panel.download_button.click()
    await until(lambda: all(r.state == "downloading" for r in panel.rows), what="both rows downloading")
    panel.cancel_all_button.click()
    await panel.wait()
    assert [r.state for r in panel.rows] == ["cancelled", "cancelled"]
    assert "2 cancelled" in panel.message.value


async def test_row_updates_are_throttled(srv, in_tmp):
    panel = DownloadPanel("d")
    panel.urls.value = srv.url("/slow/sample.mp4?rate=70000")  # about 1.5 s
    changes: list[float] = []
    panel.download_button.click()
    (row,) = panel.rows
    row.info.observe(lambda change: changes.append(time.monotonic()), "value")
    t0 = time.monotonic()
    await row.wait()
    seconds = time.monotonic() - t0
    assert seconds > 1.0
    # Enough updates to look live, but never more than about 10 a second.
    assert 5 <= len(changes) <= 10 * seconds + 4


async def test_a_click_from_another_thread_runs_the_download_on_the_loop(srv, in_tmp):
    """ipykernel 7.0-7.3 deliver clicks on a subshell thread: the panel must hop to its loop."""
    loop = asyncio.get_running_loop()
    panel = DownloadPanel("d")
    assert panel.loop is loop
    panel.urls.value = srv.url("/slow/sample.mp4?rate=400000")
    clicked_in: list[int] = []

    def click() -> None:
        clicked_in.append(threading.get_ident())
        panel.download_button.click()

    await asyncio.to_thread(click)
    assert clicked_in[0] != threading.get_ident()
    await until(lambda: panel.rows and panel.rows[0].task is not None, what="the row's task")
    (row,) = panel.rows
    seen_threads: set[int] = set()
    row.info.observe(lambda change: seen_threads.add(threading.get_ident()), "value")
    assert row.task.loop is loop
    result = await row.wait()
    assert result is not None and result.path.read_bytes() == SAMPLE
    assert seen_threads == {threading.get_ident()}  # every row update ran on the loop's thread

    # Cancel from another thread too.
    panel.urls.value = srv.url("/slow/sample.webm?rate=20000")
    panel.download_button.click()
    slow = panel.rows[1]
    await until(lambda: slow.state == "downloading", what="downloading")
    await asyncio.to_thread(slow.cancel_button.click)
    await slow.wait()
    assert slow.state == "cancelled"


def test_panel_made_outside_a_loop_still_downloads(srv, in_tmp):
    """In a plain script there is no loop: downloads go to vidnb's private loop thread."""
    panel = DownloadPanel("d")
    assert panel.loop is None
    panel.urls.value = srv.url("/sample.mp4")
    panel.download_button.click()
    (row,) = panel.rows
    result = row.task._future.result(timeout=30)
    assert result.path.read_bytes() == SAMPLE
    wait_until(lambda: row.state == "done", timeout=10, interval=0.01, what="the row to be painted")
    assert row.state == "done"


# --------------------------------------------------------------------------- the pool


async def test_more_urls_than_the_pool_runs_queue_and_share_one_session(serve, in_tmp):
    datas = videos(5, size=80_000)
    at_once = Concurrency()
    # Every body stops after 20 kB until released: the first two are caught mid-download.
    urls, routes = serve_many(serve, datas, pause_after=20_000, concurrency=at_once)
    panel = DownloadPanel("d", concurrency=2)
    panel.urls.value = "\n".join(urls)
    panel.download_button.click()
    await until(lambda: at_once.now == 2 and [r.state for r in panel.rows[:2]] == ["downloading"] * 2,
                what="the first two downloading")
    assert [r.state for r in panel.rows[2:]] == ["queued"] * 3
    assert all("vidnb-queued" in r.box._dom_classes for r in panel.rows[2:])
    assert [len(r.requests) for r in routes] == [1, 1, 0, 0, 0]
    session = panel.session
    assert isinstance(session, aiohttp.ClientSession) and not session.closed
    for route in routes:
        route.pause_after = None
    results = await panel.wait()
    assert [(r.state, r.error) for r in panel.rows] == [("done", None)] * 5
    assert [r.path.read_bytes() for r in results] == datas
    assert at_once.peak == 2  # never more than the pool at the server, and the pool was used
    # One session for all five: each download took over a connection the one before it left.
    assert len(at_once.ports) <= 2 and panel._pool.sessions_made == 1
    assert session.closed and panel.session is None  # closed once the pool drained
    assert "5 done" in panel.message.value


async def test_a_queued_row_cancelled_before_its_turn_is_never_requested(serve, in_tmp):
    datas = videos(3, size=60_000)
    urls, routes = serve_many(serve, datas, pause_after=20_000)
    panel = DownloadPanel("d", concurrency=1)
    panel.urls.value = "\n".join(urls)
    panel.download_button.click()
    first, second, third = panel.rows
    await until(lambda: first.state == "downloading" and routes[0].requests, what="the first downloading")
    assert second.state == third.state == "queued"
    second.cancel_button.click()
    await until(lambda: second.state == "cancelled", what="the queued row cancelled")
    assert second.info.value == "cancelled while queued" and second.cancel_button.disabled
    assert third.state == "queued"  # still waiting for the one slot
    for route in routes:
        route.pause_after = None
    results = await panel.wait()
    assert results[1] is None and [results[0].path.read_bytes(), results[2].path.read_bytes()] == [datas[0], datas[2]]
    assert [len(r.requests) for r in routes] == [1, 0, 1]
    assert leftovers(in_tmp / "d") == ["v0.mp4", "v2.mp4"]
    assert "Finished: 2 done, 1 cancelled." in panel.message.value


async def test_connections_auto_is_offered_and_taken(srv, in_tmp):
    panel = DownloadPanel("d", connections="auto")
    assert panel.connections.value == "auto" and panel.connections.label == "auto"
    assert panel.options.connections == "auto"
    panel.urls.value = srv.url("/sample.mp4")
    panel.download_button.click()
    (result,) = await panel.wait()
    assert result is not None and result.path.read_bytes() == SAMPLE
    panel.connections.value = 4  # the control offers every count the engine takes
    panel.overwrite.value = True
    panel.download_button.click()
    again = await panel.rows[1].wait()
    assert again is not None and not again.skipped and again.path.read_bytes() == SAMPLE


async def test_a_session_given_to_the_panel_is_shared_and_left_open(srv, in_tmp):
    async with aiohttp.ClientSession() as session:
        panel = DownloadPanel("d", session=session, concurrency=1)
        panel.urls.value = srv.url("/sample.mp4") + "\n" + srv.url("/sample.webm")
        panel.download_button.click()
        assert panel.session is session
        results = await panel.wait()
        assert [r.path.name for r in results] == ["sample.mp4", "sample.webm"]
        assert not session.closed and panel.session is session and panel._pool.sessions_made == 0


@pytest.mark.parametrize(
    "options, error, match",
    [
        ({"connections": 0}, ValueError, "connections"),
        ({"connections": "many"}, ValueError, "connections"),
        ({"retries": -1}, ValueError, "retries"),
        ({"retrys": 3}, TypeError, "retrys"),
        ({"dest": "x"}, TypeError, "dest"),
        ({"concurrency": 0}, ValueError, "concurrency"),
        ({"concurrency": True}, ValueError, "concurrency"),
    ],
)
def test_bad_options_are_refused_when_the_panel_is_made(options, error, match):
    with pytest.raises(error, match=match):
        DownloadPanel("d", **options)


# --------------------------------------------------------------------------- the gallery


def _folder_of_clips(clips: dict[str, Path], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, path in clips.items():
        shutil.copy(path, folder / name)
    return folder


async def test_gallery_of_a_folder_shows_its_videos_placeholders_first_then_posters(clips, in_tmp, cache_home):
    folder = _folder_of_clips(clips, in_tmp / "videos")
    shutil.copy(clips["bars.mp4"], folder / "no extension")  # a video by its bytes
    (folder / "notes.txt").write_text("not a video")
    (folder / "page.bin").write_bytes(b"<html>not a video</html>")
    (folder / "next.mp4.part").write_bytes(SAMPLE[:5000])  # a download under way
    (folder / ".hidden.mp4").write_bytes(SAMPLE)
    shutil.copy(clips["bars.mp4"], folder / "pattern.playable.mp4")  # a copy of pattern.ts: not shown twice

    g = vidnb.gallery("videos")
    names = ["bars.mp4", "cells.webm", "gradient.flv", "life.mkv", "mandelbrot.avi", "no extension", "pattern.ts"]
    assert [t.path.name for t in g.tiles] == names
    assert repr(g) == "<Gallery 7 videos in videos/>" == g._repr_mimebundle_()["text/plain"]
    assert "vidnb-gallery" in g.widget._dom_classes and g.grid.children == tuple(t.box for t in g.tiles)
    # The grid exists before any poster: placeholders, with what the folder listing tells.
    assert [t.state for t in g.tiles] == ["pending"] * 7 and g.ready == 0
    assert all("vidnb-tile-pending" in t.box._dom_classes and t.poster.format == "svg+xml" for t in g.tiles)
    bars = g.tiles[0]
    assert bars.figures.value.endswith(f">{human_bytes(clips['bars.mp4'].stat().st_size)}</div>")

    await asyncio.wait_for(g.wait(), timeout=60)
    assert [t.state for t in g.tiles] == ["ready"] * 7 and g.ready == 7
    for tile in g.tiles:
        assert tile.poster.format == "jpeg" and tile.poster.value[:2] == b"\xff\xd8", tile
        assert "vidnb-tile-ready" in tile.box._dom_classes and "vidnb-tile-pending" not in tile.box._dom_classes
        size = human_bytes(tile.path.stat().st_size)
        assert f">0:02 · 320×180 · {size}</div>" in tile.figures.value, tile.figures.value
        assert tile.info is not None and tile.info.width == 320 and not tile.cached
    # Cached: a picture and its figures per video, and a second gallery decodes nothing.
    cached = sorted(p.suffix for p in (cache_home / "vidnb" / "thumbnails").iterdir())
    assert cached == [".jpg"] * 7 + [".json"] * 7
    again = await asyncio.wait_for(vidnb.gallery(folder).wait(), timeout=30)
    assert all(t.cached and t.state == "ready" for t in again.tiles)
    assert [t.poster.value for t in again.tiles] == [t.poster.value for t in g.tiles]
    # A file that changes gets a new picture.
    os.utime(folder / "bars.mp4", ns=(time.time_ns(), time.time_ns()))
    changed = await asyncio.wait_for(vidnb.gallery(folder).wait(), timeout=30)
    assert [t.cached for t in changed.tiles] == [False] + [True] * 6


async def test_two_hundred_videos_show_their_grid_at_once_then_fill_in(in_tmp):
    folder = in_tmp / "many"
    folder.mkdir()
    for i in range(200):
        os.link(demo.sample_path("sample.mp4"), folder / f"clip{i}.mp4")
    t0 = time.perf_counter()
    g = vidnb.gallery(folder)
    made_in = time.perf_counter() - t0
    # Nothing was waited for: every tile is a placeholder, the pictures are still to come.
    placeholders = sum("vidnb-tile-pending" in t.box._dom_classes for t in g.tiles)
    assert len(g.grid.children) == 200 and placeholders == 200 and g.ready == 0
    assert made_in < 1.0, f"the grid of 200 took {made_in:.2f} s"
    assert [t.path.name for t in g.tiles[:3]] + [g.tiles[-1].path.name] == ["clip0.mp4", "clip1.mp4", "clip2.mp4",
                                                                             "clip199.mp4"]  # fmt: skip
    # They fill in top first while the loop runs.
    await until(lambda: all(t.state == "ready" for t in g.tiles[:10]), timeout=30, what="the first ten posters")
    assert 10 <= g.ready < 200 or g.ready == 200
    g.close()  # the rest are dropped
    assert g._posters.closed


async def test_clicking_a_tile_plays_it_in_the_gallery(clips, in_tmp, monkeypatch):
    folder = _folder_of_clips({k: clips[k] for k in ("bars.mp4", "mandelbrot.avi")}, in_tmp / "v")
    g = vidnb.gallery("v", width=320)
    bars, avi = g.tiles
    bars.button.click()
    caption, player = g.player.area.outputs
    assert "▶ bars.mp4" in caption["data"]["text/html"]
    video = g.shown
    assert isinstance(video, ipywidgets.Video) and video.format == "mp4" and video.width == "320"
    assert player["data"]["application/vnd.jupyter.widget-view+json"]["model_id"] == video.model_id
    assert video.value == (folder / "bars.mp4").read_bytes() and "vidnb-tile-playing" in bars.box._dom_classes

    # A click from another thread (ipykernel 7.0-7.3 deliver them so) plays on the gallery's loop;
    # the AVI first gets its playable copy, with a bar meanwhile.
    await asyncio.to_thread(avi.button.click)
    await until(lambda: g.playing is not None and g.tiles[1].path.name in str(g.player.area.outputs),
                what="the AVI chosen")  # fmt: skip
    shown = await asyncio.wait_for(asyncio.wrap_future(g.playing), timeout=60)
    assert isinstance(shown, ipywidgets.Video) and shown.format == "webm" and g.shown is shown
    assert shown.value == (folder / "mandelbrot.playable.webm").read_bytes()
    assert "vidnb-tile-playing" in avi.box._dom_classes and "vidnb-tile-playing" not in bars.box._dom_classes

    # Over the inline limit: played by reference, relative to the notebook's folder.
    monkeypatch.setattr(widgets, "EMBED_MAX_BYTES", 1000)
    by_ref = await asyncio.wrap_future(g.play("bars.mp4"))
    assert isinstance(by_ref, ReferencePreview) and by_ref.src == "v/bars.mp4"
    assert "text/html" in g.player.area.outputs[-1]["data"]


async def test_choosing_a_video_while_another_is_being_made_keeps_the_later_choice(clips, in_tmp):
    folder = _folder_of_clips({k: clips[k] for k in ("bars.mp4", "mandelbrot.avi")}, in_tmp / "v")
    g = vidnb.gallery(folder)
    slow = g.play("mandelbrot.avi")
    assert g.player.bar is not None and "Making a copy of mandelbrot.avi" in str(g.player.area.outputs)
    fast = g.play("bars.mp4")
    assert fast.done() and isinstance(g.shown, ipywidgets.Video) and g.shown.format == "mp4"
    await asyncio.wait_for(asyncio.wrap_future(slow), timeout=60)
    assert g.shown is fast.result()  # the copy was made, but the area still shows the later choice


async def test_gallery_of_results_and_paths(clips, in_tmp):
    path = shutil.copy(clips["bars.mp4"], in_tmp / "a.mp4")
    result = vidnb.DownloadResult(Path(path), "http://x/a.mp4", 1, "video/mp4", "mp4", 0.1)
    other = shutil.copy(clips["pattern.ts"], in_tmp / "b.ts")
    g = vidnb.gallery([result, None, other])  # None: a failed download of panel.wait()
    assert [t.path.name for t in g.tiles] == ["a.mp4", "b.ts"] and repr(g) == "<Gallery 2 videos>"
    assert repr(vidnb.gallery(result)) == "<Gallery 1 video>"
    with pytest.raises(vidnb.DestinationError, match="does not exist"):
        vidnb.gallery("nowhere/")
    (in_tmp / "empty").mkdir()
    nothing = vidnb.gallery("empty")
    assert len(nothing) == 0 and "No videos in empty/" in nothing.header.value
    await asyncio.wait_for(nothing.wait(), timeout=1)  # nothing to wait for


# --------------------------------------------------------------------------- the package's lazy names


def test_widgets_and_demo_are_attributes_of_a_bare_import(tmp_path):
    # A fresh interpreter: this one imported the widgets long ago.
    shutil.copy(demo.sample_path("sample.mp4"), tmp_path / "clip.mp4")
    code = (
        "import sys, vidnb\n"
        "print('ipywidgets' in sys.modules, 'IPython' in sys.modules)\n"
        "vidnb.widgets.EMBED_MAX_BYTES = 1000\n"
        "print(type(vidnb.preview('clip.mp4')).__name__,\n"
        "      type(vidnb.preview('clip.mp4', embed_max_bytes=10**6)).__name__)\n"
        "print(vidnb.demo.sample_path('sample.webm').name, vidnb.widgets is sys.modules['vidnb.widgets'])\n"
        "print(vidnb.gallery is vidnb.widgets.gallery, 'gallery' in dir(vidnb), 'av' in sys.modules)\n"
    )
    out = run_python(code, cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    # A playable file is shown without loading PyAV.
    assert out.stdout.splitlines() == ["False False", "ReferencePreview Video", "sample.webm True", "True True False"]


# --------------------------------------------------------------------------- the demo's server


async def test_the_sample_server_serves_byte_ranges_for_resuming(srv):
    async with aiohttp.ClientSession() as session:
        async with session.get(srv.url("/sample.mp4")) as whole:
            assert whole.status == 200 and await whole.read() == SAMPLE
            etag = whole.headers["ETag"]
            assert whole.headers["Accept-Ranges"] == "bytes" and whole.headers["Content-Type"] == "video/mp4"
        async with session.get(srv.url("/slow/sample.mp4?rate=10000000"), headers={"Range": "bytes=100-",
                                                                               "If-Range": etag}) as part:
            assert part.status == 206 and await part.read() == SAMPLE[100:]
            assert part.headers["Content-Range"] == f"bytes 100-{len(SAMPLE) - 1}/{len(SAMPLE)}"
        async with session.get(srv.url("/sample.mp4"), headers={"Range": "bytes=10-19"}) as some:
            assert some.status == 206 and await some.read() == SAMPLE[10:20]
        async with session.get(srv.url("/sample.mp4"), headers={"Range": "bytes=5-", "If-Range": '"other"'}) as changed:
            assert changed.status == 200 and await changed.read() == SAMPLE  # another version: all of it
        async with session.get(srv.url("/sample.mp4"), headers={"Range": f"bytes={len(SAMPLE)}-"}) as past:
            assert past.status == 416 and past.headers["Content-Range"] == f"bytes */{len(SAMPLE)}"
        async with session.head(srv.url("/sample.webm")) as head:
            assert head.status == 200
            assert int(head.headers["Content-Length"]) == demo.sample_path("sample.webm").stat().st_size
