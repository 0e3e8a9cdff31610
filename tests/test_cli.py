"""The vidnb command, run as a subprocess against the local test server."""

from __future__ import annotations

import itertools
import random
import signal

import pytest
from aiohttp import web
from helpers import Route, make_video, resume_from, serve_route, sha, spawn_python, wait_until
from helpers import run_cli as vidnb

from vidnb import __version__, _files
from vidnb._fmt import parse_size

_ids = itertools.count()


def one_line_error(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vidnb: error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


# ---------------------------------------------------------------- get


def test_get_prints_a_line_per_file_and_exits_1_when_one_failed(serve, tmp_path):
    a, b = make_video(50_000, seed=1), make_video(70_000, seed=2)
    (ua, _), (ub, _) = serve(a, name="a.mp4"), serve(b, name="b.mp4")
    missing, _ = serve(statuses=[404], name="gone.mp4")
    proc = vidnb("get", ua, missing, ub, "-o", "out/", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    lines = sorted(proc.stdout.splitlines())
    assert len(lines) == 2
    assert lines[0].startswith("out/a.mp4  48.8 KiB  ") and lines[0].endswith(" s")
    assert lines[1].startswith("out/b.mp4  68.4 KiB  ")
    assert f"vidnb: failed: {missing}: HTTP 404" in proc.stderr
    assert "vidnb: 2 done, 1 failed" in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / "out" / "a.mp4").read_bytes() == a and (tmp_path / "out" / "b.mp4").read_bytes() == b


def test_get_again_skips_finished_files_and_exits_0(serve, tmp_path):
    data = make_video(30_000)
    url, route = serve(data, name="clip.mp4")
    assert vidnb("get", url, cwd=tmp_path).returncode == 0
    again = vidnb("get", url, cwd=tmp_path)
    assert again.returncode == 0
    assert again.stdout.strip().endswith("already there") and len(route.requests) == 1
    assert "1 done (1 already there), 0 failed" in again.stderr


def test_get_to_a_file_path_with_a_checksum(serve, tmp_path):
    data = make_video(40_000)
    url, _ = serve(data, name="x.mp4")
    ok = vidnb("get", url, "-o", "talk.mp4", "--sha256", sha(data), "-q", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "talk.mp4").read_bytes() == data and ok.stderr == ""
    bad = vidnb("get", url, "-o", "other.mp4", "--sha256", "0" * 64, cwd=tmp_path)
    assert bad.returncode == 1 and "sha256 is" in bad.stderr and not (tmp_path / "other.mp4").exists()


def test_get_from_a_manifest_with_concurrency(serve, tmp_path):
    datas = [make_video(20_000 + i, seed=i) for i in range(5)]
    urls = [serve(d, name=f"m{i}.mp4")[0] for i, d in enumerate(datas)]
    (tmp_path / "list.txt").write_text("# five clips\n\n" + "\n".join(f"{u} clip-{i}.mp4" for i, u in enumerate(urls)))
    proc = vidnb("get", "-i", "list.txt", "-o", "videos", "-j", "3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 5
    for i, d in enumerate(datas):
        assert (tmp_path / "videos" / f"clip-{i}.mp4").read_bytes() == d


def test_max_size_refuses_a_larger_file(serve, tmp_path):
    url, _ = serve(make_video(50_000), name="big.mp4")
    proc = vidnb("get", url, "--max-size", "10K", cwd=tmp_path)
    assert proc.returncode == 1 and "more than max_bytes=10240" in proc.stderr
    assert not (tmp_path / "big.mp4").exists()


@pytest.mark.parametrize("flag", ["--max-bytes", "--max-size"])
def test_max_bytes_and_its_alias_max_size_refuse_a_larger_file(serve, tmp_path, flag):
    url, route = serve(make_video(5_000), name="big.mp4")
    proc = vidnb("get", url, flag, "1K", cwd=tmp_path)
    assert proc.returncode == 1 and "more than max_bytes=1024" in proc.stderr
    assert "Raise --max-bytes to download it" in proc.stderr
    assert not (tmp_path / "big.mp4").exists() and len(route.requests) == 1


def test_headers_reach_the_server(serve, tmp_path):
    url, route = serve(make_video(20_000), name="h.mp4")
    proc = vidnb("get", url, "-H", "Cookie: session=abc", "--header", "X-Token:t0k", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert route.requests[0]["Cookie"] == "session=abc" and route.requests[0]["X-Token"] == "t0k"


def test_timeout_reaches_the_engine_and_its_hint_names_the_flag(serve, tmp_path):
    # The server sends the headers and 1000 bytes, then holds the rest back: only a read
    # timeout ends this download.
    url, route = serve(make_video(50_000), name="stall.mp4", pause_after=1000)
    try:
        proc = vidnb("get", url, "--timeout", "0.5", "--retries", "0", cwd=tmp_path)
    finally:
        route.pause_after = None
    assert proc.returncode == 1, proc.stderr
    assert "Timed out" in proc.stderr and "pass a larger --timeout" in proc.stderr
    assert "timeout=" not in proc.stderr


def test_no_resume_fetches_from_zero_after_an_interrupted_download(serve, tmp_path):
    data = make_video(1_000_000)
    url, route = serve(data, name="r.mp4", drops={1: 400_000})
    first = vidnb("get", url, "--retries", "0", cwd=tmp_path)
    assert first.returncode == 1 and "vidnb: failed:" in first.stderr
    part = _files.part_path(tmp_path / "r.mp4")
    # What a resume would continue from: bytes on disk and the record that vouches for them.
    assert part.stat().st_size > 0 and _files.sidecar_path(tmp_path / "r.mp4").exists()
    again = vidnb("get", url, "--no-resume", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(route.requests) == 2 and "Range" not in route.requests[1]
    assert (tmp_path / "r.mp4").read_bytes() == data and not again.stdout.strip().endswith("resumed")


def test_not_a_video_names_the_flag_that_saves_it_anyway(serve, tmp_path):
    page = b"<!doctype html><html><body>Sign in</body></html>"
    url, _ = serve(page, name="v.mp4", content_type="text/html")
    refused = vidnb("get", url, cwd=tmp_path)
    assert refused.returncode == 1
    assert "an HTML page" in refused.stderr and "pass --any-type to save it anyway" in refused.stderr
    assert "require_video" not in refused.stderr and not (tmp_path / "v.mp4").exists()
    saved = vidnb("get", url, "--any-type", cwd=tmp_path)
    assert saved.returncode == 0, saved.stderr
    assert (tmp_path / "v.mp4").read_bytes() == page


def _ts_packets(seed: int) -> bytes:
    """Three MPEG-TS packets (sync byte 0x47 each 188 bytes): media to the HLS engine."""
    rnd = random.Random(seed)
    return b"".join(b"\x47" + rnd.randbytes(187) for _ in range(3))


@pytest.fixture
def master(server):
    """``url, routes``: an HLS master playlist of two one-segment streams, 120 and 240 pixels tall."""
    media = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:1.0,\nseg0.ts\n#EXT-X-ENDLIST\n"
    files = {
        "master.m3u8": "#EXTM3U\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=200000,RESOLUTION=160x120\nlow/index.m3u8\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=600000,RESOLUTION=320x240\nhigh/index.m3u8\n",
        "low/index.m3u8": media,
        "high/index.m3u8": media,
        "low/seg0.ts": _ts_packets(1),
        "high/seg0.ts": _ts_packets(2),
    }
    prefix = f"/clihls{next(_ids)}/"
    routes = {}
    for rel, body in files.items():
        playlist = rel.endswith(".m3u8")
        routes[rel] = Route(
            body.encode() if isinstance(body, str) else body,
            content_type="application/vnd.apple.mpegurl" if playlist else "video/mp2t",
        )
        server.add(prefix + rel, routes[rel])
    return server.url(prefix + "master.m3u8"), routes


@pytest.mark.parametrize("variant, stream, other", [("worst", "low", "high"), ("240p", "high", "low"),
                                                    ("300k", "low", "high")])
def test_variant_chooses_the_hls_stream(master, tmp_path, variant, stream, other):
    url, routes = master
    proc = vidnb("get", url, "--variant", variant, "-o", "clip.ts", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "clip.ts").read_bytes() == routes[f"{stream}/seg0.ts"].data
    assert not routes[f"{other}/index.m3u8"].requests and not routes[f"{other}/seg0.ts"].requests


def test_bad_variant_is_refused_before_any_request(master, tmp_path):
    url, routes = master
    proc = vidnb("get", url, "--variant", "tallest", cwd=tmp_path)
    assert proc.returncode == 2 and "is not a stream choice" in one_line_error(proc.stderr)
    assert not any(route.requests for route in routes.values())


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "give at least one URL"),
        (["-j", "0", "http://127.0.0.1:9/a.mp4"], "must be 1 or more"),
        (["--max-size", "lots", "http://127.0.0.1:9/a.mp4"], "is not a size"),
        (["--sha256", "ab" * 32, "http://127.0.0.1:9/a.mp4", "http://127.0.0.1:9/b.mp4"], "exactly one URL"),
        (["ftp://example.com/a.mp4"], "only http:// and https://"),
        (["-i", "missing.txt"], "does not exist"),
        (["--bogus"], "unrecognized arguments"),
        (["--max-bytes", "lots", "http://127.0.0.1:9/a.mp4"], "is not a size"),
        (["-H", "no colon here", "http://127.0.0.1:9/a.mp4"], 'use "Name: value"'),
        (["-H", "Bad Name: x", "http://127.0.0.1:9/a.mp4"], 'use "Name: value"'),
        (["-H", "Cookie: a=1", "-H", "cookie: b=2", "http://127.0.0.1:9/a.mp4"], "given twice"),
        (["--timeout", "soon", "http://127.0.0.1:9/a.mp4"], "is not a number of seconds"),
        (["--timeout", "0", "http://127.0.0.1:9/a.mp4"], "must be a positive number of seconds"),
        (["--timeout", "nan", "http://127.0.0.1:9/a.mp4"], "must be a positive number of seconds"),
        (["--variant", "tallest", "http://127.0.0.1:9/a.mp4"], "is not a stream choice"),
    ],
)
def test_usage_errors_exit_2_with_one_line(tmp_path, args, message):
    proc = vidnb("get", *args, cwd=tmp_path)
    assert proc.returncode == 2
    assert message in one_line_error(proc.stderr)


def test_duplicate_urls_exit_2_before_any_request(serve, tmp_path):
    url, route = serve(make_video(10_000), name="d.mp4")
    proc = vidnb("get", url, url, cwd=tmp_path)
    assert proc.returncode == 2 and "is already listed" in proc.stderr and "Traceback" not in proc.stderr
    assert route.requests == []


def test_debug_shows_the_traceback(tmp_path):
    proc = vidnb("--debug", "get", "ftp://example.com/a.mp4", cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_help_has_examples(tmp_path):
    top = vidnb("--help", cwd=tmp_path)
    get = vidnb("get", "--help", cwd=tmp_path)
    assert top.returncode == get.returncode == 0
    assert "examples:" in top.stdout and "vidnb get" in top.stdout and "vidnb info" in top.stdout
    assert "--max-size" in get.stdout and "manifests (-i)" in get.stdout


def test_version(tmp_path):
    proc = vidnb("--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout == f"vidnb {__version__}\n"


def test_demo_still_works(tmp_path):
    proc = vidnb("demo", "-q", "--dest", "d", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "sha256 verified" in proc.stdout and (tmp_path / "d" / "sample.mp4").exists()


# ---------------------------------------------------------------- Ctrl-C


@pytest.mark.slow
def test_ctrl_c_exits_130_and_the_same_command_resumes(serve, tmp_path):
    data = make_video(3 * 1024 * 1024)
    url, route = serve(data, name="slow.mp4", rate=512 * 1024)
    part = _files.part_path(tmp_path / "slow.mp4")
    proc = spawn_python("-m", "vidnb", "get", url, cwd=tmp_path)
    wait_until(lambda: part.exists() and part.stat().st_size > 200_000, timeout=30,
               what="the download to get going", unless=lambda: proc.poll() is not None)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    kept = part.stat().st_size
    assert 0 < kept < len(data) and not (tmp_path / "slow.mp4").exists()
    assert _files.sidecar_path(tmp_path / "slow.mp4").exists()

    route.rate = None
    again = vidnb("get", url, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "slow.mp4").read_bytes() == data
    assert route.requests[-1]["Range"] == resume_from(kept) and route.full_bodies == 1
    assert again.stdout.strip().endswith("resumed")


# ---------------------------------------------------------------- info


def test_info_reports_what_the_server_says(serve, tmp_path):
    data = make_video(123_456)
    url, route = serve(data, name="clip.mp4")
    proc = vidnb("info", url, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = dict(line.split(None, 1) for line in proc.stdout.splitlines())
    assert rows["size"] == "120.6 KiB (123,456 bytes)"
    assert rows["type"] == "video/mp4" and rows["format"] == "mp4 (sniffed)" and rows["name"] == "clip.mp4"
    assert rows["ranges"].startswith("yes")
    assert rows["etag"] == route.etag
    assert route.requests[-1]["Range"] == "bytes=0-1023"
    assert not (tmp_path / "clip.mp4").exists()


@pytest.fixture
def head_refusing(server):
    """A route whose server answers HEAD with 405, recording each request's method."""
    data = make_video(77_777)
    route = Route(data)
    methods: list[str] = []
    path = f"/nohead{next(_ids)}/v.mp4"

    async def handle(request: web.Request) -> web.StreamResponse:
        methods.append(request.method)
        if request.method == "HEAD":
            return web.Response(status=405)
        return await serve_route(request, route)

    old = server.fallback
    server.fallback = lambda request: handle(request) if request.path == path else old(request)
    yield server.url(path), route, methods
    server.fallback = old


def test_info_falls_back_to_a_ranged_get_when_head_is_refused(head_refusing, tmp_path):
    url, route, methods = head_refusing
    proc = vidnb("info", url, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert methods == ["HEAD", "GET"] and route.requests[-1]["Range"] == "bytes=0-1023"
    assert "77,777 bytes" in proc.stdout and "refused with 405" in proc.stdout
    assert "mp4 (sniffed)" in proc.stdout


def test_info_says_when_it_is_not_a_video(serve, tmp_path):
    url, _ = serve(b"<!doctype html><html><body>Sign in</body></html>", name="v.mp4", content_type="text/html")
    proc = vidnb("info", url, cwd=tmp_path)
    assert proc.returncode == 0 and "not a video: an HTML page" in proc.stdout


def test_info_of_a_missing_url_is_one_line_and_exit_1(serve, tmp_path):
    url, _ = serve(statuses=[404] * 5, name="gone.mp4")
    proc = vidnb("info", url, cwd=tmp_path)
    assert proc.returncode == 1
    assert "HTTP 404" in one_line_error(proc.stderr)


def test_info_sends_the_headers_with_both_requests(serve, tmp_path):
    url, route = serve(make_video(10_000), name="i.mp4")
    proc = vidnb("info", url, "-H", "Authorization: Bearer xyz", "--timeout", "20", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(route.requests) == 2  # HEAD, then the ranged GET
    assert all(h["Authorization"] == "Bearer xyz" for h in route.requests)
    assert route.requests[1]["Range"] == "bytes=0-1023"


def test_info_timeout_and_bad_request_options(serve, tmp_path):
    # 10 bytes of the 1 KiB asked for, then nothing: the probe's read must time out.
    url, route = serve(make_video(50_000), name="stall.mp4", pause_after=10)
    try:
        slow = vidnb("info", url, "--timeout", "0.5", cwd=tmp_path)
    finally:
        route.pause_after = None
    assert slow.returncode == 1 and "pass a larger --timeout" in one_line_error(slow.stderr)
    for bad in (["-H", "nocolon"], ["--timeout", "-1"]):
        proc = vidnb("info", url, *bad, cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        one_line_error(proc.stderr)
    assert len(route.requests) == 2  # only the timed-out probe's HEAD and GET


# ---------------------------------------------------------------- sizes


@pytest.mark.parametrize(
    "text, size",
    [("1024", 1024), ("500M", 500 * 1024**2), ("2G", 2 * 1024**3), ("1.5GiB", 1536 * 1024**2),
     ("700MB", 700_000_000), ("10k", 10_240), ("3 KiB", 3072), ("12b", 12)],
)
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "M", "-5", "1.5.2G", "2X", "0"])
def test_bad_sizes(text):
    with pytest.raises(ValueError):
        parse_size(text)


def test_info_of_a_file_on_disk_prints_its_probe(tmp_path):
    from vidnb.demo import sample_path

    out = vidnb("info", str(sample_path()), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = dict(line.split(None, 1) for line in out.stdout.splitlines() if line.strip())
    assert rows["container"] == "mp4" and rows["video"].startswith("h264, 320x240")
    assert rows["audio"] == "aac" and rows["duration"] == "3.00 s" and rows["plays"].startswith("in browsers")
    missing = vidnb("info", "no-such-file.mp4", cwd=tmp_path)
    assert missing.returncode == 2 and "neither a file on disk nor" in missing.stderr


def test_no_remux_keeps_an_hls_stream_as_served(serve, tmp_path):
    # A one-segment stream of MPEG-TS-looking bytes: --no-remux saves them as they are.
    segment = bytes([0x47]) + bytes(187) * 1 + bytes([0x47]) + bytes(187)
    seg_url, _ = serve(segment, name="s0.ts", content_type="video/mp2t")
    playlist = f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n{seg_url}\n#EXT-X-ENDLIST\n".encode()
    url, _ = serve(playlist, name="talk.m3u8", content_type="application/vnd.apple.mpegurl")
    out = vidnb("get", url, "-o", str(tmp_path), "--no-remux", "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "talk.ts").read_bytes() == segment, (out.stdout, sorted(p.name for p in tmp_path.iterdir()))
