"""Destinations on object storage: memory:// for the quick cases, a real S3 API (moto's server on
127.0.0.1, in a process of its own) for uploads, crashes, listings and a 2-worker Dask cluster."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from helpers import make_video, run_python, serve_many, sha, spawn_python, until, videos, wait_until
from s3_server import PART_MIN, S3_ENV, S3Proxy, S3Server

import vidnb
from vidnb._storage import is_folder_url, join_url, local_path, protocol_of, remote_url

fsspec = pytest.importorskip("fsspec")


@pytest.fixture(scope="module")
def s3():
    pytest.importorskip("s3fs")
    pytest.importorskip("moto")
    env = pytest.MonkeyPatch()
    for name, value in S3_ENV.items():  # also what subprocesses and Dask workers inherit
        env.setenv(name, value)
    with S3Server() as server:
        yield server
    env.undo()


@pytest.fixture
def bucket(s3) -> str:
    return s3.bucket()


def memory_url(name: str = "") -> str:
    return f"memory://vidnb-{uuid.uuid4().hex[:10]}/{name}"


def staged_files(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "vidnb-staging").rglob("*") if p.is_file()]


def shape(batch: vidnb.BatchResult, folder: Path | str) -> list[tuple]:
    """What a batch says about each item, with paths relative to its folder (local or a URL)."""

    def rel(path: Path | str | None) -> str | None:
        if path is None:
            return None
        return str(path)[len(str(folder).rstrip("/")) + 1 :] if isinstance(path, str) else str(path.relative_to(folder))

    out = []
    for o in batch:
        err = None if o.error is None else (type(o.error), getattr(o.error, "status", None))
        res = None if o.result is None else (rel(o.result.path), o.result.size, o.result.format, o.result.sha256,
                                             o.result.skipped)  # fmt: skip
        out.append((o.index, o.url, rel(o.path), res, err, o.source))
    return out


# ---------------------------------------------------------------- URLs and memory://


def test_fsspec_urls_are_told_from_local_paths():
    assert remote_url("s3://bucket/videos/") == "s3://bucket/videos/"
    assert remote_url("simplecache::s3://b/k.mp4") == "simplecache::s3://b/k.mp4"
    assert remote_url("videos/clip.mp4") is None and remote_url(Path("s3://b/k")) is None
    assert remote_url("file:///tmp/a.mp4") is None and local_path("file:///tmp/a.mp4") == "/tmp/a.mp4"
    assert remote_url("C://x") is None  # one letter: a Windows drive, not a protocol
    assert protocol_of("simplecache::gs://b/k") == "gs"
    assert is_folder_url("s3://bucket") and is_folder_url("s3://b/v/") and not is_folder_url("s3://b/v.mp4")
    assert join_url("s3://b/v/", "sub/a.mp4") == "s3://b/v/sub/a.mp4"


def test_import_vidnb_loads_no_fsspec():
    out = run_python("import sys, vidnb; print(sorted({m.split('.')[0] for m in sys.modules} & {'fsspec', 's3fs'}))")
    assert out.stdout.strip() == "[]", out.stderr


async def test_a_download_to_memory_lands_whole_and_leaves_nothing_local(serve, tmp_path):
    data = make_video(300_000)
    url, _ = serve(data, name="clip.mp4")
    dest = memory_url("videos/clip.mp4")
    result = await vidnb.download(url, dest, tmp_dir=tmp_path, progress=False, sha256=sha(data))
    assert result.path == dest and isinstance(result.path, str)
    assert (result.size, result.format, result.sha256, result.skipped) == (len(data), "mp4", sha(data), False)
    assert fsspec.filesystem("memory").cat_file(dest) == data
    assert staged_files(tmp_path) == []  # the local copy goes once the object is whole
    names = fsspec.filesystem("memory").ls(dest.rpartition("/")[0], detail=False)
    assert [n.rpartition("/")[2] for n in names] == ["clip.mp4"]  # no temporary object left beside it


async def test_an_existing_object_is_skipped_without_a_request_and_overwrite_replaces_it(serve, tmp_path):
    old, new = make_video(200_000, seed=1), make_video(250_000, seed=2)
    url, route = serve(old, name="clip.mp4")
    dest = memory_url("clip.mp4")
    await vidnb.download(url, dest, tmp_dir=tmp_path, progress=False)
    again = await vidnb.download(url, dest, tmp_dir=tmp_path, progress=False, sha256=sha(old))
    assert again.skipped and again.size == len(old) and again.sha256 == sha(old)
    with pytest.raises(vidnb.ChecksumError, match="overwrite=True"):
        await vidnb.download(url, dest, tmp_dir=tmp_path, progress=False, sha256=sha(new))
    assert len(route.requests) == 1  # neither the skip nor the refusal asked the video server
    route.data, route.etag = new, '"v2"'
    replaced = await vidnb.download(url, dest, tmp_dir=tmp_path, progress=False, overwrite=True)
    assert not replaced.skipped and replaced.size == len(new)
    assert fsspec.filesystem("memory").cat_file(dest) == new and len(route.requests) == 2


async def test_a_folder_url_takes_the_servers_name_and_file_urls_are_the_disk(serve, tmp_path):
    data = make_video(100_000)
    url, _ = serve(data, name="download", content_disposition='attachment; filename="talk.mp4"')
    folder = memory_url("videos/")
    result = await vidnb.download(url, folder, tmp_dir=tmp_path, progress=False)
    assert result.path == folder + "talk.mp4"
    assert fsspec.filesystem("memory").cat_file(folder + "talk.mp4") == data
    local = await vidnb.download(url, f"file://{tmp_path}/disk/", progress=False)
    assert local.path == tmp_path / "disk" / "talk.mp4" and local.path.read_bytes() == data


async def test_an_interrupted_download_resumes_from_the_local_part(serve, tmp_path):
    data = make_video(2_000_000)
    url, route = serve(data, name="clip.mp4", drops={1: 1_200_000})
    dest = memory_url("clip.mp4")
    with pytest.raises(vidnb.IncompleteDownloadError):
        await vidnb.download(url, dest, tmp_dir=tmp_path, progress=False, retries=0)
    assert not fsspec.filesystem("memory").exists(dest)
    assert [p.name for p in staged_files(tmp_path) if p.suffix == ".part"] == ["clip.mp4.part"]
    result = await vidnb.download(url, dest, tmp_dir=tmp_path, progress=False)
    assert result.resumed and "Range" in route.requests[1]
    assert fsspec.filesystem("memory").cat_file(dest) == data and staged_files(tmp_path) == []


async def test_a_batch_into_memory_has_the_outcomes_of_a_batch_on_disk(serve, tmp_path):
    datas = videos(5)
    urls, _ = serve_many(serve, datas)
    missing, _ = serve(statuses=[404] * 10, name="gone.mp4")
    items = [*urls[:2], missing, (urls[2], "sub/named.mp4", sha(datas[2])), *urls[3:]]
    folder = memory_url("batch/")
    local = await vidnb.download_many(items, tmp_path / "disk", progress=False)
    remote = await vidnb.download_many(items, folder, progress=False, tmp_dir=tmp_path / "tmp")
    assert shape(remote, folder) == shape(local, tmp_path / "disk")
    assert fsspec.filesystem("memory").cat_file(folder + "sub/named.mp4") == datas[2]


def test_without_s3fs_the_error_says_what_to_install(serve):
    url, route = serve(make_video(1000), name="clip.mp4")
    code = (
        "import sys; sys.modules['s3fs'] = None\n"  # as if it were not installed
        "import vidnb\n"
        "try:\n"
        "    vidnb.download_sync(sys.argv[1], 's3://bucket/clip.mp4', progress=False)\n"
        "except vidnb.MissingDependencyError as exc:\n"
        "    print(type(exc).__name__, isinstance(exc, ImportError), exc)\n"
    )
    out = run_python(code, url)
    assert out.stdout.startswith("MissingDependencyError True s3fs is not installed"), out.stderr
    assert "pip install 'vidnb[s3]'" in out.stdout
    assert route.requests == []  # refused before any request to the video server


# ---------------------------------------------------------------- S3 (moto)


async def test_a_small_file_is_one_put_with_its_sha256_in_the_metadata(s3, bucket, serve, tmp_path):
    data = make_video(400_000)
    url, _ = serve(data, name="clip.mp4")
    with S3Proxy(s3.port) as proxy:
        opts = {**s3.options, "endpoint_url": proxy.endpoint}
        result = await vidnb.download(url, f"s3://{bucket}/v/clip.mp4", storage_options=opts, tmp_dir=tmp_path,
                                      progress=False)  # fmt: skip
    assert result.path == f"s3://{bucket}/v/clip.mp4" and not result.skipped
    assert s3.body(bucket, "v/clip.mp4") == data
    assert s3.metadata(bucket, "v/clip.mp4")["sha256"] == sha(data)
    assert proxy.count("PUT") == 1 and proxy.count("POST") == 0  # one PutObject, no multipart
    assert staged_files(tmp_path) == []


async def test_a_large_file_is_a_multipart_upload_completed_once_every_part_is_in(
    s3, bucket, serve, tmp_path, monkeypatch
):
    monkeypatch.setenv("VIDNB_S3_PART_SIZE", str(PART_MIN))
    data = make_video(5 * PART_MIN + 1234)
    url, _ = serve(data, name="big.mp4")
    with S3Proxy(s3.port) as proxy:
        opts = {**s3.options, "endpoint_url": proxy.endpoint}
        await vidnb.download(url, f"s3://{bucket}/big.mp4", storage_options=opts, tmp_dir=tmp_path, progress=False)
    assert s3.body(bucket, "big.mp4") == data
    etag = s3.client.head_object(Bucket=bucket, Key="big.mp4")["ETag"]
    assert etag.strip('"').endswith("-6")  # 6 parts of 1 MiB
    assert proxy.count("PUT", "partNumber=") == 6 and proxy.count("POST", "uploadId=") == 1  # one Complete
    assert s3.metadata(bucket, "big.mp4")["sha256"] == sha(data) and s3.uploads(bucket) == []


async def test_an_existing_object_is_skipped_with_one_head_and_no_video_request(s3, bucket, serve, tmp_path):
    data = make_video(300_000)
    url, route = serve(data, name="clip.mp4")
    dest = f"s3://{bucket}/clip.mp4"
    await vidnb.download(url, dest, storage_options=s3.options, tmp_dir=tmp_path, progress=False)
    with S3Proxy(s3.port) as proxy:
        opts = {**s3.options, "endpoint_url": proxy.endpoint}
        again = await vidnb.download(url, dest, storage_options=opts, tmp_dir=tmp_path, progress=False,
                                     sha256=sha(data))  # fmt: skip
    assert again.skipped and again.sha256 == sha(data) and again.size == len(data)
    assert len(route.requests) == 1
    assert proxy.requests == [("HEAD", f"/{bucket}/clip.mp4")]  # the sha256 came from the metadata


async def test_overwrite_keeps_the_old_object_until_the_new_one_is_whole(s3, bucket, serve, tmp_path):
    old, new = make_video(300_000, seed=1), make_video(900_000, seed=2)
    url, route = serve(old, name="clip.mp4")
    dest = f"s3://{bucket}/clip.mp4"
    await vidnb.download(url, dest, storage_options=s3.options, tmp_dir=tmp_path, progress=False)
    route.data, route.etag, route.pause_after = new, '"v2"', 500_000
    import asyncio

    task = asyncio.ensure_future(vidnb.download(url, dest, storage_options=s3.options, tmp_dir=tmp_path,
                                                progress=False, overwrite=True))  # fmt: skip
    await until(lambda: route.sent >= len(old) + 500_000, unless=task.done, what="half of the new body")
    assert s3.body(bucket, "clip.mp4") == old
    route.pause_after = None
    result = await task
    assert result.size == len(new) and s3.body(bucket, "clip.mp4") == new


_UPLOAD = (
    "import sys, vidnb\n"
    "url, dest, endpoint, tmp = sys.argv[1:5]\n"
    "opts = {'endpoint_url': endpoint, 'key': 'testing', 'secret': 'testing'}\n"
    "vidnb.download_sync(url, dest, storage_options=opts, tmp_dir=tmp, progress=False, overwrite=True)\n"
)


async def test_a_worker_killed_during_upload_leaves_the_old_object_and_the_rerun_cleans_up(
    s3, bucket, serve, tmp_path, monkeypatch
):
    monkeypatch.setenv("VIDNB_S3_PART_SIZE", str(PART_MIN))
    old, new = make_video(200_000, seed=1), make_video(8 * PART_MIN, seed=2)
    s3.client.put_object(Bucket=bucket, Key="clip.mp4", Body=old)
    url, route = serve(new, name="clip.mp4")
    with S3Proxy(s3.port, hold_after=3 * PART_MIN) as proxy:
        proc = spawn_python("-c", _UPLOAD, url, f"s3://{bucket}/clip.mp4", proxy.endpoint, tmp_path)
        try:
            wait_until(proxy.holding.is_set, unless=lambda: proc.poll() is not None, what="the upload under way")
            wait_until(lambda: s3.uploads(bucket), what="the multipart upload to open")
        finally:
            proc.kill()  # SIGKILL: no cleanup runs
            proc.communicate()
    assert s3.body(bucket, "clip.mp4") == old  # never a partial object
    assert s3.uploads(bucket) == ["clip.mp4"]  # what the kill left: an open upload
    assert len(route.requests) == 1
    result = await vidnb.download(url, f"s3://{bucket}/clip.mp4", storage_options=s3.options, tmp_dir=tmp_path,
                                  progress=False, overwrite=True)  # fmt: skip
    assert s3.body(bucket, "clip.mp4") == new and result.size == len(new)
    assert s3.uploads(bucket) == []  # the crashed upload was aborted
    assert staged_files(tmp_path) == []


async def test_a_bad_bucket_is_a_destination_error_and_the_rerun_uploads_without_downloading(s3, serve, tmp_path):
    data = make_video(300_000)
    url, route = serve(data, name="clip.mp4")
    name = f"vidnb-later-{uuid.uuid4().hex[:8]}"
    with pytest.raises(vidnb.DestinationError, match="does not exist"):
        await vidnb.download(url, f"s3://{name}/clip.mp4", storage_options=s3.options, tmp_dir=tmp_path,
                             progress=False)  # fmt: skip
    assert [p.name for p in staged_files(tmp_path)] == ["clip.mp4"]  # verified, kept for the next run
    s3.client.create_bucket(Bucket=name)
    assert s3.keys(name) == {}  # nothing partial was left
    result = await vidnb.download(url, f"s3://{name}/clip.mp4", storage_options=s3.options, tmp_dir=tmp_path,
                                  progress=False)  # fmt: skip
    assert result.resumed and not result.skipped and s3.body(name, "clip.mp4") == data
    assert len(route.requests) == 1  # the staged file was uploaded, not fetched again


async def test_a_rerun_of_a_batch_makes_one_listing_and_no_video_request(s3, bucket, serve, tmp_path):
    datas = videos(6)
    urls, routes = serve_many(serve, datas)
    missing, _ = serve(statuses=[404] * 10, name="gone.mp4")
    items = [*urls[:2], missing, (urls[2], "sub/named.mp4", sha(datas[2])), *urls[3:]]
    folder = f"s3://{bucket}/videos/"
    local = await vidnb.download_many(items, tmp_path / "disk", progress=False)
    remote = await vidnb.download_many(items, folder, storage_options=s3.options, tmp_dir=tmp_path / "t",
                                       progress=False)  # fmt: skip
    assert shape(remote, folder) == shape(local, tmp_path / "disk")
    assert s3.keys(bucket) == {f"videos/v{i}.mp4" if i != 2 else "videos/sub/named.mp4": len(d)
                               for i, d in enumerate(datas)}  # fmt: skip
    with S3Proxy(s3.port) as proxy:
        opts = {**s3.options, "endpoint_url": proxy.endpoint}
        again = await vidnb.download_many(items, folder, storage_options=opts, tmp_dir=tmp_path / "t",
                                          progress=False)  # fmt: skip
    assert [o.result.skipped for o in again.ok] == [True] * 6 and len(again.failed) == 1
    assert [len(r.requests) for r in routes] == [2] * 6  # once for the disk, once for the bucket
    # One listing of the folder, one of its open uploads, and the HEAD of the item with a sha256.
    assert sorted(m for m, _ in proxy.requests) == ["GET", "GET", "HEAD"], proxy.requests
    assert proxy.count("GET", "list-type=2") == 1 and proxy.count("GET", "uploads") == 1


async def test_probe_and_preview_fetch_what_they_need_from_the_bucket(s3, bucket, serve, tmp_path):
    pytest.importorskip("av")
    data = vidnb.demo.sample_path("sample.mp4").read_bytes()
    url, _ = serve(data, name="sample.mp4")
    result = await vidnb.download(url, f"s3://{bucket}/sample.mp4", storage_options=s3.options, tmp_dir=tmp_path,
                                  progress=False)  # fmt: skip
    info = result.info
    assert info is not None and info.container == "mp4" and info.size == len(data) and info.duration > 1
    from vidnb.widgets import PreviewNote

    shown = vidnb.preview(result)
    assert type(shown).__name__ == "Video" and shown.value == data
    note = vidnb.preview(result, embed_max_bytes=1000)
    assert isinstance(note, PreviewNote) and "object storage" in note.text


# ---------------------------------------------------------------- Dask


async def test_a_two_worker_cluster_writes_the_batch_into_the_bucket(s3, bucket, serve, tmp_path):
    distributed = pytest.importorskip("distributed")
    datas = videos(9)
    urls, routes = serve_many(serve, datas)
    missing, _ = serve(statuses=[404] * 10, name="gone.mp4")
    items = [*urls[:4], missing, (urls[4], "sub/named.mp4", sha(datas[4])), *urls[5:]]
    folder = f"s3://{bucket}/videos/"
    local = await vidnb.download_many(items, tmp_path / "disk", progress=False)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = distributed.Client(cluster)
    try:
        with pytest.raises(vidnb.DestinationError, match="2 of 2 Dask workers cannot write"):
            await vidnb.download_many(items, f"s3://vidnb-none-{uuid.uuid4().hex[:8]}/v/", client=client,
                                      storage_options=s3.options, progress=False)  # fmt: skip
        assert [len(r.requests) for r in routes] == [1] * 9  # the check stopped it before any download
        remote = await vidnb.download_many(items, folder, client=client, partition_size=3, concurrency=2,
                                           storage_options=s3.options, progress=False)  # fmt: skip
        assert shape(remote, folder) == shape(local, tmp_path / "disk")
        for i, data in enumerate(datas):
            assert s3.body(bucket, "videos/" + ("sub/named.mp4" if i == 4 else f"v{i}.mp4")) == data
        again = await vidnb.download_many(items, folder, client=client, partition_size=3,
                                          storage_options=s3.options, progress=False)  # fmt: skip
        assert all(o.result.skipped for o in again.ok) and again.downloaded_bytes == 0
        assert [len(r.requests) for r in routes] == [2] * 9
        assert [k for k in s3.keys(bucket) if ".vidnb-" in k] == []  # the workers' probe objects are gone
    finally:
        client.close()
        cluster.close()
