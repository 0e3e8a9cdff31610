"""The "plain aiohttp" competitor: what a careful script without vidnb does.

    python bench/plain_aiohttp.py single URL DEST
    python bench/plain_aiohttp.py ranges URL DEST N
    python bench/plain_aiohttp.py many LISTFILE DIR N

``single`` reads whatever has arrived (``iter_any``) and writes it with a plain file
object (the fastest simple pattern in the field notes, about 1.4x curl); ``ranges``
sends N concurrent Range requests writing with ``os.pwrite`` into a preallocated
file; ``many`` fetches the URLs of LISTFILE with N requests at once on one session.
No retries, no checks: a baseline, not a tool.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import aiohttp

TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=60)


async def single(url: str, dest: str) -> None:
    async with aiohttp.ClientSession(timeout=TIMEOUT, auto_decompress=False) as s:
        async with s.get(url) as r:
            r.raise_for_status()
            with open(dest, "wb") as f:
                async for chunk in r.content.iter_any():
                    f.write(chunk)


async def ranges(url: str, dest: str, n: int) -> None:
    async with aiohttp.ClientSession(timeout=TIMEOUT, auto_decompress=False) as s:
        async with s.head(url) as r:
            total = int(r.headers["Content-Length"])
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.ftruncate(fd, total)

            async def part(i: int) -> None:
                a, b = total * i // n, total * (i + 1) // n
                async with s.get(url, headers={"Range": f"bytes={a}-{b - 1}"}) as r:
                    assert r.status == 206, r.status
                    pos = a
                    async for chunk in r.content.iter_any():
                        os.pwrite(fd, chunk, pos)
                        pos += len(chunk)

            await asyncio.gather(*(part(i) for i in range(n)))
        finally:
            os.close(fd)


async def many(listfile: str, folder: str, n: int) -> None:
    urls = Path(listfile).read_text().split()
    sem = asyncio.Semaphore(n)
    conn = aiohttp.TCPConnector(limit=n)
    async with aiohttp.ClientSession(timeout=TIMEOUT, auto_decompress=False, connector=conn) as s:

        async def one(url: str) -> None:
            async with sem, s.get(url) as r:
                r.raise_for_status()
                with open(os.path.join(folder, url.rsplit("/", 1)[-1]), "wb") as f:
                    async for chunk in r.content.iter_any():
                        f.write(chunk)

        await asyncio.gather(*(one(u) for u in urls))


def main(argv: list[str]) -> None:
    mode, *args = argv
    if mode == "single":
        asyncio.run(single(args[0], args[1]))
    elif mode == "ranges":
        asyncio.run(ranges(args[0], args[1], int(args[2])))
    elif mode == "many":
        asyncio.run(many(args[0], args[1], int(args[2])))
    else:
        sys.exit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
