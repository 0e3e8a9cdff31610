"""The bench's sections: what each one downloads, with which rows, and the targets they check.

Each builder takes a :class:`Ctx` (the server, the tools found, the data made) and returns
the section(s) it measures. A vidnb row comes in two forms sharing one tag: a notebook
cell run in the warm kernel (:mod:`_kernel`) and a command run as its own process; the
other tools are commands only.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h  # noqa: E402
import _media  # noqa: E402
from _report import (  # noqa: E402
    NAN,
    Argv,
    Cell,
    Check,
    Competitor,
    Section,
    Target,
    find,
    limit_ratio,
    ratio,
    ref_row,
)

PLAIN = str(Path(__file__).resolve().parent / "plain_aiohttp.py")
PY = sys.executable
# What pip's ``vidnb`` console script runs (``python -m vidnb`` would add runpy's work).
ENTRY = "import re, sys; from vidnb._cli import main; sys.exit(main())"
THROTTLE_RATE = 20 * h.MIB  # /throttled/: nginx limit_rate 20m
YTDLP_HINT = "pip install yt-dlp"
FFMPEG_HLS_STREAMS = 2  # segments ffmpeg's HLS demuxer fetches at once (see _hls_rows)

# Sections in the order they run: letter -> name for --only (either works).
NAMES = {"a": "single", "b": "throttled", "c": "batch", "p": "progress", "m": "memory", "i": "import",
         "h": "hls", "t": "hls-throttled", "r": "remux", "w": "pages", "s": "start", "o": "storage"}
MEDIA_SECTIONS = set("htrw")


@dataclass
class Tools:
    curl: str
    wget: str | None
    aria2c: str | None
    ffmpeg: str | None
    ytdlp: list[str] | None  # argv prefix


@dataclass
class Ctx:
    """What the section builders need; ``url`` makes a URL of a file in the data dir."""

    url: Callable[..., str]
    tools: Tools
    rounds: Callable[[str], int]  # section letter -> rounds
    work: Path
    hls_segments: int = 4  # vidnb._options.HLS_SEGMENTS of this tree
    auto_max: int = 16  # vidnb._options.AUTO_MAX
    files: dict[str, tuple[str, int, str]] = field(default_factory=dict)  # key -> (name, size, sha256)
    batch_names: list[str] = field(default_factory=list)
    media: _media.MediaInputs | None = None
    has_many: bool = True


# ---------------------------------------------------------------------------- commands


def vidnb_rows(name: str, tag: str, cell: Cell | None, argv: Argv | None, **kw: object) -> list[Competitor]:
    """A vidnb row in its notebook form (a cell) and its shell form (a process)."""
    rows = []
    if cell is not None:
        rows.append(Competitor(name, cell=cell, tag=tag, vidnb=True, **kw))  # type: ignore[arg-type]
    if argv is not None:
        rows.append(Competitor(name, argv=argv, tag=tag, vidnb=True, **kw))  # type: ignore[arg-type]
    return rows


def download_cell(**options: object) -> Cell:
    extra = "".join(f", {k}={v!r}" for k, v in options.items())
    return lambda url, dest: f"await vidnb.download({url!r}, {str(dest)!r}{extra})"


def download_sync_argv(**options: object) -> Argv:
    extra = "".join(f", {k}={v!r}" for k, v in options.items())
    return lambda url, dest: [PY, "-c", f"import vidnb; vidnb.download_sync({url!r}, {str(dest)!r}{extra})"]


def vidnb_get(*flags: str) -> Argv:
    return lambda url, dest: [PY, "-c", ENTRY, "get", url, "-o", str(dest), "-q", *flags]


def curl1(curl: str) -> Argv:
    return lambda url, dest: [curl, "-s", "-f", "-o", str(dest), url]


def aria(aria2c: str, n: int) -> Argv:
    return lambda url, dest: [aria2c, "-q", f"-x{n}", f"-s{n}", "-k1M", "--file-allocation=none",
                              "--allow-overwrite=true", "--auto-file-renaming=false",
                              "-d", str(dest.parent), "-o", dest.name, url]


def ytdlp(prefix: Sequence[str], *flags: str) -> Argv:
    # --ignore-config and --no-cache-dir: nothing of this machine's yt-dlp setup takes part.
    return lambda url, dest: [*prefix, "--ignore-config", "--no-cache-dir", "-q", "--no-warnings", "--no-progress",
                              *flags, "-o", str(dest.with_suffix(".%(ext)s")), url]


def ffmpeg_copy(ffmpeg: str, *flags: str) -> Argv:
    return lambda url, dest: [ffmpeg, "-hide_banner", "-v", "error", "-y", "-i", url, "-c", "copy", *flags,
                              str(dest)]


def ytdlp_row(ctx: Ctx, name: str, tag: str, *flags: str, **kw: object) -> Competitor:
    if ctx.tools.ytdlp is None:
        return Competitor(name, argv=lambda u, d: [], tag=tag, skipped=f"yt-dlp is not installed ({YTDLP_HINT})",
                          **kw)  # type: ignore[arg-type]
    return Competitor(name, argv=ytdlp(ctx.tools.ytdlp, *flags), tag=tag, output="y.mp4",
                      **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- checks


def check_file(size: int, sha: str) -> Check:
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


def check_folder(names: Sequence[str], size: int) -> Check:
    def check(c: Competitor, dest: Path) -> str | None:
        missing = [n for n in names if not (dest / n).is_file() or (dest / n).stat().st_size != size]
        return f"{len(missing)} of {len(names)} files missing or short" if missing else None

    return check


def check_media(duration: float, kinds: set[str], min_size: int) -> Check:
    """One file left in the run folder, big enough, and (first time per row) of the right length and streams."""

    def check(c: Competitor, dest: Path) -> str | None:
        files = sorted(p.name for p in dest.parent.iterdir())
        if len(files) != 1:
            return f"{len(files)} files left: {', '.join(files[:4])}" if files else "no output file"
        out = dest.parent / files[0]
        if (size := out.stat().st_size) < min_size:
            return f"{files[0]}: {size} bytes, expected at least {min_size}"
        if not c.verified:
            c.verified = True
            try:
                got, streams = _media.probe_media(out)
            except (ValueError, OSError) as exc:
                return f"ffprobe: {exc}"
            if abs(got - duration) > 1.0:
                return f"{files[0]} lasts {got:.1f} s, expected {duration:.0f} s"
            if not kinds <= streams:
                return f"{files[0]} has {sorted(streams)}, expected {sorted(kinds)}"
        return None

    return check


def no_check(c: Competitor, dest: Path) -> str | None:
    return None


# ---------------------------------------------------------------------------- a, b, c, p, m


def single(ctx: Ctx) -> list[Section]:
    name, size, sha = ctx.files["single"]
    t = ctx.tools
    comps = [Competitor("curl", argv=curl1(t.curl), tag="curl")]
    if t.wget:
        wget = t.wget
        comps.append(Competitor("wget", argv=lambda url, dest: [wget, "-q", "-O", str(dest), url], tag="wget"))
    if t.aria2c:
        comps.append(Competitor("aria2c -x1", argv=aria(t.aria2c, 1), tag="aria2c"))
    comps.append(Competitor("plain aiohttp (iter_any + write)",
                            argv=lambda url, dest: [PY, PLAIN, "single", url, str(dest)], tag="aiohttp"))
    comps += vidnb_rows("vidnb (progress on)", "vidnb", download_cell(progress=True, connections=1),
                        download_sync_argv(progress=True, connections=1), capture_stderr=False)
    comps += vidnb_rows("vidnb (progress off)", "vidnb-quiet", download_cell(progress=False, connections=1),
                        download_sync_argv(progress=False, connections=1))
    return [Section("a", f"{size // h.MIB} MiB, one stream, unthrottled", comps, ctx.url(name), size,
                    check_file(size, sha), ctx.rounds("a"), ctx.url(ctx.files["probe"][0]),
                    pairs=[("vidnb", "curl"), ("vidnb-quiet", "curl"), ("vidnb", "aiohttp")])]


def throttled(ctx: Ctx) -> list[Section]:
    name, size, sha = ctx.files["throttled"]
    t = ctx.tools
    comps = [Competitor("curl", argv=curl1(t.curl), tag="curl", streams=1)]
    if t.aria2c:
        comps += [Competitor("aria2c -x8 -s8 -k1M", argv=aria(t.aria2c, 8), tag="aria2c-8", streams=8),
                  Competitor("aria2c -x16 -s16 -k1M", argv=aria(t.aria2c, 16), tag="aria2c-16", streams=16)]
    comps.append(Competitor("plain aiohttp, 8 ranges + pwrite", tag="aiohttp-8", streams=8,
                            argv=lambda url, dest: [PY, PLAIN, "ranges", url, str(dest), "8"]))
    for n in (1, 4, 8, 16, "auto"):
        label = f'connections="{n}"' if n == "auto" else f"connections={n}"
        comps += vidnb_rows(f"vidnb {label}", f"vidnb-{n}", download_cell(progress=False, connections=n),
                            download_sync_argv(progress=False, connections=n),
                            streams=ctx.auto_max if n == "auto" else n)

    def limit(c: Competitor) -> float | None:
        return size / (c.streams * THROTTLE_RATE) if c.streams else None

    return [Section("b", f"{size // h.MIB} MiB through limit_rate 20m per connection "
                    f"(limit: {size // h.MIB} MiB / (connections x 20 MiB/s))", comps,
                    ctx.url(name, throttled=True), size, check_file(size, sha), ctx.rounds("b"),
                    ctx.url(ctx.files["probe"][0], throttled=True), rate=THROTTLE_RATE, limit=limit,
                    pairs=[("vidnb-8", "limit"), ("vidnb-8", "aria2c-8"), ("vidnb-auto", "limit"),
                           ("vidnb-auto", "aria2c-16")],
                    notes=["Limit: the file's bytes / (connections x 20 MiB/s). nginx pauses after each send, and "
                           "a connection's first send (up to 2 MiB, its `sendfile_max_chunk`) goes out at once, so "
                           "each range can end up to 0.1 s sooner: on 200 MiB, 8 connections up to 8 % under the "
                           "limit, 16 up to 16 %."])]


def _curl_batch(curl: str, cfg: Path, urls: Sequence[str], dest: Path) -> list[str]:
    cfg.write_text("".join(f'url = "{u}"\noutput = "{dest / u.rsplit("/", 1)[-1]}"\n' for u in urls))
    return [curl, "-s", "-f", "--parallel", "--parallel-max", "16", "-K", str(cfg)]


def batch(ctx: Ctx) -> list[Section]:
    t = ctx.tools
    listfile = ctx.work / "urls.txt"
    urls = [ctx.url(f"batch/{n}") for n in ctx.batch_names]
    listfile.write_text("\n".join(urls) + "\n")
    probe_list = ctx.work / "probe-urls.txt"
    probe_list.write_text("\n".join(urls[:2]) + "\n")
    curlcfg = ctx.work / "curl.cfg"
    curl = t.curl
    comps = [Competitor("curl --parallel --parallel-max 16", tag="curl", output="",
                        argv=lambda lf, dest: _curl_batch(curl, curlcfg, urls, dest))]
    if t.aria2c:
        aria2c = t.aria2c
        comps.append(Competitor("aria2c -j16 -i list", tag="aria2c", output="",
                                argv=lambda lf, dest: [aria2c, "-q", "-j16", "-i", lf, "-d", str(dest),
                                                       "--file-allocation=none", "--allow-overwrite=true",
                                                       "--auto-file-renaming=false"]))
    comps.append(Competitor("plain aiohttp, 16 at once", tag="aiohttp", output="",
                            argv=lambda lf, dest: [PY, PLAIN, "many", lf, str(dest), "16"]))
    notes = []
    if ctx.has_many:
        comps += vidnb_rows(
            "vidnb.download_many (16)", "vidnb",
            lambda lf, dest: (f"await vidnb.download_many(open({lf!r}).read().split(), {str(dest)!r}, "
                              "concurrency=16, progress=False)"),
            lambda lf, dest: [PY, "-c", "import sys, vidnb; urls = open(sys.argv[1]).read().split(); "
                              "vidnb.download_many_sync(urls, sys.argv[2], concurrency=16, progress=False)",
                              lf, str(dest)],
            output="")
    else:
        notes.append("vidnb: not available (this tree has no vidnb.download_many).")
    n = len(ctx.batch_names)
    return [Section("c", f"{n} x 1 MiB, 16 at a time", comps, str(listfile), n * h.MIB,
                    check_folder(ctx.batch_names, h.MIB), ctx.rounds("c"), str(probe_list),
                    pairs=[("vidnb", "curl"), ("vidnb", "aiohttp")], notes=notes)]


def progress(ctx: Ctx) -> list[Section]:
    name, size, sha = ctx.files["single"]
    comps = (vidnb_rows("vidnb progress on", "on", download_cell(progress=True), download_sync_argv(progress=True),
                        capture_stderr=False)
             + vidnb_rows("vidnb progress off", "off", download_cell(progress=False),
                          download_sync_argv(progress=False)))
    return [Section("p", f"progress on vs off ({size // h.MIB} MiB)", comps, ctx.url(name), size,
                    check_file(size, sha), ctx.rounds("p"), ctx.url(ctx.files["probe"][0]), refs=["off"],
                    pairs=[("on", "off")])]


def memory(ctx: Ctx) -> list[Section]:
    name, size, sha = ctx.files["small"]
    comps = vidnb_rows("vidnb 100 MiB", "small", download_cell(progress=True), download_sync_argv(progress=True),
                       capture_stderr=False)
    return [Section("m", "peak RSS, 100 MiB file", comps, ctx.url(name), size, check_file(size, sha),
                    ctx.rounds("m"), ctx.url(ctx.files["probe"][0]), refs=[])]


# ---------------------------------------------------------------------------- h, t: HLS


def _hls_rows(ctx: Ctx, *, ts: bool, mp4: bool, ffmpeg_ts: bool, ffmpeg_mp4: bool) -> list[Competitor]:
    t = ctx.tools
    n = ctx.hls_segments
    comps = [ytdlp_row(ctx, f"yt-dlp -N {n}", "yt-dlp", "-N", str(n), streams=n)]
    if t.ffmpeg:
        # ffmpeg's HLS demuxer fetches the next segment on a second connection (its
        # http_multiple, on by default for HTTP/1.1): two at once.
        if ffmpeg_ts:
            comps.append(Competitor("ffmpeg -c copy -> .ts", argv=ffmpeg_copy(t.ffmpeg), tag="ffmpeg-ts",
                                    output="out.ts", streams=FFMPEG_HLS_STREAMS))
        if ffmpeg_mp4:
            comps.append(Competitor("ffmpeg -c copy -> faststart .mp4", tag="ffmpeg-mp4", streams=FFMPEG_HLS_STREAMS,
                                    argv=ffmpeg_copy(t.ffmpeg, "-movflags", "+faststart")))
    if ts:
        comps += vidnb_rows("vidnb -> .ts", "vidnb-ts", download_cell(progress=False), vidnb_get(),
                            output="out.ts", streams=n)
    if mp4:
        comps += vidnb_rows("vidnb -> .mp4", "vidnb", download_cell(progress=False), vidnb_get(), streams=n)
    return comps


def hls(ctx: Ctx) -> list[Section]:
    m = ctx.media
    assert m is not None
    out = []
    kinds = [("h1", "TS segments", m.ts, True), ("h2", "fMP4 segments", m.fmp4, False),
             ("h3", "master playlist: 720p and 360p video-only variants + an audio rendition", m.master, False)]
    for key, what, stream, ts in kinds:
        comps = _hls_rows(ctx, ts=ts, mp4=True, ffmpeg_ts=ts, ffmpeg_mp4=True)
        pairs = ([("vidnb-ts", "ffmpeg-ts")] if ts else []) + [("vidnb", "ffmpeg-mp4"), ("vidnb", "yt-dlp")]
        title = (f"HLS, {what}: {stream.duration:.0f} s of 720p in {len(stream.segments)} segments "
                 f"({stream.size / h.MB:.0f} MB), unthrottled")
        out.append(Section(key, title, comps, ctx.url(stream.playlist), stream.size,
                           check_media(stream.duration, {"video", "audio"}, int(stream.size * 0.8)),
                           ctx.rounds("h"), ctx.url(stream.playlist), pairs=pairs))
    return out


def hls_throttled(ctx: Ctx) -> list[Section]:
    m = ctx.media
    assert m is not None
    s = m.paced
    comps = _hls_rows(ctx, ts=True, mp4=False, ffmpeg_ts=True, ffmpeg_mp4=False)

    def limit(c: Competitor) -> float | None:
        return _media.schedule_limit(s.segments, c.streams, h.PACED_RATE) if c.streams else None

    n = ctx.hls_segments
    title = (f"HLS, TS segments through nginx limit_rate {h.PACED_RATE} B/s per connection: {len(s.segments)} "
             f"segments ({s.size / h.MB:.0f} MB); limit {_media.schedule_limit(s.segments, n, h.PACED_RATE):.2f} s "
             f"at {n} at once (vidnb, yt-dlp -N {n}), "
             f"{_media.schedule_limit(s.segments, FFMPEG_HLS_STREAMS, h.PACED_RATE):.2f} s at "
             f"{FFMPEG_HLS_STREAMS} (ffmpeg)")
    notes = [f"Limit: the segments fetched in order, each at {h.PACED_RATE} B/s, by as many connections as the row "
             f"uses at once: vidnb HLS_SEGMENTS = {n}, yt-dlp its -N, ffmpeg {FFMPEG_HLS_STREAMS} (its HLS demuxer "
             "fetches the next segment on a second connection, `http_multiple`). nginx pauses after each send for "
             "(bytes sent / rate), and one send may be up to `sendfile_max_chunk`, 2 MiB by default: under a plain "
             "`limit_rate` a 2 MB segment goes out in one send, unthrottled. Here each send is "
             f"{h.PACED_CHUNK // 1024} KiB, so the limit binds on every segment."]
    return [Section("t", title, comps, ctx.url(s.playlist, paced=True), s.size,
                    check_media(s.duration, {"video", "audio"}, int(s.size * 0.8)), ctx.rounds("t"),
                    ctx.url(m.ts.playlist), rate=h.PACED_RATE, limit=limit,
                    pairs=[("vidnb-ts", "limit"), ("vidnb-ts", "yt-dlp"), ("vidnb-ts", "ffmpeg-ts")], notes=notes)]


# ---------------------------------------------------------------------------- r: remux and mux


def remux(ctx: Ctx) -> list[Section]:
    m = ctx.media
    assert m is not None
    ffmpeg = ctx.tools.ffmpeg
    assert ffmpeg is not None
    src, video, audio = str(m.remux_src), str(m.mux_video), str(m.mux_audio)
    imp = "from vidnb._playable import remux; "
    remux_rows = vidnb_rows(
        "vidnb._playable.remux", "vidnb",
        lambda s, dest: f"{imp}remux({s!r}, {str(dest)!r})",
        lambda s, dest: [PY, "-c", f"{imp}remux({s!r}, {str(dest)!r})"])
    remux_rows.insert(0, Competitor("ffmpeg -i in.ts -c copy -movflags +faststart", tag="ffmpeg",
                                    argv=lambda s, dest: [ffmpeg, "-hide_banner", "-v", "error", "-y", "-i", s, "-c",
                                                          "copy", "-movflags", "+faststart", str(dest)]))
    mux_rows = vidnb_rows(
        "vidnb._playable.remux(video, audio=)", "vidnb",
        lambda s, dest: f"{imp}remux({video!r}, {str(dest)!r}, audio={audio!r})",
        lambda s, dest: [PY, "-c", f"{imp}remux({video!r}, {str(dest)!r}, audio={audio!r})"])
    mux_rows.insert(0, Competitor("ffmpeg -i v.ts -i a.ts -map 0:v -map 1:a -c copy -movflags +faststart",
                                  tag="ffmpeg",
                                  argv=lambda s, dest: [ffmpeg, "-hide_banner", "-v", "error", "-y", "-i", video,
                                                        "-i", audio, "-map", "0:v", "-map", "1:a", "-c", "copy",
                                                        "-movflags", "+faststart", str(dest)]))
    src_size = m.remux_src.stat().st_size
    mux_size = m.mux_video.stat().st_size + m.mux_audio.stat().st_size
    kinds = {"video", "audio"}
    return [
        Section("r1", f"remux: {m.seconds} s of 720p MPEG-TS ({src_size / h.MB:.0f} MB, the TS segments joined) "
                "-> MP4 with the index first", remux_rows, src, src_size,
                check_media(m.seconds, kinds, int(src_size * 0.8)), ctx.rounds("r"), src, pairs=[("vidnb", "ffmpeg")]),
        Section("r2", f"mux: video-only TS + audio-only TS ({mux_size / h.MB:.0f} MB, the master's renditions "
                "joined) -> one MP4", mux_rows, video, mux_size, check_media(m.seconds, kinds, int(mux_size * 0.8)),
                ctx.rounds("r"), video, pairs=[("vidnb", "ffmpeg")]),
    ]


# ---------------------------------------------------------------------------- w: pages


def pages(ctx: Ctx) -> list[Section]:
    m = ctx.media
    assert m is not None
    clip = m.clip.stat().st_size
    out = []
    for key, what, page, size in (("w1", "a <video src> of a 20 s 720p MP4", m.page_video, clip),
                                  ("w2", "a DASH manifest, video and audio apart (20 s of 720p)", m.page_dash,
                                   m.dash_size)):
        comps = [ytdlp_row(ctx, "yt-dlp PAGE_URL", "yt-dlp")]
        comps += vidnb_rows("vidnb.download(page_url)", "vidnb", download_cell(progress=False), vidnb_get())
        out.append(Section(key, f"web page: {what}, found by yt-dlp's extractor ({size / h.MB:.0f} MB)", comps,
                           ctx.url(page), size, check_media(_media.UNIT_S, {"video", "audio"}, int(size * 0.8)),
                           ctx.rounds("w"), ctx.url(page), pairs=[("vidnb", "yt-dlp")], optional="pages"))
    return out


# ---------------------------------------------------------------------------- s: cold start


def start(ctx: Ctx) -> list[Section]:
    curl = ctx.tools.curl
    version = [Competitor("curl --version", argv=lambda u, d: [curl, "--version"], tag="curl", output=""),
               Competitor("python -c pass (interpreter start-up)", argv=lambda u, d: [PY, "-c", "pass"],
                          tag="python", output=""),
               Competitor("vidnb --version", argv=lambda u, d: [PY, "-c", ENTRY, "--version"], tag="vidnb",
                          vidnb=True, output="")]
    name, size, sha = ctx.files["probe"]
    get = [Competitor("curl -o", argv=curl1(curl), tag="curl"),
           Competitor("vidnb get URL -o FILE", argv=vidnb_get(), tag="vidnb", vidnb=True)]
    return [
        Section("s1", "cold start: `vidnb --version` (a new process each time)", version, "", 0, no_check,
                ctx.rounds("s"), "", pairs=[("vidnb", "curl"), ("vidnb", "python")]),
        Section("s2", f"cold start: one {size // h.MIB} MiB file with `vidnb get` (a new process each time)", get,
                ctx.url(name), size, check_file(size, sha), ctx.rounds("s"), ctx.url(name),
                pairs=[("vidnb", "curl")]),
    ]


BUILDERS: dict[str, Callable[[Ctx], list[Section]]] = {
    "a": single, "b": throttled, "c": batch, "p": progress, "m": memory, "h": hls, "t": hls_throttled,
    "r": remux, "w": pages, "s": start,
}


# ---------------------------------------------------------------------------- targets


def _why(sec: Section | None, *tags: str) -> str:
    if sec is None:
        return "section not run"
    for c in sec.competitors:
        if c.tag in tags and not c.ok():
            return f"{c.name}: {c.skipped or c.failure or 'no timings'}"
    return ""


def _vs(what: str, sections: dict[str, Section], key: str, tag: str, other: str, where: str, aim: float,
        stretch: float | None = None) -> Target:
    sec = sections.get(key)
    row = find(sec, tag, where)  # type: ignore[arg-type]
    value = NAN
    if sec is not None and row is not None:
        if other == "limit":
            value = limit_ratio(sec, row)
        elif (ref := ref_row(sec, other, row.where)) is not None and ref.ok():
            value = ratio(row, ref)
    return Target(what, where, value, aim, stretch=stretch, why_missing=_why(sec, tag, other))


def targets(sections: dict[str, Section], extra: dict[str, object]) -> list[Target]:
    """The targets of the benchmark issue, in its order, as measured by this run."""
    out = [
        _vs("batch 1000 x 1 MiB <= 1.0x curl --parallel (stretch 0.85x)", sections, "c", "vidnb", "curl",
            "notebook", 1.0, 0.85),
        _vs("single stream <= 0.65x curl", sections, "a", "vidnb", "curl", "notebook", 0.65),
        _vs("8 connections through the throttle within 3 % of its limit", sections, "b", "vidnb-8", "limit",
            "notebook", 1.03),
        _vs('connections="auto" <= 1.1x the 16-connection limit', sections, "b", "vidnb-auto", "limit",
            "notebook", 1.10),
    ]
    for key, kind in (("h1", "TS"), ("h2", "fMP4"), ("h3", "master")):
        if key == "h1":
            out.append(_vs("HLS TS -> .ts <= 0.8x ffmpeg -c copy -> .ts", sections, key, "vidnb-ts", "ffmpeg-ts",
                           "notebook", 0.8))
        out.append(_vs(f"HLS {kind} -> .mp4 <= 0.8x ffmpeg -c copy -> faststart .mp4", sections, key, "vidnb",
                       "ffmpeg-mp4", "notebook", 0.8))
        out.append(_vs(f"HLS {kind} <= 0.3x yt-dlp -N 4", sections, key, "vidnb", "yt-dlp", "notebook", 0.3))
    out += [
        _vs("HLS through a per-connection throttle within 5 % of the limit (segments at once)", sections, "t",
            "vidnb-ts", "limit", "notebook", 1.05),
        _vs("batch <= 1.2x curl --parallel", sections, "c", "vidnb", "curl", "shell", 1.2),
    ]
    for key, kind in (("h1", "TS"), ("h2", "fMP4"), ("h3", "master")):
        out.append(_vs(f"HLS {kind}: vidnb get <= 0.4x yt-dlp", sections, key, "vidnb", "yt-dlp", "shell", 0.4))
    a, m = sections.get("a"), sections.get("m")
    big, small = find(a, "vidnb", "shell"), find(m, "small", "shell")
    big_mb = max(x for x in big.rss if x) * h.MIB / h.MB if big else NAN
    out.append(Target("peak RSS < 80 MB (1 GiB file, own process)", "shell", big_mb, 80, "MB",
                      why_missing=_why(a, "vidnb")))
    flat = (max(x for x in big.rss if x) / max(x for x in small.rss if x)) if big and small else NAN
    out.append(Target("peak RSS flat in file size: 1 GiB / 100 MiB <= 1.10x", "shell", flat, 1.10,
                      why_missing=_why(m, "small") or _why(a, "vidnb")))
    for where in ("notebook", "shell"):
        out.append(_vs("progress on costs < 3 % (wall, on / off)", sections, "p", "on", "off", where, 1.03))
    return out


def earlier_targets(sections: dict[str, Section], extra: dict[str, object]) -> list[Target]:
    """The targets of the earlier benchmark (every tool its own process)."""
    out = [
        _vs("one stream, progress on, <= 1.0x curl (stretch 0.8x)", sections, "a", "vidnb", "curl", "shell", 1.0,
            0.8),
        _vs("connections=8 <= 1.05x aria2c -x8 -s8 -k1M", sections, "b", "vidnb-8", "aria2c-8", "shell", 1.05),
    ]
    b = sections.get("b")
    auto = find(b, "vidnb-auto", "shell")
    if b is not None and auto is not None:
        fixed = [c for t in ("vidnb-1", "vidnb-4", "vidnb-8", "vidnb-16") if (c := find(b, t, "shell"))]
        best: list[float | None] = [min((w for c in fixed if (w := c.walls[i]) is not None), default=None)
                                    for i in range(len(auto.walls))]
        out.append(Target('connections="auto" within 1.15x of the best fixed count (per round)', "shell",
                          h.paired_ratio(auto.walls, best), 1.15))
    imp = extra.get("import_extra_ms")
    if isinstance(imp, tuple):
        extra_ms, aiohttp_ms = imp
        out.append(Target(f"`import vidnb` minus `import aiohttp` ({aiohttp_ms:.0f} ms) <= 50 ms", "shell",
                          extra_ms, 50, "ms"))
    return out


__all__ = ["BUILDERS", "Ctx", "NAMES", "Tools", "targets", "earlier_targets"]
