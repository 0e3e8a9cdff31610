"""Single large file over loopback: vidnb vs curl.

    python bench/bench_single.py [--size-mib 1024] [--rounds 5] [--out-dir DIR]

Serves one random file from a private nginx on 127.0.0.1 and downloads it
repeatedly with each competitor, alternating the order every round so that
background noise and cache state hit every competitor equally. Prints a
markdown table. Needs nginx (Debian: nginx-light) and curl; installs nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DATA_NAME = "blob.mp4"  # .mp4 so nginx sends video/mp4


@dataclass
class Competitor:
    """A command under test and the results collected for it."""

    name: str
    argv: Callable[[str, Path], list[str]]  # (url, dest) -> argv
    capture_stderr: bool = True
    walls: list[float | None] = field(default_factory=list)  # None = failed round
    cpus: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    rss_exact: bool = True
    verified_hash: bool = False
    failure: str | None = None


def vidnb_argv(progress: bool) -> Callable[[str, Path], list[str]]:
    """argv running vidnb.download_sync in a fresh interpreter (startup counts)."""
    def build(url: str, dest: Path) -> list[str]:
        code = (f"import vidnb; vidnb.download_sync({url!r}, {str(dest)!r}, "
                f"progress={progress})")
        return [sys.executable, "-c", code]
    return build


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size-mib", type=int, default=1024, help="file size (default 1024)")
    p.add_argument("--rounds", type=int, default=5, help="rounds per competitor (default 5)")
    p.add_argument("--out-dir", type=Path, default=None,
                   help="where downloads are written (default: a temp dir under /tmp)")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="per-download timeout in seconds (default 600)")
    return p.parse_args()


def run_competitor(c: Competitor, url: str, dest: Path, env: dict[str, str],
                   expected_size: int, expected_sha: str, timeout: float) -> None:
    """Time one download by *c*, verify it, record the result in *c*."""
    h.remove_quietly(dest)
    res = h.time_command(c.argv(url, dest), capture_stderr=c.capture_stderr,
                         env=env, cwd=REPO, timeout=timeout)
    problem: str | None = None
    if not res.ok:
        problem = h.error_summary(res.stderr, res.returncode)
        if not c.capture_stderr:
            # Progress output was sent to /dev/null for the timed run; rerun
            # once with stderr captured only to explain the failure.
            h.remove_quietly(dest)
            again = h.time_command(c.argv(url, dest), env=env, cwd=REPO, timeout=timeout)
            problem = h.error_summary(again.stderr, again.returncode)
    elif not dest.is_file():
        problem = "no output file"
    elif (size := dest.stat().st_size) != expected_size:
        problem = f"size {size} != {expected_size}"
    elif not c.verified_hash:
        if h.sha256_file(dest) != expected_sha:
            problem = "sha256 mismatch"
        c.verified_hash = True
    h.remove_quietly(dest)
    # Flush the deleted file's write-back now so it is not billed to the next run.
    os.sync()
    if problem:
        c.failure = c.failure or problem
        c.walls.append(None)
        return
    c.walls.append(res.wall_s)
    c.cpus.append(res.cpu_s)
    c.rss.append(res.maxrss_mib)
    c.rss_exact = c.rss_exact and res.rss_exact


def main() -> int:
    args = parse_args()
    if args.size_mib < 1 or args.rounds < 1:
        sys.exit("error: --size-mib and --rounds must be >= 1")
    nginx = h.require_tool("nginx", "nginx-light", ["/usr/sbin/nginx"])
    curl = h.require_tool("curl", "curl")

    size = args.size_mib * h.MIB
    # nginx workers drop privileges when we are root, so the served tree must
    # be world-readable: keep it in its own 0755 temp dir, not in --out-dir.
    work = Path(tempfile.mkdtemp(prefix="vidnb-bench-"))
    os.chmod(work, 0o755)
    own_out = args.out_dir is None
    out_dir = work / "out" if own_out else args.out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)

    env = dict(os.environ)
    # Benchmark the working tree, not whatever vidnb happens to be installed.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))

    competitors = [
        Competitor("curl", lambda url, dest: [curl, "-s", "-o", str(dest), url]),
        Competitor("vidnb", vidnb_argv(progress=False)),
        Competitor("vidnb (progress)", vidnb_argv(progress=True), capture_stderr=False),
    ]

    try:
        data = h.make_data_file(work / "data" / DATA_NAME, size)
        os.chmod(data.parent, 0o755)
        os.chmod(data, 0o644)
        expected_sha = h.sha256_file(data)
        with h.running_nginx(data.parent, prefix=work / "nginx", nginx=nginx) as srv:
            url = srv.url(DATA_NAME)
            # Untimed warm-up into the out dir: page cache, nginx's first
            # request and the filesystem's first big allocation (round 1 was
            # ~2x slower without it) should not land on whoever goes first.
            warm = out_dir / "warmup.mp4"
            h.time_command([curl, "-s", "-o", str(warm), url])
            h.remove_quietly(warm)
            os.sync()

            for rnd in range(args.rounds):
                order = competitors if rnd % 2 == 0 else competitors[::-1]
                for c in order:
                    if c.failure and not any(w is not None for w in c.walls):
                        # Broken from the start (e.g. ImportError): don't burn time.
                        c.walls.append(None)
                        continue
                    run_competitor(c, url, out_dir / f"dl-{rnd}.mp4", env,
                                   size, expected_sha, args.timeout)
                    w = c.walls[-1]
                    print(f"round {rnd + 1}/{args.rounds} {c.name:<18} "
                          + (f"{w:7.3f} s" if w is not None else f"FAILED: {c.failure}"),
                          file=sys.stderr, flush=True)
            nginx_version = h.tool_version([nginx, "-v"])
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print_report(competitors, size, args.rounds, nginx_version, curl)
    return 0 if not competitors[0].failure else 1


def print_report(competitors: list[Competitor], size: int, rounds: int,
                 nginx_version: str, curl: str) -> None:
    """Print the header line and the markdown results table."""
    curl_version = " ".join(h.tool_version([curl, "--version"]).split()[:2])
    print()
    print("**bench_single**: " + h.machine_info({
        "nginx": nginx_version.split("/")[-1],
        "curl": curl_version.split()[-1],
        "file": f"{size // h.MIB} MiB",
        "rounds": str(rounds),
    }))
    print()
    baseline = competitors[0].walls
    rows: list[list[object]] = []
    for c in competitors:
        ok_walls = [w for w in c.walls if w is not None]
        if not ok_walls:
            rows.append([c.name, f"failed: {c.failure}", "", "", "", ""])
            continue
        wall = h.median(ok_walls)
        name = c.name if not c.failure else f"{c.name} ({len(ok_walls)}/{len(c.walls)} ok; "\
            f"failed: {c.failure})"
        rows.append([
            name,
            f"{wall:.3f}",
            f"{size / h.MB / wall:.0f}",
            f"{h.median(c.cpus):.3f}",
            f"{max(c.rss):.1f}",
            f"{h.paired_ratio(c.walls, baseline):.2f}",
        ])
    print(h.markdown_table(
        ["competitor", "median wall (s)", "MB/s", "median CPU s", "peak RSS (MB)",
         "ratio to curl"], rows))
    print()
    print("MB = 10^6 bytes; RSS in MiB; ratio = median over rounds of wall/curl wall "
          "in the same round (>1 is slower than curl).")
    if not all(c.rss_exact for c in competitors if c.rss):
        print("RSS is only an upper bound (includes this harness's own peak): install "
              "the Debian package 'time' so commands can be measured under GNU time.")


if __name__ == "__main__":
    sys.exit(main())
