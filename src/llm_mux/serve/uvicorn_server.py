"""uvicorn's server with our signals: drain on the first, cancel at once on the second, and
no signal re-raised at the end, so a drained server exits 0."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Iterator

import uvicorn

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class DrainingServer(uvicorn.Server):
    """Stops accepting on the first signal; uvicorn then waits ``timeout_graceful_shutdown``
    for requests in flight before cancelling them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for signum in SIGNALS:
            loop.add_signal_handler(signum, self._stop, signum)
        try:
            yield
        finally:
            for signum in SIGNALS:
                loop.remove_signal_handler(signum)

    def _stop(self, signum: int) -> None:
        if self.should_exit:
            self.force_exit = True
            for task in list(self.server_state.tasks):
                task.cancel()
            return
        name = signal.Signals(signum).name
        sys.stderr.write(f"llm-mux serve: {name}: finishing the requests in flight\n")
        sys.stderr.flush()
        self.should_exit = True
        for server in self.servers:  # stop accepting now, not at the next tick
            server.close()
