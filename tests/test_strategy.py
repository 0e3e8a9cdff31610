"""The choice of how to fetch a file, as a table; the resume record's versions; unknown errors.

:func:`vidnb._strategy.choose` is pure, so every combination of URL, resume record, answer
and ``connections`` is one row here. The end-to-end behaviour of each step is tested against
the real server in test_resume.py, test_connections.py and test_hls.py.
"""

from __future__ import annotations

import json

import pytest

import vidnb
from vidnb import _files
from vidnb._errors import translate
from vidnb._pieces import Segment
from vidnb._strategy import OVERLAP, Answer, Decision, Resumable, choose, resumable

URL = "https://example.com/v/clip.mp4"
STREAM = Resumable("stream", 100_000, 500_000, '"e1"', etag='"e1"')
RANGES = Resumable("ranges", 0, 500_000, '"e1"', etag='"e1"', segments=(Segment(0, 500_000, 100),))
#: Where a resume of STREAM asks from: the overlap before its 100 000 bytes.
ASKED = 100_000 - OVERLAP
NO_RECORD = Resumable("stream", 100_000, None)


@pytest.mark.parametrize(
    "url, record, connections, expected",
    [
        (URL, None, 1, Decision("request", 0)),
        (URL, None, 8, Decision("request", 0, probe=True)),
        (URL, None, "auto", Decision("request", 0, probe=True)),
        ("https://example.com/live/index.m3u8?t=1", None, 1, Decision("hls")),
        ("https://example.com/talk/manifest.MPD?t=1", None, 8, Decision("page")),  # DASH: read by yt-dlp
        ("https://example.com/talk/manifest.mpd", STREAM, 1, Decision("request", 100_000, if_range='"e1"')),
        (URL, STREAM, 1, Decision("request", 100_000, if_range='"e1"')),
        (URL, NO_RECORD, 1, Decision("request", 100_000)),  # no If-Range: the overlap decides
        (URL, NO_RECORD, 8, Decision("request", 100_000)),  # no size known: nothing to share out
        (URL, STREAM, 8, Decision("split_single")),
        (URL, RANGES, 1, Decision("resume_ranges")),
        (URL, RANGES, "auto", Decision("resume_ranges")),
    ],
)
def test_before_the_first_request(url, record, connections, expected):
    assert choose(url=url, record=record, answer=None, connections=connections) == expected


def answer(status: int, asked: int | None, start: int | None = None, total: int | None = None, **kw) -> Answer:
    return Answer(status=status, asked_from=asked, range_start=start, range_total=total, **kw)


@pytest.mark.parametrize(
    "record, reply, connections, expected",
    [
        # Fresh downloads
        (None, answer(200, None), 1, "stream"),
        (None, answer(200, 0), 8, "stream"),  # the probe got 200: no ranges, one stream
        (None, answer(206, 0, 0, 5000), 8, "ranges"),  # the bounded probe
        (None, answer(206, 0, 0, None), 8, "refuse_partial"),  # no size: cannot cut it into pieces
        (None, answer(206, None, 0, 5000), 1, "refuse_partial"),  # a 206 nobody asked for
        (None, answer(200, None, playlist=True), 1, "hls"),
        (None, answer(206, 0, 0, 5000, playlist=True), 8, "hls"),
        # Resumes of one stream
        (STREAM, answer(206, ASKED, ASKED, 500_000), 1, "stream"),
        (STREAM, answer(206, ASKED, ASKED - 1000, 500_000), 1, "restart"),  # the wrong start
        (STREAM, answer(206, ASKED, 100_000, 500_000), 1, "restart"),  # the overlap left out
        (STREAM, answer(206, ASKED, ASKED, 600_000), 1, "restart"),  # another size
        (STREAM, answer(206, ASKED, ASKED, 500_000, same_validators=False), 1, "restart"),
        (STREAM, answer(200, ASKED), 1, "stream"),  # changed (If-Range), or no ranges now: all of it
        (STREAM, answer(200, ASKED, playlist=True), 1, "hls"),
        (STREAM, answer(416, ASKED, None, 90_000), 1, "restart"),  # shorter than the .part
        # A .part without a record: any size the server gives that holds its bytes
        (NO_RECORD, answer(206, ASKED, ASKED, 700_000), 1, "stream"),
        (NO_RECORD, answer(206, ASKED, ASKED, 99_000), 1, "restart"),
        (NO_RECORD, answer(206, ASKED, ASKED, None), 1, "restart"),
        # Answers to questions asked before the record was read (a folder download)
        (STREAM, answer(200, None), 1, "again"),
        (STREAM, answer(206, 0, 0, 500_000), 8, "again"),
        (RANGES, answer(206, 0, 0, 500_000), 8, "again"),
    ],
)
def test_after_an_answer(record, reply, connections, expected):
    got = choose(url=URL, record=record, answer=reply, connections=connections)
    assert got.step == expected
    if expected == "stream":
        assert got.offset == (100_000 if reply.status == 206 and record else 0)


