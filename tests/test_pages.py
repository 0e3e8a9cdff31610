"""Web pages: yt-dlp's extractors find the media a page shows, vidnb's own engine fetches it.

Every page of the loopback site (``pages_site``: ``<video src>``, ``<source>`` of two types,
``og:video``, JSON-LD, an HLS master, a DASH manifest with separate video and audio, two
videos, none, media at ``file:``/``ftp:`` URLs) is downloaded the way a user would, and the
file is checked by ffprobe/ffmpeg: the streams expected, the duration, every frame decodes.
What reached the server is read from its routes: which files were asked for, how often,
with which headers, how many bytes were sent (to show that a resume fetches only what is
missing). No request leaves 127.0.0.1; yt-dlp and vidnb are the real ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import importlib.util
import json
import logging
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pages_site as ps
import pytest
from helpers import Concurrency, LocalServer, leftovers, run_cli, run_python, sha, until

import vidnb
from vidnb._strategy import OVERLAP
from vidnb._urls import safe_filename

try:
    HAVE_YT_DLP = importlib.util.find_spec("yt_dlp") is not None
except ValueError:  # sys.modules["yt_dlp"] = None: made unimportable on purpose
    HAVE_YT_DLP = False
NO_YT_DLP = "yt-dlp not installed (pip install 'vidnb[sites]', or the test extra)"

FAST = vidnb.Retry(total=3, backoff=0.01)
INSTALL_HINT = "pip install 'vidnb[sites]'"


# --------------------------------------------------------------------------- fixtures and checks


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site's media, made once (about 5 s of ffmpeg); read-only."""
    if not ps.have_ffmpeg():
        pytest.skip(ps.NO_FFMPEG)
    return ps.build(tmp_path_factory.mktemp("site"))


@pytest.fixture
def bare_site(server: LocalServer, media: Path) -> ps.Site:
    """The whole site on fresh routes: faults and counts are this test's own."""
    return ps.serve_site(server, media)


@pytest.fixture
def site(bare_site: ps.Site) -> ps.Site:
    """:func:`bare_site`, for the tests that need yt-dlp (all but those of a Python without it)."""
    if not HAVE_YT_DLP:
        pytest.skip(NO_YT_DLP)
    return bare_site


def name_for(page: str, ext: str = ".mp4") -> str:
    """The file name vidnb must give a page's video: its title, sanitised like a server's name."""
    name = safe_filename(ps.TITLES[page] + ext)
    assert name is not None
    return name


def assert_plays(path: Path, kinds: tuple[str, ...] = ("audio", "video"), seconds: float = ps.SECONDS) -> dict:
    """The file holds these streams, lasts ``seconds`` and decodes without a complaint."""
    info = ps.probe(path)
    assert sorted(s["codec_type"] for s in info["streams"]) == sorted(kinds), info["streams"]
    assert float(info["format"]["duration"]) == pytest.approx(seconds, abs=ps.TOLERANCE), info["format"]
    assert ps.decode_errors(path) == ""
    return info


def video_stream(info: dict) -> dict:
    (stream,) = [s for s in info["streams"] if s["codec_type"] == "video"]
    return stream


def counts(site: ps.Site) -> dict[str, int]:
    """Requests so far per file of the site (to compare two moments of a test)."""
    return {rel: len(route.requests) for rel, route in site.routes.items()}


# Processes started, and files opened, while a watch() block runs, in any thread. Audit hooks
# cannot be removed: this one is installed once, with the module, and is idle otherwise.
_PROGRAM_EVENTS = {"subprocess.Popen", "os.system", "os.posix_spawn", "os.spawn", "os.exec", "os.fork", "os.forkpty"}
_watched: dict[str, list[str]] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _watched is None:
        return
    if event in _PROGRAM_EVENTS:
        _watched["programs"].append(f"{event} {args!r}"[:300])
    elif event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        _watched["opened"].append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


@contextlib.contextmanager
def watch() -> Iterator[dict[str, list[str]]]:
    """Record ``programs`` started (subprocess, os.system, posix_spawn, exec, fork) and files ``opened``."""
    global _watched
    seen: dict[str, list[str]] = {"programs": [], "opened": []}
    _watched = seen
    try:
        yield seen
    finally:
        _watched = None


# --------------------------------------------------------------------------- each kind of page


#: page, what the saved file must hold (stream kinds, width of its picture), the media
#: file(s) vidnb must have fetched.
PAGES = [
    pytest.param("video-src.html", ("audio", "video"), 640, "media/clip.mp4", id="video-src"),
    # The MP4 is preferred to the WebM: equal as far as the page says, and it plays everywhere.
    pytest.param("sources.html", ("audio", "video"), 640, "media/clip.mp4", id="source-types"),
    pytest.param("og.html", ("audio", "video"), 640, "media/clip.mp4", id="og-video"),
    pytest.param("jsonld.html", ("audio", "video"), 640, "media/clip.mp4", id="json-ld"),
    pytest.param("hls.html", ("audio", "video"), 640, "media/hls/360p/seg0.ts", id="hls-master"),
    pytest.param("dash.html", ("audio", "video"), 640, "media/dash/seg-0-1.m4s", id="dash"),
]


