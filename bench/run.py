"""vidnb against curl, wget, aria2c and plain aiohttp, on a private nginx on 127.0.0.1.

    python bench/run.py            # the full run (about 5-8 minutes on 2 cores)
    python bench/run.py --quick    # small sizes, 2 rounds: a smoke test in under a minute
    python bench/run.py --only a,b,c --baseline /tmp/base   # this tree vs another checkout

Sections (pick some with ``--only a,b``):

a. one large file (1 GiB), single stream, unthrottled;
b. 200 MiB through nginx ``limit_rate 20m`` (20 MiB/s per connection), with 1, 4, 8, 16
   connections and ``"auto"``;
c. a batch of 1000 x 1 MiB files, 16 at a time (vidnb row only when ``vidnb.download_many_sync``
   exists);
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

``--baseline PATH`` adds, next to every vidnb row, a ``<name> [baseline]`` row running the
same command with ``PYTHONPATH`` set to PATH, another checkout of vidnb (own bytecode cache
too); the tables gain a ``this ÷ baseline`` column and the report ends with a table of
those ratios. Before any timing, each vidnb command runs once per tree on a small file and
must load every ``vidnb`` module from its own tree: the editable install's finder would
otherwise fill a submodule missing from one tree with the other tree's copy, unnoticed.
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

BASELINE = " [baseline]"  # suffix of a baseline twin's row name


# eq=False: competitors are told apart by identity (a twin points at its row and back).
@dataclass(eq=False)
class Competitor:
    name: str
    argv: Argv
    tag: str = ""  # short key used for ratios and targets
    capture_stderr: bool = True
    vidnb: bool = False  # runs vidnb: gets a baseline twin under --baseline
    tree: Tree | None = None  # vidnb rows: the checkout it imports vidnb from
    twin: Competitor | None = None  # on this tree's vidnb row: its baseline twin
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
    probe: str = ""  # a small target of the same kind, to try each vidnb command before timing
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
    p.add_argument("--baseline", type=Path, default=None, metavar="PATH",
                   help="another vidnb checkout: every vidnb row gets a twin running from PATH")
    a = p.parse_args()
    q = a.quick
    a.rounds = a.rounds or (2 if q else 3)
    a.single_mib = a.single_mib or (128 if q else 1024)
    a.throttled_mib = a.throttled_mib or (40 if q else 200)
    a.batch_files = a.batch_files or (100 if q else 1000)
    a.only = {s.strip() for s in a.only.split(",") if s.strip()}
    if a.baseline is not None:
        a.baseline = a.baseline.resolve()
        if not (a.baseline / "vidnb" / "__init__.py").is_file():
            p.error(f"--baseline {a.baseline}: no vidnb/__init__.py there")
        if a.baseline == REPO:
            p.error("--baseline is this tree")
    return a


def vidnb_env(work: Path, tree: Path = REPO, cache: str = "pycache") -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH")]))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    # A cache per tree: the two trees' bytecode never meets, and neither tree gets __pycache__ dirs.
    env["PYTHONPYCACHEPREFIX"] = str(work / cache)
    return env


@dataclass
class Tree:
    """One vidnb checkout as the bench's child processes see it."""

    path: Path
    env: dict[str, str]
    label: str  # for the report header: path and commit
    has_many: bool = False  # public vidnb.download_many_sync exists


# Printed by a probe run after the bench's own code: the file of every loaded vidnb module.
_MODULE_REPORT = ("; import sys as _s; print(*sorted({getattr(m, '__file__', None) or '' "
                  "for n, m in list(_s.modules.items()) if n.partition('.')[0] == 'vidnb'}), sep='\\n')")


def open_tree(path: Path, env: dict[str, str], cwd: Path) -> Tree:
    """Compile *path*'s vidnb into its cache (as pip does at install) and check it is the one imported.

    *cwd* must be where the timed commands run: ``python -c`` puts the current directory
    first on sys.path, so from inside a checkout its vidnb shadows PYTHONPATH.
    """
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(path / "vidnb")], env=env, cwd=cwd,
                   check=True, stdout=subprocess.DEVNULL)
    code = "import vidnb; print(vidnb.__file__); print(callable(getattr(vidnb, 'download_many_sync', None)))"
    res = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"error: `import vidnb` from {path} failed: {h.error_summary(res.stderr, res.returncode)}")
    file, has_many = res.stdout.split()
    if not Path(file).resolve().is_relative_to(path / "vidnb"):
        sys.exit(f"error: with PYTHONPATH={path}, `import vidnb` loads {file}")
    return Tree(path, env, f"{path} ({_git_head(path)})", has_many == "True")


