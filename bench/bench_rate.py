"""How closely ``max_rate=`` keeps to its limit, against ``curl --limit-rate``, over ~10 s downloads.

nginx on 127.0.0.1 serves the files unthrottled; each case downloads ``seconds x rate``
bytes with the limit on:

- vidnb, one stream; vidnb, 4 connections (byte ranges); vidnb, an HLS playlist of 1 MiB
  segments (4 fetched at once); ``vidnb.download_many`` of 1 MiB files, 16 at once
  (the limit shared by the whole batch), all in this process;
- ``curl --limit-rate``, one stream, as its own process.

Two counts, each sampled every 10 ms (progress events: 10 a second):

- handed on: the bytes vidnb passed on, as they reach its files (one stream, the batch) or
  its progress count (byte ranges, whose ``.part`` is preallocated, and HLS, whose segments
  reach the file whole and in order). This is what the limit paces, and what the targets
  are about: the average within 5 % of the limit, no second over 1.25x of it (both as whole
  seconds from the first byte, and as the busiest 1-second window anywhere);
- wire: what a small counting proxy in front of nginx (a process of its own) sent to the
  client, the same way for vidnb and curl. A client-side limit paces reads, so the first
  second on the wire also carries what the kernel and aiohttp buffer ahead of the reads
  (up to about 1 MiB a connection here): curl shows the same.

    python bench/bench_rate.py                       # 5 MiB/s for 10 s
    python bench/bench_rate.py --rate 2M --seconds 10 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _harness import (  # noqa: E402
    MIB,
    free_port,
    machine_info,
    make_data_file,
    markdown_table,
    require_tool,
    running_nginx,
    tool_version,
)

import vidnb  # noqa: E402
from vidnb._fmt import parse_size  # noqa: E402

SAMPLE_EVERY = 0.01
SEND_BUFFER = 64 * 1024
TS_PACKET = b"\x47" + bytes(187)


def proxy_main(listen: int, upstream: int, out: str) -> None:
    """The counting proxy (run as its own process): clients connect here, bytes come from
    nginx, and every SAMPLE_EVERY seconds the total sent to clients so far is noted. When
    stdin closes, the samples go to ``out`` as lines of ``seconds bytes``."""
    total = [0]
    lock = threading.Lock()
    samples: list[tuple[float, int]] = []

    def pipe(src: socket.socket, dst: socket.socket, count: bool) -> None:
        try:
            while data := src.recv(SEND_BUFFER):
                dst.sendall(data)
                if count:
                    with lock:
                        total[0] += len(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def serve(server: socket.socket) -> None:
        while True:
            client, _ = server.accept()
            # A small send buffer towards the client: what is counted as sent has then nearly
            # all reached the client (the kernel would otherwise take megabytes at once).
            client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
            up = socket.create_connection(("127.0.0.1", upstream))
            threading.Thread(target=pipe, args=(client, up, False), daemon=True).start()
            threading.Thread(target=pipe, args=(up, client, True), daemon=True).start()

    def sample() -> None:
        while True:
            with lock:
                samples.append((time.monotonic(), total[0]))
            time.sleep(SAMPLE_EVERY)

    server = socket.create_server(("127.0.0.1", listen))
    threading.Thread(target=serve, args=(server,), daemon=True).start()
    threading.Thread(target=sample, daemon=True).start()
    print("ready", flush=True)
    sys.stdin.read()
    with lock, open(out, "w", encoding="ascii") as fh:
        fh.writelines(f"{t} {n}\n" for t, n in samples)


@dataclass
class Figures:
    wall: float
    average: float  # bytes per second, from the first byte sent to the last
    busiest_fixed: float  # the most bytes in one of the whole seconds counted from the first byte
    busiest_window: float  # the most bytes in any 1-second window


class Delivered:
    """vidnb's own count: a progress callable's ``(seconds, bytes handed on so far)``, over
    every file (a file's count is exact at its events, which come 10 times a second)."""

    def __init__(self) -> None:
        self.done: dict[str, int] = {}
        self.samples: list[tuple[float, int]] = [(time.monotonic(), 0)]
        self._total = 0

    def __call__(self, event: vidnb.ProgressEvent) -> None:
        self._total += event.done - self.done.get(event.name, 0)
        self.done[event.name] = event.done
        self.samples.append((time.monotonic(), self._total))


class OnDisk:
    """Bytes in the files of a folder (``.part`` included, the resume record not), every
    SAMPLE_EVERY seconds on a thread: what was handed on, for downloads that write their files
    front to back (not byte ranges, whose ``.part`` is preallocated)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            try:
                with os.scandir(self.folder) as it:
                    for entry in it:
                        if not entry.name.endswith(".json"):
                            with contextlib.suppress(OSError):
                                total += entry.stat().st_size
            except OSError:
                pass
            self.samples.append((time.monotonic(), total))
            self._stop.wait(SAMPLE_EVERY)

    def stop(self) -> list[tuple[float, int]]:
        self._stop.set()
        self._thread.join()
        return self.samples


def figures(samples: list[tuple[float, int]], start: float, end: float) -> Figures:
    """The rate in ``samples`` between the moments ``start`` and ``end`` of one case."""
    pts = [(t, n) for t, n in samples if start - SAMPLE_EVERY <= t <= end + SAMPLE_EVERY]
    base, last = pts[0][1], pts[-1][1]
    first = max(i for i, (_, n) in enumerate(pts) if n == base)  # the last sample before the first byte
    final = min(i for i, (_, n) in enumerate(pts) if n == last)  # the first sample after the last byte
    pts = [(t, n - base) for t, n in pts[first : final + 1]]
    t0, t_end, n_end = pts[0][0], pts[-1][0], pts[-1][1]

    def at(t: float) -> float:  # bytes sent by time t, interpolated between samples
        i = bisect.bisect_right(pts, (t, float("inf"))) - 1
        if i >= len(pts) - 1:
            return float(n_end)
        (ta, na), (tb, nb) = pts[i], pts[i + 1]
        return na + (nb - na) * (t - ta) / max(tb - ta, 1e-9)

    fixed = max((at(t0 + k + 1) - at(t0 + k) for k in range(int(t_end - t0))), default=0.0)
    window = max((at(t + 1.0) - at(t) for t, _ in pts if t + 1.0 <= t_end), default=0.0)
    return Figures(end - start, n_end / max(t_end - t0, 1e-9), fixed, window)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", default="5M", help="the limit, in size words per second (default: %(default)s)")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each download at the limit")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--proxy", nargs=3, metavar=("PORT", "UPSTREAM", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.proxy:
        proxy_main(int(args.proxy[0]), int(args.proxy[1]), args.proxy[2])
        return
    rate = parse_size(args.rate)
    size = int(rate * args.seconds)
    curl = require_tool("curl", "curl")

    root = Path(tempfile.mkdtemp(prefix="vidnb-bench-rate-"))
    data, out = root / "data", root / "out"
    try:
        make_data_file(data / "big.mp4", size)
        n_small = max(1, size // MIB)
        for i in range(n_small):
            make_data_file(data / "many" / f"f{i:04d}.mp4", MIB)
        n_seg = max(1, size // MIB)
        (data / "hls").mkdir(parents=True)
        segment = TS_PACKET * (MIB // len(TS_PACKET))
        lines = ["#EXTM3U", "#EXT-X-TARGETDURATION:2", "#EXT-X-PLAYLIST-TYPE:VOD"]
        for i in range(n_seg):
            (data / "hls" / f"s{i}.ts").write_bytes(segment)
            lines += ["#EXTINF:2.0,", f"s{i}.ts"]
        (data / "hls" / "index.m3u8").write_text("\n".join([*lines, "#EXT-X-ENDLIST", ""]))
        os.chmod(root, 0o755)
        for p in data.rglob("*"):
            os.chmod(p, 0o755 if p.is_dir() else 0o644)

        with running_nginx(data) as ng:
            print(machine_info({"nginx": tool_version(["nginx", "-v"]), "curl": tool_version([curl, "--version"]),
                                "rate": f"{args.rate}/s", "seconds": f"{args.seconds:g}"}))
            port, samples_file = free_port(), root / "samples.txt"
            proxy = subprocess.Popen(
                [sys.executable, __file__, "--proxy", str(port), str(ng.port), str(samples_file)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )
            assert proxy.stdout is not None and proxy.stdin is not None
            proxy.stdout.readline()  # "ready"
            base = f"http://127.0.0.1:{port}"
            urls = [f"{base}/many/f{i:04d}.mp4" for i in range(n_small)]

            def fresh() -> Path:
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir(parents=True)
                return out

            def curl_run() -> None:
                subprocess.run([curl, "-sf", "-o", str(fresh() / "big.mp4"), "--limit-rate", str(rate),
                                f"{base}/big.mp4"], check=True)

            cases: dict[str, Callable[[Delivered], object]] = {
                "vidnb, one stream": lambda p: vidnb.download_sync(
                    f"{base}/big.mp4", fresh() / "big.mp4", max_rate=rate, progress=p),
                "vidnb, connections=4": lambda p: vidnb.download_sync(
                    f"{base}/big.mp4", fresh() / "big.mp4", max_rate=rate, connections=4, progress=p),
                "vidnb, HLS (4 segments at once)": lambda p: vidnb.download_sync(
                    f"{base}/hls/index.m3u8", fresh() / "hls.ts", max_rate=rate, remux=False, progress=p),
                f"vidnb.download_many, {n_small} x 1 MiB, 16 at once": lambda p: asyncio.run(vidnb.download_many(
                    urls, fresh(), concurrency=16, max_rate=rate, progress=p, raise_on_error=True)),
                "curl --limit-rate": lambda p: curl_run(),
            }
            spans: dict[str, list[tuple[float, float, list[tuple[float, int]]]]] = {name: [] for name in cases}
            for r in range(args.rounds):
                order = list(cases) if r % 2 == 0 else list(reversed(cases))
                for name in order:
                    time.sleep(0.5)  # a quiet gap between cases
                    delivered = Delivered()
                    fresh()
                    disk = OnDisk(out)
                    t = time.monotonic()
                    cases[name](delivered)
                    done = time.monotonic()
                    on_disk = disk.stop()
                    # The progress count comes 10 times a second per file, the disk count every
                    # 10 ms: the disk's, but for byte ranges (a preallocated .part) and HLS (whose
                    # segments, fetched at once, reach the file whole and in order).
                    own = delivered.samples if "connections" in name or "HLS" in name else on_disk
                    spans[name].append((t, done, own if len(delivered.samples) > 2 else []))
            proxy.stdin.close()
            proxy.wait()
            samples = [(float(t), int(n)) for t, n in (line.split() for line in samples_file.read_text().splitlines())]

        rows = []
        for name, runs in spans.items():
            for start, end, handed_on in runs:
                wire = figures(samples, start, end)
                cells = [name, f"{wire.wall:.2f}"]
                if handed_on:
                    own = figures(handed_on, start, end)
                    avg, fixed = own.average / rate, own.busiest_fixed / rate
                    met = "yes" if abs(avg - 1) <= 0.05 and fixed <= 1.25 else "no"
                    cells += [f"{avg:.3f}", f"{fixed:.3f}", f"{own.busiest_window / rate:.3f}", met]
                else:
                    cells += ["", "", "", ""]
                cells += [f"{wire.average / rate:.3f}", f"{wire.busiest_fixed / rate:.3f}"]
                rows.append(cells)
        print()
        print(f"Limit {args.rate}/s ({rate} B/s), {size / MIB:.0f} MiB per case; rates are shares of the limit. "
              "'handed on': bytes in vidnb's files (its progress count for byte ranges and HLS); 'wire': what a proxy "
              "in front of nginx sent to the client.")
        print()
        print(markdown_table(
            ["case", "wall s", "handed on: average", "busiest second", "busiest 1 s window",
             "within 5 %, no second over 1.25x", "wire: average", "wire: busiest second"],
            rows,
        ))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