@pytest.mark.parametrize(
    "kind, record_url, validator, total, part_size, segments, expected",
    [
        ("stream", URL, '"e"', 5000, 1000, None, "stream"),
        ("stream", URL, None, 5000, 1000, None, "stream"),  # no validator: the overlap checks the bytes
        ("stream", URL + "?x", '"e"', 5000, 1000, None, None),  # another URL's bytes
        ("stream", URL, '"e"', 5000, 0, None, None),  # nothing on disk
        ("stream", URL, '"e"', 5000, 6000, None, None),  # more on disk than the file has
        ("ranges", URL, '"e"', 5000, 5000, [[0, 2500, 10], [2500, 5000, 0]], "ranges"),
        ("ranges", URL, '"e"', 5000, 5000, [[0, 2500, 10], [2600, 5000, 0]], None),  # a gap
        ("ranges", URL, '"e"', 5000, 4000, [[0, 5000, 10]], None),  # not preallocated
        ("hls", URL, '"e"', None, 1000, [[0, 1000, 1000]], None),  # never continued as a file
        (None, None, None, None, 1000, None, "stream"),  # no record: the overlap checks the bytes
        (None, None, None, None, 0, None, None),
    ],
)
def test_what_of_a_part_can_be_continued(kind, record_url, validator, total, part_size, segments, expected):
    got = resumable(
        kind=kind, url=URL, record_url=record_url, total=total, if_range=validator, etag=validator,
        last_modified=None, segments=segments, part_size=part_size,
    )
    assert (got.kind if got else None) == expected


# ---------------------------------------------------------------- the resume record's format


def test_a_record_says_its_kind_and_version(tmp_path):
    dest = tmp_path / "a.mp4"
    _files.write_state(dest, _files.PartState(url=URL, kind="ranges", total=10, segments=[[0, 10, 3]]))
    raw = json.loads(_files.sidecar_path(dest).read_text())
    assert raw["version"] == _files.RECORD_VERSION and raw["kind"] == "ranges"
    assert _files.PartState.from_json(json.dumps(raw)) == _files.PartState(
        url=URL, kind="ranges", total=10, segments=[[0, 10, 3]]
    )


@pytest.mark.parametrize(
    "old, kind",
    [
        ({"url": URL, "etag": '"e"', "last_modified": None, "total": 10, "segments": None, "fingerprint": None},
         "stream"),
        ({"url": URL, "etag": '"e"', "total": 10, "segments": [[0, 5, 5], [5, 10, 1]], "fingerprint": None}, "ranges"),
        ({"url": URL, "etag": None, "total": None, "segments": [[0, 188, 188]], "fingerprint": "ab12"}, "hls"),
    ],
)
def test_a_version_1_record_is_read_as_what_it_was(old, kind):
    # Written by vidnb before records were tagged: no "version", no "kind".
    state = _files.PartState.from_json(json.dumps(old))
    assert state is not None and state.kind == kind and state.url == URL and state.segments == old["segments"]


@pytest.mark.parametrize(
    "raw",
    [
        {"version": 3, "kind": "stream", "url": URL},  # from a newer vidnb: not guessed at
        {"version": 2, "kind": "dash", "url": URL},
        {"version": 2, "url": URL},  # a version-2 record always says its kind
        {"version": 1, "url": URL, "segments": [[0, 5]]},  # pieces that are not triples
        {"version": 1, "url": 7},
        ["not", "a", "record"],
    ],
)
def test_an_unreadable_record_is_discarded(raw):
    assert _files.PartState.from_json(json.dumps(raw)) is None


async def test_a_newer_record_on_disk_means_starting_again(serve, video, dest):
    url, route = serve(video)
    dest.parent.mkdir(parents=True)
    _files.part_path(dest).write_bytes(video[:300_000])
    _files.sidecar_path(dest).write_text(json.dumps({"version": 99, "kind": "stream", "url": url, "etag": route.etag}))
    result = await vidnb.download(url, dest, progress=False)
    assert dest.read_bytes() == video and not result.resumed
    assert "Range" not in route.requests[0]


# ---------------------------------------------------------------- errors vidnb does not know


def test_translate_maps_what_it_knows_and_nothing_else():
    assert isinstance(translate(PermissionError(13, "denied")), vidnb.DestinationError)
    assert isinstance(translate(TimeoutError()), vidnb.NetworkError)
    assert translate(AttributeError("a bug")) is None


async def test_a_bug_inside_a_download_propagates_as_itself_without_retries(serve, video, dest):
    class Broken:
        """A reporter whose start() has a bug: the kind of error retries must not hide."""

        def start(self, name: str, total: int | None, initial: int) -> None:
            raise AttributeError("no such thing")

        def update(self, event: object) -> None: ...

        def close(self, event: object) -> None: ...

    url, route = serve(video)
    with pytest.raises(AttributeError, match="no such thing"):
        await vidnb.download(url, dest, progress=Broken(), retries=3)
    assert len(route.requests) == 1  # not retried as if the network had failed
