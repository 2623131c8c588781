"""Progress of a run on stderr: a live view on a terminal, plain lines otherwise.

Both views consume :class:`~llm_mux.workflow.runner.StepEvent` and keep every step (and,
inside query steps, every backend) with its state and elapsed time. Everything shown passes
through :func:`llm_mux.secrets.redact`. The live view is refreshed from the event loop (no
refresh thread), so the state it reads is never touched concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from llm_mux.render import StillView
from llm_mux.secrets import redact

if TYPE_CHECKING:
    from llm_mux.workflow.runner import StepEvent

_TICK = 0.125
_ICONS = {
    "waiting": ("·", "dim"),
    "running": ("▶", "cyan"),
    "retrying": ("↻", "yellow"),
    "done": ("✓", "green"),
    "failed": ("✗", "red"),
    "skipped": ("-", "dim"),
    "cancelled": ("■", "yellow"),
}
_FINAL = frozenset({"done", "failed", "skipped", "cancelled"})


@dataclass
class _Line:
    """One step or backend: its state, when it started, how long it took, a note."""

    state: str = "waiting"
    started: float | None = None
    elapsed_ms: int | None = None
    detail: str = ""
    backends: dict[str, _Line] = field(default_factory=dict)

    def update(self, event: StepEvent, now: float) -> None:
        if event.state == "running" and self.started is None:
            self.started = now - event.elapsed_ms / 1000
        self.state = event.state
        if event.state in _FINAL:
            self.elapsed_ms = event.elapsed_ms
        self.detail = event.detail if event.state in ("failed", "retrying", "cancelled") else ""

    def elapsed(self, now: float) -> float | None:
        if self.elapsed_ms is not None:
            return self.elapsed_ms / 1000
        return None if self.started is None else now - self.started


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}s"


def _backend_key(event: StepEvent) -> str:
    name = event.backend or "?"
    return name if event.item is None else f"{name} #{event.item + 1}"


class ProgressState:
    """The state of every step and backend, fed by events."""

    def __init__(self, steps: Sequence[str]) -> None:
        self.steps = {name: _Line() for name in steps}

    def apply(self, event: StepEvent) -> _Line:
        now = time.monotonic()
        line = self.steps.setdefault(event.step, _Line())
        if event.backend is None:
            if event.item is None:
                line.update(event, now)
            return line
        backend = line.backends.setdefault(_backend_key(event), _Line())
        backend.update(event, now)
        return backend


class LineView(StillView):
    """Plain progress lines on stderr, for logs and pipes (stderr is not a terminal)."""

    def __init__(self, steps: Sequence[str], stream: IO[str] | None = None) -> None:
        self.state = ProgressState(steps)
        self.stream = stream or sys.stderr

    def __call__(self, event: StepEvent) -> None:
        line = self.state.apply(event)
        if event.state == "waiting" or (event.item is not None and event.backend is None):
            return
        name = event.step if event.backend is None else f"{event.step}: {_backend_key(event)}"
        text = f"[{name}] {event.state}"
        if event.state in _FINAL and event.state != "skipped":
            text += f" in {_seconds(line.elapsed(time.monotonic()))}"
        if line.detail:
            text += f": {line.detail}"
        self._write(text)

    def _write(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.stream.write(redact(text) + "\n")
            self.stream.flush()


class LiveView:
    """A rich live table of steps and backends on stderr, refreshed from the event loop."""

    def __init__(self, steps: Sequence[str], title: str) -> None:
        from rich.console import Console

        self.state = ProgressState(steps)
        self.title = title
        self.console = Console(stderr=True)
        self._live: Any = None

    def __call__(self, event: StepEvent) -> None:
        self.state.apply(event)  # drawn by the ticker: no O(steps) redraw per event

    def start(self) -> None:
        from rich.live import Live

        self._live = Live(
            console=self.console,
            get_renderable=self.renderable,
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=False,
            transient=False,
        )
        self._live.start()

    def stop(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.refresh()
            live.stop()

    async def ticker(self) -> None:
        """Refresh elapsed times while the run goes on (cancelled when it ends)."""
        while True:
            await asyncio.sleep(_TICK)
            if self._live is not None:
                self._live.refresh()

    def renderable(self) -> Any:
        from rich.table import Table
        from rich.text import Text

        now = time.monotonic()
        table = Table.grid(padding=(0, 2))
        table.add_row(Text(redact(self.title) + self._counts(), style="bold"))
        rows = list(self._rows(now))
        room = max(self.console.size.height - 2, 5)
        if len(rows) > room:  # too many to show: what is going on, and what went wrong
            rows = [r for state, r in rows if state in ("running", "retrying", "failed")]
            rows = [(None, r) for r in rows[-room:]]
        for _, row in rows:
            table.add_row(row)
        return table

    def _rows(self, now: float) -> Any:
        for name, line in self.state.steps.items():
            yield line.state, self._row(name, line, now, indent="")
            for backend, sub in line.backends.items():
                yield sub.state, self._row(backend, sub, now, indent="    ")

    def _counts(self) -> str:
        states = [line.state for line in self.state.steps.values()]
        shown = ("done", "running", "failed", "skipped", "waiting")
        parts = [f"{states.count(s)} {s}" for s in shown if states.count(s)]
        return f"  ({', '.join(parts)})" if parts else ""

    def _row(self, name: str, line: _Line, now: float, indent: str) -> Any:
        from rich.text import Text

        icon, style = _ICONS.get(line.state, ("?", ""))
        text = Text(f"{indent}{icon} ", style=style)
        text.append(redact(name), style="bold" if not indent else "")
        text.append(f"  {line.state}", style=style)
        elapsed = _seconds(line.elapsed(now))
        if elapsed:
            text.append(f"  {elapsed}", style="dim")
        if line.detail:
            text.append(f"  {redact(_one_line(line.detail))}", style=style)
        return text


def _one_line(text: str, limit: int = 160) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= limit else first[: limit - 1] + "…"