@pytest.mark.parametrize("page, kinds, width, fetched", PAGES)
async def test_page_gives_a_playable_file_named_after_its_title(site, tmp_path, page, kinds, width, fetched):
    url = site.page(page)
    result = await vidnb.download(url, tmp_path, progress=False)
    assert result.path == tmp_path / name_for(page)
    assert result.page_url == url and result.title == ps.TITLES[page]
    assert result.size == result.path.stat().st_size and result.format == "mp4"
    assert not result.resumed and not result.skipped
    info = assert_plays(result.path, kinds)
    assert video_stream(info)["width"] == width and video_stream(info)["codec_name"] == "h264"
    # Once by vidnb; for JSON-LD yt-dlp's generic extractor also opens the contentUrl itself
    # (to see what it is) while it reads the page.
    assert site.requests(fetched) == (2 if page == "jsonld.html" else 1)
    assert leftovers(tmp_path) == [result.path.name]  # no .part, record, lock or working file behind


async def test_a_direct_file_is_saved_byte_for_byte(site, media, tmp_path):
    result = await vidnb.download(site.page("video-src.html"), tmp_path / "talk.mp4", progress=False)
    assert result.path == tmp_path / "talk.mp4"  # a name the user gives is kept
    assert result.path.read_bytes() == (media / "media" / "clip.mp4").read_bytes()
    assert result.url == site.url("media/clip.mp4")  # url is the media's, page_url the page's


@pytest.mark.parametrize(
    "page, thumbnail, duration",
    [
        ("video-src.html", "media/poster.jpg", None),  # the <video poster>
        ("og.html", "media/poster.jpg", None),  # og:image
        ("jsonld.html", "media/poster.jpg", 3.0),  # thumbnailUrl, and duration PT3S
        ("hls.html", None, None),
    ],
)
async def test_result_carries_what_the_page_says(site, tmp_path, page, thumbnail, duration):
    result = await vidnb.download(site.page(page), tmp_path, progress=False)
    assert result.thumbnail_url == (site.url(thumbnail) if thumbnail else None)
    if duration is None:
        # The page does not say; if vidnb fills it from elsewhere, it must be right.
        assert result.duration is None or result.duration == pytest.approx(ps.SECONDS, abs=ps.TOLERANCE)
    else:
        assert isinstance(result.duration, float) and result.duration == pytest.approx(duration)


async def test_a_direct_mpd_url_is_muxed_into_one_mp4(site, tmp_path):
    url = site.url("media/dash/manifest.mpd")
    result = await vidnb.download(url, tmp_path, progress=False)
    assert result.path == tmp_path / "manifest.mp4" and result.page_url == url
    info = assert_plays(result.path)
    assert video_stream(info)["width"] == ps.HIGH[0]
    assert leftovers(tmp_path) == ["manifest.mp4"]


async def test_downloads_that_are_not_pages_have_no_page_fields(bare_site, tmp_path):
    site = bare_site
    result = await vidnb.download(site.url("media/clip.mp4"), tmp_path, progress=False)
    assert (result.page_url, result.title, result.duration, result.thumbnail_url) == (None, None, None, None)


@pytest.mark.parametrize(
    "page, media_prefix",
    [("video-src.html", "media/clip.mp4"), ("hls.html", "media/hls/360p/"), ("dash.html", "media/dash/seg-")],
)
async def test_media_requests_carry_the_headers_yt_dlp_gives(site, tmp_path, page, media_prefix):
    await vidnb.download(site.page(page), tmp_path, progress=False, headers={"X-Mine": "1"})
    seen = site.media_headers(media_prefix)
    assert seen
    for headers in seen:
        assert headers.get("Referer") == site.page(page), headers
        assert headers.get("User-Agent", "").startswith("Mozilla/5.0"), headers  # yt-dlp's browser-like UA
        assert headers.get("X-Mine") == "1"  # and the user's own headers too


async def test_dash_video_and_audio_are_fetched_concurrently(site, tmp_path):
    # Hold both streams in their second fragment: fetched one after the other, the second
    # stream would never be asked for while the first is held.
    video, audio = site.routes["media/dash/seg-0-2.m4s"], site.routes["media/dash/seg-2-2.m4s"]
    video.pause_after = audio.pause_after = 1000
    task = asyncio.ensure_future(vidnb.download(site.page("dash.html"), tmp_path, progress=False))
    try:
        await until(
            lambda: video.requests and audio.requests,
            timeout=30,
            unless=task.done,
            what="both streams' second fragments to be asked for at once",
        )
    finally:
        video.pause_after = audio.pause_after = None
    result = await task
    assert_plays(result.path)


async def test_dash_fragments_are_fetched_in_order_each_once(site, media, tmp_path):
    await vidnb.download(site.page("dash.html"), tmp_path, progress=False)
    for rep in ("0", "2"):
        for rel in ps.dash_segments(media, rep):
            assert site.requests(rel) == 1, rel
    assert not any(site.requests(rel) for rel in ps.dash_segments(media, "1"))  # the other height: never