def _git_head(path: Path) -> str:
    # GIT_OPTIONAL_LOCKS=0: read only, never refresh the index of a tree others are working in.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    git = ["git", "-C", str(path)]
    try:
        head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, env=env,
                              timeout=10).stdout.strip()
        dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no", "--", "vidnb"],
                               capture_output=True, text=True, env=env, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "not a git checkout"
    if not head:
        return "not a git checkout"
    return f"HEAD {head}" + (" + uncommitted changes in vidnb/" if dirty else "")


def add_twins(comps: list[Competitor], ours: Tree, base: Tree | None) -> list[Competitor]:
    """*comps* with each vidnb row followed by its baseline twin (same argv, the baseline's tree).

    Adjacent, so within a round the two run back to back and share the machine's state of the moment.
    """
    out: list[Competitor] = []
    for c in comps:
        out.append(c)
        if c.vidnb:
            c.tree = ours
            if base is not None:
                c.twin = Competitor(c.name + BASELINE, c.argv, c.tag + BASELINE, c.capture_stderr, vidnb=True,
                                    tree=base)
                out.append(c.twin)
    return out


def probe(sec: Section, c: Competitor, out: Path, timeout: float) -> None:
    """Run vidnb row *c*'s command once on the section's small target, untimed.

    A command that fails marks the row failed (it is then skipped, as in a round). A vidnb
    module loaded from outside the row's tree ends the bench: its numbers would be the other tree's.
    """
    assert c.tree is not None
    dest = out / f"{sec.key}-probe"
    clean(dest)
    if sec.key == "c":
        dest.mkdir(parents=True)
    argv = c.argv(sec.probe, dest)
    argv[argv.index("-c") + 1] += _MODULE_REPORT
    try:
        res = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=c.tree.env,
                             cwd=dest.parent, timeout=timeout)
    except subprocess.TimeoutExpired:
        c.failure = "probe on a small file timed out"
        return
    finally:
        clean(dest)
    if res.returncode != 0:
        c.failure = f"probe on a small file: {h.error_summary(res.stderr, res.returncode)}"
        return
    own = c.tree.path / "vidnb"
    strays = [f for f in res.stdout.splitlines() if f and not Path(f).resolve().is_relative_to(own)]
    if strays:
        sys.exit(f"error: {c.name!r} loaded {strays[0]}, outside {own} "
                 f"({len(strays)} such modules); is a module missing from that tree?")


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
    res = h.time_command(c.argv(sec.target, dest), capture_stderr=c.capture_stderr,
                         env=c.tree.env if c.tree else env, cwd=dest.parent, timeout=timeout)
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
    for c in sec.competitors:
        if c.vidnb:
            probe(sec, c, out, timeout)
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
            print(f"  round {rnd + 1}/{sec.rounds} {c.name:<46} "
                  + (f"{w:7.3f} s" if w is not None else f"FAILED: {c.failure}"), file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- reporting


def ratio(a: Competitor, b: Competitor, attr: str = "walls") -> float:
    return h.paired_ratio(getattr(a, attr), getattr(b, attr))


def fmt_ratio(x: float) -> str:
    return "" if x != x else f"{x:.2f}"


def table(sec: Section, refs: Sequence[Competitor]) -> str:
    headers = ["competitor", "wall s", "MB/s", "CPU s", "peak RSS MiB"] + [f"{r.name} ÷ this" for r in refs]
    twins = any(c.twin for c in sec.competitors)
    if twins:
        headers.append("this ÷ baseline")
    rows: list[list[object]] = []
    for c in sec.competitors:
        ok = c.ok()
        vs_base: list[object] = [fmt_ratio(ratio(c, c.twin)) if c.twin else ""] if twins else []
        if not ok:
            rows.append([c.name, f"failed: {c.failure}", "", "", ""] + [""] * len(refs) + vs_base)
            continue
        wall = h.median(ok)
        name = c.name if not c.failure else f"{c.name} ({len(ok)}/{len(c.walls)} ok: {c.failure})"
        rows.append([
            name,
            f"{wall:.2f}",
            f"{sec.size / h.MB / wall:.0f}",
            f"{h.median([x for x in c.cpus if x is not None]):.2f}",
            f"{max(x for x in c.rss if x is not None):.0f}",
        ] + [("1" if r is c else fmt_ratio(ratio(r, c))) for r in refs] + vs_base)
    return h.markdown_table(headers, rows)


def baseline_table(sections: dict[str, Section], imports: ImportCost | None) -> str:
    """This tree's vidnb rows against their baseline twins: wall medians and the spread of per-round ratios."""
    pairs: list[tuple[str, str, Sequence[float | None], Sequence[float | None]]] = [
        (key, c.name, c.walls, c.twin.walls) for key, sec in sections.items() for c in sec.competitors if c.twin]
    if imports is not None and imports.baseline:
        pairs.append(("i", "python -c 'import vidnb'", imports.vidnb, imports.baseline))
    rows: list[list[object]] = []
    for key, name, ours, base in pairs:
        per_round = h.paired_ratios(ours, base)
        spread = f"{min(per_round):.2f}-{max(per_round):.2f}" if per_round else ""
        rows.append([key, name, _median_s(ours), _median_s(base), fmt_ratio(h.median(per_round)), spread,
                     f"{len(per_round)}/{len(ours)}"])
    return h.markdown_table(["section", "row", "this s", "baseline s", "this ÷ baseline", "min-max", "rounds"],
                            rows)


def _median_s(walls: Sequence[float | None]) -> str:
    ok = [w for w in walls if w is not None]
    return f"{h.median(ok):.3f}" if ok else "failed"


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
    optional = (("wget", "wget", wget), ("aria2c", "aria2", aria2c))
    missing = [f"{n} (Debian package {p})" for n, p, t in optional if not t]

    work = Path(tempfile.mkdtemp(prefix="vidnb-bench-"))
    os.chmod(work, 0o755)
    out = (args.out_dir.resolve() if args.out_dir else work / "out")
    out.mkdir(parents=True, exist_ok=True)
    env = vidnb_env(work)
    data = work / "data"
    data.mkdir()
    os.chmod(data, 0o755)
    t_start = time.monotonic()
    sections: dict[str, Section] = {}
    extra: dict[str, object] = {}

    def make(name: str, size: int) -> tuple[str, str]:
        path = h.make_data_file(data / name, size)
        os.chmod(path, 0o644)
        return name, h.sha256_file(path)

    try:
        ours = open_tree(REPO, env, out)
        base = (open_tree(args.baseline, vidnb_env(work, args.baseline, "pycache-baseline"), out)
                if args.baseline else None)
        print(f"vidnb from {ours.label}" + (f", baseline from {base.label}" if base else ""),
              file=sys.stderr, flush=True)
        print("generating data ...", file=sys.stderr, flush=True)
        probe_name, _ = make("probe.mp4", h.MIB)
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
            probe_url = srv.url(probe_name)

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
                    Competitor("vidnb (progress on)", vidnb_single(True), "vidnb", capture_stderr=False, vidnb=True),
                    Competitor("vidnb (progress off)", vidnb_single(False), "vidnb-quiet", vidnb=True),
                    Competitor("curl", curl1, "curl"),
                ]
                if wget:
                    comps.append(Competitor("wget", wget1, "wget"))
                if aria2c:
                    comps.append(Competitor("aria2c -x1", aria(1), "aria2c"))
                comps.append(Competitor("plain aiohttp (iter_any + write)", plain(), "aiohttp"))
                sections["a"] = Section("a", f"{args.single_mib} MiB, one stream, unthrottled",
                                        add_twins(comps, ours, base), srv.url(single_name), single_size,
                                        check_file(single_size, single_sha), args.rounds, probe_url)
            if "b" in args.only:
                url = srv.url(thr_name, throttled=True)
                comps = [Competitor(f"vidnb connections={n}", vidnb_single(False, n), f"vidnb-{n}", vidnb=True)
                         for n in (1, 4, 8, 16)]
                comps.append(Competitor('vidnb connections="auto"', vidnb_single(False, "auto"), "vidnb-auto",
                                        vidnb=True))
                comps.append(Competitor("curl", curl1, "curl"))
                if aria2c:
                    comps += [Competitor("aria2c -x8 -s8 -k1M", aria(8), "aria2c-8"),
                              Competitor("aria2c -x16 -s16 -k1M", aria(16), "aria2c-16")]
                comps.append(Competitor("plain aiohttp, 8 ranges + pwrite", plain(8), "aiohttp-8"))
                sections["b"] = Section("b", f"{args.throttled_mib} MiB through limit_rate 20m per connection",
                                        add_twins(comps, ours, base), url, thr_size, check_file(thr_size, thr_sha),
                                        args.rounds, srv.url(probe_name, throttled=True))
            if "c" in args.only:
                listfile = work / "urls.txt"
                urls = [srv.url(f"batch/{n}") for n in batch_names]
                listfile.write_text("\n".join(urls) + "\n")
                probe_list = work / "probe-urls.txt"
                probe_list.write_text("\n".join(urls[:2]) + "\n")
                curlcfg = work / "curl.cfg"
                comps = []
                if ours.has_many:
                    comps.append(Competitor("vidnb.download_many (16)", vidnb_batch, "vidnb", vidnb=True))
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
                # A baseline without download_many gets no twin row, and a note instead.
                sec = Section("c", f"{args.batch_files} x 1 MiB, 16 at a time",
                              add_twins(comps, ours, base if base and base.has_many else None), str(listfile),
                              args.batch_files * h.MIB, check_folder(batch_names, h.MIB), args.rounds,
                              str(probe_list))
                if not ours.has_many:
                    sec.notes.append("vidnb: not available (this tree has no vidnb.download_many_sync).")
                if base and not base.has_many:
                    sec.notes.append(f"vidnb{BASELINE}: not available ({base.path} has no vidnb.download_many_sync).")
                sections["c"] = sec
            if "p" in args.only:
                # The difference is a few per cent: more, shorter rounds than section a.
                comps = [Competitor("vidnb progress on", vidnb_single(True), "on", capture_stderr=False, vidnb=True),
                         Competitor("vidnb progress off", vidnb_single(False), "off", vidnb=True)]
                sections["p"] = Section("p", f"progress on vs off ({args.single_mib} MiB)",
                                        add_twins(comps, ours, base), srv.url(single_name), single_size,
                                        check_file(single_size, single_sha), args.rounds * 2 + 1, probe_url)
            if "m" in args.only:
                comps = [Competitor("vidnb 100 MiB", vidnb_single(True), "small", capture_stderr=False, vidnb=True)]
                sections["m"] = Section("m", "peak RSS, 100 MiB file", add_twins(comps, ours, base),
                                        srv.url(small_name), 100 * h.MIB, check_file(100 * h.MIB, small_sha),
                                        args.rounds, probe_url)

            for key in "abcpm":
                if key in sections:
                    run_section(sections[key], out, env, args.timeout)
            nginx_version = h.tool_version([nginx, "-v"]).split("/")[-1]
        if "i" in args.only:
            extra["import"] = import_cost(ours, base, work, 10 if args.quick else 25)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    report(args, sections, extra, nginx_version, curl, wget, aria2c, missing, time.monotonic() - t_start,
           ours, base)
    return 0


