"""The bandwidth limit, ``max_rate=``: one limiter paces every connection that shares it.

The pacing itself is tested on a clock the test moves (no sleeping, no timing): what a
reader waits, that readers wait behind each other's bytes, that a pause does not bank a
burst, and that over any second no more than the rate plus a bucket goes through.
Against the real server, each front door is checked with a bound that a slow machine can
only make easier: N bytes at R bytes per second cannot finish in less than (N - bucket) / R.
"""

from __future__ import annotations

import gc
import pickle
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from helpers import leftovers, make_video, run_cli, serve_many, videos

import vidnb
from vidnb import _options, _rate
from vidnb._rate import BURST_SECONDS, RateLimiter

MiB = 1 << 20


class FakeTime:
    """A clock that moves only when a reader waits on it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def limiter(rate: int, t: FakeTime) -> RateLimiter:
    return RateLimiter(rate, clock=t.clock, sleep=t.sleep)


def shortest(n: int, rate: int) -> float:
    """The least time ``n`` bytes can take at ``rate``: the bucket starts full."""
    return (n - rate * BURST_SECONDS) / rate


# --------------------------------------------------------------------------- the pacing, on a moved clock


def test_a_reader_waits_for_what_the_bucket_does_not_hold():
    t = FakeTime()
    lim = limiter(1_000_000, t)
    assert lim.capacity == 100_000
    assert lim.reserve(60_000) == 0.0  # the bucket starts full
    assert lim.reserve(40_000) == 0.0
    assert lim.reserve(50_000) == pytest.approx(0.05)  # 50 kB of debt at 1 MB/s
    t.now = 0.05
    assert lim.reserve(10_000) == pytest.approx(0.01)  # the debt was paid off; these 10 kB wait their turn


def test_readers_sharing_a_limiter_wait_behind_each_other():
    t = FakeTime()
    lim = limiter(1_000_000, t)
    first = lim.reserve(100_000)  # connection A: the bucket's worth
    second = lim.reserve(100_000)  # connection B, at the same moment
    t.now = 0.05
    third = lim.reserve(100_000)  # A again
    assert (first, second, third) == (0.0, pytest.approx(0.1), pytest.approx(0.15))


def test_a_pause_refills_the_bucket_but_banks_no_more_than_it_holds():
    t = FakeTime()
    lim = limiter(1_000_000, t)
    lim.reserve(100_000)
    t.now = 60.0  # a minute of idling (a retry's wait, a gap in a batch)
    assert lim.reserve(100_000) == 0.0
    assert lim.reserve(100_000) == pytest.approx(0.1)


async def chunks(sizes: list[int]) -> AsyncIterator[bytes]:
    for n in sizes:
        yield bytes(n)


async def test_paced_bytes_stay_under_the_rate_in_every_second():
    t = FakeTime()
    rate = 2 * MiB
    lim = limiter(rate, t)
    sizes = [256 * 1024, 1000, 180_000, 64 * 1024] * 40  # what aiohttp hands over: uneven, some large
    delivered: list[tuple[float, int]] = []
    async for piece in lim.paced(chunks(sizes)):
        assert len(piece) <= lim.piece  # a large chunk goes on in pieces
        delivered.append((t.now, len(piece)))
    total = sum(sizes)
    assert sum(n for _, n in delivered) == total
    assert t.now == pytest.approx(shortest(total, rate))  # as fast as the limit allows, no slower
    passed = 0
    for when, n in delivered:
        passed += n
        assert passed <= rate * BURST_SECONDS + rate * when + 1e-6  # never ahead of the bucket
    # The accuracy the limit promises: no window of one second carries 25 % more than the rate.
    for start, _ in delivered:
        in_window = sum(n for when, n in delivered if start <= when < start + 1.0)
        assert in_window <= 1.25 * rate


async def test_a_low_rate_is_not_paced_byte_by_byte():
    t = FakeTime()
    lim = limiter(1000, t)
    pieces = [len(p) async for p in lim.paced(chunks([10_000]))]
    assert pieces == [_rate.MIN_PIECE] * 9 + [10_000 - 9 * _rate.MIN_PIECE]


def test_a_limiter_unpickles_as_the_one_limiter_of_its_process():
    lim = RateLimiter(5 * MiB)
    again = pickle.loads(pickle.dumps(lim))
    assert again is lim  # a copy in the same process is the same limiter
    data, key = pickle.dumps(lim), lim.key
    del lim, again
    gc.collect()
    a, b = pickle.loads(data), pickle.loads(data)  # as in a fresh process (a Dask worker): two tasks
    assert a is b and a.key == key and a.rate == 5 * MiB


def test_options_carry_one_limiter_that_whatever_shares_them_shares():
    opts = _options.make_options(max_rate="4M")
    assert opts.max_rate == 4 * MiB and opts.limiter is not None and opts.limiter.rate == 4 * MiB
    item = replace(opts, progress=None, sha256="0" * 64)  # what a batch or the panel makes per item
    assert item.limiter is opts.limiter
    assert replace(opts, max_rate=MiB).limiter is not opts.limiter  # another rate, another limiter
    assert replace(opts, max_rate=None).limiter is None
    assert _options.make_options(max_rate="4M").limiter is not opts.limiter  # each call its own
    assert _options.make_options().limiter is None
    assert opts == _options.make_options(max_rate="4M")  # the limiter is not part of what options mean


@pytest.mark.parametrize("bad", [0, -5, "fast", "5X", True])
def test_a_bad_rate_is_refused_before_any_request(bad):
    with pytest.raises(ValueError, match="max_rate"):
        _options.make_options(max_rate=bad)


# --------------------------------------------------------------------------- against the server


RATE = 2 * MiB
SIZE = 3 * MiB // 2


async def test_one_stream_keeps_to_the_limit(serve, dest):
    data = make_video(SIZE)
    url, _ = serve(data)
    t0 = time.monotonic()
    result = await vidnb.download(url, dest, max_rate=RATE, progress=False)
    assert time.monotonic() - t0 >= shortest(SIZE, RATE)
    assert dest.read_bytes() == data and result.size == SIZE


async def test_all_connections_of_a_download_share_the_limit(serve, dest):
    data = make_video(3 * MiB)  # the first MiB, then four pieces of 512 KiB (see test_connections)
    url, route = serve(data)
    t0 = time.monotonic()
    await vidnb.download(url, dest, max_rate=2 * RATE, connections=4, progress=False)
    # Each of the 4 connections alone at the rate would take a quarter of this.
    assert time.monotonic() - t0 >= shortest(len(data), 2 * RATE)
    assert dest.read_bytes() == data
    assert sum("Range" in h for h in route.requests) == 5  # the probe, then four pieces at once


async def test_hls_segments_share_the_limit(serve, tmp_path):
    packet = b"\x47" + bytes(187)  # MPEG-TS packets
    segments = [packet * (MiB // 2 // 188) for _ in range(4)]  # four of about 512 KiB, fetched at once
    seg_urls = [serve(seg, name=f"seg{i}.ts", content_type="video/mp2t")[0] for i, seg in enumerate(segments)]
    playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-PLAYLIST-TYPE:VOD\n"
    playlist += "".join(f"#EXTINF:1.0,\n{u}\n" for u in seg_urls) + "#EXT-X-ENDLIST\n"
    url, _ = serve(playlist.encode(), name="index.m3u8", content_type="application/vnd.apple.mpegurl")
    total = sum(map(len, segments))
    t0 = time.monotonic()
    result = await vidnb.download(url, tmp_path / "clip.ts", max_rate=RATE, remux=False, progress=False)
    assert time.monotonic() - t0 >= shortest(total, RATE)
    assert result.path.read_bytes() == b"".join(segments)


async def test_a_batch_shares_one_limit(serve, tmp_path):
    datas = videos(4, 384 * 1024)
    urls, _ = serve_many(serve, datas)
    t0 = time.monotonic()
    batch = await vidnb.download_many(urls, tmp_path, concurrency=4, max_rate=RATE, progress=False)
    # Four at once, each alone at RATE, would take a quarter of this.
    assert time.monotonic() - t0 >= shortest(sum(map(len, datas)), RATE)
    assert len(batch.ok) == 4 and sorted(p.read_bytes() for p in tmp_path.iterdir()) == sorted(datas)


def test_the_command_takes_limit_rate_in_size_words(serve, tmp_path):
    data = make_video(SIZE)
    url, _ = serve(data)
    t0 = time.monotonic()
    done = run_cli("get", url, "-o", str(tmp_path / "clip.mp4"), "--limit-rate", "2M", "-q")
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - t0 >= shortest(SIZE, RATE)
    assert (tmp_path / "clip.mp4").read_bytes() == data and leftovers(tmp_path) == ["clip.mp4"]
    bad = run_cli("get", url, "-o", str(tmp_path / "other.mp4"), "--limit-rate", "fast")
    assert bad.returncode == 2 and "--limit-rate" in bad.stderr and "'fast' is not a size" in bad.stderr
    assert not (tmp_path / "other.mp4").exists()


async def test_the_panel_limits_all_its_downloads_together(serve, tmp_path):
    from vidnb.widgets import DownloadPanel

    datas = videos(2, 768 * 1024)
    urls, _ = serve_many(serve, datas)
    panel = DownloadPanel(tmp_path / "d", max_rate="1M")
    assert panel.max_rate.value == "1M"  # the Limit box shows the option
    panel.max_rate.value = "2M"
    panel.urls.value = "\n".join(urls)
    t0 = time.monotonic()
    panel.download_button.click()
    results = await panel.wait()
    assert time.monotonic() - t0 >= shortest(sum(map(len, datas)), RATE)
    assert sorted(r.path.read_bytes() for r in results if r is not None) == sorted(datas)
    assert panel.options.max_rate == RATE

    panel.max_rate.value = "fast"
    panel.urls.value = urls[0]
    assert panel.submit() == [] and "Limit:" in panel.message.value and len(panel.rows) == 2
