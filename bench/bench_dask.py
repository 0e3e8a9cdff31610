"""download_many on a Dask LocalCluster vs one process: files per second for many small files.

nginx on 127.0.0.1 serves N small files (64 KiB by default). Each round downloads all of
them into a fresh folder with

- ``download_many_sync(urls, out, concurrency=16)`` in this process (one event loop), and
- the same call with ``client=`` a ``LocalCluster`` of W worker processes (1 thread each),
  with progress off, and with progress on (a callable: the workers then send progress
  messages to the client; "single+progress" shows what the engine's own per-file
  progress costs, so the difference between the two is the cost of the messages),

in alternating order. The cluster is started once (its start-up is reported apart).
Reported: median files/s, files/s per worker process, the median of per-round ratios to
the single process, and CPU seconds (this process + the workers) per 1000 files.

    python bench/bench_dask.py                    # 2000 x 64 KiB, 2 workers, 5 rounds
    python bench/bench_dask.py --files 500 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _harness import machine_info, make_data_file, markdown_table, running_nginx  # noqa: E402

import vidnb  # noqa: E402


def _worker_cpu() -> float:
    return time.process_time()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--size-kib", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    from distributed import Client, LocalCluster

    root = Path(tempfile.mkdtemp(prefix="vidnb-bench-dask-"))
    data = root / "data"
    out = root / "out"
    try:
        size = args.size_kib * 1024
        for i in range(args.files):
            make_data_file(data / f"f{i:05d}.mp4", size, block=size)
        os.chmod(root, 0o755)
        for p in (data, *data.iterdir()):
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        with running_nginx(data) as nginx:
            urls = [nginx.url(f"f{i:05d}.mp4") for i in range(args.files)]
            t = time.monotonic()
            cluster = LocalCluster(
                n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0"
            )
            client = Client(cluster)
            startup = time.monotonic() - t

            def cpu() -> float:
                return time.process_time() + sum(client.run(_worker_cpu).values())

            def run(name: str) -> tuple[float, float]:
                shutil.rmtree(out, ignore_errors=True)
                kwargs: dict = dict(concurrency=args.concurrency, progress=False)
                if name.startswith("dask"):
                    kwargs["client"] = client
                if name.endswith("+progress"):
                    kwargs["progress"] = lambda event: None
                c0 = cpu()
                t0 = time.perf_counter()
                batch = vidnb.download_many_sync(urls, out, **kwargs)
                wall = time.perf_counter() - t0
                used = cpu() - c0
                assert len(batch.ok) == args.files, batch.failed[:3]
                assert all(o.result.size == size and not o.result.skipped for o in batch)
                return wall, used

            names = ["single", "single+progress", "dask", "dask+progress"]
            walls: dict[str, list[float]] = {n: [] for n in names}
            cpus: dict[str, list[float]] = {n: [] for n in names}
            run("single"), run("dask")  # warm-up: connections, imports on the workers
            for r in range(args.rounds):
                order = names if r % 2 == 0 else names[::-1]
                for n in order:
                    w, c = run(n)
                    walls[n].append(w)
                    cpus[n].append(c)
                print(f"round {r + 1}: " + ", ".join(f"{n} {args.files / walls[n][-1]:.0f} files/s" for n in names),
                      file=sys.stderr)
            client.close()
            cluster.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)

    procs = {n: args.workers if n.startswith("dask") else 1 for n in names}
    rows = []
    for n in names:
        med = statistics.median(walls[n])
        ratio = statistics.median(s / w for s, w in zip(walls["single"], walls[n], strict=True))
        rows.append([
            n if n.startswith("single") else f"{n} ({args.workers} workers)",
            f"{med:.2f}",
            f"{args.files / med:.0f}",
            f"{args.files / med / procs[n]:.0f}",
            f"{ratio:.2f}",
            f"{statistics.median(cpus[n]) / args.files * 1000:.2f}",
        ])
    print(f"\n{args.files} x {args.size_kib} KiB from nginx on 127.0.0.1, concurrency={args.concurrency}, "
          f"median of {args.rounds} alternating rounds; cluster start-up {startup:.1f} s (not included)")
    print(machine_info({"vidnb": vidnb.__version__}))
    print()
    print(markdown_table(
        ["run", "wall s", "files/s", "files/s per process", "speed vs single", "CPU s per 1000 files"], rows
    ))


if __name__ == "__main__":
    main()
