"""Concurrency limits: ``defaults.max_concurrent`` across the run, ``max_concurrent`` per backend.

Every backend request takes a slot from one :class:`Limiter` before it starts (counting
before the call, never after). Requests beyond a limit wait; they never fail. The interface
is the seam for a limiter shared between machines later; today's is in-process semaphores.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from llm_mux.config import Config


class Limiter(Protocol):
    """Grants a slot for one request to ``backend``; waits while the limits are reached."""

    def slot(self, backend: str) -> AbstractAsyncContextManager[None]: ...


class LocalLimiter:
    """Limits enforced by asyncio semaphores inside this process (one per run)."""

    def __init__(self, total: int | None, per_backend: Mapping[str, int | None]) -> None:
        self._total = asyncio.Semaphore(total) if total else None
        self._per_backend = {
            name: asyncio.Semaphore(limit) for name, limit in per_backend.items() if limit
        }
        self._slots: dict[str, _Slot] = {}

    @classmethod
    def from_config(cls, config: Config) -> LocalLimiter:
        per_backend = {name: b.max_concurrent for name, b in config.backends.items()}
        return cls(config.defaults.max_concurrent, per_backend)

    def slot(self, backend: str) -> AbstractAsyncContextManager[None]:
        found = self._slots.get(backend)
        if found is None:
            found = self._slots[backend] = _Slot(self._per_backend.get(backend), self._total)
        return found


class _Slot(AbstractAsyncContextManager[None]):
    """The backend's own semaphore first, then the run's (either may be absent).

    Own first, so a request queued for a busy backend does not hold one of the run's slots
    that another backend could use. Holds no state of its own, so one instance serves
    every concurrent request to its backend (a plain class: a generator-based context
    manager costs a few µs per request).
    """

    __slots__ = ("_own", "_total")

    def __init__(self, own: asyncio.Semaphore | None, total: asyncio.Semaphore | None) -> None:
        self._own = own
        self._total = total

    async def __aenter__(self) -> None:
        own, total = self._own, self._total
        if own is not None:
            await own.acquire()
        if total is not None:
            try:
                await total.acquire()
            except BaseException:
                if own is not None:
                    own.release()
                raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._total is not None:
            self._total.release()
        if self._own is not None:
            self._own.release()
