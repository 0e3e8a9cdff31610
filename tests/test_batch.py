"""download_many: manifests, checks before starting, failures, re-runs, resume, concurrency, progress."""

from __future__ import annotations

import asyncio
import itertools
import os

import pytest
from aiohttp import web
from helpers import Route, make_video, resume_from, serve_many, serve_route, sha, until, videos

import vidnb
from vidnb import _files

FAST = vidnb.Retry(total=3, backoff=0.01)
_ids = itertools.count()


class Counting:
    """Routes under one prefix that count simultaneous requests and the client ports they came from."""

    def __init__(self, server, prefix: str) -> None:
        self.server, self.prefix = server, prefix
        self.routes: dict[str, Route] = {}
        self.in_flight = 0
        self.peak = 0
        self.requests = 0
        self.ports: set[int] = set()

    def add(self, name: str, route: Route) -> str:
        self.routes[f"{self.prefix}/{name}"] = route
        return self.server.url(f"{self.prefix}/{name}")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        self.ports.add(request.transport.get_extra_info("peername")[1])  # type: ignore[union-attr]
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            return await serve_route(request, self.routes[request.path])
        finally:
            self.in_flight -= 1


@pytest.fixture
def counting(server):
    c = Counting(server, f"/count{next(_ids)}")
    old = server.fallback
    server.fallback = lambda request: c.handle(request) if request.path in c.routes else old(request)
    yield c
    server.fallback = old


# ---------------------------------------------------------------- manifests


def test_text_manifest_skips_comments_and_blank_lines_and_reads_names(tmp_path):
    manifest = tmp_path / "list.txt"
    manifest.write_text(
        "# my videos\n\nhttps://example.com/a.mp4\n   \n  # indented comment\n"
        "https://example.com/b.mp4   second clip.mp4\nhttps://example.com/c.mp4\t c.webm\n"
    )
    assert vidnb.read_manifest(manifest) == [
        ("https://example.com/a.mp4", None, None, "list.txt line 3"),
        ("https://example.com/b.mp4", "second clip.mp4", None, "list.txt line 6"),
        ("https://example.com/c.mp4", "c.webm", None, "list.txt line 7"),
    ]


def test_csv_manifest_reads_url_filename_and_sha256_columns(tmp_path):
    manifest = tmp_path / "list.csv"
    manifest.write_text(
        "\ufeff# exported from a spreadsheet\nURL, Filename ,sha256,notes\n"
        "https://example.com/a.mp4,intro.mp4,,first\n,,,\n# https://example.com/skip.mp4,x.mp4\n"
        f"https://example.com/b.mp4,,{'ab' * 32},\n",
        encoding="utf-8",
    )
    assert vidnb.read_manifest(manifest) == [
        ("https://example.com/a.mp4", "intro.mp4", None, "list.csv line 3"),
        ("https://example.com/b.mp4", None, "ab" * 32, "list.csv line 6"),
    ]


def test_csv_is_recognised_by_its_header_whatever_the_suffix(tmp_path):
    manifest = tmp_path / "list.manifest"
    manifest.write_text("url,filename\nhttps://example.com/a.mp4,a-local.mp4\n")
    assert vidnb.read_manifest(manifest)[0][:2] == ("https://example.com/a.mp4", "a-local.mp4")


def test_csv_without_a_url_column_is_refused(tmp_path):
    manifest = tmp_path / "list.csv"
    manifest.write_text("link,filename\nhttps://example.com/a.mp4,a.mp4\n")
    with pytest.raises(ValueError, match="no 'url' column"):
        vidnb.read_manifest(manifest)


def test_missing_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        vidnb.read_manifest(tmp_path / "nope.txt")


async def test_manifest_path_downloads_every_listed_file(serve, tmp_path):
    datas = videos(3)
    urls, _ = serve_many(serve, datas)
    manifest = tmp_path / "list.csv"
    manifest.write_text(
        "url,filename,sha256\n"
        f"{urls[0]},first.mp4,{sha(datas[0])}\n# {urls[1]},skipped.mp4,\n{urls[1]},,\n{urls[2]},sub/third.mp4,\n"
    )
    out = tmp_path / "out"
    batch = await vidnb.download_many(manifest, out, progress=False)
    assert [o.source for o in batch] == ["list.csv line 2", "list.csv line 4", "list.csv line 5"]
    assert (out / "first.mp4").read_bytes() == datas[0]
    assert (out / "v1.mp4").read_bytes() == datas[1]
    assert (out / "sub" / "third.mp4").read_bytes() == datas[2]
    assert batch[0].result.sha256 == sha(datas[0])


