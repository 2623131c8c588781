"""A render budget, so a runaway template cannot hold the run.

A template can loop for hours (``range(100000)`` nested twice) in one synchronous call. So
every compiled ``{% for %}`` iterates through :func:`guarded` and every call made by a
template ticks the :class:`Budget` of the render in progress: it stops the render when the
run cancels it, when a deadline passes, or when the output grows past a cap. Steps render
with :func:`render_off_loop`: a short slice on the event loop (most templates take
microseconds), then, if that is not enough, in a worker thread the loop awaits — so step and
workflow timeouts and signals keep working — which stops at its next tick once cancelled (a
thread cannot be killed; it must stop by itself for the process to exit).
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from llm_mux.errors import TemplateError
from llm_mux.values import Value

T = TypeVar("T")

SLICE_S = 0.05  # how long a render may run on the event loop before it moves to a thread
_CHECK_EVERY = 256  # ticks between two looks at the clock


class RenderStopped(TemplateError):
    """A render was stopped by its budget (cancelled, out of time, output too large)."""


class _SliceSpent(BaseException):
    """The on-loop slice is spent: render again in a worker thread.

    A BaseException, so that no ``except Exception`` on the way (Jinja's, ours) turns it
    into a template error.
    """


class Budget(Value, frozen=False):
    """What one render may spend; checked by every loop iteration, call and output chunk."""

    deadline: float | None = None  # time.monotonic() value
    max_output: int | None = None  # characters of rendered text
    cancelled: bool = False
    slice_only: bool = False  # the deadline ends an on-loop slice, not the render
    ticks: int = 0

    def tick(self) -> None:
        if self.cancelled:
            raise RenderStopped("rendering stopped: the step was cancelled")
        self.ticks += 1
        if self.ticks % _CHECK_EVERY or self.deadline is None:
            return
        if time.monotonic() > self.deadline:
            if self.slice_only:
                raise _SliceSpent
            raise RenderStopped("rendering took too long; the template runs away")

    def output(self, size: int) -> None:
        if self.max_output is not None and size > self.max_output:
            cap = self.max_output / (1024 * 1024)
            raise RenderStopped(f"the rendered text is over {cap:g} MiB; refusing to go on")


BUDGET: contextvars.ContextVar[Budget | None] = contextvars.ContextVar(
    "llm_mux_render_budget", default=None
)


def tick() -> None:
    """Charge one step (a call made by a template) to the render in progress."""
    budget = BUDGET.get()
    if budget is not None:
        budget.tick()


class _Guarded:
    """An iterable of a ``{% for %}`` that ticks the budget on every item."""

    __slots__ = ("_items",)

    def __init__(self, items: Any) -> None:
        self._items = items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Any]:
        budget = BUDGET.get()
        if budget is None:
            return iter(self._items)
        return _ticking(budget, self._items)


def _ticking(budget: Budget, items: Iterable[Any]) -> Iterator[Any]:
    for item in items:
        budget.tick()
        yield item


def guarded(items: Any) -> _Guarded:
    """Wrap the iterable of a compiled ``{% for %}`` (see the environment's parser)."""
    return _Guarded(items)


@contextmanager
def limited(seconds: float) -> Iterator[None]:
    """Renders in this block stop (RenderStopped) after ``seconds``; for synchronous checks."""
    token = BUDGET.set(Budget(deadline=time.monotonic() + seconds))
    try:
        yield
    finally:
        BUDGET.reset(token)


def _within(budget: Budget, work: Callable[[], T]) -> T:
    token = BUDGET.set(budget)
    try:
        return work()
    finally:
        BUDGET.reset(token)


_executor: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="llm-mux-render")
    return _executor


async def render_off_loop(
    work: Callable[[], T],
    *,
    max_output: int | None = None,
    discard: Callable[[T], None] | None = None,
) -> T:
    """Run a render without holding the event loop; cancelling the caller stops it.

    ``discard`` releases a result that arrives after the caller was cancelled (e.g. the
    temporary files of a prepared shell script).
    """
    slice_budget = Budget(time.monotonic() + SLICE_S, max_output, slice_only=True)
    try:
        return _within(slice_budget, work)
    except _SliceSpent:
        pass
    budget = Budget(max_output=max_output)
    context = contextvars.copy_context()
    future: Future[T] = _pool().submit(context.run, _within, budget, work)
    try:
        return await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        budget.cancelled = True
        if discard is not None:
            future.add_done_callback(lambda done: _discard(done, discard))
        raise


def _discard(done: Future[T], discard: Callable[[T], None]) -> None:
    if not done.cancelled() and done.exception() is None:
        discard(done.result())
