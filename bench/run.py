"""vidnb against curl, wget, aria2c and plain aiohttp, on a private nginx on 127.0.0.1.

    python bench/run.py            # the full run (about 5-8 minutes on 2 cores)
    python bench/run.py --quick    # small sizes, 2 rounds: a smoke test in under a minute

Sections (pick some with ``--only a,b``):

a. one large file (1 GiB), single stream, unthrottled;
b. 200 MiB through nginx ``limit_rate 20m`` (20 MiB/s per connection), with 1, 4, 8, 16
   connections and ``"auto"``;
c. a batch of 1000 x 1 MiB files, 16 at a time (vidnb row only when ``vidnb._batch`` exists);
p. progress bar on vs off (more rounds: the difference is small);
m. peak RSS on 100 MiB vs 1 GiB;
i. ``import vidnb`` vs ``import aiohttp``.

Every command runs as its own process, timed with ``os.wait4`` (wall, user+sys CPU) and
GNU time (peak RSS). Within a section all competitors run once per round, in an order
that reverses every round, and each ratio is the median over rounds of the per-round
ratio, so the VM's drifts (often +-50 %) hit both sides of a ratio alike. Every download is
size-checked (sha256 the first time for each competitor) and deleted, then ``sync``.

vidnb runs from this working tree with its bytecode cached in a private
``PYTHONPYCACHEPREFIX`` (as an installed package would have it), so interpreter start-up
and imports count, but not compiling the sources each time. Installs nothing: exits
naming the Debian package when nginx or curl is missing, and leaves out rows for a
missing wget or aria2c with a note.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PLAIN = str(Path(__file__).resolve().parent / "plain_aiohttp.py")

Argv = Callable[[str, Path], list[str]]  # (url or list file, destination) -> argv


@dataclass
class Competitor:
    name: str
    argv: Argv
    tag: str = ""  # short key used for ratios and targets
    capture_stderr: bool = True
    walls: list[float | None] = field(default_factory=list)
    cpus: list[float | None] = field(default_factory=list)
    rss: list[float | None] = field(default_factory=list)
    failure: str | None = None
    verified: bool = False

    def ok(self) -> list[float]:
        return [w for w in self.walls if w is not None]


@dataclass
class Section:
    key: str
    title: str
    competitors: list[Competitor]
    target: str  # URL, or list file for batches
    size: int  # bytes per run (all files)
    check: Callable[[Competitor, Path], str | None]
    rounds: int
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------- setup


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes and 2 rounds: a smoke run")
    p.add_argument("--rounds", type=int, default=None, help="rounds per section (default 3; --quick 2)")
    p.add_argument("--only", default="a,b,c,p,m,i", help="sections to run, e.g. a,b (default all)")
    p.add_argument("--single-mib", type=int, default=None, help="section a file size (default 1024)")
    p.add_argument("--throttled-mib", type=int, default=None, help="section b file size (default 200)")
    p.add_argument("--batch-files", type=int, default=None, help="section c file count (default 1000)")
    p.add_argument("--out-dir", type=Path, default=None, help="where downloads go (default: a temp dir)")
    p.add_argument("--timeout", type=float, default=300.0, help="per-command timeout in seconds")
    a = p.parse_args()
    q = a.quick
    a.rounds = a.rounds or (2 if q else 3)
    a.single_mib = a.single_mib or (128 if q else 1024)
    a.throttled_mib = a.throttled_mib or (40 if q else 200)
    a.batch_files = a.batch_files or (100 if q else 1000)
    a.only = {s.strip() for s in a.only.split(",") if s.strip()}
    return a


def vidnb_env(work: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    return env


def vidnb_single(progress: bool, connections: int | str = 1) -> Argv:
    def build(url: str, dest: Path) -> list[str]:
        code = (
            f"import vidnb; vidnb.download_sync({url!r}, {str(dest)!r}, progress={progress}, "
            f"connections={connections!r})"
        )
        return [sys.executable, "-c", code]

    return build


def vidnb_batch(listfile: str, dest: Path) -> list[str]:
    code = (
        "import sys, vidnb; urls = open(sys.argv[1]).read().split(); "
        "vidnb.download_many_sync(urls, sys.argv[2], concurrency=16, progress=False)"
    )
    return [sys.executable, "-c", code, listfile, str(dest)]


# ---------------------------------------------------------------------------- running


def check_file(size: int, sha: str) -> Callable[[Competitor, Path], str | None]:
    def check(c: Competitor, dest: Path) -> str | None:
        if not dest.is_file():
            return "no output file"
        if (got := dest.stat().st_size) != size:
            return f"size {got} != {size}"
        if not c.verified:
            c.verified = True
            if h.sha256_file(dest) != sha:
                return "sha256 mismatch"
        return None

    return check


def check_folder(names: Sequence[str], size: int) -> Callable[[Competitor, Path], str | None]:
    def check(c: Competitor, dest: Path) -> str | None:
        missing = [n for n in names if not (dest / n).is_file() or (dest / n).stat().st_size != size]
        return f"{len(missing)} of {len(names)} files missing or short" if missing else None

    return check


def clean(dest: Path) -> None:
    if dest.is_dir():
        shutil.rmtree(dest, ignore_errors=True)
    else:
        h.remove_quietly(dest)
        for extra in dest.parent.glob(dest.name + ".aria2"):
            extra.unlink()
    # Flush the deleted data's write-back now, so it is not billed to the next run.
    os.sync()


def run_one(sec: Section, c: Competitor, dest: Path, env: dict[str, str], timeout: float) -> None:
    clean(dest)
    if sec.key == "c":
        dest.mkdir(parents=True)
    res = h.time_command(c.argv(sec.target, dest), capture_stderr=c.capture_stderr, env=env, cwd=dest.parent,
                         timeout=timeout)
    problem = None if res.ok else h.error_summary(res.stderr, res.returncode)
    if problem is None:
        problem = sec.check(c, dest)
    clean(dest)
    if problem:
        c.failure = c.failure or problem
        c.walls.append(None)
        c.cpus.append(None)
        c.rss.append(None)
        return
    c.walls.append(res.wall_s)
    c.cpus.append(res.cpu_s)
    c.rss.append(res.maxrss_mib)


def run_section(sec: Section, out: Path, env: dict[str, str], timeout: float) -> None:
    print(f"== {sec.key}. {sec.title}", file=sys.stderr, flush=True)
    for rnd in range(sec.rounds):
        order = sec.competitors if rnd % 2 == 0 else sec.competitors[::-1]
        for c in order:
            if c.failure and not c.ok():
                c.walls.append(None)  # broken from the start: don't burn time
                c.cpus.append(None)
                c.rss.append(None)
                continue
            run_one(sec, c, out / f"{sec.key}-out", env, timeout)
            w = c.walls[-1]
            print(f"  round {rnd + 1}/{sec.rounds} {c.name:<34} "
                  + (f"{w:7.3f} s" if w is not None else f"FAILED: {c.failure}"), file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- reporting


def ratio(a: Competitor, b: Competitor, attr: str = "walls") -> float:
    return h.paired_ratio(getattr(a, attr), getattr(b, attr))


def fmt_ratio(x: float) -> str:
    return "" if x != x else f"{x:.2f}"


def table(sec: Section, refs: Sequence[Competitor]) -> str:
    headers = ["competitor", "wall s", "MB/s", "CPU s", "peak RSS MiB"] + [f"{r.name} ÷ this" for r in refs]
    rows: list[list[object]] = []
    for c in sec.competitors:
        ok = c.ok()
        if not ok:
            rows.append([c.name, f"failed: {c.failure}", "", "", ""] + [""] * len(refs))
            continue
        wall = h.median(ok)
        name = c.name if not c.failure else f"{c.name} ({len(ok)}/{len(c.walls)} ok: {c.failure})"
        rows.append([
            name,
            f"{wall:.2f}",
            f"{sec.size / h.MB / wall:.0f}",
            f"{h.median([x for x in c.cpus if x is not None]):.2f}",
            f"{max(x for x in c.rss if x is not None):.0f}",
        ] + [("1" if r is c else fmt_ratio(ratio(r, c))) for r in refs])
    return h.markdown_table(headers, rows)


def find(sec: Section | None, tag: str) -> Competitor | None:
    if sec is None:
        return None
    return next((c for c in sec.competitors if c.tag == tag and c.ok()), None)


# ---------------------------------------------------------------------------- main


def main() -> int:
    args = parse_args()
    nginx = h.require_tool("nginx", "nginx-light", ["/usr/sbin/nginx"])
    curl = h.require_tool("curl", "curl")
    wget = h.optional_tool("wget")
    aria2c = h.optional_tool("aria2c")
    missing = [f"{n} (Debian package {p})" for n, p, t in (("wget", "wget", wget), ("aria2c", "aria2", aria2c)) if not t]

    work = Path(tempfile.mkdtemp(prefix="vidnb-bench-"))
    os.chmod(work, 0o755)
    out = (args.out_dir.resolve() if args.out_dir else work / "out")
    out.mkdir(parents=True, exist_ok=True)
    env = vidnb_env(work)
    data = work / "data"
    data.mkdir()
    os.chmod(data, 0o755)
    has_batch = (REPO / "vidnb" / "_batch.py").exists()
    t_start = time.monotonic()
    sections: dict[str, Section] = {}
    extra: dict[str, object] = {}

    def make(name: str, size: int) -> tuple[str, str]:
        path = h.make_data_file(data / name, size)
        os.chmod(path, 0o644)
        return name, h.sha256_file(path)

    try:
        # Compile vidnb's bytecode once, as an install would.
        subprocess.run([sys.executable, "-c", "import vidnb"], env=env, check=True)
        print("generating data ...", file=sys.stderr, flush=True)
        single_size = args.single_mib * h.MIB
        thr_size = args.throttled_mib * h.MIB
        if args.only & {"a", "p", "m"}:
            single_name, single_sha = make("single.mp4", single_size)
        if "b" in args.only:
            thr_name, thr_sha = make("throttled.mp4", thr_size)
        if "m" in args.only:
            small_name, small_sha = make("small.mp4", 100 * h.MIB)
        batch_names = [f"b{i:04d}.mp4" for i in range(args.batch_files)]
        if "c" in args.only:
            (data / "batch").mkdir()
            os.chmod(data / "batch", 0o755)
            for n in batch_names:
                os.chmod(h.make_data_file(data / "batch" / n, h.MIB), 0o644)

        with h.running_nginx(data, prefix=work / "nginx", nginx=nginx) as srv:
            # Untimed warm-up: page cache, nginx's first request, the filesystem's first big file.
            for name in [n for n in ("single.mp4", "throttled.mp4", "small.mp4") if (data / n).exists()]:
                h.time_command([curl, "-s", "-o", "/dev/null", srv.url(name)])

            def curl1(url: str, dest: Path) -> list[str]:
                return [curl, "-s", "-f", "-o", str(dest), url]

            def wget1(url: str, dest: Path) -> list[str]:
                return [wget, "-q", "-O", str(dest), url]  # type: ignore[list-item]

            def aria(n: int) -> Argv:
                return lambda url, dest: [aria2c, "-q", f"-x{n}", f"-s{n}", "-k1M", "--file-allocation=none",  # type: ignore[list-item]
                                          "--allow-overwrite=true", "--auto-file-renaming=false",
                                          "-d", str(dest.parent), "-o", dest.name, url]

            def plain(n: int = 1) -> Argv:
                if n == 1:
                    return lambda url, dest: [sys.executable, PLAIN, "single", url, str(dest)]
                return lambda url, dest: [sys.executable, PLAIN, "ranges", url, str(dest), str(n)]

            if "a" in args.only:
                comps = [
                    Competitor("vidnb (progress on)", vidnb_single(True), "vidnb", capture_stderr=False),
                    Competitor("vidnb (progress off)", vidnb_single(False), "vidnb-quiet"),
                    Competitor("curl", curl1, "curl"),
                ]
                if wget:
                    comps.append(Competitor("wget", wget1, "wget"))
                if aria2c:
                    comps.append(Competitor("aria2c -x1", aria(1), "aria2c"))
                comps.append(Competitor("plain aiohttp (iter_any + write)", plain(), "aiohttp"))
                sections["a"] = Section("a", f"{args.single_mib} MiB, one stream, unthrottled", comps,
                                        srv.url(single_name), single_size, check_file(single_size, single_sha),
                                        args.rounds)
            if "b" in args.only:
                url = srv.url(thr_name, throttled=True)
                comps = [Competitor(f"vidnb connections={n}", vidnb_single(False, n), f"vidnb-{n}")
                         for n in (1, 4, 8, 16)]
                comps.append(Competitor('vidnb connections="auto"', vidnb_single(False, "auto"), "vidnb-auto"))
                comps.append(Competitor("curl", curl1, "curl"))
                if aria2c:
                    comps += [Competitor("aria2c -x8 -s8 -k1M", aria(8), "aria2c-8"),
                              Competitor("aria2c -x16 -s16 -k1M", aria(16), "aria2c-16")]
                comps.append(Competitor("plain aiohttp, 8 ranges + pwrite", plain(8), "aiohttp-8"))
                sections["b"] = Section("b", f"{args.throttled_mib} MiB through limit_rate 20m per connection",
                                        comps, url, thr_size, check_file(thr_size, thr_sha), args.rounds)
            if "c" in args.only:
                listfile = work / "urls.txt"
                urls = [srv.url(f"batch/{n}") for n in batch_names]
                listfile.write_text("\n".join(urls) + "\n")
                curlcfg = work / "curl.cfg"
                comps = []
                if has_batch:
                    comps.append(Competitor("vidnb.download_many (16)", vidnb_batch, "vidnb"))
                comps.append(Competitor(
                    "curl --parallel --parallel-max 16",
                    lambda lf, dest: _curl_batch(curl, curlcfg, urls, dest), "curl"))
                if aria2c:
                    comps.append(Competitor(
                        "aria2c -j16 -i list",
                        lambda lf, dest: [aria2c, "-q", "-j16", "-i", lf, "-d", str(dest),  # type: ignore[list-item]
                                          "--file-allocation=none", "--allow-overwrite=true",
                                          "--auto-file-renaming=false"], "aria2c"))
                comps.append(Competitor("plain aiohttp, 16 at once",
                                        lambda lf, dest: [sys.executable, PLAIN, "many", lf, str(dest), "16"],
                                        "aiohttp"))
                sec = Section("c", f"{args.batch_files} x 1 MiB, 16 at a time", comps, str(listfile),
                              args.batch_files * h.MIB, check_folder(batch_names, h.MIB), args.rounds)
                if not has_batch:
                    sec.notes.append("vidnb: not available (vidnb/_batch.py, download_many, has not landed).")
                sections["c"] = sec
            if "p" in args.only:
                # The difference is a few per cent: more, shorter rounds than section a.
                comps = [Competitor("vidnb progress on", vidnb_single(True), "on", capture_stderr=False),
                         Competitor("vidnb progress off", vidnb_single(False), "off")]
                sections["p"] = Section("p", f"progress on vs off ({args.single_mib} MiB)", comps,
                                        srv.url(single_name), single_size, check_file(single_size, single_sha),
                                        args.rounds * 2 + 1)
            if "m" in args.only:
                comps = [Competitor("vidnb 100 MiB", vidnb_single(True), "small", capture_stderr=False)]
                sections["m"] = Section("m", "peak RSS, 100 MiB file", comps, srv.url(small_name), 100 * h.MIB,
                                        check_file(100 * h.MIB, small_sha), args.rounds)

            for key in "abcpm":
                if key in sections:
                    run_section(sections[key], out, env, args.timeout)
            nginx_version = h.tool_version([nginx, "-v"]).split("/")[-1]
        if "i" in args.only:
            extra["import"] = import_cost(env, 10 if args.quick else 25)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    report(args, sections, extra, nginx_version, curl, wget, aria2c, missing, time.monotonic() - t_start)
    return 0


def _curl_batch(curl: str, cfg: Path, urls: Sequence[str], dest: Path) -> list[str]:
    cfg.write_text("".join(f'url = "{u}"\noutput = "{dest / u.rsplit("/", 1)[-1]}"\n' for u in urls))
    return [curl, "-s", "-f", "--parallel", "--parallel-max", "16", "-K", str(cfg)]


def import_cost(env: dict[str, str], rounds: int) -> dict[str, float]:
    """Median wall of ``python -c 'import aiohttp'`` and ``'import vidnb'``, paired, bytecode cached."""
    base: list[float | None] = []
    ours: list[float | None] = []
    print("== i. import time", file=sys.stderr, flush=True)
    for rnd in range(rounds):
        pair = [("import aiohttp", base), ("import vidnb", ours)]
        for code, acc in pair if rnd % 2 == 0 else pair[::-1]:
            res = h.time_command([sys.executable, "-c", code], env=env, exact_rss=False)
            acc.append(res.wall_s if res.ok else None)
    diffs = [o - b for o, b in zip(ours, base) if o is not None and b is not None]
    return {"aiohttp": h.median([b for b in base if b]), "vidnb": h.median([o for o in ours if o]),
            "extra_ms": 1000 * h.median(diffs)}


def report(args: argparse.Namespace, sections: dict[str, Section], extra: dict[str, object], nginx_version: str,
           curl: str, wget: str | None, aria2c: str | None, missing: list[str], took: float) -> None:
    versions = {"nginx": nginx_version, "curl": h.tool_version([curl, "--version"]).split()[1]}
    if wget:
        versions["wget"] = h.tool_version([wget, "--version"]).split()[2]
    if aria2c:
        versions["aria2c"] = h.tool_version([aria2c, "--version"]).split()[-1]
    import aiohttp  # noqa: F401 - only for its version in the header

    versions["aiohttp"] = sys.modules["aiohttp"].__version__
    cpu = _cpu_model()
    print()
    print(f"**vidnb bench** ({'quick' if args.quick else 'full'} run, {took / 60:.1f} min): "
          + h.machine_info({"cpu": cpu, **versions, "rounds": str(args.rounds)}))
    print()
    print("Wall and CPU (user+sys) are medians over rounds; MB = 10^6 bytes; peak RSS is the largest seen. "
          "`X ÷ this` is the median over rounds of X's wall time divided by this row's in the same round "
          "(below 1: X is faster).")
    refs_for = {"a": ["vidnb"], "b": ["vidnb-8", "vidnb-auto"], "c": ["vidnb"], "p": ["on"], "m": []}
    for key, sec in sections.items():
        print()
        print(f"### {key}. {sec.title}")
        print()
        refs = [c for t in refs_for[key] if (c := find(sec, t))]
        print(table(sec, refs))
        for note in sec.notes:
            print(f"\n{note}")
    if missing:
        print(f"\nNot installed, rows left out: {', '.join(missing)}.")
    print()
    print("### Targets")
    print()
    rows = targets(sections, extra)
    print(h.markdown_table(["target", "measured", "met"], rows))


def targets(sections: dict[str, Section], extra: dict[str, object]) -> list[list[str]]:
    rows: list[list[str]] = []

    def add(what: str, value: float, limit: float, unit: str = "x") -> None:
        if value != value:
            rows.append([what, "n/a", ""])
            return
        shown = f"{value:.2f}{unit}" if unit == "x" else f"{value:.1f} {unit}"
        rows.append([what, shown, "yes" if value <= limit else "no"])

    a, b, p, m = (sections.get(k) for k in "abpm")
    if (v := find(a, "vidnb")) and (c := find(a, "curl")):
        add("a. vidnb (progress on) wall <= 1.0x curl (stretch 0.8x)", ratio(v, c), 1.0)
    if (v := find(b, "vidnb-8")) and (c := find(b, "aria2c-8")):
        add("b. vidnb connections=8 <= 1.05x aria2c -x8 -s8 -k1M", ratio(v, c), 1.05)
    if b is not None and (auto := find(b, "vidnb-auto")):
        fixed = [c for t in ("vidnb-1", "vidnb-4", "vidnb-8", "vidnb-16") if (c := find(b, t))]
        best = [min((c.walls[i] for c in fixed if c.walls[i] is not None), default=None)
                for i in range(len(auto.walls))]
        add("b. connections=\"auto\" within 1.15x of the best fixed count (per round)",
            h.paired_ratio(auto.walls, best), 1.15)
    if (on := find(p, "on")) and (off := find(p, "off")):
        add("progress on costs < 3 % wall vs off (wall ratio)", ratio(on, off), 1.03)
        add("progress on vs off, CPU seconds ratio", ratio(on, off, "cpus"), 1.03)
    big = find(a, "vidnb")
    small = find(m, "small")
    if big:
        add("peak RSS < 80 MB (1 GiB file), MB", max(x for x in big.rss if x) * h.MIB / h.MB, 80, "MB")
    if big and small:
        add("peak RSS 1 GiB / 100 MiB within 10 %", max(x for x in big.rss if x) / max(x for x in small.rss if x),
            1.10)
    imp = extra.get("import")
    if isinstance(imp, dict):
        add(f"`import vidnb` minus `import aiohttp` ({imp['aiohttp'] * 1000:.0f} ms) <= 50 ms",
            imp["extra_ms"], 50, "ms")
    return rows


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip().replace(",", "")
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())