# ---------------------------------------------------------------- checks before starting


async def test_duplicate_urls_are_refused_before_any_request(serve, tmp_path):
    urls, routes = serve_many(serve, videos(2))
    with pytest.raises(ValueError, match=r"item 2: .* is already listed \(item 0\)"):
        await vidnb.download_many([urls[0], urls[1], urls[0]], tmp_path / "out", progress=False)
    assert [len(r.requests) for r in routes] == [0, 0]
    assert not (tmp_path / "out").exists()


async def test_two_items_for_one_file_are_refused_before_any_request(serve, tmp_path):
    data = make_video(10_000)
    (u1, r1), (u2, r2) = serve(data, name="clip.mp4"), serve(data, name="clip.mp4")
    u3, r3 = serve(data, name="other.mp4")
    items = [u1, u2, (u3, "clip.mp4")]
    with pytest.raises(ValueError, match=r"^2 problems") as info:
        await vidnb.download_many(items, tmp_path, progress=False)
    assert "item 1" in str(info.value) and "item 2" in str(info.value) and "own filename" in str(info.value)
    assert r1.requests == r2.requests == r3.requests == []


async def test_bad_urls_and_escaping_filenames_are_listed_together(tmp_path):
    items = ["ftp://example.com/a.mp4", ("https://example.com/b.mp4", "../b.mp4"), "https://example.com/c.mp4"]
    with pytest.raises(ValueError) as info:
        await vidnb.download_many(items, tmp_path, progress=False)
    text = str(info.value)
    assert text.startswith("2 problems") and "item 0" in text and "item 1" in text and "item 2" not in text


def test_batch_options_are_the_download_options_that_apply_to_every_item():
    from vidnb._many import BatchOptions

    batch, one = BatchOptions.__annotations__, vidnb.DownloadOptions.__annotations__
    assert set(batch) == set(one) - {"progress", "session", "sha256"}
    same_type = [getattr(batch[k], "__forward_arg__", None) == getattr(one[k], "__forward_arg__", None) for k in batch]
    assert all(same_type)


async def test_bad_option_values_are_refused_before_any_request(serve, tmp_path):
    url, route = serve(make_video(10_000))
    with pytest.raises(ValueError, match="retries"):
        await vidnb.download_many([url], tmp_path / "out", retries=-1, progress=False)
    assert route.requests == [] and not (tmp_path / "out").exists()


async def test_options_are_checked_before_starting(tmp_path):
    with pytest.raises(TypeError, match="unexpected option"):
        await vidnb.download_many(["https://example.com/a.mp4"], tmp_path, colour="red")
    with pytest.raises(TypeError, match="sha256"):
        await vidnb.download_many(["https://example.com/a.mp4"], tmp_path, sha256="ab" * 32)
    with pytest.raises(ValueError, match="concurrency"):
        await vidnb.download_many(["https://example.com/a.mp4"], tmp_path, concurrency=0)


# ---------------------------------------------------------------- outcomes


async def test_one_failure_does_not_stop_the_others(serve, tmp_path):
    datas = videos(4)
    urls, _ = serve_many(serve, datas)
    missing, _ = serve(statuses=[404], name="gone.mp4")
    items = [urls[0], urls[1], missing, urls[2], urls[3]]
    batch = await vidnb.download_many(items, tmp_path, concurrency=2, progress=False)
    assert [o.url for o in batch] == items  # input order, whatever the completion order
    assert len(batch.ok) == 4 and [o.url for o in batch.failed] == [missing]
    err = batch.failed[0].error
    assert isinstance(err, vidnb.HTTPStatusError) and err.status == 404
    for i, data in enumerate(datas):
        assert (tmp_path / f"v{i}.mp4").read_bytes() == data
    assert repr(batch).startswith("<BatchResult 4 ok, 1 failed, ") and repr(batch).endswith(" s>")
    assert batch.downloaded_bytes == sum(map(len, datas))


