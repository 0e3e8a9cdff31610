"""The DownloadPanel, the previews and the gallery, used for real: JupyterLab in headless Chromium.

One Lab serves a temp folder holding a copy of ``notebooks/panel.ipynb``; one browser page
opens it, runs it, and then every test types URLs into the panel, clicks its buttons or
adds cells, the way a user does. The videos come from a :class:`helpers.LocalSampleServer`
running in this process (the kernel fetches them over loopback), so tests can throttle
routes and read the requests the server received; files browsers cannot play as they are
(an HLS ``.ts``, AVI, MKV, FLV) are real ones made by ffmpeg. Files land under the Lab's
root, which the tests inspect directly. A screenshot of the panel is saved to
``artifacts/browser/`` after each test; ``docs/panel.png`` is the one after the
cancel-and-resume test and ``docs/gallery.png`` is ``artifacts/browser/gallery.png``, copied
from such a run. The last test runs the panel, a preview and a gallery in Jupyter Notebook 7.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import hls_streams as hs
import media_clips
import nbformat
import pytest
from browser_lab import (
    CHROMIUM,
    CHROMIUM_ARGS,
    Lab,
    missing_notebook7,
    missing_requirements,
    open_notebook,
    run_cell_code,
)
from helpers import LocalSampleServer, Route, resume_from
from helpers import file_sha as sha
from nb_kernel import REPO

from vidnb import demo, widgets

_missing = missing_requirements()
if _missing:
    pytest.skip(_missing, allow_module_level=True)

from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright  # noqa: E402
from playwright.sync_api import Error as PlaywrightError  # noqa: E402

pytestmark = pytest.mark.browser

ARTIFACTS = REPO / "artifacts" / "browser"
DURATION = demo.SAMPLE_DURATION
# Assertions poll the DOM; this bounds each wait (a download of the sample takes < 1 s unthrottled).
WAIT_MS = 20_000


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def server() -> Iterator[LocalSampleServer]:
    srv = LocalSampleServer().start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("lab-root")
    shutil.copy(REPO / "notebooks" / "panel.ipynb", root / "panel.ipynb")
    lab = Lab(root, tmp_path_factory.mktemp("lab-home"), env=_kernel_env(tmp_path_factory)).start()
    try:
        yield lab
    finally:
        try:
            lab.shutdown_kernels()  # kernels run in their own sessions: stopping Lab's group may miss them
        finally:
            lab.stop()


def _kernel_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    # The kernel imports this checkout, whatever is installed, and caches poster frames in a temp folder.
    pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {"PYTHONPATH": pythonpath, "XDG_CACHE_HOME": str(tmp_path_factory.mktemp("kernel-cache"))}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A short real video per container (MP4, WebM, AVI, MPEG-TS, MKV, FLV), each with its own picture."""
    if not media_clips.have_ffmpeg():
        pytest.skip(media_clips.NO_FFMPEG)
    return media_clips.make_clips(tmp_path_factory.mktemp("clips"))


@pytest.fixture(scope="module")
def hls_url(tmp_path_factory: pytest.TempPathFactory, server: LocalSampleServer) -> str:
    """The bundled sample as a served HLS stream of MPEG-TS segments: the playlist's URL."""
    if not hs.have_ffmpeg():
        pytest.skip(hs.NO_FFMPEG)
    root = tmp_path_factory.mktemp("hls")
    # One stream is all these tests need (build() makes a dozen): the sample's own keyframes
    # every 2 s cut it into segments of 2 s and 1 s.
    hs._hls(demo.sample_path("sample.mp4"), root / "ts")
    prefix, _ = hs.serve_tree(server, root)
    return prefix + "ts/index.m3u8"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def page(browser: Browser, lab: Lab) -> Iterator[Page]:
    """panel.ipynb, opened and run once; the tests share its panel (and its kernel)."""
    pg = browser.new_page(viewport={"width": 1600, "height": 1000})
    open_notebook(pg, lab, "panel.ipynb")
    expect(pg.locator(".vidnb-panel")).to_have_count(1, timeout=WAIT_MS)
    # The notebook downloads two samples itself: wait for them, so each test starts from a quiet panel.
    expect(pg.locator(".vidnb-row.vidnb-done")).to_have_count(2, timeout=WAIT_MS)
    yield pg
    pg.close()


