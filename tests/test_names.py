"""Long names from a server: every file vidnb makes from one fits the file system's name limit.

A name the server suggests (Content-Disposition, the URL's last segment, an HLS playlist's
name) is shortened so that the destination *and* what vidnb keeps beside it (``.part``,
``.part.json``, ``.part.json.tmp``) fit 255 bytes, in every way of downloading into a folder:
:func:`vidnb.download`, :func:`vidnb.download_many` and ``vidnb get``. A name the user gives is
theirs and is never shortened.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import hls_streams as hs
import pytest
from helpers import LocalServer, Route, Serve, files_written, leftovers, make_video, run_cli

import vidnb
from vidnb import _files
from vidnb._plan import Names
from vidnb._urls import LONGEST_SIDE_SUFFIX, NAME_MAX_BYTES, SERVER_NAME_MAX_BYTES

SIZE = 1_000_000
# The first answer is cut after this many bytes: a .part and its record stay. The client may
# lose what was still in flight when the connection broke (aiohttp raises before handing it
# over), so the server paces the body in 128 KiB pieces 50 ms apart: all but the last arrive.
DROP = 512 * 1024
PACED = 20 * 128 * 1024


@dataclass(frozen=True)
class Case:
    """A route whose server-given name is too long once vidnb's suffixes are added."""

    id: str
    path: str  # the URL's last segment, as sent (percent-encoded)
    disposition: str | None
    server_name: str  # the name the server gives, decoded
    extension: str  # what the saved name must end with

    def serve(self, serve: Serve, data: bytes, **faults: object) -> tuple[str, Route]:
        return serve(data, name=self.path, content_disposition=self.disposition, **faults)


_CJK = "vidéo-日本語の動画-" * 20  # 1-, 2- and 3-byte characters: a cut lands inside one somewhere
CASES = [
    # 255 bytes: the longest name the file system takes, so its ".part" is 5 too many.
    Case(
        "content-disposition-255-ascii",
        "download",
        f'attachment; filename="{"a" * 251}.mp4"',
        "a" * 251 + ".mp4",
        ".mp4",
    ),
    Case("url-path-multibyte", quote(_CJK + ".mp4"), None, _CJK + ".mp4", ".mp4"),
    # No extension: the sniffed ".mp4" is added, and must fit too.
    Case("url-path-no-extension", "clip-" + "z" * 300, None, "clip-" + "z" * 300, ".mp4"),
]
IDS = [c.id for c in CASES]


def fits(name: str) -> bool:
    """Whether the file system takes ``name``: at most 255 bytes, and valid UTF-8."""
    raw = os.fsencode(name)
    return len(raw) <= NAME_MAX_BYTES and raw.decode("utf-8") == name


def check_final_name(path: Path, case: Case) -> None:
    name = path.name
    assert fits(name) and fits(name + LONGEST_SIDE_SUFFIX), name
    assert len(name.encode("utf-8")) <= SERVER_NAME_MAX_BYTES
    assert name.endswith(case.extension)
    stem = name[: -len(case.extension)]
    # Shortened at the end of the stem, on a character boundary: what is left is the server's start.
    assert stem and case.server_name.startswith(stem) and "\ufffd" not in stem
    # Not shortened more than it had to be (a multi-byte character at the cut is dropped whole).
    assert len(name.encode("utf-8")) > SERVER_NAME_MAX_BYTES - 4


def check_interrupted(folder: Path) -> tuple[str, int]:
    """After a broken first attempt: the bytes and their resume record, both fitting.

    Returns the destination's name and the bytes kept (where the resume must start).
    """
    part, record = sorted(leftovers(folder), key=len)
    assert part.endswith(_files.PART_SUFFIX) and record == part + ".json"
    assert fits(part) and fits(record) and fits(record + ".tmp")
    kept = (folder / part).stat().st_size
    assert 0 < kept <= DROP
    return part[: -len(_files.PART_SUFFIX)], kept


def resumed_from(route: Route) -> int:
    """Where the last request's range starts (at the bytes kept, or a little before them to check they match)."""
    m = re.fullmatch(r"bytes=(\d+)-", route.requests[-1].get("Range", ""))
    assert m, route.requests[-1]
    return int(m.group(1))


