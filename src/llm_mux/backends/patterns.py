"""Wording of rate limits, usage limits and auth failures in CLI output, kept as data.

Agent CLIs report "you hit your limit" in prose, not status codes. These patterns are
consulted only when the command exits non-zero: an answer that merely talks about HTTP 429
is an answer. Reset times ("resets 1am", "try again in 20s") become a wait in seconds.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

RATE_LIMIT = re.compile(
    r"rate[ _-]?limit|\b429\b|too many requests|quota|usage limit|limit reached"
    r"|resource[ _]exhausted|hit your limit",
    re.IGNORECASE,
)

AUTH = re.compile(
    r"invalid[ _-]?(?:x-)?api[ _-]?key|incorrect api key|api key not valid|invalid credentials"
    r"|authentication (?:failed|error)|unauthori[sz]ed|not logged in|please (?:log ?in|login)"
    r"|please set an auth method|no key found|api key (?:is )?(?:missing|required|not set)",
    re.IGNORECASE,
)

_UNITS = {
    "ms": 0.001,
    "millisecond": 0.001,
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hr": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}
_PART = (
    r"(\d+(?:\.\d+)?)\s*"
    r"(ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?)(?![a-zA-Z])"
)
_DURATION = re.compile(
    r"(?:try again|retry|resets?|available again)\s+(?:after|in)\s+"
    r"((?:" + _PART + r"[\s,]*(?:and\s+)?)+)",
    re.IGNORECASE,
)
_CLOCK = re.compile(
    r"resets?\s+(?:at\s+)?(\d{1,2})(?::(\d{2}))?\s*(am|pm)?(?:\s*\(([\w/+-]+)\))?",
    re.IGNORECASE,
)
_EPOCH = re.compile(r"\|\s*(\d{10})\b")


def matching_line(pattern: re.Pattern[str], text: str, limit: int = 300) -> str | None:
    """The first line of ``text`` that matches ``pattern``, trimmed, for an error message."""
    for line in text.splitlines():
        if pattern.search(line):
            line = line.strip()
            return line if len(line) <= limit else line[:limit] + "…"
    return None


def reset_after(text: str, now: datetime | None = None) -> float | None:
    """Seconds until a limit resets, as stated in ``text``; None when it says nothing usable."""
    current = now or datetime.now().astimezone()
    for parse in (_duration, _epoch, _clock):
        seconds = parse(text, current)
        if seconds is not None:
            return seconds
    return None


def _duration(text: str, now: datetime) -> float | None:
    match = _DURATION.search(text)
    if match is None:
        return None
    total = 0.0
    for amount, unit in re.findall(_PART, match.group(1), re.IGNORECASE):
        total += float(amount) * _unit_seconds(unit)
    return total


def _unit_seconds(unit: str) -> float:
    unit = unit.lower()
    if unit in _UNITS:
        return _UNITS[unit]
    return _UNITS[unit.rstrip("s")]


def _epoch(text: str, now: datetime) -> float | None:
    match = _EPOCH.search(text)
    if match is None:
        return None
    return max(0.0, int(match.group(1)) - now.timestamp())


def _clock(text: str, now: datetime) -> float | None:
    match = _CLOCK.search(text)
    if match is None or (match.group(2) is None and match.group(3) is None):
        return None  # "resets 5" alone is not a time of day
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    if match.group(3):
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if match.group(3).lower() == "pm" else 0)
    if hour > 23 or minute > 59:
        return None
    local = _in_zone(now, match.group(4))
    target = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if target <= local:
        target += timedelta(days=1)
    return (target - local).total_seconds()


def _in_zone(now: datetime, zone: str | None) -> datetime:
    if zone:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # only for a named zone

        try:
            return now.astimezone(ZoneInfo(zone))
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return now
