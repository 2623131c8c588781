"""Stopping a store step's write truthfully: cancelled before its commit, or done.

A store runs in a worker thread, where cancelling the awaiting task stops nothing: the
thread would commit every row while the step reported "cancelled". Here the thread carries
a :class:`WriteGate`. A cancel arriving before the commit closes the gate: no transaction
starts, a running one is interrupted (an SQLite progress handler) and rolled back, and the
step ends cancelled. A cancel arriving once the commit has begun is refused: the commit
finishes and the step reports what it stored.

The worker is a daemon thread, so a cancelled store still parsing its input never holds up
the process's exit; it stops at the gate before touching the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal, TypeVar

_T = TypeVar("_T")
State = Literal["open", "writing", "committing", "committed", "cancelled"]

PROGRESS_STEPS = 1000  # SQLite VM instructions between checks of the gate
ROLLBACK_WAIT = 1.5  # s to let an interrupted transaction roll back before giving up on it

_gate: contextvars.ContextVar[WriteGate | None] = contextvars.ContextVar("gate", default=None)
_abandoned: list[threading.Thread] = []  # cancelled stores whose thread may still run


class StoreCancelled(Exception):
    """Raised in the worker thread: the write was cancelled before its commit."""


class WriteGate:
    """The moment a write can no longer be cancelled, shared by the thread and the loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.state: State = "open"

    def cancel(self) -> State:
        """Close the gate unless the commit began; return the state it was in."""
        with self._lock:
            before = self.state
            if before in ("open", "writing"):
                self.state = "cancelled"
            return before

    def begin_write(self) -> None:
        self._move("writing")

    def begin_commit(self) -> None:
        self._move("committing")

    def end_commit(self) -> None:
        """Committed: until the next transaction begins, a cancel waits for the result."""
        self._move("committed")

    def _move(self, state: State) -> None:
        with self._lock:
            if self.state == "cancelled":
                raise StoreCancelled
            self.state = state

    def stop_requested(self) -> bool:
        """The SQLite progress handler: a true value interrupts the running statement."""
        return self.state == "cancelled"


@contextmanager
def gated(conn: sqlite3.Connection) -> Iterator[None]:
    """Around one transaction: refuse to start, interrupt, or refuse to commit once the
    current thread's gate is closed. Without a gate (every write but a store step's), a
    no-op."""
    gate = _gate.get()
    if gate is None:
        yield
        return
    gate.begin_write()
    conn.set_progress_handler(gate.stop_requested, PROGRESS_STEPS)
    try:
        yield
    except sqlite3.OperationalError:
        if gate.stop_requested():
            raise StoreCancelled from None
        raise
    finally:
        conn.set_progress_handler(None, 0)


@contextmanager
def commit() -> Iterator[None]:
    """Around ``COMMIT``: from here until another transaction begins, a cancel is refused."""
    begin_commit()
    yield
    end_commit()


def begin_write() -> None:
    """Before a transaction: raise :class:`StoreCancelled` once the thread's gate is closed.

    For a database whose statements the gate cannot interrupt (PostgreSQL): a cancel while
    they run is caught by :func:`begin_commit`, which rolls the transaction back instead."""
    gate = _gate.get()
    if gate is not None:
        gate.begin_write()


def begin_commit() -> None:
    """Just before ``COMMIT``: raise :class:`StoreCancelled` if cancelled, else refuse cancels."""
    gate = _gate.get()
    if gate is not None:
        gate.begin_commit()


def end_commit() -> None:
    """After ``COMMIT``: a cancel now waits for the thread's result."""
    gate = _gate.get()
    if gate is not None:
        gate.end_commit()


async def run_cancellable(work: Callable[[], _T]) -> _T:
    """Run ``work`` in a daemon thread under a fresh gate and await its result.

    Cancelled before the commit: the thread is stopped at the gate (a started transaction is
    given a moment to roll back) and the cancellation propagates. Cancelled after: the
    commit finishes and its result is returned.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[_T] = loop.create_future()
    gate = WriteGate()
    context = contextvars.copy_context()
    context.run(_gate.set, gate)
    thread = threading.Thread(
        target=_work_in_thread, args=(context, work, loop, done), daemon=True, name="store"
    )
    thread.start()
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        state = gate.cancel()
        if state in ("committing", "committed"):
            return await done
        if state == "writing":
            await asyncio.wait({done}, timeout=ROLLBACK_WAIT)
        if done.done() and not done.cancelled():
            done.exception()  # retrieved: the thread's StoreCancelled is not news
        _abandoned.append(thread)
        raise


def stranded(wait: float) -> bool:
    """Whether a cancelled store's thread is still running after ``wait`` seconds in all.

    Such a thread may be inside SQLite, where finalising the interpreter under it aborts
    the process; the caller then exits without finalising (nothing it wrote was committed,
    so SQLite rolls it back on the next open).
    """
    import time

    deadline = time.monotonic() + wait
    for thread in _abandoned:
        thread.join(max(0.0, deadline - time.monotonic()))
    return any(thread.is_alive() for thread in _abandoned)


def _work_in_thread(
    context: contextvars.Context,
    work: Callable[[], _T],
    loop: asyncio.AbstractEventLoop,
    done: asyncio.Future[_T],
) -> None:
    try:
        result = context.run(work)
    except BaseException as exc:  # delivered to the awaiting task, which decides
        failure = exc
        _deliver(loop, done, lambda: done.set_exception(failure))
    else:
        _deliver(loop, done, lambda: done.set_result(result))


def _deliver(
    loop: asyncio.AbstractEventLoop, done: asyncio.Future[_T], settle: Callable[[], None]
) -> None:
    def on_loop() -> None:
        if not done.done():
            settle()

    with contextlib.suppress(RuntimeError):  # the loop closed: no one is waiting any more
        loop.call_soon_threadsafe(on_loop)
