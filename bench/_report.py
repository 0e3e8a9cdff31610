"""The bench's rows and sections, and the tables made from them (no processes, no I/O).

Every section's table lists the other tools first (each its own process, measured once per
round and used by both columns), then each vidnb row twice: "notebook" (vidnb warm in the
kernel process, :mod:`_kernel`) and "shell" (a new ``python`` process). A ``÷ X`` column
is the median over rounds of that row's wall time divided by X's in the same round (below
1: the row is faster than X); a notebook row is divided by X started from the kernel, a
shell row by X started as its own process - the same X, the same round.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h  # noqa: E402

Argv = Callable[[str, Path], list[str]]  # (target, destination) -> argv of a process
Cell = Callable[[str, Path], str]  # (target, destination) -> code of a notebook cell
Where = Literal["notebook", "shell", "process"]

BASELINE = " [baseline]"  # suffix of a baseline twin's row name
NAN = float("nan")


@dataclass
class Tree:
    """One vidnb checkout as the bench's processes see it."""

    path: Path
    env: dict[str, str]
    label: str  # for the report header: path and commit
    has_many: bool = False  # public vidnb.download_many exists


# eq=False: rows are told apart by identity (a twin points at its row).
@dataclass(eq=False)
class Competitor:
    """One row: a command run as its own process (``argv``) or a cell run in the kernel (``cell``)."""

    name: str
    argv: Argv | None = None
    cell: Cell | None = None
    tag: str = ""  # key for ratios and targets; a vidnb row's notebook and shell forms share it
    capture_stderr: bool = True
    vidnb: bool = False  # runs vidnb: gets a baseline twin under --baseline
    streams: int | None = None  # connections at once, for a throttled section's limit
    output: str = "out.mp4"  # its file in the run folder; "" means the folder itself (batches)
    tree: Tree | None = None  # vidnb rows: the checkout it imports vidnb from
    twin: Competitor | None = None  # on this tree's vidnb row: its baseline twin
    walls: list[float | None] = field(default_factory=list)
    cpus: list[float | None] = field(default_factory=list)
    rss: list[float | None] = field(default_factory=list)
    rss_base: list[float | None] = field(default_factory=list)  # notebook rows: the kernel's RSS before
    failure: str | None = None
    skipped: str | None = None  # never run, and why
    verified: bool = False

    @property
    def where(self) -> Where:
        if self.cell is not None:
            return "notebook"
        return "shell" if self.vidnb else "process"

    def ok(self) -> list[float]:
        return [w for w in self.walls if w is not None]

    def record(self, wall: float | None, cpu: float | None = None, rss: float | None = None,
               base: float | None = None) -> None:
        self.walls.append(wall)
        self.cpus.append(cpu)
        self.rss.append(rss)
        self.rss_base.append(base)


Check = Callable[[Competitor, Path], "str | None"]


@dataclass
class Section:
    key: str
    title: str
    competitors: list[Competitor]
    target: str  # URL, list file or input file: what each argv/cell gets
    size: int  # bytes per run (all files), for MB/s; 0: no MB/s column
    check: Check
    rounds: int
    probe: str = ""  # a small target of the same kind, to try each vidnb row before timing
    rate: float | None = None  # throttled: bytes/s per connection
    limit: Callable[[Competitor], float | None] | None = None  # throttled: seconds at best for a row
    refs: list[str] | None = None  # tags of the "÷ X" columns (default: every tool that is not vidnb)
    pairs: list[tuple[str, str]] = field(default_factory=list)  # (vidnb tag, tag or "limit") for the summary
    optional: str = ""  # a feature vidnb may not have yet: a probe refusing it skips the vidnb rows
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------- figures


def ratio(a: Competitor, b: Competitor, attr: str = "walls") -> float:
    return h.paired_ratio(getattr(a, attr), getattr(b, attr))


def limit_ratio(sec: Section, c: Competitor) -> float:
    lim = sec.limit(c) if sec.limit else None
    if not lim:
        return NAN
    return h.median([w / lim for w in c.ok()])


def fmt_ratio(x: float) -> str:
    return "" if x != x else f"{x:.2f}"


def fmt_s(x: float) -> str:
    return "" if x != x else (f"{x:.3f}" if x < 1 else f"{x:.2f}")


def find(sec: Section | None, tag: str, where: Where | None = None) -> Competitor | None:
    """The row with *tag* (and *where*, when given) that has timings, or None."""
    if sec is None:
        return None
    rows = [c for c in sec.competitors if c.tag == tag and c.ok()]
    if where is not None:
        same = [c for c in rows if c.where == where]
        rows = same or [c for c in rows if c.where == "process"]
    return rows[0] if rows else None


def ref_tags(sec: Section) -> list[str]:
    if sec.refs is not None:
        return sec.refs
    tags: list[str] = []
    for c in sec.competitors:
        if not c.vidnb and c.tag not in tags:
            tags.append(c.tag)
    return tags


def ref_row(sec: Section, tag: str, where: Where) -> Competitor | None:
    """What a row of *where* is divided by for column *tag*: the same column's row, else the tool's process."""
    rows = [c for c in sec.competitors if c.tag == tag and not c.name.endswith(BASELINE)]
    same = [c for c in rows if c.where == where] or [c for c in rows if c.where == "process"]
    return same[0] if same else None


