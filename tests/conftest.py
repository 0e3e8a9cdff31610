"""Shared fixtures: a real aiohttp server on 127.0.0.1 whose routes inject faults.

The server is :class:`vidnb.demo.LocalServer` (a thread of its own), so async tests,
sync tests and subprocesses all talk to it the same way. Each test adds its routes
under a unique path and reads back what the server received from ``route.requests``.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import random
import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest

from vidnb.demo import LocalServer, Route

_ids = itertools.count()


def make_video(size: int, *, seed: int = 0, kind: str = "mp4") -> bytes:
    """Bytes that sniff as a video container, followed by pseudo-random data."""
    head = {
        "mp4": b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41",
        "webm": b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08\x42\x82\x84webm",
    }[kind]
    # Random (not repeating) bytes: a range written at the wrong offset changes the hash.
    body = random.Random(seed).randbytes(max(size - len(head), 0))
    return (head + body)[:size]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="session")
def server() -> LocalServer:
    srv = LocalServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def serve(server: LocalServer) -> Callable[..., tuple[str, Route]]:
    """``url, route = serve(data, **faults)``: a fresh route on the test server."""

    def add(data: bytes = b"", name: str = "video.mp4", **faults) -> tuple[str, Route]:
        route = Route(data, **faults)
        url = server.add(f"/t{next(_ids)}/{name}", route)
        return url, route

    return add


@pytest.fixture
def video() -> bytes:
    return make_video(3 * 1024 * 1024 + 123)


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "out" / "clip.mp4"


def videos(n: int, size: int = 40_000, *, seed: int = 0) -> list[bytes]:
    """``n`` different videos of slightly different sizes."""
    return [make_video(size + 97 * i, seed=seed + i) for i in range(n)]


def serve_many(serve: Callable[..., tuple[str, Route]], datas: list[bytes], **faults) -> tuple[list[str], list[Route]]:
    """Serve each video as ``v<i>.mp4``; return the URLs and the routes."""
    pairs = [serve(d, name=f"v{i}.mp4", **faults) for i, d in enumerate(datas)]
    return [u for u, _ in pairs], [r for _, r in pairs]


def leftovers(folder: Path) -> list[str]:
    """Names vidnb left in a folder (to assert nothing half-written stays behind)."""
    return sorted(os.listdir(folder)) if folder.exists() else []


# Paths written or created while a files_written() block runs. Audit hooks cannot be
# removed, so this one is installed once and stays idle otherwise.
_written: list[Path] | None = None
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT


def _audit(event: str, args: tuple) -> None:
    if _written is None:
        return
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)) and (args[2] or 0) & _WRITE_FLAGS:
        _written.append(Path(os.fsdecode(args[0])))
    elif event in ("os.link", "os.rename", "os.replace"):
        _written.append(Path(os.fsdecode(args[1])))


sys.addaudithook(_audit)


@contextlib.contextmanager
def files_written() -> Iterator[list[Path]]:
    """Collect every path opened for writing, created, linked or renamed to, in any thread."""
    global _written
    _written = found = []
    try:
        yield found
    finally:
        _written = None
