"""Progress events of backend calls, so a renderer can show each backend as it goes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from llm_mux.values import Value

BackendState = Literal["waiting", "running", "retrying", "done", "failed"]


class BackendEvent(Value):
    """One backend changed state: queued for a slot, running, waiting to retry, done, failed.

    ``detail`` is a short human-readable note (the error, or the retry wait); secrets are
    masked by whoever prints it.
    """

    backend: str
    state: BackendState
    elapsed_ms: int
    detail: str = ""


Listener = Callable[[BackendEvent], None]
