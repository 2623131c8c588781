"""Durations as workflows write them: a plain number, or a string such as ``"90s"``.

A plain number is **seconds** for timeouts (the unit the seed documents for backends, and
what its discovery example's ``timeout = 180`` means) and milliseconds for ``retry_delay``
(the unit of the backend key of the same name). A string is one or more ``<number><unit>``
parts with units ``ms``, ``s``, ``m``, ``h`` (``"1m30s"``), so a reader never has to guess.
Values are kept in milliseconds.
"""

from __future__ import annotations

import math
import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_MS = {"ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
MS_HINT = 1000  # a plain timeout of this many seconds or more probably meant milliseconds
_WRONG_TYPE = 'a duration must be a number or a string like "90s"'


def parse_duration(value: object, *, plain_unit_ms: float = 1.0) -> float:
    """Milliseconds for ``value``; a plain number counts in units of ``plain_unit_ms``."""
    if isinstance(value, bool):
        raise ValueError(_WRONG_TYPE)
    if isinstance(value, int | float):
        return _positive(float(value) * plain_unit_ms)
    if isinstance(value, str):
        return _positive(_parse_text(value.strip()))
    raise ValueError(_WRONG_TYPE)


def parse_timeout(value: object) -> float:
    """Milliseconds for a step or workflow timeout: a plain number is seconds."""
    return parse_duration(value, plain_unit_ms=1000.0)


def _parse_text(text: str) -> float:
    position, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_MS[match.group(2)]
        position = match.end()
    if not text or position != len(text):
        raise ValueError(
            f"invalid duration {text!r}: write a number, or a string "
            'such as "500ms", "90s", "3m", "1h", "1m30s"'
        )
    return total


def _positive(ms: float) -> float:
    if math.isnan(ms) or math.isinf(ms):
        raise ValueError(f'a duration must be a finite number, got {ms}; write e.g. "90s" or "1h"')
    if ms <= 0:
        raise ValueError("a duration must be greater than zero")
    return ms


def looks_like_ms(value: object) -> bool:
    """True for a plain timeout of 1000 or more: seconds, but probably written as ms.

    Non-finite values are errors of their own; a warning about them would only confuse.
    """
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    return math.isfinite(value) and value >= MS_HINT


def format_ms(ms: float) -> str:
    """A short human form: ``850ms``, ``1.5s``, ``3m``, ``2m05s``, ``2h46m40s``."""
    if ms < 1000:
        return f"{ms:.0f}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.3g}s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes >= 60:
        hours, minutes = divmod(minutes, 60)
        text = f"{hours}h" + (f"{minutes:02d}m" if minutes or rest else "")
        return text + (f"{rest:02d}s" if rest else "")
    return f"{minutes}m" if rest == 0 else f"{minutes}m{rest:02d}s"