async def test_raise_on_error_raises_after_every_item_finished(serve, tmp_path):
    datas = videos(3)
    urls, _ = serve_many(serve, datas)
    missing, _ = serve(statuses=[404], name="gone.mp4")
    with pytest.raises(vidnb.BatchError) as info:
        await vidnb.download_many([missing, *urls], tmp_path, concurrency=1, raise_on_error=True, progress=False)
    err = info.value
    assert isinstance(err, vidnb.VidnbError)
    assert "1 of 4 downloads failed" in str(err) and missing in str(err)
    assert [o.url for o in err.failed] == [missing] and len(err.result.ok) == 3
    # With one worker the failing item came first: the others still ran.
    assert all((tmp_path / f"v{i}.mp4").read_bytes() == d for i, d in enumerate(datas))


async def test_on_item_is_called_once_per_item(serve, tmp_path):
    urls, _ = serve_many(serve, videos(5))
    seen = []
    batch = await vidnb.download_many(urls, tmp_path, concurrency=3, progress=False, on_item=seen.append)
    assert sorted(o.index for o in seen) == [0, 1, 2, 3, 4]
    assert all(o.ok for o in seen) and len(batch) == 5


async def test_a_raising_on_item_is_logged_once_and_the_batch_goes_on(serve, tmp_path, caplog):
    datas = videos(5)
    urls, _ = serve_many(serve, datas)
    calls = []

    def broken(outcome: vidnb.ItemOutcome) -> None:
        calls.append(outcome)
        raise RuntimeError("bug in the callback")

    batch = await vidnb.download_many(urls, tmp_path, concurrency=2, progress=False, on_item=broken)
    assert len(batch.ok) == 5
    for i, data in enumerate(datas):
        assert (tmp_path / f"v{i}.mp4").read_bytes() == data
    # Like a raising progress callable: logged once, with its error, and not called again.
    assert len(calls) == 1
    logged = [r for r in caplog.records if "on_item" in r.getMessage()]
    assert len(logged) == 1 and "bug in the callback" in caplog.text


# ---------------------------------------------------------------- re-runs and resume


async def test_rerun_skips_finished_files_without_any_request(serve, tmp_path):
    datas = videos(4)
    urls, routes = serve_many(serve, datas)
    first = await vidnb.download_many(urls, tmp_path, progress=False)
    assert [r.full_bodies for r in routes] == [1, 1, 1, 1]
    again = await vidnb.download_many(urls, tmp_path, progress=False)
    assert all(o.result.skipped for o in again) and len(again.failed) == 0
    assert [len(r.requests) for r in routes] == [1, 1, 1, 1]  # not even a HEAD
    assert "(4 already there)" in repr(again) and again.downloaded_bytes == 0
    assert [o.path for o in again] == [o.path for o in first]


async def test_partial_files_of_a_crashed_run_are_resumed(serve, tmp_path):
    datas = videos(3, size=600_000)
    urls, routes = serve_many(serve, datas, drops={1: 250_000})
    crashed = await vidnb.download_many(urls, tmp_path, retries=0, progress=False)
    assert len(crashed.failed) == 3
    assert all(isinstance(o.error, vidnb.IncompleteDownloadError) for o in crashed)
    kept = []
    for i in range(3):
        dest = tmp_path / f"v{i}.mp4"
        # At most what was sent before the cut (what reached the disk depends on buffering).
        kept.append(_files.part_path(dest).stat().st_size)
        assert 0 < kept[-1] <= 250_000 and _files.sidecar_path(dest).exists()
    resumed = await vidnb.download_many(urls, tmp_path, progress=False)
    assert len(resumed.ok) == 3 and all(o.result.resumed for o in resumed)
    for i, (data, route) in enumerate(zip(datas, routes, strict=True)):
        assert (tmp_path / f"v{i}.mp4").read_bytes() == data
        assert route.requests[1]["Range"] == resume_from(kept[i]) and route.full_bodies == 1
    assert sorted(os.listdir(tmp_path)) == ["v0.mp4", "v1.mp4", "v2.mp4"]


async def test_cancelling_the_batch_keeps_partial_files_resumable(serve, tmp_path):
    datas = videos(4, size=400_000)
    urls, routes = serve_many(serve, datas, rate=400_000)
    task = asyncio.ensure_future(vidnb.download_many(urls, tmp_path, concurrency=2, progress=False))
    parts = [_files.part_path(tmp_path / f"v{i}.mp4") for i in range(2)]
    await until(lambda: all(p.exists() and p.stat().st_size > 50_000 for p in parts), timeout=20,
                what="the downloads to start", unless=task.done)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    kept = [p.stat().st_size for p in parts]
    assert all(0 < k < 400_000 for k in kept)
    assert not any(name.endswith(".lock") for name in os.listdir(tmp_path))
    for r in routes:
        r.rate = None
    batch = await vidnb.download_many(urls, tmp_path, progress=False)
    assert len(batch.ok) == 4
    for i, data in enumerate(datas):
        assert (tmp_path / f"v{i}.mp4").read_bytes() == data
    assert [routes[i].requests[-1]["Range"] for i in range(2)] == [resume_from(k) for k in kept]


