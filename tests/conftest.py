"""Fixtures: a real aiohttp server on 127.0.0.1 whose routes inject faults, and test videos.

The server and every other shared helper live in ``helpers.py``; this file only turns
them into fixtures. Each test adds its routes under a unique path and reads back what
the server received from ``route.requests``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import LocalServer, Route, Serve, make_video

_ids = itertools.count()


@pytest.fixture(scope="session")
def server() -> Iterator[LocalServer]:
    srv = LocalServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def serve(server: LocalServer) -> Serve:
    """``url, route = serve(data, **faults)``: a fresh route on the test server."""

    def add(data: bytes = b"", name: str = "video.mp4", **faults: Any) -> tuple[str, Route]:
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
