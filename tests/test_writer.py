"""The writer threads (``vidnb._writer``): a close cut short by a cancel.

A second Ctrl-C (or a cancel) can land while ``PartWriter.close`` waits for the thread to
write what it still holds. The descriptor must then stay open until those chunks are in:
closed at once, the chunks are lost (the thread finds no descriptor), or, in a narrow race,
written into the next file opened, which gets the same number. The thread is held by hand
here, so the chunks are still queued when the cancel comes.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from vidnb import _writer

A, B, C = b"a" * 70_000, b"b" * 50_000, b"c" * 30_000


class Holder:
    """Stands in a writer thread's queue as a writer would; its write holds the thread."""

    def __init__(self) -> None:
        self.holding = threading.Event()
        self.release = threading.Event()

    def _flush(self, offset: int, bufs: list[bytes]) -> None:  # called on the writer thread
        self.holding.set()
        self.release.wait(30)


async def cancelled_close(pw: _writer.PartWriter) -> Holder:
    """Queue B and C behind a held thread, then start ``pw.close()`` and cancel it."""
    await pw.write(0, A)  # picks the writer's thread
    await pw.flush()
    holder = Holder()
    pw._queue.put((holder, 0, b"x"))  # type: ignore[union-attr]
    assert await asyncio.to_thread(holder.holding.wait, 30)
    await pw.write(len(A), B)
    await pw.write(len(A) + len(B), C)
    closing = asyncio.ensure_future(pw.close())
    await asyncio.sleep(0)  # one turn: close() is now waiting for the held thread
    assert not closing.done()
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    return holder


async def through_the_thread(pw: _writer.PartWriter) -> None:
    """Until the thread has handled everything queued for ``pw`` so far."""
    done = _writer._Done(asyncio.get_running_loop().create_future())
    pw._queue.put((pw, done))  # type: ignore[union-attr]
    await done.future  # type: ignore[misc]


@pytest.mark.parametrize("borrowed", [False, True], ids=["own descriptor", "borrowed descriptor"])
async def test_a_cancelled_close_still_writes_what_was_queued_and_nothing_elsewhere(tmp_path: Path, borrowed: bool):
    path, other = tmp_path / "clip.mp4.part", tmp_path / "next.mp4.part"
    given = os.open(path, os.O_RDWR | os.O_CREAT, 0o644) if borrowed else None
    pw = _writer.PartWriter(path, truncate=True, fd=given)
    holder = await cancelled_close(pw)
    if given is not None:
        os.close(given)  # as the destination's lock does once the download has unwound
    # The next download opens its .part: it gets the lowest free number, the one just
    # closed if the writer's descriptor was.
    fd = os.open(other, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        holder.release.set()
        await through_the_thread(pw)
        assert path.read_bytes() == A + B + C
        assert other.read_bytes() == b""
    finally:
        os.close(fd)
    assert pw._fd == -1, "the thread closed the file after its last chunk"
    await pw.close()  # a second close is a no-op


async def test_a_close_that_is_not_cancelled_writes_everything_and_closes_at_once(tmp_path: Path):
    path = tmp_path / "clip.mp4.part"
    pw = _writer.PartWriter(path, truncate=True)
    await pw.write(0, A)
    await pw.write(len(A), B)
    await pw.close()
    assert pw._fd == -1 and path.read_bytes() == A + B
