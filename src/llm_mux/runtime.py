"""One event loop per CLI invocation, stopped cleanly by SIGINT, SIGTERM or SIGHUP.

A signal cancels the main task; every awaiting subprocess then stops its whole process
group (see :mod:`llm_mux.process`), partial results are reported by the caller, and the
run ends with :class:`~llm_mux.errors.Interrupted` (exit 130 / 143 / 129). A second
signal, or children still alive after the grace period, get SIGKILL.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import TypeVar

from llm_mux import process
from llm_mux.errors import Interrupted

T = TypeVar("T")

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_received: list[int] = []


def interrupted_by() -> int | None:
    """The signal that interrupted this run, if any."""
    return _received[0] if _received else None


def run(main: Callable[[], Awaitable[T]]) -> T:
    """Run ``main()`` on a fresh loop; translate a received signal into :class:`Interrupted`."""
    _received.clear()
    process.reset_shutdown()
    return asyncio.run(_supervise(main))


async def _supervise(main: Callable[[], Awaitable[T]]) -> T:
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(main())

    def on_signal(signum: int) -> None:
        if _received:
            process.kill_all_groups()  # a second signal: no more grace
            return
        _received.append(signum)
        process.begin_shutdown(signum)
        task.cancel()

    for signum in HANDLED_SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        result = await task
        if _received:  # main reported its partial results and returned
            raise Interrupted(_signal_message(_received[0]), signum=_received[0])
        return result
    except asyncio.CancelledError:
        if _received:
            raise Interrupted(_signal_message(_received[0]), signum=_received[0]) from None
        raise
    finally:
        for signum in HANDLED_SIGNALS:
            loop.remove_signal_handler(signum)
        process.kill_all_groups()


def _signal_message(signum: int) -> str:
    return f"interrupted by {signal.Signals(signum).name}"
