"""Limits on backend requests: concurrency slots and rate pacing (SPEC §1, §8).

Every backend request takes a slot from one :class:`Limiter` before it starts (counting
before the call, never after); each attempt, retries too, takes its own. Requests beyond a
limit wait; they never fail. Per rate group: ``max_concurrent`` slots, ``rpm``/``burst``
pacing, a ``tpm`` token budget charged with each answer's usage, and a pause when a 429
asks for one. ``defaults.max_concurrent`` bounds the run. :class:`LocalLimiter` keeps all of
it in this process; with ``[shared]`` the group limits live in Redis
(:mod:`llm_mux.backends.shared_limits`) and this one is the fallback.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self

from llm_mux.backends.pacing import GroupLimits, Pacer, group_limits
from llm_mux.errors import RateLimited
from llm_mux.logs import get_logger

if TYPE_CHECKING:
    from llm_mux.config import Config


class Lease(Protocol):
    """A granted slot; the answer's token usage is charged to it before it is released."""

    def charge(self, tokens: int) -> None: ...


class Limiter(Protocol):
    """Grants a slot for one request to ``backend``; waits while the limits are reached."""

    def slot(self, backend: str) -> AbstractAsyncContextManager[Lease]: ...

    async def aclose(self) -> None: ...


log = get_logger("limits")


def now_ms() -> float:
    return time.monotonic() * 1000.0


def build_limiter(config: Config) -> Limiter:
    """The run's limiter: shared through Redis when ``[shared]`` is set, else local."""
    local = LocalLimiter.from_config(config)
    settings = config.shared_settings()
    if settings is None:
        return local
    from llm_mux.backends.shared_limits import SharedLimiter

    return SharedLimiter(settings, local)


MAX_LATE_RETRIES = 3  # a request that keeps waking late goes anyway rather than never


async def start_at(due_ms: float, limits: GroupLimits) -> bool:
    """Sleep until ``due_ms`` (``now_ms`` clock); True when it is then too late for its
    reserved start and must reserve again. A busy machine can wake a sleeper hundreds of
    ms late; starting anyway would bunch it with the requests reserved after it."""
    wait = due_ms - now_ms()
    if wait > 0:
        await asyncio.sleep(wait / 1000)
    late = now_ms() - due_ms
    if limits.interval_ms and late > limits.late_ms:
        log.debug("rate group %s: %.1f ms late for its start; reserving again", limits.name, late)
        return True
    return False


def rate_limit_pause(exc: BaseException | None) -> float | None:
    """Seconds a failed attempt's 429 asked the whole group to pause, if any."""
    if isinstance(exc, RateLimited) and exc.retry_after:
        return exc.retry_after
    return None


class LocalGroup:
    """One rate group in this process: its semaphore and its pacer."""

    __slots__ = ("limits", "pacer", "semaphore")

    def __init__(self, limits: GroupLimits) -> None:
        self.limits = limits
        self.pacer = Pacer(limits)
        self.semaphore = asyncio.Semaphore(limits.max_concurrent) if limits.max_concurrent else None

    async def pace(self) -> None:
        """Wait for the token budget, then for this request's reserved start."""
        pacer = self.pacer
        if not self.limits.paced and pacer.pause_until <= now_ms():
            return
        # each sleep is the exact time until the budget allows more; a charge may move it
        while (wait := pacer.token_wait(now_ms())) > 0:  # noqa: ASYNC110
            await asyncio.sleep(wait / 1000)
        for _ in range(MAX_LATE_RETRIES):
            now = now_ms()
            wait = pacer.reserve(now)
            if wait <= 0:
                return
            log.debug("rate group %s: next start in %.1f ms", self.limits.name, wait)
            if not await start_at(now + wait, self.limits):
                return


class LocalLimiter:
    """Limits enforced inside this process (one per run)."""

    def __init__(self, total: int | None, groups: Mapping[str, GroupLimits]) -> None:
        """``groups`` maps each backend name to its group's limits."""
        self._total = asyncio.Semaphore(total) if total else None
        by_name: dict[str, LocalGroup] = {}
        self._groups = {
            backend: by_name.setdefault(limits.name, LocalGroup(limits))
            for backend, limits in groups.items()
        }

    @property
    def total(self) -> asyncio.Semaphore | None:
        """The run-wide semaphore (``defaults.max_concurrent``), if any."""
        return self._total

    @classmethod
    def from_config(cls, config: Config) -> LocalLimiter:
        return cls(config.defaults.max_concurrent, group_limits(config.backends))

    def group(self, backend: str) -> LocalGroup:
        found = self._groups.get(backend)
        if found is None:
            found = self._groups[backend] = LocalGroup(GroupLimits(backend))
        return found

    def slot(self, backend: str) -> LocalSlot:
        return LocalSlot(self.group(backend), self._total)

    async def aclose(self) -> None:
        """Nothing to close: the state lives and dies with the process."""


class LocalSlot(AbstractAsyncContextManager["LocalSlot"]):
    """One request's slot: the group's semaphore, then the run's, then pacing.

    The group's first, so a request queued for a busy backend does not hold one of the
    run's slots that another backend could use; pacing last, right before the request is
    sent, so a request that waited for a slot cannot start ahead of the schedule.
    """

    __slots__ = ("_group", "_total")

    def __init__(self, group: LocalGroup, total: asyncio.Semaphore | None) -> None:
        self._group = group
        self._total = total

    async def enter_slots(self) -> None:
        own, total = self._group.semaphore, self._total
        if own is not None:
            await own.acquire()
        if total is not None:
            try:
                await total.acquire()
            except BaseException:
                if own is not None:
                    own.release()
                raise

    def exit_slots(self) -> None:
        if self._total is not None:
            self._total.release()
        if self._group.semaphore is not None:
            self._group.semaphore.release()

    async def __aenter__(self) -> Self:
        await self.enter_slots()
        try:
            await self.admit()
        except BaseException:
            self.release(None)
            raise
        return self

    async def admit(self) -> None:
        """Wait for the group's schedule once the slots are held."""
        await self._group.pace()

    def charge(self, tokens: int) -> None:
        self._group.pacer.charge(now_ms(), tokens)

    def settle(self, exc: BaseException | None) -> None:
        """Apply a 429's pause to the group (local pacing)."""
        pause = rate_limit_pause(exc)
        if pause is not None:
            self._group.pacer.pause(now_ms(), pause)

    def release(self, exc: BaseException | None) -> None:
        """Settle the attempt's outcome, then free the slots: on exit, or a failed entry."""
        self.settle(exc)
        self.exit_slots()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release(exc)