async def test_dash_fragments_are_asked_for_in_the_manifests_order(site, media, tmp_path):
    arrived: list[str] = []
    for rep in ("0", "2"):
        for rel in ps.dash_segments(media, rep):
            site.routes[rel].on_request = lambda n, rel=rel: arrived.append(rel)  # on the server's thread
    # Two fragments at once per stream: asked for in order, never more than one ahead of the
    # fragments already asked for (the fetcher appends them to the file in order).
    await vidnb.download(site.page("dash.html"), tmp_path, connections=2, progress=False)
    for rep in ("0", "2"):
        wanted = ps.dash_segments(media, rep)
        order = [wanted.index(rel) for rel in arrived if rel in wanted]
        assert sorted(order) == list(range(len(wanted)))
        assert all(i <= n + 1 for n, i in enumerate(order)), order


# --------------------------------------------------------------------------- choosing a format


@pytest.mark.parametrize("page", ["hls.html", "dash.html"])
@pytest.mark.parametrize(
    "choice, width",
    [
        ({"quality": "best"}, ps.HIGH[0]),
        ({"quality": "worst"}, ps.LOW[0]),
        ({"quality": 180}, ps.LOW[0]),
        ({"quality": "360p"}, ps.HIGH[0]),
        ({"quality": 200}, ps.LOW[0]),
        ({"quality": "500k"}, ps.LOW[0]),
        ({"variant": "worst"}, ps.LOW[0]),  # the older name keeps working
    ],
    ids=["best", "worst", "180", "360p", "200", "500k", "variant-worst"],
)
async def test_quality_chooses_between_two_heights(site, tmp_path, page, choice, width):
    result = await vidnb.download(site.page(page), tmp_path, progress=False, **choice)
    info = assert_plays(result.path)
    assert video_stream(info)["width"] == width
    if page == "hls.html":
        chosen, other = ("360p", "180p") if width == ps.HIGH[0] else ("180p", "360p")
        assert site.requests(f"media/hls/{chosen}/seg0.ts") == 1
        assert not site.requests(f"media/hls/{other}/seg0.ts") and not site.requests(f"media/hls/{other}/index.m3u8")
    else:
        chosen, other = ("0", "1") if width == ps.HIGH[0] else ("1", "0")
        assert site.requests(f"media/dash/seg-{chosen}-1.m4s") == 1
        assert not site.requests(f"media/dash/seg-{other}-1.m4s")
        assert site.requests("media/dash/seg-2-1.m4s") == 1  # the audio either way


async def test_quality_below_every_height_takes_the_smallest(site, tmp_path):
    result = await vidnb.download(site.page("dash.html"), tmp_path, quality=90, progress=False)
    assert video_stream(assert_plays(result.path))["width"] == ps.LOW[0]


async def test_bad_quality_fails_before_any_request(site, tmp_path):
    with pytest.raises(ValueError, match="quality="):
        await vidnb.download(site.page("hls.html"), tmp_path, quality="huge", progress=False)
    assert not any(counts(site).values())


@pytest.mark.parametrize(
    "page, selector, kinds, codec, width, not_fetched",
    [
        ("sources.html", "webm", ("audio", "video"), "vp9", ps.LOW[0], "media/clip.mp4"),
        ("hls.html", "hls-300", ("audio", "video"), "h264", ps.LOW[0], "media/hls/360p/seg0.ts"),
        ("dash.html", "1+2", ("audio", "video"), "h264", ps.LOW[0], "media/dash/seg-0-1.m4s"),
        ("dash.html", "0", ("video",), "h264", ps.HIGH[0], "media/dash/seg-2-1.m4s"),
    ],
    ids=["ext-webm", "hls-format-id", "dash-video+audio", "dash-video-only"],
)
async def test_format_selector_is_passed_to_yt_dlp(site, tmp_path, page, selector, kinds, codec, width, not_fetched):
    result = await vidnb.download(site.page(page), tmp_path, format=selector, progress=False)
    info = assert_plays(result.path, kinds)
    stream = video_stream(info)
    assert stream["codec_name"] == codec and stream["width"] == width
    assert not site.requests(not_fetched)
    if selector == "webm":
        assert result.path == tmp_path / name_for(page, ".webm") and result.format == "webm"


async def test_a_format_selector_nothing_matches_is_an_error_without_a_file(site, tmp_path):
    with pytest.raises(vidnb.VidnbError, match="format"):
        await vidnb.download(site.page("hls.html"), tmp_path, format="bv*[height>2000]", progress=False)
    assert not any(site.requests(rel) for rel in site.routes if rel.endswith(".ts"))
    assert leftovers(tmp_path) == []


# --------------------------------------------------------------------------- several videos, none


async def test_a_page_with_two_videos_lists_them_and_says_how_to_choose(site, tmp_path):
    with pytest.raises(vidnb.SeveralVideosError) as caught:
        await vidnb.download(site.page("two.html"), tmp_path, progress=False)
    err = caught.value
    assert isinstance(err, vidnb.NotAVideoError)
    assert len(err.entries) == 2 and all(isinstance(e, vidnb.PageEntry) for e in err.entries)
    for entry in err.entries:
        assert entry.title and entry.title.startswith(ps.TITLES["two.html"])
        assert entry.title in str(err)
        assert entry.duration is None or entry.duration == pytest.approx(ps.SECONDS, abs=ps.TOLERANCE)
        assert entry.url is None or entry.url.startswith("http://127.0.0.1:")
    assert err.entries[0].title != err.entries[1].title
    assert "item=" in str(err) and "download_many" in str(err)
    assert not site.media_requests() and leftovers(tmp_path) == []


