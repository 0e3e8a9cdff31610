"""The ``variant=`` (quality) argument: which stream of several to take.

Pure and free of any playlist library, so options can be checked before any request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["VariantChoice", "parse_variant"]


@dataclass(frozen=True)
class VariantChoice:
    """A parsed ``variant=`` argument: "best", "worst", or a ceiling on height or bandwidth."""

    mode: Literal["best", "worst", "max_height", "max_bandwidth"]
    limit: int = 0


_BANDWIDTH = re.compile(r"(\d+(?:\.\d+)?)\s*(k|m|bps|kbps|mbps)", re.I)
_HEIGHT = re.compile(r"(\d+)p?", re.I)


def parse_variant(variant: str | int | VariantChoice) -> VariantChoice:
    """Read ``variant=``: "best", "worst", a height (480 or "480p"), or a bandwidth ("800k", "2M").

    Raises
    ------
    ValueError
        For anything else, saying what is accepted.
    """
    if isinstance(variant, VariantChoice):
        return variant
    if isinstance(variant, bool):
        pass
    elif isinstance(variant, int) and variant > 0:
        return VariantChoice("max_height", variant)
    elif isinstance(variant, str):
        v = variant.strip().lower()
        if v in ("best", "worst"):
            return VariantChoice("best" if v == "best" else "worst")
        m = _BANDWIDTH.fullmatch(v)
        if m:
            scale = {"k": 1e3, "kbps": 1e3, "m": 1e6, "mbps": 1e6, "bps": 1}[m.group(2).lower()]
            return VariantChoice("max_bandwidth", int(float(m.group(1)) * scale))
        m = _HEIGHT.fullmatch(v)
        if m and int(m.group(1)) > 0:
            return VariantChoice("max_height", int(m.group(1)))
    raise ValueError(
        f"variant={variant!r} is not understood; use 'best', 'worst', a maximum height (720 or '720p') "
        "or a maximum bandwidth ('800k', '2.5M')."
    )