# ---------------------------------------------------------------- names the server chooses


async def test_server_names_that_collide_are_reported_not_passed_off(serve, tmp_path):
    a, b = make_video(30_000, seed=1), make_video(30_000, seed=2)
    # No extension in the URLs: the server's Content-Disposition names the files.
    ua, _ = serve(a, name="download", content_disposition='attachment; filename="same.mp4"')
    ub, _ = serve(b, name="download", content_disposition='attachment; filename="same.mp4"')
    batch = await vidnb.download_many([ua, ub], tmp_path, concurrency=1, progress=False)
    assert len(batch.ok) == 1 and len(batch.failed) == 1
    assert isinstance(batch.failed[0].error, vidnb.DestinationError)
    assert "same.mp4" in str(batch.failed[0].error) and "own filename" in str(batch.failed[0].error)
    assert (tmp_path / "same.mp4").read_bytes() == a


async def test_names_server_uses_content_disposition(serve, tmp_path):
    data = make_video(20_000)
    url, _ = serve(data, name="x.mp4", content_disposition='attachment; filename="Real Title.mp4"')
    batch = await vidnb.download_many([url], tmp_path, names="server", progress=False)
    assert batch[0].path == tmp_path / "Real Title.mp4" and batch[0].path.read_bytes() == data
    url_named = await vidnb.download_many([url], tmp_path / "by-url", progress=False)
    assert url_named[0].path == tmp_path / "by-url" / "x.mp4"


# ---------------------------------------------------------------- concurrency and connections


async def test_concurrency_bound_is_respected_and_reached(counting, tmp_path):
    datas = videos(10, size=60_000)
    urls = [counting.add(f"c{i}.mp4", Route(d, rate=300_000)) for i, d in enumerate(datas)]
    batch = await vidnb.download_many(urls, tmp_path, concurrency=3, progress=False)
    assert len(batch.ok) == 10
    assert counting.peak == 3


async def test_one_session_reuses_connections(counting, tmp_path):
    datas = videos(24, size=20_000)
    urls = [counting.add(f"s{i}.mp4", Route(d)) for i, d in enumerate(datas)]
    batch = await vidnb.download_many(urls, tmp_path, concurrency=4, progress=False)
    assert len(batch.ok) == 24 and counting.requests == 24
    assert len(counting.ports) <= 4


# ---------------------------------------------------------------- progress


async def test_progress_callable_gets_every_file(serve, tmp_path):
    urls, _ = serve_many(serve, videos(4))
    events: list[vidnb.ProgressEvent] = []
    await vidnb.download_many(urls, tmp_path, concurrency=2, progress=events.append)
    done = {e.name: e for e in events if e.state == "done"}
    assert sorted(done) == ["v0.mp4", "v1.mp4", "v2.mp4", "v3.mp4"]
    assert all(e.done == e.total for e in done.values())


async def test_file_bars_never_outnumber_the_workers(serve, tmp_path, capsys):
    from tqdm.auto import tqdm

    datas = videos(9, size=120_000)
    urls, _ = serve_many(serve, datas, rate=600_000)
    most = 0

    def count(_outcome) -> None:
        nonlocal most
        most = max(most, len(tqdm._instances))

    task = asyncio.ensure_future(
        vidnb.download_many(urls, tmp_path, concurrency=3, progress=True, on_item=count)
    )
    while not task.done():
        most = max(most, len(tqdm._instances))
        await asyncio.sleep(0.02)
    batch = await task
    assert len(batch.ok) == 9
    # The overall bar plus one per worker, reused from file to file; all closed at the end.
    assert 2 <= most <= 1 + 3
    assert len(tqdm._instances) == 0
    err = capsys.readouterr().err
    assert "9/9" in err and "file" in err


def test_sync_variant_works_from_plain_code(serve, tmp_path):
    urls, _ = serve_many(serve, videos(2))
    batch = vidnb.download_many_sync(urls, tmp_path, progress=False)
    assert len(batch.ok) == 2 and isinstance(batch, vidnb.BatchResult)