def check_written(written: list[Path]) -> None:
    names = {p.name for p in written}
    # The record was written atomically (through its .tmp), the longest name vidnb makes.
    assert any(n.endswith(".part.json.tmp") for n in names), names
    assert all(fits(n) for n in names), [n for n in names if not fits(n)]


# ---------------------------------------------------------------- vidnb.download(url, folder)


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_download_into_a_folder_shortens_the_name_and_resumes(serve: Serve, tmp_path: Path, case: Case) -> None:
    data = make_video(SIZE)
    url, route = case.serve(serve, data, drops={1: DROP}, rate=PACED)
    with files_written() as written, pytest.raises(vidnb.IncompleteDownloadError):
        await vidnb.download(url, tmp_path, retries=0, progress=False)
    check_written(written)
    name, kept = check_interrupted(tmp_path)
    route.rate = None

    result = await vidnb.download(url, tmp_path, progress=False)
    assert result.path == tmp_path / name and result.resumed
    assert result.path.read_bytes() == data
    assert resumed_from(route) in range(1, kept + 1)
    check_final_name(result.path, case)
    assert leftovers(tmp_path) == [name]


# ---------------------------------------------------------------- vidnb.download_many(..., names="server")


@pytest.mark.parametrize("names", ["server", "url"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_batch_shortens_the_name_and_resumes(serve: Serve, tmp_path: Path, case: Case, names: Names) -> None:
    data = make_video(SIZE, seed=1)
    url, route = case.serve(serve, data, drops={1: DROP}, rate=PACED)
    with files_written() as written:
        first = await vidnb.download_many([url], tmp_path, names=names, retries=0, progress=False)
    assert isinstance(first.failed[0].error, vidnb.IncompleteDownloadError)
    check_written(written)
    name, kept = check_interrupted(tmp_path)
    route.rate = None

    again = await vidnb.download_many([url], tmp_path, names=names, progress=False)
    result = again[0].result
    assert result is not None and result.resumed and result.path == tmp_path / name
    assert result.path.read_bytes() == data
    assert resumed_from(route) in range(1, kept + 1)
    check_final_name(result.path, case)
    assert leftovers(tmp_path) == [name]


# ---------------------------------------------------------------- vidnb get URL -o folder/


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_cli_shortens_the_name_and_resumes(serve: Serve, tmp_path: Path, case: Case) -> None:
    data = make_video(SIZE, seed=2)
    url, route = case.serve(serve, data, drops={1: DROP}, rate=PACED)
    first = run_cli("get", url, "-o", "out/", "--retries", "0", "-q", cwd=tmp_path)
    assert first.returncode == 1 and "vidnb: failed:" in first.stderr, first.stderr
    assert "too long" not in first.stderr
    folder = tmp_path / "out"
    name, kept = check_interrupted(folder)
    route.rate = None

    again = run_cli("get", url, "-o", "out/", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (folder / name).read_bytes() == data
    assert resumed_from(route) in range(1, kept + 1)
    check_final_name(folder / name, case)
    assert leftovers(folder) == [name]


def test_cli_info_shows_the_shortened_name(serve: Serve, tmp_path: Path) -> None:
    case = CASES[0]
    url, _ = case.serve(serve, make_video(50_000))
    proc = run_cli("info", url, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    shown = next(line for line in proc.stdout.splitlines() if line.lstrip().startswith("name"))
    assert "a" * (SERVER_NAME_MAX_BYTES - 4) + ".mp4" in shown and "a" * (SERVER_NAME_MAX_BYTES - 3) not in shown


# ---------------------------------------------------------------- names the user gives


async def test_a_fitting_explicit_name_is_kept_as_given(serve: Serve, tmp_path: Path) -> None:
    # Exactly as long as a server name may be: nothing to cut, in a single download or a batch.
    name = "é" * ((SERVER_NAME_MAX_BYTES - 4) // 2) + "e.mp4"
    assert len(name.encode("utf-8")) == SERVER_NAME_MAX_BYTES
    data = make_video(SIZE)
    url, route = serve(data, name="v.mp4", drops={1: DROP}, rate=PACED)
    with pytest.raises(vidnb.IncompleteDownloadError):
        await vidnb.download(url, tmp_path / name, retries=0, progress=False)
    assert check_interrupted(tmp_path)[0] == name
    route.rate = None
    assert (await vidnb.download(url, tmp_path / name, progress=False)).resumed
    batch = await vidnb.download_many([(url, name)], tmp_path / "b", progress=False)
    assert batch[0].path == tmp_path / "b" / name and batch[0].path.read_bytes() == data


async def test_an_explicit_name_over_the_limit_fails_and_is_not_shortened(serve: Serve, tmp_path: Path) -> None:
    url, route = serve(make_video(50_000), name="v.mp4")
    name = "u" * NAME_MAX_BYTES + ".mp4"
    with pytest.raises(vidnb.DestinationError, match="too long") as info:
        await vidnb.download(url, tmp_path / name, progress=False)
    assert name in str(info.value)
    batch = await vidnb.download_many([(url, name)], tmp_path, progress=False)
    assert isinstance(batch.failed[0].error, vidnb.DestinationError)
    assert "too long" in str(batch.failed[0].error)
    assert leftovers(tmp_path) == []


async def test_an_explicit_name_whose_side_files_do_not_fit_fails_clearly(serve: Serve, tmp_path: Path) -> None:
    url, route = serve(make_video(50_000), name="v.mp4")
    with pytest.raises(vidnb.DestinationError, match="too long"):
        await vidnb.download(url, tmp_path / ("u" * 251 + ".mp4"), progress=False)
    assert route.requests == [] and leftovers(tmp_path) == []  # refused before anything


# ---------------------------------------------------------------- the suffix figure and _files.py


def test_every_file_kept_beside_a_longest_server_name_fits(tmp_path: Path) -> None:
    """SERVER_NAME_MAX_BYTES is right for the files _files.py makes (a longer suffix there breaks this)."""
    dest = tmp_path / ("中" * ((SERVER_NAME_MAX_BYTES - 4) // 3) + ".mp4")
    assert len(dest.name.encode("utf-8")) == SERVER_NAME_MAX_BYTES
    for side in (_files.part_path(dest), _files.sidecar_path(dest), _files.lock_path(dest)):
        assert fits(side.name) and side.name.startswith(dest.name)
        side.write_bytes(b"")  # the file system takes it
    with files_written() as written:
        _files.write_state(dest, _files.PartState(url="http://127.0.0.1/x", total=1))
    assert {p.name for p in written} == {dest.name + ".part.json.tmp", dest.name + ".part.json"}
    assert max(len(p.name.encode("utf-8")) for p in written) == NAME_MAX_BYTES


# ---------------------------------------------------------------- HLS: the playlist's name, and its audio's


@pytest.mark.skipif(not hs.have_ffmpeg(), reason=hs.NO_FFMPEG)
def test_hls_video_and_audio_from_a_long_playlist_name_fit_and_stay_apart(server: LocalServer, tmp_path: Path) -> None:
    streams = hs.build(tmp_path / "streams")
    base, _ = hs.serve_tree(server, streams)
    # A master playlist with a separate audio rendition, under a long name beside the streams it lists.
    stem = "talk-" + "t" * 300
    master = Route((streams / "master_audio.m3u8").read_bytes(), content_type="application/vnd.apple.mpegurl")
    url = server.add(urlsplit(base).path + stem + ".m3u8", master)
    folder = tmp_path / "out"
    folder.mkdir()
    result = vidnb.download_sync(url, folder, progress=False, remux=False)
    assert result.audio is not None
    video, audio = result.path, result.audio
    assert video.parent == audio.parent == folder and video != audio
    assert video.name.endswith(".ts") and audio.name.endswith(".audio.ts")
    for path in (video, audio):
        assert fits(path.name + LONGEST_SIDE_SUFFIX) and stem.startswith(path.name.split(".")[0])
    assert video.read_bytes() == hs.joined(streams / "vonly")
    listed = [ln for ln in (streams / "aonly" / "index.m3u8").read_text().splitlines() if ln and ln[0] != "#"]
    assert audio.read_bytes() == b"".join((streams / "aonly" / seg).read_bytes() for seg in listed)
    assert leftovers(folder) == sorted([video.name, audio.name])
    # Joined into one MP4 (the default): its working files fit too, and go once it is in place.
    joined = tmp_path / "joined"
    joined.mkdir()
    one = vidnb.download_sync(url, joined, progress=False)
    assert one.audio is None and one.path.suffix == ".mp4" and fits(one.path.name + LONGEST_SIDE_SUFFIX)
    assert leftovers(joined) == [one.path.name]
