"""The benchmark's table and target code (bench/_report.py, bench/_sections.py), on made-up timings.

Nothing is started: no nginx, no downloads. The bench itself is ``python bench/run.py``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import _media  # noqa: E402
import _report as r  # noqa: E402
import _sections as s  # noqa: E402

# bench/run.py under a name of its own: "run" is too common a module name to claim.
_spec = importlib.util.spec_from_file_location("vidnb_bench_run", BENCH / "run.py")
assert _spec is not None and _spec.loader is not None
run = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = run  # its dataclasses look their module up there
_spec.loader.exec_module(run)


def _row(name: str, tag: str, walls: list[float | None], *, cell: bool = False, vidnb: bool = False,
         streams: int | None = None) -> r.Competitor:
    c = r.Competitor(name, argv=None if cell else (lambda u, d: []), cell=(lambda u, d: "") if cell else None,
                     tag=tag, vidnb=vidnb or cell, streams=streams)
    for w in walls:
        c.record(w, None if w is None else w / 2, None if w is None else 40.0, 30.0 if cell else None)
    return c


def _throttled() -> r.Section:
    size = 200 * r.h.MIB
    comps = [
        _row("curl", "curl", [10.0, 10.2, 9.8], streams=1),
        _row("aria2c -x8 -s8 -k1M", "aria2c-8", [1.4, 1.5, 1.3], streams=8),
        _row("vidnb connections=8", "vidnb-8", [1.26, 1.30, 1.24], cell=True, streams=8),
        _row("vidnb connections=8", "vidnb-8", [1.60, 1.70, 1.50], vidnb=True, streams=8),
    ]
    return r.Section("b", "throttled", comps, "url", size, lambda c, d: None, 3, rate=20 * r.h.MIB,
                     limit=lambda c: size / (c.streams * 20 * r.h.MIB) if c.streams else None,
                     pairs=[("vidnb-8", "limit"), ("vidnb-8", "aria2c-8")])


def test_where_and_order() -> None:
    sec = _throttled()
    assert [c.where for c in sec.competitors] == ["process", "process", "notebook", "shell"]
    assert [c.name for c in r.ordered(sec)][:2] == ["curl", "aria2c -x8 -s8 -k1M"]


def test_table_has_both_columns_limits_and_ratios() -> None:
    text = r.table(_throttled())
    header, _, *rows = text.splitlines()
    assert "limit s" in header and "÷ limit" in header and "÷ curl" in header and "÷ aria2c -x8 -s8 -k1M" in header
    nb = next(line for line in rows if "| notebook" in line)
    cells = [c.strip() for c in nb.strip("|").split("|")]
    # wall, MB/s, CPU, RSS (+ rise over the kernel's RSS before), limit, ÷ limit, ÷ curl, ÷ aria2c
    assert cells[2] == "1.26"
    assert cells[5] == "40 (+10)"
    assert cells[6] == "1.25" and cells[7] == "1.01"
    assert cells[9] == "0.90"  # 1.26/1.4, 1.30/1.5, 1.24/1.3 -> median 0.9
    shell = next(line for line in rows if "| shell" in line)
    assert "40 (+" not in shell  # a process's own peak, no kernel to compare with


def test_failed_and_skipped_rows() -> None:
    sec = _throttled()
    sec.competitors[1].walls = [None, None, None]
    sec.competitors[1].failure = "exit status 1"
    skipped = _row("yt-dlp -N 4", "yt-dlp", [None])
    skipped.skipped = "yt-dlp is not installed (pip install yt-dlp)"
    sec.competitors.append(skipped)
    text = r.table(sec)
    assert "failed: exit status 1" in text
    assert "skipped: yt-dlp is not installed (pip install yt-dlp)" in text


def test_both_ways_puts_notebook_and_shell_side_by_side() -> None:
    text = r.both_ways({"b": _throttled()})
    lines = text.splitlines()
    assert "in a notebook" in lines[0] and "from a shell" in lines[0]
    limit = next(line for line in lines if "limit" in line and "vidnb" in line)
    assert "1.01" in limit and "1.28" in limit  # median of 1.60, 1.70, 1.50 over 1.25


def test_targets_pass_miss_and_missing() -> None:
    sections = {"b": _throttled()}
    rows = {t.what: t for t in s.targets(sections, {})}
    eight = rows["8 connections through the throttle within 3 % of its limit"]
    assert eight.row()[-1] == "pass" and eight.column == "notebook"
    batch = rows["batch <= 1.2x curl --parallel"]
    assert batch.row()[2] == "n/a" and batch.row()[-1] == "section not run"
    assert r.Target("x", "shell", 0.9, 1.0, stretch=0.85).row()[-1] == "pass (stretch missed)"
    assert r.Target("x", "shell", 1.1, 1.0).row()[-1] == "miss"
    header = r.targets_table(s.targets(sections, {})).splitlines()[0]
    assert [c.strip() for c in header.strip("|").split("|")] == ["target", "column", "measured", "target", "result"]


def test_ytdlp_row_says_how_to_install_when_missing(tmp_path: Path) -> None:
    ctx = s.Ctx(url=lambda *a, **k: "", tools=s.Tools("curl", None, None, "ffmpeg", None), rounds=lambda k: 1,
                work=tmp_path)
    row = s.ytdlp_row(ctx, "yt-dlp -N 4", "yt-dlp", "-N", "4")
    assert row.skipped is not None and "pip install yt-dlp" in row.skipped


def test_schedule_limit() -> None:
    assert _media.schedule_limit([2_000_000] * 8, 4, 2_000_000) == pytest.approx(2.0)
    assert _media.schedule_limit([2_000_000] * 5, 4, 2_000_000) == pytest.approx(2.0)  # a last, partial wave
    assert _media.schedule_limit([1_000_000] * 4, 1, 1_000_000) == pytest.approx(4.0)


def test_only_takes_names_and_letters() -> None:
    args = run.parse_args(["--quick", "--only", "hls,batch,s"])
    assert args.only == {"h", "c", "s"}
    assert args.round_counts["h"] == 1 and args.throttled_mib == 24
    with pytest.raises(SystemExit):
        run.parse_args(["--only", "nosuch"])


def test_both_ways_compares_vidnb_rows_within_each_column() -> None:
    rows = [_row("vidnb progress on", "on", [1.0, 1.1], cell=True),
            _row("vidnb progress on", "on", [2.0, 2.1], vidnb=True),
            _row("vidnb progress off", "off", [1.0, 1.0], cell=True),
            _row("vidnb progress off", "off", [2.0, 2.0], vidnb=True)]
    sec = r.Section("p", "progress", rows, "url", 100, lambda c, d: None, 2, refs=["off"], pairs=[("on", "off")])
    line = r.both_ways({"p": sec}).splitlines()[-1]
    assert [c.strip() for c in line.strip("|").split("|")] == ["p. vidnb progress on", "÷ vidnb progress off",
                                                               "1.05", "1.02"]
