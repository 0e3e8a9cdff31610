"""vidnb's media core (PyAV) against the ffmpeg command line doing the same work.

Three jobs, on files this script makes with Debian's ffmpeg (in a temp dir, removed after):

- **remux**: a ~100 MB MPEG-TS (H.264/AAC, 720p, 60 s) into MP4 with ``+faststart``:
  ``vidnb.remux`` against ``ffmpeg -i in.ts -c copy -movflags +faststart out.mp4``;
- **transcode**: a 60 s 640x360 AVI (MPEG-4 Part 2 / MP3) to WebM VP9/Opus:
  ``vidnb.make_playable`` against ``ffmpeg -c:v libvpx-vp9 -deadline realtime -cpu-used 8
  -row-mt 1 -crf 33 -b:v 0 -c:a libopus`` (the same settings vidnb uses);
- **thumbnail**: a 320 px JPEG of the frame at 10 % of a 720p H.264 MP4 (60 s, a keyframe
  every 2 s): ``vidnb.thumbnail`` against ``ffmpeg -ss T -i F -frames:v 1 -vf scale=320:-2``.

vidnb runs twice per round: in this process (PyAV already imported, as in a notebook after
the first call) and as a new ``python -c`` process (start-up and ``import av`` included, like
the ffmpeg command). The order alternates every round; figures are medians over rounds and
``÷ ffmpeg`` is the median of per-round ratios. Note the encoders differ in version: PyAV's
wheel carries its own FFmpeg and libvpx, the command line is Debian's.

    python bench/bench_media.py                  # 5 rounds (3 for the transcode)
    python bench/bench_media.py --rounds 9
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _harness import machine_info, markdown_table, median, paired_ratio, require_tool, tool_version  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def ffmpeg(*args: str | Path) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *map(str, args)], check=True)


def make_inputs(root: Path) -> dict[str, Path]:
    """The three input files (about a minute of ffmpeg on 2 cores)."""
    ts, avi, mp4 = root / "big.ts", root / "clip.avi", root / "hd.mp4"
    sound = ("-f", "lavfi", "-i", "sine=frequency=440:duration=60")
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=60", *sound,
           "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "13M", "-maxrate", "13M", "-bufsize", "4M",
           "-g", "60", "-c:a", "aac", "-f", "mpegts", ts)  # fmt: skip
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=60", *sound,
           "-c:v", "mpeg4", "-q:v", "4", "-c:a", "libmp3lame", avi)  # fmt: skip
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=60", *sound,
           "-c:v", "libx264", "-preset", "veryfast", "-g", "60", "-c:a", "aac",
           "-movflags", "+faststart", mp4)  # fmt: skip
    return {"ts": ts, "avi": avi, "mp4": mp4}


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def run(argv: list[str | Path]) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {out.stderr.strip()[-500:]}")


def jobs(inputs: dict[str, Path], out: Path) -> dict[str, dict[str, Callable[[], object]]]:
    """For each job: its competitors, each a function doing the job once into ``out``."""
    import vidnb
    from vidnb._playable import remux

    py = sys.executable
    at = 6.0  # 10 % of 60 s
    # make_playable finds a finished result and returns it: each run starts without one.
    webm = inputs["avi"].with_name("clip.playable.webm")

    def transcode() -> object:
        webm.unlink(missing_ok=True)
        return vidnb.make_playable(inputs["avi"], progress=False)

    def transcode_cli() -> object:
        webm.unlink(missing_ok=True)
        return run([py, "-c", f"import vidnb; vidnb.make_playable({str(inputs['avi'])!r}, progress=False)"])

    return {
        "remux ~100 MB TS -> MP4": {
            "vidnb.remux (in process)": lambda: remux(inputs["ts"], out / "a.mp4"),
            "vidnb.remux (new process)": lambda: run([py, "-c", "from vidnb._playable import remux; "
                                                      f"remux({str(inputs['ts'])!r}, {str(out / 'b.mp4')!r})"]),
            "ffmpeg -c copy -movflags +faststart": lambda: run(
                ["ffmpeg", "-v", "error", "-y", "-i", inputs["ts"], "-c", "copy", "-movflags", "+faststart",
                 out / "c.mp4"]  # fmt: skip
            ),
        },
        "transcode 60 s 640x360 AVI -> WebM VP9/Opus": {
            "vidnb.make_playable (in process)": transcode,
            "vidnb.make_playable (new process)": transcode_cli,
            "ffmpeg libvpx-vp9 realtime + libopus": lambda: run(
                ["ffmpeg", "-v", "error", "-y", "-i", inputs["avi"], "-c:v", "libvpx-vp9", "-deadline", "realtime",
                 "-cpu-used", "8", "-row-mt", "1", "-tile-columns", "1", "-crf", "33", "-b:v", "0",
                 "-c:a", "libopus", "-b:a", "128k", out / "c.webm"]  # fmt: skip
            ),
        },
        "thumbnail at 10 % of a 720p MP4": {
            "vidnb.thumbnail (in process)": lambda: (out / "a.jpg").write_bytes(vidnb.thumbnail(inputs["mp4"], at=at)),
            "vidnb.thumbnail (new process)": lambda: run(
                [py, "-c", f"import vidnb, pathlib; pathlib.Path({str(out / 'b.jpg')!r})"
                 f".write_bytes(vidnb.thumbnail({str(inputs['mp4'])!r}, at={at}))"]  # fmt: skip
            ),
            "ffmpeg -ss -frames:v 1 -vf scale=320:-2": lambda: run(
                ["ffmpeg", "-v", "error", "-y", "-ss", str(at), "-i", inputs["mp4"], "-frames:v", "1",
                 "-vf", "scale=320:-2", "-q:v", "3", out / "c.jpg"]  # fmt: skip
            ),
        },
    }


def measure(competitors: dict[str, Callable[[], object]], rounds: int) -> list[list[object]]:
    names = list(competitors)
    competitors[names[0]]()  # warm: PyAV imported, files in the page cache
    walls: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            walls[name].append(timed(competitors[name]))
    reference = walls[names[-1]]
    return [[n, f"{median(walls[n]):.3f}", f"{min(walls[n]):.3f}-{max(walls[n]):.3f}",
             f"{paired_ratio(walls[n], reference):.2f}"] for n in names]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    require_tool("ffmpeg", "ffmpeg")
    import av

    root = Path(tempfile.mkdtemp(prefix="vidnb-bench-media-"))
    try:
        started = time.perf_counter()
        inputs = make_inputs(root)
        out = root / "out"
        out.mkdir()
        sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.0f} MB" for p in inputs.values())
        load = f"{os.getloadavg()[0]:.2f}"
        print(f"**vidnb media bench**: {machine_info({'load': load})}, "
              f"PyAV={av.__version__} (FFmpeg {av.ffmpeg_version_info}), {tool_version(['ffmpeg', '-version'])}, "
              f"inputs made in {time.perf_counter() - started:.0f} s ({sizes})\n")  # fmt: skip
        for title, competitors in jobs(inputs, out).items():
            rounds = max(3, args.rounds // 2 + 1) if title.startswith("transcode") else args.rounds
            rows = measure(competitors, rounds)
            print(f"#### {title} ({rounds} rounds)\n")
            print(markdown_table(["competitor", "wall s (median)", "min-max", "÷ ffmpeg"], rows) + "\n")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
