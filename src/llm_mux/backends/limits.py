"""Concurrency limits: ``defaults.max_concurrent`` across the run, ``max_concurrent`` per backend.

Every backend request takes a slot from one :class:`Limiter` before it starts (counting
before the call, never after). Requests beyond a limit wait; they never fail. The interface
is the seam for a limiter shared between machines later; today's is in-process semaphores.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
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

    @classmethod
    def from_config(cls, config: Config) -> LocalLimiter:
        per_backend = {name: b.max_concurrent for name, b in config.backends.items()}
        return cls(config.defaults.max_concurrent, per_backend)

    @asynccontextmanager
    async def slot(self, backend: str) -> AsyncIterator[None]:
        # The backend's own slot first, so a request queued for a busy backend does not
        # hold one of the run's slots that another backend could use.
        own = self._per_backend.get(backend)
        async with _maybe(own), _maybe(self._total):
            yield


@asynccontextmanager
async def _maybe(semaphore: asyncio.Semaphore | None) -> AsyncIterator[None]:
    if semaphore is None:
        yield
        return
    async with semaphore:
        yield