@pytest.mark.parametrize("item, wanted, other", [(1, "clip.mp4", "second.mp4"), (2, "second.mp4", "clip.mp4")])
async def test_item_picks_one_video_of_the_page(site, media, tmp_path, item, wanted, other):
    result = await vidnb.download(site.page("two.html"), tmp_path, item=item, progress=False)
    assert result.path.read_bytes() == (media / "media" / wanted).read_bytes()
    assert not site.requests(f"media/{other}")
    assert result.path.suffix == ".mp4" and result.path.name.startswith(ps.TITLES["two.html"])
    assert result.page_url == site.page("two.html")


async def test_an_item_the_page_does_not_have_is_refused(site, tmp_path):
    with pytest.raises((vidnb.NotAVideoError, ValueError), match="item=3"):
        await vidnb.download(site.page("two.html"), tmp_path, item=3, progress=False)
    assert not site.media_requests() and leftovers(tmp_path) == []


async def test_download_many_takes_every_video_of_a_page(site, media, tmp_path):
    batch = await vidnb.download_many(site.page("two.html"), tmp_path, progress=False)
    assert len(batch.results) == 2 and not batch.failed
    paths = [r.path for r in batch.results]
    assert len(set(paths)) == 2 and all(p.parent == tmp_path for p in paths)
    got = sorted(p.read_bytes() for p in paths)
    assert got == sorted((media / "media" / n).read_bytes() for n in ("clip.mp4", "second.mp4"))
    assert sorted(leftovers(tmp_path)) == sorted(p.name for p in paths)


async def test_download_many_mixes_pages_files_and_playlists(site, media, tmp_path):
    urls = [site.page("og.html"), site.url("media/second.mp4"), site.url("media/hls/master.m3u8"),
            site.page("dash.html")]  # fmt: skip
    batch = await vidnb.download_many(urls, tmp_path, progress=False)
    assert not batch.failed and len(batch.results) == 4
    og, second, master, dash = batch.results
    assert og.path.name == name_for("og.html") and og.title == ps.TITLES["og.html"]
    assert second.path.read_bytes() == (media / "media" / "second.mp4").read_bytes() and second.page_url is None
    assert master.path.name == "master.mp4"
    assert dash.path.name == name_for("dash.html")
    for r in (og, master, dash):
        assert_plays(r.path)


async def test_a_page_without_video_says_so(site, tmp_path):
    with pytest.raises(vidnb.NotAVideoError, match=r"(?i)no video|without (a |any )?video") as caught:
        await vidnb.download(site.page("none.html"), tmp_path / "x.mp4", progress=False)
    assert not isinstance(caught.value, vidnb.SeveralVideosError)
    assert leftovers(tmp_path) == []
    assert not site.media_requests()  # not even the <img> on it


@pytest.mark.parametrize("page", ["none.html", "video-src.html"])
async def test_require_video_false_saves_the_page_as_served(site, tmp_path, page):
    result = await vidnb.download(site.page(page), tmp_path / "page.html", require_video=False, progress=False)
    assert result.path.read_bytes() == site.routes[page].data
    assert not site.media_requests()


# --------------------------------------------------------------------------- safety


@pytest.mark.parametrize("page, scheme", [("passwd.html", "file"), ("ftp.html", "ftp")])
async def test_media_at_a_url_that_is_not_http_is_refused_before_any_request(site, tmp_path, page, scheme):
    dest = tmp_path / "out" / "x.mp4"
    with watch() as seen:
        with pytest.raises(vidnb.InvalidURLError, match=scheme):
            await vidnb.download(site.page(page), dest, progress=False)
    assert "/etc/passwd" not in seen["opened"]
    assert not seen["programs"]
    assert leftovers(dest.parent) == [] and not site.media_requests()
    # Not even to the name's folder: nothing but the page was asked for.
    assert set(k for k, v in counts(site).items() if v) == {page}


