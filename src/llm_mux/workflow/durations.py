"""Durations as workflows write them: milliseconds, or a string such as ``"90s"``.

A plain number is milliseconds (the original tool's unit). A string is one or more
``<number><unit>`` parts with units ``ms``, ``s``, ``m``, ``h`` (``"1m30s"``), so a reader
never has to guess the unit.
"""

from __future__ import annotations

import math
import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_MS = {"ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
SECONDS_HINT = 1000  # a plain number below this probably meant seconds


def parse_duration(value: object) -> float:
    """Milliseconds for ``value`` (int/float ms or a duration string); ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError('a duration must be a number of ms or a string like "90s"')
    if isinstance(value, int | float):
        return _positive(float(value))
    if isinstance(value, str):
        return _positive(_parse_text(value.strip()))
    raise ValueError('a duration must be a number of ms or a string like "90s"')


def _parse_text(text: str) -> float:
    position, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_MS[match.group(2)]
        position = match.end()
    if not text or position != len(text):
        raise ValueError(
            f"invalid duration {text!r}: write milliseconds as a number, or a string "
            'such as "500ms", "90s", "3m", "1h", "1m30s"'
        )
    return total


def _positive(ms: float) -> float:
    if math.isnan(ms) or math.isinf(ms):
        raise ValueError(f'a duration must be a finite number, got {ms}; write e.g. "90s" or "1h"')
    if ms <= 0:
        raise ValueError("a duration must be greater than zero")
    return ms


def looks_like_seconds(value: object) -> bool:
    """True for a plain positive number under 1000: almost certainly seconds written as ms.

    Zero, negative and non-finite values are errors of their own; suggesting ``"-5s"`` for
    them would only lead to a second error.
    """
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    return 0 < value < SECONDS_HINT


def format_ms(ms: float) -> str:
    """A short human form: ``850ms``, ``1.5s``, ``3m``, ``2m05s``."""
    if ms < 1000:
        return f"{ms:.0f}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.3g}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m" if rest == 0 else f"{minutes}m{rest:02d}s"