def _rss_cell(c: Competitor) -> str:
    peaks = [x for x in c.rss if x is not None]
    if not peaks:
        return ""
    if c.where != "notebook":
        return f"{max(peaks):.0f}"
    rises = [p - b for p, b in zip(c.rss, c.rss_base, strict=False) if p is not None and b is not None]
    return f"{max(peaks):.0f} (+{max(rises):.0f})" if rises else f"{max(peaks):.0f}"


def ordered(sec: Section) -> list[Competitor]:
    """Other tools first, then the vidnb rows (each notebook row before its shell row), twins after theirs."""
    return [c for c in sec.competitors if not c.vidnb] + [c for c in sec.competitors if c.vidnb]


def table(sec: Section) -> str:
    tags = [t for t in ref_tags(sec) if any(c.tag == t for c in sec.competitors)]
    names = {t: next(c.name for c in sec.competitors if c.tag == t and c.where != "notebook"
                     and not c.name.endswith(BASELINE)) for t in tags}
    headers = ["row", "column", "wall s"] + (["MB/s"] if sec.size else []) + ["CPU s", "peak RSS MiB"]
    if sec.limit is not None:
        headers += ["limit s", "÷ limit"]
    headers += [f"÷ {names[t]}" for t in tags]
    twins = any(c.twin for c in sec.competitors)
    if twins:
        headers.append("÷ baseline")
    rows: list[list[object]] = []
    for c in ordered(sec):
        where = {"notebook": "notebook", "shell": "shell", "process": "both"}[c.where]
        ok = c.ok()
        if not ok:
            why = f"skipped: {c.skipped}" if c.skipped else f"failed: {c.failure}"
            rows.append([c.name, where, why, *[""] * (len(headers) - 3)])
            continue
        wall = h.median(ok)
        name = c.name if not c.failure else f"{c.name} ({len(ok)}/{len(c.walls)} ok: {c.failure})"
        row: list[object] = [name, where, fmt_s(wall)]
        if sec.size:
            row.append(f"{sec.size / h.MB / wall:.0f}")
        row += [f"{h.median([x for x in c.cpus if x is not None]):.2f}", _rss_cell(c)]
        if sec.limit is not None:
            lim = sec.limit(c)
            row += [fmt_s(lim) if lim else "", fmt_ratio(limit_ratio(sec, c))]
        for t in tags:
            ref = ref_row(sec, t, c.where)
            row.append("1" if ref is c else fmt_ratio(ratio(c, ref)) if ref and ref.ok() else "")
        if twins:
            row.append(fmt_ratio(ratio(c, c.twin)) if c.twin else "")
        rows.append(row)
    return h.markdown_table(headers, rows)


def both_ways(sections: dict[str, Section]) -> str:
    """The sections' key comparisons, notebook and shell side by side."""
    rows: list[list[object]] = []
    for key, sec in sections.items():
        for tag, other in sec.pairs:
            nb, sh = find(sec, tag, "notebook"), find(sec, tag, "shell")
            if nb is None and sh is None:
                continue
            label = (nb or sh).name  # type: ignore[union-attr]
            if other == "limit":
                what = "÷ the throttle's limit"
                cells = [fmt_ratio(limit_ratio(sec, c)) if c else "" for c in (nb, sh)]
            else:
                what, cells = "", []
                for c in (nb, sh):
                    ref = ref_row(sec, other, c.where) if c else None
                    if c is None or ref is None or not ref.ok():
                        cells.append("")
                        continue
                    what = what or f"÷ {ref.name}"
                    cells.append(fmt_ratio(ratio(c, ref)))
                if not what:
                    continue
            rows.append([f"{key}. {label}", what, *cells])
    return h.markdown_table(["vidnb row", "ratio", "in a notebook", "from a shell"], rows)


# ---------------------------------------------------------------------------- targets


@dataclass
class Target:
    what: str
    column: str  # "notebook", "shell" or "" (both / not a timing)
    measured: float  # NaN: not measured
    aim: float
    unit: str = "x"  # "x" ratio, "MB", "ms", "%"
    stretch: float | None = None
    why_missing: str = ""

    def row(self) -> list[str]:
        if self.measured != self.measured:
            return [self.what, self.column, "n/a", self._fmt(self.aim), self.why_missing or "not measured"]
        met = "pass" if self.measured <= self.aim else "miss"
        if met == "pass" and self.stretch is not None:
            met += " (stretch met)" if self.measured <= self.stretch else " (stretch missed)"
        return [self.what, self.column, self._fmt(self.measured), self._fmt(self.aim), met]

    def _fmt(self, x: float) -> str:
        if self.unit == "x":
            return f"{x:.2f}x"
        if self.unit == "%":
            return f"{x:+.1f} %"
        return f"{x:.1f} {self.unit}"


def targets_table(targets: Sequence[Target]) -> str:
    return h.markdown_table(["target", "column", "measured", "target", "result"], [t.row() for t in targets])