@pytest.fixture(autouse=True)
def _screenshot(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test of the Lab page (passed or not), save what the panel looks like."""
    yield
    if "page" not in request.fixturenames:
        return
    page: Page = request.getfixturevalue("page")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^\w.-]+", "_", request.node.name)
    page.locator(".vidnb-panel").screenshot(path=ARTIFACTS / f"{name}.png", timeout=WAIT_MS)


# --------------------------------------------------------------------------- helpers


def submit(page: Page, urls: str, folder: str) -> Locator:
    """Type URLs and a folder into the panel, click Download; the first new row."""
    before = page.locator(".vidnb-row").count()
    page.locator(".vidnb-urls textarea").fill(urls)
    page.locator(".vidnb-dest input").fill(folder)
    page.locator(".vidnb-download").click()
    page.wait_for_function("n => document.querySelectorAll('.vidnb-row').length > n", arg=before, timeout=WAIT_MS)
    return page.locator(".vidnb-row").nth(before)


def bar_width(bar: Locator) -> float:
    """The ipywidgets progress bar's fill, in percent."""
    return float(bar.evaluate("e => parseFloat(e.style.width || '0')"))


def expect_state(row: Locator, state: str, timeout: float = WAIT_MS) -> None:
    expect(row).to_have_class(re.compile(rf"\bvidnb-{state}\b"), timeout=timeout)
    expect(row.locator(".vidnb-row-state")).to_have_text(state)


VIDEO_STATE = """v => ({
    readyState: v.readyState, duration: v.duration, currentTime: v.currentTime,
    videoWidth: v.videoWidth, error: v.error && {code: v.error.code, message: v.error.message},
    frames: v.getVideoPlaybackQuality().totalVideoFrames, src: v.currentSrc,
    canPlayH264: v.canPlayType('video/mp4; codecs="avc1.4D401E"'),
    canPlayVP9: v.canPlayType('video/webm; codecs="vp9"'),
})"""


def expect_decoded(video: Locator, duration: float = DURATION) -> dict[str, Any]:
    """Wait until Chromium has the video's metadata (``duration`` seconds long), then play it
    muted until frames were decoded (``videoWidth > 0``, ``currentTime`` past 0.2 s).

    On failure the message carries the element's state (``error`` names a decode failure).
    """
    handle = video.element_handle(timeout=WAIT_MS)
    try:
        video.page.wait_for_function(
            "([v, d]) => v.readyState >= 1 && Math.abs(v.duration - d) < 0.3", arg=[handle, duration], timeout=WAIT_MS
        )
        handle.evaluate("v => { v.muted = true; return v.play(); }")
        video.page.wait_for_function(
            "v => v.currentTime > 0.2 && v.getVideoPlaybackQuality().totalVideoFrames > 0", arg=handle, timeout=WAIT_MS
        )
        handle.evaluate("v => { v.pause(); v.currentTime = 1.0; }")  # a mid-clip frame for the screenshot
    except PlaywrightError:  # a timeout, or play() rejected by a decoder that gave up
        raise AssertionError(f"Chromium did not decode the video: {handle.evaluate(VIDEO_STATE)}") from None
    state = handle.evaluate(VIDEO_STATE)
    assert state["error"] is None and state["videoWidth"] > 0, state
    return state


def kernel_rchar(pid: int) -> int:
    """Bytes the kernel process has read (files, pipes and sockets alike), from /proc."""
    text = Path(f"/proc/{pid}/io").read_text()
    return int(re.search(r"^rchar: (\d+)$", text, re.M).group(1))  # type: ignore[union-attr]


def cell(page: Page, marker: str) -> Locator:
    """The code cell whose source contains ``marker``."""
    return page.locator(".jp-CodeCell").filter(has_text=marker)


# --------------------------------------------------------------------------- tests


def test_download_typed_url_reaches_done_and_matches_the_sample(page: Page, lab: Lab, server: LocalSampleServer):
    route = server.routes["/sample.mp4"]
    requests = len(route.requests)
    row = submit(page, server.url("/sample.mp4"), "t1")
    expect_state(row, "done")
    expect(row.locator(".progress-bar")).to_have_attribute("style", re.compile(r"width: 100%"))
    expect(row.locator(".vidnb-row-preview")).to_be_visible()
    assert sha(lab.root / "t1" / "sample.mp4") == demo.sample_sha256("sample.mp4")
    assert sorted(os.listdir(lab.root / "t1")) == ["sample.mp4"]  # no .part or sidecar left behind
    assert len(route.requests) > requests  # the kernel fetched it from this test's server


@pytest.mark.parametrize("name", ["sample.mp4", "sample.webm"])
def test_preview_button_shows_a_video_chromium_decodes(page: Page, server: LocalSampleServer, name: str):
    row = submit(page, server.url("/" + name), "t2-" + name.split(".")[1])
    expect_state(row, "done")
    old_src = page.evaluate("() => (document.querySelector('.vidnb-preview video') || {}).src || null")
    row.locator(".vidnb-row-preview").click()
    # A new Video widget view replaces the old one; its bytes arrive as a blob URL.
    page.wait_for_function(
        """old => { const v = document.querySelector('.vidnb-preview video');
                    return v && v.src.startsWith('blob:') && v.src !== old; }""",
        arg=old_src,
        timeout=WAIT_MS,
    )
    state = expect_decoded(page.locator(".vidnb-preview video"))
    assert abs(state["duration"] - DURATION) < 0.3 and state["frames"] > 0


def test_cancel_keeps_the_part_and_download_again_resumes(page: Page, lab: Lab, server: LocalSampleServer):
    data = server.samples["sample.mp4"]
    route = Route(data, rate=20_000)  # about 5 s: Cancel lands mid-way
    url = server.add("/t3/sample.mp4", route)
    row = submit(page, url, "t3")
    bar = row.locator(".progress-bar")
    page.wait_for_function(
        "b => { const w = parseFloat(b.style.width); return w > 0 && w < 100; }",
        arg=bar.element_handle(),
        timeout=WAIT_MS,
    )
    row.locator(".vidnb-row-cancel").click()
    expect_state(row, "cancelled")
    expect(row.locator(".vidnb-row-info")).to_contain_text(".part kept")
    assert 0 < bar_width(bar) < 100
    folder = lab.root / "t3"
    assert not (folder / "sample.mp4").exists()
    part = folder / "sample.mp4.part"
    kept = part.stat().st_size
    assert 0 < kept < len(data)

    route.rate = 100_000  # same URL, faster: the rest takes about a second
    again = submit(page, url, "t3")
    expect_state(again, "done")
    assert sha(folder / "sample.mp4") == demo.sample_sha256("sample.mp4")
    assert not part.exists()
    # Into a folder, the engine first asks without Range to learn the file's name, sees the .part
    # and asks again for the missing bytes only: the last request must continue from the .part.
    last = route.requests[-1]
    assert last.get("Range") == resume_from(kept), f"the second download did not resume from byte {kept}: {last}"
    assert last.get("If-Range") == route.etag
    assert sum("Range" in h for h in route.requests) == 1


def test_errors_show_in_the_row_or_panel_and_write_nothing(page: Page, lab: Lab, server: LocalSampleServer):
    row = submit(page, server.url("/status/404"), "t4")
    expect_state(row, "failed")
    expect(row.locator(".vidnb-row-info")).to_contain_text("HTTP 404")
    expect(page.locator(".vidnb-message")).to_contain_text("1 failed")
    assert os.listdir(lab.root / "t4") == []

    rows = page.locator(".vidnb-row").count()
    # What users paste most often instead of a URL: an address without its scheme.
    page.locator(".vidnb-urls textarea").fill("www.example.com/clip.mp4")
    page.locator(".vidnb-dest input").fill("t4-invalid")
    page.locator(".vidnb-download").click()
    message = page.locator(".vidnb-message")
    expect(message).to_contain_text("Nothing was started", timeout=WAIT_MS)
    expect(message).to_contain_text("Line 1: URL has no scheme")
    expect(message).to_contain_text("'www.example.com/clip.mp4'")
    expect(message).to_have_class(re.compile(r"\bvidnb-error\b"))
    assert page.locator(".vidnb-row").count() == rows
    assert not (lab.root / "t4-invalid").exists()


def test_background_download_keeps_going_while_the_next_cell_runs(page: Page, lab: Lab, server: LocalSampleServer):
    url = server.url("/slow/sample.mp4?rate=25000")  # about 4 s
    run_cell_code(page, f"task = vidnb.start({url!r}, 'bg/')  # bg-start")
    bar = cell(page, "# bg-start").locator(".widget-hprogress .progress-bar")
    expect(bar).to_have_count(1, timeout=WAIT_MS)
    run_cell_code(page, "print('second cell done')  # bg-next")
    expect(cell(page, "# bg-next").locator(".jp-OutputArea-output")).to_have_text("second cell done\n")
    # The next cell ran to completion while the first cell's download was still under way.
    during = bar_width(bar)
    assert during < 100, "the background download had already finished: nothing was shown to overlap"
    expect(bar).to_have_attribute("style", re.compile(r"width: 100%"), timeout=WAIT_MS)
    assert sha(lab.root / "bg" / "sample.mp4") == demo.sample_sha256("sample.mp4")
    cell(page, "# bg-start").screenshot(path=_artifact("background_cell.png"))


def test_large_file_preview_plays_by_reference_without_the_kernel_reading_it(page: Page, lab: Lab):
    # The real sample followed by a sparse MP4 'free' box: a valid, playable file above the inline limit.
    data = demo.sample_path("sample.mp4").read_bytes()
    size = widgets.EMBED_MAX_BYTES + 2**20
    big = lab.root / "big" / "clip.mp4"
    big.parent.mkdir()
    with open(big, "wb") as f:
        f.write(data + struct.pack(">I4s", size - len(data), b"free"))
        f.truncate(size)

    run_cell_code(page, "import os; print('kernel pid', os.getpid())  # pid")
    pid = int(re.search(r"kernel pid (\d+)", cell(page, "# pid").inner_text()).group(1))  # type: ignore[union-attr]
    fetched: list[dict[str, str]] = []

    def on_request(request: Any) -> None:
        if "/files/big/clip.mp4" in request.url:
            fetched.append(request.all_headers())

    page.on("request", on_request)

    before = kernel_rchar(pid)
    t0 = time.monotonic()
    run_cell_code(page, "vidnb.preview('big/clip.mp4')  # by-ref")
    elapsed = time.monotonic() - t0
    read = kernel_rchar(pid) - before
    assert read < 2**20 < size, f"the kernel read {read} bytes while previewing a {size}-byte file"

    out = cell(page, "# by-ref")
    video = out.locator("video.vidnb-video")
    expect(video).to_have_count(1, timeout=WAIT_MS)
    src = video.locator("source").get_attribute("src") or ""
    # Lab rewrote the notebook-relative path into its own files URL (which serves byte ranges).
    assert urlsplit(src).path == "/files/big/clip.mp4" and urlsplit(src).netloc in ("", urlsplit(lab.base).netloc), src
    expect(out).to_contain_text("Shown by reference")
    try:
        state = expect_decoded(video)
    finally:
        page.remove_listener("request", on_request)
    assert state["src"].startswith(f"{lab.base}/files/big/clip.mp4"), state
    assert fetched and any("range" in h for h in fetched), "Chromium did not fetch the file by range"
    assert elapsed < 10, elapsed
    out.screenshot(path=_artifact("by_reference_cell.png"))


def _artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


# --------------------------------------------------------------------------- playable copies, the gallery


def _new_blob_video(page: Page, selector: str, old_src: str | None) -> Locator:
    """Wait until ``selector`` holds a Video widget's player other than ``old_src``; the element."""
    page.wait_for_function(
        """([sel, old]) => { const v = document.querySelector(sel);
                             return v && v.src.startsWith('blob:') && v.src !== old; }""",
        arg=[selector, old_src],
        timeout=WAIT_MS,
    )
    return page.locator(selector)


def _video_src(page: Page, selector: str) -> str | None:
    return page.evaluate("sel => (document.querySelector(sel) || {}).src || null", selector)


def test_hls_download_previews_and_plays_in_chromium(page: Page, lab: Lab, hls_url: str):
    row = submit(page, hls_url, "hls")
    expect_state(row, "done")
    # The finished row shows the stream's poster frame, made in the background.
    poster = row.locator("img.vidnb-row-poster")
    expect(poster).to_have_class(re.compile(r"\bvidnb-poster-ready\b"), timeout=WAIT_MS)
    assert poster.evaluate("i => i.complete && i.naturalWidth") > 0
    old = _video_src(page, ".vidnb-preview video")
    row.locator(".vidnb-row-preview").click()
    state = expect_decoded(_new_blob_video(page, ".vidnb-preview video", old))
    assert state["frames"] > 0
    saved = sorted(os.listdir(lab.root / "hls"))
    # One file that plays: the engine's MP4, or its .ts and the copy the preview made of it.
    assert saved in (["index.mp4"], ["index.playable.mp4", "index.ts"]), saved

    # The stream's bytes as served (remux=False keeps the .ts): preview() in a cell makes the
    # playable copy once, with a bar, and plays it.
    run_cell_code(page, f"r = await vidnb.download({hls_url!r}, 'hls-ts/', remux=False)\nvidnb.preview(r)  # hls-ts")
    out = cell(page, "# hls-ts")
    video = out.locator("video")
    expect(video).to_have_count(1, timeout=WAIT_MS)
    expect(out.locator(".widget-hprogress")).to_have_count(2)  # the download's bar and the copy's
    expect(out).to_contain_text("index.playable.mp4")
    expect_decoded(video)
    assert sorted(os.listdir(lab.root / "hls-ts")) == ["index.playable.mp4", "index.ts"]
    out.screenshot(path=_artifact("hls_ts_cell.png"))


def test_gallery_shows_posters_and_plays_a_clicked_video(page: Page, lab: Lab, clips: dict[str, Path]):
    folder = lab.root / "gallery"
    folder.mkdir()
    for name, path in clips.items():
        shutil.copy(path, folder / name)
    run_cell_code(page, "g = vidnb.gallery('gallery', width=480)\ng  # gallery")
    out = cell(page, "# gallery")
    expect(out.locator(".vidnb-tile")).to_have_count(len(clips), timeout=WAIT_MS)
    expect(out.locator(".vidnb-tile.vidnb-tile-ready")).to_have_count(len(clips), timeout=WAIT_MS)
    # Every poster is a JPEG Chromium decoded, under it the name and the figures.
    page.wait_for_function(
        """() => { const imgs = [...document.querySelectorAll('.vidnb-gallery img.vidnb-poster')];
                   return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth === 320); }""",
        timeout=WAIT_MS,
    )
    first = out.locator(".vidnb-tile").first
    expect(first.locator(".vidnb-tile-play")).to_have_text("bars.mp4")
    expect(first.locator(".vidnb-figures")).to_contain_text("0:02 · 320×180 · ")

    # An AVI: its copy is made in the background (a bar meanwhile), then it plays in the gallery.
    out.locator(".vidnb-tile-play", has_text="mandelbrot.avi").click()
    video = out.locator(".vidnb-gallery-player video")
    expect(video).to_have_count(1, timeout=WAIT_MS)
    expect(out.locator(".vidnb-caption")).to_have_text("▶ mandelbrot.avi")
    state = expect_decoded(video, duration=media_clips.SECONDS)
    assert state["src"].startswith("blob:") and (folder / "mandelbrot.playable.webm").exists()
    out.locator(".vidnb-gallery").screenshot(path=_artifact("gallery.png"))

    # Over the inline limit, the player in the gallery's output area plays the file by reference.
    run_cell_code(page, "vidnb.widgets.EMBED_MAX_BYTES = 1000  # tiny")
    try:
        out.locator(".vidnb-tile-play", has_text="pattern.ts").click()
        source = out.locator(".vidnb-gallery-player video.vidnb-video source")
        expect(source).to_have_count(1, timeout=WAIT_MS)
        assert urlsplit(source.get_attribute("src") or "").path == "/files/gallery/pattern.playable.mp4"
        state = expect_decoded(out.locator(".vidnb-gallery-player video"), duration=media_clips.SECONDS)
        assert state["src"].startswith(f"{lab.base}/files/gallery/pattern.playable.mp4"), state
    finally:
        run_cell_code(page, f"vidnb.widgets.EMBED_MAX_BYTES = {widgets.EMBED_MAX_BYTES}  # default")


# --------------------------------------------------------------------------- Jupyter Notebook 7


@pytest.fixture(scope="module")
def notebook7(
    tmp_path_factory: pytest.TempPathFactory, server: LocalSampleServer, clips: dict[str, Path]
) -> Iterator[Lab]:
    """``jupyter notebook`` (7) serving a notebook that uses the panel, a preview and a gallery."""
    reason = missing_notebook7()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("nb7-root")
    (root / "clips").mkdir()
    for name in ("bars.mp4", "pattern.ts", "mandelbrot.avi"):
        shutil.copy(clips[name], root / "clips" / name)
    cells = [
        "import vidnb\npanel = vidnb.DownloadPanel('downloads')\npanel",
        f"panel.urls.value = {server.url('/sample.webm')!r}\npanel.download_button.click()\n"
        "results = await panel.wait()\npanel.rows[0].preview_button.click()",
        "vidnb.preview('clips/pattern.ts')  # preview-ts",
        "g = vidnb.gallery('clips')\ng  # gallery",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "nb7.ipynb")
    app = Lab(root, tmp_path_factory.mktemp("nb7-home"), env=_kernel_env(tmp_path_factory), app="notebook").start()
    try:
        yield app
    finally:
        try:
            app.shutdown_kernels()
        finally:
            app.stop()


def test_panel_preview_and_gallery_work_in_notebook_7(browser: Browser, notebook7: Lab):
    pg = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        open_notebook(pg, notebook7, "nb7.ipynb")
        assert "/notebooks/nb7.ipynb" in pg.url and pg.locator("#jp-NotebookPanel, .jp-NotebookPanel").count()
        row = pg.locator(".vidnb-row")
        expect_state(row, "done")
        expect(row.locator("img.vidnb-row-poster")).to_have_class(re.compile(r"\bvidnb-poster-ready\b"),
                                                                  timeout=WAIT_MS)  # fmt: skip
        state = expect_decoded(_new_blob_video(pg, ".vidnb-preview video", None))
        assert state["frames"] > 0
        expect_decoded(cell(pg, "# preview-ts").locator("video"), duration=media_clips.SECONDS)

        gallery = cell(pg, "# gallery")
        expect(gallery.locator(".vidnb-tile.vidnb-tile-ready")).to_have_count(3, timeout=WAIT_MS)
        gallery.locator(".vidnb-tile-play", has_text="pattern.ts").click()
        expect_decoded(gallery.locator(".vidnb-gallery-player video"), duration=media_clips.SECONDS)
        pg.screenshot(path=_artifact("notebook7.png"), full_page=True)
    finally:
        pg.close()
