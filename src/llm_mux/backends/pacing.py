"""Rate limits as numbers: which group a backend paces in, and GCRA pacing (SPEC §8).

A group (``rate_group``, default the backend's own name) has one budget: the smallest
``rpm``, ``tpm``, ``burst`` and ``max_concurrent`` any member sets. Pacing is GCRA (the
generic cell rate algorithm) kept as a *theoretical arrival time* (TAT): each request
reserves the next start time, so a waiter learns its exact wait at once and never polls.
The same arithmetic runs in-process (:class:`Pacer`) and inside the Redis script of
:mod:`llm_mux.backends.shared_limits`; all times here are milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from llm_mux.values import Value

if TYPE_CHECKING:
    from llm_mux.config import Backend

MINUTE_MS = 60_000.0


class GroupLimits(Value):
    """The limits one rate group shares; ``None`` means unlimited."""

    name: str
    rpm: int | None = None
    tpm: int | None = None
    burst: int = 1
    max_concurrent: int | None = None

    @property
    def interval_ms(self) -> float:
        """Time between two request starts at the steady rate (0: unpaced)."""
        return MINUTE_MS / self.rpm if self.rpm else 0.0

    @property
    def tolerance_ms(self) -> float:
        """How far ahead of the steady schedule a request may start: ``burst - 1`` slots."""
        return (self.burst - 1) * self.interval_ms

    @property
    def late_ms(self) -> float:
        """How late a request may start after its reserved time before it must reserve
        again, when a busy machine woke it late. Half an interval keeps every window
        within ``rate·t + burst``; at high rates 25 ms still adds at most 2.5 % to any
        1 s window, and spares a loaded machine a Redis round trip per request."""
        return max(self.interval_ms / 2, 25.0)

    @property
    def ms_per_token(self) -> float:
        """Budget time one token of usage costs (0: no token limit)."""
        return MINUTE_MS / self.tpm if self.tpm else 0.0

    @property
    def paced(self) -> bool:
        return self.rpm is not None or self.tpm is not None


def group_of(backend: Backend) -> str:
    return backend.rate_group or backend.name


def group_limits(backends: Mapping[str, Backend]) -> dict[str, GroupLimits]:
    """Each backend's group limits (members of one group share one object)."""
    members: dict[str, list[Backend]] = {}
    for backend in backends.values():
        members.setdefault(group_of(backend), []).append(backend)
    groups = {name: _merge(name, group) for name, group in members.items()}
    return {backend.name: groups[group_of(backend)] for backend in backends.values()}


def _merge(name: str, members: list[Backend]) -> GroupLimits:
    return GroupLimits(
        name,
        rpm=_smallest(m.rpm for m in members),
        tpm=_smallest(m.tpm for m in members),
        burst=_smallest(m.burst for m in members) or 1,
        max_concurrent=_smallest(m.max_concurrent for m in members),
    )


def _smallest(values: Iterable[int | None]) -> int | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


class Pacer:
    """One group's pacing state in this process: request TAT, token TAT, pause."""

    __slots__ = ("limits", "pause_until", "tat", "token_tat")

    def __init__(self, limits: GroupLimits) -> None:
        self.limits = limits
        self.tat = 0.0
        self.token_tat = 0.0
        self.pause_until = 0.0

    def token_wait(self, now: float) -> float:
        """How long requests wait because the minute's token budget is spent (0: go)."""
        if not self.limits.tpm:
            return 0.0
        return max(0.0, self.token_tat - MINUTE_MS - now)

    def reserve(self, now: float) -> float:
        """Reserve the next start; returns how long to wait before starting."""
        start = max(now, self.pause_until)
        interval = self.limits.interval_ms
        if interval:
            base = max(self.tat, start)
            start = max(start, base - self.limits.tolerance_ms)
            self.tat = base + interval
        return start - now

    def charge(self, now: float, tokens: int) -> None:
        """Spend ``tokens`` of the token budget (usage known once the answer arrives)."""
        if self.limits.tpm and tokens > 0:
            self.token_tat = max(self.token_tat, now) + tokens * self.limits.ms_per_token

    def pause(self, now: float, seconds: float) -> None:
        """Start nothing in this group for ``seconds`` (a 429 asked for it)."""
        self.pause_until = max(self.pause_until, now + seconds * 1000)
