"""download_many into an S3 bucket vs onto the local disk: 1000 x 1 MiB.

nginx on 127.0.0.1 serves N files; moto's S3 server (``moto[server]``, in a process of its
own on 127.0.0.1) is the bucket. Each round, in alternating order:

- ``disk``: ``download_many_sync(urls, folder, concurrency=16)`` into a fresh folder;
- ``bucket``: the same into ``s3://bench/round-N/`` (each file fetched into a local staging
  file, verified, uploaded with one PutObject carrying its sha256, removed locally);
- ``bucket rerun`` and ``disk rerun``: the same call again, where every item is already
  there (one listing of the prefix, against one stat per file).

Reported: median wall time, files/s and MB/s, and the median of per-round ratios to
``disk``. moto is a Python server and it is on the same 2 cores, so the bucket's figure is
mostly moto's cost to take in an object; a real S3 endpoint spends that elsewhere.

    python bench/bench_storage.py                   # 1000 x 1 MiB, 3 rounds
    python bench/bench_storage.py --files 200 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _harness import MIB, free_port, machine_info, make_data_file, markdown_table, running_nginx, wait_for_port  # noqa: E402

import vidnb  # noqa: E402

_AWS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true"}  # fmt: skip


def _moto(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **_AWS},
    )  # fmt: skip
    wait_for_port(port, timeout=30)
    return proc


def _empty(client: object, bucket: str, prefix: str) -> None:
    """Delete a round's objects: moto keeps them in memory."""
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)  # type: ignore[attr-defined]
    for page in pages:
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys})  # type: ignore[attr-defined]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--size-kib", type=int, default=1024)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    os.environ.update(_AWS)
    import boto3

    root = Path(tempfile.mkdtemp(prefix="vidnb-bench-storage-"))
    data, out, staging = root / "data", root / "out", root / "staging"
    size = args.size_kib * 1024
    port = free_port()
    moto = _moto(port)
    endpoint = f"http://127.0.0.1:{port}"
    options = {"endpoint_url": endpoint, "key": "bench", "secret": "bench"}
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="bench")
    names = ["disk", "bucket", "disk rerun", "bucket rerun"]
    walls: dict[str, list[float]] = {n: [] for n in names}
    try:
        for i in range(args.files):
            make_data_file(data / f"f{i:05d}.mp4", size, block=min(size, MIB))
        os.chmod(root, 0o755)
        for p in (data, *data.iterdir()):
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        with running_nginx(data) as nginx:
            urls = [nginx.url(f"f{i:05d}.mp4") for i in range(args.files)]

            def run(dest: str | Path, rerun: bool) -> float:
                t0 = time.perf_counter()
                batch = vidnb.download_many_sync(urls, dest, concurrency=args.concurrency, progress=False,
                                                 storage_options=options, tmp_dir=staging)  # fmt: skip
                wall = time.perf_counter() - t0
                assert len(batch.ok) == args.files, batch.failed[:3]
                assert all(o.result.size == size and o.result.skipped == rerun for o in batch)
                return wall

            run(out, False), run("s3://bench/warm-up/", False)  # connections, imports, the bucket's first objects
            _empty(s3, "bench", "warm-up/")
            for r in range(args.rounds):
                shutil.rmtree(out, ignore_errors=True)
                prefix = f"round-{r}/"
                order = [("disk", "disk rerun"), ("bucket", "bucket rerun")]
                for first, again in order if r % 2 == 0 else order[::-1]:
                    dest: str | Path = out if first == "disk" else f"s3://bench/{prefix}"
                    walls[first].append(run(dest, False))
                    walls[again].append(run(dest, True))
                _empty(s3, "bench", prefix)
                print(f"round {r + 1}: " + ", ".join(f"{n} {walls[n][-1]:.2f} s" for n in names), file=sys.stderr)
    finally:
        moto.kill()
        moto.wait()
        shutil.rmtree(root, ignore_errors=True)

    rows = []
    for n in names:
        med = statistics.median(walls[n])
        base = walls["disk rerun" if "rerun" in n else "disk"]
        ratio = statistics.median(w / b for w, b in zip(walls[n], base, strict=True))
        rows.append([n, f"{med:.2f}", f"{args.files / med:.0f}", f"{args.files * size / med / 1e6:.0f}",
                     f"{ratio:.2f}"])  # fmt: skip
    print(f"\n{args.files} x {args.size_kib} KiB from nginx on 127.0.0.1, concurrency={args.concurrency}, "
          f"median of {args.rounds} alternating rounds; bucket = moto's S3 server on 127.0.0.1")
    print(machine_info({"vidnb": vidnb.__version__}))
    print()
    print(markdown_table(["run", "wall s", "files/s", "MB/s", "÷ disk (same kind of run)"], rows))


if __name__ == "__main__":
    main()
