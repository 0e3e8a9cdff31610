"""vidnb against curl, wget, aria2c, yt-dlp, ffmpeg and plain aiohttp, on a private nginx on 127.0.0.1.

    python bench/run.py                    # the full run (about 15 minutes on a quiet 2-core VM)
    python bench/run.py --quick            # small sizes, one round: a smoke run (2-3 minutes)
    python bench/run.py --only hls,batch   # some sections (names or letters)
    python bench/run.py --only a,b,c --baseline /tmp/base   # this tree vs another checkout

Measured both ways, in one run:

- **in a notebook**: vidnb warm in a running interpreter (``bench/_kernel.py``: vidnb
  imported, one event loop, each download a cell ``await vidnb.download(...)``), and every
  other tool started as a child of that interpreter, as ``!curl`` in a cell;
- **from a shell**: every tool its own new process, vidnb too (``python -c ...`` or
  ``vidnb get``), so interpreter start-up and imports count.

The other tools run once per round and serve both columns. Sections (``--only``, names or
letters, comma-separated):

a. single: one 1 GiB file, unthrottled: vidnb with progress on/off, curl, wget, aria2c -x1,
   plain aiohttp;
b. throttled: 200 MiB through nginx ``limit_rate 20m`` per connection: vidnb with
   ``connections=1, 4, 8, 16, "auto"``, curl, aria2c ``-x8 -s8`` and ``-x16 -s16``, plain
   aiohttp with 8 ranges; with the throttle's limit, bytes / (connections x rate);
c. batch: 1000 x 1 MiB, 16 at a time: vidnb.download_many, curl --parallel, aria2c -j16,
   plain aiohttp;
p. progress: progress bar on vs off (more rounds);
m. memory: peak RSS on 100 MiB, against a's 1 GiB;
i. import: ``import vidnb`` vs ``import aiohttp``;
h. hls: TS segments, fMP4 segments, a master with variants and an audio rendition (120 s
   of 720p in 2 s segments, made with ffmpeg): vidnb to .ts and .mp4, ``vidnb get``,
   ``yt-dlp -N HLS_SEGMENTS``, ``ffmpeg -i URL -c copy`` to .ts and to a faststart .mp4;
t. hls-throttled: the first 20 TS segments through a per-connection limit that binds on
   small files (``/paced/``: 2,048,000 B/s, sent 64 KiB at a time), with the limit for the
   number of segments each tool fetches at once;
r. remux: ``vidnb._playable.remux`` TS -> MP4 and video + audio -> MP4, against the ffmpeg
   command line doing the same;
w. pages: a page with a ``<video src>`` and one with a DASH manifest (video and audio
   apart): ``vidnb.download(page_url)`` against ``yt-dlp PAGE_URL``; skipped, saying why,
   while this tree's vidnb cannot download pages;
s. start: ``vidnb --version`` and a one-file ``vidnb get`` against curl (shell only);
o. storage: ``bench/bench_storage.py``'s report, when that file exists.

Within a section every row runs once per round, in an order that reverses every round, and
each ratio is the median over rounds of the per-round ratio, so the VM's drifts (often
+-50 %) hit both sides of a ratio alike. Every output is checked (size and sha256 the first
time for plain files; for media, one file left, its length and streams by ffprobe) and
deleted, then ``sync``.

vidnb runs from this working tree with its bytecode cached in a private
``PYTHONPYCACHEPREFIX`` (as an installed package has it). Installs nothing: exits naming the
Debian package when nginx or curl is missing; without ffmpeg the media sections are left
out, and without wget, aria2c or yt-dlp (``pip install yt-dlp``) their rows, each with a note.

``--baseline PATH`` adds, next to every vidnb row, a ``<name> [baseline]`` row running the
same cell in a kernel of its own, or the same command, with PATH (another checkout of
vidnb) in place of this tree; the tables gain a ``÷ baseline`` column and the report a
table of those ratios. Before any timing each vidnb row runs once on a small target and
must load every ``vidnb`` module from its own tree: the editable install's finder would
otherwise fill a submodule missing from one tree with the other tree's copy, unnoticed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h  # noqa: E402
import _media  # noqa: E402
import _sections as S  # noqa: E402
from _kernel import Kernel, KernelError  # noqa: E402
from _report import (  # noqa: E402
    BASELINE,
    Competitor,
    Section,
    Tree,
    both_ways,
    fmt_ratio,
    table,
    targets_table,
)

REPO = Path(__file__).resolve().parent.parent
STORAGE = Path(__file__).resolve().parent / "bench_storage.py"

# Rounds per section: full run, --quick. --rounds N sets the timed sections to N (p: 2N+1).
ROUNDS = {"a": (3, 1), "b": (3, 1), "c": (3, 1), "p": (7, 3), "m": (3, 1), "i": (25, 5), "h": (5, 1),
          "t": (3, 1), "r": (5, 1), "w": (5, 1), "s": (15, 3)}
FEATURE_MISSING = ("NotAVideoError", "MissingDependencyError")  # what a tree without pages raises


# ---------------------------------------------------------------------------- setup


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes, one round: a smoke run (2-3 minutes)")
    p.add_argument("--rounds", type=int, default=None, help="rounds per section (default 3-15 by section; --quick 1)")
    p.add_argument("--only", default=",".join(S.NAMES),
                   help="sections to run, letters or names: " + ", ".join(f"{k}={v}" for k, v in S.NAMES.items()))
    p.add_argument("--single-mib", type=int, default=None, help="section a file size (default 1024)")
    p.add_argument("--throttled-mib", type=int, default=None, help="section b file size (default 200)")
    p.add_argument("--batch-files", type=int, default=None, help="section c file count (default 1000)")
    p.add_argument("--hls-seconds", type=int, default=None,
                   help=f"length of the HLS streams, a multiple of {_media.UNIT_S} (default 120; --quick 20)")
    p.add_argument("--paced-segments", type=int, default=None,
                   help="segments in the throttled HLS stream (default 20; --quick 4)")
    p.add_argument("--out-dir", type=Path, default=None, help="where downloads go (default: a temp dir)")
    p.add_argument("--timeout", type=float, default=300.0, help="per-command timeout in seconds")
    p.add_argument("--baseline", type=Path, default=None, metavar="PATH",
                   help="another vidnb checkout: every vidnb row gets a twin running from PATH")
    a = p.parse_args(argv)
    q = a.quick
    a.single_mib = a.single_mib or (128 if q else 1024)
    a.throttled_mib = a.throttled_mib or (24 if q else 200)
    a.batch_files = a.batch_files or (100 if q else 1000)
    a.hls_seconds = a.hls_seconds or (20 if q else 120)
    a.paced_segments = a.paced_segments or (4 if q else 20)
    if a.hls_seconds % _media.UNIT_S or a.hls_seconds <= 0:
        p.error(f"--hls-seconds must be a positive multiple of {_media.UNIT_S}")
    a.paced_segments = min(a.paced_segments, a.hls_seconds // _media.SEGMENT_S)
    letters = {v: k for k, v in S.NAMES.items()}
    only: set[str] = set()
    for word in (w.strip().lower() for w in a.only.split(",")):
        if not word:
            continue
        key = word if word in S.NAMES else letters.get(word)
        if key is None:
            p.error(f"--only: unknown section {word!r}; sections: "
                    + ", ".join(f"{k} ({v})" for k, v in S.NAMES.items()))
        only.add(key)
    a.only = only
    a.round_counts = {}
    for key, (full, quick) in ROUNDS.items():
        n = quick if q else full
        if a.rounds and key in "abcmhtrw":
            n = a.rounds
        elif a.rounds and key == "p":
            n = 2 * a.rounds + 1
        elif a.rounds and key == "s":
            n = max(a.rounds, 3)
        a.round_counts[key] = n
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


def tools_env() -> dict[str, str]:
    """The environment of the other tools: this one, without the bench's bytecode cache for vidnb.

    yt-dlp (and plain aiohttp) then read the bytecode pip wrote at install, as they would
    from a shell; under PYTHONPYCACHEPREFIX their first run would compile every module.
    """
    env = dict(os.environ)
    env.pop("PYTHONPYCACHEPREFIX", None)
    return env


def open_tree(path: Path, env: dict[str, str], cwd: Path) -> Tree:
    """Compile *path*'s vidnb into its cache (as pip does at install) and check it is the one imported.

    *cwd* must be where the timed commands run: ``python -c`` puts the current directory
    first on sys.path, so from inside a checkout its vidnb shadows PYTHONPATH.
    """
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(path / "vidnb")], env=env, cwd=cwd,
                   check=True, stdout=subprocess.DEVNULL)
    code = "import vidnb; print(vidnb.__file__); print(callable(getattr(vidnb, 'download_many', None)))"
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


def find_tools(only: set[str]) -> tuple[S.Tools, list[str]]:
    """The tools found, and a note for each one missing (rows or sections left out)."""
    curl = h.require_tool("curl", "curl")
    tools = S.Tools(curl, h.optional_tool("wget"), h.optional_tool("aria2c"), None, None)
    missing = [f"{n} (Debian package {p})" for n, p, t in (("wget", "wget", tools.wget),
                                                           ("aria2c", "aria2", tools.aria2c)) if not t]
    if only & S.MEDIA_SECTIONS:
        ffmpeg, ffprobe = h.optional_tool("ffmpeg"), h.optional_tool("ffprobe")
        if ffmpeg and ffprobe:
            tools.ffmpeg = ffmpeg
        else:
            missing.append("ffmpeg/ffprobe (Debian package ffmpeg): sections h, t, r, w left out")
        # This Python's own yt-dlp script (not a version manager's shim, which adds its own start-up),
        # else one on PATH, else the module.
        own = Path(sysconfig.get_path("scripts")) / "yt-dlp"
        found = str(own) if own.is_file() and os.access(own, os.X_OK) else shutil.which("yt-dlp")
        if found:
            tools.ytdlp = [found]
        elif _importable("yt_dlp"):
            tools.ytdlp = [sys.executable, "-m", "yt_dlp"]
        else:
            missing.append(f"yt-dlp ({S.YTDLP_HINT}): its rows left out")
    return tools, missing


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def add_twins(comps: list[Competitor], ours: Tree, base: Tree | None) -> list[Competitor]:
    """*comps* with each vidnb row followed by its baseline twin (same cell or argv, the baseline's tree).

    Adjacent, so within a round the two run back to back and share the machine's state of the moment.
    """
    out: list[Competitor] = []
    for c in comps:
        out.append(c)
        if c.vidnb:
            c.tree = ours
            if base is not None:
                c.twin = Competitor(c.name + BASELINE, argv=c.argv, cell=c.cell, tag=c.tag + BASELINE,
                                    capture_stderr=c.capture_stderr, vidnb=True, streams=c.streams,
                                    output=c.output, tree=base, skipped=c.skipped)
                out.append(c.twin)
    return out


# ---------------------------------------------------------------------------- running


@dataclass
class Runner:
    kernels: dict[Path, Kernel]  # tree path -> its kernel
    ours: Kernel  # starts every process (as a notebook cell's !cmd)
    env: dict[str, str]  # for the other tools
    out: Path
    timeout: float

    @property
    def run_dir(self) -> Path:
        return self.out / "run"

    def fresh(self) -> Path:
        clean(self.run_dir)
        self.run_dir.mkdir(parents=True)
        return self.run_dir


# Appended to a probe's ``python -c`` code: the file of every loaded vidnb module, one a line.
_MODULE_REPORT = ("import sys as _s; print(*('VIDNB-MODULE ' + (getattr(m, '__file__', None) or '') "
                  "for n, m in list(_s.modules.items()) if n.partition('.')[0] == 'vidnb'), sep='\\n')")


def _stray(files: Sequence[str], tree: Tree) -> list[str]:
    own = tree.path / "vidnb"
    return [f for f in files if f and not Path(f).resolve().is_relative_to(own)]


def probe(sec: Section, c: Competitor, r: Runner) -> None:
    """Run vidnb row *c* once on the section's small target, untimed (for a notebook row: its warm-up).

    A row that fails is marked failed (and then skipped, as in a round). In a section of a
    feature the tree may not have yet (``sec.optional``), a notebook row refused with
    NotAVideoError or MissingDependencyError skips every vidnb row of that tree, saying why.
    A vidnb module loaded from outside the row's tree ends the bench.
    """
    assert c.tree is not None
    if c.skipped:
        return
    run_dir = r.fresh()
    dest = run_dir / c.output if c.output else run_dir
    try:
        if c.cell is not None:
            res = r.kernels[c.tree.path].cell(c.cell(sec.probe, dest), r.timeout)
            problem, kind = res.error, res.error_type
        else:
            argv = c.argv(sec.probe, dest)  # type: ignore[misc]
            at = argv.index("-c") + 1
            argv[at] = f"try:\n{textwrap.indent(argv[at], '    ')}\nfinally:\n    {_MODULE_REPORT}"
            try:
                done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                      env=c.tree.env, cwd=run_dir, timeout=r.timeout)
            except subprocess.TimeoutExpired:
                problem, kind = "timed out", None
            else:
                problem = None if done.returncode == 0 else h.error_summary(done.stderr, done.returncode)
                kind = None
                files = [ln.removeprefix("VIDNB-MODULE ") for ln in done.stdout.splitlines()
                         if ln.startswith("VIDNB-MODULE ")]
                if strays := _stray(files, c.tree):
                    sys.exit(f"error: {c.name!r} loaded {strays[0]}, outside {c.tree.path / 'vidnb'} "
                             f"({len(strays)} such modules); is a module missing from that tree?")
    finally:
        clean(r.run_dir)
    if problem is None:
        return
    if sec.optional and c.cell is not None and kind in FEATURE_MISSING:
        for other in sec.competitors:
            if other.vidnb and other.tree is c.tree:
                other.skipped = f"this vidnb cannot download {sec.optional} yet"
        sec.notes.append(f"Skipped: {c.name} from {c.tree.path} raised {problem.rstrip('.')}. These rows run once that "
                         "tree's vidnb downloads them.")
        return
    c.failure = f"probe: {problem}"


def run_one(sec: Section, c: Competitor, r: Runner) -> None:
    run_dir = r.fresh()
    dest = run_dir / c.output if c.output else run_dir
    problem: str | None
    if c.cell is not None:
        assert c.tree is not None
        cres = r.kernels[c.tree.path].cell(c.cell(sec.target, dest), r.timeout)
        problem = cres.error
        wall, cpu, rss, base = cres.wall_s, cres.cpu_s, cres.peak_rss_mib, cres.base_rss_mib
    else:
        assert c.argv is not None
        res = r.ours.run(c.argv(sec.target, dest), env=c.tree.env if c.tree else r.env, cwd=run_dir,
                         timeout=r.timeout, capture_stderr=c.capture_stderr)
        problem = None if res.ok else h.error_summary(res.stderr, res.returncode)
        wall, cpu, rss, base = res.wall_s, res.cpu_s, res.maxrss_mib, None
    if problem is None:
        problem = sec.check(c, dest)
    clean(run_dir)
    if problem:
        c.failure = c.failure or problem
        c.record(None)
        return
    c.record(wall, cpu, rss, base)


def run_section(sec: Section, r: Runner) -> None:
    print(f"== {sec.key}. {sec.title}", file=sys.stderr, flush=True)
    started = time.monotonic()
    for c in sec.competitors:
        if c.vidnb:
            probe(sec, c, r)
    for tree_path, kernel in r.kernels.items():
        tree = next((c.tree for c in sec.competitors if c.tree and c.tree.path == tree_path), None)
        if tree is not None and (strays := _stray(kernel.modules(), tree)):
            sys.exit(f"error: the kernel for {tree_path} loaded {strays[0]}, outside its tree")
    for rnd in range(sec.rounds):
        order = sec.competitors if rnd % 2 == 0 else sec.competitors[::-1]
        for c in order:
            if c.skipped or (c.failure and not c.ok()):
                c.record(None)  # broken from the start: don't burn time
                continue
            run_one(sec, c, r)
            w = c.walls[-1]
            label = f"{c.name} ({c.where})"
            print(f"  round {rnd + 1}/{sec.rounds} {label:<58} "
                  + (f"{w:7.3f} s" if w is not None else f"FAILED: {c.failure}"), file=sys.stderr, flush=True)
    print(f"   ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)


def clean(dest: Path) -> None:
    if dest.is_dir():
        shutil.rmtree(dest, ignore_errors=True)
    else:
        h.remove_quietly(dest)
    # Flush the deleted data's write-back now, so it is not billed to the next run.
    os.sync()


# ---------------------------------------------------------------------------- import cost, storage


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


def storage_report(quick: bool, env: dict[str, str], timeout: float) -> str:
    """The object-storage line: ``python bench/bench_storage.py [--quick]``'s output, or why there is none.

    The hook for ``bench/bench_storage.py``: it is run as a script and whatever it prints on
    stdout, markdown, goes into the report. For ``--quick``, it gets ``--quick`` when its text
    mentions that flag, else ``--files 100 --rounds 1`` when it mentions those.
    """
    if not STORAGE.is_file():
        return "No `bench/bench_storage.py` in this tree: no object-storage rows."
    text = STORAGE.read_text()
    flags: list[str] = []
    if quick and "--quick" in text:
        flags = ["--quick"]
    elif quick and "--files" in text and "--rounds" in text:
        flags = ["--files", "100", "--rounds", "1"]
    argv = [sys.executable, str(STORAGE), *flags]
    print(f"== o. {' '.join(argv[1:])}", file=sys.stderr, flush=True)
    try:
        res = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout * 4, cwd=REPO)
    except subprocess.TimeoutExpired:
        return f"`{' '.join(argv[1:])}` timed out."
    if res.returncode != 0:
        return f"`{' '.join(argv[1:])}` failed: {h.error_summary(res.stderr, res.returncode)}"
    return res.stdout.strip()


# ---------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    nginx = h.require_tool("nginx", "nginx-light", ["/usr/sbin/nginx"])
    tools, missing = find_tools(args.only)
    only = set(args.only)
    if not tools.ffmpeg:
        only -= S.MEDIA_SECTIONS

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
    kernels: dict[Path, Kernel] = {}
    storage = ""

    def make(name: str, size: int) -> tuple[str, int, str]:
        path = h.make_data_file(data / name, size)
        os.chmod(path, 0o644)
        return name, size, h.sha256_file(path)

    try:
        ours = open_tree(REPO, env, out)
        base = (open_tree(args.baseline, vidnb_env(work, args.baseline, "pycache-baseline"), out)
                if args.baseline else None)
        print(f"vidnb from {ours.label}" + (f", baseline from {base.label}" if base else ""),
              file=sys.stderr, flush=True)
        print("(all sections: about 15 minutes on a quiet 2-core VM; --quick 2-3)", file=sys.stderr, flush=True)
        for note in missing:
            print(f"not installed, left out: {note}", file=sys.stderr, flush=True)
        for tree in filter(None, (ours, base)):
            k = Kernel(tree.env, out, work / f"kernel-{len(kernels)}.log")
            kernels[tree.path] = k
            if not Path(k.vidnb_file).resolve().is_relative_to(tree.path / "vidnb"):
                sys.exit(f"error: the kernel for {tree.path} imported {k.vidnb_file}")
        runner = Runner(kernels, kernels[REPO], tools_env(), out, args.timeout)
        print("generating data ...", file=sys.stderr, flush=True)
        ctx = S.Ctx(url=lambda *a, **k: "", tools=tools, rounds=args.round_counts.__getitem__, work=work,
                    has_many=ours.has_many)
        options = "__import__('importlib').import_module('vidnb._options')"
        ctx.hls_segments = int(runner.ours.eval(f"getattr({options}, 'HLS_SEGMENTS', 4)"))
        ctx.auto_max = int(runner.ours.eval(f"getattr({options}, 'AUTO_MAX', 16)"))
        ctx.files["probe"] = make("probe.mp4", h.MIB)
        if only & {"a", "p"}:
            ctx.files["single"] = make("single.mp4", args.single_mib * h.MIB)
        if "b" in only:
            ctx.files["throttled"] = make("throttled.mp4", args.throttled_mib * h.MIB)
        if "m" in only:
            ctx.files["small"] = make("small.mp4", 100 * h.MIB)
        if "c" in only:
            ctx.batch_names = [f"b{i:04d}.mp4" for i in range(args.batch_files)]
            (data / "batch").mkdir()
            os.chmod(data / "batch", 0o755)
            for n in ctx.batch_names:
                os.chmod(h.make_data_file(data / "batch" / n, h.MIB), 0o644)
        if only & S.MEDIA_SECTIONS:
            t0 = time.monotonic()
            ctx.media = _media.make_media(data, args.hls_seconds, args.paced_segments)
            print(f"   media made in {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)

        with h.running_nginx(data, prefix=work / "nginx", nginx=nginx) as srv:
            ctx.url = srv.url
            # Untimed warm-up: page cache, nginx's first request, the filesystem's first big file.
            for name in ("single.mp4", "throttled.mp4", "small.mp4"):
                if (data / name).exists():
                    h.time_command([tools.curl, "-s", "-o", "/dev/null", srv.url(name)])
            if ctx.media is not None:
                for f in (data / "media").rglob("*"):
                    if f.is_file():
                        f.read_bytes()
            for key in "abcpmhtrws":
                if key in only:
                    for sec in S.BUILDERS[key](ctx):
                        # A baseline without download_many gets no twin rows in the batch, and a note instead.
                        no_many = sec.key == "c" and base is not None and not base.has_many
                        sec.competitors = add_twins(sec.competitors, ours, None if no_many else base)
                        if no_many and base is not None:
                            sec.notes.append(f"vidnb{BASELINE}: not available ({base.path} has no download_many).")
                        sections[sec.key] = sec
                        run_section(sec, runner)
            nginx_version = h.tool_version([nginx, "-v"]).split("/")[-1]
        if "i" in only:
            cost = import_cost(ours, base, work, args.round_counts["i"])
            extra["import"] = cost
            aiohttp_ms = 1000 * h.median([w for w in cost.aiohttp if w is not None])
            extra["import_extra_ms"] = (cost.extra_ms, aiohttp_ms)
        if "o" in only:
            storage = storage_report(args.quick, env, args.timeout)
    except KernelError as exc:
        sys.exit(f"error: {exc}")
    finally:
        for k in kernels.values():
            k.close()
        shutil.rmtree(work, ignore_errors=True)

    report(args, sections, extra, storage, nginx_version, tools, missing, time.monotonic() - t_start, ours, base)
    return 0


# ---------------------------------------------------------------------------- report


def report(args: argparse.Namespace, sections: dict[str, Section], extra: dict[str, object], storage: str,
           nginx_version: str, tools: S.Tools, missing: list[str], took: float, ours: Tree,
           base: Tree | None) -> None:
    versions = {"nginx": nginx_version, "curl": h.tool_version([tools.curl, "--version"]).split()[1]}
    if tools.wget:
        versions["wget"] = h.tool_version([tools.wget, "--version"]).split()[2]
    if tools.aria2c:
        versions["aria2c"] = h.tool_version([tools.aria2c, "--version"]).split()[-1]
    if tools.ffmpeg and any(k[0] in S.MEDIA_SECTIONS for k in sections):
        versions["ffmpeg"] = h.tool_version([tools.ffmpeg, "-version"]).split()[2]
        if tools.ytdlp:
            versions["yt-dlp"] = h.tool_version([*tools.ytdlp, "--version"])
    import aiohttp  # noqa: F401 - only for its version in the header

    versions["aiohttp"] = sys.modules["aiohttp"].__version__
    rounds = sorted(set(args.round_counts[k[0]] for k in sections))
    print()
    print(f"**vidnb bench** ({'quick' if args.quick else 'full'} run, {took / 60:.1f} min): "
          + h.machine_info({"cpu": _cpu_model(), **versions, "load": f"{os.getloadavg()[0]:.2f}",
                            "rounds": "/".join(map(str, rounds))}))
    print()
    print(f"vidnb: {ours.label}" + (f"; baseline (`{BASELINE.strip()}` rows): {base.label}" if base else ""))
    print()
    print("Column `notebook`: vidnb in a warm interpreter (imported, one event loop; each download a cell "
          "`await vidnb.download(...)`), the other tools started from it as `!tool` in a cell would be. "
          "Column `shell`: vidnb as a new process. `both`: another tool, started once per round; its figures "
          "serve both columns. Wall and CPU (user+sys; a notebook row's is the kernel's, all threads) are medians "
          "over rounds; MB = 10^6 bytes; peak RSS is the largest seen (a notebook row: the kernel's peak during the "
          "cell, and in brackets how far above the kernel's RSS before it). `÷ X` is the median over rounds of "
          "this row's wall time divided by X's in the same round (below 1: this row is faster).")
    for key, sec in sections.items():
        print()
        print(f"### {key}. {sec.title}")
        print()
        print(table(sec))
        for note in sec.notes:
            print(f"\n{note}")
    if isinstance(imp := extra.get("import"), ImportCost):
        print()
        print("### i. import time")
        print()
        print(h.markdown_table(["python -c", "wall s (median)"],
                               [["import aiohttp", f"{h.median([w for w in imp.aiohttp if w]):.3f}"],
                                ["import vidnb", f"{h.median([w for w in imp.vidnb if w]):.3f}"]]))
    if storage:
        print()
        print("### o. object storage")
        print()
        print(storage)
    if missing:
        print(f"\nNot installed, left out: {'; '.join(missing)}.")
    print()
    print("### Both ways")
    print()
    print(both_ways(sections))
    print()
    print("### Earlier targets")
    print()
    print(targets_table(S.earlier_targets(sections, extra)))
    if base is not None:
        imports = extra.get("import")
        print()
        print("### This tree vs baseline")
        print()
        print(f"Wall time of this tree's vidnb row ÷ its `{BASELINE.strip()}` twin's in the same round: "
              "median and min-max over rounds (below 1: this tree is faster).")
        print()
        print(baseline_table(sections, imports if isinstance(imports, ImportCost) else None))
    print()
    print("### Targets")
    print()
    if args.quick:
        print("A quick run: small sizes and one round, so these say that every row works, not how fast it is; "
              "the targets are for the full run's sizes.\n")
    print(targets_table(S.targets(sections, extra)))


def baseline_table(sections: dict[str, Section], imports: ImportCost | None) -> str:
    """This tree's vidnb rows against their baseline twins: wall medians and the spread of per-round ratios."""
    pairs: list[tuple[str, str, Sequence[float | None], Sequence[float | None]]] = [
        (key, f"{c.name} ({c.where})", c.walls, c.twin.walls)
        for key, sec in sections.items() for c in sec.competitors if c.twin]
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
