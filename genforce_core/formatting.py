"""How progress quantities are written for people: kimg and durations (console and hooks)."""
from __future__ import annotations

import math


def format_kimg(kimg: float) -> str:
    """``50.0`` for long runs, three decimals below one kimg."""
    return f'{kimg:.1f}' if kimg >= 1 or kimg == 0 else f'{kimg:.3f}'


def format_duration(seconds: float) -> str:
    """``1d 02:03:04`` (days only when there are any)."""
    if not math.isfinite(seconds):
        return '?'
    seconds = max(0, int(round(seconds)))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f'{hours:02d}:{minutes:02d}:{secs:02d}'
    return f'{days}d {clock}' if days else clock
