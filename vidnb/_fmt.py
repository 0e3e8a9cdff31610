"""Human-readable sizes, rates and durations for messages, bars and the CLI."""

from __future__ import annotations

import re


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


_SIZE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(?:([kmgtp])(i?)b?|b)?", re.I)
_POWERS = {"k": 1, "m": 2, "g": 3, "t": 4, "p": 5}


def parse_size(text: str) -> int:
    """``"500M"`` -> 524288000: bytes from a size with an optional unit.

    K, M, G, T with or without "iB" are binary (``2G`` == ``2GiB`` == 2 * 1024**3); KB, MB,
    GB, TB are decimal; a bare number is bytes.

    Examples
    --------
    >>> parse_size("1.5GiB"), parse_size("700MB"), parse_size("1024")
    (1610612736, 700000000, 1024)
    """
    m = _SIZE.fullmatch(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a size; use e.g. 500M, 2G, 1.5GiB, 700MB or a number of bytes")
    number, unit, binary = float(m.group(1)), (m.group(2) or "").lower(), m.group(3)
    decimal = bool(unit) and not binary and text.strip().lower().endswith("b")
    size = int(number * ((1000 if decimal else 1024) ** _POWERS[unit] if unit else 1))
    if size <= 0:
        raise ValueError(f"{text!r}: the size must be more than 0 bytes")
    return size
