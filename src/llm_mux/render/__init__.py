"""How a run is shown: a live view or plain lines on stderr, or nothing (json, quiet).

Kept out of the workflow core: the runner only emits events; these views draw them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from llm_mux.workflow.runner import StepEvent


class View(Protocol):
    """Receives every step event; ``start``/``stop`` bracket the run."""

    def __call__(self, event: StepEvent) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    async def ticker(self) -> None: ...


class StillView:
    """The lifecycle of a view that draws only when an event comes: nothing to start, stop
    or refresh."""

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None

    async def ticker(self) -> None:
        return None


class SilentView(StillView):
    """No progress at all (``--output json`` and ``quiet``)."""

    def __call__(self, event: StepEvent) -> None:
        return None


def make_view(output: str, steps: Sequence[str], title: str) -> View:
    """The view for an output mode: live on a terminal, lines otherwise, silent for json/quiet."""
    if output != "console":
        return SilentView()
    from llm_mux.render.console import LineView, LiveView

    if is_terminal(sys.stderr):
        return LiveView(steps, title)
    return LineView(steps)


def is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is a terminal (False for a closed or replaced stream)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
