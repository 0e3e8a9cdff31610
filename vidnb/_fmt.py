"""Human-readable sizes, rates and durations for messages, bars and the CLI."""

from __future__ import annotations


def human_bytes(n: int | float | None) -> str:
    """Format a byte count with binary units: ``human_bytes(1536) == '1.5 KiB'``."""
    if n is None:
        return "?"
    size = float(n)
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    step = 0
    while abs(size) >= 1024 and step < len(units) - 1:
        size /= 1024
        step += 1
    unit = units[step]
    return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"


def human_rate(bytes_per_s: float | None) -> str:
    return "?/s" if not bytes_per_s else f"{human_bytes(bytes_per_s)}/s"


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def shorten(name: str, width: int = 40) -> str:
    """Keep a long name readable in a bar: its start, an ellipsis and its last 10 characters."""
    return name if len(name) <= width else name[: width - 11] + "…" + name[-10:]