async def test_a_manifest_the_page_links_at_a_url_that_is_not_http_is_never_requested(site, serve, tmp_path):
    # yt-dlp reads linked manifests itself while it extracts; every request it makes passes
    # vidnb's URL check first. A listener on the ftp address shows whether anyone connected.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        port = listener.getsockname()[1]
        html = ("<!DOCTYPE html><html><head><title>Far away</title></head><body><video controls><source "
                f'src="ftp://127.0.0.1:{port}/manifest.mpd" type="application/dash+xml"></video></body></html>')
        url, _ = serve(html.encode(), name="far.html", content_type="text/html")
        with pytest.raises(vidnb.InvalidURLError, match="ftp"):
            await vidnb.download(url, tmp_path / "x.mp4", progress=False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # no connection is waiting: nobody tried the ftp address
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("page", ["dash.html", "hls.html", "video-src.html"])
async def test_no_external_program_runs_during_a_page_download(site, tmp_path, page):
    with watch() as seen:
        subprocess.run([sys.executable, "-c", "pass"], check=True)
    assert seen["programs"], "the audit hook does not see programs started"
    with watch() as seen:
        result = await vidnb.download(site.page(page), tmp_path, progress=False)
    assert seen["programs"] == []
    assert_plays(result.path)  # ffprobe, after the watch: the hook does see programs


def test_no_external_program_even_for_the_first_page_of_a_process(site, tmp_path):
    # yt-dlp checks for ffmpeg (``ffmpeg -bsfs``) when its downloader or merger is set up: in a
    # fresh interpreter the first page also pays for every one-time setup.
    code = (
        "import json, sys\n"
        "seen = []\n"
        "EVENTS = {'subprocess.Popen', 'os.system', 'os.posix_spawn', 'os.spawn', 'os.exec', 'os.fork'}\n"
        "sys.addaudithook(lambda e, a: seen.append(f'{e} {a!r}'[:300]) if e in EVENTS else None)\n"
        "import vidnb\n"
        "r = vidnb.download_sync(sys.argv[1], sys.argv[2], progress=False)\n"
        "print(json.dumps({'programs': seen, 'path': str(r.path)}))\n"
    )
    done = run_python(code, site.page("dash.html"), tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["programs"] == []
    assert_plays(Path(out["path"]))


def test_without_yt_dlp_a_page_names_the_install_command(bare_site, media, tmp_path):
    site = bare_site
    # ``sys.modules[name] = None`` makes ``import yt_dlp`` fail as if it were not installed.
    code = (
        "import sys\n"
        "sys.modules['yt_dlp'] = None\n"
        "import vidnb\n"
        "try:\n"
        "    vidnb.download_sync(sys.argv[1], sys.argv[2], progress=False)\n"
        "except vidnb.NotAVideoError as exc:\n"
        "    print('NotAVideoError:', ' '.join(str(exc).split()))\n"
        "r = vidnb.download_sync(sys.argv[3], sys.argv[4], progress=False)\n"  # files need no yt-dlp
        "print('file ok', r.size)\n"
    )
    done = run_python(code, site.page("video-src.html"), tmp_path / "page.mp4", site.url("media/second.mp4"),
                      tmp_path / "second.mp4")  # fmt: skip
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.strip().splitlines()[-2:]
    assert first.startswith("NotAVideoError:") and INSTALL_HINT in first
    assert second == f"file ok {(media / 'media' / 'second.mp4').stat().st_size}"
    assert leftovers(tmp_path) == ["second.mp4"]
    assert not site.requests("media/clip.mp4")  # the page's video was never asked for


def test_yt_dlp_is_imported_only_when_a_page_is_met(site, tmp_path):
    code = (
        "import sys\n"
        "import vidnb, vidnb.widgets\n"
        "print('after import', 'yt_dlp' in sys.modules)\n"
        "vidnb.download_sync(sys.argv[1], sys.argv[2], progress=False)\n"
        "vidnb.download_sync(sys.argv[3], sys.argv[4], progress=False)\n"
        "print('after files', 'yt_dlp' in sys.modules)\n"
        "vidnb.download_sync(sys.argv[5], sys.argv[6], progress=False)\n"
        "print('after a page', 'yt_dlp' in sys.modules)\n"
    )
    done = run_python(code, site.url("media/clip.mp4"), tmp_path / "a.mp4", site.url("media/hls/master.m3u8"),
                      tmp_path / "b.mp4", site.page("og.html"), tmp_path / "c.mp4")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-3:] == ["after import False", "after files False", "after a page True"]


# --------------------------------------------------------------------------- resume, retries, options


async def test_a_direct_file_cut_mid_body_resumes_where_it_stopped(site, media, tmp_path):
    dest = tmp_path / "talk.mp4"
    route = site.routes["media/clip.mp4"]
    data = route.data
    route.drops = {n: 300_000 for n in range(1, 20)}  # whatever request the body comes on
    with pytest.raises(vidnb.VidnbError):
        await vidnb.download(site.page("video-src.html"), dest, retries=0, progress=False)
    assert not dest.exists()
    # The bytes wait in the format's working file beside the destination.
    (working,) = tmp_path.glob("talk.f*.mp4.part")
    kept = working.stat().st_size
    assert 0 < kept <= 300_000
    route.drops = {}
    before, asked = route.sent, len(route.requests)
    result = await vidnb.download(site.page("video-src.html"), dest, progress=False)
    assert result.resumed and dest.read_bytes() == data
    # The second run asked for the rest (and the overlap vidnb checks against the disk) only.
    assert any(h.get("Range") == f"bytes={kept - OVERLAP}-" for h in route.requests[asked:])
    remainder = len(data) - (kept - OVERLAP)
    assert remainder <= route.sent - before <= remainder + 16 * 1024
    assert leftovers(tmp_path) == ["talk.mp4"]


async def test_a_dropped_connection_is_retried_within_one_call(site, media, tmp_path):
    route = site.routes["media/clip.mp4"]
    route.drops = {1: 200_000, 2: 250_000}
    result = await vidnb.download(site.page("og.html"), tmp_path / "clip.mp4", retries=FAST, progress=False)
    assert result.path.read_bytes() == route.data and result.resumed and result.attempts >= 2
    gets = [h for h in route.requests if h.get("Range") != "bytes=0-1023"]
    # Each retry asked for the rest, never for the file from byte 0 again.
    assert len(gets) >= 2 and all(h.get("Range", "bytes=0-").startswith("bytes=") for h in gets[1:])
    assert all(not h.get("Range", "bytes=0-").startswith("bytes=0-") for h in gets[1:])


async def test_an_interrupted_hls_page_resumes_at_the_first_missing_segment(site, tmp_path):
    dest = tmp_path / "talk.mp4"
    site.routes["media/hls/360p/seg1.ts"].statuses = [503]
    with pytest.raises(vidnb.HTTPStatusError):
        await vidnb.download(site.page("hls.html"), dest, retries=0, progress=False)
    assert not dest.exists() and leftovers(tmp_path)
    result = await vidnb.download(site.page("hls.html"), dest, progress=False)
    assert result.resumed and result.path == dest
    assert_plays(dest)
    assert site.requests("media/hls/360p/seg0.ts") <= 2  # kept; at most fetched again to check it
    assert site.requests("media/hls/360p/seg1.ts") == 2  # refused once, then fetched
    assert leftovers(tmp_path) == ["talk.mp4"]


def kept_fragments(folder: Path, media: Path) -> dict[str, int]:
    """How many fragments of each DASH representation the resume records beside a download vouch for.

    A record lists the segments its ``.part`` holds, with their sizes (as HLS's do); the
    representation is the one whose fragments, in order, have those sizes. A stream already
    complete may be a file of its own, the size of all its fragments.
    """
    kept: dict[str, int] = {}
    for done in folder.iterdir():  # a stream already complete, kept as a file of its own
        if done.suffix in (".part", ".json"):
            continue  # a .part vouches for nothing by its size: its record says what it holds
        for rep in ("0", "1", "2"):
            frags = ps.dash_segments(media, rep)
            if done.is_file() and done.stat().st_size == sum((media / rel).stat().st_size for rel in frags):
                kept[rep] = len(frags)
    for record in folder.glob("*.part.json"):
        sizes = [seg[2] for seg in json.loads(record.read_text()).get("segments") or []]
        for rep in ("0", "1", "2"):
            frags = ps.dash_segments(media, rep)
            if sizes and sizes == [(media / rel).stat().st_size for rel in frags[: len(sizes)]]:
                kept[rep] = len(sizes)
    return kept


def assert_fetched_only_what_was_missing(media: Path, again: dict[str, int], kept: dict[str, int]) -> None:
    """Run 2 asked for no kept fragment but the last (checked again at most once), and once for each other."""
    for rep in ("0", "2"):
        frags, k = ps.dash_segments(media, rep), kept.get(rep, 0)
        assert [again[rel] for rel in frags[: max(k - 1, 0)]] == [0] * max(k - 1, 0), (rep, k, again)
        if k:
            assert again[frags[k - 1]] <= 1, (rep, k, again)
        assert [again[rel] for rel in frags[k:]] == [1] * (len(frags) - k), (rep, k, again)


async def test_an_interrupted_dash_page_fetches_only_the_missing_fragments(site, media, tmp_path):
    dest = tmp_path / "lecture.mp4"
    video = ps.dash_segments(media, "0")  # init, seg-0-1, seg-0-2, seg-0-3
    site.routes[video[2]].statuses = [500] * 100
    with pytest.raises(vidnb.HTTPStatusError) as caught:
        await vidnb.download(site.page("dash.html"), dest, retries=0, progress=False)
    assert caught.value.status == 500 and caught.value.url.endswith(video[2])
    assert not dest.exists()
    assert asyncio.all_tasks() == {asyncio.current_task()}, "a fetch outlived the failed download"
    kept = kept_fragments(tmp_path, media)
    assert kept.get("0") == 2  # the init segment and the first fragment: all the video before the failure
    site.routes[video[2]].statuses = []
    # The second run's requests carry a header of their own: a request the first run sent just
    # before it failed can reach the test server's thread later, and must not count as the second's.
    result = await vidnb.download(site.page("dash.html"), dest, progress=False, headers={"X-Run": "2"})
    assert result.resumed and result.path == dest
    assert_plays(dest)
    again = {rel: sum(1 for h in route.requests if h.get("X-Run") == "2") for rel, route in site.routes.items()}
    assert_fetched_only_what_was_missing(media, again, kept)
    assert leftovers(tmp_path) == ["lecture.mp4"]


async def test_after_a_failure_every_resume_record_vouches_only_for_bytes_on_disk(server, media, tmp_path):
    # The video fails at its second fragment while the audio is being fetched beside it; when
    # download() has raised, a record claiming more than its .part holds would make the next
    # call throw the stream away (or, worse, trust bytes that are not there). A race: tried
    # several times, each on a fresh site.
    if not HAVE_YT_DLP:
        pytest.skip(NO_YT_DLP)
    for attempt in range(10):
        site = ps.serve_site(server, media)
        folder = tmp_path / str(attempt)
        site.routes[ps.dash_segments(media, "0")[2]].statuses = [500] * 100
        with pytest.raises(vidnb.HTTPStatusError):
            await vidnb.download(site.page("dash.html"), folder / "x.mp4", retries=0, progress=False)
        for record in folder.glob("*.part.json"):
            segments = json.loads(record.read_text()).get("segments") or []
            claimed = max((seg[1] for seg in segments), default=0)
            part = record.with_name(record.name.removesuffix(".json"))
            on_disk = part.stat().st_size if part.exists() else 0
            assert claimed <= on_disk, f"attempt {attempt}: {record.name} claims {claimed} bytes, .part has {on_disk}"


async def test_a_dash_fragment_failing_twice_is_retried(site, media, tmp_path):
    seg = ps.dash_segments(media, "0")[2]
    site.routes[seg].statuses = [503, 503]
    result = await vidnb.download(site.page("dash.html"), tmp_path, retries=FAST, progress=False)
    assert site.requests(seg) == 3 and result.attempts >= 3
    assert_plays(result.path)


async def test_a_cancelled_dash_download_keeps_its_fragments(site, media, tmp_path):
    dest = tmp_path / "lecture.mp4"
    loop = asyncio.get_running_loop()
    # The audio's last fragment is the last request of all (the video's are asked for first):
    # cancel from the server's thread the moment it is asked for, and send it slowly meanwhile.
    last = site.routes[ps.dash_segments(media, "2")[-1]]
    last.rate = 100
    task = asyncio.ensure_future(vidnb.download(site.page("dash.html"), dest, progress=False))
    last.on_request = lambda n: loop.call_soon_threadsafe(task.cancel) if n == 1 else None
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not dest.exists()
    kept = kept_fragments(tmp_path, media)
    last.rate, last.on_request = None, None
    first = counts(site)
    result = await vidnb.download(site.page("dash.html"), dest, progress=False)
    assert result.resumed == bool(kept)
    assert_plays(dest)
    assert_fetched_only_what_was_missing(media, {rel: n - first[rel] for rel, n in counts(site).items()}, kept)
    assert leftovers(tmp_path) == ["lecture.mp4"]


async def test_when_one_stream_fails_the_other_stops_with_the_call(site, media, tmp_path):
    # The video's last fragment is slow (4 s); the audio fails at once. Once download() has
    # raised, nothing of it may go on: a fragment still being sent is hung up on, not read to
    # its end by a fetch nobody awaits any more (which would also race the next call's .part).
    slow = site.routes[ps.dash_segments(media, "0")[-1]]
    slow.rate, slow.concurrency = 20_000, Concurrency()
    site.routes[ps.dash_segments(media, "2")[2]].statuses = [500] * 100
    with pytest.raises(vidnb.HTTPStatusError):
        await vidnb.download(site.page("dash.html"), tmp_path / "x.mp4", retries=0, progress=False)
    in_flight = slow.concurrency.now > 0
    on_disk = {p: (tmp_path / p).stat().st_size for p in leftovers(tmp_path)}
    await until(lambda: slow.concurrency.now == 0, timeout=30, what="the slow fragment's answer to end")
    if in_flight:
        assert slow.sent < len(slow.data), "the slow fragment was read to its end after download() raised"
    assert {p: (tmp_path / p).stat().st_size for p in leftovers(tmp_path)} == on_disk


async def test_a_complete_page_download_is_skipped_unless_overwrite(site, tmp_path):
    first = await vidnb.download(site.page("dash.html"), tmp_path, progress=False)
    fragments = {rel for rel in site.routes if rel.endswith(".m4s")}
    before = counts(site)
    again = await vidnb.download(site.page("dash.html"), tmp_path, progress=False)
    assert again.skipped and again.path == first.path and again.size == first.size
    assert all(counts(site)[rel] == before[rel] for rel in fragments)
    fresh = await vidnb.download(site.page("dash.html"), tmp_path, overwrite=True, progress=False)
    assert not fresh.skipped and site.requests("media/dash/seg-0-1.m4s") == 2


async def test_sha256_is_checked_for_a_page_video(site, tmp_path):
    data = site.routes["media/clip.mp4"].data
    good = await vidnb.download(site.page("jsonld.html"), tmp_path / "a.mp4", sha256=sha(data), progress=False)
    assert good.sha256 == sha(data)
    with pytest.raises(vidnb.ChecksumError):
        await vidnb.download(site.page("jsonld.html"), tmp_path / "b.mp4", sha256="0" * 64, progress=False)
    assert leftovers(tmp_path) == ["a.mp4"]


@pytest.mark.parametrize("page", ["video-src.html", "dash.html"])
async def test_max_bytes_refuses_a_page_video_and_keeps_nothing(site, tmp_path, page):
    with pytest.raises(vidnb.TooLargeError):
        await vidnb.download(site.page(page), tmp_path / "x.mp4", max_bytes=100_000, progress=False)
    assert leftovers(tmp_path) == []


async def test_two_downloads_of_one_page_to_one_file_take_turns(site, tmp_path):
    dest = tmp_path / "same.mp4"
    a, b = await asyncio.gather(*(vidnb.download(site.page("hls.html"), dest, progress=False) for _ in range(2)))
    assert sorted([a.skipped, b.skipped]) == [False, True]  # the second found it done
    assert site.requests("media/hls/360p/seg0.ts") == 1
    assert_plays(dest)


# --------------------------------------------------------------------------- what the user sees


async def test_progress_says_finding_the_video_before_any_byte(site, media, tmp_path):
    events: list[vidnb.ProgressEvent] = []
    result = await vidnb.download(site.page("dash.html"), tmp_path, progress=events.append)
    finding = [i for i, e in enumerate(events) if e.stage == "finding the video"]
    with_bytes = [i for i, e in enumerate(events) if e.done > 0]
    assert finding and with_bytes and max(finding) < min(with_bytes)
    assert events[-1].state == "done"
    # Every byte fetched is counted: the video's and the audio's (one bar for both, ending at
    # the file's size, or one per stream as HLS does).
    last: dict[str, int] = {}
    for e in events:
        if e.stage is None:
            last[e.name] = e.done
    fetched = sum((media / rel).stat().st_size for rep in ("0", "2") for rel in ps.dash_segments(media, rep))
    assert sum(last.values()) in (fetched, result.size), (last, fetched, result.size)


async def test_progress_of_a_plain_file_has_no_stage(site, tmp_path):
    events: list[vidnb.ProgressEvent] = []
    await vidnb.download(site.url("media/clip.mp4"), tmp_path, progress=events.append)
    assert events and all(e.stage is None for e in events)


async def test_the_log_names_the_extractor_and_the_format_chosen(site, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="vidnb")
    await vidnb.download(site.page("hls.html"), tmp_path, progress=False)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("vidnb") and r.levelno >= logging.INFO]
    named = [line for line in lines if "extractor" in line.lower() and "hls-800" in line]
    assert named, lines
    assert "html5" in named[0].lower()  # yt-dlp's HTML5MediaEmbed answered for this page