def _curl_batch(curl: str, cfg: Path, urls: Sequence[str], dest: Path) -> list[str]:
    cfg.write_text("".join(f'url = "{u}"\noutput = "{dest / u.rsplit("/", 1)[-1]}"\n' for u in urls))
    return [curl, "-s", "-f", "--parallel", "--parallel-max", "16", "-K", str(cfg)]


@dataclass
class ImportCost:
    """Per-round walls of ``python -c 'import ...'``; ``baseline`` is empty without --baseline."""

    aiohttp: list[float | None]
    vidnb: list[float | None]
    baseline: list[float | None]

    @property
    def extra_ms(self) -> float:
        """Median over rounds of vidnb's import minus aiohttp's, in the same round."""
        diffs = [o - b for o, b in zip(self.vidnb, self.aiohttp, strict=True) if o is not None and b is not None]
        return 1000 * h.median(diffs)


def import_cost(ours: Tree, base: Tree | None, cwd: Path, rounds: int) -> ImportCost:
    """``python -c 'import aiohttp'`` and ``'import vidnb'`` (per tree), in alternating order, bytecode cached.

    *cwd* is outside both trees, so the current directory on sys.path cannot pick the vidnb.
    """
    cost = ImportCost([], [], [])
    runs = [("import aiohttp", ours.env, cost.aiohttp), ("import vidnb", ours.env, cost.vidnb)]
    if base is not None:
        runs.append(("import vidnb", base.env, cost.baseline))
    print("== i. import time", file=sys.stderr, flush=True)
    for rnd in range(rounds):
        for code, env, acc in runs if rnd % 2 == 0 else runs[::-1]:
            res = h.time_command([sys.executable, "-c", code], env=env, cwd=cwd, exact_rss=False)
            acc.append(res.wall_s if res.ok else None)
    return cost


def report(args: argparse.Namespace, sections: dict[str, Section], extra: dict[str, object], nginx_version: str,
           curl: str, wget: str | None, aria2c: str | None, missing: list[str], took: float, ours: Tree,
           base: Tree | None) -> None:
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
    print(f"vidnb: {ours.label}" + (f"; baseline (`{BASELINE.strip()}` rows): {base.label}" if base else ""))
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
    if base is not None:
        imports = extra.get("import")
        print()
        print("### This tree vs baseline")
        print()
        print(f"Wall time of this tree's vidnb row ÷ its `{BASELINE.strip()}` twin's in the same round: "
              "median and min-max over rounds (below 1: this tree is faster).")
        print()
        print(baseline_table(sections, imports if isinstance(imports, ImportCost) else None))


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
    if isinstance(imp, ImportCost):
        aiohttp_ms = 1000 * h.median([w for w in imp.aiohttp if w is not None])
        add(f"`import vidnb` minus `import aiohttp` ({aiohttp_ms:.0f} ms) <= 50 ms", imp.extra_ms, 50, "ms")
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
