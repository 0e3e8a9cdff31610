"""Where file-system calls run: on the loop for a local disk, on the file thread elsewhere."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from helpers import make_video

import vidnb
from vidnb import _files, _mounts

LINE = "{id} 1 0:{id} / {point} rw,relatime shared:1 - {fstype} /dev/x rw\n"


def mount_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mounts: list[tuple[str, str]]) -> None:
    table = tmp_path / "mountinfo"
    table.write_text("".join(LINE.format(id=i + 20, point=p, fstype=t) for i, (p, t) in enumerate(mounts)))
    monkeypatch.setattr(_mounts, "MOUNTINFO", str(table))
    monkeypatch.setattr(_mounts, "_table", None)


def test_a_folder_is_judged_by_the_longest_mount_point_holding_it(tmp_path, monkeypatch):
    mount_table(tmp_path, monkeypatch, [
        ("/", "ext4"), ("/mnt/nfs", "nfs4"), ("/mnt/my\\040disk", "xfs"), ("/mnt/fuse", "fuse.sshfs"),
    ])
    assert _mounts.is_local("/home/me/videos")
    assert not _mounts.is_local("/mnt/nfs")
    assert not _mounts.is_local("/mnt/nfs/videos")
    assert _mounts.is_local("/mnt/nfsx/videos"), "a longer name is not inside /mnt/nfs"
    assert _mounts.is_local("/mnt/my disk/videos"), "mountinfo writes a space as \\040"
    assert not _mounts.is_local("/mnt/fuse/videos")


def test_a_symlink_counts_where_it_leads(tmp_path, monkeypatch):
    (tmp_path / "share").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "share")
    mount_table(tmp_path, monkeypatch, [("/", "ext4"), (str((tmp_path / "share").resolve()), "nfs4")])
    assert not _mounts.is_local(str(tmp_path / "link"))
    assert _mounts.is_local(str(tmp_path))


def test_a_relative_folder_is_judged_where_it_is_now(tmp_path, monkeypatch):
    (tmp_path / "share" / "videos").mkdir(parents=True)
    (tmp_path / "home" / "videos").mkdir(parents=True)
    mount_table(tmp_path, monkeypatch, [("/", "ext4"), (str((tmp_path / "share").resolve()), "nfs4")])
    monkeypatch.chdir(tmp_path / "share")
    assert not _mounts.is_local("videos") and not _mounts.is_local(Path("videos"))
    monkeypatch.chdir(tmp_path / "home")
    assert _mounts.is_local("videos"), "the same relative name, now under a local folder"


def test_without_a_mount_table_every_folder_may_be_remote(tmp_path, monkeypatch):
    monkeypatch.setattr(_mounts, "MOUNTINFO", str(tmp_path / "missing"))
    monkeypatch.setattr(_mounts, "_table", None)
    assert not _mounts.is_local("/home/me/videos")


@pytest.mark.parametrize(("fstype", "thread"), [("ext4", "MainThread"), ("nfs4", "vidnb-files")])
async def test_the_lock_is_taken_on_the_loop_only_on_a_local_disk(serve, tmp_path, monkeypatch, fstype, thread):
    mount_table(tmp_path, monkeypatch, [("/", "ext4"), (str(tmp_path / "out"), fstype)])
    seen: list[str] = []
    real = _files.DestinationLock._try_once

    def spy(self: _files.DestinationLock) -> object:
        seen.append(threading.current_thread().name)
        return real(self)

    monkeypatch.setattr(_files.DestinationLock, "_try_once", spy)
    data = make_video(200_000)
    url, _ = serve(data)
    result = await vidnb.download(url, tmp_path / "out" / "clip.mp4", progress=False)
    assert result.size == len(data)
    assert seen and all(name.startswith(thread) for name in seen), seen