async def test_start_downloads_a_page_in_the_background(site, tmp_path):
    task = vidnb.start(site.page("og.html"), tmp_path, progress=False)
    result = await task
    assert result.path == tmp_path / name_for("og.html") and result.title == ps.TITLES["og.html"]
    assert_plays(result.path)


async def test_panel_row_shows_the_page_title(site, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # posters of finished rows
    panel = vidnb.DownloadPanel(tmp_path / "d")
    panel.urls.value = site.page("video-src.html")
    panel.download_button.click()
    (row,) = panel.rows
    (result,) = await panel.wait()
    assert row.state == "done" and result.path == tmp_path / "d" / name_for("video-src.html")
    # The title itself (with its colon), not only the file name made from it.
    assert ps.TITLES["video-src.html"] in html.unescape(row.name.value)
    assert_plays(result.path)


# --------------------------------------------------------------------------- the command line


def test_cli_get_of_a_page_to_a_file(site, tmp_path):
    proc = run_cli("get", site.page("dash.html"), "-o", "out.mp4", cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("out.mp4  ")
    assert_plays(tmp_path / "out.mp4")
    assert leftovers(tmp_path) == ["out.mp4"]


def test_cli_get_of_a_page_into_a_folder_with_quality(site, tmp_path):
    proc = run_cli("get", site.page("hls.html"), "-o", "videos/", "--quality", "180p", cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    path = tmp_path / "videos" / name_for("hls.html")
    assert video_stream(assert_plays(path))["width"] == ps.LOW[0]


def test_cli_get_of_a_page_with_two_videos_lists_them_and_takes_item(site, media, tmp_path):
    refused = run_cli("get", site.page("two.html"), "-o", "x.mp4", cwd=tmp_path, timeout=120)
    assert refused.returncode == 1 and "item" in refused.stderr and "Traceback" not in refused.stderr
    assert ps.TITLES["two.html"] in refused.stderr and not (tmp_path / "x.mp4").exists()
    proc = run_cli("get", site.page("two.html"), "--item", "2", "-o", "x.mp4", cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "x.mp4").read_bytes() == (media / "media" / "second.mp4").read_bytes()


@pytest.mark.parametrize(
    "page, protocol, rows",
    [
        ("dash.html", "http_dash_segments", ["640x360", "320x180", "audio only"]),
        ("hls.html", "m3u8_native", ["640x360", "320x180"]),
    ],
)
def test_cli_info_lists_a_pages_formats(site, tmp_path, page, protocol, rows):
    proc = run_cli("info", site.page(page), cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert ps.TITLES[page] in out
    lines = out.splitlines()
    for resolution in rows:
        (line,) = [line for line in lines if resolution in line]
        assert protocol in line
        assert ("avc1" in line) == (resolution != "audio only")
    assert "mp4a" in out
    assert not any(site.requests(rel) for rel in site.routes if rel.endswith((".ts", ".m4s")))  # nothing fetched
    assert leftovers(tmp_path) == []


def test_cli_info_of_a_page_without_video_says_so(site, tmp_path):
    proc = run_cli("info", site.page("none.html"), cwd=tmp_path, timeout=120)
    assert "Traceback" not in proc.stderr
    assert re.search(r"(?i)no video|without (a |any )?video", proc.stdout + proc.stderr), proc
    assert leftovers(tmp_path) == []


# --------------------------------------------------------------------------- a real notebook kernel


@pytest.mark.notebook
def test_awaiting_a_page_download_in_a_notebook_cell(site, tmp_path):
    from nb_kernel import Kernel

    kernel = Kernel(tmp_path)
    try:
        page = site.page("dash.html")
        ex = kernel.ok(
            f"import vidnb\nr = await vidnb.download({page!r}, 'videos/')\n"
            "print(r.path.name, '|', r.title, '|', r.page_url)",
            timeout=120,
        )
    finally:
        kernel.shutdown()
    name, title, page_url = (part.strip() for part in ex.stdout().strip().splitlines()[-1].split("|"))
    assert (name, title, page_url) == (name_for("dash.html"), ps.TITLES["dash.html"], page)
    assert_plays(tmp_path / "videos" / name)
