"""Which kind of filesystem a folder is on: a local disk, or something that may hang.

Creating, locking and renaming files goes to vidnb's file thread so that a network mount
that stops answering cannot freeze the event loop. On a local disk that caution cost more
than it saved: in a batch of 1000 files of 1 MiB, the one thread was busy 2.2-2.6 s taking
locks (each call waiting on the GIL between its system calls), every hop there and back
waited 5-10 ms, and the batch took 1.3x as long as with the same calls made on the loop,
where creating a file took 0.5-0.6 ms. :func:`is_local` tells the two apart from the
kernel's mount table (Linux); elsewhere every folder counts as possibly remote, as before.
"""

from __future__ import annotations

import os
import time

__all__ = ["is_local", "LOCAL_TYPES"]

#: Filesystem types on a local device or in memory. Network and FUSE filesystems (nfs, cifs,
#: smb3, 9p, virtiofs, fuse.*, ceph, ...) are not here, nor anything unknown.
LOCAL_TYPES = frozenset({
    "ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "tmpfs", "ramfs", "overlay", "zfs", "bcachefs",
    "jfs", "reiserfs", "nilfs2", "vfat", "exfat", "hfsplus",
})
#: How long a reading of the mount table is trusted (mounts come and go rarely).
TABLE_SECONDS = 10.0
MOUNTINFO = "/proc/self/mountinfo"

_table: tuple[float, list[tuple[str, str]], dict[str, bool]] | None = None


def is_local(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` is on a local filesystem, by the longest mount point containing it
    once symlinks are resolved. False when the mount table cannot be read.

    >>> is_local("/proc")  # doctest: +SKIP
    False
    """
    mounts, answers = _mounts()
    folder = os.fspath(folder)
    if not os.path.isabs(folder):
        folder = os.path.abspath(folder)  # an answer per absolute path: the cwd may change
    answer = answers.get(folder)
    if answer is None:
        real = os.path.realpath(folder)  # a symlink into a network mount is on that mount
        best, kind = "", ""
        for point, fstype in mounts:
            if len(point) > len(best) and (real == point or real.startswith(point.rstrip("/") + "/")):
                best, kind = point, fstype
        answer = answers[folder] = kind in LOCAL_TYPES  # a batch asks once per file, for one folder
    return answer


def _mounts() -> tuple[list[tuple[str, str]], dict[str, bool]]:
    """The mount table (point, type) and the answers found in it so far."""
    global _table
    now = time.monotonic()
    if _table is not None and now - _table[0] < TABLE_SECONDS:
        return _table[1], _table[2]
    mounts: list[tuple[str, str]] = []
    try:
        with open(MOUNTINFO, encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                fields = line.split()
                if "-" not in fields:
                    continue
                sep = fields.index("-")
                if len(fields) > sep + 1 and len(fields) > 4:
                    mounts.append((_unescape(fields[4]), fields[sep + 1]))
    except OSError:
        mounts = []
    _table = (now, mounts, {})
    return mounts, _table[2]


def _unescape(point: str) -> str:
    """Mount points escape space, tab, newline and backslash as octal (``\\040``)."""
    if "\\" not in point:
        return point
    return os.fsdecode(point.encode("utf-8", "surrogateescape").decode("unicode_escape").encode("latin-1"))
